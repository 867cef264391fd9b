//! Staff refunds: the request sent, each refund status, and credits that are
//! reversed only once a refund settles.

use billing_domain::ledger::OverdraftPolicy;
use billing_domain::log::LogOutcome;
use billing_domain::{EventKind, InvoiceStatus, PaymentId, PaymentStatus, ProviderError, UserId};
use provider_maksekeskus::{RefundStatus, TransactionStatus};
use rust_decimal_macros::dec;

use crate::support::{eur, World, CREDITS};

/// Builds a world whose invoice is paid through Maksekeskus.
async fn paid_world() -> (World, PaymentId, String) {
    let world = World::new().await;
    let (payment_id, transaction) = world.start_payment().await;
    let message = world.fake.payment_return(&transaction, TransactionStatus::Completed).unwrap();
    world.service.handle_webhook(&world.name, &message.form_request()).await.unwrap();
    assert_eq!(world.balance().await, i64::try_from(CREDITS).unwrap());
    (world, payment_id, transaction)
}

#[tokio::test]
async fn settled_refund_reverses_credits_once() {
    let (world, payment_id, transaction) = paid_world().await;
    let payment = world.payment(payment_id).await;

    let report = world.provider.refund(&world.staff, &payment, eur(dec!(5)), "customer asked").await.unwrap();
    assert_eq!(report.refund.status, RefundStatus::Settled);
    assert_eq!(report.refund.amount, Some(eur(dec!(5))));
    assert_eq!(report.refund.transaction_id, transaction);
    assert_eq!(report.events.len(), 1);
    let event = &report.events[0];
    assert_eq!(event.kind, EventKind::Refunded { total_refunded: eur(dec!(5)) });
    assert_eq!(event.event_id.as_str(), format!("{transaction}:PART_REFUNDED:5.00"));

    let sent = world.fake.requests().into_iter().find(|sent| sent.path.ends_with("/refunds")).unwrap();
    assert_eq!(sent.path, format!("/v1/transactions/{transaction}/refunds"));
    let body = sent.json().unwrap();
    assert_eq!(body["amount"], "5.00");
    assert_eq!(body["comment"], "customer asked");

    let applied = world.service.apply_event(event).await.unwrap();
    assert_eq!(applied.outcome, LogOutcome::Applied, "{applied:?}");
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::PartiallyRefunded);
    // 5 of 25 EUR refunded takes back a fifth of the 100 credits.
    assert_eq!(world.balance().await, 80);

    // A fetch of the same state is the same event.
    let reconciled = world.service.reconcile_payment(&world.staff, payment_id).await.unwrap();
    assert_eq!(reconciled.fetched[0].outcome, LogOutcome::Duplicate, "{reconciled:?}");
    assert_eq!(world.balance().await, 80);
}

#[tokio::test]
async fn sent_refund_reverses_nothing_until_settled() {
    let (world, payment_id, _) = paid_world().await;
    world.fake.set_refund_outcome(RefundStatus::Sent);
    let payment = world.payment(payment_id).await;

    let report = world.provider.refund(&world.staff, &payment, eur(dec!(25)), "order cancelled").await.unwrap();
    assert_eq!(report.refund.status, RefundStatus::Sent);
    assert!(report.events.is_empty());
    let polled = world.provider.refund_status(&world.staff, &payment, &report.refund.id).await.unwrap();
    assert_eq!(polled.refund.status, RefundStatus::Sent);
    assert!(polled.events.is_empty());
    assert_eq!(world.balance().await, i64::try_from(CREDITS).unwrap());

    world.fake.set_refund_status(&report.refund.id, RefundStatus::Settled).unwrap();
    let settled = world.provider.refund_status(&world.staff, &payment, &report.refund.id).await.unwrap();
    assert_eq!(settled.refund.status, RefundStatus::Settled);
    assert_eq!(settled.events[0].kind, EventKind::Refunded { total_refunded: eur(dec!(25)) });
    for event in &settled.events {
        world.service.apply_event(event).await.unwrap();
    }
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Refunded);
    let invoice = world.service.store().invoice(world.invoice_id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Refunded);
    assert_eq!(world.balance().await, 0);
}

