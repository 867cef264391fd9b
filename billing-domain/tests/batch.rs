//! The batched use cases against the single-item path, on the in-memory store.
//!
//! Two services built alike receive the same random events (duplicates,
//! out-of-order refunds, wrong amounts, disputes) and consumptions
//! (repeated keys, requests the balance cannot cover): one item by item,
//! the other in batches. Every outcome and the resulting payments,
//! invoices, balances and inbox states must be the same. Ids and versions
//! may differ, because a batch draws random ids in another order and saves
//! a row once per transaction.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use billing_domain::event::{EventKind, ProviderEvent};
use billing_domain::ledger::{ConsumptionRequest, EntryKind};
use billing_domain::log::{InboxState, LogOutcome};
use billing_domain::memory::MemoryStore;
use billing_domain::store::Store;
use billing_domain::testing::suite::{eur, Fixture};
use billing_domain::{Currency, IdempotencyKey, InvoiceStatus, Money, Payment, PaymentStatus, Transition};
use proptest::prelude::*;

const PAYMENTS: usize = 3;

#[derive(Debug, Clone, Copy)]
enum Report {
    Success,
    WrongAmount,
    Failed,
    Refund { quarters: u8 },
    DisputeOpened,
    DisputeLost,
}

fn report() -> impl Strategy<Value = Report> {
    prop_oneof![
        3 => Just(Report::Success),
        1 => Just(Report::WrongAmount),
        1 => Just(Report::Failed),
        3 => (1u8..=4).prop_map(|quarters| Report::Refund { quarters }),
        1 => Just(Report::DisputeOpened),
        1 => Just(Report::DisputeLost),
    ]
}

/// What a caller can observe, without ids or versions.
#[derive(Debug, PartialEq)]
struct Observed {
    payments: Vec<(PaymentStatus, Money, bool)>,
    invoices: Vec<InvoiceStatus>,
    balance: i64,
    entries: Vec<(i64, &'static str)>,
    inbox: Vec<Option<InboxState>>,
}

struct Run {
    fixture: Fixture,
    payments: Vec<Payment>,
    invoices: Vec<billing_domain::service::IssuedInvoice>,
}

impl Run {
    async fn new() -> Run {
        let fixture = Fixture::new(Arc::new(MemoryStore::new()) as Arc<dyn Store>).await;
        let mut payments = Vec::new();
        let mut invoices = Vec::new();
        for _ in 0..PAYMENTS {
            let issued = fixture.issued("20.00", 100).await;
            payments.push(fixture.start(&issued).await);
            invoices.push(issued);
        }
        Run { fixture, payments, invoices }
    }

    fn event(&self, index: usize, (slot, report): (usize, Report)) -> ProviderEvent {
        let payment = &self.payments[slot];
        let (kind, amount) = match report {
            Report::Success => (EventKind::Succeeded, Some(payment.amount)),
            Report::WrongAmount => (EventKind::Succeeded, Some(eur("1.00"))),
            Report::Failed => (EventKind::Failed, None),
            Report::Refund { quarters } => {
                let refunded = Money::from_minor(2000 * i64::from(quarters) / 4, Currency::EUR).unwrap();
                (EventKind::Refunded { total_refunded: refunded }, None)
            }
            Report::DisputeOpened => (EventKind::DisputeOpened, None),
            Report::DisputeLost => (EventKind::DisputeLost, None),
        };
        self.fixture.event(&format!("evt-{index}"), payment, kind, amount)
    }

    async fn observe(&self, events: &[ProviderEvent]) -> Observed {
        let store = self.fixture.service.store();
        let mut payments = Vec::new();
        for payment in &self.payments {
            let payment = store.payment(payment.id).await.unwrap().unwrap();
            payments.push((payment.status(), payment.refunded(), payment.overpayment));
        }
        let mut invoices = Vec::new();
        for issued in &self.invoices {
            invoices.push(store.invoice(issued.invoice.id).await.unwrap().unwrap().status());
        }
        let entries = self
            .fixture
            .service
            .history(self.fixture.tenant)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| (entry.amount, kind_name(&entry.kind)))
            .collect();
        let mut inbox = Vec::new();
        for event in events {
            inbox.push(store.inbox_entry(&event.key()).await.unwrap().map(|entry| entry.state));
        }
        Observed { payments, invoices, balance: self.fixture.balance().await, entries, inbox }
    }
}

