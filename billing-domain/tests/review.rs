//! Regression tests from an adversarial review of the service: each pins one
//! way a caller could break a promise of the library through the public API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;

use billing_domain::event::{EventKind, PaymentMatch, ProviderEvent};
use billing_domain::invoice::InvoiceError;
use billing_domain::ledger::{ConsumptionRequest, HoldRequest, LedgerError, OverdraftPolicy};
use billing_domain::log::{Attention, LogOutcome};
use billing_domain::memory::MemoryStore;
use billing_domain::payment::ManualMethod;
use billing_domain::provider::{MockPaymentProvider, Operation, StartOutcome, StartRequest};
use billing_domain::service::{ForcedOutcome, NewInvoice, PaymentStart};
use billing_domain::store::{LogFilter, StoreError};
use billing_domain::testing::suite::{eur, user, Fixture};
use billing_domain::testing::ScriptedProvider;
use billing_domain::{
    BillingError, Currency, IdempotencyKey, InvoiceRow, InvoiceStatus, Payment, PaymentProvider, PaymentStatus,
    ProviderError, ProviderName, ProviderReference, WebhookRequest,
};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

async fn fixture() -> Fixture {
    Fixture::new(Arc::new(MemoryStore::new())).await
}

#[tokio::test]
async fn stale_age_out_of_range_is_rejected() {
    let fixture = fixture().await;

    let listed = fixture.service.stale_payments(&fixture.staff, Duration::MAX, 10).await;
    let janitor = fixture.service.reconcile_stale(Duration::MIN, 10).await;

    assert!(matches!(listed, Err(BillingError::InvalidInput { .. })), "{listed:?}");
    assert!(matches!(janitor, Err(BillingError::InvalidInput { .. })), "{janitor:?}");
}

#[tokio::test]
async fn manual_reference_of_another_tenant_is_not_replayed() {
    let fixture = fixture().await;
    let provider = fixture.provider_name();
    let ours = fixture.issued("20.00", 100).await;
    fixture
        .service
        .record_manual_payment(&fixture.staff, ours.invoice.id, &provider, ManualMethod::Cash, "receipt-1")
        .await
        .unwrap();
    let (_, other_staff) =
        fixture.service.create_tenant("Other workspace", user(9), "Olga", OverdraftPolicy::default()).await.unwrap();
    let company = fixture.service.add_company(&other_staff, "Their customer").await.unwrap();
    let theirs = fixture
        .service
        .create_invoice(
            &other_staff,
            NewInvoice {
                company_id: company.id,
                number: "T-1".into(),
                currency: Currency::EUR,
                rows: vec![row("5.00", None)],
            },
        )
        .await
        .unwrap();
    fixture.service.issue_invoice(&other_staff, theirs.id).await.unwrap();

    let start = fixture
        .service
        .record_manual_payment(&other_staff, theirs.id, &provider, ManualMethod::Cash, "receipt-1")
        .await
        .unwrap();

    let PaymentStart::Completed { payment, .. } = start else { panic!("expected a new completion, got {start:?}") };
    assert_eq!(payment.tenant_id, other_staff.tenant_id());
    assert_eq!(payment.invoice_id, theirs.id);
    let stored = fixture.service.store().invoice(theirs.id).await.unwrap().unwrap();
    assert_eq!(stored.status(), InvoiceStatus::Paid);
}

#[tokio::test]
async fn manual_reference_of_another_invoice_is_not_replayed() {
    let fixture = fixture().await;
    let provider = fixture.provider_name();
    let first = fixture.issued("20.00", 0).await;
    let second = fixture.issued("30.00", 0).await;
    fixture
        .service
        .record_manual_payment(&fixture.staff, first.invoice.id, &provider, ManualMethod::BankTransfer, "RF18 5390")
        .await
        .unwrap();

    let start = fixture
        .service
        .record_manual_payment(&fixture.staff, second.invoice.id, &provider, ManualMethod::BankTransfer, "RF18 5390")
        .await
        .unwrap();

    let PaymentStart::Completed { payment, .. } = start else { panic!("expected a new completion, got {start:?}") };
    assert_eq!(payment.invoice_id, second.invoice.id);
    assert_eq!(fixture.invoice_status(&second).await, InvoiceStatus::Paid);
}

