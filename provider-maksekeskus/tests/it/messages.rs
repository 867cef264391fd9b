//! Returns and notifications through `verify_webhook`: where the parameters
//! arrive, both message shapes, status mapping, and messages to reject.

use billing_domain::{EventKind, PaymentProvider, ProviderError, ProviderEvent, WebhookRequest};
use provider_maksekeskus::test_server::{FakeMaksekeskus, FakeTransaction, SignedMessage};
use provider_maksekeskus::TransactionStatus;
use rust_decimal_macros::dec;
use time::macros::datetime;

use crate::support::{eur, fake, fixture, provider, NOW};

const FIXTURE_TRANSACTION: &str = "8d2f4a10-5c3e-4b9a-a7e1-2f6c0b9d3e55";
const PAYMENT_ID: &str = "5f0b5a7e-2a43-4b43-9d4e-0c1d2e3f4a5b";

fn fixture_message(name: &str) -> SignedMessage {
    let fixture = fixture(name);
    SignedMessage { json: fixture.json, mac: fixture.mac }
}

/// A `payment_return` for the fixture transaction with the given status and amount text.
fn payment_return(fake: &FakeMaksekeskus, shop: &str, status: &str, amount: &str) -> SignedMessage {
    fake.sign(format!(
        r#"{{"shop":"{shop}","amount":{amount},"currency":"EUR","reference":"INV-2026-0042","merchant_data":"{PAYMENT_ID}","transaction":"{FIXTURE_TRANSACTION}","status":"{status}","signature":"","message_time":"2026-11-30T10:15:42+0000","message_type":"payment_return","customer_name":"Test Customer"}}"#
    ))
}

async fn rejection(fake: &FakeMaksekeskus, request: &WebhookRequest) -> String {
    match provider(fake).verify_webhook(request, NOW).await {
        Err(ProviderError::InvalidWebhook { reason }) => reason,
        other => panic!("expected InvalidWebhook, got {other:?}"),
    }
}

