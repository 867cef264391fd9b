//! Verified Stripe webhooks, normalised into [`ProviderEvent`]s.
//!
//! [`WebhookVerifier::verify`] checks the signature over the exact body
//! bytes, the timestamp against the clock reading passed in, that the body is
//! UTF-8 and that it is an event envelope. [`VerifiedEvent::normalise`] then
//! maps the event type and object to the domain's vocabulary. Both steps are
//! pure: neither reads a clock nor calls Stripe. Disputes and reader
//! results need one more fact from Stripe (the PaymentIntent's metadata or
//! state), so they come back as [`Normalised::NeedsPaymentIntent`] for the
//! provider to complete.
//!
//! Nothing here logs body content. Errors name the event id, the type and
//! the field that was wrong; a JSON parse error may quote the value it met.

use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;

use billing_domain::{EventId, EventKind, Money, PaymentMatch, ProviderEvent, ProviderName, WebhookRequest};

use crate::amount::from_stripe_amount;
use crate::config::{Secret, StripeConfig};
use crate::outcome::{dispute_result, intent_outcome, payment_match, session_amount, OutcomeError};
use crate::signature::{self, SignatureError, SignatureHeader, SIGNATURE_HEADER};
use crate::wire::{Charge, Dispute, PaymentIntent, Reader, Session};
use crate::PROVIDER_NAME;

/// Checks `Stripe-Signature` headers against the configured signing secrets.
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secrets: Vec<Secret>,
    tolerance: Duration,
}

impl WebhookVerifier {
    /// Creates a verifier that accepts a signature by any of `secrets` whose
    /// timestamp is within `tolerance` of the clock reading.
    pub fn new(secrets: Vec<Secret>, tolerance: Duration) -> WebhookVerifier {
        WebhookVerifier { secrets, tolerance }
    }

    pub fn from_config(config: &StripeConfig) -> WebhookVerifier {
        WebhookVerifier::new(config.webhook_secrets().to_vec(), config.signature_tolerance())
    }

    /// Verifies a webhook request and parses its envelope.
    ///
    /// # Errors
    ///
    /// [`WebhookError::Signature`] for a missing, malformed, non-matching or
    /// out-of-tolerance signature, [`WebhookError::BodyNotUtf8`], and
    /// [`WebhookError::NotAnEvent`] for a body that is not an event envelope.
    pub fn verify(&self, request: &WebhookRequest, now: OffsetDateTime) -> Result<VerifiedEvent, WebhookError> {
        let header = request.header(SIGNATURE_HEADER).ok_or(SignatureError::MissingHeader)?;
        let header = SignatureHeader::parse(header)?;
        signature::verify(&header, &request.body, &self.secrets, self.tolerance, now.unix_timestamp())?;

        let body = std::str::from_utf8(&request.body)
            .map_err(|error| WebhookError::BodyNotUtf8 { valid_up_to: error.valid_up_to() })?;
        let envelope: Envelope =
            serde_json::from_str(body).map_err(|error| WebhookError::NotAnEvent { reason: error.to_string() })?;
        if envelope.object != "event" {
            return Err(WebhookError::NotAnEvent { reason: format!("object is {:?}, not \"event\"", envelope.object) });
        }

        let pinned = stripe_shared::version::VERSION.as_str();
        if envelope.api_version.as_deref().is_some_and(|version| version != pinned) {
            tracing::debug!(
                event_id = %envelope.id,
                api_version = envelope.api_version.as_deref(),
                pinned,
                "webhook rendered in another API version; reading only stable fields"
            );
        }

        Ok(VerifiedEvent {
            id: envelope.id,
            event_type: envelope.event_type,
            created: envelope.created,
            object: envelope.data.object,
        })
    }
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    object: String,
    #[serde(rename = "type")]
    event_type: String,
    created: i64,
    api_version: Option<String>,
    data: EnvelopeData,
}

#[derive(Deserialize)]
struct EnvelopeData {
    object: Box<RawValue>,
}

/// An event whose signature checked out; its object is not parsed yet.
#[derive(Debug, Clone)]
pub struct VerifiedEvent {
    /// Stripe's event id (`evt_...`).
    pub id: String,
    /// Stripe's event type (`checkout.session.completed`).
    pub event_type: String,
    /// When Stripe created the event, in Unix seconds.
    pub created: i64,
    object: Box<RawValue>,
}

/// A normalised event, or one that needs its PaymentIntent first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    Event(ProviderEvent),
    NeedsPaymentIntent(PendingEvent),
}

/// An event that can be completed only with its PaymentIntent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingEvent {
    draft: ProviderEvent,
    payment_intent: String,
    need: Need,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A dispute carries no metadata of ours: take the ids from the PaymentIntent.
    Metadata,
    /// A reader action reports only that it finished, so the PaymentIntent
    /// decides whether money moved, and how much.
    Outcome,
}

impl PendingEvent {
    /// Returns the id of the PaymentIntent to retrieve.
    pub fn payment_intent_id(&self) -> &str {
        &self.payment_intent
    }

