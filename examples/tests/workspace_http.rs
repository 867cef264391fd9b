//! The signed-in side over HTTP: sign-in, the customer workspace, purchased
//! content, credits and module usage, the staff pages and the staff API,
//! with every route's 401 and 403 answers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use billing_domain::{EventKind, InvoiceStatus, PaymentStatus};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::json;
use support::{location, Harness, READER, SCRIPTED};

/// Every signed-in route, as (method, path template, body) with `{invoice}`,
/// `{payment}` and `{content}` filled in per test.
fn member_routes(harness: &Harness, payment: &str) -> Vec<(&'static str, String)> {
    let invoice = harness.seed.invoice_id;
    let content = harness.seed.content_id;
    vec![
        ("GET", "/workspace".into()),
        ("GET", format!("/workspace/invoices/{invoice}")),
        ("GET", "/workspace/projects".into()),
        ("GET", "/workspace/credits".into()),
        ("GET", format!("/workspace/content/{content}")),
        ("GET", "/api/workspace/invoices".into()),
        ("GET", format!("/api/workspace/invoices/{invoice}")),
        ("GET", "/api/workspace/projects".into()),
        ("GET", "/api/credits".into()),
        ("POST", "/api/usage".into()),
        ("GET", "/staff".into()),
        ("GET", format!("/staff/invoices/{invoice}")),
        ("POST", format!("/staff/invoices/{invoice}/terminal")),
        ("POST", format!("/staff/invoices/{invoice}/manual-payment")),
        ("POST", format!("/staff/invoices/{invoice}/notes")),
        ("POST", format!("/staff/payments/{payment}/reconcile")),
        ("POST", format!("/staff/payments/{payment}/force")),
        ("POST", "/staff/events/retry".into()),
        ("POST", "/staff/credits/adjust".into()),
        ("POST", "/api/staff/invoices".into()),
        ("GET", format!("/api/staff/invoices/{invoice}")),
        ("POST", format!("/api/staff/invoices/{invoice}/issue")),
        ("POST", format!("/api/staff/invoices/{invoice}/void")),
        ("POST", format!("/api/staff/invoices/{invoice}/notes")),
        ("POST", format!("/api/staff/invoices/{invoice}/receipts")),
        ("POST", format!("/api/staff/invoices/{invoice}/terminal")),
        ("POST", format!("/api/staff/invoices/{invoice}/manual-payments")),
        ("GET", "/api/staff/reconciliation".into()),
        ("POST", "/api/staff/events/retry".into()),
        ("POST", format!("/api/staff/payments/{payment}/reconcile")),
        ("POST", format!("/api/staff/payments/{payment}/force")),
        ("POST", "/api/staff/credits/adjustments".into()),
    ]
}

fn request(harness: &Harness, method: &str, path: &str) -> reqwest::RequestBuilder {
    match method {
        "GET" => harness.get(path),
        _ => harness.post(path),
    }
}

#[tokio::test]
async fn signed_in_routes_reject_missing_token() {
    let harness = Harness::start().await;
    let payment = harness.start_scripted_payment().await.to_string();
    let forged =
        harness.customer().replace(&harness.seed.customer.user_id.to_string(), &harness.seed.staff.user_id.to_string());

    for (method, path) in member_routes(&harness, &payment) {
        let anonymous = request(&harness, method, &path).send().await.unwrap();
        let garbage = request(&harness, method, &path).bearer_auth("not-a-token").send().await.unwrap();
        let forged = request(&harness, method, &path).bearer_auth(&forged).send().await.unwrap();

        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body = anonymous.text().await.unwrap();
        if path.starts_with("/api/") {
            assert!(body.starts_with("{\"error\""), "{path}: {body}");
        } else {
            assert!(body.contains("href=\"/signin"), "{path}: {body}");
        }
    }
}

