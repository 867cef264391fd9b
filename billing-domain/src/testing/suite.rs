//! The behaviour suite: service-level cases every [`Store`] must pass.
//!
//! Each case drives [`BillingService`] through one promise of the library
//! (a rule, a flow, a race) on a fresh store and panics with a message that
//! names what broke. [`behaviour_suite!`](crate::behaviour_suite) turns the
//! cases into one `#[tokio::test]` each, so the in-memory store and the
//! PostgreSQL store run the very same code:
//!
//! ```text
//! billing_domain::behaviour_suite!(|| async { std::sync::Arc::new(MemoryStore::new()) as Arc<dyn Store> });
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use crate::directory::{Content, Project, Role};
use crate::event::{EventKind, ProviderEvent};
use crate::ids::{IdempotencyKey, ProviderName, TenantId, UserId};
use crate::invoice::{InvoiceRow, InvoiceStatus};
use crate::ledger::{ConsumptionRequest, EntryKind, HoldRequest, HoldStatus, LedgerError, OverdraftPolicy};
use crate::log::LogOutcome;
use crate::money::{Currency, Money};
use crate::payment::{ManualMethod, Payment, PaymentStatus};
use crate::provider::ProviderError;
use crate::service::{
    AccessError, BillingError, BillingService, CustomerContext, ForcedOutcome, IssuedInvoice, NewInvoice,
    PaymentOptions, PaymentStart, PublicStatus, StaffContext,
};
use crate::store::Store;
use crate::testing::{ManualClock, ScriptedProvider, SeededRandom};
use crate::Transition;

/// Generates one `#[tokio::test]` per behaviour case. `$make` is a closure
/// returning a future that yields a fresh `Arc<dyn Store>`.
#[macro_export]
macro_rules! behaviour_suite {
    ($make:expr) => {
        $crate::behaviour_suite!(@cases $make;
            public_entry_shows_amount_status_and_hint_only,
            public_entry_is_not_found_for_unknown_draft_and_retired_tokens,
            public_entry_is_gone_after_payment_and_void,
            public_entry_is_processing_while_a_payment_is_pending,
            failed_attempt_makes_the_invoice_payable_again,
            paid_webhook_marks_paid_and_grants_credits_once,
            return_fetch_and_webhook_apply_once,
            amount_mismatch_is_rejected_and_pays_nothing,
            currency_mismatch_is_rejected_and_pays_nothing,
            late_pending_and_expired_after_success_change_nothing,
            refund_before_success_is_parked_then_reconciled,
            partial_then_full_refund_reverses_credits_proportionally,
            lost_dispute_reverses_credits_and_won_dispute_restores_paid,
            second_success_is_an_overpayment_without_credits,
            unmatched_event_is_kept_for_staff_and_retried,
            forged_webhook_is_rejected_and_logged,
            start_timeout_leaves_payment_unknown_until_reconciled,
            timed_out_start_learns_reference_from_event,
            forced_outcome_records_staff_and_reason,
            manual_payment_is_idempotent_by_reference,
            zero_total_invoice_completes_at_once,
            consumption_replays_same_key_and_rejects_changed_request,
            consumption_never_overdraws_without_policy,
            holds_capture_release_and_expire_once,
            reversal_never_drives_balance_negative,
            customer_sees_rows_but_never_internal_notes,
            other_company_cannot_see_invoice_or_content,
            content_unlocks_only_after_store_confirms_payment,
            tenant_portal_lists_only_own_company_projects,
            staff_context_requires_staff_membership,
            concurrent_duplicate_deliveries_apply_once,
            concurrent_consumers_share_keys_without_double_charge,
            void_invoice_cannot_be_paid,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let store: ::std::sync::Arc<dyn $crate::store::Store> = ($make)().await;
                $crate::testing::suite::$case(store).await;
            }
        )*
    };
}

const PROVIDER: &str = "scripted";
const SECRET: &str = "suite-secret";

/// A tenant with a staff member, a customer company with one member, a
/// project, content and the scripted provider, over the store under test.
#[derive(Debug)]
pub struct Fixture {
    invoice_numbers: std::sync::atomic::AtomicU32,
    pub service: BillingService,
    pub provider: Arc<ScriptedProvider>,
    pub clock: Arc<ManualClock>,
    pub staff: StaffContext,
    pub customer: CustomerContext,
    pub tenant: TenantId,
    pub project: Project,
    pub content: Content,
}

impl Fixture {
    pub async fn new(store: Arc<dyn Store>) -> Fixture {
        Fixture::with_policy(store, OverdraftPolicy::default()).await
    }

