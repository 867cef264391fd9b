//! The public side and webhooks over HTTP: the payment page and its JSON
//! variant, starting a payment, the return page, the gone and not-found
//! answers, and webhook verification, replay and storage for staff.
//!
//! Each test starts the reference server in-process on 127.0.0.1 with the
//! demo seed and a scripted provider whose webhooks are really signed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use billing_domain::{EventKind, InvoiceStatus, PaymentStatus};
use reqwest::header::ACCEPT_LANGUAGE;
use reqwest::StatusCode;
use support::{assert_no_private_text, json_accept, location, Harness, SCRIPTED};

#[tokio::test]
async fn public_page_shows_amount_and_hint() {
    let harness = Harness::start().await;

    let response = harness.get(&harness.public_path()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers().get("cache-control").unwrap().to_str().unwrap().to_owned();
    let html = response.text().await.unwrap();

    assert_eq!(cache, "no-store");
    assert!(html.contains("EUR 49.90"), "{html}");
    assert!(html.contains("Awaiting payment"), "{html}");
    assert!(html.contains("Sign in to the workspace to see the details."), "{html}");
    assert!(html.contains("Pay with card (scripted)"), "{html}");
    assert!(!html.contains("value=\"manual\""), "manual payments are staff-only:\n{html}");
    assert_no_private_text("public page", &html);
}

#[tokio::test]
async fn public_page_speaks_estonian_by_header_or_query() {
    let harness = Harness::start().await;

    let by_header =
        harness.get(&harness.public_path()).header(ACCEPT_LANGUAGE, "et-EE,et;q=0.9,en;q=0.5").send().await.unwrap();
    let by_header = by_header.text().await.unwrap();
    let by_query = harness.get(&format!("{}?lang=et", harness.public_path())).send().await.unwrap();
    let by_query = by_query.text().await.unwrap();
    let english_wins =
        harness.get(&format!("{}?lang=en", harness.public_path())).header(ACCEPT_LANGUAGE, "et").send().await.unwrap();
    let english_wins = english_wins.text().await.unwrap();

    for html in [&by_header, &by_query] {
        assert!(html.contains("<html lang=\"et\">"), "{html}");
        assert!(html.contains("49,90 EUR"), "{html}");
        assert!(html.contains("Üksikasjade nägemiseks logi sisse töökeskkonda."), "{html}");
        assert!(html.contains("Ootab tasumist"), "{html}");
        assert_no_private_text("Estonian public page", html);
    }
    assert!(english_wins.contains("Awaiting payment"), "{english_wins}");
}

#[tokio::test]
async fn public_json_has_no_private_fields() {
    let harness = Harness::start().await;
    let (name, value) = json_accept();

    let response = harness.get(&harness.public_path()).header(name, value).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();

    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["amount", "currency", "providers", "sign_in_hint", "status"]);
    assert_eq!(json["amount"], "49.90");
    assert_eq!(json["currency"], "EUR");
    assert_eq!(json["status"], "payable");
    assert_eq!(json["providers"], serde_json::json!([SCRIPTED]));
    assert_no_private_text("public JSON", &text);
}

#[tokio::test]
async fn unknown_token_answers_404_in_html_and_json() {
    let harness = Harness::start().await;
    let unknown = format!("/pay/{}", "ab".repeat(32));
    let (name, value) = json_accept();

    let page = harness.get(&unknown).send().await.unwrap();
    let json = harness.get(&unknown).header(name, value).send().await.unwrap();
    let start = harness.post(&unknown).form(&[("provider", SCRIPTED)]).send().await.unwrap();

    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("This payment link does not exist."));
    assert_eq!(json.status(), StatusCode::NOT_FOUND);
    assert_eq!(json.json::<serde_json::Value>().await.unwrap(), serde_json::json!({ "status": "not_found" }));
    assert_eq!(start.status(), StatusCode::NOT_FOUND);
    assert_eq!(harness.scripted.starts(), 0);
}

#[tokio::test]
async fn pay_button_redirects_then_blocks_repeat() {
    let harness = Harness::start().await;

    let payment_id = harness.start_scripted_payment().await;
    let page = harness.get(&harness.public_path()).send().await.unwrap().text().await.unwrap();
    let again = harness.post(&harness.public_path()).form(&[("provider", SCRIPTED)]).send().await.unwrap();

    assert_eq!(harness.payment(payment_id).await.status(), PaymentStatus::Pending);
    assert!(page.contains("A payment is being processed."), "{page}");
    assert!(!page.contains("<button"), "no new payment while one is in flight:\n{page}");
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert!(again.text().await.unwrap().contains("already in progress"));
    assert_eq!(harness.scripted.starts(), 1);
}

