//! Store-level semantics the service relies on, checked directly on the
//! ports: versions, inbox claims, reference ownership, rollback and the
//! constraints that back the rules.

use std::time::Duration as StdDuration;

use time::OffsetDateTime;

use billing_domain::directory::{Company, Tenant};
use billing_domain::event::{EventKind, PaymentMatch, ProviderEvent};
use billing_domain::ledger::{
    EntryKind, Fingerprint, Hold, HoldStatus, IdempotencyRecord, IdempotentResult, LedgerEntry, OverdraftPolicy,
};
use billing_domain::log::{InboxClaim, InboxState};
use billing_domain::store::{PaymentInsert, Store, StoreError};
use billing_domain::token::TokenHash;
use billing_domain::{
    Channel, CompanyId, Currency, EventId, HoldId, IdempotencyKey, Invoice, InvoiceId, LedgerEntryId, Money, Payment,
    PaymentId, ProviderName, ProviderReference, TenantId, UserId,
};

use super::db::TestDatabase;

fn at() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
}

fn provider() -> ProviderName {
    ProviderName::new("scripted").unwrap()
}

/// A tenant with one company and one draft invoice of 20.00 EUR, committed.
async fn seed(store: &dyn Store, limit: u64) -> (TenantId, Invoice) {
    let tenant =
        Tenant { id: TenantId::from_random_bytes([1; 16]), name: "Acme".into(), overdraft: OverdraftPolicy { limit } };
    let company = Company { id: CompanyId::from_random_bytes([2; 16]), tenant_id: tenant.id, name: "Customer".into() };
    let invoice = Invoice::draft(
        InvoiceId::from_random_bytes([3; 16]),
        tenant.id,
        company.id,
        "2026-0001".into(),
        Currency::EUR,
        vec![billing_domain::InvoiceRow {
            description: "Credits".into(),
            quantity: rust_decimal::Decimal::ONE,
            unit_price: Money::from_minor(2000, Currency::EUR).unwrap(),
            project: None,
            content: None,
            credits: Some(10),
        }],
        at(),
    )
    .unwrap();
    let mut tx = store.begin().await.unwrap();
    tx.insert_tenant(&tenant).await.unwrap();
    tx.insert_company(&company).await.unwrap();
    tx.insert_invoice(&invoice).await.unwrap();
    tx.commit().await.unwrap();
    (tenant.id, invoice)
}

fn payment(invoice: &Invoice, byte: u8, reference: Option<&str>) -> Payment {
    let mut payment = Payment::new(
        PaymentId::from_random_bytes([byte; 16]),
        invoice.tenant_id,
        invoice.id,
        provider(),
        Channel::HostedPage,
        Money::from_minor(2000, Currency::EUR).unwrap(),
        at(),
    );
    payment.reference = reference.map(|text| ProviderReference::new(text).unwrap());
    payment
}

fn event(id: &str) -> ProviderEvent {
    ProviderEvent {
        provider: provider(),
        event_id: EventId::new(id).unwrap(),
        occurred_at: at(),
        matches: PaymentMatch::default(),
        kind: EventKind::Pending,
        amount: None,
        provider_type: "payment.pending".into(),
    }
}

fn entry(tenant: TenantId, byte: u8, amount: i64) -> LedgerEntry {
    LedgerEntry {
        id: LedgerEntryId::from_random_bytes([byte; 16]),
        tenant_id: tenant,
        amount,
        kind: EntryKind::Adjustment { staff: UserId::from_random_bytes([9; 16]), reason: "test".into() },
        created_at: at(),
    }
}

#[tokio::test]
async fn stale_invoice_version_is_a_conflict() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (_, invoice) = seed(store.as_ref(), 0).await;

    let mut tx = store.begin().await.unwrap();
    let mut loaded = tx.load_invoice(invoice.id).await.unwrap().unwrap();
    loaded.issue(TokenHash::of("token"), at()).unwrap();
    tx.save_invoice(&loaded).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.invoice(invoice.id).await.unwrap().unwrap().version, 1);

    let mut tx = store.begin().await.unwrap();
    let error = tx.save_invoice(&loaded).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
    assert!(error.is_retryable());
    drop(tx);

    let mut tx = store.begin().await.unwrap();
    let mut missing = invoice.clone();
    missing.id = InvoiceId::from_random_bytes([42; 16]);
    assert!(matches!(tx.save_invoice(&missing).await.unwrap_err(), StoreError::NotFound { .. }));
    drop(tx);
    db.drop().await;
}

