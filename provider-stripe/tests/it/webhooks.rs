//! Webhook verification and normalisation: signatures over the exact bytes,
//! tolerance, rotation, and every event type the adapter maps.

use std::time::Duration;

use rust_decimal_macros::dec;
use serde_json::{json, Value};
use time::OffsetDateTime;

use billing_domain::{
    Channel, EventKind, InvoiceId, PaymentId, PaymentProvider, ProviderError, ProviderEvent, StartOutcome, TenantId,
    WebhookRequest,
};
use provider_stripe::test_server::{event_envelope, signed_event, signed_request, Fixture};
use provider_stripe::{
    sign, Normalised, OutcomeError, Secret, SignatureError, WebhookError, WebhookVerifier, SIGNATURE_HEADER,
};

use crate::support::{config, fake, money, provider, start_request, webhook, START, WEBHOOK_SECRET};

const ROTATED_SECRET: &str = "whsec_test_rotated";

fn tenant_id() -> TenantId {
    TenantId::from_random_bytes([1; 16])
}

fn invoice_id() -> InvoiceId {
    InvoiceId::from_random_bytes([2; 16])
}

fn payment_id() -> PaymentId {
    PaymentId::from_random_bytes([3; 16])
}

fn our_metadata() -> Value {
    json!({
        "tenant_id": tenant_id().to_string(),
        "invoice_id": invoice_id().to_string(),
        "payment_id": payment_id().to_string(),
    })
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn verifier() -> WebhookVerifier {
    WebhookVerifier::new(vec![Secret::new(WEBHOOK_SECRET)], Duration::from_secs(300))
}

/// Verifies and normalises with the default verifier at `now`.
fn normalise(request: &WebhookRequest, now: i64) -> Result<Normalised, WebhookError> {
    verifier().verify(request, at(now))?.normalise()
}

/// Normalises an event that must not need a lookup.
fn normalised_event(event_type: &str, object: Value) -> Result<ProviderEvent, WebhookError> {
    match normalise(&webhook("evt_test_1", event_type, object, START), START)? {
        Normalised::Event(event) => Ok(event),
        Normalised::NeedsPaymentIntent(pending) => panic!("{event_type} needed {}", pending.payment_intent_id()),
    }
}

fn session(status: &str, payment_status: &str) -> Value {
    let mut session = Fixture::CheckoutSession.load().unwrap();
    session["id"] = json!("cs_test_webhook");
    session["status"] = json!(status);
    session["payment_status"] = json!(payment_status);
    session["amount_total"] = json!(2500);
    session["currency"] = json!("eur");
    session["metadata"] = our_metadata();
    session["client_reference_id"] = json!(payment_id().to_string());
    session
}

fn intent(status: &str, amount_received: i64, payment_method_types: &[&str]) -> Value {
    let mut intent = Fixture::PaymentIntent.load().unwrap();
    intent["id"] = json!("pi_test_webhook");
    intent["amount"] = json!(2500);
    intent["amount_received"] = json!(amount_received);
    intent["currency"] = json!("eur");
    intent["status"] = json!(status);
    intent["metadata"] = our_metadata();
    intent["payment_method_types"] = json!(payment_method_types);
    intent
}

fn charge(amount_refunded: i64) -> Value {
    let mut charge = Fixture::Charge.load().unwrap();
    charge["amount"] = json!(2500);
    charge["amount_refunded"] = json!(amount_refunded);
    charge["currency"] = json!("eur");
    charge["metadata"] = our_metadata();
    charge["payment_intent"] = json!("pi_test_webhook");
    charge
}

fn completed_body() -> Vec<u8> {
    serde_json::to_vec_pretty(&event_envelope(
        "evt_test_1",
        "checkout.session.completed",
        START,
        session("complete", "paid"),
    ))
    .unwrap()
}

#[test]
fn valid_signature_yields_the_event() {
    let event = normalised_event("checkout.session.completed", session("complete", "paid")).unwrap();

    assert_eq!(event.provider.as_str(), "stripe");
    assert_eq!(event.event_id.as_str(), "evt_test_1");
    assert_eq!(event.occurred_at, at(START));
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.amount, Some(money(dec!(25.00), "EUR")));
    assert_eq!(event.provider_type, "checkout.session.completed");
    assert_eq!(event.matches.tenant_id, Some(tenant_id()));
    assert_eq!(event.matches.invoice_id, Some(invoice_id()));
    assert_eq!(event.matches.payment_id, Some(payment_id()));
    assert_eq!(event.matches.reference.unwrap().as_str(), "cs_test_webhook");
}