#[tokio::test]
async fn pay_with_a_provider_not_offered_is_refused() {
    let harness = Harness::start().await;

    for provider in ["manual", "free", "nonexistent"] {
        let response = harness.post(&harness.public_path()).form(&[("provider", provider)]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{provider}");
    }
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Open);
}

#[tokio::test]
async fn paid_invoice_link_answers_410_gone() {
    let harness = Harness::start().await;
    harness.pay_demo_invoice().await;
    let (name, value) = json_accept();

    let page = harness.get(&harness.public_path()).send().await.unwrap();
    let estonian = harness.get(&format!("{}?lang=et", harness.public_path())).send().await.unwrap();
    let json = harness.get(&harness.public_path()).header(name, value).send().await.unwrap();
    let start = harness.post(&harness.public_path()).form(&[("provider", SCRIPTED)]).send().await.unwrap();

    assert_eq!(page.status(), StatusCode::GONE);
    let html = page.text().await.unwrap();
    assert!(html.contains("This payment link is no longer active"), "{html}");
    assert!(html.contains("The invoice has been paid."), "{html}");
    assert!(html.contains("href=\"/signin?lang=en\""), "{html}");
    assert_no_private_text("gone page", &html);
    assert_eq!(estonian.status(), StatusCode::GONE);
    assert!(estonian.text().await.unwrap().contains("Arve on tasutud."));
    assert_eq!(json.status(), StatusCode::GONE);
    assert_eq!(json.json::<serde_json::Value>().await.unwrap(), serde_json::json!({ "status": "gone" }));
    assert_eq!(start.status(), StatusCode::GONE);
    assert_eq!(harness.scripted.starts(), 1);
}

#[tokio::test]
async fn voided_invoice_link_answers_410_gone() {
    let harness = Harness::start().await;
    let void = harness
        .post_as(harness.staff(), &format!("/api/staff/invoices/{}/void", harness.seed.invoice_id))
        .send()
        .await
        .unwrap();

    let page = harness.get(&harness.public_path()).send().await.unwrap();

    assert_eq!(void.status(), StatusCode::OK);
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.unwrap().contains("The invoice has been withdrawn."));
}

#[tokio::test]
async fn return_page_confirms_by_fetching_and_shows_paid_only_when_stored() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let reference = Harness::scripted_reference(payment_id);
    let return_path = format!("/return/{SCRIPTED}?reference={reference}");
    let payment = harness.payment(payment_id).await;
    let pending = harness.scripted.event("fetch:pending", &payment, EventKind::Pending, None).unwrap();
    harness.scripted.script_state(&reference, pending);

    let confirming = harness.get(&return_path).send().await.unwrap();
    assert_eq!(confirming.status(), StatusCode::OK);
    let confirming = confirming.text().await.unwrap();
    assert!(confirming.contains("Payment received, confirming"), "{confirming}");
    assert!(confirming.contains("http-equiv=\"refresh\""), "{confirming}");
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Open);

    let succeeded =
        harness.scripted.event("fetch:succeeded", &payment, EventKind::Succeeded, Some(payment.amount)).unwrap();
    harness.scripted.script_state(&reference, succeeded);
    let paid = harness.get(&format!("{return_path}&lang=et")).send().await.unwrap().text().await.unwrap();

    assert!(paid.contains("Makstud. Aitäh!"), "{paid}");
    assert!(!paid.contains("http-equiv=\"refresh\""), "{paid}");
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Paid);
    assert_no_private_text("return page", &paid);
}

