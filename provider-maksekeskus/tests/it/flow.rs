//! Whole payments through `BillingService` with the memory store: the
//! happy path, duplicate and out-of-order deliveries, mismatching amounts,
//! and a create that timed out.

use std::time::Duration;

use billing_domain::log::LogOutcome;
use billing_domain::service::{PaymentOptions, PublicStatus};
use billing_domain::{BillingError, InvoiceStatus, PaymentStatus, ProviderError};
use provider_maksekeskus::test_server::SignedMessage;
use provider_maksekeskus::{MaksekeskusProvider, TransactionStatus};

use crate::support::{World, CREDITS};

/// Signs a `payment_return` for `transaction` with a hand-set amount and currency.
fn altered_return(world: &World, transaction: &str, payment_id: &str, amount: &str, currency: &str) -> SignedMessage {
    world.fake.sign(format!(
        r#"{{"shop":"{}","amount":{amount},"currency":"{currency}","reference":"INV-2026-0042","merchant_data":"{payment_id}","transaction":"{transaction}","status":"COMPLETED","signature":"","message_time":"2026-11-30T10:15:42+0000","message_type":"payment_return","customer_name":"Test Customer"}}"#,
        world.fake.shop_id()
    ))
}

#[tokio::test]
async fn completed_notification_pays_invoice_once() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Pending);
    let entry = world.service.public_entry(&world.token).await.unwrap();
    assert_eq!(entry.status, PublicStatus::Processing);
    let sent = world.fake.requests()[0].json().unwrap();
    assert_eq!(sent["transaction"]["merchant_data"], payment_id.to_string());
    assert_eq!(world.fake.transaction_for_payment(payment_id).unwrap().id, transaction);

    // The notification (POST form) and the browser return (GET query) carry the same update.
    let message = world.fake.payment_return(&transaction, TransactionStatus::Completed).unwrap();
    let notified = world.service.handle_webhook(&world.name, &message.form_request()).await.unwrap();
    let returned = world.service.handle_webhook(&world.name, &message.query_request()).await.unwrap();
    assert_eq!(notified[0].outcome, LogOutcome::Applied, "{notified:?}");
    assert_eq!(returned[0].outcome, LogOutcome::Duplicate, "{returned:?}");
    assert_eq!(notified[0].payment_id, Some(payment_id));

    // A fetch of the same state, by staff or by the return page, is a duplicate too.
    let reconciled = world.service.reconcile_payment(&world.staff, payment_id).await.unwrap();
    assert_eq!(reconciled.fetched[0].outcome, LogOutcome::Duplicate, "{reconciled:?}");
    let confirmed = world.service.confirm_return(payment_id).await.unwrap();
    assert!(confirmed.confirmed);
    assert_eq!(confirmed.fetch_error, None);

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);
    let invoice = world.service.store().invoice(world.invoice_id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    assert_eq!(world.balance().await, i64::try_from(CREDITS).unwrap());
    assert_eq!(world.service.history(world.staff.tenant_id()).await.unwrap().len(), 1, "one grant");
    let gone = world.service.public_entry(&world.token).await.unwrap_err();
    assert_eq!(gone, BillingError::PublicLinkGone { status: InvoiceStatus::Paid });
}

#[tokio::test]
async fn late_pending_after_completed_changes_nothing() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;

    let completed = world.fake.payment_return(&transaction, TransactionStatus::Completed).unwrap();
    world.service.handle_webhook(&world.name, &completed.form_request()).await.unwrap();
    let pending = world.fake.payment_return(&transaction, TransactionStatus::Pending).unwrap();
    let reports = world.service.handle_webhook(&world.name, &pending.form_request()).await.unwrap();

    assert_eq!(reports[0].outcome, LogOutcome::Ignored, "{reports:?}");
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);
    assert_eq!(world.balance().await, i64::try_from(CREDITS).unwrap());
}

#[tokio::test]
async fn cancelled_then_new_attempt_is_allowed() {
    let world = World::new().await;
    let (first, transaction) = world.start_payment().await;
    let cancelled = world.fake.payment_return(&transaction, TransactionStatus::Cancelled).unwrap();
    let reports = world.service.handle_webhook(&world.name, &cancelled.query_request()).await.unwrap();
    assert_eq!(reports[0].outcome, LogOutcome::Applied);
    assert_eq!(world.payment(first).await.status(), PaymentStatus::Canceled);

    let (second, second_transaction) = world.start_payment().await;
    assert_ne!(first, second);
    assert_ne!(transaction, second_transaction, "a new attempt needs a new transaction");
}