    pub async fn with_policy(store: Arc<dyn Store>, policy: OverdraftPolicy) -> Fixture {
        let clock = Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH + Duration::days(20_000)));
        let provider = Arc::new(ScriptedProvider::new(PROVIDER, SECRET).unwrap());
        let service =
            BillingService::new(store, clock.clone(), Arc::new(SeededRandom::new(7))).with_provider(provider.clone());
        let (tenant, staff) = service.create_tenant("Acme workspace", user(1), "Sam Staff", policy).await.unwrap();
        let company = service.add_company(&staff, "Customer Ltd").await.unwrap();
        let project =
            service.add_project(&staff, company.id, "Website", "https://projects.invalid/website").await.unwrap();
        let content = service.add_content(&staff, "Design guide", "https://content.invalid/guide.pdf").await.unwrap();
        service.add_member(&staff, user(2), "Casey Customer", Role::Customer { company_id: company.id }).await.unwrap();
        let customer = service.customer_context(tenant.id, user(2)).await.unwrap();
        Fixture {
            invoice_numbers: std::sync::atomic::AtomicU32::new(1),
            service,
            provider,
            clock,
            staff,
            customer,
            tenant: tenant.id,
            project,
            content,
        }
    }

    pub fn provider_name(&self) -> ProviderName {
        ProviderName::new(PROVIDER).unwrap()
    }

    /// Creates and issues an invoice of `price` EUR with a credit row of `credits`.
    pub async fn issued(&self, price: &str, credits: u64) -> IssuedInvoice {
        let rows = vec![
            InvoiceRow {
                description: "Credits pack".into(),
                quantity: Decimal::ONE,
                unit_price: eur(price),
                project: Some(self.project.id),
                content: Some(self.content.id),
                credits: (credits > 0).then_some(credits),
            },
            InvoiceRow {
                description: "Setup work".into(),
                quantity: Decimal::ONE,
                unit_price: eur("0"),
                project: None,
                content: None,
                credits: None,
            },
        ];
        let number = format!("2026-{:04}", self.invoice_numbers.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let invoice = self
            .service
            .create_invoice(
                &self.staff,
                NewInvoice { company_id: self.customer.company_id(), number, currency: Currency::EUR, rows },
            )
            .await
            .unwrap();
        self.service.issue_invoice(&self.staff, invoice.id).await.unwrap()
    }

    /// Starts a hosted-page payment through the public link and returns it.
    pub async fn start(&self, issued: &IssuedInvoice) -> Payment {
        let start = self
            .service
            .start_public_payment(issued.token.expose(), &self.provider_name(), PaymentOptions::default())
            .await
            .unwrap();
        let PaymentStart::Redirect { payment_id, .. } = start else { panic!("expected a redirect, got {start:?}") };
        self.service.store().payment(payment_id).await.unwrap().unwrap()
    }

    pub fn event(&self, id: &str, payment: &Payment, kind: EventKind, amount: Option<Money>) -> ProviderEvent {
        self.provider.event(id, payment, kind, amount).unwrap()
    }

    /// Delivers `event` as a signed webhook and returns its single outcome.
    pub async fn deliver(&self, event: &ProviderEvent) -> LogOutcome {
        self.deliver_report(event).await.outcome
    }

    /// Delivers `event` as a signed webhook and returns its single report.
    pub async fn deliver_report(&self, event: &ProviderEvent) -> crate::service::EventReport {
        let request = self.provider.signed_webhook(event).unwrap();
        let mut reports = self.service.handle_webhook(&self.provider_name(), &request).await.unwrap();
        assert_eq!(reports.len(), 1, "one event per webhook");
        reports.remove(0)
    }

    pub async fn payment(&self, payment: &Payment) -> Payment {
        self.service.store().payment(payment.id).await.unwrap().unwrap()
    }

    pub async fn invoice_status(&self, issued: &IssuedInvoice) -> InvoiceStatus {
        self.service.store().invoice(issued.invoice.id).await.unwrap().unwrap().status()
    }

    pub async fn balance(&self) -> i64 {
        self.service.balance(self.tenant).await.unwrap().balance
    }

    /// Checks that the balance equals the sum of the ledger entries.
    pub async fn assert_ledger_consistent(&self) {
        let entries = self.service.history(self.tenant).await.unwrap();
        let sum: i64 = entries.iter().map(|entry| entry.amount).sum();
        assert_eq!(self.balance().await, sum, "balance must equal the sum of entries");
    }

    pub async fn grants(&self) -> usize {
        let entries = self.service.history(self.tenant).await.unwrap();
        entries.iter().filter(|entry| matches!(entry.kind, EntryKind::Grant { .. })).count()
    }

    pub async fn paid(&self, price: &str, credits: u64) -> (IssuedInvoice, Payment) {
        let issued = self.issued(price, credits).await;
        let payment = self.start(&issued).await;
        let outcome = self.deliver(&self.event("evt-paid", &payment, EventKind::Succeeded, Some(eur(price)))).await;
        assert_eq!(outcome, LogOutcome::Applied);
        (issued, payment)
    }
}

pub fn user(n: u8) -> UserId {
    UserId::from_random_bytes([n; 16])
}

pub fn eur(amount: &str) -> Money {
    Money::new(amount.parse().unwrap(), Currency::EUR).unwrap()
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::new(text).unwrap()
}

pub async fn public_entry_shows_amount_status_and_hint_only(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;

    let entry = fixture.service.public_entry(issued.token.expose()).await.unwrap();

    assert_eq!(entry.amount, eur("20.00"));
    assert_eq!(entry.status, PublicStatus::Payable);
    let json = serde_json::to_string(&entry).unwrap();
    for private in ["Credits pack", "Setup work", "Customer Ltd", "Website", "Design guide", "2026-"] {
        assert!(!json.contains(private), "public entry leaks {private:?}: {json}");
    }
}

