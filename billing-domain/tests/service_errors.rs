//! Error paths of the service that the behaviour suite does not reach:
//! each returns its typed error and changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::directory::{Company, Content, Membership, Project, Tenant};
use billing_domain::event::EventKey;
use billing_domain::ids::{
    CompanyId, ContentId, HoldId, InvoiceId, PaymentId, ProjectId, ProviderReference, TenantId, UserId,
};
use billing_domain::ledger::{AccountSnapshot, ConsumptionRequest, Hold, LedgerEntry, LedgerError};
use billing_domain::log::{InboxEntry, LogEntry};
use billing_domain::memory::MemoryStore;
use billing_domain::provider::{MockPaymentProvider, Operation};
use billing_domain::store::{LogFilter, Store, StoreError, StoreTx};
use billing_domain::testing::suite::Fixture;
use billing_domain::token::TokenHash;
use billing_domain::{BillingError, IdempotencyKey, Invoice, Payment, ProviderError, ProviderName};
use time::OffsetDateTime;

#[tokio::test]
async fn unknown_hold_is_not_found() {
    let fixture = Fixture::new(Arc::new(MemoryStore::new())).await;
    let hold = HoldId::from_random_bytes([5; 16]);

    let capture = fixture.service.capture_hold(fixture.tenant, hold, 1).await.unwrap_err();
    let release = fixture.service.release_hold(fixture.tenant, hold).await.unwrap_err();

    assert_eq!(capture, BillingError::Ledger(LedgerError::HoldNotFound { hold }));
    assert_eq!(release, BillingError::Ledger(LedgerError::HoldNotFound { hold }));
}

#[tokio::test]
async fn adjustment_needs_reason_and_amount() {
    let fixture = Fixture::new(Arc::new(MemoryStore::new())).await;

    let no_reason = fixture.service.adjust_credits(&fixture.staff, 10, "  ").await.unwrap_err();
    let zero = fixture.service.adjust_credits(&fixture.staff, 0, "goodwill").await.unwrap_err();
    let overdraw = fixture.service.adjust_credits(&fixture.staff, -1, "correction").await.unwrap_err();
    let entry = fixture.service.adjust_credits(&fixture.staff, 15, "goodwill after outage").await.unwrap();

    assert_eq!(no_reason, BillingError::Ledger(LedgerError::InvalidAdjustment));
    assert_eq!(zero, BillingError::Ledger(LedgerError::InvalidAdjustment));
    assert!(matches!(overdraw, BillingError::Ledger(LedgerError::InsufficientCredits { .. })));
    assert_eq!(entry.amount, 15);
    assert_eq!(fixture.balance().await, 15);
}

#[tokio::test]
async fn terminal_payment_of_zero_total_is_not_allowed() {
    let fixture = Fixture::new(Arc::new(MemoryStore::new())).await;
    let issued = fixture.issued("0", 0).await;

    let error = fixture
        .service
        .start_terminal_payment(&fixture.staff, issued.invoice.id, &fixture.provider_name(), "tmr_1")
        .await
        .unwrap_err();
    let empty_reader = fixture
        .service
        .start_terminal_payment(&fixture.staff, issued.invoice.id, &fixture.provider_name(), " ")
        .await
        .unwrap_err();

    assert!(matches!(error, BillingError::ChannelNotAllowed { .. }), "{error:?}");
    assert!(matches!(empty_reader, BillingError::InvalidInput { .. }));
    assert_eq!(fixture.provider.starts(), 0);
}

#[tokio::test]
async fn unsupported_fetch_is_reported_without_failing_the_payment() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let fixture = Fixture::new(store.clone()).await;
    let issued = fixture.issued("20.00", 0).await;
    let payment = fixture.start(&issued).await;
    let mut mock = MockPaymentProvider::new();
    mock.expect_name().returning(|| ProviderName::new("scripted").unwrap());
    mock.expect_fetch_payment().times(1).returning(|_| {
        Err(ProviderError::Unsupported {
            provider: ProviderName::new("scripted").unwrap(),
            operation: Operation::Fetch,
        })
    });
    let service = fixture.service.clone().with_provider(Arc::new(mock));

    let report = service.reconcile_payment(&fixture.staff, payment.id).await.unwrap();

    assert!(report.fetch_error.unwrap().contains("cannot fetch"));
    assert_eq!(report.payment.status(), payment.status());
}

