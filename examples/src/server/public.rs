//! The public side, without sign-in: the payment entry page, starting a
//! payment from it, and the page the provider sends the customer back to.
//!
//! Everything shown here comes from [`billing_domain::service::PublicEntry`]
//! and [`billing_domain::service::ReturnStatus`], whose types hold amount,
//! currency and statuses only, so no row, name, project, content, receipt or
//! note can reach these pages or their JSON variant. The return page asks
//! the provider for the payment's state (webhooks can lag) and shows "paid"
//! only when the store confirms it; it never grants anything itself.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use billing_domain::service::{PaymentOptions, PaymentStart, PublicEntry, PublicStatus, ReturnStatus};
use billing_domain::{BillingError, InvoiceStatus, Payment, ProviderName, ProviderReference};
use serde::Deserialize;

use super::error::{AppError, Format};
use super::html::{escape, language_switch, link, message, Markup, Page};
use super::i18n::Lang;
use super::state::AppState;

/// `GET /`: what this server is, and where to go.
pub async fn home(lang: Lang) -> Page {
    let texts = lang.texts();
    let mut body = language_switch(lang);
    body.push(message(texts.home_title, texts.home_text));
    body.push(Markup::raw("\n<p>"));
    body.push(link(&format!("/signin?lang={}", lang.code()), texts.sign_in));
    body.push(Markup::raw("</p>"));
    Page::new(lang, texts.home_title, body)
}

/// Any unknown path.
pub async fn not_found(lang: Lang) -> Page {
    let texts = lang.texts();
    Page::new(lang, texts.not_found_title, message(texts.not_found_title, texts.page_not_found))
        .status(StatusCode::NOT_FOUND)
}

/// `GET /pay/{token}`: amount, currency, status, the sign-in hint and Pay
/// buttons; JSON when the caller accepts `application/json`.
pub async fn entry(
    State(state): State<AppState>,
    Path(token): Path<String>,
    lang: Lang,
    headers: HeaderMap,
) -> Response {
    let as_json = accepts_json(&headers);
    match state.service().public_entry(&token).await {
        Ok(entry) if as_json => Json(entry_json(&state, &entry)).into_response(),
        Ok(entry) => entry_page(&state, lang, &token, &entry).into_response(),
        Err(error) => link_failure(lang, as_json, &error),
    }
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    provider: String,
}

/// `POST /pay/{token}`: starts a payment with the chosen provider and sends
/// the browser on (303).
pub async fn start(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    lang: Lang,
    Form(form): Form<StartForm>,
) -> Response {
    let texts = lang.texts();
    let entry = match state.service().public_entry(&token).await {
        Ok(entry) => entry,
        Err(error) => return link_failure(lang, false, &error),
    };
    let provider = match ProviderName::new(form.provider) {
        Ok(provider) if offered(&state, &entry).contains(&&provider) => provider,
        _ => {
            let error =
                AppError::bad_request(Format::Html(lang), "that payment method is not offered for this invoice");
            return error.into_response();
        }
    };
    let options = PaymentOptions { customer_ip: Some(peer.ip().to_string()), locale: Some(lang.code().to_owned()) };

    match state.service().start_public_payment(&token, &provider, options).await {
        Ok(PaymentStart::Redirect { payment_id, url }) => {
            tracing::info!(%payment_id, %provider, "payment started; redirecting to the provider");
            Redirect::to(&url).into_response()
        }
        Ok(PaymentStart::Completed { payment, .. } | PaymentStart::AlreadyRecorded { payment }) => {
            tracing::info!(payment_id = %payment.id, invoice_id = %payment.invoice_id, %provider, "payment completed at once");
            Redirect::to(&return_path(&payment, lang)).into_response()
        }
        Ok(PaymentStart::TerminalStarted { payment_id, .. }) => {
            tracing::error!(%payment_id, %provider, "a public payment started on a card reader");
            AppError::from_billing(
                Format::Html(lang),
                &BillingError::InvalidInput { reason: "a public payment cannot use a card reader".into() },
            )
            .into_response()
        }
        Err(BillingError::PaymentInProgress { payment, .. }) => {
            tracing::info!(payment_id = %payment, "payment rejected: another attempt is in flight");
            short_page(lang, StatusCode::CONFLICT, texts.pay_title, texts.in_progress)
        }
        Err(BillingError::StartFailed { payment, source }) => {
            tracing::warn!(payment_id = %payment, %provider, error = %source, "provider could not start the payment");
            short_page(lang, StatusCode::BAD_GATEWAY, texts.pay_title, texts.start_failed)
        }
        Err(error) => link_failure(lang, false, &error),
    }
}