#[tokio::test]
async fn failed_refund_produces_no_events() {
    let (world, payment_id, transaction) = paid_world().await;
    world.fake.set_refund_outcome(RefundStatus::Failed);
    let payment = world.payment(payment_id).await;

    let report = world.provider.refund(&world.staff, &payment, eur(dec!(5)), "customer asked").await.unwrap();
    assert_eq!(report.refund.status, RefundStatus::Failed);
    assert!(report.events.is_empty());
    assert_eq!(world.fake.transaction(&transaction).unwrap().status, TransactionStatus::Completed);
    assert_eq!(world.balance().await, i64::try_from(CREDITS).unwrap());
}

#[tokio::test]
async fn unknown_refund_status_is_kept_and_not_settled() {
    let (world, payment_id, _) = paid_world().await;
    world.fake.set_refund_outcome(RefundStatus::Other("PENDING".into()));
    let payment = world.payment(payment_id).await;
    let report = world.provider.refund(&world.staff, &payment, eur(dec!(5)), "customer asked").await.unwrap();
    assert_eq!(report.refund.status, RefundStatus::Other("PENDING".into()));
    assert!(report.events.is_empty());
}

#[tokio::test]
async fn refund_requests_are_checked_before_sending() {
    let (world, payment_id, _) = paid_world().await;
    let payment = world.payment(payment_id).await;
    let requests_before = world.fake.requests().len();

    let no_comment = world.provider.refund(&world.staff, &payment, eur(dec!(5)), "  ").await.unwrap_err();
    assert!(matches!(&no_comment, ProviderError::InvalidRequest { reason, .. } if reason.contains("comment")));
    let too_much = world.provider.refund(&world.staff, &payment, eur(dec!(25.01)), "x").await.unwrap_err();
    assert!(matches!(&too_much, ProviderError::InvalidRequest { reason, .. } if reason.contains("25.01")));
    let zero = world.provider.refund(&world.staff, &payment, eur(dec!(0)), "x").await.unwrap_err();
    assert!(matches!(zero, ProviderError::InvalidRequest { .. }));

    let (_, other_staff) = world
        .service
        .create_tenant("Other", UserId::from_random_bytes([9; 16]), "Other owner", OverdraftPolicy { limit: 0 })
        .await
        .unwrap();
    let foreign = world.provider.refund(&other_staff, &payment, eur(dec!(5)), "x").await.unwrap_err();
    assert!(matches!(&foreign, ProviderError::InvalidRequest { reason, .. } if reason.contains("another tenant")));
    assert_eq!(world.fake.requests().len(), requests_before, "nothing was sent");
}

#[tokio::test]
async fn unpaid_payment_cannot_be_refunded() {
    let world = World::new().await;
    let (payment_id, _) = world.start_payment().await;
    let payment = world.payment(payment_id).await;
    let error = world.provider.refund(&world.staff, &payment, eur(dec!(5)), "x").await.unwrap_err();
    assert!(matches!(&error, ProviderError::InvalidRequest { reason, .. } if reason.contains("pending")), "{error:?}");
}

#[tokio::test]
async fn refund_refused_by_maksekeskus_is_an_api_error() {
    let (world, payment_id, transaction) = paid_world().await;
    // The transaction at Maksekeskus is no longer refundable, whatever the store records.
    world.fake.set_status(&transaction, TransactionStatus::Pending).unwrap();
    let payment = world.payment(payment_id).await;
    let error = world.provider.refund(&world.staff, &payment, eur(dec!(5)), "x").await.unwrap_err();
    let ProviderError::Api { status, message, .. } = error else { panic!("got {error:?}") };
    assert_eq!(status, 400);
    assert!(message.contains("cannot be refunded"), "{message}");
}