#[tokio::test]
async fn unknown_provider_is_rejected_before_any_write() {
    let fixture = Fixture::new(Arc::new(MemoryStore::new())).await;
    let issued = fixture.issued("20.00", 0).await;
    let nobody = ProviderName::new("nobody").unwrap();

    let error =
        fixture.service.start_public_payment(issued.token.expose(), &nobody, Default::default()).await.unwrap_err();

    assert_eq!(error, BillingError::UnknownProvider { name: nobody });
    assert!(fixture.service.store().payments_for_invoice(issued.invoice.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_update_conflict_is_retried() {
    let flaky = Arc::new(FlakyStore { inner: MemoryStore::new(), conflicts_left: AtomicUsize::new(0) });
    let fixture = Fixture::new(flaky.clone()).await;
    fixture.paid("20.00", 10).await;
    flaky.conflicts_left.store(3, Ordering::SeqCst);
    let request = ConsumptionRequest {
        tenant_id: fixture.tenant,
        module: "render".into(),
        amount: 4,
        idempotency_key: IdempotencyKey::new("retried").unwrap(),
    };

    let receipt = fixture.service.consume_credits(&request).await.unwrap();

    assert_eq!(receipt.balance_after, 6);
    assert_eq!(flaky.conflicts_left.load(Ordering::SeqCst), 0);
    assert_eq!(fixture.balance().await, 6, "three rolled-back attempts left no trace");
}

#[tokio::test]
async fn endless_conflicts_give_up_with_store_error() {
    let flaky = Arc::new(FlakyStore { inner: MemoryStore::new(), conflicts_left: AtomicUsize::new(0) });
    let fixture = Fixture::new(flaky.clone()).await;
    fixture.paid("20.00", 10).await;
    flaky.conflicts_left.store(usize::MAX, Ordering::SeqCst);
    let request = ConsumptionRequest {
        tenant_id: fixture.tenant,
        module: "render".into(),
        amount: 1,
        idempotency_key: IdempotencyKey::new("never").unwrap(),
    };

    let error = fixture.service.consume_credits(&request).await.unwrap_err();

    assert!(
        matches!(error, BillingError::Store(StoreError::Conflict { .. })),
        "gives up after bounded retries: {error:?}"
    );
}

/// A store whose commits fail with a conflict while `conflicts_left` is above zero.
struct FlakyStore {
    inner: MemoryStore,
    conflicts_left: AtomicUsize,
}

struct FlakyTx {
    inner: Box<dyn StoreTx>,
    fail: bool,
}

#[async_trait]
impl Store for FlakyStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let fail =
            self.conflicts_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok();
        Ok(Box::new(FlakyTx { inner: self.inner.begin().await?, fail }))
    }
    async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        self.inner.tenant(id).await
    }
    async fn company(&self, id: CompanyId) -> Result<Option<Company>, StoreError> {
        self.inner.company(id).await
    }
    async fn membership(&self, tenant: TenantId, user: UserId) -> Result<Option<Membership>, StoreError> {
        self.inner.membership(tenant, user).await
    }
    async fn projects_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Project>, StoreError> {
        self.inner.projects_for_company(tenant, company).await
    }
    async fn project(&self, id: ProjectId) -> Result<Option<Project>, StoreError> {
        self.inner.project(id).await
    }
    async fn content(&self, id: ContentId) -> Result<Option<Content>, StoreError> {
        self.inner.content(id).await
    }
    async fn invoice(&self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        self.inner.invoice(id).await
    }
    async fn invoice_by_token(&self, hash: &TokenHash) -> Result<Option<Invoice>, StoreError> {
        self.inner.invoice_by_token(hash).await
    }
    async fn invoices_for_company(&self, tenant: TenantId, company: CompanyId) -> Result<Vec<Invoice>, StoreError> {
        self.inner.invoices_for_company(tenant, company).await
    }
    async fn payment(&self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        self.inner.payment(id).await
    }
    async fn payment_by_reference(
        &self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<Payment>, StoreError> {
        self.inner.payment_by_reference(provider, reference).await
    }
    async fn payments_for_invoice(&self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        self.inner.payments_for_invoice(invoice).await
    }
    async fn stale_payments(
        &self,
        tenant: Option<TenantId>,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<Payment>, StoreError> {
        self.inner.stale_payments(tenant, before, limit).await
    }
    async fn account(&self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        self.inner.account(tenant).await
    }
    async fn ledger_entries(&self, tenant: TenantId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.inner.ledger_entries(tenant).await
    }
    async fn holds(&self, tenant: TenantId) -> Result<Vec<Hold>, StoreError> {
        self.inner.holds(tenant).await
    }
    async fn inbox_entry(&self, key: &EventKey) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.inbox_entry(key).await
    }
    async fn unresolved_events_for_payment(&self, payment: PaymentId) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner.unresolved_events_for_payment(payment).await
    }
    async fn log_entries(&self, filter: &LogFilter) -> Result<Vec<LogEntry>, StoreError> {
        self.inner.log_entries(filter).await
    }
}