/// `GET|POST /return/{provider}`: "confirming" until the store confirms the
/// payment, then "paid". A POSTed return (Maksekeskus) is answered with a
/// redirect to the GET form, so the page can refresh itself.
pub async fn returned(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    lang: Lang,
    body: axum::body::Bytes,
) -> Response {
    let texts = lang.texts();
    let mut fields: Vec<(String, String)> = Vec::new();
    if let Some(query) = &query {
        fields.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    if method == Method::POST {
        fields.extend(form_urlencoded::parse(&body).into_owned());
    }
    let Some(reference) = return_reference(&fields) else {
        return short_page(lang, StatusCode::NOT_FOUND, texts.return_title, texts.payment_not_found);
    };
    let (Ok(provider), Ok(reference)) = (ProviderName::new(provider), ProviderReference::new(reference)) else {
        return short_page(lang, StatusCode::NOT_FOUND, texts.return_title, texts.payment_not_found);
    };
    if method == Method::POST {
        let target = format!("/return/{provider}?reference={}&lang={}", encode(reference.as_str()), lang.code());
        return Redirect::to(&target).into_response();
    }

    match state.service().confirm_return_by_reference(&provider, &reference).await {
        Ok(status) => {
            tracing::info!(
                payment_id = %status.payment_id,
                %provider,
                confirmed = status.confirmed,
                payment_status = %status.payment_status,
                "return page checked the payment"
            );
            return_page(lang, &status).into_response()
        }
        Err(BillingError::NotFound { .. } | BillingError::UnknownProvider { .. }) => {
            short_page(lang, StatusCode::NOT_FOUND, texts.return_title, texts.payment_not_found)
        }
        Err(error) => AppError::from_billing(Format::Html(lang), &error).into_response(),
    }
}

fn entry_page(state: &AppState, lang: Lang, token: &str, entry: &PublicEntry) -> Page {
    let texts = lang.texts();
    let mut body = language_switch(lang);
    body.push_fmt(format_args!(
        "<h1>{}</h1>\n<p class=\"amount\" id=\"amount\">{}</p>\n<p id=\"status\">{}: {}</p>\n",
        escape(texts.pay_title),
        escape(&lang.money(&entry.amount)),
        escape(texts.status),
        escape(match entry.status {
            PublicStatus::Payable => texts.payable,
            PublicStatus::Processing => texts.processing,
        }),
    ));
    if entry.status == PublicStatus::Payable {
        body.push(pay_buttons(state, lang, token, entry));
    }
    body.push_fmt(format_args!(
        "<p class=\"hint\" id=\"sign-in-hint\">{} {}</p>\n",
        escape(texts.sign_in_hint),
        link(&format!("/signin?lang={}", lang.code()), texts.sign_in).as_str()
    ));
    Page::new(lang, texts.pay_title, body)
}

fn pay_buttons(state: &AppState, lang: Lang, token: &str, entry: &PublicEntry) -> Markup {
    let texts = lang.texts();
    let offers = state.offers();
    let mut buttons = Markup::default();
    if entry.amount.is_zero() {
        if let Some(free) = &offers.free {
            buttons.push_fmt(format_args!(
                "<button name=\"provider\" value=\"{}\">{}</button>\n",
                escape(free.as_str()),
                escape(texts.complete_free)
            ));
        }
    } else {
        for offer in &offers.hosted {
            buttons.push_fmt(format_args!(
                "<button name=\"provider\" value=\"{}\">{} {}</button>\n",
                escape(offer.provider.as_str()),
                escape(texts.pay_with),
                escape(&offer.label)
            ));
        }
    }
    if buttons.as_str().is_empty() {
        return Markup::raw(format!("<p class=\"notice\">{}</p>\n", escape(texts.no_provider)));
    }
    let mut form = Markup::raw(format!(
        "<form method=\"post\" action=\"/pay/{}?lang={}\" id=\"pay\">\n",
        escape(token),
        lang.code()
    ));
    form.push(buttons);
    form.push(Markup::raw("</form>\n"));
    form
}

/// The providers the public page may start for this entry: the free
/// provider for a zero total, the hosted pages otherwise.
fn offered<'a>(state: &'a AppState, entry: &PublicEntry) -> Vec<&'a ProviderName> {
    let offers = state.offers();
    if entry.amount.is_zero() {
        offers.free.iter().collect()
    } else {
        offers.hosted.iter().map(|offer| &offer.provider).collect()
    }
}

