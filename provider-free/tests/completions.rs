//! Free and manual completions through the service, on the in-memory store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use billing_domain::directory::Role;
use billing_domain::ledger::OverdraftPolicy;
use billing_domain::log::LogOutcome;
use billing_domain::memory::MemoryStore;
use billing_domain::provider::Operation;
use billing_domain::service::{IssuedInvoice, NewInvoice, PaymentOptions, PaymentStart};
use billing_domain::testing::{ManualClock, SeededRandom};
use billing_domain::{
    BillingError, BillingService, Channel, Currency, InvoiceRow, InvoiceStatus, ManualMethod, Money, PaymentProvider,
    PaymentStatus, ProviderError, ProviderName, ProviderReference, StaffContext, StartRequest, UserId, WebhookRequest,
};
use provider_free::{FreeProvider, ManualProvider, FREE, MANUAL};
use rust_decimal::Decimal;
use time::OffsetDateTime;

struct Setup {
    service: BillingService,
    staff: StaffContext,
    company: billing_domain::CompanyId,
}

async fn setup() -> Setup {
    let service = BillingService::new(
        Arc::new(MemoryStore::new()),
        Arc::new(ManualClock::new(OffsetDateTime::UNIX_EPOCH)),
        Arc::new(SeededRandom::new(3)),
    )
    .with_provider(Arc::new(FreeProvider))
    .with_provider(Arc::new(ManualProvider));
    setup_tenant(&service, 1).await
}

/// Adds a tenant whose owner is user `owner_byte`, with one customer company.
async fn setup_tenant(service: &BillingService, owner_byte: u8) -> Setup {
    let service = service.clone();
    let owner = UserId::from_random_bytes([owner_byte; 16]);
    let (_, staff) = service.create_tenant("Tenant", owner, "Owner", OverdraftPolicy::default()).await.unwrap();
    let company = service.add_company(&staff, "Customer").await.unwrap();
    service
        .add_member(
            &staff,
            UserId::from_random_bytes([2; 16]),
            "Customer user",
            Role::Customer { company_id: company.id },
        )
        .await
        .unwrap();
    Setup { service, staff, company: company.id }
}

async fn issue(setup: &Setup, price: &str, credits: u64) -> IssuedInvoice {
    let row = InvoiceRow {
        description: "Starter credits".into(),
        quantity: Decimal::ONE,
        unit_price: Money::new(price.parse().unwrap(), Currency::EUR).unwrap(),
        project: None,
        content: None,
        credits: Some(credits),
    };
    let new = NewInvoice {
        company_id: setup.company,
        number: format!("F-{price}"),
        currency: Currency::EUR,
        rows: vec![row],
    };
    let invoice = setup.service.create_invoice(&setup.staff, new).await.unwrap();
    setup.service.issue_invoice(&setup.staff, invoice.id).await.unwrap()
}

fn name(text: &str) -> ProviderName {
    ProviderName::new(text).unwrap()
}

#[tokio::test]
async fn zero_total_completes_at_once_and_grants_credits() {
    let setup = setup().await;
    let issued = issue(&setup, "0", 25).await;

    let start = setup
        .service
        .start_public_payment(issued.token.expose(), &name(FREE), PaymentOptions::default())
        .await
        .unwrap();

    let PaymentStart::Completed { payment, events } = start else { panic!("expected completion, got {start:?}") };
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(events[0].outcome, LogOutcome::Applied);
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 25);
    assert_eq!(
        setup.service.public_entry(issued.token.expose()).await.unwrap_err(),
        BillingError::PublicLinkGone { status: InvoiceStatus::Paid }
    );
}