fn row(price: &str, credits: Option<u64>) -> InvoiceRow {
    InvoiceRow {
        description: "Credits".into(),
        quantity: Decimal::ONE,
        unit_price: eur(price),
        project: None,
        content: None,
        credits,
    }
}

/// An event about `payment` that names it only by its provider reference.
fn by_reference(fixture: &Fixture, id: &str, payment: &billing_domain::Payment, kind: EventKind) -> ProviderEvent {
    let mut event = fixture.event(id, payment, kind, Some(payment.amount));
    event.matches = PaymentMatch {
        tenant_id: None,
        invoice_id: None,
        payment_id: None,
        reference: Some(ScriptedProvider::reference_for(payment.id).unwrap()),
    };
    event
}

#[tokio::test]
async fn retry_of_another_tenants_event_is_not_found() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let refund =
        by_reference(&fixture, "evt-early-refund", &payment, EventKind::Refunded { total_refunded: eur("20.00") });
    assert_eq!(fixture.deliver(&refund).await, LogOutcome::Parked);
    let (_, other_staff) =
        fixture.service.create_tenant("Other workspace", user(9), "Olga", OverdraftPolicy::default()).await.unwrap();

    let error = fixture.service.retry_event(&other_staff, &refund.key()).await.unwrap_err();

    assert!(matches!(error, BillingError::NotFound { what: "event", .. }), "{error:?}");
    assert!(fixture.service.retry_event(&fixture.staff, &refund.key()).await.is_ok());
}

#[tokio::test]
async fn metadata_disagreeing_with_reference_is_rejected() {
    let fixture = fixture().await;
    let paid_by_event = fixture.issued("20.00", 100).await;
    let named_in_metadata = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&paid_by_event).await;
    let mut event = by_reference(&fixture, "evt-confused", &payment, EventKind::Succeeded);
    event.matches.invoice_id = Some(named_in_metadata.invoice.id);

    let outcome = fixture.deliver(&event).await;

    assert_eq!(outcome, LogOutcome::Rejected);
    assert_eq!(fixture.invoice_status(&paid_by_event).await, InvoiceStatus::Open);
    assert_eq!(fixture.balance().await, 0);
}

#[tokio::test]
async fn rejected_event_goes_to_payment_tenant() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 0).await;
    let payment = fixture.start(&issued).await;
    let mut event = fixture.event("evt-wrong-invoice", &payment, EventKind::Succeeded, Some(eur("20.00")));
    event.matches.tenant_id = None;
    event.matches.invoice_id = Some(billing_domain::InvoiceId::from_random_bytes([42; 16]));
    assert_eq!(fixture.deliver(&event).await, LogOutcome::Rejected);
    let (_, other_staff) =
        fixture.service.create_tenant("Other workspace", user(9), "Olga", OverdraftPolicy::default()).await.unwrap();

    let theirs = fixture.service.unresolved_log(&other_staff, 50).await.unwrap();
    let ours = fixture.service.unresolved_log(&fixture.staff, 50).await.unwrap();

    assert!(!theirs.iter().any(|entry| entry.payment_id == Some(payment.id)), "{theirs:?}");
    assert!(!theirs.iter().any(|entry| entry.reason.contains(&payment.id.to_string())), "{theirs:?}");
    assert!(ours.iter().any(|entry| entry.event == Some(event.key()) && entry.attention == Attention::Open));
}

#[tokio::test]
async fn won_dispute_keeps_partial_refund() {
    let fixture = fixture().await;
    let (issued, payment) = fixture.paid("20.00", 100).await;
    let partial = fixture.event("evt-refund", &payment, EventKind::Refunded { total_refunded: eur("5.00") }, None);
    assert_eq!(fixture.deliver(&partial).await, LogOutcome::Applied);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::PartiallyRefunded);
    let opened = fixture.event("evt-dispute", &payment, EventKind::DisputeOpened, None);
    assert_eq!(fixture.deliver(&opened).await, LogOutcome::Applied);

    let won = fixture.event("evt-won", &payment, EventKind::DisputeWon, None);
    assert_eq!(fixture.deliver(&won).await, LogOutcome::Applied);

    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::PartiallyRefunded);
    assert_eq!(fixture.payment(&payment).await.refunded(), eur("5.00"));
    fixture.assert_ledger_consistent().await;
}