#[test]
fn tampered_byte_is_rejected() {
    let mut request = signed_request(completed_body(), WEBHOOK_SECRET, START);
    let position = request.body.windows(4).position(|window| window == b"2500").unwrap();
    request.body[position] = b'9';

    let error = normalise(&request, START).unwrap_err();

    assert_eq!(error, WebhookError::Signature(SignatureError::NoMatchingSignature { n_signatures: 1, n_secrets: 1 }));
}

#[test]
fn reserialised_body_is_rejected() {
    let original = signed_request(completed_body(), WEBHOOK_SECRET, START);
    let parsed: Value = serde_json::from_slice(&original.body).unwrap();
    let compact = serde_json::to_vec(&parsed).unwrap();
    let mut reordered = String::from_utf8(original.body.clone()).unwrap();
    reordered = reordered.replacen("\"object\": \"event\",", "", 1).replacen('{', "{\n  \"object\": \"event\",", 1);

    for body in [compact, reordered.into_bytes()] {
        assert_ne!(body, original.body);
        let mut request = original.clone();
        request.body = body;
        let error = normalise(&request, START).unwrap_err();
        assert!(matches!(error, WebhookError::Signature(SignatureError::NoMatchingSignature { .. })), "{error}");
    }
}

#[test]
fn stale_and_future_timestamps_are_rejected() {
    let request = signed_request(completed_body(), WEBHOOK_SECRET, START);

    for now in [START + 301, START - 301] {
        let error = normalise(&request, now).unwrap_err();
        let expected = SignatureError::TimestampOutsideTolerance { timestamp: START, now, tolerance_secs: 300 };
        assert_eq!(error, WebhookError::Signature(expected));
    }
    for now in [START + 300, START - 300] {
        assert!(normalise(&request, now).is_ok(), "{now} is within tolerance");
    }
}

#[test]
fn configured_tolerance_applies() {
    let request = signed_request(completed_body(), WEBHOOK_SECRET, START);
    let strict = WebhookVerifier::new(vec![Secret::new(WEBHOOK_SECRET)], Duration::from_secs(10));

    assert!(strict.verify(&request, at(START + 10)).is_ok());
    assert!(strict.verify(&request, at(START + 11)).is_err());
}

#[test]
fn any_of_several_v1_signatures_may_match() {
    let body = completed_body();
    let good = sign(WEBHOOK_SECRET, START, &body);
    let good_tag = good.split_once(",v1=").unwrap().1;
    let header = format!("t={START},v1={},v0={},v1={good_tag}", "ab".repeat(32), "cd".repeat(32));
    let request = WebhookRequest { headers: vec![(SIGNATURE_HEADER.into(), header)], query: None, body };

    assert!(normalise(&request, START).is_ok());
}

#[test]
fn rotated_secret_accepts_old_and_new() {
    let verifier =
        WebhookVerifier::new(vec![Secret::new(WEBHOOK_SECRET), Secret::new(ROTATED_SECRET)], Duration::from_secs(300));

    for secret in [WEBHOOK_SECRET, ROTATED_SECRET] {
        let request = signed_request(completed_body(), secret, START);
        assert!(verifier.verify(&request, at(START)).is_ok(), "{secret}");
    }
    let request = signed_request(completed_body(), "whsec_someone_else", START);
    assert_eq!(
        verifier.verify(&request, at(START)).unwrap_err(),
        WebhookError::Signature(SignatureError::NoMatchingSignature { n_signatures: 1, n_secrets: 2 })
    );
}

