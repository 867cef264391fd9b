//! An in-memory [`Store`] for examples and tests.
//!
//! One async mutex guards the whole state, and a transaction holds it from
//! `begin` to `commit` or drop, so transactions run one at a time and are
//! trivially serialisable under any number of concurrent tasks. Writes go
//! straight to the guarded state and an undo journal records how to take
//! each back; dropping an uncommitted transaction replays the journal in
//! reverse. Nothing survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::apply::InvoiceCredits;
use crate::directory::{Company, Content, Membership, Project, Tenant};
use crate::event::{EventKey, ProviderEvent};
use crate::ids::{
    CompanyId, ContentId, HoldId, IdempotencyKey, InvoiceId, LogEntryId, PaymentId, ProjectId, ProviderName,
    ProviderReference, TenantId, UserId,
};
use crate::invoice::Invoice;
use crate::ledger::{AccountSnapshot, EntryKind, Hold, HoldStatus, IdempotencyRecord, LedgerEntry};
use crate::log::{Attention, InboxClaim, InboxEntry, InboxState, LogEntry};
use crate::payment::Payment;
use crate::store::{LogFilter, PaymentInsert, Store, StoreError, StoreTx};
use crate::token::TokenHash;

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, Tenant>,
    companies: HashMap<CompanyId, Company>,
    projects: BTreeMap<ProjectId, Project>,
    contents: HashMap<ContentId, Content>,
    memberships: HashMap<(TenantId, UserId), Membership>,
    invoices: HashMap<InvoiceId, Invoice>,
    payments: HashMap<PaymentId, Payment>,
    references: HashMap<(ProviderName, ProviderReference), PaymentId>,
    accounts: HashMap<TenantId, AccountSnapshot>,
    ledger: Vec<LedgerEntry>,
    idempotency: HashMap<(TenantId, IdempotencyKey), IdempotencyRecord>,
    holds: HashMap<HoldId, Hold>,
    inbox: HashMap<EventKey, InboxEntry>,
    log: Vec<LogEntry>,
}

/// How to take back one write.
#[derive(Debug)]
enum Undo {
    Tenant(TenantId, Option<Tenant>),
    Company(CompanyId, Option<Company>),
    Project(ProjectId, Option<Project>),
    Content(ContentId, Option<Content>),
    Membership((TenantId, UserId), Option<Membership>),
    Invoice(InvoiceId, Option<Invoice>),
    Payment(PaymentId, Option<Payment>),
    Reference((ProviderName, ProviderReference), Option<PaymentId>),
    Account(TenantId, Option<AccountSnapshot>),
    LedgerPush,
    Idempotency((TenantId, IdempotencyKey), Option<IdempotencyRecord>),
    Hold(HoldId, Option<Hold>),
    Inbox(EventKey, Option<InboxEntry>),
    LogPush,
    LogAttention(usize, Attention),
}

