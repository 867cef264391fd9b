//! The billing domain: invoices, payments, provider events, the credit
//! ledger and the payment log, with the rules that keep them one truth.
//!
//! This crate is pure. It performs no I/O and reads no clock or random
//! source except through the [`service::Clock`] and [`service::RandomSource`]
//! ports. Providers plug in through [`provider::PaymentProvider`] and
//! databases through [`store::Store`]; [`memory::MemoryStore`] is the
//! in-memory store for examples and tests. Everything a caller does goes
//! through [`service::BillingService`].
//!
//! **Architecture invariant:** no HTTP client, database driver or provider SDK
//! appears in this crate's dependencies.

#![forbid(unsafe_code)]

pub mod apply;
pub mod directory;
pub mod event;
pub mod ids;
pub mod invoice;
pub mod ledger;
pub mod log;
pub mod memory;
pub mod money;
pub mod payment;
pub mod provider;
pub mod service;
pub mod store;
pub mod testing;
pub mod token;

use serde::{Deserialize, Serialize};

pub use event::{EventKey, EventKind, PaymentMatch, ProviderEvent};
pub use ids::{
    CompanyId, ContentId, EventId, HoldId, IdempotencyKey, InvoiceId, LedgerEntryId, LogEntryId, PaymentId, ProjectId,
    ProviderName, ProviderReference, TenantId, UserId,
};
pub use invoice::{Invoice, InvoiceRow, InvoiceStatus, RowKind};
pub use money::{Currency, Money, MoneyError};
pub use payment::{Channel, ManualMethod, Payment, PaymentStatus};
pub use provider::{PaymentProvider, ProviderError, StartLine, StartOutcome, StartRequest, WebhookRequest};
pub use service::{BillingError, BillingService, CustomerContext, StaffContext};

/// The result of a state change that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The state changed now.
    Applied,
    /// The same change was applied before; nothing changed now.
    AlreadyApplied,
}
