//! The Stripe adapter: Checkout, signed webhooks, refunds, disputes,
//! Terminal and fetches for reconciliation, behind the domain's
//! [`PaymentProvider`](billing_domain::PaymentProvider) port.
//!
//! [`StripeProvider`] starts payments (a Checkout Session for hosted pages, a
//! card-present PaymentIntent on a reader for Terminal), verifies and
//! normalises webhooks into [`ProviderEvent`](billing_domain::ProviderEvent)s,
//! and fetches a Checkout Session or PaymentIntent to report its state the
//! same way. The service applies what it reports; this crate never touches a
//! store and never decides that an invoice is paid.
//!
//! **Architecture invariant:** async-stripe types stay inside this crate; its
//! public API speaks the domain's types, plus [`StripeConfig`] and the typed
//! errors of this crate.
//!
//! What goes to Stripe is opaque: metadata carries only `tenant_id`,
//! `invoice_id` and `payment_id`, and line items show the invoice number and
//! row kinds, or the Prices and Products configured per row kind. Logs carry ids, never secrets or payloads.
//!
//! With the `test-server` feature, [`test_server`] offers a local stand-in
//! for the Stripe endpoints this crate calls and helpers that build signed
//! webhook events from the fixtures in `testdata/stripe`.

#![forbid(unsafe_code)]

mod amount;
mod checkout;
mod config;
mod fetch;
mod line_items;
mod outcome;
mod provider;
mod signature;
mod terminal;
mod webhook;
mod wire;

#[cfg(feature = "test-server")]
pub mod test_server;

pub use amount::{from_stripe_amount, stripe_unit, to_stripe_amount, AmountError, StripeUnit};
pub use config::{
    ConfigError, LineItemLabel, RowReference, Secret, StripeConfig, CHECKOUT_SESSION_ID_PLACEHOLDER,
    DEFAULT_REQUEST_TIMEOUT_SECS, DEFAULT_SIGNATURE_TOLERANCE_SECS,
};
pub use outcome::{OutcomeError, METADATA_INVOICE_ID, METADATA_PAYMENT_ID, METADATA_TENANT_ID};
pub use provider::StripeProvider;
pub use signature::{sign, SignatureError, SignatureHeader, SIGNATURE_HEADER};
pub use webhook::{Normalised, PendingEvent, VerifiedEvent, WebhookError, WebhookVerifier};

/// The name Stripe payments and events carry in the domain.
pub const PROVIDER_NAME: &str = "stripe";
