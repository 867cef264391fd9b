//! The in-memory store is the model of the PostgreSQL store.
//!
//! Each case runs one random sequence of operations through two services
//! built alike, one on each store, with the same seeded random source and
//! manual clock. The operations are payment starts, event deliveries one by
//! one and in batches (with duplicates and wrong amounts), retries of stored
//! events, voids, consumption with repeated keys one by one and in batches,
//! and holds. After every operation both services must have returned the
//! same result and must show the same invoices, payments, ledger, balance,
//! holds, log and inbox. The database is emptied between cases instead of
//! recreated, to keep the run short.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use time::Duration;

use billing_domain::event::{EventKind, ProviderEvent};
use billing_domain::ledger::{ConsumptionRequest, Hold, HoldRequest, LedgerEntry};
use billing_domain::log::{InboxEntry, LogEntry};
use billing_domain::memory::MemoryStore;
use billing_domain::provider::WebhookRequest;
use billing_domain::service::{Balance, IssuedInvoice, PaymentOptions, PaymentStart};
use billing_domain::store::{LogFilter, Store};
use billing_domain::testing::suite::{eur, Fixture};
use billing_domain::{Currency, HoldId, IdempotencyKey, Invoice, ManualMethod, Money, Payment};

use super::db::TestDatabase;

/// Cases per run: each takes a fraction of a second on the test database.
const CASES: u32 = 24;
const INVOICES: [(&str, u64); 2] = [("20.00", 100), ("30.00", 60)];
const SLOTS: usize = 2;
const EVENTS: usize = 8;

#[derive(Debug, Clone)]
enum Op {
    StartHosted { invoice: usize },
    StartManual { invoice: usize, receipt: u8 },
    Deliver { event: usize },
    DeliverBatch { events: Vec<usize> },
    Retry { event: usize },
    Void { invoice: usize },
    Consume { key: u8, amount: u64 },
    ConsumeBatch { requests: Vec<(u8, u64)> },
    Hold { key: u8, amount: u64 },
    Capture { hold: usize, amount: u64 },
    Release { hold: usize },
    Expire { minutes: i64 },
}

/// What an event in the pool reports, before it is bound to a payment slot.
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
        4 => (1u8..=4).prop_map(|quarters| Report::Refund { quarters }),
        1 => Just(Report::DisputeOpened),
        1 => Just(Report::DisputeLost),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..INVOICES.len()).prop_map(|invoice| Op::StartHosted { invoice }),
        1 => (0..INVOICES.len(), 0u8..2).prop_map(|(invoice, receipt)| Op::StartManual { invoice, receipt }),
        6 => (0..EVENTS).prop_map(|event| Op::Deliver { event }),
        3 => prop::collection::vec(0..EVENTS, 1..5).prop_map(|events| Op::DeliverBatch { events }),
        1 => (0..EVENTS).prop_map(|event| Op::Retry { event }),
        1 => (0..INVOICES.len()).prop_map(|invoice| Op::Void { invoice }),
        2 => (0u8..4, 1u64..40).prop_map(|(key, amount)| Op::Consume { key, amount }),
        1 => prop::collection::vec((0u8..4, 1u64..40), 1..5).prop_map(|requests| Op::ConsumeBatch { requests }),
        1 => (4u8..7, 1u64..40).prop_map(|(key, amount)| Op::Hold { key, amount }),
        1 => (0usize..3, 0u64..40).prop_map(|(hold, amount)| Op::Capture { hold, amount }),
        1 => (0usize..3).prop_map(|hold| Op::Release { hold }),
        1 => (1i64..120).prop_map(|minutes| Op::Expire { minutes }),
    ]
}

/// Everything a caller can observe, read back through the store's reads.
#[derive(Debug, PartialEq)]
struct Observed {
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    ledger: Vec<LedgerEntry>,
    balance: Balance,
    holds: Vec<Hold>,
    log: Vec<LogEntry>,
    inbox: Vec<Option<InboxEntry>>,
}

