//! Row references: Checkout shows one line item per invoice row, each
//! pointing at its kind's Price or Product, and still charges exactly the
//! invoice's amounts.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use billing_domain::service::NewInvoice;
use billing_domain::{
    Channel, ContentId, InvoiceRow, InvoiceStatus, PaymentProvider, PaymentStatus, ProjectId, ProviderError, RowKind,
    StartLine, StartRequest,
};
use provider_stripe::test_server::FakeStripe;
use provider_stripe::{RowReference, StripeConfig};

use crate::support::{config, fake, money, provider, start_request, World};

fn line(kind: RowKind, quantity: Decimal, unit: Decimal) -> StartLine {
    StartLine { kind, quantity, unit_price: money(unit, "EUR"), total: money(unit * quantity, "EUR") }
}

/// Builds a request whose amount is the sum of its lines, as the service sends it.
fn itemised_request(lines: Vec<StartLine>) -> StartRequest {
    let total = lines.iter().fold(Decimal::ZERO, |sum, line| sum + line.total.amount());
    let mut request = start_request(money(total, "EUR"), Channel::HostedPage);
    request.lines = lines;
    request
}

fn with_references(config: StripeConfig) -> StripeConfig {
    config
        .with_row_reference(RowKind::Credits, RowReference::Price("price_credits_pack".into()))
        .unwrap()
        .with_row_reference(RowKind::Content, RowReference::Product("prod_content".into()))
        .unwrap()
}

fn credits_price(fake: &FakeStripe, unit_amount: i64) {
    fake.add_price("price_credits_pack", "prod_credits", "eur", unit_amount);
}

#[tokio::test]
async fn references_itemise_checkout_with_exact_fields() {
    let fake = fake().await;
    credits_price(&fake, 1000);
    let provider = provider(with_references(config(&fake)));
    let request = itemised_request(vec![
        line(RowKind::Credits, dec!(3), dec!(10.00)),
        line(RowKind::Content, dec!(1), dec!(4.99)),
        line(RowKind::ProjectWork, dec!(2), dec!(60.00)),
        line(RowKind::Other, dec!(1), dec!(0)),
    ]);

    provider.start_payment(&request).await.unwrap();

    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one Price lookup, one session: {requests:?}");
    assert_eq!((requests[0].method.as_str(), requests[0].path.as_str()), ("GET", "/v1/prices/price_credits_pack"));
    assert_eq!(requests[0].header("authorization"), Some("Bearer sk_test_fake_key"));

    let sent = &requests[1];
    let items = [
        ("line_items[0][price]", "price_credits_pack"),
        ("line_items[0][quantity]", "3"),
        ("line_items[1][price_data][currency]", "eur"),
        ("line_items[1][price_data][unit_amount]", "499"),
        ("line_items[1][price_data][product]", "prod_content"),
        ("line_items[1][quantity]", "1"),
        ("line_items[2][price_data][currency]", "eur"),
        ("line_items[2][price_data][unit_amount]", "6000"),
        ("line_items[2][price_data][product_data][name]", "Invoice 2026-0012 (project work)"),
        ("line_items[2][quantity]", "2"),
    ];
    for (key, value) in items {
        assert_eq!(sent.form_value(key), Some(value), "form field {key}");
    }
    let sent_items: BTreeSet<&str> = sent.form_keys_with_prefix("line_items").into_iter().collect();
    let expected_items: BTreeSet<&str> = items.iter().map(|(key, _)| *key).collect();
    assert_eq!(sent_items, expected_items, "the zero row is left out and nothing else is sent");

    let session_id = fake.session_id_for_payment(request.payment_id).unwrap();
    let session = fake.session(&session_id).unwrap();
    assert_eq!(session["amount_total"], 3000 + 499 + 12000, "Stripe charges the invoice total");
}

#[tokio::test]
async fn price_with_another_unit_amount_is_not_charged() {
    let fake = fake().await;
    credits_price(&fake, 1000);
    let provider = provider(with_references(config(&fake)));
    let request = itemised_request(vec![line(RowKind::Credits, dec!(2), dec!(12.50))]);

    provider.start_payment(&request).await.unwrap();

    let sent = fake.requests().last().unwrap().clone();
    assert_eq!(sent.form_value("line_items[0][price]"), None);
    assert_eq!(sent.form_value("line_items[0][price_data][product]"), Some("prod_credits"));
    assert_eq!(sent.form_value("line_items[0][price_data][unit_amount]"), Some("1250"));
    assert_eq!(sent.form_value("line_items[0][quantity]"), Some("2"));
}

#[tokio::test]
async fn archived_price_is_not_charged() {
    let fake = fake().await;
    credits_price(&fake, 1000);
    fake.set_price_field("price_credits_pack", "active", serde_json::json!(false));
    let provider = provider(with_references(config(&fake)));
    let request = itemised_request(vec![line(RowKind::Credits, dec!(1), dec!(10))]);

    provider.start_payment(&request).await.unwrap();

    let sent = fake.requests().last().unwrap().clone();
    assert_eq!(sent.form_value("line_items[0][price]"), None);
    assert_eq!(sent.form_value("line_items[0][price_data][product]"), Some("prod_credits"));
}