#[test]
fn missing_and_malformed_headers_are_rejected() {
    let mut request = signed_request(completed_body(), WEBHOOK_SECRET, START);
    request.headers.retain(|(name, _)| name != SIGNATURE_HEADER);
    assert_eq!(normalise(&request, START).unwrap_err(), WebhookError::Signature(SignatureError::MissingHeader));

    request.headers.push(("stripe-signature".into(), "t=abc,v1=00".into()));
    let error = normalise(&request, START).unwrap_err();
    assert!(matches!(error, WebhookError::Signature(SignatureError::Malformed { .. })), "{error}");
    assert!(error.to_string().contains("\"abc\""), "{error}");
}

#[test]
fn non_utf8_body_is_rejected() {
    let mut body = completed_body();
    body.insert(10, 0xff);
    let request = signed_request(body, WEBHOOK_SECRET, START);

    assert_eq!(normalise(&request, START).unwrap_err(), WebhookError::BodyNotUtf8 { valid_up_to: 10 });
}

#[test]
fn non_event_body_is_rejected() {
    let charge_alone = serde_json::to_vec(&charge(0)).unwrap();
    for body in [b"[]".to_vec(), b"not json".to_vec(), charge_alone] {
        let request = signed_request(body, WEBHOOK_SECRET, START);
        let error = normalise(&request, START).unwrap_err();
        assert!(matches!(error, WebhookError::NotAnEvent { .. }), "{error}");
    }
}

#[test]
fn checkout_events_map_by_payment_status() {
    let cases = [
        ("checkout.session.completed", session("complete", "paid"), EventKind::Succeeded, true),
        ("checkout.session.completed", session("complete", "unpaid"), EventKind::Pending, false),
        ("checkout.session.async_payment_succeeded", session("complete", "paid"), EventKind::Succeeded, true),
        ("checkout.session.async_payment_failed", session("complete", "unpaid"), EventKind::Failed, false),
        ("checkout.session.expired", session("expired", "unpaid"), EventKind::Expired, false),
    ];
    for (event_type, object, kind, has_amount) in cases {
        let event = normalised_event(event_type, object).unwrap();
        assert_eq!(event.kind, kind, "{event_type}");
        assert_eq!(event.amount.is_some(), has_amount, "{event_type}");
        assert_eq!(event.matches.payment_id, Some(payment_id()), "{event_type}");
    }
}

#[test]
fn completion_without_payment_is_ignored() {
    let event = normalised_event("checkout.session.completed", session("complete", "no_payment_required")).unwrap();

    assert_eq!(
        event.kind,
        EventKind::Ignored { provider_type: "checkout.session.completed:no_payment_required".into() }
    );
}

#[test]
fn payment_intent_events_map_by_status_and_channel() {
    let cases = [
        ("payment_intent.succeeded", intent("succeeded", 2500, &["card"]), EventKind::Succeeded),
        ("payment_intent.payment_failed", intent("requires_payment_method", 0, &["card"]), EventKind::Pending),
        ("payment_intent.payment_failed", intent("requires_payment_method", 0, &["card_present"]), EventKind::Failed),
        ("payment_intent.canceled", intent("canceled", 0, &["card_present"]), EventKind::Canceled),
    ];
    for (event_type, object, kind) in cases {
        let event = normalised_event(event_type, object).unwrap();
        assert_eq!(event.kind, kind, "{event_type}");
        assert_eq!(event.matches.payment_id, Some(payment_id()), "{event_type}");
        assert_eq!(event.matches.reference.as_ref().unwrap().as_str(), "pi_test_webhook", "{event_type}");
    }
    let succeeded = normalised_event("payment_intent.succeeded", intent("succeeded", 2500, &["card"])).unwrap();
    assert_eq!(succeeded.amount, Some(money(dec!(25), "EUR")));
}