/// One service on one store, driven by the operations.
struct Run {
    fixture: Fixture,
    invoices: Vec<IssuedInvoice>,
    payments: Vec<Payment>,
    holds: Vec<HoldId>,
    pool: Vec<(usize, Report)>,
}

impl Run {
    async fn new(store: Arc<dyn Store>, pool: Vec<(usize, Report)>) -> Run {
        let fixture = Fixture::new(store).await;
        let mut invoices = Vec::new();
        for (price, credits) in INVOICES {
            invoices.push(fixture.issued(price, credits).await);
        }
        Run { fixture, invoices, payments: Vec::new(), holds: Vec::new(), pool }
    }

    fn event(&self, index: usize) -> Option<ProviderEvent> {
        let (slot, report) = *self.pool.get(index)?;
        let payment = self.payments.get(slot)?;
        let total = payment.amount;
        let (kind, amount) = match report {
            Report::Success => (EventKind::Succeeded, Some(total)),
            Report::WrongAmount => (EventKind::Succeeded, Some(eur("1.00"))),
            Report::Failed => (EventKind::Failed, None),
            Report::Refund { quarters } => {
                let minor = total.to_minor().unwrap() * i64::from(quarters) / 4;
                (EventKind::Refunded { total_refunded: Money::from_minor(minor, Currency::EUR).unwrap() }, None)
            }
            Report::DisputeOpened => (EventKind::DisputeOpened, None),
            Report::DisputeLost => (EventKind::DisputeLost, None),
        };
        Some(self.fixture.event(&format!("evt-{index}"), payment, kind, amount))
    }

    /// Applies one operation and returns its result as text.
    async fn apply(&mut self, op: &Op) -> String {
        let service = &self.fixture.service;
        let tenant = self.fixture.tenant;
        let staff = &self.fixture.staff;
        match op {
            Op::StartHosted { invoice } => {
                let token = self.invoices[*invoice].token.expose().to_owned();
                let started = service
                    .start_public_payment(&token, &self.fixture.provider_name(), PaymentOptions::default())
                    .await;
                if let Ok(PaymentStart::Redirect { payment_id, .. }) = &started {
                    self.remember(*payment_id).await;
                }
                format!("{started:?}")
            }
            Op::StartManual { invoice, receipt } => {
                let id = self.invoices[*invoice].invoice.id;
                let reference = format!("receipt-{invoice}-{receipt}");
                let provider = self.fixture.provider_name();
                let started = service.record_manual_payment(staff, id, &provider, ManualMethod::Cash, &reference).await;
                if let Ok(PaymentStart::Completed { payment, .. }) = &started {
                    self.remember(payment.id).await;
                }
                format!("{started:?}")
            }
            Op::Deliver { event } => match self.event(*event) {
                Some(event) => format!("{:?}", self.fixture.deliver(&event).await),
                None => "no such event".into(),
            },
            Op::DeliverBatch { events } => {
                let requests: Vec<WebhookRequest> = events
                    .iter()
                    .filter_map(|index| self.event(*index))
                    .map(|event| self.fixture.provider.signed_webhook(&event).unwrap())
                    .collect();
                format!("{:?}", service.handle_webhook_batch(&self.fixture.provider_name(), &requests).await)
            }
            Op::Retry { event } => match self.event(*event) {
                Some(event) => format!("{:?}", service.retry_event(staff, &event.key()).await),
                None => "no such event".into(),
            },
            Op::Void { invoice } => {
                format!("{:?}", service.void_invoice(staff, self.invoices[*invoice].invoice.id).await)
            }
            Op::Consume { key, amount } => {
                let request = ConsumptionRequest {
                    tenant_id: tenant,
                    module: "render".into(),
                    amount: *amount,
                    idempotency_key: IdempotencyKey::new(format!("key-{key}")).unwrap(),
                };
                format!("{:?}", service.consume_credits(&request).await)
            }
            Op::ConsumeBatch { requests } => {
                let requests: Vec<ConsumptionRequest> = requests
                    .iter()
                    .map(|(key, amount)| ConsumptionRequest {
                        tenant_id: tenant,
                        module: "render".into(),
                        amount: *amount,
                        idempotency_key: IdempotencyKey::new(format!("key-{key}")).unwrap(),
                    })
                    .collect();
                format!("{:?}", service.consume_credits_batch(&requests).await)
            }
            Op::Hold { key, amount } => {
                let request = HoldRequest {
                    tenant_id: tenant,
                    module: "train".into(),
                    amount: *amount,
                    idempotency_key: IdempotencyKey::new(format!("key-{key}")).unwrap(),
                    expires_at: service.now() + Duration::hours(1),
                };
                let placed = service.place_hold(&request).await;
                if let Ok(hold) = &placed {
                    if !self.holds.contains(&hold.id) {
                        self.holds.push(hold.id);
                    }
                }
                format!("{placed:?}")
            }
            Op::Capture { hold, amount } => match self.holds.get(*hold) {
                Some(hold) => format!("{:?}", service.capture_hold(tenant, *hold, *amount).await),
                None => "no such hold".into(),
            },
            Op::Release { hold } => match self.holds.get(*hold) {
                Some(hold) => format!("{:?}", service.release_hold(tenant, *hold).await),
                None => "no such hold".into(),
            },
            Op::Expire { minutes } => {
                self.fixture.clock.advance(Duration::minutes(*minutes));
                format!("{:?}", service.expire_holds(tenant).await)
            }
        }
    }

