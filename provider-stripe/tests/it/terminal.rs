//! Terminal: a staff member starts a card-present payment on a reader; the
//! invoice changes only when the PaymentIntent's result is confirmed.

use std::collections::BTreeSet;

use rust_decimal_macros::dec;

use billing_domain::service::PaymentStart;
use billing_domain::{BillingError, InvoiceStatus, PaymentId, PaymentStatus, ProviderError};

use crate::support::{money, stripe_name, World};

const READER: &str = "tmr_test_front_desk";

#[tokio::test]
async fn terminal_start_processes_intent() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;

    let start =
        world.service.start_terminal_payment(&world.staff, issued.invoice.id, &stripe_name(), READER).await.unwrap();

    let PaymentStart::TerminalStarted { payment_id, reader } = start else {
        panic!("expected a terminal start, got {start:?}")
    };
    assert_eq!(reader, READER);
    let requests = world.fake.requests();
    assert_eq!(requests.len(), 2);

    let create = &requests[0];
    assert_eq!((create.method.as_str(), create.path.as_str()), ("POST", "/v1/payment_intents"));
    assert_eq!(create.idempotency_key(), Some(format!("billing-terminal-intent-{payment_id}").as_str()));
    let keys: BTreeSet<&str> = create.form.iter().map(|(key, _)| key.as_str()).collect();
    let expected: BTreeSet<&str> = [
        "amount",
        "currency",
        "allowed_payment_method_types[0]",
        "capture_method",
        "metadata[tenant_id]",
        "metadata[invoice_id]",
        "metadata[payment_id]",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(create.form_value("amount"), Some("2500"));
    assert_eq!(create.form_value("currency"), Some("eur"));
    assert_eq!(create.form_value("allowed_payment_method_types[0]"), Some("card_present"));
    assert_eq!(create.form_value("capture_method"), Some("automatic"));
    assert_eq!(create.form_value("metadata[payment_id]"), Some(payment_id.to_string().as_str()));

    let payment = world.payment(payment_id).await;
    let intent_id = payment.reference.clone().unwrap();
    let process = &requests[1];
    assert_eq!(process.path, format!("/v1/terminal/readers/{READER}/process_payment_intent"));
    assert_eq!(process.form_value("payment_intent"), Some(intent_id.as_str()));
    assert_eq!(process.idempotency_key(), Some(format!("billing-terminal-process-{payment_id}").as_str()));

    assert_eq!(payment.status(), PaymentStatus::Pending);
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Open);
}

#[tokio::test]
async fn presented_card_pays_invoice() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    world.service.start_terminal_payment(&world.staff, issued.invoice.id, &stripe_name(), READER).await.unwrap();
    let reader = world.fake.present_card(READER).unwrap();

    let reports = world.deliver("evt_test_reader_ok", "terminal.reader.action_succeeded", reader).await.unwrap();

    assert!(!reports[0].needs_attention, "{reports:?}");
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 100);
}

#[tokio::test]
async fn declined_card_keeps_invoice_open() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let start =
        world.service.start_terminal_payment(&world.staff, issued.invoice.id, &stripe_name(), READER).await.unwrap();
    let PaymentStart::TerminalStarted { payment_id, .. } = start else { panic!("expected a terminal start") };
    let reader = world.fake.decline_card(READER).unwrap();

    world.deliver("evt_test_reader_failed", "terminal.reader.action_failed", reader).await.unwrap();

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Failed);
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Open);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);
}

#[tokio::test]
async fn offline_reader_fails_the_start() {
    let world = World::new().await;

    let (payment, source) = refused_start(&world, 400, "terminal_reader_offline", "Reader is offline.").await;

    assert!(matches!(source, ProviderError::Api { status: 400, .. }), "{source:?}");
    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Failed);

    let requests = world.fake.requests();
    let cancel = requests.iter().find(|sent| sent.path.ends_with("/cancel")).expect("the PaymentIntent is canceled");
    assert_eq!(cancel.form_value("cancellation_reason"), Some("abandoned"));
    let intent_id = cancel.path.trim_start_matches("/v1/payment_intents/").trim_end_matches("/cancel");
    assert_eq!(world.fake.payment_intent(intent_id).unwrap()["status"], "canceled");
}

#[tokio::test]
async fn reader_server_error_leaves_the_payment_unknown() {
    let world = World::new().await;

    let (payment, source) = refused_start(&world, 500, "api_error", "Something went wrong.").await;

    assert!(source.is_ambiguous(), "{source:?}");
    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Unknown);
    assert!(
        world.fake.requests().iter().all(|sent| !sent.path.ends_with("/cancel")),
        "a reader that may be prompting keeps its PaymentIntent"
    );
}

#[tokio::test]
async fn reader_timeout_leaves_the_payment_unknown() {
    let world = World::new().await;
    let message = "Stripe could not reach the reader.";

    let (payment, source) = refused_start(&world, 400, "terminal_reader_timeout", message).await;

    assert!(source.is_ambiguous(), "{source:?}");
    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Unknown);
    assert!(world.fake.requests().iter().all(|sent| !sent.path.ends_with("/cancel")), "the reader may be prompting");
}

#[tokio::test]
async fn staff_cancel_reader_action() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    world.service.start_terminal_payment(&world.staff, issued.invoice.id, &stripe_name(), READER).await.unwrap();

    world.provider.cancel_reader_action(&world.staff, READER).await.unwrap();

    let sent = world.fake.requests().last().unwrap().clone();
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v1/terminal/readers/tmr_test_front_desk/cancel_action")
    );
    assert!(world.fake.present_card(READER).is_err(), "the canceled action can no longer take a card");
}

#[tokio::test]
async fn cancel_rejects_bad_reader() {
    let world = World::new().await;

    let empty = world.provider.cancel_reader_action(&world.staff, " ").await.unwrap_err();
    let unknown = world.provider.cancel_reader_action(&world.staff, "tmr_unknown").await.unwrap_err();

    assert!(matches!(empty, ProviderError::InvalidRequest { .. }), "{empty:?}");
    assert!(matches!(unknown, ProviderError::Api { status: 404, .. }), "{unknown:?}");
}

/// Starts a Terminal payment whose reader call Stripe fails with an error,
/// and returns the payment and the provider error.
async fn refused_start(world: &World, status: u16, code: &str, message: &str) -> (PaymentId, ProviderError) {
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    world.fake.fail_next_on("/process_payment_intent", status, code, message);

    let error = world
        .service
        .start_terminal_payment(&world.staff, issued.invoice.id, &stripe_name(), READER)
        .await
        .unwrap_err();

    let BillingError::StartFailed { payment, source } = error else { panic!("expected StartFailed, got {error:?}") };
    (payment, source)
}