#[tokio::test]
async fn mismatching_amount_is_rejected() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;

    let short = altered_return(&world, &transaction, &payment_id.to_string(), "24.0", "EUR");
    let reports = world.service.handle_webhook(&world.name, &short.form_request()).await.unwrap();
    assert_eq!(reports[0].outcome, LogOutcome::Rejected, "{reports:?}");
    assert!(reports[0].reason.contains("24.00"), "{}", reports[0].reason);

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Pending);
    let invoice = world.service.store().invoice(world.invoice_id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Open);
    assert_eq!(world.balance().await, 0);
}

#[tokio::test]
async fn mismatching_currency_is_rejected() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;

    let dollars = altered_return(&world, &transaction, &payment_id.to_string(), "25.0", "USD");
    let reports = world.service.handle_webhook(&world.name, &dollars.form_request()).await.unwrap();
    assert_eq!(reports[0].outcome, LogOutcome::Rejected, "{reports:?}");
    assert!(reports[0].reason.contains("USD"), "{}", reports[0].reason);
    assert_eq!(world.balance().await, 0);
}

#[tokio::test]
async fn rejected_mismatch_later_fetch_applies() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;
    let short = altered_return(&world, &transaction, &payment_id.to_string(), "24.0", "EUR");
    world.service.handle_webhook(&world.name, &short.form_request()).await.unwrap();

    // The same event id comes back from a fetch of the real state and applies.
    world.fake.set_status(&transaction, TransactionStatus::Completed).unwrap();
    let report = world.service.reconcile_payment(&world.staff, payment_id).await.unwrap();
    assert_eq!(report.fetched[0].outcome, LogOutcome::Applied, "{report:?}");
    assert_eq!(report.payment.status(), PaymentStatus::Succeeded);
    assert_eq!(world.balance().await, i64::try_from(CREDITS).unwrap());
}

#[tokio::test]
async fn forged_message_changes_nothing() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;
    let genuine = world.fake.payment_return(&transaction, TransactionStatus::Completed).unwrap();
    let forged = SignedMessage { json: genuine.json.replace("25.0", "2.5"), mac: genuine.mac };

    let error = world.service.handle_webhook(&world.name, &forged.form_request()).await.unwrap_err();
    assert!(matches!(error, BillingError::Provider(ProviderError::InvalidWebhook { .. })), "{error:?}");
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Pending);
    assert_eq!(world.balance().await, 0);
}

#[tokio::test]
async fn timed_out_create_is_found_by_reconciliation() {
    let fake = crate::support::fake().await;
    fake.set_create_delay(Some(Duration::from_secs(30)));
    let world = World::with_provider(fake, |fake| {
        let config = fake.config().unwrap().with_request_timeout(Duration::from_millis(1500)).unwrap();
        MaksekeskusProvider::new(config).unwrap()
    })
    .await;

    let options = PaymentOptions { customer_ip: Some("203.0.113.7".into()), locale: None };
    let error = world.service.start_public_payment(&world.token, &world.name, options).await.unwrap_err();
    let BillingError::StartFailed { payment: payment_id, source } = error else { panic!("got {error:?}") };
    assert!(matches!(source, ProviderError::Timeout { .. }), "{source:?}");
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Unknown);
    assert_eq!(world.payment(payment_id).await.reference, None);

    // Reconciliation lists transactions and finds the one created for this payment.
    world.fake.set_create_delay(None);
    let report = world.service.reconcile_payment(&world.staff, payment_id).await.unwrap();
    assert_eq!(report.fetch_error, None);
    assert_eq!(report.fetched[0].outcome, LogOutcome::Applied, "{report:?}");
    assert_eq!(report.payment.status(), PaymentStatus::Pending);
    assert!(world.fake.requests().iter().any(|sent| sent.method == "GET" && sent.path == "/v1/transactions"));

    // The transaction completes later; its notification matches by merchant_data.
    let transaction = world.fake.transactions()[0].id.clone();
    let message = world.fake.payment_return(&transaction, TransactionStatus::Completed).unwrap();
    let reports = world.service.handle_webhook(&world.name, &message.form_request()).await.unwrap();
    assert_eq!(reports[0].outcome, LogOutcome::Applied);
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);
    assert_eq!(world.fake.transactions().len(), 1, "no second transaction was created");
}

#[tokio::test]
async fn expired_transaction_reopens_invoice() {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;
    world.fake.set_status(&transaction, TransactionStatus::Expired).unwrap();

    let report = world.service.reconcile_payment(&world.staff, payment_id).await.unwrap();
    assert_eq!(report.payment.status(), PaymentStatus::Expired);
    let entry = world.service.public_entry(&world.token).await.unwrap();
    assert_eq!(entry.status, PublicStatus::Payable);
}
