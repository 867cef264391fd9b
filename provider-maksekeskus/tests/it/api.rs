//! Creating, fetching and looking up transactions against the fake API:
//! what is sent (auth, amount string, URLs) and how responses and failures map.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use billing_domain::provider::Operation;
use billing_domain::testing::ManualClock;
use billing_domain::{
    Channel, Currency, EventKind, Money, Payment, PaymentProvider, ProviderError, ProviderName, ProviderReference,
    StartOutcome,
};
use provider_maksekeskus::test_server::FakeTransaction;
use provider_maksekeskus::{MaksekeskusProvider, SecretKey, TransactionStatus};
use rust_decimal_macros::dec;
use time::macros::datetime;

use crate::support::{eur, fake, provider, start_request, CANCEL_URL, NOTIFICATION_URL, NOW, RETURN_URL};

fn payment_for(request: &billing_domain::StartRequest, reference: Option<&str>) -> Payment {
    let mut payment = Payment::new(
        request.payment_id,
        request.tenant_id,
        request.invoice_id,
        ProviderName::new("maksekeskus").unwrap(),
        Channel::HostedPage,
        request.amount,
        NOW,
    );
    payment.reference = reference.map(|text| ProviderReference::new(text).unwrap());
    payment
}

#[tokio::test]
async fn create_sends_auth_amount_and_urls() {
    let fake = fake().await;
    let request = start_request();
    let outcome = provider(&fake).start_payment(&request).await.unwrap();

    let StartOutcome::Redirect { url, reference } = outcome else { panic!("expected a redirect, got {outcome:?}") };
    let transaction = fake.transaction(reference.as_str()).expect("the fake holds the transaction");
    assert_eq!(url, format!("{}/pay.html?trx={}", fake.api_base(), transaction.id));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/transactions");
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));
    let credentials = format!("{}:{}", fake.shop_id(), fake.secret_key().expose());
    assert_eq!(sent.authorization, Some(format!("Basic {}", STANDARD.encode(credentials))));

    let body = sent.json().unwrap();
    assert_eq!(body["transaction"]["amount"], "25.00");
    assert_eq!(body["transaction"]["currency"], "EUR");
    assert_eq!(body["transaction"]["reference"], "INV-2026-0042");
    assert_eq!(body["transaction"]["merchant_data"], request.payment_id.to_string());
    assert_eq!(body["customer"]["ip"], "203.0.113.7");
    assert_eq!(body["customer"]["locale"], "et");
    let urls = &body["transaction"]["transaction_url"];
    assert_eq!(urls["return_url"]["url"], RETURN_URL);
    assert_eq!(urls["return_url"]["method"], "POST");
    assert_eq!(urls["cancel_url"]["url"], CANCEL_URL);
    assert_eq!(urls["notification_url"]["url"], NOTIFICATION_URL);
    // Only the opaque payment id travels: no names, rows or e-mail.
    assert!(body["customer"].get("email").is_none());
    assert_eq!(body["transaction"].as_object().unwrap().len(), 5, "{body}");
}

#[tokio::test]
async fn debug_output_hides_secret_key() {
    let fake = fake().await;
    let printed = format!("{:?}", provider(&fake));
    assert!(!printed.contains(fake.secret_key().expose()), "{printed}");
    assert!(printed.contains(fake.shop_id()), "{printed}");
}

#[tokio::test]
async fn create_without_urls_sends_none() {
    let fake = fake().await;
    let provider = MaksekeskusProvider::new(fake.config().unwrap()).unwrap();
    let mut request = start_request();
    request.locale = None;
    provider.start_payment(&request).await.unwrap();

    let body = fake.requests()[0].json().unwrap();
    assert!(body["transaction"].get("transaction_url").is_none(), "{body}");
    assert!(body["customer"].get("locale").is_none(), "{body}");
}

#[tokio::test]
async fn long_invoice_number_is_shortened() {
    let fake = fake().await;
    let mut request = start_request();
    request.invoice_number = "ACME-SUBSIDIARY-2026-000123".into();
    provider(&fake).start_payment(&request).await.unwrap();
    let body = fake.requests()[0].json().unwrap();
    assert_eq!(body["transaction"]["reference"], "BSIDIARY-2026-000123");
}

