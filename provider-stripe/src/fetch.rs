//! Fetching a payment's state from Stripe, for return pages, retries and
//! reconciliation.
//!
//! The payment's reference is a Checkout Session (`cs_...`) or a
//! PaymentIntent (`pi_...`). The object is retrieved with its PaymentIntent
//! and latest charge expanded and mapped through the same rules as webhooks:
//! its settlement state, the cumulative refund, and, when the charge was
//! disputed, the dispute's opening and result, listed by PaymentIntent.
//! Event ids are `fetch:{reference}:{state}`, so fetching an unchanged state
//! twice yields a duplicate, never a second effect. A fetch that times out
//! returns [`ProviderError::Timeout`] and reports nothing. A hosted-page
//! payment whose start timed out has no reference, and is reported expired
//! once no session created for it can still be open.

use billing_domain::{Channel, EventId, EventKind, Payment, PaymentMatch, ProviderError, ProviderEvent};
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_core::dispute::ListDispute;
use stripe_core::payment_intent::RetrievePaymentIntent;

use crate::outcome::{dispute_outcomes, intent_outcomes, payment_match, session_outcomes, Outcome, OutcomeError};
use crate::provider::{Ambiguity, StripeProvider};
use crate::wire::{Dispute, PaymentIntent, Session};

/// Stripe's longest Checkout Session lifetime (24 hours) plus an hour for
/// clock skew between this service and Stripe.
const SESSION_LIFETIME_BOUND: time::Duration = time::Duration::hours(25);

impl StripeProvider {
    pub(crate) async fn fetch(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        let Some(reference) = &payment.reference else {
            return self.expired_without_session(payment);
        };
        let reference = reference.as_str();

        let (object, mut outcomes, matches, intent) = if reference.starts_with("cs_") {
            let session = self.retrieve_session(reference).await?;
            let outcomes = session_outcomes(&session).map_err(|error| self.unreadable(reference, error))?;
            let matches = payment_match(session.metadata.as_ref(), session.client_reference_id.as_deref(), reference);
            ("checkout.session", outcomes, matches, session.payment_intent)
        } else if reference.starts_with("pi_") {
            let intent = self.retrieve_intent(reference, true).await?;
            let outcomes = intent_outcomes(&intent).map_err(|error| self.unreadable(reference, error))?;
            ("payment_intent", outcomes, payment_match(intent.metadata.as_ref(), None, reference), Some(intent))
        } else {
            return Err(self.invalid_request(format!(
                "reference {reference} is neither a Checkout Session (cs_) nor a PaymentIntent (pi_)"
            )));
        };
        let matches = matches.map_err(|error| self.unreadable(reference, error))?;
        if let Some(intent) =
            intent.filter(|intent| intent.latest_charge.as_ref().is_some_and(|charge| charge.disputed))
        {
            for dispute in self.list_disputes(&intent.id).await? {
                outcomes.extend(dispute_outcomes(&dispute).map_err(|error| self.unreadable(reference, error))?);
            }
        }

        let now = self.now();
        let events = outcomes
            .into_iter()
            .map(|Outcome { kind, amount, label }| {
                let event_id = EventId::new(format!("fetch:{reference}:{label}"))
                    .map_err(|error| self.invalid_request(format!("fetch event id: {error}")))?;
                Ok(ProviderEvent {
                    provider: self.name.clone(),
                    event_id,
                    occurred_at: now,
                    matches: matches.clone(),
                    kind,
                    amount,
                    provider_type: format!("fetch:{object}"),
                })
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        tracing::debug!(payment_id = %payment.id, reference, n_events = events.len(), "stripe state fetched");
        Ok(events)
    }

    async fn retrieve_session(&self, id: &str) -> Result<Session, ProviderError> {
        let expand = vec!["payment_intent".to_owned(), "payment_intent.latest_charge".to_owned()];
        let session =
            RetrieveCheckoutSession::new(id).expand(expand).send(&self.client).await.map_err(|error| {
                self.api_error(error, &format!("retrieving Checkout Session {id}"), Ambiguity::None)
            })?;
        Ok(Session::from(&session))
    }

    /// Retrieves a PaymentIntent, with its latest charge when `with_charge`.
    pub(crate) async fn retrieve_intent(&self, id: &str, with_charge: bool) -> Result<PaymentIntent, ProviderError> {
        let mut retrieve = RetrievePaymentIntent::new(id);
        if with_charge {
            retrieve = retrieve.expand(vec!["latest_charge".to_owned()]);
        }
        let intent = retrieve
            .send(&self.client)
            .await
            .map_err(|error| self.api_error(error, &format!("retrieving PaymentIntent {id}"), Ambiguity::None))?;
        Ok(PaymentIntent::from(&intent))
    }

    /// Reports a hosted-page payment whose start timed out as expired once
    /// any session Stripe may have created for it has expired.
    ///
    /// Stripe cannot list Checkout Sessions by metadata, so such a payment
    /// has no reference to fetch. Its customer never received a session URL,
    /// so no money can have moved, and no session outlives Stripe's longest
    /// expiry. Until then, and for other channels, it stays for staff.
    fn expired_without_session(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        let now = self.now();
        let sessions_open_until = payment.created_at + SESSION_LIFETIME_BOUND;
        if payment.channel != Channel::HostedPage || now < sessions_open_until {
            return Err(ProviderError::MissingReference { payment: payment.id });
        }

        let event_id = EventId::new(format!("fetch:{}:no-session:expired", payment.id))
            .map_err(|error| self.invalid_request(format!("fetch event id: {error}")))?;
        tracing::info!(payment_id = %payment.id, "stripe start without a session reported expired");
        Ok(vec![ProviderEvent {
            provider: self.name.clone(),
            event_id,
            occurred_at: now,
            matches: PaymentMatch {
                tenant_id: Some(payment.tenant_id),
                invoice_id: Some(payment.invoice_id),
                payment_id: Some(payment.id),
                reference: None,
            },
            kind: EventKind::Expired,
            amount: None,
            provider_type: "fetch:checkout.session".to_owned(),
        }])
    }

    /// Lists the disputes on a PaymentIntent's charges, oldest first. Stripe
    /// allows one dispute per charge, so the first page contains them all.
    async fn list_disputes(&self, intent_id: &str) -> Result<Vec<Dispute>, ProviderError> {
        let listed = ListDispute::new().payment_intent(intent_id).send(&self.client).await.map_err(|error| {
            self.api_error(error, &format!("listing the disputes of PaymentIntent {intent_id}"), Ambiguity::None)
        })?;

        // Stripe lists newest first; events must follow the order things happened.
        let mut disputes: Vec<Dispute> = listed.data.iter().map(Dispute::from).collect();
        disputes.sort_by_key(|dispute| dispute.created);
        Ok(disputes)
    }

    fn unreadable(&self, reference: &str, error: OutcomeError) -> ProviderError {
        ProviderError::UnexpectedResponse { provider: self.name.clone(), reason: format!("{reference}: {error}") }
    }
}
