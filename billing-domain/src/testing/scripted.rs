//! A scripted payment provider for tests of the service and the stores.
//!
//! It behaves like a small hosted-page provider: starting a payment returns a
//! redirect, webhooks are JSON-encoded [`ProviderEvent`]s signed with
//! SHA-256 over a shared secret and the body, and a fetch reports whatever
//! state the test scripted for the payment's reference. Tests can make the
//! next start or fetch time out. It is not a provider integration: real
//! adapters live in their own crates.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::event::{EventKind, PaymentMatch, ProviderEvent};
use crate::ids::{EventId, IdError, ProviderName, ProviderReference};
use crate::payment::{Channel, Payment};
use crate::provider::{Operation, PaymentProvider, ProviderError, StartOutcome, StartRequest, WebhookRequest};

/// The header carrying the scripted signature.
pub const SIGNATURE_HEADER: &str = "x-scripted-signature";

#[derive(Debug, Default)]
struct Script {
    fail_next_start: Option<ProviderError>,
    fail_next_fetch: Option<ProviderError>,
    /// Scripted current state per reference, as (kind, amount) for fetches.
    states: HashMap<String, ProviderEvent>,
    starts: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub struct ScriptedProvider {
    name: ProviderName,
    secret: String,
    script: Mutex<Script>,
}

impl ScriptedProvider {
    /// A provider registered as `name` that accepts webhooks signed with `secret`.
    ///
    /// # Errors
    ///
    /// [`crate::ids::IdError`] for an invalid name.
    pub fn new(name: &str, secret: &str) -> Result<ScriptedProvider, crate::ids::IdError> {
        Ok(ScriptedProvider { name: ProviderName::new(name)?, secret: secret.to_owned(), script: Mutex::default() })
    }

    /// The reference this provider gives the payment with `payment_id`.
    ///
    /// # Errors
    ///
    /// None in practice: a formatted UUID is a valid reference.
    pub fn reference_for(payment_id: crate::ids::PaymentId) -> Result<ProviderReference, IdError> {
        ProviderReference::new(format!("ref-{payment_id}"))
    }

    /// Makes the next `start_payment` fail with `error`.
    pub fn fail_next_start(&self, error: ProviderError) {
        self.lock().fail_next_start = Some(error);
    }

    /// Makes the next `fetch_payment` fail with `error`.
    pub fn fail_next_fetch(&self, error: ProviderError) {
        self.lock().fail_next_fetch = Some(error);
    }

    /// Sets what a fetch of `reference` reports.
    pub fn script_state(&self, reference: &ProviderReference, event: ProviderEvent) {
        self.lock().states.insert(reference.as_str().to_owned(), event);
    }

    /// How many payments were started.
    pub fn starts(&self) -> usize {
        self.lock().starts
    }

    /// Builds a signed webhook request carrying `event`.
    ///
    /// # Errors
    ///
    /// [`serde_json::Error`] if the event cannot be encoded.
    pub fn signed_webhook(&self, event: &ProviderEvent) -> Result<WebhookRequest, serde_json::Error> {
        let body = serde_json::to_vec(event)?;
        Ok(WebhookRequest {
            headers: vec![(SIGNATURE_HEADER.to_owned(), signature(&self.secret, &body))],
            query: None,
            body,
        })
    }

    /// Builds an event about `payment` as this provider would report it.
    ///
    /// # Errors
    ///
    /// [`IdError`] for an empty or overlong `event_id`.
    pub fn event(
        &self,
        event_id: &str,
        payment: &Payment,
        kind: EventKind,
        amount: Option<crate::money::Money>,
    ) -> Result<ProviderEvent, IdError> {
        Ok(ProviderEvent {
            provider: self.name.clone(),
            event_id: EventId::new(event_id)?,
            occurred_at: payment.updated_at,
            matches: PaymentMatch {
                tenant_id: Some(payment.tenant_id),
                invoice_id: Some(payment.invoice_id),
                payment_id: Some(payment.id),
                reference: Some(ScriptedProvider::reference_for(payment.id)?),
            },
            kind,
            amount,
            provider_type: "scripted".into(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(secret.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

#[async_trait]
impl PaymentProvider for ScriptedProvider {
    fn name(&self) -> ProviderName {
        self.name.clone()
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let mut script = self.lock();
        script.starts += 1;
        if let Some(error) = script.fail_next_start.take() {
            return Err(error);
        }
        let invalid =
            |error: IdError| ProviderError::InvalidRequest { provider: self.name.clone(), reason: error.to_string() };
        let reference = ScriptedProvider::reference_for(request.payment_id).map_err(invalid)?;
        match &request.channel {
            Channel::HostedPage => {
                Ok(StartOutcome::Redirect { url: format!("https://pay.invalid/{reference}"), reference })
            }
            Channel::Terminal { reader } => Ok(StartOutcome::TerminalStarted { reference, reader: reader.clone() }),
            Channel::Free | Channel::Manual { .. } => {
                let event = ProviderEvent {
                    provider: self.name.clone(),
                    event_id: EventId::new(format!("complete:{}", request.payment_id)).map_err(invalid)?,
                    occurred_at: OffsetDateTime::UNIX_EPOCH,
                    matches: PaymentMatch {
                        tenant_id: Some(request.tenant_id),
                        invoice_id: Some(request.invoice_id),
                        payment_id: Some(request.payment_id),
                        reference: Some(reference.clone()),
                    },
                    kind: EventKind::Succeeded,
                    amount: Some(request.amount),
                    provider_type: "scripted.completed".into(),
                };
                Ok(StartOutcome::Completed { reference, events: vec![event] })
            }
        }
    }

    async fn verify_webhook(
        &self,
        request: &WebhookRequest,
        _now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        let Some(presented) = request.header(SIGNATURE_HEADER) else {
            return Err(ProviderError::InvalidWebhook { reason: format!("header {SIGNATURE_HEADER} is missing") });
        };
        if presented != signature(&self.secret, &request.body) {
            return Err(ProviderError::InvalidWebhook { reason: "signature does not match the body".into() });
        }
        let event: ProviderEvent = serde_json::from_slice(&request.body)
            .map_err(|error| ProviderError::InvalidWebhook { reason: format!("body is not an event: {error}") })?;
        if event.provider != self.name {
            return Err(ProviderError::InvalidWebhook { reason: format!("event is for provider {}", event.provider) });
        }
        Ok(vec![event])
    }

    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        let mut script = self.lock();
        if let Some(error) = script.fail_next_fetch.take() {
            return Err(error);
        }
        let Some(reference) = &payment.reference else {
            return Err(ProviderError::MissingReference { payment: payment.id });
        };
        match script.states.get(reference.as_str()) {
            Some(event) => Ok(vec![event.clone()]),
            None => Err(ProviderError::Unsupported { provider: self.name.clone(), operation: Operation::Fetch }),
        }
    }
}