#[tokio::test]
async fn inbox_claim_is_new_then_retry_then_done() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let evt = event("evt_1");

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.claim_event(&evt, at()).await.unwrap(), InboxClaim::New);
    tx.set_inbox_state(&evt.key(), InboxState::Unresolved, at()).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let InboxClaim::Retry(entry) = tx.claim_event(&evt, at()).await.unwrap() else { panic!("expected a retry") };
    assert_eq!((entry.attempts, entry.event.clone()), (1, evt.clone()));
    tx.set_inbox_state(&evt.key(), InboxState::Done, at()).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let InboxClaim::Done(entry) = tx.claim_event(&evt, at()).await.unwrap() else { panic!("expected done") };
    assert_eq!(entry.attempts, 2);
    drop(tx);
    db.drop().await;
}

#[tokio::test]
async fn concurrent_claim_waits_for_the_first() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let evt = event("evt_race");

    let mut first = store.begin().await.unwrap();
    assert_eq!(first.claim_event(&evt, at()).await.unwrap(), InboxClaim::New);

    let second_store = store.clone();
    let second_event = evt.clone();
    let second = tokio::spawn(async move {
        let mut tx = second_store.begin().await.unwrap();
        tx.claim_event(&second_event, at()).await.unwrap()
    });
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    assert!(!second.is_finished(), "the second claim must wait for the first transaction");

    first.set_inbox_state(&evt.key(), InboxState::Done, at()).await.unwrap();
    first.commit().await.unwrap();
    assert!(matches!(second.await.unwrap(), InboxClaim::Done(_)));
    db.drop().await;
}

#[tokio::test]
async fn claim_after_rollback_is_new_again() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let evt = event("evt_rolled_back");

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.claim_event(&evt, at()).await.unwrap(), InboxClaim::New);
    drop(tx);

    assert_eq!(store.inbox_entry(&evt.key()).await.unwrap(), None);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.claim_event(&evt, at()).await.unwrap(), InboxClaim::New);
    drop(tx);
    db.drop().await;
}

#[tokio::test]
async fn reference_stays_with_its_first_payment() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (_, invoice) = seed(store.as_ref(), 0).await;
    let first = payment(&invoice, 10, Some("cash:r-1"));

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.insert_payment(&first).await.unwrap(), PaymentInsert::Inserted);
    let PaymentInsert::ReferenceTaken(existing) =
        tx.insert_payment(&payment(&invoice, 11, Some("cash:r-1"))).await.unwrap()
    else {
        panic!("expected the reference to be taken")
    };
    assert_eq!(existing.id, first.id);

    // A payment that moves to the provider's own reference keeps the first one too.
    let mut moved = tx.load_payment(first.id).await.unwrap().unwrap();
    moved.reference = Some(ProviderReference::new("pi_123").unwrap());
    tx.save_payment(&moved).await.unwrap();
    tx.commit().await.unwrap();
    for reference in ["cash:r-1", "pi_123"] {
        let found = store.payment_by_reference(&provider(), &ProviderReference::new(reference).unwrap()).await.unwrap();
        assert_eq!(found.map(|found| found.id), Some(first.id), "{reference}");
    }

    let mut tx = store.begin().await.unwrap();
    let mut other = payment(&invoice, 12, None);
    tx.insert_payment(&other).await.unwrap();
    other.reference = Some(ProviderReference::new("pi_123").unwrap());
    let error = tx.save_payment(&other).await.unwrap_err();
    assert!(matches!(error, StoreError::Constraint { .. }), "{error:?}");
    drop(tx);
    db.drop().await;
}

#[tokio::test]
async fn dropped_transaction_leaves_nothing() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (tenant, invoice) = seed(store.as_ref(), 0).await;

    let mut tx = store.begin().await.unwrap();
    tx.load_account(tenant).await.unwrap();
    tx.append_ledger(&entry(tenant, 20, 5)).await.unwrap();
    tx.insert_payment(&payment(&invoice, 13, Some("ref-13"))).await.unwrap();
    tx.claim_event(&event("evt_dropped"), at()).await.unwrap();
    drop(tx);

    assert_eq!(store.account(tenant).await.unwrap().balance, 0);
    assert!(store.ledger_entries(tenant).await.unwrap().is_empty());
    assert!(store.payments_for_invoice(invoice.id).await.unwrap().is_empty());
    assert_eq!(store.inbox_entry(&event("evt_dropped").key()).await.unwrap(), None);
    db.drop().await;
}