#[test]
fn charge_refunded_reports_the_cumulative_amount() {
    let event = normalised_event("charge.refunded", charge(1500)).unwrap();

    assert_eq!(event.kind, EventKind::Refunded { total_refunded: money(dec!(15.00), "EUR") });
    assert_eq!(event.matches.payment_id, Some(payment_id()));
    assert_eq!(event.matches.reference.unwrap().as_str(), "pi_test_webhook");
}

#[test]
fn dispute_closed_maps_won_and_lost() {
    let cases =
        [("won", EventKind::DisputeWon), ("warning_closed", EventKind::DisputeWon), ("lost", EventKind::DisputeLost)];
    for (status, kind) in cases {
        let mut dispute = Fixture::Dispute.load().unwrap();
        dispute["status"] = json!(status);
        dispute["payment_intent"] = json!("pi_test_webhook");
        let request = webhook("evt_test_dispute", "charge.dispute.closed", dispute, START);
        let Normalised::NeedsPaymentIntent(pending) = normalise(&request, START).unwrap() else {
            panic!("a dispute needs its PaymentIntent");
        };
        assert_eq!(pending.payment_intent_id(), "pi_test_webhook");
        assert_eq!(pending.draft().kind, kind, "{status}");
    }
}

#[test]
fn dispute_with_unknown_closing_status_is_rejected() {
    let mut dispute = Fixture::Dispute.load().unwrap();
    dispute["status"] = json!("charge_refunded");

    let error = normalised_event("charge.dispute.closed", dispute).unwrap_err();

    let WebhookError::InvalidObject { event_type, source, .. } = error else { panic!("expected InvalidObject") };
    assert_eq!(event_type, "charge.dispute.closed");
    assert_eq!(source, OutcomeError::UnknownStatus { object: "dispute", value: "charge_refunded".into() });
}

#[test]
fn dispute_without_intent_uses_charge() {
    let dispute = Fixture::Dispute.load().unwrap();

    let event = normalised_event("charge.dispute.created", dispute).unwrap();

    assert_eq!(event.kind, EventKind::DisputeOpened);
    assert_eq!(event.matches.payment_id, None);
    assert_eq!(event.matches.reference.unwrap().as_str(), "ch_1PgafuB7WZ01zgkWXYmPNZs8");
    assert_eq!(event.amount, Some(money(dec!(10.00), "USD")));
}

#[test]
fn reader_action_failure_fails_its_payment_intent() {
    let mut reader = Fixture::TerminalReader.load().unwrap();
    reader["action"] = json!({
        "type": "process_payment_intent",
        "status": "failed",
        "failure_code": "card_declined",
        "failure_message": "Your card was declined.",
        "process_payment_intent": { "payment_intent": "pi_test_webhook" },
    });

    let event = normalised_event("terminal.reader.action_failed", reader).unwrap();

    assert_eq!(event.kind, EventKind::Failed);
    assert_eq!(event.matches.reference.unwrap().as_str(), "pi_test_webhook");
}

#[test]
fn other_reader_actions_are_ignored() {
    // The fixture reader's action is a failed refund_payment.
    let event = normalised_event("terminal.reader.action_failed", Fixture::TerminalReader.load().unwrap()).unwrap();

    assert_eq!(event.kind, EventKind::Ignored { provider_type: "terminal.reader.action_failed".into() });
}

#[test]
fn unknown_event_types_are_ignored() {
    // The fixture event is a complete envelope of a type the adapter does not handle.
    let request = signed_request(Fixture::Event.text().as_bytes().to_vec(), WEBHOOK_SECRET, START);
    let Normalised::Event(event) = normalise(&request, START).unwrap() else { panic!("no lookup expected") };
    assert_eq!(event.kind, EventKind::Ignored { provider_type: "plan.created".into() });
    assert_eq!(event.event_id.as_str(), "evt_1Pgc76B7WZ01zgkWwyRHS12y");

    let event = normalised_event("customer.created", json!({ "id": "cus_1", "object": "customer" })).unwrap();
    assert_eq!(event.kind, EventKind::Ignored { provider_type: "customer.created".into() });
}