pub async fn public_entry_is_not_found_for_unknown_draft_and_retired_tokens(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 0).await;

    let unknown = fixture.service.public_entry("0".repeat(64).as_str()).await.unwrap_err();
    assert_eq!(unknown, BillingError::PublicLinkNotFound);

    let fresh = fixture.service.mint_public_link(&fixture.staff, issued.invoice.id).await.unwrap();
    assert_eq!(
        fixture.service.public_entry(issued.token.expose()).await.unwrap_err(),
        BillingError::PublicLinkNotFound
    );
    assert!(fixture.service.public_entry(fresh.expose()).await.is_ok());
    assert_ne!(fresh.expose(), issued.token.expose());
    assert!(fresh.expose().len() >= 32, "at least 128 bits");
}

pub async fn public_entry_is_gone_after_payment_and_void(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (paid, _) = fixture.paid("20.00", 0).await;
    assert_eq!(
        fixture.service.public_entry(paid.token.expose()).await.unwrap_err(),
        BillingError::PublicLinkGone { status: InvoiceStatus::Paid }
    );
    let error = fixture
        .service
        .start_public_payment(paid.token.expose(), &fixture.provider_name(), PaymentOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error, BillingError::PublicLinkGone { status: InvoiceStatus::Paid });

    let voided = fixture.issued("5.00", 0).await;
    fixture.service.void_invoice(&fixture.staff, voided.invoice.id).await.unwrap();
    assert_eq!(
        fixture.service.public_entry(voided.token.expose()).await.unwrap_err(),
        BillingError::PublicLinkGone { status: InvoiceStatus::Void }
    );
}

pub async fn public_entry_is_processing_while_a_payment_is_pending(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 0).await;
    let payment = fixture.start(&issued).await;

    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Pending);
    let entry = fixture.service.public_entry(issued.token.expose()).await.unwrap();
    assert_eq!(entry.status, PublicStatus::Processing);
    let second = fixture
        .service
        .start_public_payment(issued.token.expose(), &fixture.provider_name(), PaymentOptions::default())
        .await
        .unwrap_err();
    assert_eq!(second, BillingError::PaymentInProgress { invoice: issued.invoice.id, payment: payment.id });
}

pub async fn failed_attempt_makes_the_invoice_payable_again(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 0).await;
    let payment = fixture.start(&issued).await;

    let outcome = fixture.deliver(&fixture.event("evt-expired", &payment, EventKind::Expired, None)).await;

    assert_eq!(outcome, LogOutcome::Applied);
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Expired);
    let entry = fixture.service.public_entry(issued.token.expose()).await.unwrap();
    assert_eq!(entry.status, PublicStatus::Payable);
    let retry = fixture.start(&issued).await;
    assert_ne!(retry.id, payment.id);
}

pub async fn paid_webhook_marks_paid_and_grants_credits_once(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let event = fixture.event("evt-1", &payment, EventKind::Succeeded, Some(eur("20.00")));

    assert_eq!(fixture.deliver(&event).await, LogOutcome::Applied);
    assert_eq!(fixture.deliver(&event).await, LogOutcome::Duplicate);
    assert_eq!(fixture.deliver(&event).await, LogOutcome::Duplicate);

    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Paid);
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Succeeded);
    assert_eq!(fixture.balance().await, 100);
    assert_eq!(fixture.grants().await, 1);
    fixture.assert_ledger_consistent().await;
}

pub async fn return_fetch_and_webhook_apply_once(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let reference = ScriptedProvider::reference_for(payment.id).unwrap();
    let fetched = fixture.event("fetch-succeeded", &payment, EventKind::Succeeded, Some(eur("20.00")));
    fixture.provider.script_state(&reference, fetched);

    let status = fixture.service.confirm_return(payment.id).await.unwrap();
    assert!(status.confirmed);
    assert_eq!(status.invoice_status, InvoiceStatus::Paid);

    let webhook = fixture.event("evt-late-webhook", &payment, EventKind::Succeeded, Some(eur("20.00")));
    assert_eq!(fixture.deliver(&webhook).await, LogOutcome::Ignored);
    let again = fixture.service.confirm_return_by_reference(&fixture.provider_name(), &reference).await.unwrap();
    assert!(again.confirmed);
    assert_eq!(fixture.balance().await, 100);
    assert_eq!(fixture.grants().await, 1);
}

pub async fn amount_mismatch_is_rejected_and_pays_nothing(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;

    let outcome = fixture.deliver(&fixture.event("evt-cheap", &payment, EventKind::Succeeded, Some(eur("2.00")))).await;
    let no_amount = fixture.deliver(&fixture.event("evt-none", &payment, EventKind::Succeeded, None)).await;

    assert_eq!(outcome, LogOutcome::Rejected);
    assert_eq!(no_amount, LogOutcome::Rejected);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    assert_eq!(fixture.balance().await, 0);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert_eq!(open.iter().filter(|entry| entry.outcome == LogOutcome::Rejected).count(), 2);
}