/// The in-memory store. Cloning shares the state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let guard = Arc::clone(&self.state).lock_owned().await;
        Ok(Box::new(MemoryTx { guard, journal: Vec::new(), committed: false }))
    }

    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        Ok(self.state.lock().await.tenants.get(&id).cloned())
    }

    async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError> {
        Ok(self.state.lock().await.companies.get(&id).cloned())
    }

    async fn membership(&self, tenant: TenantId, user: UserId) -> Result<Option<Membership>, StoreError> {
        Ok(self.state.lock().await.memberships.get(&(tenant, user)).cloned())
    }

    async fn projects_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Project>, StoreError> {
        let state = self.state.lock().await;
        let mut projects: Vec<Project> = state
            .projects
            .values()
            .filter(|project| project.tenant_id == tenant && project.company_id == company)
            .cloned()
            .collect();
        projects.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(projects)
    }

    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        Ok(self.state.lock().await.projects.get(&id).cloned())
    }

    async fn content(&self, id: ContentId) -> Result<Option<Content>, StoreError> {
        Ok(self.state.lock().await.contents.get(&id).cloned())
    }

    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        Ok(self.state.lock().await.invoices.get(&id).cloned())
    }

    async fn invoice_by_token(&self, hash: &TokenHash) -> Result<Option<Invoice>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.invoices.values().find(|invoice| invoice.public_token_hash() == Some(hash)).cloned())
    }

    async fn invoices_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Invoice>, StoreError> {
        let state = self.state.lock().await;
        let mut invoices: Vec<Invoice> = state
            .invoices
            .values()
            .filter(|invoice| invoice.tenant_id == tenant && invoice.company_id == company)
            .cloned()
            .collect();
        invoices.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(invoices)
    }

    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.state.lock().await.payments.get(&id).cloned())
    }

    async fn payment_by_reference(
        &self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<Payment>, StoreError> {
        let state = self.state.lock().await;
        let id = state.references.get(&(provider.clone(), reference.clone()));
        Ok(id.and_then(|id| state.payments.get(id)).cloned())
    }

    async fn payments_for_invoice(&self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        let state = self.state.lock().await;
        Ok(payments_of(&state, invoice))
    }

    async fn stale_payments(
        &self,
        tenant: Option<TenantId>,
        updated_before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        let state = self.state.lock().await;
        let mut stale: Vec<Payment> = state
            .payments
            .values()
            .filter(|payment| payment.status().is_in_flight() && payment.updated_at < updated_before)
            .filter(|payment| tenant.is_none_or(|tenant| payment.tenant_id == tenant))
            .cloned()
            .collect();
        stale.sort_by(|a, b| a.updated_at.cmp(&b.updated_at).then(a.id.cmp(&b.id)));
        stale.truncate(limit);
        Ok(stale)
    }

    async fn account(&self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        let state = self.state.lock().await;
        Ok(account_of(&state, tenant))
    }

    async fn ledger_entries(&self, tenant: TenantId) -> Result<Vec<LedgerEntry>, StoreError> {
        let state = self.state.lock().await;
        Ok(state.ledger.iter().filter(|entry| entry.tenant_id == tenant).cloned().collect())
    }

    async fn holds(&self, tenant: TenantId) -> Result<Vec<Hold>, StoreError> {
        let state = self.state.lock().await;
        let mut holds: Vec<Hold> = state.holds.values().filter(|hold| hold.tenant_id == tenant).cloned().collect();
        holds.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(holds)
    }

    async fn inbox_entry(&self, key: &EventKey) -> Result<Option<InboxEntry>, StoreError> {
        Ok(self.state.lock().await.inbox.get(key).cloned())
    }

    async fn unresolved_events_for_payment(&self, payment: PaymentId) -> Result<Vec<InboxEntry>, StoreError> {
        let state = self.state.lock().await;
        let reference =
            state.payments.get(&payment).and_then(|found| found.reference.clone().map(|r| (found.provider.clone(), r)));
        let mut entries: Vec<InboxEntry> = state
            .inbox
            .values()
            .filter(|entry| entry.state == InboxState::Unresolved)
            .filter(|entry| {
                entry.event.matches.payment_id == Some(payment)
                    || reference.as_ref().is_some_and(|(provider, reference)| {
                        &entry.event.provider == provider && entry.event.matches.reference.as_ref() == Some(reference)
                    })
            })
            .cloned()
            .collect();
        entries.sort_by(|a, b| a.received_at.cmp(&b.received_at).then(a.event.event_id.cmp(&b.event.event_id)));
        Ok(entries)
    }

    async fn log_entries(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        let state = self.state.lock().await;
        let limit = if filter.limit == 0 { usize::MAX } else { filter.limit };
        Ok(state
            .log
            .iter()
            .rev()
            .filter(|entry| filter.tenant_id.is_none_or(|tenant| entry.tenant_id == Some(tenant)))
            .filter(|entry| filter.invoice_id.is_none_or(|invoice| entry.invoice_id == Some(invoice)))
            .filter(|entry| filter.payment_id.is_none_or(|payment| entry.payment_id == Some(payment)))
            .filter(|entry| !filter.open_only || entry.attention == Attention::Open)
            .take(limit)
            .cloned()
            .collect())
    }
}

fn payments_of(state: &State, invoice: InvoiceId) -> Vec<Payment> {
    let mut payments: Vec<Payment> =
        state.payments.values().filter(|payment| payment.invoice_id == invoice).cloned().collect();
    payments.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    payments
}

fn account_of(state: &State, tenant: TenantId) -> AccountSnapshot {
    state.accounts.get(&tenant).copied().unwrap_or_else(|| {
        let policy = state.tenants.get(&tenant).map(|tenant| tenant.overdraft).unwrap_or_default();
        AccountSnapshot::empty(tenant, policy)
    })
}

/// A transaction over the in-memory state; see the module documentation.
#[derive(Debug)]
pub struct MemoryTx {
    guard: OwnedMutexGuard<State>,
    journal: Vec<Undo>,
    committed: bool,
}

impl MemoryTx {
    fn state(&mut self) -> &mut State {
        &mut self.guard
    }