#[tokio::test]
async fn response_without_redirect_is_an_error() {
    let fake = fake().await;
    fake.omit_redirect(true);
    let error = provider(&fake).start_payment(&start_request()).await.unwrap_err();
    let ProviderError::UnexpectedResponse { reason, .. } = error else { panic!("got {error:?}") };
    assert!(reason.contains("payment_methods.other entry named redirect"), "{reason}");
}

#[tokio::test]
async fn non_eur_currency_is_rejected() {
    let fake = fake().await;
    let mut request = start_request();
    request.amount = Money::new(dec!(25), Currency::USD).unwrap();
    let error = provider(&fake).start_payment(&request).await.unwrap_err();
    let ProviderError::InvalidRequest { reason, .. } = error else { panic!("got {error:?}") };
    assert!(reason.contains("USD"), "{reason}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn missing_or_invalid_customer_ip_is_rejected() {
    let fake = fake().await;
    for ip in [None, Some("not-an-ip")] {
        let mut request = start_request();
        request.customer_ip = ip.map(str::to_owned);
        let error = provider(&fake).start_payment(&request).await.unwrap_err();
        assert!(matches!(error, ProviderError::InvalidRequest { .. }), "{ip:?}: {error:?}");
    }
    let mut request = start_request();
    request.locale = Some("estonian".into());
    let error = provider(&fake).start_payment(&request).await.unwrap_err();
    assert!(matches!(error, ProviderError::InvalidRequest { .. }), "{error:?}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn other_channels_are_unsupported() {
    let fake = fake().await;
    let mut request = start_request();
    request.channel = Channel::Terminal { reader: "tmr_1".into() };
    let error = provider(&fake).start_payment(&request).await.unwrap_err();
    assert!(matches!(error, ProviderError::Unsupported { operation: Operation::StartTerminal, .. }), "{error:?}");
}

#[tokio::test]
async fn wrong_secret_key_is_an_api_error() {
    let fake = fake().await;
    let config = provider_maksekeskus::MaksekeskusConfig::new(
        fake.shop_id(),
        SecretKey::new("wrong-secret").unwrap(),
        provider_maksekeskus::Environment::Custom { api_base: fake.api_base().to_owned() },
    )
    .unwrap();
    let error = MaksekeskusProvider::new(config).unwrap().start_payment(&start_request()).await.unwrap_err();
    let ProviderError::Api { status, message, .. } = error else { panic!("got {error:?}") };
    assert_eq!(status, 401);
    assert!(message.contains("secret key was rejected"), "{message}");
}

#[tokio::test]
async fn unreachable_api_is_a_transport_error() {
    // Bind a port, then free it, so nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let config = provider_maksekeskus::MaksekeskusConfig::new(
        "shop",
        SecretKey::new("secret").unwrap(),
        provider_maksekeskus::Environment::Custom { api_base: format!("http://{address}") },
    )
    .unwrap();
    let error = MaksekeskusProvider::new(config).unwrap().start_payment(&start_request()).await.unwrap_err();
    assert!(matches!(error, ProviderError::Transport { .. }), "{error:?}");
    assert!(!error.is_ambiguous());
}

#[tokio::test]
async fn lost_create_response_is_a_timeout() {
    let fake = fake().await;
    fake.set_create_delay(Some(Duration::from_secs(30)));
    let config = fake.config().unwrap().with_request_timeout(Duration::from_millis(1500)).unwrap();
    let provider = MaksekeskusProvider::new(config).unwrap();

    let error = provider.start_payment(&start_request()).await.unwrap_err();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error:?}");
    assert!(error.is_ambiguous());
    assert_eq!(fake.transactions().len(), 1, "the transaction was created all the same");
}

