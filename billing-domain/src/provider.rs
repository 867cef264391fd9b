//! The port every payment provider adapter implements.
//!
//! An adapter starts payments, turns verified webhooks into
//! [`ProviderEvent`]s and fetches a payment's current state for
//! reconciliation. It never touches the store: the service applies what the
//! adapter reports. An operation the provider does not offer returns
//! [`ProviderError::Unsupported`], never a silent success.

use std::fmt;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::ProviderEvent;
use crate::ids::{InvoiceId, PaymentId, ProviderName, ProviderReference, TenantId};
use crate::invoice::{InvoiceRow, RowKind};
use crate::money::{Money, MoneyError};
use crate::payment::{Channel, Payment};

/// The input a provider needs to start one payment. It carries opaque ids,
/// the amount and each row's kind and amounts, never row text, names or
/// e-mail, because providers show and store what they receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    pub tenant_id: TenantId,
    pub invoice_id: InvoiceId,
    pub payment_id: PaymentId,
    /// The invoice number, for generic line items ("Invoice 2026-0012") and references.
    pub invoice_number: String,
    pub amount: Money,
    /// The invoice's rows in order, as kinds and amounts, whose totals sum to
    /// `amount`. A provider that itemises its hosted page reads them; one
    /// that does not charges `amount` as a single line.
    pub lines: Vec<StartLine>,
    pub channel: Channel,
    /// The paying browser's IP address, where the provider requires one.
    pub customer_ip: Option<String>,
    /// Two-letter language code for the hosted page (`en`, `et`).
    pub locale: Option<String>,
    /// The service clock's reading when the payment started, for expiry times.
    pub requested_at: OffsetDateTime,
}

/// One invoice row as a provider may itemise it: its kind and amounts, never its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartLine {
    pub kind: RowKind,
    pub quantity: Decimal,
    pub unit_price: Money,
    /// Quantity times unit price.
    pub total: Money,
}

impl StartLine {
    /// Reads one invoice row.
    ///
    /// # Errors
    ///
    /// [`MoneyError`] when the row's total does not fit its currency's minor unit.
    pub fn from_row(row: &InvoiceRow) -> Result<StartLine, MoneyError> {
        Ok(StartLine { kind: row.kind(), quantity: row.quantity, unit_price: row.unit_price, total: row.line_total()? })
    }
}

/// A provider's reply to a start request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    /// Send the customer's browser to `url`.
    Redirect { url: String, reference: ProviderReference },
    /// Settled at once (zero total, staff-confirmed manual payment); apply `events`.
    Completed { reference: ProviderReference, events: Vec<ProviderEvent> },
    /// A card reader is processing it; the result arrives by webhook or fetch.
    TerminalStarted { reference: ProviderReference, reader: String },
}

/// A webhook request as received: the exact body bytes, headers and query string.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct WebhookRequest {
    pub headers: Vec<(String, String)>,
    /// The raw query string without `?`, if any.
    pub query: Option<String>,
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

impl fmt::Debug for WebhookRequest {
    /// Prints sizes only: bodies and signature headers are payloads and secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRequest")
            .field("headers", &self.headers.len())
            .field("query_bytes", &self.query.as_ref().map(String::len))
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// An operation name, for [`ProviderError::Unsupported`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    StartHostedPage,
    StartTerminal,
    StartFree,
    StartManual,
    Webhook,
    Fetch,
    Refund,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Operation::StartHostedPage => "start a hosted-page payment",
            Operation::StartTerminal => "start a terminal payment",
            Operation::StartFree => "complete a zero-total invoice",
            Operation::StartManual => "record a manual payment",
            Operation::Webhook => "receive webhooks",
            Operation::Fetch => "fetch a payment's state",
            Operation::Refund => "refund",
        };
        f.write_str(name)
    }
}

/// A failed provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    #[error("provider {provider} cannot {operation}")]
    Unsupported { provider: ProviderName, operation: Operation },

    /// The call may or may not have taken effect; the payment becomes `Unknown`.
    #[error(
        "provider {provider} did not answer in time during {during}; the outcome is unknown, reconcile by fetching"
    )]
    Timeout { provider: ProviderName, during: String },

    #[error("webhook rejected: {reason}")]
    InvalidWebhook { reason: String },

    #[error("provider {provider} rejected the request (status {status}): {message}")]
    Api { provider: ProviderName, status: u16, message: String },

    #[error("provider {provider} answered with something unexpected: {reason}")]
    UnexpectedResponse { provider: ProviderName, reason: String },

    #[error("cannot reach provider {provider}: {reason}")]
    Transport { provider: ProviderName, reason: String },

    #[error("invalid request for provider {provider}: {reason}")]
    InvalidRequest { provider: ProviderName, reason: String },

    #[error("payment {payment} has no provider reference to fetch by")]
    MissingReference { payment: PaymentId },
}

impl ProviderError {
    /// Whether the operation may have taken effect at the provider. The
    /// service then records the payment as `Unknown` instead of failed.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, ProviderError::Timeout { .. })
    }
}

/// A payment provider adapter.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The name events and payments carry (`stripe`, `maksekeskus`, `free`).
    fn name(&self) -> ProviderName;

    /// Starts a payment at the provider.
    ///
    /// # Errors
    ///
    /// [`ProviderError::Unsupported`] for a channel the provider lacks,
    /// [`ProviderError::Timeout`] when the outcome is unknown, and the other
    /// variants for definite failures.
    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError>;

    /// Verifies a webhook against its signature and normalises it. `now` is the
    /// clock reading used for replay tolerance. May return several events, or
    /// one `Ignored` event for a type the adapter does not handle.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidWebhook`] naming what was wrong.
    async fn verify_webhook(
        &self,
        request: &WebhookRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError>;

    /// Fetches the payment's current state and reports it as events.
    ///
    /// # Errors
    ///
    /// [`ProviderError::Timeout`] leaves the payment as it is.
    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError>;
}