#[tokio::test]
async fn credits_beyond_ledger_range_are_rejected() {
    let fixture = fixture().await;
    let company_id = fixture.customer.company_id();
    let new = |rows| NewInvoice { company_id, number: "BIG-1".into(), currency: Currency::EUR, rows };

    let single = fixture.service.create_invoice(&fixture.staff, new(vec![row("1.00", Some(u64::MAX))])).await;
    let half = u64::try_from(i64::MAX).unwrap() / 2 + 1;
    let summed = fixture
        .service
        .create_invoice(&fixture.staff, new(vec![row("1.00", Some(half)), row("1.00", Some(half))]))
        .await;
    let largest = fixture
        .service
        .create_invoice(&fixture.staff, new(vec![row("1.00", Some(u64::try_from(i64::MAX).unwrap()))]))
        .await;

    assert!(matches!(single, Err(BillingError::Invoice(InvoiceError::CreditsTooLarge { .. }))), "{single:?}");
    assert!(matches!(summed, Err(BillingError::Invoice(InvoiceError::CreditsTooLarge { .. }))), "{summed:?}");
    assert!(largest.is_ok(), "{largest:?}");
}

#[tokio::test]
async fn forced_success_keeps_overpayment_open() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 100).await;
    fixture
        .provider
        .fail_next_start(ProviderError::Timeout { provider: fixture.provider_name(), during: "start".into() });
    let start = fixture
        .service
        .start_public_payment(issued.token.expose(), &fixture.provider_name(), Default::default())
        .await
        .unwrap_err();
    let BillingError::StartFailed { payment: unknown, .. } = start else {
        panic!("expected StartFailed, got {start:?}")
    };
    fixture
        .service
        .record_manual_payment(&fixture.staff, issued.invoice.id, &fixture.provider_name(), ManualMethod::Cash, "r-1")
        .await
        .unwrap();

    let report = fixture
        .service
        .force_outcome(&fixture.staff, unknown, ForcedOutcome::Succeeded, "provider dashboard shows the charge")
        .await
        .unwrap();

    assert_eq!(report.outcome, LogOutcome::Applied);
    let open = fixture.service.unresolved_log(&fixture.staff, 50).await.unwrap();
    assert!(
        open.iter().any(|entry| entry.payment_id == Some(unknown) && entry.reason.contains("overpayment")),
        "the overpayment must stay open: {open:?}"
    );
    assert!(
        !open.iter().any(|entry| entry.payment_id == Some(unknown) && entry.reason.contains("start failed")),
        "the timeout is resolved by the forced outcome: {open:?}"
    );
}

#[tokio::test]
async fn void_refused_after_start_timeout() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 100).await;
    fixture
        .provider
        .fail_next_start(ProviderError::Timeout { provider: fixture.provider_name(), during: "start".into() });
    let start = fixture
        .service
        .start_public_payment(issued.token.expose(), &fixture.provider_name(), Default::default())
        .await
        .unwrap_err();
    let BillingError::StartFailed { payment, .. } = start else { panic!("expected StartFailed, got {start:?}") };
    let stored = fixture.service.store().payment(payment).await.unwrap().unwrap();
    assert_eq!(stored.status(), PaymentStatus::Unknown);

    let error = fixture.service.void_invoice(&fixture.staff, issued.invoice.id).await.unwrap_err();

    assert_eq!(error, BillingError::PaymentInProgress { invoice: issued.invoice.id, payment });
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    fixture
        .service
        .force_outcome(&fixture.staff, payment, ForcedOutcome::Failed, "no charge at the provider")
        .await
        .unwrap();
    fixture.service.void_invoice(&fixture.staff, issued.invoice.id).await.unwrap();
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Void);
}

#[tokio::test]
async fn void_of_another_tenants_invoice_is_not_found() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 0).await;
    fixture.start(&issued).await;
    let (_, other_staff) =
        fixture.service.create_tenant("Other workspace", user(9), "Olga", OverdraftPolicy::default()).await.unwrap();

    let error = fixture.service.void_invoice(&other_staff, issued.invoice.id).await.unwrap_err();

    assert!(matches!(error, BillingError::NotFound { what: "invoice", .. }), "{error:?}");
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
}