    fn rollback(&mut self) {
        while let Some(undo) = self.journal.pop() {
            let state = &mut *self.guard;
            match undo {
                Undo::Tenant(key, old) => restore(&mut state.tenants, key, old),
                Undo::Company(key, old) => restore(&mut state.companies, key, old),
                Undo::Project(key, old) => {
                    match old {
                        Some(old) => state.projects.insert(key, old),
                        None => state.projects.remove(&key),
                    };
                }
                Undo::Content(key, old) => restore(&mut state.contents, key, old),
                Undo::Membership(key, old) => restore(&mut state.memberships, key, old),
                Undo::Invoice(key, old) => restore(&mut state.invoices, key, old),
                Undo::Payment(key, old) => restore(&mut state.payments, key, old),
                Undo::Reference(key, old) => restore(&mut state.references, key, old),
                Undo::Account(key, old) => restore(&mut state.accounts, key, old),
                Undo::LedgerPush => {
                    state.ledger.pop();
                }
                Undo::Idempotency(key, old) => restore(&mut state.idempotency, key, old),
                Undo::Hold(key, old) => restore(&mut state.holds, key, old),
                Undo::Inbox(key, old) => restore(&mut state.inbox, key, old),
                Undo::LogPush => {
                    state.log.pop();
                }
                Undo::LogAttention(index, old) => {
                    if let Some(entry) = state.log.get_mut(index) {
                        entry.attention = old;
                    }
                }
            }
        }
    }

    fn ensure_account(&mut self, tenant: TenantId) -> AccountSnapshot {
        let state = self.state();
        if let Some(account) = state.accounts.get(&tenant) {
            return *account;
        }
        let account = account_of(state, tenant);
        state.accounts.insert(tenant, account);
        self.journal.push(Undo::Account(tenant, None));
        account
    }

    fn set_account(&mut self, account: AccountSnapshot) {
        let old = self.state().accounts.insert(account.tenant_id, account);
        self.journal.push(Undo::Account(account.tenant_id, old));
    }

    fn resolve_where(&mut self, by: LogEntryId, matches: impl Fn(&LogEntry) -> bool) {
        let mut undo = Vec::new();
        for (index, entry) in self.guard.log.iter_mut().enumerate() {
            if entry.attention == Attention::Open && entry.id != by && matches(entry) {
                undo.push(Undo::LogAttention(index, entry.attention));
                entry.attention = Attention::Resolved { by };
            }
        }
        self.journal.extend(undo);
    }
}

fn restore<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, old: Option<V>) {
    match old {
        Some(old) => map.insert(key, old),
        None => map.remove(&key),
    };
}

impl Drop for MemoryTx {
    fn drop(&mut self) {
        if !self.committed {
            self.rollback();
        }
    }
}

fn check_version(what: &str, stored: Option<u64>, presented: u64) -> Result<(), StoreError> {
    match stored {
        None => Err(StoreError::NotFound { what: what.to_owned() }),
        Some(version) if version != presented => Err(StoreError::Conflict { what: what.to_owned() }),
        Some(_) => Ok(()),
    }
}

