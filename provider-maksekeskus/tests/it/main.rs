//! Integration tests of the Maksekeskus provider. Nothing here leaves
//! 127.0.0.1: every API call goes to a `FakeMaksekeskus` the test starts.
//!
//! - `mac`: the published MAC vector, the signed fixtures and tampering.
//! - `messages`: returns and notifications through `verify_webhook`.
//! - `api`: creating, fetching and looking up transactions against the fake.
//! - `flow`: whole payments through `BillingService`, duplicates and mismatches.
//! - `refunds`: staff refunds and when they reverse credits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod flow;
mod mac;
mod messages;
mod refunds;
mod support;