#[tokio::test]
async fn webhook_event_for_another_provider_is_rejected() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let claimed = fixture.event("evt-borrowed", &payment, EventKind::Succeeded, Some(eur("20.00")));
    let mut other = MockPaymentProvider::new();
    other.expect_name().returning(|| ProviderName::new("other").unwrap());
    other.expect_verify_webhook().returning(move |_, _| Ok(vec![claimed.clone()]));
    let service = fixture.service.clone().with_provider(Arc::new(other));

    let error =
        service.handle_webhook(&ProviderName::new("other").unwrap(), &WebhookRequest::default()).await.unwrap_err();

    assert!(matches!(error, BillingError::Provider(ProviderError::InvalidWebhook { .. })), "{error:?}");
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    assert_eq!(fixture.balance().await, 0);
}

/// A hosted-page provider whose start call waits until the test releases it,
/// so the test can act while the call is in progress.
#[derive(Debug, Default)]
struct GatedProvider {
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl PaymentProvider for GatedProvider {
    fn name(&self) -> ProviderName {
        ProviderName::new("gated").unwrap()
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        self.entered.notify_one();
        self.release.notified().await;
        let reference = ProviderReference::new(format!("gated-{}", request.payment_id)).unwrap();
        Ok(StartOutcome::Redirect { url: format!("https://pay.invalid/{reference}"), reference })
    }

    async fn verify_webhook(
        &self,
        _request: &WebhookRequest,
        _now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Unsupported { provider: self.name(), operation: Operation::Webhook })
    }

    async fn fetch_payment(&self, _payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Unsupported { provider: self.name(), operation: Operation::Fetch })
    }
}

#[tokio::test]
async fn void_refused_while_start_call_runs() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 100).await;
    let gated = Arc::new(GatedProvider::default());
    let service = fixture.service.clone().with_provider(gated.clone());
    let token = issued.token.expose().to_owned();
    let starter = service.clone();
    let start = tokio::spawn(async move {
        starter.start_public_payment(&token, &ProviderName::new("gated").unwrap(), Default::default()).await
    });
    gated.entered.notified().await;

    let voided = service.void_invoice(&fixture.staff, issued.invoice.id).await;
    gated.release.notify_one();
    let started = start.await.unwrap();

    assert!(matches!(voided, Err(BillingError::PaymentInProgress { .. })), "{voided:?}");
    assert!(matches!(started, Ok(PaymentStart::Redirect { .. })), "{started:?}");
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
}

#[tokio::test]
async fn staff_of_another_tenant_reach_nothing() {
    let fixture = fixture().await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    fixture.service.adjust_credits(&fixture.staff, 50, "seed for a hold").await.unwrap();
    let hold = HoldRequest {
        tenant_id: fixture.tenant,
        module: "render".into(),
        amount: 5,
        idempotency_key: IdempotencyKey::new("hold-1").unwrap(),
        expires_at: fixture.service.now() + Duration::hours(1),
    };
    let hold = fixture.service.place_hold(&hold).await.unwrap();
    let (other, other_staff) =
        fixture.service.create_tenant("Other workspace", user(9), "Olga", OverdraftPolicy::default()).await.unwrap();
    let service = &fixture.service;
    let invoice = issued.invoice.id;
    let provider = fixture.provider_name();
    let invoice_missing = |result: Result<(), BillingError>| {
        assert!(matches!(result, Err(BillingError::NotFound { what: "invoice", .. })), "{result:?}");
    };

    invoice_missing(service.start_terminal_payment(&other_staff, invoice, &provider, "tmr_1").await.map(drop));
    invoice_missing(
        service.record_manual_payment(&other_staff, invoice, &provider, ManualMethod::Cash, "r-1").await.map(drop),
    );
    invoice_missing(service.mint_public_link(&other_staff, invoice).await.map(drop));
    invoice_missing(service.add_internal_note(&other_staff, invoice, "note").await.map(drop));
    invoice_missing(service.attach_receipt(&other_staff, invoice, "Receipt", "https://r.invalid/1").await.map(drop));
    invoice_missing(service.staff_invoice(&other_staff, invoice).await.map(drop));
    invoice_missing(service.invoice_log(&other_staff, invoice).await.map(drop));
    let reconcile = service.reconcile_payment(&other_staff, payment.id).await;
    let forced = service.force_outcome(&other_staff, payment.id, ForcedOutcome::Succeeded, "no").await;
    let captured = service.capture_hold(other.id, hold.id, 1).await;
    let released = service.release_hold(other.id, hold.id).await;

    assert!(matches!(reconcile, Err(BillingError::NotFound { what: "payment", .. })), "{reconcile:?}");
    assert!(matches!(forced, Err(BillingError::NotFound { what: "payment", .. })), "{forced:?}");
    assert!(matches!(captured, Err(BillingError::Ledger(LedgerError::HoldNotFound { .. }))), "{captured:?}");
    assert!(matches!(released, Err(BillingError::Ledger(LedgerError::HoldNotFound { .. }))), "{released:?}");
    assert!(service.stale_payments(&other_staff, Duration::ZERO, 10).await.unwrap().is_empty());
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Pending);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
}