#[tokio::test]
async fn balance_floor_is_enforced_by_the_database() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (tenant, _) = seed(store.as_ref(), 3).await;

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.load_account(tenant).await.unwrap().policy.limit, 3);
    tx.append_ledger(&entry(tenant, 21, -3)).await.unwrap();
    let error = tx.append_ledger(&entry(tenant, 22, -1)).await.unwrap_err();
    assert!(matches!(error, StoreError::Constraint { .. }), "{error:?}");
    drop(tx);

    // Raw SQL cannot break the rule either.
    let raw = sqlx::query("UPDATE accounts SET balance = -4 WHERE tenant_id = $1")
        .bind(tenant.as_uuid())
        .execute(db.store.pool())
        .await
        .unwrap_err();
    assert!(raw.to_string().contains("accounts_balance_floor"), "{raw}");
    assert_eq!(store.account(tenant).await.unwrap().balance, 0);
    db.drop().await;
}

#[tokio::test]
async fn second_grant_for_an_invoice_is_refused() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (tenant, invoice) = seed(store.as_ref(), 0).await;
    let paid = payment(&invoice, 14, None);
    let grant = |byte: u8| LedgerEntry {
        id: LedgerEntryId::from_random_bytes([byte; 16]),
        tenant_id: tenant,
        amount: 10,
        kind: EntryKind::Grant { invoice_id: invoice.id, payment_id: paid.id },
        created_at: at(),
    };

    let mut tx = store.begin().await.unwrap();
    tx.insert_payment(&paid).await.unwrap();
    tx.load_account(tenant).await.unwrap();
    tx.append_ledger(&grant(30)).await.unwrap();
    let credits = tx.invoice_credits(invoice.id).await.unwrap();
    assert_eq!((credits.granted, credits.reversed), (10, 0));
    let error = tx.append_ledger(&grant(31)).await.unwrap_err();
    assert!(matches!(error, StoreError::Constraint { .. }), "{error:?}");
    drop(tx);
    db.drop().await;
}

#[tokio::test]
async fn idempotency_key_is_unique_per_account() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (tenant, _) = seed(store.as_ref(), 0).await;
    let record = IdempotencyRecord {
        tenant_id: tenant,
        key: IdempotencyKey::new("job-1").unwrap(),
        fingerprint: Fingerprint::of(&["consume", "render", "1"]),
        result: IdempotentResult::Consumed { entry_id: LedgerEntryId::from_random_bytes([5; 16]), balance_after: 4 },
        created_at: at(),
    };

    let mut tx = store.begin().await.unwrap();
    tx.insert_idempotency_record(&record).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let stored = tx.idempotency_record(tenant, &record.key).await.unwrap().unwrap();
    assert_eq!(
        (stored.fingerprint.clone(), stored.result.clone()),
        (record.fingerprint.clone(), record.result.clone())
    );
    assert!(matches!(tx.insert_idempotency_record(&record).await.unwrap_err(), StoreError::AlreadyExists { .. }));
    drop(tx);

    // Another tenant may use the same key, even one whose account no entry has touched yet.
    let mut tx = store.begin().await.unwrap();
    let other = IdempotencyRecord { tenant_id: TenantId::from_random_bytes([77; 16]), ..record.clone() };
    tx.insert_idempotency_record(&other).await.unwrap();
    tx.commit().await.unwrap();
    db.drop().await;
}

#[tokio::test]
async fn holds_keep_the_held_total_in_step() {
    let db = TestDatabase::create(4).await;
    let store = db.store();
    let (tenant, _) = seed(store.as_ref(), 0).await;
    let mut hold = Hold {
        id: HoldId::from_random_bytes([6; 16]),
        tenant_id: tenant,
        module: "render".into(),
        amount: 7,
        status: HoldStatus::Open,
        idempotency_key: IdempotencyKey::new("hold-1").unwrap(),
        created_at: at(),
        expires_at: at() + time::Duration::hours(1),
    };

    let mut tx = store.begin().await.unwrap();
    tx.save_hold(&hold).await.unwrap();
    tx.save_hold(&hold).await.unwrap();
    assert_eq!(tx.load_account(tenant).await.unwrap().held, 7);
    hold.status = HoldStatus::Captured { amount: 5 };
    tx.save_hold(&hold).await.unwrap();
    tx.commit().await.unwrap();

    assert_eq!(store.account(tenant).await.unwrap().held, 0);
    assert_eq!(store.holds(tenant).await.unwrap(), vec![hold.clone()]);
    let mut tx = store.begin().await.unwrap();
    assert!(tx.expired_open_holds(tenant, at() + time::Duration::hours(2)).await.unwrap().is_empty());
    drop(tx);
    db.drop().await;
}
