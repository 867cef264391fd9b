//! Fetching a payment's state: Checkout Sessions and PaymentIntents mapped
//! to the same events as webhooks, with deterministic ids.

use std::time::Duration;

use rust_decimal_macros::dec;

use billing_domain::service::ReturnStatus;
use billing_domain::{
    Channel, EventKind, InvoiceStatus, PaymentProvider, PaymentStatus, ProviderError, ProviderEvent, StartOutcome,
};
use provider_stripe::test_server::FakeStripe;
use provider_stripe::StripeProvider;

use crate::support::{config, fake, money, payment_with_reference, provider, start_request, stripe_name, World};

/// Starts a Checkout Session for 25.00 EUR and returns its id.
async fn session(provider: &StripeProvider) -> String {
    let request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    let StartOutcome::Redirect { reference, .. } = provider.start_payment(&request).await.unwrap() else {
        panic!("expected a redirect");
    };
    reference.as_str().to_owned()
}

async fn fetch(provider: &StripeProvider, reference: &str) -> Vec<ProviderEvent> {
    provider.fetch_payment(&payment_with_reference(reference, money(dec!(25), "EUR"))).await.unwrap()
}

fn summary(events: &[ProviderEvent]) -> Vec<(String, EventKind)> {
    events.iter().map(|event| (event.event_id.as_str().to_owned(), event.kind.clone())).collect()
}

async fn setup() -> (FakeStripe, StripeProvider) {
    let fake = fake().await;
    let provider = provider(config(&fake));
    (fake, provider)
}

#[tokio::test]
async fn open_session_is_pending() {
    let (_fake, provider) = setup().await;
    let id = session(&provider).await;

    let events = fetch(&provider, &id).await;

    assert_eq!(summary(&events), vec![(format!("fetch:{id}:open"), EventKind::Pending)]);
    assert_eq!(events[0].provider_type, "fetch:checkout.session");
    assert!(events[0].matches.payment_id.is_some());
}

#[tokio::test]
async fn paid_session_succeeds_with_its_amount() {
    let (fake, provider) = setup().await;
    let id = session(&provider).await;
    fake.pay_session(&id).unwrap();

    let events = fetch(&provider, &id).await;

    assert_eq!(summary(&events), vec![(format!("fetch:{id}:complete:paid"), EventKind::Succeeded)]);
    assert_eq!(events[0].amount, Some(money(dec!(25), "EUR")));
    let sent = fake.requests().last().unwrap().clone();
    assert_eq!(sent.method, "GET");
    assert_eq!(sent.path, format!("/v1/checkout/sessions/{id}"));
    assert!(sent.query.unwrap().contains("payment_intent.latest_charge"));
}

#[tokio::test]
async fn refunded_session_reports_success_then_refund() {
    let (fake, provider) = setup().await;
    let id = session(&provider).await;
    let paid = fake.pay_session(&id).unwrap();
    fake.refund(paid["payment_intent"].as_str().unwrap(), 1000).unwrap();

    let events = fetch(&provider, &id).await;

    let refunded = EventKind::Refunded { total_refunded: money(dec!(10), "EUR") };
    assert_eq!(
        summary(&events),
        vec![
            (format!("fetch:{id}:complete:paid"), EventKind::Succeeded),
            (format!("fetch:{id}:refunded:1000"), refunded)
        ]
    );
}

#[tokio::test]
async fn expired_session_is_expired() {
    let (fake, provider) = setup().await;
    let id = session(&provider).await;
    fake.expire_session(&id).unwrap();

    assert_eq!(summary(&fetch(&provider, &id).await), vec![(format!("fetch:{id}:expired"), EventKind::Expired)]);
}

#[tokio::test]
async fn delayed_payment_follows_its_payment_intent() {
    let (fake, provider) = setup().await;
    let id = session(&provider).await;
    fake.complete_session_unpaid(&id).unwrap();

    let processing = fetch(&provider, &id).await;
    assert_eq!(summary(&processing), vec![(format!("fetch:{id}:complete:unpaid:processing"), EventKind::Pending)]);

    fake.fail_async_payment(&id).unwrap();
    let failed = fetch(&provider, &id).await;
    assert_eq!(
        summary(&failed),
        vec![(format!("fetch:{id}:complete:unpaid:requires_payment_method"), EventKind::Failed)]
    );
}

#[tokio::test]
async fn terminal_payment_intent_is_fetched_by_its_id() {
    let (fake, provider) = setup().await;
    let request = start_request(money(dec!(25), "EUR"), Channel::Terminal { reader: "tmr_test_1".into() });
    let StartOutcome::TerminalStarted { reference, .. } = provider.start_payment(&request).await.unwrap() else {
        panic!("expected a terminal start");
    };
    let id = reference.as_str();
    assert_eq!(
        summary(&fetch(&provider, id).await),
        vec![(format!("fetch:{id}:requires_payment_method"), EventKind::Pending)]
    );

    fake.present_card("tmr_test_1").unwrap();

    let events = fetch(&provider, id).await;
    assert_eq!(summary(&events), vec![(format!("fetch:{id}:succeeded"), EventKind::Succeeded)]);
    assert_eq!(events[0].amount, Some(money(dec!(25), "EUR")));
    assert_eq!(events[0].matches.payment_id, Some(request.payment_id));
}