#[tokio::test]
async fn free_completion_fetched_again_is_a_duplicate() {
    let setup = setup().await;
    let issued = issue(&setup, "0", 25).await;
    let start = setup
        .service
        .start_public_payment(issued.token.expose(), &name(FREE), PaymentOptions::default())
        .await
        .unwrap();
    let PaymentStart::Completed { payment, .. } = start else { panic!("expected completion") };

    let report = setup.service.reconcile_payment(&setup.staff, payment.id).await.unwrap();

    assert_eq!(report.fetched[0].outcome, LogOutcome::Duplicate);
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 25);
}

#[tokio::test]
async fn free_provider_rejects_non_zero_total() {
    let setup = setup().await;
    let issued = issue(&setup, "10.00", 25).await;

    let error = setup
        .service
        .start_public_payment(issued.token.expose(), &name(FREE), PaymentOptions::default())
        .await
        .unwrap_err();

    let BillingError::StartFailed { source, .. } = error else { panic!("expected StartFailed, got {error:?}") };
    assert!(matches!(source, ProviderError::Unsupported { operation: Operation::StartHostedPage, .. }), "{source:?}");
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 0);
}

#[tokio::test]
async fn manual_transfer_completes_once_per_reference() {
    let setup = setup().await;
    let issued = issue(&setup, "49.90", 500).await;
    let manual = name(MANUAL);

    let first = setup
        .service
        .record_manual_payment(&setup.staff, issued.invoice.id, &manual, ManualMethod::BankTransfer, "RF97 1234")
        .await
        .unwrap();
    let second = setup
        .service
        .record_manual_payment(&setup.staff, issued.invoice.id, &manual, ManualMethod::BankTransfer, "RF97 1234")
        .await
        .unwrap();

    let PaymentStart::Completed { payment, .. } = first else { panic!("expected completion, got {first:?}") };
    let PaymentStart::AlreadyRecorded { payment: replayed } = second else { panic!("expected replay, got {second:?}") };
    assert_eq!(payment.id, replayed.id);
    let expected = format!("bank_transfer:{}:RF97 1234", issued.invoice.id);
    assert_eq!(payment.reference.as_ref().map(|reference| reference.as_str()), Some(expected.as_str()));
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 500);
    let view = setup.service.staff_invoice(&setup.staff, issued.invoice.id).await.unwrap();
    assert_eq!(view.invoice.status, InvoiceStatus::Paid);
    assert!(view.log.iter().any(|entry| entry.actor == Some(setup.staff.user_id())));
}

#[tokio::test]
async fn same_receipt_in_two_tenants_completes_both() {
    let first = setup().await;
    let second = setup_tenant(&first.service, 7).await;
    let ours = issue(&first, "10.00", 5).await;
    let theirs = issue(&second, "12.00", 8).await;
    let manual = name(MANUAL);

    for (setup, issued) in [(&first, &ours), (&second, &theirs)] {
        let start = setup
            .service
            .record_manual_payment(&setup.staff, issued.invoice.id, &manual, ManualMethod::Cash, "till-1")
            .await
            .unwrap();
        let PaymentStart::Completed { payment, .. } = start else { panic!("expected completion, got {start:?}") };
        assert_eq!(payment.invoice_id, issued.invoice.id);
    }

    assert_eq!(first.service.balance(first.staff.tenant_id()).await.unwrap().balance, 5);
    assert_eq!(second.service.balance(second.staff.tenant_id()).await.unwrap().balance, 8);
}

#[tokio::test]
async fn manual_cash_after_paid_invoice_is_refused() {
    let setup = setup().await;
    let issued = issue(&setup, "10.00", 5).await;
    let manual = name(MANUAL);
    setup
        .service
        .record_manual_payment(&setup.staff, issued.invoice.id, &manual, ManualMethod::Cash, "till-1")
        .await
        .unwrap();

    let error = setup
        .service
        .record_manual_payment(&setup.staff, issued.invoice.id, &manual, ManualMethod::Cash, "till-2")
        .await
        .unwrap_err();

    assert_eq!(error, BillingError::NotPayable { invoice: issued.invoice.id, status: InvoiceStatus::Paid });
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 5);
}