    /// Returns the event as far as the webhook alone describes it.
    pub fn draft(&self) -> &ProviderEvent {
        &self.draft
    }

    /// Completes the event with the retrieved PaymentIntent.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidObject`] when the PaymentIntent's state or amount
    /// cannot be mapped.
    pub(crate) fn complete(self, intent: &PaymentIntent) -> Result<ProviderEvent, WebhookError> {
        let PendingEvent { mut draft, need, .. } = self;
        let invalid = |source| WebhookError::InvalidObject {
            event_id: draft.event_id.to_string(),
            event_type: draft.provider_type.clone(),
            source,
        };

        let reference = draft.matches.reference.as_ref().map(|reference| reference.as_str().to_owned());
        let reference = reference.as_deref().unwrap_or(&intent.id);
        draft.matches = payment_match(intent.metadata.as_ref(), None, reference).map_err(invalid)?;
        if need == Need::Outcome {
            let outcome = intent_outcome(intent).map_err(invalid)?;
            draft.kind = outcome.kind;
            draft.amount = outcome.amount;
        }
        Ok(draft)
    }
}

impl VerifiedEvent {
    /// Maps the event to the domain. Types the adapter does not act on become
    /// one `Ignored` event.
    ///
    /// # Errors
    ///
    /// [`WebhookError::InvalidObject`] when the object lacks a field the type
    /// needs or carries an amount, currency or status the adapter cannot read;
    /// [`WebhookError::NotAnEvent`] for an invalid event id or timestamp.
    pub fn normalise(&self) -> Result<Normalised, WebhookError> {
        match self.event_type.as_str() {
            "checkout.session.completed" => self.session_event(|session| match session.payment_status.as_str() {
                "paid" => Ok((EventKind::Succeeded, Some(session_amount(session)?))),
                "unpaid" => Ok((EventKind::Pending, None)),
                // A completion that moved no money can never settle an invoice.
                other => {
                    Ok((EventKind::Ignored { provider_type: format!("checkout.session.completed:{other}") }, None))
                }
            }),
            "checkout.session.async_payment_succeeded" => {
                self.session_event(|session| Ok((EventKind::Succeeded, Some(session_amount(session)?))))
            }
            "checkout.session.async_payment_failed" => self.session_event(|_| Ok((EventKind::Failed, None))),
            "checkout.session.expired" => self.session_event(|_| Ok((EventKind::Expired, None))),
            "payment_intent.succeeded" => self.intent_event(|intent| {
                Ok((EventKind::Succeeded, Some(from_stripe_amount(intent.amount_received, &intent.currency)?)))
            }),
            // Checkout lets the customer try another card on the same page, so a
            // decline there does not end the attempt; a reader's decline does.
            "payment_intent.payment_failed" => self.intent_event(|intent| {
                Ok((if intent.is_card_present() { EventKind::Failed } else { EventKind::Pending }, None))
            }),
            "payment_intent.canceled" => self.intent_event(|_| Ok((EventKind::Canceled, None))),
            "charge.refunded" => self.refund_event(),
            "charge.dispute.created" => self.dispute_event(|_| Ok(EventKind::DisputeOpened)),
            "charge.dispute.closed" => self.dispute_event(|dispute| {
                dispute_result(dispute)?.ok_or_else(|| OutcomeError::UnknownStatus {
                    object: "closed dispute",
                    value: dispute.status.clone(),
                })
            }),
            "terminal.reader.action_succeeded" => self.reader_event(true),
            "terminal.reader.action_failed" => self.reader_event(false),
            other => Ok(Normalised::Event(self.ignored(other)?)),
        }
    }

    fn session_event(
        &self,
        map: impl FnOnce(&Session) -> Result<(EventKind, Option<Money>), OutcomeError>,
    ) -> Result<Normalised, WebhookError> {
        let session: Session = self.parse_object()?;
        let (kind, amount) = map(&session).map_err(|source| self.invalid(source))?;
        let matches = payment_match(session.metadata.as_ref(), session.client_reference_id.as_deref(), &session.id)
            .map_err(|source| self.invalid(source))?;
        Ok(Normalised::Event(self.event(matches, kind, amount)?))
    }

    fn intent_event(
        &self,
        map: impl FnOnce(&PaymentIntent) -> Result<(EventKind, Option<Money>), OutcomeError>,
    ) -> Result<Normalised, WebhookError> {
        let intent: PaymentIntent = self.parse_object()?;
        let (kind, amount) = map(&intent).map_err(|source| self.invalid(source))?;
        let matches =
            payment_match(intent.metadata.as_ref(), None, &intent.id).map_err(|source| self.invalid(source))?;
        Ok(Normalised::Event(self.event(matches, kind, amount)?))
    }

