//! Fixtures and signed webhook events built from them.
//!
//! The fixtures are the sample objects in `testdata/stripe`, compiled in so
//! that tests, examples and benchmarks read them without touching the file
//! system. [`event_envelope`] wraps an object the way Stripe does, with the
//! API version async-stripe pins, and [`signed_request`] signs the exact
//! bytes with a signing secret at a given timestamp.

use serde_json::{json, Value};

use billing_domain::WebhookRequest;

use super::state::FakeError;
use crate::signature::{sign, SIGNATURE_HEADER};

/// One sample object from `testdata/stripe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixture {
    Charge,
    CheckoutSession,
    Dispute,
    Event,
    PaymentIntent,
    Refund,
    TerminalReader,
}

impl Fixture {
    /// Returns the file name without `.json`, which is also Stripe's object name.
    pub fn name(self) -> &'static str {
        match self {
            Fixture::Charge => "charge",
            Fixture::CheckoutSession => "checkout.session",
            Fixture::Dispute => "dispute",
            Fixture::Event => "event",
            Fixture::PaymentIntent => "payment_intent",
            Fixture::Refund => "refund",
            Fixture::TerminalReader => "terminal.reader",
        }
    }

    /// Returns the fixture's text, exactly as in the file.
    pub fn text(self) -> &'static str {
        match self {
            Fixture::Charge => include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/charge.json")),
            Fixture::CheckoutSession => {
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/checkout.session.json"))
            }
            Fixture::Dispute => include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/dispute.json")),
            Fixture::Event => include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/event.json")),
            Fixture::PaymentIntent => {
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/payment_intent.json"))
            }
            Fixture::Refund => include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/refund.json")),
            Fixture::TerminalReader => {
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/stripe/terminal.reader.json"))
            }
        }
    }

    /// Parses the fixture, for a test to edit.
    ///
    /// # Errors
    ///
    /// [`FakeError::Fixture`] when the file is not JSON.
    pub fn load(self) -> Result<Value, FakeError> {
        serde_json::from_str(self.text())
            .map_err(|error| FakeError::Fixture { name: self.name(), reason: error.to_string() })
    }
}

/// Wraps `object` in an event envelope as Stripe sends it, rendered in the
/// API version async-stripe pins.
pub fn event_envelope(event_id: &str, event_type: &str, created: i64, object: Value) -> Value {
    json!({
        "id": event_id,
        "object": "event",
        "api_version": stripe_shared::version::VERSION.as_str(),
        "created": created,
        "data": { "object": object },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": event_type,
    })
}

/// Builds a webhook request carrying `body` as is, signed with `secret` at `timestamp`.
pub fn signed_request(body: Vec<u8>, secret: &str, timestamp: i64) -> WebhookRequest {
    let signature = sign(secret, timestamp, &body);
    WebhookRequest {
        headers: vec![
            ("Content-Type".to_owned(), "application/json; charset=utf-8".to_owned()),
            (SIGNATURE_HEADER.to_owned(), signature),
        ],
        query: None,
        body,
    }
}

/// Serialises `envelope` as Stripe does (pretty-printed) and signs it.
///
/// # Errors
///
/// [`FakeError::Serialise`] when the value cannot be written as JSON.
pub fn signed_event(envelope: &Value, secret: &str, timestamp: i64) -> Result<WebhookRequest, FakeError> {
    let body =
        serde_json::to_vec_pretty(envelope).map_err(|error| FakeError::Serialise { reason: error.to_string() })?;
    Ok(signed_request(body, secret, timestamp))
}
