//! Integration tests of the Stripe adapter against the local fake Stripe.
//! Nothing here opens a connection outside 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// Creating Checkout Sessions: form fields, minor units, failures.
mod checkout;
/// Fetching state for return pages and reconciliation.
mod fetch;
/// Whole flows through the billing service.
mod flow;
/// One line item per invoice row, with Price and Product references.
mod line_items;
/// The fake Stripe's own behaviour and the helpers the walkthrough uses.
mod stand_in;
/// Shared set-up.
mod support;
/// Card-present payments on a reader.
mod terminal;
/// Signature verification and normalisation of every event type.
mod webhooks;
