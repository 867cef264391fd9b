//! The application layer: every use case of the library, over the ports.
//!
//! [`BillingService`] owns no state between calls. It reads the clock and
//! random source only through its ports, talks to providers only through
//! [`PaymentProvider`], and writes only through store transactions, so any
//! number of processes can run it against one shared store.
//!
//! Staff-only operations take a [`StaffContext`], which only
//! [`BillingService::staff_context`] and [`BillingService::create_tenant`]
//! construct after checking membership; a public or customer caller cannot
//! compile a call to them.

mod batch;
mod credits;
mod events;
mod invoices;
mod payments;
mod reconcile;
mod views;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::directory::Role;
use crate::event::EventKey;
use crate::ids::{CompanyId, IdError, InvoiceId, LogEntryId, PaymentId, ProviderName, TenantId, UserId};
use crate::invoice::{InvoiceError, InvoiceStatus};
use crate::ledger::LedgerError;
use crate::log::{Attention, LogEntry, LogOutcome, LogSource};
use crate::money::MoneyError;
use crate::payment::PaymentError;
use crate::provider::{PaymentProvider, ProviderError};
use crate::store::{Store, StoreError};

pub use credits::{Balance, CaptureReceipt};
pub use events::EventReport;
pub use invoices::{IssuedInvoice, NewInvoice};
pub use payments::{PaymentOptions, PaymentStart, ReturnStatus};
pub use reconcile::{ForcedOutcome, ReconcileReport};
pub use views::{
    ContentAccess, InvoiceSummary, InvoiceView, PublicEntry, PublicStatus, RowView, StaffInvoiceView, SIGN_IN_HINT,
};

/// How many times an operation that met a concurrent update is run again.
const CONFLICT_RETRIES: usize = 8;

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

/// A source of unpredictable bytes, for ids and public link tokens.
pub trait RandomSource: Send + Sync {
    fn fill_bytes(&self, destination: &mut [u8]);
}

/// Proof that a staff member of one tenant is acting. Only the service builds it.
///
/// Its fields are private, so code outside this crate cannot forge one:
///
/// ```compile_fail
/// use billing_domain::{StaffContext, TenantId, UserId};
/// let forged = StaffContext { tenant_id: TenantId::from_random_bytes([0; 16]), user_id: UserId::from_random_bytes([0; 16]) };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffContext {
    tenant_id: TenantId,
    user_id: UserId,
}

impl StaffContext {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    pub fn user_id(&self) -> UserId {
        self.user_id
    }
}

/// Proof that a member of one customer company is acting. Only the service builds it.
///
/// ```compile_fail
/// use billing_domain::{CompanyId, CustomerContext, TenantId, UserId};
/// let forged = CustomerContext {
///     tenant_id: TenantId::from_random_bytes([0; 16]),
///     user_id: UserId::from_random_bytes([0; 16]),
///     company_id: CompanyId::from_random_bytes([0; 16]),
/// };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerContext {
    tenant_id: TenantId,
    user_id: UserId,
    company_id: CompanyId,
}

impl CustomerContext {
    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }

    pub fn user_id(&self) -> UserId {
        self.user_id
    }

    pub fn company_id(&self) -> CompanyId {
        self.company_id
    }
}

/// An access check that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    #[error("user {user} is not a member of tenant {tenant}")]
    NotAMember { tenant: TenantId, user: UserId },

    #[error("user {user} is not staff of tenant {tenant}")]
    NotStaff { tenant: TenantId, user: UserId },

    #[error("user {user} is staff, not a customer, of tenant {tenant}; use the staff view")]
    NotACustomer { tenant: TenantId, user: UserId },

    /// Deliberately does not say whether the thing exists in another company.
    #[error("{what} is not visible to this user")]
    NotVisible { what: String },
}

