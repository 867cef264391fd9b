//! Creating Checkout Sessions: the exact form Stripe receives, minor units,
//! idempotency, and how failures leave the payment.

use std::collections::BTreeSet;
use std::time::Duration;

use rust_decimal_macros::dec;
use time::OffsetDateTime;

use billing_domain::provider::Operation;
use billing_domain::service::PaymentOptions;
use billing_domain::{
    BillingError, Channel, ManualMethod, PaymentId, PaymentProvider, PaymentStatus, ProviderError, StartOutcome,
};
use provider_stripe::{LineItemLabel, StripeProvider};

use crate::support::{config, fake, money, provider, start_request, stripe_name, World, START};

#[tokio::test]
async fn checkout_sends_exactly_the_expected_form() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = start_request(money(dec!(25.00), "EUR"), Channel::HostedPage);

    let outcome = provider.start_payment(&request).await.unwrap();

    let StartOutcome::Redirect { url, reference } = outcome else { panic!("expected a redirect, got {outcome:?}") };
    assert!(reference.as_str().starts_with("cs_"), "{reference}");
    assert_eq!(url, format!("{}c/pay/{reference}", fake.base_url()));

    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/checkout/sessions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk_test_fake_key"));
    assert_eq!(sent.header("stripe-version"), Some("2026-09-30.endive"));
    assert_eq!(sent.idempotency_key(), Some(format!("billing-checkout-{}", request.payment_id).as_str()));

    let payment_id = request.payment_id.to_string();
    let tenant_id = request.tenant_id.to_string();
    let invoice_id = request.invoice_id.to_string();
    let expected = [
        ("mode", "payment"),
        ("currency", "eur"),
        ("line_items[0][price_data][currency]", "eur"),
        ("line_items[0][price_data][unit_amount]", "2500"),
        ("line_items[0][price_data][product_data][name]", "Invoice 2026-0012"),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", payment_id.as_str()),
        ("metadata[tenant_id]", tenant_id.as_str()),
        ("metadata[invoice_id]", invoice_id.as_str()),
        ("metadata[payment_id]", payment_id.as_str()),
        ("payment_intent_data[metadata][tenant_id]", tenant_id.as_str()),
        ("payment_intent_data[metadata][invoice_id]", invoice_id.as_str()),
        ("payment_intent_data[metadata][payment_id]", payment_id.as_str()),
        ("success_url", "https://shop.example/billing/return?session={CHECKOUT_SESSION_ID}"),
        ("cancel_url", "https://shop.example/billing/cancel"),
    ];
    for (key, value) in expected {
        assert_eq!(sent.form_value(key), Some(value), "form field {key}");
    }
    let sent_keys: BTreeSet<&str> = sent.form.iter().map(|(key, _)| key.as_str()).collect();
    let expected_keys: BTreeSet<&str> = expected.iter().map(|(key, _)| *key).collect();
    assert_eq!(sent_keys, expected_keys, "no other field may reach Stripe");
}

#[tokio::test]
async fn checkout_amounts_use_stripe_minor_units() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let cases = [(dec!(500), "JPY", "500", "jpy"), (dec!(5.120), "KWD", "5120", "kwd"), (dec!(5), "ISK", "500", "isk")];

    for (n, (amount, code, minor, lower)) in (10u8..).zip(cases) {
        fake.clear_requests();
        let mut request = start_request(money(amount, code), Channel::HostedPage);
        request.payment_id = PaymentId::from_random_bytes([n; 16]);
        provider.start_payment(&request).await.unwrap();
        let sent = &fake.requests()[0];
        assert_eq!(sent.form_value("line_items[0][price_data][unit_amount]"), Some(minor), "{code}");
        assert_eq!(sent.form_value("line_items[0][price_data][currency]"), Some(lower), "{code}");
    }
}

