//! Property tests of the whole model: random sequences of provider events
//! (duplicates, reorderings, wrong amounts and currencies, late reports,
//! refunds before success, disputes, second successes) and credit
//! operations (repeated idempotency keys, holds), with the invariants checked
//! after every step.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use billing_domain::event::{EventKind, ProviderEvent};
use billing_domain::ledger::{ConsumptionRequest, EntryKind, HoldRequest, LedgerEntry};
use billing_domain::log::InboxState;
use billing_domain::memory::MemoryStore;
use billing_domain::payment::Payment;
use billing_domain::service::{IssuedInvoice, PaymentOptions, PaymentStart};
use billing_domain::store::Store;
use billing_domain::testing::suite::{eur, Fixture};
use billing_domain::{
    BillingError, Currency, HoldId, IdempotencyKey, Invoice, InvoiceStatus, ManualMethod, Money, PaymentStatus,
};
use proptest::prelude::*;
use time::Duration;

/// Prices and credit rows of the two invoices every run starts with.
const INVOICES: [(&str, u64); 2] = [("20.00", 100), ("30.00", 60)];
const SLOTS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    StartHosted { invoice: usize },
    StartManual { invoice: usize, receipt: u8 },
    Deliver { event: usize },
    Consume { key: u8, amount: u64 },
    Hold { key: u8, amount: u64 },
    Capture { hold: usize, amount: u64 },
    Release { hold: usize },
    Expire { minutes: i64 },
}

/// What an event in the pool says, before it is bound to a payment.
#[derive(Debug, Clone, Copy)]
enum Report {
    Success,
    WrongAmount,
    WrongCurrency,
    Pending,
    Failed,
    Expired,
    Canceled,
    Refund { quarters: u8 },
    DisputeOpened,
    DisputeWon,
    DisputeLost,
    Unhandled,
}

fn report() -> impl Strategy<Value = Report> {
    prop_oneof![
        4 => Just(Report::Success),
        1 => Just(Report::WrongAmount),
        1 => Just(Report::WrongCurrency),
        1 => Just(Report::Pending),
        1 => Just(Report::Failed),
        1 => Just(Report::Expired),
        1 => Just(Report::Canceled),
        2 => (1u8..=4).prop_map(|quarters| Report::Refund { quarters }),
        1 => Just(Report::DisputeOpened),
        1 => Just(Report::DisputeWon),
        1 => Just(Report::DisputeLost),
        1 => Just(Report::Unhandled),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..INVOICES.len()).prop_map(|invoice| Op::StartHosted { invoice }),
        1 => (0..INVOICES.len(), 0u8..2).prop_map(|(invoice, receipt)| Op::StartManual { invoice, receipt }),
        8 => (0usize..12).prop_map(|event| Op::Deliver { event }),
        2 => (0u8..4, 1u64..40).prop_map(|(key, amount)| Op::Consume { key, amount }),
        1 => (4u8..7, 1u64..40).prop_map(|(key, amount)| Op::Hold { key, amount }),
        1 => (0usize..3, 0u64..40).prop_map(|(hold, amount)| Op::Capture { hold, amount }),
        1 => (0usize..3).prop_map(|hold| Op::Release { hold }),
        1 => (1i64..120).prop_map(|minutes| Op::Expire { minutes }),
    ]
}

struct Run {
    fixture: Fixture,
    invoices: Vec<IssuedInvoice>,
    payments: Vec<Payment>,
    holds: Vec<HoldId>,
    pool: Vec<(usize, Report)>,
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    invoices: Vec<Invoice>,
    payments: Vec<Payment>,
    ledger: Vec<LedgerEntry>,
}

impl Run {
    async fn new(pool: Vec<(usize, Report)>) -> Run {
        let fixture = Fixture::new(Arc::new(MemoryStore::new()) as Arc<dyn Store>).await;
        let mut invoices = Vec::new();
        for (price, credits) in INVOICES {
            invoices.push(fixture.issued(price, credits).await);
        }
        Run { fixture, invoices, payments: Vec::new(), holds: Vec::new(), pool }
    }

