//! Maksekeskus (MakeCommerce) as a payment provider: hosted-page
//! transactions, MAC-verified return and notification messages, status
//! fetches for reconciliation, and staff refunds.
//!
//! [`MaksekeskusProvider`] implements [`billing_domain::PaymentProvider`]. It
//! creates a transaction over HTTPS with HTTP Basic auth, sends the buyer to
//! the hosted page Maksekeskus names, and turns `payment_return` and
//! `token_return` messages and fetched transactions into provider events whose
//! ids are `{transaction id}:{status}`, so a browser return, a server
//! notification and a fetch of the same state apply once.
//!
//! **Architecture invariant:** this crate never writes to a store and never
//! applies an event itself; it reports events and the service applies them.
//! It trusts a message only after its MAC has been checked over the exact
//! `json` text received, and it never logs the secret key, a message or
//! personal data.
//!
//! With the `test-server` feature, [`test_server::FakeMaksekeskus`] is a
//! stand-in for the Maksekeskus API on 127.0.0.1 for tests and examples.

#![forbid(unsafe_code)]

mod amount;
mod client;
mod config;
mod events;
pub mod mac;
pub mod message;
mod provider;
mod refund;
mod status;
mod timestamp;

#[cfg(feature = "test-server")]
pub mod test_server;

pub use amount::AmountError;
pub use config::{
    CallbackMethod, CallbackUrl, ConfigError, Environment, MaksekeskusConfig, SecretKey, TransactionUrls,
    DEFAULT_REQUEST_TIMEOUT, LIVE_API_BASE, PROVIDER_NAME, TEST_API_BASE,
};
pub use events::EventError;
pub use message::WebhookError;
pub use provider::MaksekeskusProvider;
pub use refund::{Refund, RefundReport};
pub use status::{RefundStatus, TransactionStatus, UnknownStatus};
pub use timestamp::TimestampError;