#[test]
fn paid_session_without_amount_is_rejected() {
    let mut object = session("complete", "paid");
    object["amount_total"] = Value::Null;

    let error = normalised_event("checkout.session.completed", object).unwrap_err();

    assert!(error.to_string().contains("amount_total"), "{error}");
    assert!(error.to_string().contains("evt_test_1"), "{error}");
}

#[test]
fn unknown_currency_is_rejected() {
    let mut object = session("complete", "paid");
    object["currency"] = json!("xyz");

    let error = normalised_event("checkout.session.completed", object).unwrap_err();

    assert!(error.to_string().contains("\"xyz\""), "{error}");
}

#[test]
fn foreign_metadata_falls_back_to_the_reference() {
    let mut object = session("complete", "paid");
    object["metadata"] = json!({ "payment_id": "order-42" });
    object["client_reference_id"] = Value::Null;

    let event = normalised_event("checkout.session.completed", object).unwrap();

    assert_eq!(event.matches.payment_id, None);
    assert_eq!(event.matches.reference.unwrap().as_str(), "cs_test_webhook");
}

#[tokio::test]
async fn dispute_takes_ids_from_its_payment_intent() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    let StartOutcome::Redirect { reference, .. } = provider.start_payment(&request).await.unwrap() else {
        panic!("expected a redirect");
    };
    let session = fake.pay_session(reference.as_str()).unwrap();
    let intent_id = session["payment_intent"].as_str().unwrap();
    let dispute = fake.dispute(intent_id, "needs_response").unwrap();

    let events = provider
        .verify_webhook(&webhook("evt_test_dispute", "charge.dispute.created", dispute, START), at(START))
        .await
        .unwrap();

    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::DisputeOpened);
    assert_eq!(events[0].matches.payment_id, Some(request.payment_id));
    assert_eq!(events[0].matches.invoice_id, Some(request.invoice_id));
    assert_eq!(events[0].matches.reference.as_ref().unwrap().as_str(), intent_id);
    assert_eq!(fake.requests().last().unwrap().path, format!("/v1/payment_intents/{intent_id}"));
}

#[tokio::test]
async fn reader_success_reads_payment_intent() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = start_request(money(dec!(25), "EUR"), Channel::Terminal { reader: "tmr_test_front_desk".into() });
    provider.start_payment(&request).await.unwrap();
    let reader = fake.present_card("tmr_test_front_desk").unwrap();

    let events = provider
        .verify_webhook(&webhook("evt_test_reader", "terminal.reader.action_succeeded", reader, START), at(START))
        .await
        .unwrap();

    assert_eq!(events[0].kind, EventKind::Succeeded);
    assert_eq!(events[0].amount, Some(money(dec!(25), "EUR")));
    assert_eq!(events[0].matches.payment_id, Some(request.payment_id));
}

#[tokio::test]
async fn rejection_is_invalid_webhook() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = signed_event(
        &event_envelope("evt_test_1", "checkout.session.completed", START, session("complete", "paid")),
        "whsec_wrong",
        START,
    )
    .unwrap();

    let error = provider.verify_webhook(&request, at(START)).await.unwrap_err();

    let ProviderError::InvalidWebhook { reason } = error else { panic!("expected InvalidWebhook") };
    assert!(reason.contains("none of the 1 v1 signatures"), "{reason}");
}

#[tokio::test]
async fn failed_lookup_rejects_dispute() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    let StartOutcome::Redirect { reference, .. } = provider.start_payment(&request).await.unwrap() else {
        panic!("expected a redirect");
    };
    let session = fake.pay_session(reference.as_str()).unwrap();
    let dispute = fake.dispute(session["payment_intent"].as_str().unwrap(), "needs_response").unwrap();
    fake.fail_next(500, "api_error", "Stripe is unavailable.");

    let error = provider
        .verify_webhook(&webhook("evt_test_dispute", "charge.dispute.created", dispute, START), at(START))
        .await
        .unwrap_err();

    assert!(matches!(error, ProviderError::Api { status: 500, .. }), "{error:?}");
}