#[tokio::test]
async fn missing_price_fails_the_start_and_names_it() {
    let fake = fake().await;
    let provider = provider(with_references(config(&fake)));
    let request = itemised_request(vec![line(RowKind::Credits, dec!(1), dec!(10))]);

    let error = provider.start_payment(&request).await.unwrap_err();

    assert!(matches!(error, ProviderError::Api { status: 404, .. }), "{error:?}");
    assert!(error.to_string().contains("price_credits_pack"), "{error}");
    assert!(!error.is_ambiguous());
    assert!(fake.requests().iter().all(|sent| sent.method == "GET"), "no session may be created");
}

#[tokio::test]
async fn discount_row_charges_the_total_as_one_line() {
    let fake = fake().await;
    let provider = provider(with_references(config(&fake)));
    let request =
        itemised_request(vec![line(RowKind::Content, dec!(1), dec!(20)), line(RowKind::Other, dec!(1), dec!(-5))]);

    provider.start_payment(&request).await.unwrap();

    let sent = &fake.requests()[0];
    assert_eq!(sent.form_value("line_items[0][price_data][unit_amount]"), Some("1500"));
    assert_eq!(sent.form_value("line_items[0][price_data][product_data][name]"), Some("Invoice 2026-0012"));
    assert_eq!(sent.form_keys_with_prefix("line_items[1]"), Vec::<&str>::new());
}

#[tokio::test]
async fn service_pays_itemised_session() {
    let world = World::with_config(with_references).await;
    credits_price(&world.fake, 1000);
    let project = world
        .service
        .add_project(&world.staff, world.company, "Website", "https://projects.example/website")
        .await
        .unwrap();
    let content =
        world.service.add_content(&world.staff, "Style guide", "https://files.example/style-guide.pdf").await.unwrap();
    let rows = vec![
        row("Credits pack", dec!(2), dec!(10), None, None, Some(200)),
        row("Style guide", dec!(1), dec!(4.99), None, Some(content.id), None),
        row("Design hours", dec!(1.5), dec!(60), Some(project.id), None, None),
    ];
    let new = NewInvoice {
        company_id: world.company,
        number: "2026-0012".into(),
        currency: rows[0].unit_price.currency(),
        rows,
    };
    let invoice = world.service.create_invoice(&world.staff, new).await.unwrap();
    let issued = world.service.issue_invoice(&world.staff, invoice.id).await.unwrap();

    let (payment_id, session_id) = world.start_checkout(issued.token.expose()).await;

    let sent = world.fake.requests().last().unwrap().clone();
    assert_eq!(sent.form_value("line_items[0][price]"), Some("price_credits_pack"));
    assert_eq!(sent.form_value("line_items[1][price_data][product]"), Some("prod_content"));
    // 1.5 hours is not a whole Stripe quantity: the row is charged as its total.
    assert_eq!(sent.form_value("line_items[2][price_data][unit_amount]"), Some("9000"));
    assert_eq!(sent.form_value("line_items[2][quantity]"), Some("1"));
    let descriptions = ["Credits pack", "Style guide", "Design hours"];
    assert!(sent.form.iter().all(|(_, value)| !descriptions.contains(&value.as_str())), "row text stays private");

    let paid = world.fake.pay_session(&session_id).unwrap();
    assert_eq!(paid["amount_total"], 2000 + 499 + 9000);
    world.deliver("evt_test_completed", "checkout.session.completed", paid).await.unwrap();

    assert_eq!(world.payment(payment_id).await.status(), PaymentStatus::Succeeded);
    let invoice = world.service.store().invoice(invoice.id).await.unwrap().unwrap();
    assert_eq!(invoice.status(), InvoiceStatus::Paid);
    assert_eq!(world.service.balance(world.tenant).await.unwrap().balance, 200);
}

fn row(
    description: &str,
    quantity: Decimal,
    unit: Decimal,
    project: Option<ProjectId>,
    content: Option<ContentId>,
    credits: Option<u64>,
) -> InvoiceRow {
    InvoiceRow { description: description.into(), quantity, unit_price: money(unit, "EUR"), project, content, credits }
}

/// A Price with `currency_options` lets Checkout present and charge another
/// currency from the customer's location unless the session names its own.
#[tokio::test]
async fn multi_currency_price_keeps_invoice_currency() {
    let fake = fake().await;
    credits_price(&fake, 1000);
    let options = serde_json::json!({ "gbp": { "unit_amount": 850 }, "eur": { "unit_amount": 1000 } });
    fake.set_price_field("price_credits_pack", "currency_options", options);
    let provider = provider(with_references(config(&fake)));
    let request = itemised_request(vec![line(RowKind::Credits, dec!(2), dec!(10))]);

    provider.start_payment(&request).await.unwrap();

    let sent = fake.requests().last().unwrap().clone();
    assert_eq!(sent.form_value("line_items[0][price]"), Some("price_credits_pack"));
    assert_eq!(sent.form_value("currency"), Some("eur"));
}