fn kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Grant { .. } => "grant",
        EntryKind::Consumption { .. } => "consumption",
        EntryKind::Capture { .. } => "capture",
        EntryKind::Reversal { .. } => "reversal",
        EntryKind::Adjustment { .. } => "adjustment",
    }
}

fn consumption(run: &Run, key: u8, amount: u64) -> ConsumptionRequest {
    ConsumptionRequest {
        tenant_id: run.fixture.tenant,
        module: "render".into(),
        amount,
        idempotency_key: IdempotencyKey::new(format!("key-{key}")).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn batches_match_one_by_one(
        reports in prop::collection::vec((0..PAYMENTS, report()), 1..16),
        picks in prop::collection::vec(0usize..16, 1..24),
        batch in 1usize..6,
        consumptions in prop::collection::vec((0u8..5, 1u64..80), 0..12),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let single = Run::new().await;
            let batched = Run::new().await;
            // Picks repeat events, so the delivery list holds duplicates and
            // keys that repeat within one batch.
            let events: Vec<ProviderEvent> = picks
                .iter()
                .map(|pick| pick % reports.len())
                .map(|index| single.event(index, reports[index]))
                .collect();

            let mut expected = Vec::new();
            for event in &events {
                expected.push(single.fixture.service.apply_event(event).await.unwrap().outcome);
            }
            let mut found: Vec<LogOutcome> = Vec::new();
            for chunk in events.chunks(batch) {
                let reports = batched.fixture.service.apply_event_batch(chunk).await.unwrap();
                prop_assert_eq!(reports.len(), chunk.len());
                found.extend(reports.iter().map(|report| report.outcome));
            }
            prop_assert_eq!(&expected, &found, "outcomes of {:?}", reports);
            prop_assert_eq!(single.observe(&events).await, batched.observe(&events).await);

            let mut expected = Vec::new();
            for (key, amount) in &consumptions {
                let receipt = single.fixture.service.consume_credits(&consumption(&single, *key, *amount)).await;
                expected.push(receipt.map(|receipt| (receipt.amount, receipt.balance_after, receipt.transition)));
            }
            let requests: Vec<ConsumptionRequest> =
                consumptions.iter().map(|(key, amount)| consumption(&batched, *key, *amount)).collect();
            let mut found = Vec::new();
            for chunk in requests.chunks(batch) {
                for receipt in batched.fixture.service.consume_credits_batch(chunk).await.unwrap() {
                    found.push(receipt.map(|receipt| (receipt.amount, receipt.balance_after, receipt.transition)));
                }
            }
            prop_assert_eq!(expected, found);
            prop_assert_eq!(single.observe(&events).await, batched.observe(&events).await);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn repeated_key_in_one_batch_is_a_duplicate() {
    let run = Run::new().await;
    let paid = run.event(0, (0, Report::Success));

    let reports = run.fixture.service.apply_event_batch(&[paid.clone(), paid.clone()]).await.unwrap();

    let outcomes: Vec<LogOutcome> = reports.iter().map(|report| report.outcome).collect();
    assert_eq!(outcomes, vec![LogOutcome::Applied, LogOutcome::Duplicate]);
    assert_eq!(run.fixture.balance().await, 100);
    run.fixture.assert_ledger_consistent().await;
}

#[tokio::test]
async fn consumption_batch_rejects_mixed_tenants() {
    let run = Run::new().await;
    let mut other = consumption(&run, 1, 1);
    other.tenant_id = billing_domain::TenantId::from_random_bytes([9; 16]);

    let error = run.fixture.service.consume_credits_batch(&[consumption(&run, 0, 1), other]).await.unwrap_err();

    assert!(error.to_string().contains("must name one tenant"), "{error}");
    assert_eq!(run.fixture.balance().await, 0);
}

#[tokio::test]
async fn consumption_batch_replays_keys_within_the_batch() {
    let run = Run::new().await;
    run.fixture.service.apply_event(&run.event(0, (0, Report::Success))).await.unwrap();

    let receipts =
        run.fixture.service.consume_credits_batch(&[consumption(&run, 0, 30), consumption(&run, 0, 30)]).await.unwrap();

    let transitions: Vec<Transition> = receipts.iter().map(|receipt| receipt.as_ref().unwrap().transition).collect();
    assert_eq!(transitions, vec![Transition::Applied, Transition::AlreadyApplied]);
    assert_eq!(run.fixture.balance().await, 70);
}