#[tokio::test]
async fn staff_routes_answer_403_to_customers() {
    let harness = Harness::start().await;
    let payment = harness.start_scripted_payment().await.to_string();

    for (method, path) in member_routes(&harness, &payment) {
        if !(path.starts_with("/staff") || path.starts_with("/api/staff")) {
            continue;
        }
        let response = request(&harness, method, &path).bearer_auth(harness.customer()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
}

#[tokio::test]
async fn customer_pages_reject_wrong_user() {
    let harness = Harness::start().await;
    let invoice = harness.seed.invoice_id;
    let paths = [format!("/workspace/invoices/{invoice}"), format!("/api/workspace/invoices/{invoice}")];

    for path in &paths {
        let staff = harness.get_as(harness.staff(), path).send().await.unwrap();
        let other = harness.get_as(harness.other_customer(), path).send().await.unwrap();
        assert_eq!(staff.status(), StatusCode::FORBIDDEN, "staff on {path}");
        assert_eq!(other.status(), StatusCode::FORBIDDEN, "other company on {path}");
        let body = other.text().await.unwrap();
        assert!(!body.contains("Design sprint"), "{path} leaks to another company: {body}");
    }
}

#[tokio::test]
async fn customer_sees_invoice_details_but_no_internal_note() {
    let harness = Harness::start().await;
    let path = format!("/workspace/invoices/{}", harness.seed.invoice_id);

    let html = harness.get_as(harness.customer(), &path).send().await.unwrap().text().await.unwrap();
    let json = harness.get_as(harness.customer(), &format!("/api{path}")).send().await.unwrap().text().await.unwrap();
    let estonian =
        harness.get_as(harness.customer(), &format!("{path}?lang=et")).send().await.unwrap().text().await.unwrap();

    for expected in ["Invoice 2026-0012", "Customer Ltd", "Design sprint, 2 days", "EUR 49.90", "Website redesign"] {
        assert!(html.contains(expected), "missing {expected:?}:\n{html}");
    }
    assert!(html.contains("href=\"https://projects.example/website\""), "{html}");
    assert!(html.contains("Brand guidelines (available once the invoice is paid)"), "{html}");
    assert!(!html.contains("content.example"), "content location before payment:\n{html}");
    assert!(!html.contains("split the next invoice"), "{html}");
    assert!(json.contains("Design sprint, 2 days"), "{json}");
    assert!(json.contains("Customer Ltd"), "{json}");
    assert!(!json.contains("split the next invoice"), "{json}");
    assert!(!json.contains("content.example"), "{json}");
    assert!(estonian.contains("Arve 2026-0012"), "{estonian}");
    assert!(estonian.contains("Kokku: 49,90 EUR"), "{estonian}");
}

#[tokio::test]
async fn customer_lists_own_invoices_and_own_company_projects() {
    let harness = Harness::start().await;

    let home = harness.get_as(harness.customer(), "/workspace").send().await.unwrap().text().await.unwrap();
    let projects =
        harness.get_as(harness.customer(), "/workspace/projects").send().await.unwrap().text().await.unwrap();
    let other_home = harness.get_as(harness.other_customer(), "/workspace").send().await.unwrap().text().await.unwrap();
    let other_projects =
        harness.get_as(harness.other_customer(), "/api/workspace/projects").send().await.unwrap().text().await.unwrap();

    assert!(home.contains("2026-0012"), "{home}");
    assert!(projects.contains("Website redesign"), "{projects}");
    assert!(!projects.contains("Intranet"), "{projects}");
    assert!(!other_home.contains("2026-0012"), "{other_home}");
    assert!(other_projects.contains("Intranet"), "{other_projects}");
    assert!(!other_projects.contains("Website redesign"), "{other_projects}");
}

#[tokio::test]
async fn content_opens_only_once_the_store_says_paid() {
    let harness = Harness::start().await;
    let path = format!("/workspace/content/{}", harness.seed.content_id);

    let before = harness.get_as(harness.customer(), &path).send().await.unwrap();
    harness.pay_demo_invoice().await;
    let after = harness.get_as(harness.customer(), &path).send().await.unwrap();
    let other = harness.get_as(harness.other_customer(), &path).send().await.unwrap();
    let page = harness
        .get_as(harness.customer(), &format!("/workspace/invoices/{}", harness.seed.invoice_id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(before.status(), StatusCode::FORBIDDEN);
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&after), "https://content.example/brand.pdf");
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(page.contains(&format!("href=\"{path}\"")), "{page}");
}

#[tokio::test]
async fn sign_in_sets_session_cookie() {
    let harness = Harness::start().await;

    let refused = harness.post("/signin").form(&[("token", "wrong")]).send().await.unwrap();
    let signed_in = harness.post("/signin?lang=et").form(&[("token", harness.customer())]).send().await.unwrap();
    let cookie = signed_in.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let workspace = harness.get("/workspace?lang=et").header(COOKIE, &session).send().await.unwrap();
    let signed_out = harness.post("/signout").header(COOKIE, &session).send().await.unwrap();

    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.text().await.unwrap().contains("That access token is not valid."));
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed_in), "/workspace?lang=et");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert_eq!(workspace.status(), StatusCode::OK);
    assert!(workspace.text().await.unwrap().contains("Sinu arved"));
    assert!(signed_out.headers().get(SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn cross_site_cookie_post_rejected() {
    let harness = Harness::start().await;
    let session = format!("billing_session={}", harness.staff());
    let adjust = [("amount", "1000"), ("reason", "forged from another site")];

    let cross_site = harness
        .post("/staff/credits/adjust")
        .header(COOKIE, &session)
        .header("sec-fetch-site", "cross-site")
        .form(&adjust)
        .send()
        .await
        .unwrap();
    let same_site = harness
        .post("/staff/credits/adjust")
        .header(COOKIE, &session)
        .header("sec-fetch-site", "same-origin")
        .form(&[("amount", "10"), ("reason", "goodwill")])
        .send()
        .await
        .unwrap();

    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(same_site.status(), StatusCode::SEE_OTHER);
    assert_eq!(harness.app.service().balance(harness.seed.tenant_id).await.unwrap().balance, 10);
}

#[tokio::test]
async fn staff_api_creates_and_issues_invoice() {
    let harness = Harness::start().await;
    let draft = json!({
        "company_id": harness.seed.company_id,
        "number": "2026-0100",
        "currency": "EUR",
        "rows": [{ "description": "Support hours", "quantity": "3", "unit_price": "15.50", "credits": 100 }],
    });

    let created = harness.post_as(harness.staff(), "/api/staff/invoices").json(&draft).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["status"], "draft");
    let issue_path = format!("/api/staff/invoices/{}/issue", created["invoice_id"].as_str().unwrap());
    let issued: serde_json::Value =
        harness.post_as(harness.staff(), &issue_path).send().await.unwrap().json().await.unwrap();
    let public_url = issued["public_url"].as_str().unwrap();
    let public = harness.client.get(public_url).send().await.unwrap().text().await.unwrap();
    let issued_twice = harness.post_as(harness.staff(), &issue_path).send().await.unwrap();

    assert_eq!(issued["status"], "open");
    assert!(public.contains("EUR 46.50"), "{public}");
    assert!(!public.contains("Support hours"), "{public}");
    assert_eq!(issued_twice.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn invoice_api_refuses_bad_input_with_422() {
    let harness = Harness::start().await;
    let company = harness.seed.company_id;
    let cases = [
        json!({ "company_id": company, "number": "x", "currency": "EUR",
                "rows": [{ "description": "a", "quantity": "1", "unit_price": "1.005" }] }),
        json!({ "company_id": company, "number": "x", "currency": "EURO",
                "rows": [{ "description": "a", "quantity": "1", "unit_price": "1.00" }] }),
        json!({ "company_id": company, "number": "x", "currency": "EUR",
                "rows": [{ "description": "a", "quantity": "one", "unit_price": "1.00" }] }),
        json!({ "company_id": company, "number": "", "currency": "EUR",
                "rows": [{ "description": "a", "quantity": "1", "unit_price": "1.00" }] }),
    ];

    for draft in cases {
        let response = harness.post_as(harness.staff(), "/api/staff/invoices").json(&draft).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{draft}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"].as_str().is_some_and(|error| !error.is_empty()), "{body}");
    }
    let other_company = json!({ "company_id": billing_domain::CompanyId::from_random_bytes([9; 16]), "number": "x",
        "currency": "EUR", "rows": [] });
    let response = harness.post_as(harness.staff(), "/api/staff/invoices").json(&other_company).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn staff_invoice_views_show_notes_payments_and_log() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let path = format!("/staff/invoices/{}", harness.seed.invoice_id);
    harness
        .post_as(harness.staff(), &format!("/api{path}/notes"))
        .json(&json!({ "text": "Called the <customer>" }))
        .send()
        .await
        .unwrap();

    let html = harness.get_as(harness.staff(), &path).send().await.unwrap().text().await.unwrap();
    let json: serde_json::Value =
        harness.get_as(harness.staff(), &format!("/api{path}")).send().await.unwrap().json().await.unwrap();

    assert!(html.contains("split the next invoice"), "{html}");
    assert!(html.contains("Called the &lt;customer&gt;"), "notes are escaped:\n{html}");
    assert!(html.contains(&payment_id.to_string()), "{html}");
    assert!(html.contains("Start Terminal payment"), "{html}");
    assert!(html.contains(READER), "{html}");
    assert!(html.contains("Record payment"), "{html}");
    assert!(html.contains("Force outcome"), "{html}");
    assert!(html.contains("invoice issued"), "the log is listed:\n{html}");
    assert_eq!(json["internal_notes"].as_array().unwrap().len(), 2);
    assert_eq!(json["payments"][0]["id"], payment_id.to_string());
}

#[tokio::test]
async fn terminal_starts_on_configured_reader() {
    let harness = Harness::start().await;
    let path = format!("/api/staff/invoices/{}/terminal", harness.seed.invoice_id);

    let unknown =
        harness.post_as(harness.staff(), &path).json(&json!({ "reader": "tmr_elsewhere" })).send().await.unwrap();
    let started = harness.post_as(harness.staff(), &path).json(&json!({ "reader": READER })).send().await.unwrap();

    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let started: serde_json::Value = started.json().await.unwrap();
    assert_eq!(started["reader"], READER);
    let payment = harness.payment(started["payment_id"].as_str().unwrap().parse().unwrap()).await;
    assert_eq!(payment.status(), PaymentStatus::Pending);
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Open, "only the provider's confirmation pays");
}

#[tokio::test]
async fn terminal_form_redirects_back_to_the_invoice() {
    let harness = Harness::start().await;
    let path = format!("/staff/invoices/{}/terminal", harness.seed.invoice_id);

    let response = harness.post_as(harness.staff(), &path).form(&[("reader", READER)]).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/staff/invoices/{}", harness.seed.invoice_id));
    assert_eq!(harness.scripted.starts(), 1);
}

#[tokio::test]
async fn manual_payment_is_recorded_once_per_reference() {
    let harness = Harness::start().await;
    let path = format!("/api/staff/invoices/{}/manual-payments", harness.seed.invoice_id);
    let transfer = json!({ "method": "bank_transfer", "reference": "RF18 5390 0754" });

    let first = harness.post_as(harness.staff(), &path).json(&transfer).send().await.unwrap();
    let again = harness.post_as(harness.staff(), &path).json(&transfer).send().await.unwrap();
    let empty = harness
        .post_as(harness.staff(), &path)
        .json(&json!({ "method": "cash", "reference": " " }))
        .send()
        .await
        .unwrap();

    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.json::<serde_json::Value>().await.unwrap()["payment_status"], "succeeded");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap()["already_recorded"], true);
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Paid);
    assert_eq!(harness.app.service().balance(harness.seed.tenant_id).await.unwrap().balance, 500);
}