    fn event(&self, index: usize) -> Option<ProviderEvent> {
        let (slot, report) = *self.pool.get(index)?;
        let payment = self.payments.get(slot)?;
        let id = format!("evt-{index}");
        let total = payment.amount;
        let quarter = |quarters: u8| {
            let minor = total.to_minor().unwrap() * i64::from(quarters) / 4;
            Money::from_minor(minor, total.currency()).unwrap()
        };
        let (kind, amount) = match report {
            Report::Success => (EventKind::Succeeded, Some(total)),
            Report::WrongAmount => (EventKind::Succeeded, Some(eur("1.00"))),
            Report::WrongCurrency => (EventKind::Succeeded, Some(Money::new(total.amount(), Currency::USD).unwrap())),
            Report::Pending => (EventKind::Pending, None),
            Report::Failed => (EventKind::Failed, None),
            Report::Expired => (EventKind::Expired, None),
            Report::Canceled => (EventKind::Canceled, None),
            Report::Refund { quarters } => (EventKind::Refunded { total_refunded: quarter(quarters) }, None),
            Report::DisputeOpened => (EventKind::DisputeOpened, None),
            Report::DisputeWon => (EventKind::DisputeWon, None),
            Report::DisputeLost => (EventKind::DisputeLost, None),
            Report::Unhandled => (EventKind::Ignored { provider_type: "customer.updated".into() }, None),
        };
        Some(self.fixture.event(&id, payment, kind, amount))
    }

    async fn snapshot(&self) -> Snapshot {
        let store = self.fixture.service.store();
        let mut invoices = Vec::new();
        let mut payments = Vec::new();
        for issued in &self.invoices {
            invoices.push(store.invoice(issued.invoice.id).await.unwrap().unwrap());
            payments.extend(store.payments_for_invoice(issued.invoice.id).await.unwrap());
        }
        Snapshot { invoices, payments, ledger: self.fixture.service.history(self.fixture.tenant).await.unwrap() }
    }

    async fn apply(&mut self, op: &Op) {
        let service = &self.fixture.service;
        let tenant = self.fixture.tenant;
        match op {
            Op::StartHosted { invoice } => {
                let issued = &self.invoices[*invoice];
                let started = service
                    .start_public_payment(
                        issued.token.expose(),
                        &self.fixture.provider_name(),
                        PaymentOptions::default(),
                    )
                    .await;
                if let Ok(PaymentStart::Redirect { payment_id, .. }) = started {
                    self.remember(payment_id).await;
                }
            }
            Op::StartManual { invoice, receipt } => {
                let id = self.invoices[*invoice].invoice.id;
                let provider = self.fixture.provider_name();
                let reference = format!("receipt-{invoice}-{receipt}");
                let started = service
                    .record_manual_payment(&self.fixture.staff, id, &provider, ManualMethod::Cash, &reference)
                    .await;
                if let Ok(PaymentStart::Completed { payment, .. }) = started {
                    self.remember(payment.id).await;
                }
            }
            Op::Deliver { event } => self.deliver(*event).await,
            Op::Consume { key, amount } => {
                let request = ConsumptionRequest {
                    tenant_id: tenant,
                    module: "render".into(),
                    amount: *amount,
                    idempotency_key: IdempotencyKey::new(format!("key-{key}")).unwrap(),
                };
                let _ = service.consume_credits(&request).await;
            }
            Op::Hold { key, amount } => {
                let request = HoldRequest {
                    tenant_id: tenant,
                    module: "train".into(),
                    amount: *amount,
                    idempotency_key: IdempotencyKey::new(format!("key-{key}")).unwrap(),
                    expires_at: service.now() + Duration::hours(1),
                };
                if let Ok(hold) = service.place_hold(&request).await {
                    if !self.holds.contains(&hold.id) {
                        self.holds.push(hold.id);
                    }
                }
            }
            Op::Capture { hold, amount } => {
                if let Some(hold) = self.holds.get(*hold) {
                    let _ = service.capture_hold(tenant, *hold, *amount).await;
                }
            }
            Op::Release { hold } => {
                if let Some(hold) = self.holds.get(*hold) {
                    let _ = service.release_hold(tenant, *hold).await;
                }
            }
            Op::Expire { minutes } => {
                self.fixture.clock.advance(Duration::minutes(*minutes));
                service.expire_holds(tenant).await.unwrap();
            }
        }
    }