#[tokio::test]
async fn return_page_with_unknown_reference_answers_404() {
    let harness = Harness::start().await;

    let unknown = harness.get(&format!("/return/{SCRIPTED}?reference=ref-nothing")).send().await.unwrap();
    let missing = harness.get(&format!("/return/{SCRIPTED}")).send().await.unwrap();

    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn posted_return_redirects_to_the_refreshable_page() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let message = format!(r#"{{"transaction":"ref-{payment_id}","status":"COMPLETED"}}"#);

    let response = harness
        .post(&format!("/return/{SCRIPTED}"))
        .form(&[("json", message.as_str()), ("mac", "00")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/return/{SCRIPTED}?reference=ref-{payment_id}&lang=en"));
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Open, "a return never marks anything paid");
}

#[tokio::test]
async fn signed_webhook_marks_paid_and_grants_credits_once_across_replays() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let (headers, body) = harness.webhook("evt_1", payment_id, EventKind::Succeeded).await;

    let first = harness.deliver(&headers, &body).await;
    let replay = harness.deliver(&headers, &body).await;

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.json::<serde_json::Value>().await.unwrap()["outcomes"], serde_json::json!(["applied"]));
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.json::<serde_json::Value>().await.unwrap()["outcomes"], serde_json::json!(["duplicate"]));
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Paid);
    assert_eq!(harness.app.service().balance(harness.seed.tenant_id).await.unwrap().balance, 500);
}

#[tokio::test]
async fn forged_webhook_answers_400_and_changes_nothing() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let (headers, body) = harness.webhook("evt_forged", payment_id, EventKind::Succeeded).await;
    let mut tampered = body.clone();
    let position = tampered.iter().position(|byte| *byte == b'9').unwrap();
    tampered[position] = b'8';
    let mut unsigned = headers.clone();
    unsigned.remove(billing_domain::testing::SIGNATURE_HEADER);

    let forged = harness.deliver(&headers, &tampered).await;
    let without_signature = harness.deliver(&unsigned, &body).await;

    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(without_signature.status(), StatusCode::BAD_REQUEST);
    assert_eq!(harness.payment(payment_id).await.status(), PaymentStatus::Pending);
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Open);
    assert_eq!(harness.app.service().balance(harness.seed.tenant_id).await.unwrap().balance, 0);
}

#[tokio::test]
async fn webhook_that_cannot_apply_is_stored_for_staff_with_200() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let refund = EventKind::Refunded { total_refunded: harness.payment(payment_id).await.amount };
    let (headers, body) = harness.webhook("evt_refund_early", payment_id, refund).await;

    let response = harness.deliver(&headers, &body).await;
    let queue = harness.get_as(harness.staff(), "/api/staff/reconciliation").send().await.unwrap();
    let queue: serde_json::Value = queue.json().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["outcomes"], serde_json::json!(["parked"]));
    let unresolved = queue["unresolved"].as_array().unwrap();
    assert!(
        unresolved.iter().any(|entry| entry["event"]["event_id"] == "evt_refund_early"),
        "the parked event waits for staff: {queue}"
    );
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Open);
}

#[tokio::test]
async fn webhook_answers_5xx_when_the_event_cannot_be_stored() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let (headers, body) = harness.webhook("evt_store_down", payment_id, EventKind::Succeeded).await;

    harness.store.set_down(true);
    let while_down = harness.deliver(&headers, &body).await;
    harness.store.set_down(false);
    let redelivered = harness.deliver(&headers, &body).await;

    assert_eq!(while_down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(redelivered.status(), StatusCode::OK);
    assert_eq!(redelivered.json::<serde_json::Value>().await.unwrap()["outcomes"], serde_json::json!(["applied"]));
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Paid);
}

#[tokio::test]
async fn webhook_for_unknown_provider_answers_404() {
    let harness = Harness::start().await;

    let response = harness.post("/webhooks/nobody").body("{}").send().await.unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_path_answers_404_page() {
    let harness = Harness::start().await;

    let response = harness.get("/no/such/page?lang=et").send().await.unwrap();

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Sellel aadressil lehte ei ole."));
}

/// Collects formatted log lines in memory.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLog {
    type Writer = CapturedLog;

    fn make_writer(&'a self) -> CapturedLog {
        self.clone()
    }
}

