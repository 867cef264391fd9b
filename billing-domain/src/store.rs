//! Store ports: what the service needs from a database.
//!
//! All writes go through a [`StoreTx`]. Everything one provider event causes
//! (inbox entry, payment, invoice, ledger entries, log rows) is written in one
//! transaction and becomes visible at [`StoreTx::commit`]; dropping a
//! transaction without committing discards all of it. The `load_*` methods
//! lock what they return until the transaction ends, so concurrent writers to
//! one invoice or account are serialised. The service always locks in the
//! order invoice, payment, account, so two transactions cannot deadlock on
//! each other's locks.
//!
//! Reads outside a transaction ([`Store`]'s own methods) see committed data only.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::apply::InvoiceCredits;
use crate::directory::{Company, Content, Membership, Project, Tenant};
use crate::event::{EventKey, ProviderEvent};
use crate::ids::{
    CompanyId, ContentId, HoldId, IdempotencyKey, InvoiceId, LogEntryId, PaymentId, ProjectId, ProviderName,
    ProviderReference, TenantId, UserId,
};
use crate::invoice::Invoice;
use crate::ledger::{AccountSnapshot, Hold, IdempotencyRecord, LedgerEntry};
use crate::log::{InboxClaim, InboxEntry, InboxState, LogEntry};
use crate::payment::Payment;
use crate::token::TokenHash;

/// A failed store operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An optimistic version check or a serialisation failure; the whole
    /// operation may be retried from the start.
    #[error("concurrent update of {what}; retry the operation")]
    Conflict { what: String },

    #[error("{what} not found")]
    NotFound { what: String },

    #[error("{what} already exists")]
    AlreadyExists { what: String },

    /// A database constraint that backs a rule refused the write.
    #[error("the store refused the write: {constraint}")]
    Constraint { constraint: String },

    #[error("store unavailable: {reason}")]
    Unavailable { reason: String },

    #[error("stored data is corrupt: {reason}")]
    Corrupt { reason: String },
}

impl StoreError {
    /// Whether running the whole operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// The result of inserting a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentInsert {
    Inserted,
    /// A payment with the same provider and reference exists already.
    ReferenceTaken(Box<Payment>),
}

/// Rows a batched operation writes in one transaction, as the service decided them.
///
/// The store writes them in the order of the fields: payments and invoices
/// under the version rule of [`StoreTx::save_payment`], ledger entries with
/// their account balances, idempotency records, inbox states, log entries,
/// and last the resolutions, each of which marks every open log entry about
/// its event, except the entry `by` itself, as resolved by `by`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchWrites {
    pub payments: Vec<Payment>,
    pub invoices: Vec<Invoice>,
    pub ledger: Vec<LedgerEntry>,
    pub idempotency: Vec<IdempotencyRecord>,
    pub inbox: Vec<(EventKey, InboxState)>,
    pub log: Vec<LogEntry>,
    pub resolutions: Vec<(EventKey, LogEntryId)>,
}

/// A filter for the payment log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogFilter {
    pub tenant_id: Option<TenantId>,
    pub invoice_id: Option<InvoiceId>,
    pub payment_id: Option<PaymentId>,
    /// Only entries whose attention is open.
    pub open_only: bool,
    pub limit: usize,
}