async fn single_event(fake: &FakeMaksekeskus, request: &WebhookRequest) -> ProviderEvent {
    let mut events = provider(fake).verify_webhook(request, NOW).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

#[tokio::test]
async fn payment_return_fixture_maps_to_success() {
    let fake = fake().await;
    let message = fixture_message("payment_return.completed.json");
    let event = single_event(&fake, &message.form_request()).await;

    assert_eq!(event.event_id.as_str(), format!("{FIXTURE_TRANSACTION}:COMPLETED"));
    assert_eq!(event.kind, EventKind::Succeeded);
    assert_eq!(event.amount, Some(eur(dec!(25))));
    assert_eq!(event.provider.as_str(), "maksekeskus");
    assert_eq!(event.provider_type, "payment_return:COMPLETED");
    assert_eq!(event.occurred_at, datetime!(2026-11-30 10:15:42 UTC));
    // The fixture's merchant_data is not a payment id, so the transaction id matches.
    assert_eq!(event.matches.payment_id, None);
    assert_eq!(event.matches.reference.unwrap().as_str(), FIXTURE_TRANSACTION);
    assert!(fake.requests().is_empty(), "a payment_return needs no API call");
}

#[tokio::test]
async fn query_form_and_json_deliveries_agree() {
    let fake = fake().await;
    let message = fixture_message("payment_return.completed.json");
    let from_query = single_event(&fake, &message.query_request()).await;
    let from_form = single_event(&fake, &message.form_request()).await;
    let from_json = single_event(&fake, &message.json_request()).await;
    assert_eq!(from_query, from_form);
    assert_eq!(from_query, from_json);
}

#[tokio::test]
async fn merchant_data_payment_id_is_matched() {
    let fake = fake().await;
    let event = single_event(&fake, &payment_return(&fake, fake.shop_id(), "COMPLETED", "25.0").form_request()).await;
    assert_eq!(event.matches.payment_id.unwrap().to_string(), PAYMENT_ID);
    assert_eq!(event.matches.reference.unwrap().as_str(), FIXTURE_TRANSACTION);
}

#[tokio::test]
async fn token_return_fetches_the_transaction() {
    let fake = fake().await;
    let mut transaction = FakeTransaction::new(FIXTURE_TRANSACTION, dec!(25), Some(PAYMENT_ID), NOW);
    transaction.status = TransactionStatus::Completed;
    transaction.completed_at = Some(datetime!(2026-11-30 10:15:40 UTC));
    fake.insert_transaction(transaction);

    let token_event = single_event(&fake, &fixture_message("token_return.completed.json").form_request()).await;
    let return_event = single_event(&fake, &fixture_message("payment_return.completed.json").form_request()).await;

    assert_eq!(token_event.kind, EventKind::Succeeded);
    assert_eq!(token_event.amount, Some(eur(dec!(25))));
    assert_eq!(token_event.provider_type, "token_return:COMPLETED");
    assert_eq!(token_event.occurred_at, datetime!(2026-11-30 10:15:40 UTC));
    assert_eq!(token_event.matches.payment_id.unwrap().to_string(), PAYMENT_ID);
    // The same state is one event, whichever message reported it.
    assert_eq!(token_event.event_id, return_event.event_id);
    let paths: Vec<String> = fake.requests().iter().map(|request| request.path.clone()).collect();
    assert_eq!(paths, [format!("/v1/transactions/{FIXTURE_TRANSACTION}")]);
}

#[tokio::test]
async fn token_return_with_error_fails_the_attempt() {
    let fake = fake().await;
    let message = fake.sign(format!(
        r#"{{"transaction":{{"id":"{FIXTURE_TRANSACTION}","status":"CREATED"}},"error":{{"code":1064,"message":"Token expired"}},"message_time":"2026-11-30T10:15:42+0000","message_type":"token_return"}}"#
    ));
    let event = single_event(&fake, &message.form_request()).await;
    assert_eq!(event.kind, EventKind::Failed);
    assert_eq!(event.event_id.as_str(), format!("{FIXTURE_TRANSACTION}:token_error:1064"));
    assert_eq!(event.provider_type, "token_return:error:1064");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn every_status_maps_to_its_kind() {
    let fake = fake().await;
    let cases = [
        ("CREATED", EventKind::Pending),
        ("PENDING", EventKind::Pending),
        ("APPROVED", EventKind::Pending),
        ("COMPLETED", EventKind::Succeeded),
        ("CANCELLED", EventKind::Canceled),
        ("EXPIRED", EventKind::Expired),
        ("REFUNDED", EventKind::Refunded { total_refunded: eur(dec!(25)) }),
    ];
    for (status, kind) in cases {
        let event = single_event(&fake, &payment_return(&fake, fake.shop_id(), status, "25.0").form_request()).await;
        assert_eq!(event.kind, kind, "{status}");
    }
}

#[tokio::test]
async fn part_refunded_reads_refunded_amount() {
    let fake = fake().await;
    let mut transaction = FakeTransaction::new(FIXTURE_TRANSACTION, dec!(25), Some(PAYMENT_ID), NOW);
    transaction.status = TransactionStatus::Completed;
    transaction.completed_at = Some(NOW);
    transaction.refunded_amount = dec!(5);
    fake.insert_transaction(transaction);

    let message = fake.payment_return(FIXTURE_TRANSACTION, TransactionStatus::PartRefunded).unwrap();
    let event = single_event(&fake, &message.form_request()).await;
    assert_eq!(event.kind, EventKind::Refunded { total_refunded: eur(dec!(5)) });
    assert_eq!(event.event_id.as_str(), format!("{FIXTURE_TRANSACTION}:PART_REFUNDED:5.00"));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn amount_as_string_is_accepted() {
    let fake = fake().await;
    let event =
        single_event(&fake, &payment_return(&fake, fake.shop_id(), "COMPLETED", "\"25.00\"").form_request()).await;
    assert_eq!(event.amount, Some(eur(dec!(25))));
}

#[tokio::test]
async fn amount_with_three_decimals_is_rejected() {
    let fake = fake().await;
    let reason = rejection(&fake, &payment_return(&fake, fake.shop_id(), "COMPLETED", "25.001").form_request()).await;
    assert!(reason.contains("invalid amount"), "{reason}");
    assert!(reason.contains("25.001"), "{reason}");
}

#[tokio::test]
async fn unknown_status_is_rejected() {
    let fake = fake().await;
    for status in ["PAID", "DECLINED", "completed"] {
        let reason = rejection(&fake, &payment_return(&fake, fake.shop_id(), status, "25.0").form_request()).await;
        assert!(reason.contains(&format!("{status:?}")), "{reason}");
        assert!(reason.contains(FIXTURE_TRANSACTION), "{reason}");
    }
}

#[tokio::test]
async fn message_for_another_shop_is_rejected() {
    let fake = fake().await;
    let other_shop = "f7741ab2-7445-45f9-9af4-0d0408ef1e4c";
    let reason = rejection(&fake, &payment_return(&fake, other_shop, "COMPLETED", "25.0").form_request()).await;
    assert!(reason.contains(other_shop), "{reason}");
}

#[tokio::test]
async fn missing_parameters_are_rejected() {
    let fake = fake().await;
    let message = fixture_message("payment_return.completed.json");
    let only_json = WebhookRequest {
        query: Some(form_urlencoded::Serializer::new(String::new()).append_pair("json", &message.json).finish()),
        ..WebhookRequest::default()
    };
    let reason = rejection(&fake, &only_json).await;
    assert!(reason.contains("mac parameter is missing"), "{reason}");
    let reason = rejection(&fake, &WebhookRequest::default()).await;
    assert!(reason.contains("json parameter is missing"), "{reason}");
}

#[tokio::test]
async fn unknown_message_type_is_ignored() {
    let fake = fake().await;
    let message = fake.sign(r#"{"message_type":"shipping_return","shop":"x"}"#);
    let event = single_event(&fake, &message.form_request()).await;
    assert_eq!(event.kind, EventKind::Ignored { provider_type: "shipping_return".into() });
    assert!(event.event_id.as_str().starts_with("shipping_return:"));
}