fn request(channel: Channel, amount: &str) -> StartRequest {
    StartRequest {
        tenant_id: billing_domain::TenantId::from_random_bytes([1; 16]),
        invoice_id: billing_domain::InvoiceId::from_random_bytes([2; 16]),
        payment_id: billing_domain::PaymentId::from_random_bytes([3; 16]),
        invoice_number: "N-1".into(),
        amount: Money::new(amount.parse().unwrap(), Currency::EUR).unwrap(),
        lines: Vec::new(),
        channel,
        customer_ip: None,
        locale: None,
        requested_at: OffsetDateTime::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn providers_reject_other_channels_and_webhooks() {
    let hosted = request(Channel::HostedPage, "0");
    let manual = request(Channel::Manual { method: ManualMethod::Cash, reference: " ".into() }, "5");

    assert!(matches!(FreeProvider.start_payment(&hosted).await, Err(ProviderError::Unsupported { .. })));
    assert!(matches!(ManualProvider.start_payment(&hosted).await, Err(ProviderError::Unsupported { .. })));
    assert!(matches!(ManualProvider.start_payment(&manual).await, Err(ProviderError::InvalidRequest { .. })));
    let webhook = WebhookRequest::default();
    let now = OffsetDateTime::UNIX_EPOCH;
    assert!(matches!(
        FreeProvider.verify_webhook(&webhook, now).await,
        Err(ProviderError::Unsupported { operation: Operation::Webhook, .. })
    ));
    assert!(matches!(ManualProvider.verify_webhook(&webhook, now).await, Err(ProviderError::Unsupported { .. })));
}

#[tokio::test]
async fn manual_completion_event_id_derives_from_reference() {
    let cash = request(Channel::Manual { method: ManualMethod::Cash, reference: "till-9".into() }, "5");

    let outcome = ManualProvider.start_payment(&cash).await.unwrap();

    let billing_domain::StartOutcome::Completed { reference, events } = outcome else { panic!("expected completion") };
    assert_eq!(reference.as_str(), format!("cash:{}:till-9", cash.invoice_id));
    assert_eq!(events[0].event_id.as_str(), format!("cash:{}:till-9", cash.invoice_id));
    assert_eq!(events[0].amount, Some(cash.amount));
}

#[tokio::test]
async fn fetch_never_restates_a_refused_start() {
    let setup = setup().await;
    let issued = issue(&setup, "10.00", 5).await;
    let error = setup
        .service
        .record_manual_payment(&setup.staff, issued.invoice.id, &name(FREE), ManualMethod::Cash, "till-3")
        .await
        .unwrap_err();
    let BillingError::StartFailed { payment, .. } = error else { panic!("expected StartFailed, got {error:?}") };

    let report = setup.service.reconcile_payment(&setup.staff, payment).await.unwrap();

    assert_eq!(report.payment.status(), PaymentStatus::Failed);
    assert!(report.fetch_error.is_some(), "{report:?}");
    let view = setup.service.staff_invoice(&setup.staff, issued.invoice.id).await.unwrap();
    assert_eq!(view.invoice.status, InvoiceStatus::Open);
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 0);
}

#[tokio::test]
async fn longest_receipt_still_completes() {
    let setup = setup().await;
    let issued = issue(&setup, "10.00", 5).await;
    let prefix = format!("cash:{}:", issued.invoice.id);
    let receipt = "r".repeat(ProviderReference::MAX_LEN - prefix.len());

    let start = setup
        .service
        .record_manual_payment(&setup.staff, issued.invoice.id, &name(MANUAL), ManualMethod::Cash, &receipt)
        .await
        .unwrap();

    let PaymentStart::Completed { payment, .. } = start else { panic!("expected completion, got {start:?}") };
    assert_eq!(payment.status(), PaymentStatus::Succeeded);
    assert_eq!(setup.service.balance(setup.staff.tenant_id()).await.unwrap().balance, 5);
}