#[tokio::test]
async fn fetch_event_id_is_stable() {
    let fake = fake().await;
    let provider = provider(&fake);
    let request = start_request();
    let StartOutcome::Redirect { reference, .. } = provider.start_payment(&request).await.unwrap() else {
        panic!("expected a redirect")
    };
    let payment = payment_for(&request, Some(reference.as_str()));

    let created = provider.fetch_payment(&payment).await.unwrap();
    assert_eq!(created[0].kind, EventKind::Pending);
    assert_eq!(created[0].event_id.as_str(), format!("{reference}:CREATED"));
    assert_eq!(created[0].matches.payment_id, Some(request.payment_id));

    fake.set_now(datetime!(2026-11-30 10:05 UTC));
    fake.set_status(reference.as_str(), TransactionStatus::Completed).unwrap();
    let first = provider.fetch_payment(&payment).await.unwrap();
    let second = provider.fetch_payment(&payment).await.unwrap();
    assert_eq!(first, second, "fetching the same state twice gives the same event");
    assert_eq!(first[0].kind, EventKind::Succeeded);
    assert_eq!(first[0].amount, Some(eur(dec!(25))));
    assert_eq!(first[0].event_id.as_str(), format!("{reference}:COMPLETED"));
    assert_eq!(first[0].occurred_at, datetime!(2026-11-30 10:05 UTC), "completed_at is the event time");
    assert_eq!(first[0].provider_type, "transaction:COMPLETED");

    let last = fake.requests().pop().unwrap();
    assert_eq!(last.method, "GET");
    assert_eq!(last.path, format!("/v1/transactions/{reference}"));
    assert!(last.authorization.unwrap().starts_with("Basic "));
}

#[tokio::test]
async fn fetch_of_unknown_transaction_is_an_api_error() {
    let fake = fake().await;
    let payment = payment_for(&start_request(), Some("00000000-0000-4000-8000-00000000ffff"));
    let error = provider(&fake).fetch_payment(&payment).await.unwrap_err();
    assert!(matches!(error, ProviderError::Api { status: 404, .. }), "{error:?}");
}

#[tokio::test]
async fn lookup_finds_transaction_by_merchant_data() {
    let fake = fake().await;
    let request = start_request();
    // The wanted transaction is the oldest of 150, so it is on the second page.
    fake.insert_transaction(FakeTransaction::new(
        "00000000-0000-4000-a000-000000000001",
        dec!(25),
        Some(&request.payment_id.to_string()),
        NOW,
    ));
    for number in 2..=150 {
        let id = format!("00000000-0000-4000-a000-{number:012}");
        fake.insert_transaction(FakeTransaction::new(&id, dec!(10), Some("someone-else"), NOW));
    }

    let events = provider(&fake).fetch_payment(&payment_for(&request, None)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Pending);
    assert_eq!(events[0].event_id.as_str(), "00000000-0000-4000-a000-000000000001:CREATED");
    assert_eq!(events[0].matches.payment_id, Some(request.payment_id));

    let queries: Vec<String> = fake.requests().iter().map(|sent| sent.query.clone().unwrap_or_default()).collect();
    assert_eq!(queries, ["since=2026-11-29&page=1&per_page=100", "since=2026-11-29&page=2&per_page=100"]);
}

#[tokio::test]
async fn lookup_without_transaction_reports_failure() {
    let fake = fake().await;
    fake.insert_transaction(FakeTransaction::new("00000000-0000-4000-a000-000000000001", dec!(10), None, NOW));
    let request = start_request();
    let provider = provider(&fake).with_clock(Arc::new(ManualClock::new(datetime!(2026-11-30 10:30 UTC))));

    let events = provider.fetch_payment(&payment_for(&request, None)).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Failed);
    assert_eq!(events[0].event_id.as_str(), format!("{}:NOT_CREATED", request.payment_id));
    assert_eq!(events[0].matches.payment_id, Some(request.payment_id));
    assert_eq!(events[0].occurred_at, datetime!(2026-11-30 10:30 UTC));
}

#[tokio::test]
async fn other_providers_payment_is_rejected() {
    let fake = fake().await;
    let mut payment = payment_for(&start_request(), Some("tx"));
    payment.provider = ProviderName::new("stripe").unwrap();
    let error = provider(&fake).fetch_payment(&payment).await.unwrap_err();
    assert!(matches!(error, ProviderError::InvalidRequest { .. }), "{error:?}");
    assert!(fake.requests().is_empty());
}
