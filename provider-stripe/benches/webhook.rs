//! Benchmark of webhook intake for one signed `checkout.session.completed`:
//! signature verification, envelope and object parsing, and normalisation
//! into a `ProviderEvent`. No HTTP and no store are involved.
//!
//! The event wraps the `testdata/stripe/checkout.session.json` fixture
//! (paid, with our three metadata ids), pretty-printed as Stripe sends it,
//! about 5 KB. Run with
//! `cargo bench -p provider-stripe --bench webhook -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use time::OffsetDateTime;

use billing_domain::{EventKind, InvoiceId, PaymentId, TenantId};
use provider_stripe::test_server::{event_envelope, signed_event, Fixture};
use provider_stripe::{Normalised, Secret, WebhookVerifier};

const SECRET: &str = "whsec_bench_secret";
const SIGNED_AT: i64 = 1_800_000_000;

fn completed_session_webhook(c: &mut Criterion) {
    let mut session = Fixture::CheckoutSession.load().unwrap();
    session["status"] = json!("complete");
    session["payment_status"] = json!("paid");
    session["amount_subtotal"] = json!(2500);
    session["amount_total"] = json!(2500);
    session["currency"] = json!("eur");
    session["metadata"] = json!({
        "tenant_id": TenantId::from_random_bytes([1; 16]).to_string(),
        "invoice_id": InvoiceId::from_random_bytes([2; 16]).to_string(),
        "payment_id": PaymentId::from_random_bytes([3; 16]).to_string(),
    });
    let envelope = event_envelope("evt_bench_1", "checkout.session.completed", SIGNED_AT, session);
    let request = signed_event(&envelope, SECRET, SIGNED_AT).unwrap();
    let verifier = WebhookVerifier::new(vec![Secret::new(SECRET)], Duration::from_secs(300));
    let now = OffsetDateTime::from_unix_timestamp(SIGNED_AT + 2).unwrap();

    // Measure only a path that really succeeds.
    let Normalised::Event(event) = verifier.verify(&request, now).unwrap().normalise().unwrap() else {
        panic!("a completed session needs no lookup");
    };
    assert_eq!(event.kind, EventKind::Succeeded);

    let name = format!("verify_parse_normalise/checkout.session.completed/{}B", request.body.len());
    c.bench_function(&name, |bencher| {
        bencher.iter(|| {
            let verified = verifier.verify(black_box(&request), now).unwrap();
            black_box(verified.normalise().unwrap())
        });
    });
}

criterion_group!(benches, completed_session_webhook);
criterion_main!(benches);