/// The only test in this binary that installs a subscriber. It is global,
/// because a thread-local one misses events whose callsites other test
/// threads registered first; other tests' lines in the buffer do no harm.
#[tokio::test]
async fn request_log_names_routes_and_ids_but_no_secret() {
    let captured = CapturedLog::default();
    let subscriber = tracing_subscriber::fmt().with_writer(captured.clone()).with_ansi(false).finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let harness = Harness::start().await;

    harness.get(&harness.public_path()).send().await.unwrap();
    let payment_id = harness.start_scripted_payment().await;
    let (headers, body) = harness.webhook("evt_logged", payment_id, EventKind::Succeeded).await;
    harness.deliver(&headers, &body).await;
    let mut forged = body.clone();
    forged.push(b' ');
    harness.deliver(&headers, &forged).await;
    harness.post("/signin").form(&[("token", harness.customer())]).send().await.unwrap();
    harness.get_as(harness.customer(), "/workspace").send().await.unwrap();
    harness.get(&format!("/return/{SCRIPTED}?reference=ref-{payment_id}")).send().await.unwrap();

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let public_token = harness.public_path().trim_start_matches("/pay/").to_owned();
    let signature = headers.get(billing_domain::testing::SIGNATURE_HEADER).unwrap().to_str().unwrap().to_owned();

    assert!(log.contains("route=\"/pay/{token}\""), "{log}");
    assert!(log.contains("route=\"/webhooks/{provider}\""), "{log}");
    assert!(log.contains(&format!("payment_id={payment_id}")), "{log}");
    assert!(log.contains("workspace server listening"), "{log}");
    assert!(!log.contains(&public_token), "the public link token reached the log:\n{log}");
    assert!(!log.contains(harness.customer()), "a session token reached the log:\n{log}");
    assert!(!log.contains(&signature), "a webhook signature reached the log:\n{log}");
    assert!(!log.contains("\"kind\""), "a webhook payload reached the log:\n{log}");
    assert!(!log.contains(support::SCRIPTED_SECRET), "{log}");
    harness.server.stop().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("workspace server stopped"), "{log}");
}

