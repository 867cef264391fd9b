//! Provider events: what a provider reported, normalised.
//!
//! Adapters build these from verified webhooks and from status fetches alike,
//! so the service applies both through one path. An event is a claim until the
//! service has matched it to a payment and checked its amount and currency.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{EventId, InvoiceId, PaymentId, ProviderName, ProviderReference, TenantId};
use crate::money::Money;

/// What happened, in the provider-neutral vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The money arrived.
    Succeeded,
    /// The customer is on their way (redirected, or an asynchronous method).
    Pending,
    Failed,
    Expired,
    Canceled,
    /// The cumulative refunded amount is now `total_refunded`.
    Refunded {
        total_refunded: Money,
    },
    DisputeOpened,
    DisputeWon,
    DisputeLost,
    /// A notification the library does not act on; kept in the log.
    Ignored {
        provider_type: String,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Succeeded => "succeeded",
            EventKind::Pending => "pending",
            EventKind::Failed => "failed",
            EventKind::Expired => "expired",
            EventKind::Canceled => "canceled",
            EventKind::Refunded { .. } => "refunded",
            EventKind::DisputeOpened => "dispute_opened",
            EventKind::DisputeWon => "dispute_won",
            EventKind::DisputeLost => "dispute_lost",
            EventKind::Ignored { .. } => "ignored",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to find the payment an event is about. Metadata ids win; the provider
/// reference is the fallback.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PaymentMatch {
    pub tenant_id: Option<TenantId>,
    pub invoice_id: Option<InvoiceId>,
    pub payment_id: Option<PaymentId>,
    pub reference: Option<ProviderReference>,
}

/// One normalised provider report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderEvent {
    pub provider: ProviderName,
    /// Unique per provider; the inbox key.
    pub event_id: EventId,
    /// When the provider says it happened.
    pub occurred_at: OffsetDateTime,
    pub matches: PaymentMatch,
    pub kind: EventKind,
    /// The amount the provider says moved, when it says one.
    pub amount: Option<Money>,
    /// The provider's own name for the event (`checkout.session.completed`).
    pub provider_type: String,
}

impl ProviderEvent {
    pub fn key(&self) -> EventKey {
        EventKey { provider: self.provider.clone(), event_id: self.event_id.clone() }
    }
}

/// `(provider, event id)`: unique in the inbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct EventKey {
    pub provider: ProviderName,
    pub event_id: EventId,
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.event_id)
    }
}