/// Every error the service returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BillingError {
    #[error(transparent)]
    Invoice(#[from] InvoiceError),

    #[error(transparent)]
    Payment(#[from] PaymentError),

    #[error(transparent)]
    Ledger(#[from] LedgerError),

    #[error(transparent)]
    Money(#[from] MoneyError),

    #[error(transparent)]
    Id(#[from] IdError),

    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(transparent)]
    Provider(#[from] ProviderError),

    #[error(transparent)]
    Access(#[from] AccessError),

    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },

    #[error("no payment provider named {name} is configured")]
    UnknownProvider { name: ProviderName },

    #[error("invoice {invoice} is {status} and cannot be paid")]
    NotPayable { invoice: InvoiceId, status: InvoiceStatus },

    #[error("payment {payment} for invoice {invoice} is still in progress; wait for its result or reconcile it")]
    PaymentInProgress { invoice: InvoiceId, payment: PaymentId },

    #[error("invoice {invoice} totals {total}; {reason}")]
    ChannelNotAllowed { invoice: InvoiceId, total: String, reason: &'static str },

    #[error("payment {payment} could not be started: {source}")]
    StartFailed { payment: PaymentId, source: ProviderError },

    #[error("the public link does not exist")]
    PublicLinkNotFound,

    #[error("the public link is gone: the invoice is {status}")]
    PublicLinkGone { status: InvoiceStatus },

    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
}

impl BillingError {
    fn not_found(what: &'static str, id: impl fmt::Display) -> BillingError {
        BillingError::NotFound { what, id: id.to_string() }
    }
}

/// The billing use cases over one store, a set of providers, a clock and a random source.
#[derive(Clone)]
pub struct BillingService {
    store: Arc<dyn Store>,
    providers: HashMap<ProviderName, Arc<dyn PaymentProvider>>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn RandomSource>,
}

impl fmt::Debug for BillingService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut providers: Vec<&str> = self.providers.keys().map(ProviderName::as_str).collect();
        providers.sort_unstable();
        f.debug_struct("BillingService").field("providers", &providers).finish_non_exhaustive()
    }
}

impl BillingService {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, random: Arc<dyn RandomSource>) -> BillingService {
        BillingService { store, providers: HashMap::new(), clock, random }
    }

    /// Registers a provider under its own name, replacing one of the same name.
    pub fn with_provider(mut self, provider: Arc<dyn PaymentProvider>) -> BillingService {
        self.providers.insert(provider.name(), provider);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Names of the registered providers, sorted.
    pub fn provider_names(&self) -> Vec<ProviderName> {
        let mut names: Vec<ProviderName> = self.providers.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Builds a staff context after checking that `user` is staff of `tenant`.
    ///
    /// # Errors
    ///
    /// [`AccessError::NotAMember`] or [`AccessError::NotStaff`].
    pub async fn staff_context(&self, tenant: TenantId, user: UserId) -> Result<StaffContext, BillingError> {
        let membership = self.store.membership(tenant, user).await?;
        match membership.map(|membership| membership.role) {
            Some(Role::Staff) => Ok(StaffContext { tenant_id: tenant, user_id: user }),
            Some(Role::Customer { .. }) => Err(AccessError::NotStaff { tenant, user }.into()),
            None => Err(AccessError::NotAMember { tenant, user }.into()),
        }
    }

    /// Builds a customer context after checking that `user` belongs to a company of `tenant`.
    ///
    /// # Errors
    ///
    /// [`AccessError::NotAMember`] or [`AccessError::NotACustomer`].
    pub async fn customer_context(&self, tenant: TenantId, user: UserId) -> Result<CustomerContext, BillingError> {
        let membership = self.store.membership(tenant, user).await?;
        match membership.map(|membership| membership.role) {
            Some(Role::Customer { company_id }) => Ok(CustomerContext { tenant_id: tenant, user_id: user, company_id }),
            Some(Role::Staff) => Err(AccessError::NotACustomer { tenant, user }.into()),
            None => Err(AccessError::NotAMember { tenant, user }.into()),
        }
    }

    fn provider(&self, name: &ProviderName) -> Result<&Arc<dyn PaymentProvider>, BillingError> {
        self.providers.get(name).ok_or_else(|| BillingError::UnknownProvider { name: name.clone() })
    }

    fn random_16(&self) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        self.random.fill_bytes(&mut bytes);
        bytes
    }

    fn new_log_id(&self) -> LogEntryId {
        LogEntryId::from_random_bytes(self.random_16())
    }

    /// Runs `operation` again while it fails with a retryable store conflict.
    async fn with_retries<T, F, Fut>(&self, mut operation: F) -> Result<T, BillingError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BillingError>>,
    {
        let mut attempt = 1;
        loop {
            match operation().await {
                Err(BillingError::Store(error)) if error.is_retryable() && attempt < CONFLICT_RETRIES => {
                    tracing::debug!(attempt, %error, "retrying after a concurrent update");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// Fields of a log entry, filled in step by step.
#[derive(Debug, Clone)]
struct LogDraft {
    tenant_id: Option<TenantId>,
    invoice_id: Option<InvoiceId>,
    payment_id: Option<PaymentId>,
    provider: Option<ProviderName>,
    event: Option<EventKey>,
    source: LogSource,
    actor: Option<UserId>,
}

impl LogDraft {
    fn new(source: LogSource) -> LogDraft {
        LogDraft {
            tenant_id: None,
            invoice_id: None,
            payment_id: None,
            provider: None,
            event: None,
            source,
            actor: None,
        }
    }

    fn entry(&self, id: LogEntryId, outcome: LogOutcome, reason: String, open: bool, at: OffsetDateTime) -> LogEntry {
        LogEntry {
            id,
            tenant_id: self.tenant_id,
            invoice_id: self.invoice_id,
            payment_id: self.payment_id,
            provider: self.provider.clone(),
            event: self.event.clone(),
            source: self.source,
            outcome,
            reason,
            actor: self.actor,
            attention: if open { Attention::Open } else { Attention::NotNeeded },
            at,
        }
    }
}