#[tokio::test]
async fn payment_without_reference_cannot_be_fetched() {
    let (_fake, provider) = setup().await;
    let mut payment = payment_with_reference("cs_test_x", money(dec!(25), "EUR"));
    payment.reference = None;

    let error = provider.fetch_payment(&payment).await.unwrap_err();

    assert_eq!(error, ProviderError::MissingReference { payment: payment.id });
}

#[tokio::test]
async fn foreign_reference_is_rejected() {
    let (fake, provider) = setup().await;

    let error = provider.fetch_payment(&payment_with_reference("ch_123", money(dec!(25), "EUR"))).await.unwrap_err();

    assert!(matches!(error, ProviderError::InvalidRequest { .. }), "{error:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn unknown_session_is_an_api_error() {
    let (_fake, provider) = setup().await;

    let error = provider.fetch_payment(&payment_with_reference("cs_test_missing", money(dec!(25), "EUR"))).await;

    let Err(ProviderError::Api { status, message, .. }) = error else { panic!("expected an API error, got {error:?}") };
    assert_eq!(status, 404);
    assert!(message.contains("cs_test_missing"), "{message}");
}

#[tokio::test]
async fn return_then_webhook_pays_once() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let (payment_id, session_id) = world.start_checkout(issued.token.expose()).await;
    let paid = world.fake.pay_session(&session_id).unwrap();

    let reference = billing_domain::ProviderReference::new(session_id.as_str()).unwrap();
    let status = world.service.confirm_return_by_reference(&stripe_name(), &reference).await.unwrap();
    let again = world.service.confirm_return(payment_id).await.unwrap();
    let reports = world.deliver("evt_test_completed", "checkout.session.completed", paid).await.unwrap();

    let expected = ReturnStatus {
        payment_id,
        payment_status: PaymentStatus::Succeeded,
        invoice_status: InvoiceStatus::Paid,
        confirmed: true,
        fetch_error: None,
    };
    assert_eq!(status, expected);
    assert_eq!(again, expected);
    assert_eq!(reports.len(), 1);
    assert!(!reports[0].needs_attention, "{reports:?}");
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 100);
}

#[tokio::test]
async fn timed_out_fetch_leaves_the_payment_pending() {
    let world = World::with_config(|config| config.with_request_timeout(Duration::from_millis(200))).await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let (payment_id, session_id) = world.start_checkout(issued.token.expose()).await;
    world.fake.pay_session(&session_id).unwrap();
    world.fake.set_delay(Duration::from_secs(2));

    let status = world.service.confirm_return(payment_id).await.unwrap();

    assert_eq!(status.payment_status, PaymentStatus::Pending);
    assert_eq!(status.invoice_status, InvoiceStatus::Open);
    assert!(!status.confirmed);
    assert!(status.fetch_error.unwrap().contains("did not answer in time"));
}

#[tokio::test]
async fn disputed_session_reports_opening_then_result() {
    let (fake, provider) = setup().await;
    let id = session(&provider).await;
    let paid = fake.pay_session(&id).unwrap();
    let intent_id = paid["payment_intent"].as_str().unwrap().to_owned();
    let dispute = fake.dispute(&intent_id, "needs_response").unwrap();
    let dispute_id = dispute["id"].as_str().unwrap().to_owned();

    let open = fetch(&provider, &id).await;

    assert_eq!(
        summary(&open),
        vec![
            (format!("fetch:{id}:complete:paid"), EventKind::Succeeded),
            (format!("fetch:{id}:dispute:{dispute_id}:opened"), EventKind::DisputeOpened),
        ]
    );
    assert_eq!(open[1].amount, Some(money(dec!(25), "EUR")));
    assert_eq!(open[1].matches.payment_id, open[0].matches.payment_id);
    let listed = fake.requests().last().unwrap().clone();
    assert_eq!((listed.method.as_str(), listed.path.as_str()), ("GET", "/v1/disputes"));
    assert_eq!(listed.query, Some(format!("payment_intent={intent_id}")));

    fake.dispute(&intent_id, "won").unwrap();
    let closed = fetch(&provider, &id).await;

    assert_eq!(
        summary(&closed)[1..],
        [
            (format!("fetch:{id}:dispute:{dispute_id}:opened"), EventKind::DisputeOpened),
            (format!("fetch:{id}:dispute:{dispute_id}:won"), EventKind::DisputeWon),
        ]
    );
}

#[tokio::test]
async fn reconcile_settles_parked_dispute_loss() {
    let world = World::new().await;
    let (issued, payment_id, intent_id) = world.paid_checkout(money(dec!(25), "EUR"), 100).await;
    world.fake.dispute(&intent_id, "needs_response").unwrap();
    let lost = world.fake.dispute(&intent_id, "lost").unwrap();

    // The result arrives without its opening: it cannot apply yet.
    let parked = world.deliver("evt_test_dispute_lost", "charge.dispute.closed", lost).await.unwrap();
    assert!(parked[0].needs_attention, "{parked:?}");
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);

    let report = world.service.reconcile_payment(&world.staff, payment_id).await.unwrap();

    assert_eq!(report.fetch_error, None);
    assert_eq!(report.payment.status(), PaymentStatus::DisputeLost);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);
    let invoice = world.service.store().invoice(issued.invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Refunded);

    // The opening webhook, delivered late, changes nothing and needs no one.
    let opened = world.fake.dispute(&intent_id, "needs_response").unwrap();
    let late = world.deliver("evt_test_dispute_open", "charge.dispute.created", opened).await.unwrap();
    assert!(!late[0].needs_attention, "{late:?}");
    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::DisputeLost);
}