pub async fn currency_mismatch_is_rejected_and_pays_nothing(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let usd = Money::new("20.00".parse().unwrap(), Currency::USD).unwrap();

    let outcome = fixture.deliver(&fixture.event("evt-usd", &payment, EventKind::Succeeded, Some(usd))).await;

    assert_eq!(outcome, LogOutcome::Rejected);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    assert_eq!(fixture.balance().await, 0);
}

pub async fn late_pending_and_expired_after_success_change_nothing(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (issued, payment) = fixture.paid("20.00", 100).await;

    let pending = fixture.deliver(&fixture.event("evt-pending", &payment, EventKind::Pending, None)).await;
    let expired = fixture.deliver(&fixture.event("evt-expired", &payment, EventKind::Expired, None)).await;
    let failed = fixture.deliver(&fixture.event("evt-failed", &payment, EventKind::Failed, None)).await;

    assert_eq!((pending, expired, failed), (LogOutcome::Ignored, LogOutcome::Ignored, LogOutcome::Ignored));
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Succeeded);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Paid);
    assert_eq!(fixture.balance().await, 100);
}

pub async fn refund_before_success_is_parked_then_reconciled(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let refund = fixture.event("evt-refund", &payment, EventKind::Refunded { total_refunded: eur("20.00") }, None);

    assert_eq!(fixture.deliver(&refund).await, LogOutcome::Parked);
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Pending);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert!(open.iter().any(|entry| entry.outcome == LogOutcome::Parked));

    let reference = ScriptedProvider::reference_for(payment.id).unwrap();
    fixture
        .provider
        .script_state(&reference, fixture.event("fetch-ok", &payment, EventKind::Succeeded, Some(eur("20.00"))));
    let report = fixture.service.reconcile_payment(&fixture.staff, payment.id).await.unwrap();

    assert_eq!(report.fetched[0].outcome, LogOutcome::Applied);
    assert_eq!(report.retried.len(), 1);
    assert_eq!(report.retried[0].outcome, LogOutcome::Applied);
    assert_eq!(report.payment.status(), PaymentStatus::Refunded);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Refunded);
    assert_eq!(fixture.balance().await, 0);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert!(open.iter().all(|entry| entry.outcome != LogOutcome::Parked), "parked entry resolved: {open:?}");
    fixture.assert_ledger_consistent().await;
}

pub async fn partial_then_full_refund_reverses_credits_proportionally(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (issued, payment) = fixture.paid("20.00", 100).await;

    let half = fixture.event("evt-r1", &payment, EventKind::Refunded { total_refunded: eur("10.00") }, None);
    assert_eq!(fixture.deliver(&half).await, LogOutcome::Applied);
    assert_eq!(fixture.balance().await, 50);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::PartiallyRefunded);

    let stale = fixture.event("evt-r0", &payment, EventKind::Refunded { total_refunded: eur("5.00") }, None);
    assert_eq!(fixture.deliver(&stale).await, LogOutcome::Ignored);

    let full = fixture.event("evt-r2", &payment, EventKind::Refunded { total_refunded: eur("20.00") }, None);
    assert_eq!(fixture.deliver(&full).await, LogOutcome::Applied);
    assert_eq!(fixture.balance().await, 0);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Refunded);
    assert_eq!(fixture.payment(&payment).await.status(), PaymentStatus::Refunded);

    let too_much = fixture.event("evt-r3", &payment, EventKind::Refunded { total_refunded: eur("25.00") }, None);
    assert_eq!(fixture.deliver(&too_much).await, LogOutcome::Rejected);
    fixture.assert_ledger_consistent().await;
}

pub async fn lost_dispute_reverses_credits_and_won_dispute_restores_paid(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (won_invoice, won_payment) = fixture.paid("20.00", 100).await;
    assert_eq!(
        fixture.deliver(&fixture.event("evt-d1", &won_payment, EventKind::DisputeOpened, None)).await,
        LogOutcome::Applied
    );
    assert_eq!(fixture.invoice_status(&won_invoice).await, InvoiceStatus::Disputed);
    assert_eq!(
        fixture.deliver(&fixture.event("evt-d2", &won_payment, EventKind::DisputeWon, None)).await,
        LogOutcome::Applied
    );
    assert_eq!(fixture.invoice_status(&won_invoice).await, InvoiceStatus::Paid);
    assert_eq!(fixture.balance().await, 100);

    let lost_invoice = fixture.issued("30.00", 60).await;
    let lost_payment = fixture.start(&lost_invoice).await;
    fixture.deliver(&fixture.event("evt-p2", &lost_payment, EventKind::Succeeded, Some(eur("30.00")))).await;
    assert_eq!(fixture.balance().await, 160);
    let closed_early = fixture.event("evt-d4", &lost_payment, EventKind::DisputeLost, None);
    assert_eq!(fixture.deliver(&closed_early).await, LogOutcome::Parked);
    fixture.deliver(&fixture.event("evt-d3", &lost_payment, EventKind::DisputeOpened, None)).await;
    assert_eq!(fixture.deliver(&closed_early).await, LogOutcome::Applied);

    assert_eq!(fixture.invoice_status(&lost_invoice).await, InvoiceStatus::Refunded);
    assert_eq!(fixture.payment(&lost_payment).await.status(), PaymentStatus::DisputeLost);
    assert_eq!(fixture.balance().await, 100);
    fixture.assert_ledger_consistent().await;
}

