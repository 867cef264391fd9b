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
//! returns [`ProviderError::Timeout`] and reports nothing.

use billing_domain::{EventId, Payment, ProviderError, ProviderEvent};
use stripe_checkout::checkout_session::RetrieveCheckoutSession;
use stripe_core::dispute::ListDispute;
use stripe_core::payment_intent::RetrievePaymentIntent;

use crate::outcome::{dispute_outcomes, intent_outcomes, payment_match, session_outcomes, Outcome, OutcomeError};
use crate::provider::{Ambiguity, StripeProvider};
use crate::wire::{Dispute, PaymentIntent, Session};

impl StripeProvider {
    pub(crate) async fn fetch(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        // NOTE: a start that timed out leaves the payment without a reference,
        // and Stripe cannot list Checkout Sessions by metadata, so such a
        // payment stays for a staff decision. Its customer never received the
        // session URL, so no money can have moved through it.
        let Some(reference) = &payment.reference else {
            return Err(ProviderError::MissingReference { payment: payment.id });
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

    /// Lists the disputes on a PaymentIntent's charges. Stripe allows one
    /// dispute per charge, so the first page contains them all.
    async fn list_disputes(&self, intent_id: &str) -> Result<Vec<Dispute>, ProviderError> {
        let disputes = ListDispute::new().payment_intent(intent_id).send(&self.client).await.map_err(|error| {
            self.api_error(error, &format!("listing the disputes of PaymentIntent {intent_id}"), Ambiguity::None)
        })?;
        Ok(disputes.data.iter().map(Dispute::from).collect())
    }

    fn unreadable(&self, reference: &str, error: OutcomeError) -> ProviderError {
        ProviderError::UnexpectedResponse { provider: self.name.clone(), reason: format!("{reference}: {error}") }
    }
}