#[tokio::test]
async fn failed_grant_rolls_back_whole_event() {
    let fixture = fixture().await;
    let most = i64::MAX.unsigned_abs();
    fixture.paid("20.00", most).await;
    let second = fixture.issued("30.00", most).await;
    let payment = fixture.start(&second).await;
    let log_before = fixture.service.store().log_entries(&LogFilter::default()).await.unwrap().len();
    let event = fixture.event("evt-overflow", &payment, EventKind::Succeeded, Some(eur("30.00")));

    let error = fixture.service.apply_event(&event).await.unwrap_err();

    assert!(matches!(error, BillingError::Store(StoreError::Constraint { .. })), "{error:?}");
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Pending);
    assert_eq!(fixture.invoice_status(&second).await, InvoiceStatus::Open);
    assert!(fixture.service.store().inbox_entry(&event.key()).await.unwrap().is_none());
    assert_eq!(fixture.service.store().log_entries(&LogFilter::default()).await.unwrap().len(), log_before);
    assert_eq!(fixture.grants().await, 1);
    fixture.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_concurrent_use_neither_deadlocks_nor_drifts() {
    let fixture = Arc::new(fixture().await);
    fixture.service.adjust_credits(&fixture.staff, 1000, "seed for the run").await.unwrap();

    let mut tasks = Vec::new();
    for worker in 0..4u64 {
        let fixture = fixture.clone();
        tasks.push(tokio::spawn(async move { run_worker(&fixture, worker).await }));
    }
    let all = async {
        for task in tasks {
            task.await.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), all).await.expect("workers deadlocked");

    // 1000 seeded, 4 × 5 invoices of 10 credits, 7 distinct consumption keys
    // of 3 credits, and one credit captured from each of the 20 holds.
    assert_eq!(fixture.grants().await, 20);
    assert_eq!(fixture.balance().await, 1000 + 200 - 21 - 20);
    assert_eq!(fixture.service.balance(fixture.tenant).await.unwrap().held, 0);
    fixture.assert_ledger_consistent().await;
}

/// Runs one worker's share of the concurrent run: pay, replay, consume, hold, capture and read.
async fn run_worker(fixture: &Fixture, worker: u64) {
    let service = &fixture.service;
    for job in 0..5u64 {
        let issued = fixture.issued("20.00", 10).await;
        let payment = fixture.start(&issued).await;
        service.public_entry(issued.token.expose()).await.unwrap();
        let paid = fixture.event(&format!("evt-{worker}-{job}"), &payment, EventKind::Succeeded, Some(eur("20.00")));
        assert_eq!(fixture.deliver(&paid).await, LogOutcome::Applied);
        assert_eq!(fixture.deliver(&paid).await, LogOutcome::Duplicate);

        let consume = ConsumptionRequest {
            tenant_id: fixture.tenant,
            module: "render".into(),
            amount: 3,
            idempotency_key: IdempotencyKey::new(format!("job-{}", (worker + job) % 7)).unwrap(),
        };
        service.consume_credits(&consume).await.unwrap();
        let hold = HoldRequest {
            tenant_id: fixture.tenant,
            module: "train".into(),
            amount: 2,
            idempotency_key: IdempotencyKey::new(format!("hold-{worker}-{job}")).unwrap(),
            expires_at: service.now() + Duration::hours(1),
        };
        let hold = service.place_hold(&hold).await.unwrap();
        service.capture_hold(fixture.tenant, hold.id, 1).await.unwrap();
        assert!(service.release_hold(fixture.tenant, hold.id).await.is_err());
        service.expire_holds(fixture.tenant).await.unwrap();
        service.unresolved_log(&fixture.staff, 10).await.unwrap();
        service.staff_invoice(&fixture.staff, issued.invoice.id).await.unwrap();
    }
}
