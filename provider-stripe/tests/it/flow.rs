//! Whole flows through `BillingService`: checkout, signed completion,
//! duplicates, refunds, disputes and mismatched amounts.

use rust_decimal_macros::dec;
use serde_json::json;

use billing_domain::log::LogOutcome;
use billing_domain::service::PublicStatus;
use billing_domain::{BillingError, InvoiceStatus, PaymentStatus};

use crate::support::{money, World};

#[tokio::test]
async fn completion_pays_once_refund_reverses() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let token = issued.token.expose().to_owned();

    let (payment_id, session_id) = world.start_checkout(&token).await;
    assert_eq!(world.service.public_entry(&token).await.unwrap().status, PublicStatus::Processing);

    // The customer pays; Stripe delivers the completion twice and the
    // PaymentIntent's success once.
    let session = world.fake.pay_session(&session_id).unwrap();
    let intent_id = session["payment_intent"].as_str().unwrap().to_owned();
    let first = world.deliver("evt_test_completed", "checkout.session.completed", session.clone()).await.unwrap();
    let second = world.deliver("evt_test_completed", "checkout.session.completed", session).await.unwrap();
    let intent = world.fake.payment_intent(&intent_id).unwrap();
    let corroboration = world.deliver("evt_test_intent", "payment_intent.succeeded", intent).await.unwrap();

    assert_eq!(first[0].outcome, LogOutcome::Applied);
    assert_eq!(first[0].payment_id, Some(payment_id));
    assert_eq!(second[0].outcome, LogOutcome::Duplicate);
    assert_eq!(corroboration[0].outcome, LogOutcome::Ignored);
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 100);
    assert_eq!(
        world.service.public_entry(&token).await.unwrap_err(),
        BillingError::PublicLinkGone { status: InvoiceStatus::Paid }
    );

    // The whole amount goes back.
    let charge = world.fake.refund(&intent_id, 2500).unwrap();
    let refund = world.deliver("evt_test_refund", "charge.refunded", charge).await.unwrap();

    assert_eq!(refund[0].outcome, LogOutcome::Applied);
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Refunded);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);
    assert_eq!(
        world.service.public_entry(&token).await.unwrap_err(),
        BillingError::PublicLinkGone { status: InvoiceStatus::Refunded }
    );
}

#[tokio::test]
async fn partial_refunds_are_cumulative() {
    let world = World::new().await;
    let (_, payment_id, intent_id) = world.paid_checkout(money(dec!(25), "EUR"), 100).await;

    let first = world.fake.refund(&intent_id, 500).unwrap();
    world.deliver("evt_test_refund_1", "charge.refunded", first.clone()).await.unwrap();
    // A late redelivery of the first refund under a new event id changes nothing.
    let stale = world.deliver("evt_test_refund_1b", "charge.refunded", first).await.unwrap();
    let second = world.fake.refund(&intent_id, 500).unwrap();
    world.deliver("evt_test_refund_2", "charge.refunded", second).await.unwrap();

    assert_eq!(stale[0].outcome, LogOutcome::Ignored);
    let payment = world.payment(payment_id).await;
    assert_eq!(payment.status(), PaymentStatus::PartiallyRefunded);
    assert_eq!(payment.refunded(), money(dec!(10), "EUR"));
    assert!(world.service.balance(world.tenant).await.unwrap().balance < 100);
}

#[tokio::test]
async fn completion_with_another_amount_is_rejected() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let (payment_id, session_id) = world.start_checkout(issued.token.expose()).await;
    let mut session = world.fake.pay_session(&session_id).unwrap();
    session["amount_total"] = json!(100);

    let reports = world.deliver("evt_test_completed", "checkout.session.completed", session.clone()).await.unwrap();
    session["amount_total"] = json!(2500);
    session["currency"] = json!("usd");
    let currency = world.deliver("evt_test_completed_usd", "checkout.session.completed", session).await.unwrap();

    assert_eq!(reports[0].outcome, LogOutcome::Rejected);
    assert!(reports[0].reason.contains("1.00 EUR"), "{}", reports[0].reason);
    assert_eq!(currency[0].outcome, LogOutcome::Rejected);
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Pending);
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Open);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);
}

#[tokio::test]
async fn lost_dispute_reverses_credits() {
    let world = World::new().await;
    let (_, payment_id, intent_id) = world.paid_checkout(money(dec!(25), "EUR"), 100).await;

    let opened = world.fake.dispute(&intent_id, "needs_response").unwrap();
    world.deliver("evt_test_dispute_open", "charge.dispute.created", opened).await.unwrap();
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Disputed);

    let lost = world.fake.dispute(&intent_id, "lost").unwrap();
    world.deliver("evt_test_dispute_lost", "charge.dispute.closed", lost).await.unwrap();

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::DisputeLost);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);
}

#[tokio::test]
async fn expired_session_makes_the_invoice_payable_again() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let token = issued.token.expose().to_owned();
    let (payment_id, session_id) = world.start_checkout(&token).await;
    let expired = world.fake.expire_session(&session_id).unwrap();

    world.deliver("evt_test_expired", "checkout.session.expired", expired).await.unwrap();

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Expired);
    assert_eq!(world.service.public_entry(&token).await.unwrap().status, PublicStatus::Payable);
}

#[tokio::test]
async fn delayed_payment_settles_on_async_success() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let (payment_id, session_id) = world.start_checkout(issued.token.expose()).await;

    let unpaid = world.fake.complete_session_unpaid(&session_id).unwrap();
    world.deliver("evt_test_completed", "checkout.session.completed", unpaid).await.unwrap();
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Pending);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);

    let settled = world.fake.settle_async_payment(&session_id).unwrap();
    world.deliver("evt_test_async_ok", "checkout.session.async_payment_succeeded", settled).await.unwrap();

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 100);
}

#[tokio::test]
async fn rejected_signature_applies_nothing() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let (_, session_id) = world.start_checkout(issued.token.expose()).await;
    let session = world.fake.pay_session(&session_id).unwrap();
    let signed_at = world.service.now().unix_timestamp();
    let request = crate::support::webhook("evt_test_completed", "checkout.session.completed", session, signed_at);
    // The request arrives after the tolerance has passed: a replay.
    world.clock.advance(time::Duration::seconds(301));

    let error = world.service.handle_webhook(&crate::support::stripe_name(), &request).await.unwrap_err();

    assert!(error.to_string().contains("more than 300 s"), "{error}");
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Open);
}