    async fn remember(&mut self, payment_id: billing_domain::PaymentId) {
        if self.payments.len() < SLOTS && !self.payments.iter().any(|payment| payment.id == payment_id) {
            let payment = self.fixture.service.store().payment(payment_id).await.unwrap().unwrap();
            self.payments.push(payment);
        }
    }

    async fn observe(&self) -> Observed {
        let store = self.fixture.service.store();
        let service = &self.fixture.service;
        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        for issued in &self.invoices {
            invoices.push(store.invoice(issued.invoice.id).await.unwrap().unwrap());
            payments.extend(store.payments_for_invoice(issued.invoice.id).await.unwrap());
        }
        let mut inbox = Vec::new();
        for index in 0..EVENTS {
            if let Some(event) = self.event(index) {
                inbox.push(store.inbox_entry(&event.key()).await.unwrap());
            }
        }
        Observed {
            invoices,
            payments,
            ledger: service.history(self.fixture.tenant).await.unwrap(),
            balance: service.balance(self.fixture.tenant).await.unwrap(),
            holds: service.holds(self.fixture.tenant).await.unwrap(),
            log: store.log_entries(&LogFilter::default()).await.unwrap(),
            inbox,
        }
    }
}

#[test]
fn random_sequences_match_the_memory_store() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let db = runtime.block_on(TestDatabase::create(4));
    let config = Config { cases: CASES, failure_persistence: None, ..Config::default() };
    let strategy = (prop::collection::vec((0..SLOTS, report()), EVENTS), prop::collection::vec(op(), 1..50));

    let result = TestRunner::new(config).run(&strategy, |(pool, ops)| {
        runtime.block_on(async {
            db.empty().await;
            let mut model = Run::new(Arc::new(MemoryStore::new()), pool.clone()).await;
            let mut real = Run::new(db.store(), pool).await;
            prop_assert_eq!(model.observe().await, real.observe().await, "after the fixture");
            for (step, op) in ops.iter().enumerate() {
                let expected = model.apply(op).await;
                let found = real.apply(op).await;
                prop_assert_eq!(&expected, &found, "result of step {} ({:?})", step, op);
                prop_assert_eq!(model.observe().await, real.observe().await, "state after step {} ({:?})", step, op);
            }
            Ok(())
        })
    });

    runtime.block_on(db.drop());
    if let Err(failure) = result {
        panic!("the PostgreSQL store diverged from the in-memory store: {failure}");
    }
}