#[async_trait]
impl StoreTx for MemoryTx {
    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        if self.state().tenants.contains_key(&tenant.id) {
            return Err(StoreError::AlreadyExists { what: format!("tenant {}", tenant.id) });
        }
        self.state().tenants.insert(tenant.id, tenant.clone());
        self.journal.push(Undo::Tenant(tenant.id, None));
        Ok(())
    }

    async fn insert_company(&mut self, company: &Company) -> Result<(), StoreError> {
        let old = self.state().companies.insert(company.id, company.clone());
        self.journal.push(Undo::Company(company.id, old));
        Ok(())
    }

    async fn insert_project(&mut self, project: &Project) -> Result<(), StoreError> {
        let old = self.state().projects.insert(project.id, project.clone());
        self.journal.push(Undo::Project(project.id, old));
        Ok(())
    }

    async fn insert_content(&mut self, content: &Content) -> Result<(), StoreError> {
        let old = self.state().contents.insert(content.id, content.clone());
        self.journal.push(Undo::Content(content.id, old));
        Ok(())
    }

    async fn upsert_membership(&mut self, membership: &Membership) -> Result<(), StoreError> {
        let key = (membership.tenant_id, membership.user_id);
        let old = self.state().memberships.insert(key, membership.clone());
        self.journal.push(Undo::Membership(key, old));
        Ok(())
    }

    async fn claim_event(&mut self, event: &ProviderEvent, now: OffsetDateTime) -> Result<InboxClaim, StoreError> {
        let key = event.key();
        if let Some(existing) = self.state().inbox.get(&key).cloned() {
            return Ok(match existing.state {
                InboxState::Done => InboxClaim::Done(existing),
                InboxState::Unresolved => InboxClaim::Retry(existing),
            });
        }
        let entry = InboxEntry {
            event: event.clone(),
            state: InboxState::Unresolved,
            attempts: 0,
            received_at: now,
            updated_at: now,
        };
        self.state().inbox.insert(key.clone(), entry);
        self.journal.push(Undo::Inbox(key, None));
        Ok(InboxClaim::New)
    }

    async fn set_inbox_state(
        &mut self,
        key: &EventKey,
        state: InboxState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(entry) = self.state().inbox.get_mut(key) else {
            return Err(StoreError::NotFound { what: format!("inbox entry {key}") });
        };
        let old = entry.clone();
        entry.state = state;
        entry.attempts = entry.attempts.saturating_add(1);
        entry.updated_at = now;
        self.journal.push(Undo::Inbox(key.clone(), Some(old)));
        Ok(())
    }

    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        if self.state().invoices.contains_key(&invoice.id) {
            return Err(StoreError::AlreadyExists { what: format!("invoice {}", invoice.id) });
        }
        if let Some(hash) = invoice.public_token_hash() {
            if self.state().invoices.values().any(|other| other.public_token_hash() == Some(hash)) {
                return Err(StoreError::Constraint { constraint: "public token hash is unique".into() });
            }
        }
        self.state().invoices.insert(invoice.id, invoice.clone());
        self.journal.push(Undo::Invoice(invoice.id, None));
        Ok(())
    }

    async fn load_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        Ok(self.state().invoices.get(&id).cloned())
    }

    async fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        let what = format!("invoice {}", invoice.id);
        check_version(&what, self.state().invoices.get(&invoice.id).map(|stored| stored.version), invoice.version)?;
        if let Some(hash) = invoice.public_token_hash() {
            if self
                .state()
                .invoices
                .values()
                .any(|other| other.id != invoice.id && other.public_token_hash() == Some(hash))
            {
                return Err(StoreError::Constraint { constraint: "public token hash is unique".into() });
            }
        }
        let mut saved = invoice.clone();
        saved.version += 1;
        let old = self.state().invoices.insert(invoice.id, saved);
        self.journal.push(Undo::Invoice(invoice.id, old));
        Ok(())
    }

    async fn insert_payment(&mut self, payment: &Payment) -> Result<PaymentInsert, StoreError> {
        if self.state().payments.contains_key(&payment.id) {
            return Err(StoreError::AlreadyExists { what: format!("payment {}", payment.id) });
        }
        if let Some(reference) = &payment.reference {
            let key = (payment.provider.clone(), reference.clone());
            let state = &*self.guard;
            if let Some(existing) = state.references.get(&key).and_then(|id| state.payments.get(id)) {
                return Ok(PaymentInsert::ReferenceTaken(Box::new(existing.clone())));
            }
            self.state().references.insert(key.clone(), payment.id);
            self.journal.push(Undo::Reference(key, None));
        }
        self.state().payments.insert(payment.id, payment.clone());
        self.journal.push(Undo::Payment(payment.id, None));
        Ok(PaymentInsert::Inserted)
    }

    async fn load_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.state().payments.get(&id).cloned())
    }

    async fn peek_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        Ok(self.state().payments.get(&id).cloned())
    }

    async fn find_payment_id(
        &mut self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<PaymentId>, StoreError> {
        Ok(self.state().references.get(&(provider.clone(), reference.clone())).copied())
    }

    async fn payments_for_invoice(&mut self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        Ok(payments_of(self.state(), invoice))
    }

    async fn save_payment(&mut self, payment: &Payment) -> Result<(), StoreError> {
        let what = format!("payment {}", payment.id);
        let stored = self.state().payments.get(&payment.id).cloned();
        check_version(&what, stored.as_ref().map(|stored| stored.version), payment.version)?;
        if let Some(reference) = &payment.reference {
            let key = (payment.provider.clone(), reference.clone());
            match self.state().references.get(&key) {
                Some(owner) if *owner != payment.id => {
                    return Err(StoreError::Constraint {
                        constraint: format!("provider reference {reference} belongs to another payment"),
                    });
                }
                Some(_) => {}
                None => {
                    self.state().references.insert(key.clone(), payment.id);
                    self.journal.push(Undo::Reference(key, None));
                }
            }
        }
        let mut saved = payment.clone();
        saved.version += 1;
        let old = self.state().payments.insert(payment.id, saved);
        self.journal.push(Undo::Payment(payment.id, old));
        Ok(())
    }

    async fn load_account(&mut self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        Ok(self.ensure_account(tenant))
    }

    async fn invoice_credits(&mut self, invoice: InvoiceId) -> Result<InvoiceCredits, StoreError> {
        let mut credits = InvoiceCredits::default();
        for entry in &self.state().ledger {
            match &entry.kind {
                EntryKind::Grant { invoice_id, .. } if *invoice_id == invoice => {
                    credits.granted = credits.granted.saturating_add(entry.amount.unsigned_abs());
                }
                EntryKind::Reversal { invoice_id, .. } if *invoice_id == invoice => {
                    credits.reversed = credits.reversed.saturating_add(entry.amount.unsigned_abs());
                }
                _ => {}
            }
        }
        Ok(credits)
    }

    async fn append_ledger(&mut self, entry: &LedgerEntry) -> Result<(), StoreError> {
        let mut account = self.ensure_account(entry.tenant_id);
        let balance = account
            .balance
            .checked_add(entry.amount)
            .ok_or_else(|| StoreError::Constraint { constraint: "account balance overflow".into() })?;
        let floor = -i64::try_from(account.policy.limit).unwrap_or(i64::MAX);
        if entry.amount < 0 && balance < floor {
            return Err(StoreError::Constraint {
                constraint: format!("balance of tenant {} may not go below {floor}", entry.tenant_id),
            });
        }
        account.balance = balance;
        self.set_account(account);
        self.state().ledger.push(entry.clone());
        self.journal.push(Undo::LedgerPush);
        Ok(())
    }

    async fn idempotency_record(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.state().idempotency.get(&(tenant, key.clone())).cloned())
    }

    async fn insert_idempotency_record(&mut self, record: &IdempotencyRecord) -> Result<(), StoreError> {
        let key = (record.tenant_id, record.key.clone());
        if self.state().idempotency.contains_key(&key) {
            return Err(StoreError::AlreadyExists { what: format!("idempotency key {}", record.key) });
        }
        self.state().idempotency.insert(key.clone(), record.clone());
        self.journal.push(Undo::Idempotency(key, None));
        Ok(())
    }

    async fn load_hold(&mut self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        Ok(self.state().holds.get(&id).cloned())
    }

    async fn expired_open_holds(&mut self, tenant: TenantId, now: OffsetDateTime) -> Result<Vec<Hold>, StoreError> {
        let mut holds: Vec<Hold> = self
            .state()
            .holds
            .values()
            .filter(|hold| hold.tenant_id == tenant && hold.status == HoldStatus::Open && hold.expires_at <= now)
            .cloned()
            .collect();
        holds.sort_by(|a, b| a.expires_at.cmp(&b.expires_at).then(a.id.cmp(&b.id)));
        Ok(holds)
    }

    async fn save_hold(&mut self, hold: &Hold) -> Result<(), StoreError> {
        let old = self.state().holds.get(&hold.id).cloned();
        let was_open = old.as_ref().is_some_and(|old| old.status == HoldStatus::Open);
        let is_open = hold.status == HoldStatus::Open;
        let amount = i64::try_from(hold.amount)
            .map_err(|_| StoreError::Constraint { constraint: "hold amount too large".into() })?;
        let mut account = self.ensure_account(hold.tenant_id);
        match (was_open, is_open) {
            (false, true) => account.held = account.held.saturating_add(amount),
            (true, false) => account.held = account.held.saturating_sub(amount),
            _ => {}
        }
        self.set_account(account);
        self.state().holds.insert(hold.id, hold.clone());
        self.journal.push(Undo::Hold(hold.id, old));
        Ok(())
    }

    async fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.state().log.push(entry.clone());
        self.journal.push(Undo::LogPush);
        Ok(())
    }

    async fn resolve_log_for_event(&mut self, event: &EventKey, by: LogEntryId) -> Result<(), StoreError> {
        self.resolve_where(by, |entry| entry.event.as_ref() == Some(event));
        Ok(())
    }

    async fn resolve_log_for_payment(&mut self, payment: PaymentId, by: LogEntryId) -> Result<(), StoreError> {
        self.resolve_where(by, |entry| entry.payment_id == Some(payment));
        Ok(())
    }

    async fn resolve_log_entry(&mut self, id: LogEntryId, by: LogEntryId) -> Result<(), StoreError> {
        self.resolve_where(by, |entry| entry.id == id);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.committed = true;
        self.journal.clear();
        Ok(())
    }
}
