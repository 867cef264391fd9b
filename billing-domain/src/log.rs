//! The payment log and the provider-event inbox.
//!
//! The log records every received event and every decision with its outcome
//! and reason. It is the audit trail and the staff reconciliation queue in
//! one: entries that need a person carry [`Attention::Open`] until a later
//! entry resolves them. Entries never hold raw payloads, secrets or personal data.
//!
//! The inbox holds each verified provider event once, keyed by
//! `(provider, event id)`, with the state of its processing, so a redelivery
//! is recognised and a parked event can be retried.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::event::{EventKey, ProviderEvent};
use crate::ids::{InvoiceId, LogEntryId, PaymentId, ProviderName, TenantId, UserId};

/// What became of an event or action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogOutcome {
    /// It changed state.
    Applied,
    /// The same event was already processed; nothing changed.
    Duplicate,
    /// Valid, but nothing to do (a late "pending", an unhandled event type).
    Ignored,
    /// It failed verification, or its amount or currency does not match the payment.
    Rejected,
    /// No payment matches its ids or reference.
    Unmatched,
    /// It cannot apply yet (a refund before its success); resolve by fetching.
    Parked,
    /// Applying it failed for a reason other than the above.
    Failed,
}

impl LogOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LogOutcome::Applied => "applied",
            LogOutcome::Duplicate => "duplicate",
            LogOutcome::Ignored => "ignored",
            LogOutcome::Rejected => "rejected",
            LogOutcome::Unmatched => "unmatched",
            LogOutcome::Parked => "parked",
            LogOutcome::Failed => "failed",
        }
    }
}

impl fmt::Display for LogOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a person must look at an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Attention {
    NotNeeded,
    Open,
    /// Resolved by the entry `by`.
    Resolved {
        by: LogEntryId,
    },
}

/// What produced a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    Webhook,
    /// A fetch of the provider's state (return URL, reconciliation).
    Fetch,
    /// A provider's immediate answer when a payment starts.
    Start,
    /// A staff action.
    Staff,
    /// A scheduled or internal step.
    System,
}

/// One row of the payment log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: LogEntryId,
    pub tenant_id: Option<TenantId>,
    pub invoice_id: Option<InvoiceId>,
    pub payment_id: Option<PaymentId>,
    pub provider: Option<ProviderName>,
    pub event: Option<EventKey>,
    pub source: LogSource,
    pub outcome: LogOutcome,
    /// A plain sentence; never a payload or personal data.
    pub reason: String,
    /// The staff member who acted, for staff entries.
    pub actor: Option<UserId>,
    pub attention: Attention,
    pub at: OffsetDateTime,
}

/// How far the processing of an inbox event got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxState {
    /// It took effect, or there was nothing to do; a redelivery is a duplicate.
    Done,
    /// It has not taken effect (parked, unmatched, rejected, failed); a
    /// redelivery or a staff retry tries again.
    Unresolved,
}

/// A verified provider event as the inbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub event: ProviderEvent,
    pub state: InboxState,
    pub attempts: u32,
    pub received_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What claiming an event in the inbox found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboxClaim {
    /// First delivery; the entry now exists (until the transaction rolls back).
    New,
    /// Seen before without effect; try again.
    Retry(InboxEntry),
    /// Seen before and done; a duplicate.
    Done(InboxEntry),
}