    async fn remember(&mut self, payment_id: billing_domain::PaymentId) {
        if self.payments.len() < SLOTS && !self.payments.iter().any(|payment| payment.id == payment_id) {
            let payment = self.fixture.service.store().payment(payment_id).await.unwrap().unwrap();
            self.payments.push(payment);
        }
    }

    async fn deliver(&mut self, index: usize) {
        let Some(event) = self.event(index) else { return };
        let store = self.fixture.service.store();
        let done_before =
            matches!(store.inbox_entry(&event.key()).await.unwrap(), Some(entry) if entry.state == InboxState::Done);
        let before = self.snapshot().await;

        self.fixture.deliver(&event).await;

        if done_before {
            assert_eq!(self.snapshot().await, before, "a duplicate of {} changed more than the log", event.event_id);
        }
    }

    async fn check_invariants(&self) {
        let store = self.fixture.service.store();
        let ledger = self.fixture.service.history(self.fixture.tenant).await.unwrap();
        let balance = self.fixture.service.balance(self.fixture.tenant).await.unwrap();

        let sum: i64 = ledger.iter().map(|entry| entry.amount).sum();
        assert_eq!(balance.balance, sum, "balance equals the sum of entries");
        assert!(balance.balance >= 0, "balance {} is negative without a policy", balance.balance);
        assert!(balance.available >= 0, "available {} is negative", balance.available);

        for (issued, (_, promised)) in self.invoices.iter().zip(INVOICES) {
            let invoice = store.invoice(issued.invoice.id).await.unwrap().unwrap();
            let payments = store.payments_for_invoice(invoice.id).await.unwrap();
            check_paid_exactly_when_settled(&invoice, &payments);

            let grants: Vec<&LedgerEntry> = ledger
                .iter()
                .filter(|entry| matches!(entry.kind, EntryKind::Grant { invoice_id, .. } if invoice_id == invoice.id))
                .collect();
            let granted: i64 = grants.iter().map(|entry| entry.amount).sum();
            assert!(grants.len() <= 1, "invoice {} was granted {} times", invoice.number, grants.len());
            assert!(
                granted <= i64::try_from(promised).unwrap(),
                "granted {granted} exceeds the credit rows {promised}"
            );

            let public = self.fixture.service.public_entry(issued.token.expose()).await;
            assert_eq!(
                public.is_ok(),
                invoice.status() == InvoiceStatus::Open,
                "public entry payable exactly while open"
            );
            if let Err(error) = public {
                assert!(matches!(error, BillingError::PublicLinkGone { .. }), "{error:?}");
            }
        }
    }
}

fn check_paid_exactly_when_settled(invoice: &Invoice, payments: &[Payment]) {
    let total = invoice.total().unwrap();
    let settled = invoice.settled_by().and_then(|id| payments.iter().find(|payment| payment.id == id));
    let settled_and_standing = settled.is_some_and(|payment| {
        payment.amount == total
            && matches!(
                payment.status(),
                PaymentStatus::Succeeded
                    | PaymentStatus::PartiallyRefunded
                    | PaymentStatus::Disputed
                    | PaymentStatus::DisputeWon
            )
    });
    let paid =
        matches!(invoice.status(), InvoiceStatus::Paid | InvoiceStatus::PartiallyRefunded | InvoiceStatus::Disputed);
    assert_eq!(
        paid,
        settled_and_standing,
        "invoice {} is {} while its settling payment is {:?}",
        invoice.number,
        invoice.status(),
        settled.map(Payment::status)
    );
    if invoice.status() == InvoiceStatus::Open {
        assert!(invoice.settled_by().is_none(), "an open invoice has no settling payment");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_invariant(
        pool in prop::collection::vec((0..SLOTS, report()), 12),
        ops in prop::collection::vec(op(), 1..60),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut run = Run::new(pool).await;
            for op in &ops {
                run.apply(op).await;
                run.check_invariants().await;
            }
        });
    }
}