fn entry_json(state: &AppState, entry: &PublicEntry) -> serde_json::Value {
    let providers: Vec<&str> = if entry.status == PublicStatus::Payable {
        offered(state, entry).into_iter().map(ProviderName::as_str).collect()
    } else {
        Vec::new()
    };
    serde_json::json!({
        "amount": entry.amount.amount().to_string(),
        "currency": entry.amount.currency().code(),
        "status": entry.status,
        "sign_in_hint": entry.sign_in_hint,
        "providers": providers,
    })
}

fn return_page(lang: Lang, status: &ReturnStatus) -> Page {
    let texts = lang.texts();
    let mut body = language_switch(lang);
    if status.confirmed {
        body.push(message(texts.return_title, texts.paid));
        body.push_fmt(format_args!(
            "\n<p>{}</p>",
            link(&format!("/workspace?lang={}", lang.code()), texts.open_workspace).as_str()
        ));
        return Page::new(lang, texts.return_title, body);
    }
    if status.payment_status.has_failed() {
        body.push(message(texts.return_title, texts.not_completed));
        return Page::new(lang, texts.return_title, body);
    }
    body.push(message(texts.return_title, texts.confirming));
    body.push_fmt(format_args!("\n<p class=\"hint\">{}</p>", escape(texts.refreshes)));
    Page::new(lang, texts.return_title, body).refresh_after(2)
}

/// The page or JSON for a public link that cannot be paid: gone, unknown or failing.
fn link_failure(lang: Lang, as_json: bool, error: &BillingError) -> Response {
    let texts = lang.texts();
    let (status, title, text) = match error {
        BillingError::PublicLinkGone { status: InvoiceStatus::Void } => {
            (StatusCode::GONE, texts.gone_title, texts.gone_void)
        }
        BillingError::PublicLinkGone { .. } => (StatusCode::GONE, texts.gone_title, texts.gone_paid),
        BillingError::PublicLinkNotFound => (StatusCode::NOT_FOUND, texts.not_found_title, texts.not_found_link),
        other => {
            let format = if as_json { Format::Json } else { Format::Html(lang) };
            return AppError::from_billing(format, other).into_response();
        }
    };
    if as_json {
        let state = if status == StatusCode::GONE { "gone" } else { "not_found" };
        return (status, Json(serde_json::json!({ "status": state }))).into_response();
    }
    let mut body = language_switch(lang);
    body.push(message(title, text));
    if status == StatusCode::GONE {
        body.push_fmt(format_args!(
            "\n<p id=\"gone-sign-in\">{} {}</p>",
            escape(texts.gone_sign_in),
            link(&format!("/signin?lang={}", lang.code()), texts.sign_in).as_str()
        ));
    }
    Page::new(lang, title, body).status(status).into_response()
}

fn short_page(lang: Lang, status: StatusCode, title: &str, text: &str) -> Response {
    let mut body = language_switch(lang);
    body.push(message(title, text));
    Page::new(lang, title, body).status(status).into_response()
}

fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

fn return_path(payment: &Payment, lang: Lang) -> String {
    match &payment.reference {
        Some(reference) => {
            format!("/return/{}?reference={}&lang={}", payment.provider, encode(reference.as_str()), lang.code())
        }
        None => format!("/workspace?lang={}", lang.code()),
    }
}

/// The provider reference a return carries: `reference`, or the
/// `transaction` of a Maksekeskus `payment_return` message (a string) or
/// `token_return` message (an object with `id`). It is only a lookup key;
/// the state comes from the provider's fetch.
fn return_reference(fields: &[(String, String)]) -> Option<String> {
    if let Some((_, reference)) = fields.iter().find(|(key, _)| key == "reference") {
        return Some(reference.clone());
    }
    let (_, json) = fields.iter().find(|(key, _)| key == "json")?;
    let message: serde_json::Value = serde_json::from_str(json).ok()?;
    match message.get("transaction")? {
        serde_json::Value::String(id) => Some(id.clone()),
        serde_json::Value::Object(object) => object.get("id")?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn return_reference_reads_the_plain_parameter() {
        assert_eq!(return_reference(&fields(&[("reference", "cs_test_1")])), Some("cs_test_1".into()));
    }

    #[test]
    fn return_reference_reads_maksekeskus_messages() {
        let payment_return = fields(&[("json", r#"{"transaction":"t-1","status":"COMPLETED"}"#), ("mac", "AB")]);
        let token_return = fields(&[("json", r#"{"transaction":{"id":"t-2","status":"COMPLETED"}}"#)]);

        assert_eq!(return_reference(&payment_return), Some("t-1".into()));
        assert_eq!(return_reference(&token_return), Some("t-2".into()));
        assert_eq!(return_reference(&fields(&[("json", "not json")])), None);
        assert_eq!(return_reference(&[]), None);
    }
}