/// A database holding the billing model.
#[async_trait]
pub trait Store: Send + Sync {
    /// Starts a transaction.
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;
    async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError>;
    async fn membership(&self, tenant: TenantId, user: UserId) -> Result<Option<Membership>, StoreError>;
    async fn projects_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Project>, StoreError>;
    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError>;
    async fn content(&self, id: ContentId) -> Result<Option<Content>, StoreError>;

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>, StoreError>;
    async fn invoice_by_token(&self, hash: &TokenHash) -> Result<Option<Invoice>, StoreError>;
    async fn invoices_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Invoice>, StoreError>;

    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError>;
    async fn payment_by_reference(
        &self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<Payment>, StoreError>;
    async fn payments_for_invoice(&self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError>;
    /// Payments still `Created`, `Pending` or `Unknown` whose last change is
    /// older than `updated_before`, oldest first.
    async fn stale_payments(
        &self,
        tenant: Option<TenantId>,
        updated_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError>;

    async fn account(&self, tenant: TenantId) -> Result<AccountSnapshot, StoreError>;
    /// Entries of one account, oldest first.
    async fn ledger_entries(&self, tenant: TenantId) -> Result<Vec<LedgerEntry>, StoreError>;
    async fn holds(&self, tenant: TenantId) -> Result<Vec<Hold>, StoreError>;

    async fn inbox_entry(&self, key: &EventKey) -> Result<Option<InboxEntry>, StoreError>;
    /// Inbox entries not yet resolved that name this payment, oldest first.
    async fn unresolved_events_for_payment(&self, payment: PaymentId) -> Result<Vec<InboxEntry>, StoreError>;
    /// Log entries matching `filter`, newest first.
    async fn log_entries(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError>;
}

/// One store transaction. Dropping it without [`StoreTx::commit`] rolls back.
#[async_trait]
pub trait StoreTx: Send {
    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError>;
    async fn insert_company(&mut self, company: &Company) -> Result<(), StoreError>;
    async fn insert_project(&mut self, project: &Project) -> Result<(), StoreError>;
    async fn insert_content(&mut self, content: &Content) -> Result<(), StoreError>;
    /// Inserts or replaces a membership.
    async fn upsert_membership(&mut self, membership: &Membership) -> Result<(), StoreError>;

    /// Inserts the event into the inbox, or locks the existing entry and
    /// returns its state. Concurrent claims of one key wait for each other.
    async fn claim_event(&mut self, event: &ProviderEvent, now: OffsetDateTime) -> Result<InboxClaim, StoreError>;
    async fn set_inbox_state(
        &mut self,
        key: &EventKey,
        state: InboxState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError>;
    /// Loads and locks an invoice.
    async fn load_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, StoreError>;
    /// Writes an invoice if its stored version equals `invoice.version`, then
    /// bumps the stored version.
    async fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError>;

    /// Inserts a payment unless one with the same provider and reference exists.
    async fn insert_payment(&mut self, payment: &Payment) -> Result<PaymentInsert, StoreError>;
    /// Loads and locks a payment.
    async fn load_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError>;
    /// Reads a payment without locking it, to learn its invoice before taking locks in order.
    async fn peek_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError>;
    /// Finds a payment's id by provider reference without locking it.
    async fn find_payment_id(
        &mut self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<PaymentId>, StoreError>;
    /// Payments of an invoice, read inside the transaction (the caller holds the invoice lock).
    async fn payments_for_invoice(&mut self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError>;
    /// Writes a payment under the same version rule as [`StoreTx::save_invoice`].
    async fn save_payment(&mut self, payment: &Payment) -> Result<(), StoreError>;

    /// Loads and locks a tenant's account, creating it with the tenant's policy if missing.
    async fn load_account(&mut self, tenant: TenantId) -> Result<AccountSnapshot, StoreError>;
    /// Credits granted and reversed so far for an invoice.
    async fn invoice_credits(&mut self, invoice: InvoiceId) -> Result<InvoiceCredits, StoreError>;
    /// Appends an entry and moves the account's balance by its amount.
    async fn append_ledger(&mut self, entry: &LedgerEntry) -> Result<(), StoreError>;
    async fn idempotency_record(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    async fn insert_idempotency_record(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError>;
    /// Loads and locks a hold.
    async fn load_hold(&mut self, id: HoldId) -> Result<Option<Hold>, StoreError>;
    /// Open holds of a tenant whose expiry is at or before `now`.
    async fn expired_open_holds(&mut self, tenant: TenantId, now: OffsetDateTime) -> Result<Vec<Hold>, StoreError>;
    /// Inserts or updates a hold and keeps the account's held total in step.
    async fn save_hold(&mut self, hold: &Hold) -> Result<(), StoreError>;

    async fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError>;
    /// Marks every open entry about `event` as resolved by the entry `by`.
    async fn resolve_log_for_event(&mut self, event: &EventKey, by: LogEntryId) -> Result<(), StoreError>;
    /// Marks every open entry about `payment` as resolved by the entry `by`.
    async fn resolve_log_for_payment(&mut self, payment: PaymentId, by: LogEntryId) -> Result<(), StoreError>;
    /// Marks one open entry as resolved by the entry `by`.
    async fn resolve_log_entry(&mut self, id: LogEntryId, by: LogEntryId) -> Result<(), StoreError>;

    /// Claims several events, in the order given; see [`StoreTx::claim_event`].
    /// Callers pass distinct keys sorted by key, so that two batches lock
    /// inbox rows in one order.
    async fn claim_events(
        &mut self,
        events: &[ProviderEvent],
        now: OffsetDateTime,
    ) -> Result<Vec<InboxClaim>, StoreError> {
        let mut claims = Vec::with_capacity(events.len());
        for event in events {
            claims.push(self.claim_event(event, now).await?);
        }
        Ok(claims)
    }

    /// Reads payments without locking them; missing ids are left out.
    async fn peek_payments(&mut self, ids: &[PaymentId]) -> Result<Vec<Payment>, StoreError> {
        let mut payments = Vec::with_capacity(ids.len());
        for id in ids {
            payments.extend(self.peek_payment(*id).await?);
        }
        Ok(payments)
    }

    /// Loads and locks invoices in the order given (callers sort them by id);
    /// missing ids are left out.
    async fn load_invoices(&mut self, ids: &[InvoiceId]) -> Result<Vec<Invoice>, StoreError> {
        let mut invoices = Vec::with_capacity(ids.len());
        for id in ids {
            invoices.extend(self.load_invoice(*id).await?);
        }
        Ok(invoices)
    }

    /// Loads and locks payments in the order given (callers sort them by id);
    /// missing ids are left out.
    async fn load_payments(&mut self, ids: &[PaymentId]) -> Result<Vec<Payment>, StoreError> {
        let mut payments = Vec::with_capacity(ids.len());
        for id in ids {
            payments.extend(self.load_payment(*id).await?);
        }
        Ok(payments)
    }

    /// Loads and locks accounts in the order given (callers sort them), as
    /// [`StoreTx::load_account`] does for one.
    async fn load_accounts(&mut self, tenants: &[TenantId]) -> Result<Vec<AccountSnapshot>, StoreError> {
        let mut accounts = Vec::with_capacity(tenants.len());
        for tenant in tenants {
            accounts.push(self.load_account(*tenant).await?);
        }
        Ok(accounts)
    }

    /// [`StoreTx::invoice_credits`] for several invoices, in the order given.
    async fn invoice_credits_of(&mut self, invoices: &[InvoiceId]) -> Result<Vec<InvoiceCredits>, StoreError> {
        let mut credits = Vec::with_capacity(invoices.len());
        for invoice in invoices {
            credits.push(self.invoice_credits(*invoice).await?);
        }
        Ok(credits)
    }

    /// The stored records of those of `keys` that the tenant has used.
    async fn idempotency_records(
        &mut self,
        tenant: TenantId,
        keys: &[IdempotencyKey],
    ) -> Result<Vec<IdempotencyRecord>, StoreError> {
        let mut records = Vec::new();
        for key in keys {
            records.extend(self.idempotency_record(tenant, key).await?);
        }
        Ok(records)
    }

    /// Writes what a batched operation decided; see [`BatchWrites`].
    async fn write_batch(&mut self, writes: &BatchWrites, now: OffsetDateTime) -> Result<(), StoreError> {
        for payment in &writes.payments {
            self.save_payment(payment).await?;
        }
        for invoice in &writes.invoices {
            self.save_invoice(invoice).await?;
        }
        for entry in &writes.ledger {
            self.append_ledger(entry).await?;
        }
        for record in &writes.idempotency {
            self.insert_idempotency_record(record).await?;
        }
        for (key, state) in &writes.inbox {
            self.set_inbox_state(key, *state, now).await?;
        }
        for entry in &writes.log {
            self.append_log(entry).await?;
        }
        for (event, by) in &writes.resolutions {
            self.resolve_log_for_event(event, *by).await?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}