pub async fn second_success_is_an_overpayment_without_credits(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let first = fixture.start(&issued).await;
    let started = fixture
        .service
        .record_manual_payment(
            &fixture.staff,
            issued.invoice.id,
            &fixture.provider_name(),
            ManualMethod::BankTransfer,
            "RF18 5390 0754 7034",
        )
        .await
        .unwrap();
    let PaymentStart::Completed { payment: manual, .. } = started else {
        panic!("manual payment completes at once: {started:?}")
    };
    assert_eq!(manual.status(), PaymentStatus::Succeeded);

    let late_card = fixture.event("evt-late-card", &first, EventKind::Succeeded, Some(eur("20.00")));
    let report = fixture.deliver_report(&late_card).await;

    assert_eq!(report.outcome, LogOutcome::Applied);
    assert!(report.needs_attention, "an applied overpayment still needs staff");
    let card = fixture.payment(&first).await;
    assert!(card.overpayment, "second success is flagged as overpayment");
    assert_eq!(fixture.balance().await, 100);
    assert_eq!(fixture.grants().await, 1);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert!(open.iter().any(|entry| entry.payment_id == Some(first.id) && entry.reason.contains("overpayment")));
}

pub async fn unmatched_event_is_kept_for_staff_and_retried(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 10).await;
    let payment = fixture.start(&issued).await;
    let mut event = fixture.event("evt-orphan", &payment, EventKind::Succeeded, Some(eur("20.00")));
    event.matches.payment_id = Some(crate::ids::PaymentId::from_random_bytes([9; 16]));
    event.matches.tenant_id = None;

    assert_eq!(fixture.deliver(&event).await, LogOutcome::Unmatched);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert!(open.iter().any(|entry| entry.outcome == LogOutcome::Unmatched));
    assert_eq!(fixture.deliver(&event).await, LogOutcome::Unmatched, "an unresolved event is retried, not a duplicate");

    let report = fixture.service.retry_event(&fixture.staff, &event.key()).await.unwrap();
    assert_eq!(report.outcome, LogOutcome::Unmatched);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert_eq!(
        open.iter().filter(|entry| entry.outcome == LogOutcome::Unmatched).count(),
        1,
        "retries replace the open entry"
    );
}

pub async fn forged_webhook_is_rejected_and_logged(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 10).await;
    let payment = fixture.start(&issued).await;
    let event = fixture.event("evt-forged", &payment, EventKind::Succeeded, Some(eur("20.00")));
    let mut request = fixture.provider.signed_webhook(&event).unwrap();
    request.body[10] ^= 1;

    let error = fixture.service.handle_webhook(&fixture.provider_name(), &request).await.unwrap_err();

    assert!(matches!(error, BillingError::Provider(ProviderError::InvalidWebhook { .. })), "{error:?}");
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Open);
    assert!(fixture.service.store().inbox_entry(&event.key()).await.unwrap().is_none());
    let unknown = fixture.service.handle_webhook(&ProviderName::new("nobody").unwrap(), &request).await.unwrap_err();
    assert!(matches!(unknown, BillingError::UnknownProvider { .. }));
}

pub async fn start_timeout_leaves_payment_unknown_until_reconciled(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 10).await;
    fixture
        .provider
        .fail_next_start(ProviderError::Timeout { provider: fixture.provider_name(), during: "start".into() });

    let error = fixture
        .service
        .start_public_payment(issued.token.expose(), &fixture.provider_name(), PaymentOptions::default())
        .await
        .unwrap_err();
    let BillingError::StartFailed { payment: payment_id, .. } = error else {
        panic!("expected StartFailed, got {error:?}")
    };
    let payment = fixture.service.store().payment(payment_id).await.unwrap().unwrap();
    assert_eq!(payment.status(), PaymentStatus::Unknown);
    assert_eq!(fixture.service.public_entry(issued.token.expose()).await.unwrap().status, PublicStatus::Processing);

    fixture.clock.advance(Duration::minutes(30));
    let stale = fixture.service.stale_payments(&fixture.staff, Duration::minutes(15), 10).await.unwrap();
    assert_eq!(stale.iter().map(|payment| payment.id).collect::<Vec<_>>(), vec![payment_id]);

    fixture
        .provider
        .fail_next_fetch(ProviderError::Timeout { provider: fixture.provider_name(), during: "fetch".into() });
    let report = fixture.service.reconcile_payment(&fixture.staff, payment_id).await.unwrap();
    assert!(report.fetch_error.is_some());
    assert_eq!(report.payment.status(), PaymentStatus::Unknown, "a fetch timeout never fails a payment");
}