/// Starts the binary on a free port with `database_url`, and returns it with
/// its start-up banner.
async fn start_binary(database_url: Option<&str>) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_workspace-server"));
    command.args(["--port", "0"]).env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let deadline = std::time::Duration::from_secs(60);
    while let Some(line) = tokio::time::timeout(deadline, lines.next_line()).await.unwrap().unwrap() {
        let done = line.starts_with("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    // Keep reading, so the server never writes into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, banner.join("\n"))
}

/// Pays the demo invoice printed in `banner` through `provider`'s stand-in
/// page, as a browser would, and checks the public link is gone afterwards.
async fn pay_through_stand_in(banner: &str, provider: &str) {
    let public_url = banner.lines().map(str::trim).find(|line| line.contains("/pay/")).unwrap().to_owned();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let public = client.get(&public_url).send().await.unwrap();
    let started = client.post(&public_url).form(&[("provider", provider)]).send().await.unwrap();
    let checkout_url = location(&started);
    let checkout = client.get(&checkout_url).send().await.unwrap().text().await.unwrap();
    let paid = client.post(format!("{checkout_url}/pay")).send().await.unwrap();
    let returned = client.get(location(&paid)).send().await.unwrap().text().await.unwrap();
    let gone = client.get(&public_url).send().await.unwrap();

    assert_eq!(public.status(), StatusCode::OK);
    assert!(public.text().await.unwrap().contains("EUR 49.90"));
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    assert!(checkout.contains("Local stand-in for"), "{checkout}");
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert!(returned.contains("Paid. Thank you!"), "{returned}");
    assert_eq!(gone.status(), StatusCode::GONE);
}

/// Runs the binary as the README tells a new user to, on a free port, and
/// pays the demo invoice through the Maksekeskus stand-in.
#[tokio::test]
async fn server_binary_pays_through_stand_in() {
    let (mut child, banner) = start_binary(None).await;
    let staff_token =
        banner.lines().find(|line| line.contains("Sam (staff)")).unwrap().split_whitespace().last().unwrap();
    let public_url = banner.lines().map(str::trim).find(|line| line.contains("/pay/")).unwrap().to_owned();
    let base = public_url.split("/pay/").next().unwrap().to_owned();

    let staff = reqwest::Client::new().get(format!("{base}/staff")).bearer_auth(staff_token).send().await.unwrap();
    pay_through_stand_in(&banner, "maksekeskus").await;

    assert!(banner.contains("Demo invoice 2026-0012"), "{banner}");
    assert!(banner.contains("Casey (customer)"), "{banner}");
    assert!(banner.contains("(in-memory store)"), "{banner}");
    assert!(banner.contains("Stripe: LOCAL STAND-IN"), "{banner}");
    assert!(banner.contains("Maksekeskus: LOCAL STAND-IN"), "{banner}");
    assert_eq!(staff.status(), StatusCode::OK);
    child.kill().await.unwrap();
}

/// With `DATABASE_URL` the binary keeps everything in PostgreSQL. It gets a
/// database of its own on the server `bash scripts/test` provides, so its
/// rows never mix with other tests'.
#[tokio::test]
async fn server_binary_runs_on_postgres() {
    use sqlx::Connection;

    let server_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must name a PostgreSQL server; run `bash scripts/test`, which starts one");
    let name = format!("billing_server_test_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&server_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let mut database_url = url::Url::parse(&server_url).unwrap();
    database_url.set_path(&name);

    let (mut child, banner) = start_binary(Some(database_url.as_str())).await;
    pay_through_stand_in(&banner, "stripe").await;

    assert!(banner.contains("(PostgreSQL)"), "{banner}");
    child.kill().await.unwrap();
    child.wait().await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}

/// A canceled attempt on either stand-in page makes the invoice payable
/// again; a Terminal payment on the Stripe stand-in reader then pays it.
#[tokio::test]
async fn canceled_stand_in_payments_reopen_the_link() {
    use billing_examples::server::launch::{launch, STAND_IN_READER};
    use billing_examples::server::settings::Settings;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let launched = launch(&Settings::read(Vec::<String>::new(), |_| None).unwrap(), &listener).await.unwrap();
    let public_url = launched.seed.public_url.clone();
    let _server = launched.app.spawn(listener).unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    for (provider, label) in [("maksekeskus", "Maksekeskus stand-in"), ("stripe", "Stripe stand-in")] {
        let started = client.post(&public_url).form(&[("provider", provider)]).send().await.unwrap();
        let checkout_url = location(&started);
        let processing = client.get(&public_url).send().await.unwrap().text().await.unwrap();
        let canceled = client.post(format!("{checkout_url}/cancel")).send().await.unwrap();
        let returned = client.get(location(&canceled)).send().await.unwrap().text().await.unwrap();
        let reopened = client.get(&public_url).send().await.unwrap().text().await.unwrap();

        assert!(processing.contains("A payment is being processed."), "{provider}: {processing}");
        assert_eq!(canceled.status(), StatusCode::SEE_OTHER, "{provider}");
        assert!(returned.contains("The payment was not completed."), "{provider}: {returned}");
        assert!(reopened.contains("Awaiting payment"), "{provider}: {reopened}");
        assert!(reopened.contains(label), "{provider}: {reopened}");
    }
    let terminal = client
        .post(format!("{}/api/staff/invoices/{}/terminal", launched.app.base_url(), launched.seed.invoice_id))
        .bearer_auth(&launched.seed.staff.token)
        .json(&serde_json::json!({ "reader": STAND_IN_READER }))
        .send()
        .await
        .unwrap();
    let stripe_page = launched.stand_ins.pages.iter().find(|page| page.provider().as_str() == "stripe").unwrap().url();
    let reader = client.get(format!("{stripe_page}/readers/{STAND_IN_READER}")).send().await.unwrap();
    let presented = client.post(format!("{stripe_page}/readers/{STAND_IN_READER}/present")).send().await.unwrap();
    let gone = client.get(&public_url).send().await.unwrap();

    assert_eq!(terminal.status(), StatusCode::ACCEPTED);
    assert!(reader.text().await.unwrap().contains("Local stand-in for a Stripe card reader"));
    assert_eq!(presented.status(), StatusCode::SEE_OTHER);
    assert_eq!(gone.status(), StatusCode::GONE, "the card on the reader paid the invoice");
}

#[tokio::test]
async fn answers_forbid_caching_and_referrers() {
    let harness = Harness::start().await;
    let (name, value) = json_accept();

    let page = harness.get(&harness.public_path()).send().await.unwrap();
    let json = harness.get(&harness.public_path()).header(name, value).send().await.unwrap();
    let redirect = harness.post(&harness.public_path()).form(&[("provider", SCRIPTED)]).send().await.unwrap();
    let api = harness.get_as(harness.customer(), "/api/workspace/invoices").send().await.unwrap();

    for response in [&page, &json, &redirect, &api] {
        assert_eq!(response.headers()["cache-control"], "no-store", "{}", response.url());
        assert_eq!(response.headers()["referrer-policy"], "no-referrer", "{}", response.url());
    }
}
