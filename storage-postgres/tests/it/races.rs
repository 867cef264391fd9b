//! Many tasks racing on one database: the same events delivered by eight
//! tasks at once, and sixteen consumers sharing idempotency keys on one
//! account. Each test checks the committed rows afterwards, not only what
//! the tasks received.

use std::collections::HashMap;
use std::sync::Arc;

use billing_domain::event::{EventKind, ProviderEvent};
use billing_domain::ledger::{ConsumptionRequest, EntryKind};
use billing_domain::log::{InboxState, LogOutcome};
use billing_domain::testing::suite::{eur, Fixture};
use billing_domain::{BillingError, Currency, IdempotencyKey, InvoiceStatus, Money, PaymentStatus, Transition};

use super::db::TestDatabase;

const PAYMENTS: usize = 125;
const TASKS: usize = 8;
const CREDITS_PER_INVOICE: u64 = 100;

/// The eight events of one payment, in the order every task delivers them:
/// success, then cumulative refunds of one eighth up to seven eighths.
fn lifecycle(fixture: &Fixture, index: usize, payment: &billing_domain::Payment) -> Vec<ProviderEvent> {
    let mut events =
        vec![fixture.event(&format!("evt-{index}-paid"), payment, EventKind::Succeeded, Some(eur("20.00")))];
    for eighths in 1..=7 {
        let refunded = Money::from_minor(2000 * eighths / 8, Currency::EUR).unwrap();
        let kind = EventKind::Refunded { total_refunded: refunded };
        events.push(fixture.event(&format!("evt-{index}-refund-{eighths}"), payment, kind, None));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_deliver_the_same_thousand_events_once() {
    let db = TestDatabase::create(12).await;
    let fixture = Arc::new(Fixture::new(db.store()).await);
    let mut events = Vec::new();
    let mut payments = Vec::new();
    for index in 0..PAYMENTS {
        let issued = fixture.issued("20.00", CREDITS_PER_INVOICE).await;
        let payment = fixture.start(&issued).await;
        events.extend(lifecycle(&fixture, index, &payment));
        payments.push((issued, payment));
    }
    let events = Arc::new(events);

    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let fixture = fixture.clone();
        let events = events.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcomes = HashMap::<LogOutcome, usize>::new();
            for event in events.iter() {
                *outcomes.entry(fixture.deliver(event).await).or_default() += 1;
            }
            outcomes
        }));
    }
    let mut outcomes = HashMap::<LogOutcome, usize>::new();
    for task in tasks {
        for (outcome, count) in task.await.unwrap() {
            *outcomes.entry(outcome).or_default() += count;
        }
    }

    assert_eq!(outcomes.get(&LogOutcome::Applied), Some(&events.len()), "{outcomes:?}");
    assert_eq!(outcomes.get(&LogOutcome::Duplicate), Some(&(events.len() * (TASKS - 1))), "{outcomes:?}");
    let store = db.store();
    for event in events.iter() {
        let entry = store.inbox_entry(&event.key()).await.unwrap().unwrap();
        assert_eq!((entry.state, entry.attempts), (InboxState::Done, 1), "{}", event.event_id);
    }
    let applied_twice: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_id, count(*) FROM log_entries WHERE outcome = 'applied' AND event_id IS NOT NULL GROUP BY event_id HAVING count(*) <> 1",
    )
    .fetch_all(db.store.pool())
    .await
    .unwrap();
    assert_eq!(applied_twice, Vec::new(), "every event has exactly one applied log row");

    for (issued, payment) in &payments {
        let payment = fixture.payment(payment).await;
        assert_eq!((payment.status(), payment.refunded()), (PaymentStatus::PartiallyRefunded, eur("17.50")));
        assert_eq!(fixture.invoice_status(issued).await, InvoiceStatus::PartiallyRefunded);
    }
    let history = fixture.service.history(fixture.tenant).await.unwrap();
    let grants = history.iter().filter(|entry| matches!(entry.kind, EntryKind::Grant { .. })).count();
    let reversals = history.iter().filter(|entry| matches!(entry.kind, EntryKind::Reversal { .. })).count();
    assert_eq!((grants, reversals), (PAYMENTS, 7 * PAYMENTS));
    // Seven eighths refunded reverses 88 of the 100 credits (87.5 rounded up).
    assert_eq!(fixture.balance().await, i64::try_from(PAYMENTS).unwrap() * 12);
    fixture.assert_ledger_consistent().await;
    db.drop().await;
}

const CONSUMERS: u64 = 16;
const JOBS_PER_CONSUMER: u64 = 40;
const KEYS: u64 = 120;
const STARTING_CREDITS: u64 = 250;

/// The amount a key always requests, so every reuse of a key is the same request.
fn amount_for(key: u64) -> u64 {
    1 + key % 4
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_consumers_charge_each_shared_key_once() {
    let db = TestDatabase::create(20).await;
    let fixture = Arc::new(Fixture::new(db.store()).await);
    fixture.paid("20.00", STARTING_CREDITS).await;

    let mut tasks = Vec::new();
    for consumer in 0..CONSUMERS {
        let fixture = fixture.clone();
        tasks.push(tokio::spawn(async move {
            let mut receipts = Vec::new();
            for job in 0..JOBS_PER_CONSUMER {
                let key = (consumer * 13 + job * 3) % KEYS;
                let request = ConsumptionRequest {
                    tenant_id: fixture.tenant,
                    module: "render".into(),
                    amount: amount_for(key),
                    idempotency_key: IdempotencyKey::new(format!("job-{key}")).unwrap(),
                };
                match fixture.service.consume_credits(&request).await {
                    Ok(receipt) => {
                        assert!(receipt.balance_after >= 0, "a receipt shows a negative balance: {receipt:?}");
                        receipts.push((key, receipt));
                    }
                    Err(BillingError::Ledger(billing_domain::ledger::LedgerError::InsufficientCredits { .. })) => {}
                    Err(error) => panic!("consumption of key {key} failed: {error}"),
                }
            }
            receipts
        }));
    }
    let mut by_key = HashMap::new();
    let mut applied = 0;
    for task in tasks {
        for (key, receipt) in task.await.unwrap() {
            let first = by_key.entry(key).or_insert_with(|| receipt.entry_id);
            assert_eq!(*first, receipt.entry_id, "key {key} was answered with two different entries");
            if receipt.transition == Transition::Applied {
                applied += 1;
            }
        }
    }

    let history = fixture.service.history(fixture.tenant).await.unwrap();
    let consumptions: Vec<_> =
        history.iter().filter(|entry| matches!(entry.kind, EntryKind::Consumption { .. })).collect();
    assert_eq!(consumptions.len(), applied, "one entry per applied receipt");
    assert_eq!(consumptions.len(), by_key.len(), "one entry per charged key");
    let charged: u64 = by_key.keys().map(|key| amount_for(*key)).sum();
    let balance = fixture.service.balance(fixture.tenant).await.unwrap();
    assert_eq!(balance.balance, i64::try_from(STARTING_CREDITS - charged).unwrap());
    assert!(balance.balance >= 0, "{balance:?}");
    assert!(balance.available >= 0, "{balance:?}");
    fixture.assert_ledger_consistent().await;

    let keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idempotency_keys").fetch_one(db.store.pool()).await.unwrap();
    assert_eq!(keys, i64::try_from(by_key.len()).unwrap());
    drop(fixture);
    db.drop().await;
}