pub async fn timed_out_start_learns_reference_from_event(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 10).await;
    fixture
        .provider
        .fail_next_start(ProviderError::Timeout { provider: fixture.provider_name(), during: "start".into() });
    let error = fixture
        .service
        .start_public_payment(issued.token.expose(), &fixture.provider_name(), PaymentOptions::default())
        .await
        .unwrap_err();
    let BillingError::StartFailed { payment: payment_id, .. } = error else {
        panic!("expected StartFailed, got {error:?}")
    };
    let payment = fixture.service.store().payment(payment_id).await.unwrap().unwrap();
    assert_eq!(payment.reference, None);

    let pending = fixture.event("evt-pending", &payment, EventKind::Pending, None);
    assert_eq!(fixture.deliver(&pending).await, LogOutcome::Applied);

    let learned = fixture.payment(&payment).await;
    let reference = ScriptedProvider::reference_for(payment.id).unwrap();
    assert_eq!(learned.reference.as_ref(), Some(&reference));
    assert_eq!(learned.status(), PaymentStatus::Pending);
    let found = fixture.service.store().payment_by_reference(&fixture.provider_name(), &reference).await.unwrap();
    assert_eq!(found.map(|found| found.id), Some(payment.id));
}

pub async fn forced_outcome_records_staff_and_reason(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 10).await;
    let payment = fixture.start(&issued).await;

    let empty =
        fixture.service.force_outcome(&fixture.staff, payment.id, ForcedOutcome::Succeeded, " ").await.unwrap_err();
    assert!(matches!(empty, BillingError::InvalidInput { .. }));
    let report = fixture
        .service
        .force_outcome(&fixture.staff, payment.id, ForcedOutcome::Succeeded, "bank statement shows the transfer")
        .await
        .unwrap();

    assert_eq!(report.outcome, LogOutcome::Applied);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Paid);
    assert_eq!(fixture.balance().await, 10);
    let log = fixture.service.invoice_log(&fixture.staff, issued.invoice.id).await.unwrap();
    assert!(log
        .iter()
        .any(|entry| entry.actor == Some(fixture.staff.user_id()) && entry.reason.contains("bank statement")));
}

pub async fn manual_payment_is_idempotent_by_reference(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let provider = fixture.provider_name();

    let first = fixture
        .service
        .record_manual_payment(&fixture.staff, issued.invoice.id, &provider, ManualMethod::Cash, "receipt-7")
        .await
        .unwrap();
    let second = fixture
        .service
        .record_manual_payment(&fixture.staff, issued.invoice.id, &provider, ManualMethod::Cash, "receipt-7")
        .await
        .unwrap();

    let PaymentStart::Completed { payment, .. } = first else { panic!("first record completes: {first:?}") };
    let PaymentStart::AlreadyRecorded { payment: again } = second else {
        panic!("second record is a replay: {second:?}")
    };
    assert_eq!(payment.id, again.id);
    let planned = format!("cash:{}:receipt-7", issued.invoice.id);
    let kept = payment.reference.as_ref().map(|reference| reference.as_str());
    assert_eq!(kept, Some(planned.as_str()), "the planned reference is kept");
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Paid);
    assert_eq!(fixture.balance().await, 100);
    assert_eq!(fixture.provider.starts(), 1);
}

pub async fn zero_total_invoice_completes_at_once(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("0", 5).await;

    let start = fixture
        .service
        .start_public_payment(issued.token.expose(), &fixture.provider_name(), PaymentOptions::default())
        .await
        .unwrap();

    let PaymentStart::Completed { payment, .. } = start else { panic!("zero total completes: {start:?}") };
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Paid);
    assert_eq!(fixture.balance().await, 5);
}

pub async fn consumption_replays_same_key_and_rejects_changed_request(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    fixture.paid("20.00", 100).await;
    let request = ConsumptionRequest {
        tenant_id: fixture.tenant,
        module: "render".into(),
        amount: 30,
        idempotency_key: key("job-1"),
    };

    let first = fixture.service.consume_credits(&request).await.unwrap();
    let replay = fixture.service.consume_credits(&request).await.unwrap();
    let changed = ConsumptionRequest { amount: 31, ..request.clone() };
    let error = fixture.service.consume_credits(&changed).await.unwrap_err();

    assert_eq!(first.transition, Transition::Applied);
    assert_eq!(replay.transition, Transition::AlreadyApplied);
    assert_eq!(replay.entry_id, first.entry_id);
    assert_eq!(error, BillingError::Ledger(LedgerError::IdempotencyKeyReused { key: key("job-1") }));
    assert_eq!(fixture.balance().await, 70);
}

pub async fn consumption_never_overdraws_without_policy(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    fixture.paid("20.00", 10).await;
    let request = ConsumptionRequest {
        tenant_id: fixture.tenant,
        module: "render".into(),
        amount: 11,
        idempotency_key: key("big"),
    };

    let error = fixture.service.consume_credits(&request).await.unwrap_err();

    assert!(matches!(
        error,
        BillingError::Ledger(LedgerError::InsufficientCredits { requested: 11, available: 10, .. })
    ));
    assert_eq!(fixture.balance().await, 10);
    let retry = fixture.service.consume_credits(&ConsumptionRequest { amount: 10, ..request }).await.unwrap();
    assert_eq!(retry.balance_after, 0, "a rejected key is not burnt");
}