    fn refund_event(&self) -> Result<Normalised, WebhookError> {
        let charge: Charge = self.parse_object()?;
        let total_refunded = from_stripe_amount(charge.amount_refunded, &charge.currency)
            .map_err(|source| self.invalid(source.into()))?;
        // Stripe copies a PaymentIntent's metadata to the charge it creates, so
        // the ids are here; the PaymentIntent id is the reference fallback.
        let reference = charge.payment_intent.as_ref().map_or(charge.id.as_str(), |intent| intent.id());
        let matches =
            payment_match(charge.metadata.as_ref(), None, reference).map_err(|source| self.invalid(source))?;
        let kind = EventKind::Refunded { total_refunded };
        Ok(Normalised::Event(self.event(matches, kind, Some(total_refunded))?))
    }

    fn dispute_event(
        &self,
        map: impl FnOnce(&Dispute) -> Result<EventKind, OutcomeError>,
    ) -> Result<Normalised, WebhookError> {
        let dispute: Dispute = self.parse_object()?;
        let kind = map(&dispute).map_err(|source| self.invalid(source))?;
        let amount =
            from_stripe_amount(dispute.amount, &dispute.currency).map_err(|source| self.invalid(source.into()))?;

        // A dispute carries no metadata of ours; its PaymentIntent does.
        let Some(intent) = &dispute.payment_intent else {
            let reference = dispute.charge.as_ref().map_or(dispute.id.as_str(), |charge| charge.id());
            let matches = payment_match(None, None, reference).map_err(|source| self.invalid(source))?;
            return Ok(Normalised::Event(self.event(matches, kind, Some(amount))?));
        };
        let matches = payment_match(None, None, intent.id()).map_err(|source| self.invalid(source))?;
        let draft = self.event(matches, kind, Some(amount))?;
        Ok(Normalised::NeedsPaymentIntent(PendingEvent {
            draft,
            payment_intent: intent.id().to_owned(),
            need: Need::Metadata,
        }))
    }

    fn reader_event(&self, succeeded: bool) -> Result<Normalised, WebhookError> {
        let reader: Reader = self.parse_object()?;
        let intent = reader
            .action
            .as_ref()
            .filter(|action| action.kind == "process_payment_intent")
            .and_then(|action| action.process_payment_intent.as_ref())
            .map(|process| process.payment_intent.id().to_owned());
        // Other reader actions (refunds, displays, setup intents) settle nothing here.
        let Some(intent) = intent else {
            return Ok(Normalised::Event(self.ignored(&self.event_type)?));
        };

        let matches = payment_match(None, None, &intent).map_err(|source| self.invalid(source))?;
        if !succeeded {
            let code = reader.action.as_ref().and_then(|action| action.failure_code.as_deref());
            tracing::info!(event_id = %self.id, reader = %reader.id, payment_intent = %intent, failure_code = code, "reader action failed");
            return Ok(Normalised::Event(self.event(matches, EventKind::Failed, None)?));
        }
        let draft = self.event(matches, EventKind::Pending, None)?;
        Ok(Normalised::NeedsPaymentIntent(PendingEvent { draft, payment_intent: intent, need: Need::Outcome }))
    }

    fn ignored(&self, provider_type: &str) -> Result<ProviderEvent, WebhookError> {
        let kind = EventKind::Ignored { provider_type: provider_type.to_owned() };
        self.event(PaymentMatch::default(), kind, None)
    }

    fn event(
        &self,
        matches: PaymentMatch,
        kind: EventKind,
        amount: Option<Money>,
    ) -> Result<ProviderEvent, WebhookError> {
        let event_id =
            EventId::new(self.id.clone()).map_err(|error| WebhookError::NotAnEvent { reason: error.to_string() })?;
        let occurred_at = OffsetDateTime::from_unix_timestamp(self.created).map_err(|_| WebhookError::NotAnEvent {
            reason: format!("created {} is not a valid time", self.created),
        })?;
        let provider =
            ProviderName::new(PROVIDER_NAME).map_err(|error| WebhookError::NotAnEvent { reason: error.to_string() })?;
        Ok(ProviderEvent {
            provider,
            event_id,
            occurred_at,
            matches,
            kind,
            amount,
            provider_type: self.event_type.clone(),
        })
    }

    fn parse_object<'a, T: Deserialize<'a>>(&'a self) -> Result<T, WebhookError> {
        serde_json::from_str(self.object.get()).map_err(|error| WebhookError::InvalidObject {
            event_id: self.id.clone(),
            event_type: self.event_type.clone(),
            source: OutcomeError::Unreadable { reason: error.to_string() },
        })
    }

    fn invalid(&self, source: OutcomeError) -> WebhookError {
        WebhookError::InvalidObject { event_id: self.id.clone(), event_type: self.event_type.clone(), source }
    }
}

/// The reason a webhook was rejected. Nothing from a rejected webhook is applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Signature(#[from] SignatureError),

    #[error("the webhook body is not UTF-8 (invalid byte at offset {valid_up_to}); Stripe sends JSON, so the body was altered on the way")]
    BodyNotUtf8 { valid_up_to: usize },

    #[error("the webhook body is not a Stripe event: {reason}")]
    NotAnEvent { reason: String },

    #[error("event {event_id} ({event_type}) cannot be read: {source}")]
    InvalidObject {
        event_id: String,
        event_type: String,
        #[source]
        source: OutcomeError,
    },
}
