//! The fake Stripe itself: the helpers the walkthrough uses, its hosted
//! page, authentication and idempotency checks.

use std::sync::Arc;

use rust_decimal_macros::dec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use billing_domain::log::LogOutcome;
use billing_domain::memory::MemoryStore;
use billing_domain::service::{PaymentOptions, PaymentStart};
use billing_domain::testing::{ManualClock, SeededRandom};
use billing_domain::{BillingService, Channel, InvoiceStatus, PaymentProvider, ProviderError};
use provider_stripe::test_server::{FakeStripe, TEST_SECRET_KEY};
use provider_stripe::StripeProvider;

use crate::support::{config, fake, money, provider, start_request, start_time, stripe_name, CANCEL_URL, SUCCESS_URL};

/// Sends one raw HTTP/1.1 GET to the stand-in and returns the whole response.
async fn get(fake: &FakeStripe, path: &str, authorization: Option<&str>) -> String {
    let mut stream = tokio::net::TcpStream::connect(fake.address()).await.unwrap();
    let authorization = authorization.map(|value| format!("Authorization: {value}\r\n")).unwrap_or_default();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{authorization}Connection: close\r\n\r\n", fake.address());
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

#[tokio::test]
async fn walkthrough_helpers_drive_a_checkout() {
    let fake = fake().await;
    let clock = Arc::new(ManualClock::new(start_time()));
    let provider = StripeProvider::new(fake.config(SUCCESS_URL, CANCEL_URL).unwrap(), clock.clone()).unwrap();
    let service = BillingService::new(Arc::new(MemoryStore::new()), clock, Arc::new(SeededRandom::new(11)))
        .with_provider(Arc::new(provider));
    let owner = billing_domain::UserId::from_random_bytes([5; 16]);
    let (tenant, staff) = service
        .create_tenant("Stand-in Studio", owner, "Owner", billing_domain::ledger::OverdraftPolicy { limit: 0 })
        .await
        .unwrap();
    let company = service.add_company(&staff, "Customer Ltd").await.unwrap();
    let row = billing_domain::InvoiceRow {
        description: "Credits".into(),
        quantity: dec!(1),
        unit_price: money(dec!(9.90), "EUR"),
        project: None,
        content: None,
        credits: Some(1000),
    };
    let new = billing_domain::service::NewInvoice {
        company_id: company.id,
        number: "2026-0015".into(),
        currency: money(dec!(1), "EUR").currency(),
        rows: vec![row],
    };
    let invoice = service.create_invoice(&staff, new).await.unwrap();
    let issued = service.issue_invoice(&staff, invoice.id).await.unwrap();

    let start = service.start_public_payment(issued.token.expose(), &stripe_name(), PaymentOptions::default()).await;
    let Ok(PaymentStart::Redirect { payment_id, url }) = start else { panic!("expected a redirect, got {start:?}") };
    let session_id = fake.session_id_for_payment(payment_id).unwrap();
    let session = fake.pay_session(&session_id).unwrap();
    let now = service.now().unix_timestamp();
    let request = fake.signed_webhook("evt_walkthrough_1", "checkout.session.completed", session, now).unwrap();
    let reports = service.handle_webhook(&stripe_name(), &request).await.unwrap();

    assert!(url.ends_with(&format!("/c/pay/{session_id}")), "{url}");
    assert_eq!(fake.requests()[0].header("authorization"), Some(format!("Bearer {TEST_SECRET_KEY}").as_str()));
    assert_eq!(reports[0].outcome, LogOutcome::Applied);
    let paid = service.store().invoice(invoice.id).await.unwrap().unwrap();
    assert_eq!(paid.status(), InvoiceStatus::Paid);
    assert_eq!(service.balance(tenant.id).await.unwrap().balance, 1000);
}

#[tokio::test]
async fn hosted_page_is_served_locally() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    provider.start_payment(&request).await.unwrap();
    let session_id = fake.session_id_for_payment(request.payment_id).unwrap();

    let page = get(&fake, &format!("/c/pay/{session_id}"), None).await;
    let missing = get(&fake, "/c/pay/cs_test_unknown", None).await;

    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("text/html"), "{page}");
    assert!(page.contains(&session_id), "{page}");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[tokio::test]
async fn api_requires_a_bearer_key() {
    let fake = fake().await;

    let anonymous = get(&fake, "/v1/payment_intents/pi_1", None).await;
    let unknown = get(&fake, "/v1/payment_intents/pi_1", Some("Bearer sk_test_x")).await;

    assert!(anonymous.starts_with("HTTP/1.1 401"), "{anonymous}");
    assert!(anonymous.contains("You did not provide an API key."), "{anonymous}");
    assert!(unknown.starts_with("HTTP/1.1 404"), "{unknown}");
    assert!(unknown.contains("resource_missing"), "{unknown}");
}

#[tokio::test]
async fn reused_key_with_other_form_rejected() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let first = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    let mut changed = first.clone();
    changed.amount = money(dec!(30), "EUR");

    provider.start_payment(&first).await.unwrap();
    let error = provider.start_payment(&changed).await.unwrap_err();

    let ProviderError::Api { status, message, .. } = error else { panic!("expected an API error, got {error:?}") };
    assert_eq!(status, 400);
    assert!(message.contains("idempotency_key_in_use"), "{message}");
}