pub async fn holds_capture_release_and_expire_once(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    fixture.paid("20.00", 100).await;
    let expires_at = fixture.service.now() + Duration::hours(1);
    let hold_request = |name: &str, amount| HoldRequest {
        tenant_id: fixture.tenant,
        module: "train".into(),
        amount,
        idempotency_key: key(name),
        expires_at,
    };

    let captured = fixture.service.place_hold(&hold_request("h1", 40)).await.unwrap();
    let replay = fixture.service.place_hold(&hold_request("h1", 40)).await.unwrap();
    assert_eq!(replay.id, captured.id);
    let balance = fixture.service.balance(fixture.tenant).await.unwrap();
    assert_eq!((balance.balance, balance.held, balance.available), (100, 40, 60));
    let too_big = fixture.service.place_hold(&hold_request("h2", 61)).await.unwrap_err();
    assert!(matches!(too_big, BillingError::Ledger(LedgerError::InsufficientCredits { .. })));

    let receipt = fixture.service.capture_hold(fixture.tenant, captured.id, 25).await.unwrap();
    assert_eq!(receipt.transition, Transition::Applied);
    assert_eq!(
        fixture.service.capture_hold(fixture.tenant, captured.id, 25).await.unwrap().transition,
        Transition::AlreadyApplied
    );
    assert!(fixture.service.release_hold(fixture.tenant, captured.id).await.is_err());

    let released = fixture.service.place_hold(&hold_request("h3", 10)).await.unwrap();
    assert_eq!(fixture.service.release_hold(fixture.tenant, released.id).await.unwrap(), Transition::Applied);
    assert_eq!(fixture.service.release_hold(fixture.tenant, released.id).await.unwrap(), Transition::AlreadyApplied);

    let expiring = fixture.service.place_hold(&hold_request("h4", 10)).await.unwrap();
    fixture.clock.advance(Duration::hours(2));
    assert_eq!(fixture.service.expire_holds(fixture.tenant).await.unwrap(), 1);
    assert_eq!(fixture.service.expire_holds(fixture.tenant).await.unwrap(), 0);
    let late = fixture.service.capture_hold(fixture.tenant, expiring.id, 1).await.unwrap_err();
    assert!(matches!(late, BillingError::Ledger(LedgerError::HoldNotOpen { status: HoldStatus::Expired, .. })));

    let balance = fixture.service.balance(fixture.tenant).await.unwrap();
    assert_eq!((balance.balance, balance.held, balance.available), (75, 0, 75));
    fixture.assert_ledger_consistent().await;
}

pub async fn reversal_never_drives_balance_negative(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (_, payment) = fixture.paid("20.00", 100).await;
    let spend = ConsumptionRequest {
        tenant_id: fixture.tenant,
        module: "render".into(),
        amount: 80,
        idempotency_key: key("spent"),
    };
    fixture.service.consume_credits(&spend).await.unwrap();

    let refund = fixture.event("evt-refund", &payment, EventKind::Refunded { total_refunded: eur("20.00") }, None);
    assert_eq!(fixture.deliver(&refund).await, LogOutcome::Applied);

    assert_eq!(fixture.balance().await, 0);
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert!(open.iter().any(|entry| entry.reason.contains("80 of 100 credits")), "shortfall reported: {open:?}");
    fixture.assert_ledger_consistent().await;
}

pub async fn customer_sees_rows_but_never_internal_notes(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (issued, _) = fixture.paid("20.00", 100).await;
    fixture
        .service
        .add_internal_note(&fixture.staff, issued.invoice.id, "customer asked for a discount")
        .await
        .unwrap();
    fixture
        .service
        .attach_receipt(&fixture.staff, issued.invoice.id, "Receipt 1", "https://receipts.invalid/1")
        .await
        .unwrap();

    let view = fixture.service.customer_invoice(&fixture.customer, issued.invoice.id).await.unwrap();
    let staff_view = fixture.service.staff_invoice(&fixture.staff, issued.invoice.id).await.unwrap();

    assert_eq!(view.rows.len(), 2);
    assert_eq!(view.company.name, "Customer Ltd");
    assert_eq!(view.rows[0].project.as_ref().map(|project| project.name.as_str()), Some("Website"));
    assert_eq!(view.receipts.len(), 1);
    assert!(!serde_json::to_string(&view).unwrap().contains("discount"));
    assert_eq!(staff_view.internal_notes.len(), 1);
    assert_eq!(staff_view.payments.len(), 1);
    let list = fixture.service.customer_invoices(&fixture.customer).await.unwrap();
    assert_eq!(list.len(), 1);
}

pub async fn other_company_cannot_see_invoice_or_content(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let (issued, _) = fixture.paid("20.00", 0).await;
    let other = fixture.service.add_company(&fixture.staff, "Other Oy").await.unwrap();
    fixture
        .service
        .add_member(&fixture.staff, user(3), "Olli Other", Role::Customer { company_id: other.id })
        .await
        .unwrap();
    let outsider = fixture.service.customer_context(fixture.tenant, user(3)).await.unwrap();

    let invoice = fixture.service.customer_invoice(&outsider, issued.invoice.id).await.unwrap_err();
    let content = fixture.service.open_content(&outsider, fixture.content.id).await.unwrap_err();

    assert!(matches!(invoice, BillingError::Access(AccessError::NotVisible { .. })));
    assert!(matches!(content, BillingError::Access(AccessError::NotVisible { .. })));
    assert!(fixture.service.customer_invoices(&outsider).await.unwrap().is_empty());
}