#[tokio::test]
async fn reconciliation_lists_stale_payments_and_reconciles_by_fetch() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    harness.clock.advance(time::Duration::minutes(30));

    let queue: serde_json::Value =
        harness.get_as(harness.staff(), "/api/staff/reconciliation").send().await.unwrap().json().await.unwrap();
    let payment = harness.payment(payment_id).await;
    let succeeded = harness.scripted.event("fetch:ok", &payment, EventKind::Succeeded, Some(payment.amount)).unwrap();
    harness.scripted.script_state(&Harness::scripted_reference(payment_id), succeeded);
    let reconciled =
        harness.post_as(harness.staff(), &format!("/api/staff/payments/{payment_id}/reconcile")).send().await.unwrap();
    let dashboard = harness.get_as(harness.staff(), "/staff").send().await.unwrap().text().await.unwrap();

    assert_eq!(queue["stale"][0]["id"], payment_id.to_string());
    assert_eq!(reconciled.status(), StatusCode::OK);
    let reconciled: serde_json::Value = reconciled.json().await.unwrap();
    assert_eq!(reconciled["fetched"][0]["outcome"], "applied");
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Paid);
    assert!(dashboard.contains("Recent activity"), "{dashboard}");
    assert!(dashboard.contains("Nothing waits for staff."), "{dashboard}");
}