/// Delegates every call and fails `commit` when told to; dropping the inner
/// transaction then rolls it back like a real database would.
#[async_trait]
impl StoreTx for FlakyTx {
    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.inner.insert_tenant(tenant).await
    }

    async fn insert_company(&mut self, company: &Company) -> Result<(), StoreError> {
        self.inner.insert_company(company).await
    }

    async fn insert_project(&mut self, project: &Project) -> Result<(), StoreError> {
        self.inner.insert_project(project).await
    }

    async fn insert_content(&mut self, content: &Content) -> Result<(), StoreError> {
        self.inner.insert_content(content).await
    }

    async fn upsert_membership(&mut self, membership: &Membership) -> Result<(), StoreError> {
        self.inner.upsert_membership(membership).await
    }

    async fn claim_event(
        &mut self,
        event: &billing_domain::ProviderEvent,
        now: OffsetDateTime,
    ) -> Result<billing_domain::log::InboxClaim, StoreError> {
        self.inner.claim_event(event, now).await
    }

    async fn set_inbox_state(
        &mut self,
        key: &EventKey,
        state: billing_domain::log::InboxState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.inner.set_inbox_state(key, state, now).await
    }

    async fn insert_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        self.inner.insert_invoice(invoice).await
    }

    async fn load_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
        self.inner.load_invoice(id).await
    }

    async fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), StoreError> {
        self.inner.save_invoice(invoice).await
    }

    async fn insert_payment(&mut self, payment: &Payment) -> Result<billing_domain::store::PaymentInsert, StoreError> {
        self.inner.insert_payment(payment).await
    }

    async fn load_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        self.inner.load_payment(id).await
    }

    async fn peek_payment(&mut self, id: PaymentId) -> Result<Option<Payment>, StoreError> {
        self.inner.peek_payment(id).await
    }

    async fn find_payment_id(
        &mut self,
        provider: &ProviderName,
        reference: &ProviderReference,
    ) -> Result<Option<PaymentId>, StoreError> {
        self.inner.find_payment_id(provider, reference).await
    }

    async fn payments_for_invoice(&mut self, invoice: InvoiceId) -> Result<Vec<Payment>, StoreError> {
        self.inner.payments_for_invoice(invoice).await
    }

    async fn save_payment(&mut self, payment: &Payment) -> Result<(), StoreError> {
        self.inner.save_payment(payment).await
    }

    async fn load_account(&mut self, tenant: TenantId) -> Result<AccountSnapshot, StoreError> {
        self.inner.load_account(tenant).await
    }

    async fn invoice_credits(
        &mut self,
        invoice: InvoiceId,
    ) -> Result<billing_domain::apply::InvoiceCredits, StoreError> {
        self.inner.invoice_credits(invoice).await
    }

    async fn append_ledger(&mut self, entry: &LedgerEntry) -> Result<(), StoreError> {
        self.inner.append_ledger(entry).await
    }

    async fn idempotency_record(
        &mut self,
        tenant: TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<billing_domain::ledger::IdempotencyRecord>, StoreError> {
        self.inner.idempotency_record(tenant, key).await
    }

    async fn insert_idempotency_record(
        &mut self,
        record: &billing_domain::ledger::IdempotencyRecord,
    ) -> Result<(), StoreError> {
        self.inner.insert_idempotency_record(record).await
    }

    async fn load_hold(&mut self, id: HoldId) -> Result<Option<Hold>, StoreError> {
        self.inner.load_hold(id).await
    }

    async fn expired_open_holds(&mut self, tenant: TenantId, now: OffsetDateTime) -> Result<Vec<Hold>, StoreError> {
        self.inner.expired_open_holds(tenant, now).await
    }

    async fn save_hold(&mut self, hold: &Hold) -> Result<(), StoreError> {
        self.inner.save_hold(hold).await
    }

    async fn append_log(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.inner.append_log(entry).await
    }

    async fn resolve_log_for_event(
        &mut self,
        event: &EventKey,
        by: billing_domain::LogEntryId,
    ) -> Result<(), StoreError> {
        self.inner.resolve_log_for_event(event, by).await
    }

    async fn resolve_log_for_payment(
        &mut self,
        payment: PaymentId,
        by: billing_domain::LogEntryId,
    ) -> Result<(), StoreError> {
        self.inner.resolve_log_for_payment(payment, by).await
    }

    async fn resolve_log_entry(
        &mut self,
        id: billing_domain::LogEntryId,
        by: billing_domain::LogEntryId,
    ) -> Result<(), StoreError> {
        self.inner.resolve_log_entry(id, by).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        if self.fail {
            return Err(StoreError::Conflict { what: "test conflict".into() });
        }
        self.inner.commit().await
    }
}