pub async fn content_unlocks_only_after_store_confirms_payment(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 0).await;
    let payment = fixture.start(&issued).await;

    let locked = fixture.service.open_content(&fixture.customer, fixture.content.id).await.unwrap_err();
    assert!(matches!(locked, BillingError::Access(AccessError::NotVisible { .. })));
    let view = fixture.service.customer_invoice(&fixture.customer, issued.invoice.id).await.unwrap();
    assert_eq!(view.rows[0].content.as_ref().unwrap().location, None);

    fixture.deliver(&fixture.event("evt-paid", &payment, EventKind::Succeeded, Some(eur("20.00")))).await;

    let content = fixture.service.open_content(&fixture.customer, fixture.content.id).await.unwrap();
    assert_eq!(content.location, "https://content.invalid/guide.pdf");
    let view = fixture.service.customer_invoice(&fixture.customer, issued.invoice.id).await.unwrap();
    assert!(view.rows[0].content.as_ref().unwrap().location.is_some());
}

pub async fn tenant_portal_lists_only_own_company_projects(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let other = fixture.service.add_company(&fixture.staff, "Other Oy").await.unwrap();
    fixture
        .service
        .add_project(&fixture.staff, other.id, "Secret rebrand", "https://projects.invalid/secret")
        .await
        .unwrap();

    let projects = fixture.service.tenant_projects(&fixture.customer).await.unwrap();

    assert_eq!(projects.iter().map(|project| project.name.as_str()).collect::<Vec<_>>(), vec!["Website"]);
}

pub async fn staff_context_requires_staff_membership(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;

    let customer = fixture.service.staff_context(fixture.tenant, user(2)).await.unwrap_err();
    let stranger = fixture.service.staff_context(fixture.tenant, user(99)).await.unwrap_err();
    let staff_as_customer = fixture.service.customer_context(fixture.tenant, user(1)).await.unwrap_err();

    assert!(matches!(customer, BillingError::Access(AccessError::NotStaff { .. })));
    assert!(matches!(stranger, BillingError::Access(AccessError::NotAMember { .. })));
    assert!(matches!(staff_as_customer, BillingError::Access(AccessError::NotACustomer { .. })));
    assert!(fixture.service.staff_context(fixture.tenant, user(1)).await.is_ok());
}

pub async fn concurrent_duplicate_deliveries_apply_once(store: Arc<dyn Store>) {
    let fixture = Arc::new(Fixture::new(store).await);
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;
    let event = fixture.event("evt-race", &payment, EventKind::Succeeded, Some(eur("20.00")));

    let mut tasks = Vec::new();
    for _ in 0..8 {
        let fixture = fixture.clone();
        let event = event.clone();
        tasks.push(tokio::spawn(async move { fixture.deliver(&event).await }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    assert_eq!(outcomes.iter().filter(|outcome| **outcome == LogOutcome::Applied).count(), 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|outcome| **outcome == LogOutcome::Duplicate).count(), 7, "{outcomes:?}");
    assert_eq!(fixture.balance().await, 100);
    assert_eq!(fixture.grants().await, 1);
}

pub async fn concurrent_consumers_share_keys_without_double_charge(store: Arc<dyn Store>) {
    let fixture = Arc::new(Fixture::new(store).await);
    fixture.paid("20.00", 50).await;

    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let fixture = fixture.clone();
        tasks.push(tokio::spawn(async move {
            let mut charged = 0;
            for job in 0..10u64 {
                let request = ConsumptionRequest {
                    tenant_id: fixture.tenant,
                    module: "render".into(),
                    amount: 1,
                    idempotency_key: key(&format!("job-{}", (job + worker) % 12)),
                };
                if let Ok(receipt) = fixture.service.consume_credits(&request).await {
                    if receipt.transition == Transition::Applied {
                        charged += 1;
                    }
                }
            }
            charged
        }));
    }
    let mut charged = 0;
    for task in tasks {
        charged += task.await.unwrap();
    }

    assert_eq!(charged, 12, "each of the 12 keys charges once");
    assert_eq!(fixture.balance().await, 38);
    fixture.assert_ledger_consistent().await;
}

pub async fn void_invoice_cannot_be_paid(store: Arc<dyn Store>) {
    let fixture = Fixture::new(store).await;
    let issued = fixture.issued("20.00", 100).await;
    let payment = fixture.start(&issued).await;

    let busy = fixture.service.void_invoice(&fixture.staff, issued.invoice.id).await.unwrap_err();
    assert!(matches!(busy, BillingError::PaymentInProgress { .. }));
    fixture.deliver(&fixture.event("evt-cancel", &payment, EventKind::Canceled, None)).await;
    fixture.service.void_invoice(&fixture.staff, issued.invoice.id).await.unwrap();

    let late = fixture.deliver(&fixture.event("evt-late", &payment, EventKind::Succeeded, Some(eur("20.00")))).await;

    assert_eq!(late, LogOutcome::Applied, "money that arrived is recorded");
    assert_eq!(fixture.invoice_status(&issued).await, InvoiceStatus::Void);
    assert_eq!(fixture.balance().await, 0, "a void invoice grants nothing");
    let open = fixture.service.unresolved_log(&fixture.staff, 10).await.unwrap();
    assert!(open.iter().any(|entry| entry.payment_id == Some(payment.id)), "staff must refund it");
}