#[tokio::test]
async fn force_outcome_requires_reason() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let path = format!("/api/staff/payments/{payment_id}/force");

    let no_reason = harness
        .post_as(harness.staff(), &path)
        .json(&json!({ "outcome": "succeeded", "reason": "" }))
        .send()
        .await
        .unwrap();
    let forced = harness
        .post_as(harness.staff(), &path)
        .json(&json!({ "outcome": "succeeded", "reason": "provider dashboard shows it paid" }))
        .send()
        .await
        .unwrap();
    let staff_page = harness
        .get_as(harness.staff(), &format!("/staff/invoices/{}", harness.seed.invoice_id))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    assert_eq!(no_reason.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(forced.status(), StatusCode::OK);
    assert_eq!(forced.json::<serde_json::Value>().await.unwrap()["outcome"], "applied");
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Paid);
    assert!(staff_page.contains("provider dashboard shows it paid"), "{staff_page}");
}

#[tokio::test]
async fn retry_applies_parked_refund() {
    let harness = Harness::start().await;
    let payment_id = harness.start_scripted_payment().await;
    let amount = harness.payment(payment_id).await.amount;
    let (headers, body) =
        harness.webhook("evt_early_refund", payment_id, EventKind::Refunded { total_refunded: amount }).await;
    harness.deliver(&headers, &body).await;
    harness.pay_demo_invoice_with(payment_id).await;

    let retried = harness
        .post_as(harness.staff(), "/api/staff/events/retry")
        .json(&json!({ "provider": SCRIPTED, "event_id": "evt_early_refund" }))
        .send()
        .await
        .unwrap();
    let unknown = harness
        .post_as(harness.staff(), "/api/staff/events/retry")
        .json(&json!({ "provider": SCRIPTED, "event_id": "evt_never_seen" }))
        .send()
        .await
        .unwrap();

    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(retried.json::<serde_json::Value>().await.unwrap()["outcome"], "applied");
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Refunded);
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn module_usage_is_charged_once_per_idempotency_key() {
    let harness = Harness::start().await;
    harness
        .post_as(harness.staff(), "/api/staff/credits/adjustments")
        .json(&json!({ "amount": 300, "reason": "trial credits" }))
        .send()
        .await
        .unwrap();
    let usage = |key: Option<&str>, amount: u64| {
        let request =
            harness.post_as(harness.customer(), "/api/usage").json(&json!({ "module": "render", "amount": amount }));
        match key {
            Some(key) => request.header("Idempotency-Key", key),
            None => request,
        }
    };

    let first: serde_json::Value = usage(Some("job-1"), 120).send().await.unwrap().json().await.unwrap();
    let retry: serde_json::Value = usage(Some("job-1"), 120).send().await.unwrap().json().await.unwrap();
    let changed = usage(Some("job-1"), 121).send().await.unwrap();
    let without_key = usage(None, 1).send().await.unwrap();
    let too_much = usage(Some("job-2"), 1000).send().await.unwrap();
    let credits: serde_json::Value =
        harness.get_as(harness.customer(), "/api/credits").send().await.unwrap().json().await.unwrap();

    assert_eq!(first["balance_after"], 180);
    assert_eq!(first["replayed"], false);
    assert_eq!(retry["replayed"], true);
    assert_eq!(retry["entry_id"], first["entry_id"]);
    assert_eq!(changed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(without_key.status(), StatusCode::BAD_REQUEST);
    assert_eq!(too_much.status(), StatusCode::CONFLICT);
    assert_eq!(credits["balance"]["balance"], 180);
    assert_eq!(credits["history"][0]["kind"], "adjustment");
    assert_eq!(credits["history"][0]["detail"], serde_json::Value::Null, "customers do not see staff reasons");
}

#[tokio::test]
async fn credits_page_shows_balance_and_history() {
    let harness = Harness::start().await;
    harness.pay_demo_invoice().await;

    let customer = harness.get_as(harness.customer(), "/workspace/credits?lang=et").send().await.unwrap();
    let customer = customer.text().await.unwrap();

    assert!(customer.contains("Saldo: 500"), "{customer}");
    assert!(customer.contains("+500"), "{customer}");
    assert!(customer.contains("Ostetud arvega"), "{customer}");
}

#[tokio::test]
async fn staff_forms_act_and_redirect_back() {
    let harness = Harness::start().await;
    let invoice_page = format!("/staff/invoices/{}", harness.seed.invoice_id);
    let payment_id = harness.start_scripted_payment().await;
    let amount = harness.payment(payment_id).await.amount;
    let (headers, body) =
        harness.webhook("evt_form_refund", payment_id, EventKind::Refunded { total_refunded: amount }).await;
    harness.deliver(&headers, &body).await;

    let note = harness
        .post_as(harness.staff(), &format!("{invoice_page}/notes"))
        .form(&[("text", "Asked for a receipt")])
        .send()
        .await
        .unwrap();
    let reconcile =
        harness.post_as(harness.staff(), &format!("/staff/payments/{payment_id}/reconcile")).send().await.unwrap();
    let force = harness
        .post_as(harness.staff(), &format!("/staff/payments/{payment_id}/force"))
        .form(&[("outcome", "succeeded"), ("reason", "bank statement shows it")])
        .send()
        .await
        .unwrap();
    let retry = harness
        .post_as(harness.staff(), "/staff/events/retry")
        .form(&[("provider", SCRIPTED), ("event_id", "evt_form_refund")])
        .send()
        .await
        .unwrap();
    let manual = harness
        .post_as(harness.staff(), &format!("{invoice_page}/manual-payment"))
        .form(&[("method", "cash"), ("reference", "R-1")])
        .send()
        .await
        .unwrap();

    for (what, response) in [("note", &note), ("reconcile", &reconcile), ("force", &force)] {
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{what}");
        assert_eq!(location(response), invoice_page, "{what}");
    }
    assert_eq!(retry.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&retry), "/staff");
    assert_eq!(harness.invoice().await.status(), InvoiceStatus::Refunded, "the retried refund applied");
    assert_eq!(manual.status(), StatusCode::CONFLICT, "a refunded invoice takes no new payment");
    assert!(manual.text().await.unwrap().contains("cannot be paid"));
}