#[tokio::test]
async fn three_decimal_needs_trailing_zero() {
    let fake = fake().await;
    let provider = provider(config(&fake));

    let error =
        provider.start_payment(&start_request(money(dec!(5.124), "KWD"), Channel::HostedPage)).await.unwrap_err();

    let ProviderError::InvalidRequest { reason, .. } = &error else { panic!("expected InvalidRequest, got {error:?}") };
    assert!(reason.contains("5124"), "{reason}");
    assert!(reason.contains("steps of 10"), "{reason}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn checkout_uses_product_expiry_locale() {
    let fake = fake().await;
    let config = config(&fake)
        .with_line_item(LineItemLabel::Product("prod_translation".into()))
        .unwrap()
        .with_checkout_expiry(Duration::from_secs(3600))
        .unwrap();
    let provider = provider(config);
    let mut request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    request.locale = Some("et".into());
    request.requested_at = OffsetDateTime::from_unix_timestamp(START + 60).unwrap();

    provider.start_payment(&request).await.unwrap();

    let sent = &fake.requests()[0];
    assert_eq!(sent.form_value("line_items[0][price_data][product]"), Some("prod_translation"));
    assert_eq!(sent.form_value("line_items[0][price_data][product_data][name]"), None);
    let expires_at = (START + 60 + 3600).to_string();
    assert_eq!(sent.form_value("expires_at"), Some(expires_at.as_str()));
    assert_eq!(sent.form_value("locale"), Some("et"));
}

#[tokio::test]
async fn unknown_locale_is_left_to_checkout() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let mut request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);
    request.locale = Some("xx-unknown".into());

    provider.start_payment(&request).await.unwrap();

    assert_eq!(fake.requests()[0].form_value("locale"), None);
}

#[tokio::test]
async fn repeated_start_replays_the_same_session() {
    let fake = fake().await;
    let provider = provider(config(&fake));
    let request = start_request(money(dec!(25), "EUR"), Channel::HostedPage);

    let first = provider.start_payment(&request).await.unwrap();
    let second = provider.start_payment(&request).await.unwrap();

    assert_eq!(first, second);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].idempotency_key(), requests[1].idempotency_key());
}

#[tokio::test]
async fn free_and_manual_channels_are_unsupported() {
    let fake = fake().await;
    let provider: StripeProvider = provider(config(&fake));
    let manual = Channel::Manual { method: ManualMethod::Cash, reference: "R-1".into() };

    for (channel, operation) in [(Channel::Free, Operation::StartFree), (manual, Operation::StartManual)] {
        let error = provider.start_payment(&start_request(money(dec!(25), "EUR"), channel)).await.unwrap_err();
        assert_eq!(error, ProviderError::Unsupported { provider: stripe_name(), operation });
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn stripe_rejection_fails_the_payment() {
    let world = World::new().await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    world.fake.fail_next(400, "parameter_invalid", "Invalid currency");

    let error = world
        .service
        .start_public_payment(issued.token.expose(), &stripe_name(), PaymentOptions::default())
        .await
        .unwrap_err();

    let BillingError::StartFailed { payment, source } = error else { panic!("expected StartFailed, got {error:?}") };
    assert!(matches!(source, ProviderError::Api { status: 400, .. }), "{source:?}");
    assert!(source.to_string().contains("Invalid currency"), "{source}");
    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Failed);
}

#[tokio::test]
async fn timed_out_checkout_leaves_the_payment_unknown() {
    let world = World::with_config(|config| config.with_request_timeout(Duration::from_millis(200))).await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;

    let (payment, source) = timed_out_start(&world, issued.token.expose()).await;

    assert!(source.is_ambiguous(), "{source:?}");
    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Unknown);
}

#[tokio::test]
async fn timed_out_checkout_expires_after_session_lifetime() {
    let world = World::with_config(|config| config.with_request_timeout(Duration::from_millis(200))).await;
    let issued = world.issue_invoice(money(dec!(25), "EUR"), 100).await;
    let (payment, _) = timed_out_start(&world, issued.token.expose()).await;

    // Within Stripe's 24-hour session lifetime a session may still be open.
    world.clock.advance(time::Duration::hours(24));
    world.service.reconcile_stale(time::Duration::minutes(15), 10).await.unwrap();
    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Unknown);

    world.clock.advance(time::Duration::hours(1));
    world.service.reconcile_stale(time::Duration::minutes(15), 10).await.unwrap();

    assert_eq!(world.payment(payment).await.status(), PaymentStatus::Expired);
    let entry = world.service.public_entry(issued.token.expose()).await.unwrap();
    assert_eq!(entry.status, billing_domain::service::PublicStatus::Payable);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 0);
}

/// Starts a Checkout payment while the fake Stripe responds too slowly for
/// the client's timeout, and returns the payment and the provider error.
async fn timed_out_start(world: &World, token: &str) -> (PaymentId, ProviderError) {
    world.fake.set_delay(Duration::from_secs(2));
    let error = world.service.start_public_payment(token, &stripe_name(), PaymentOptions::default()).await.unwrap_err();
    world.fake.set_delay(Duration::ZERO);

    let BillingError::StartFailed { payment, source } = error else { panic!("expected StartFailed, got {error:?}") };
    (payment, source)
}
