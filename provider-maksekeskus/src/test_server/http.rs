//! The fake's HTTP side: routes, Basic auth, request recording, and the
//! validation the real API applies to create-transaction and refund bodies.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rust_decimal::Decimal;
use serde_json::Value;
use time::Date;

use super::json::{self, FieldProblem};
use super::{FakeRefund, FakeTransaction, RecordedRequest, Shared};
use crate::amount::parse_decimal;
use crate::status::{RefundStatus, TransactionStatus};

const HAL_JSON: &str = "application/hal+json;charset=UTF-8";
const PLAIN_JSON: &str = "application/json";

/// Page size when a list request names none, as in a recorded API response.
const PER_PAGE_DEFAULT: usize = 30;

/// Largest page the fake serves. The real limit is not documented.
const PER_PAGE_MAX: usize = 100;

/// Longest `transaction.reference` the API accepts.
const REFERENCE_CHARS_MAX: usize = 20;

type Shop = State<Arc<Shared>>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/transactions", get(list_transactions).post(create_transaction))
        .route("/v1/transactions/{id}", get(get_transaction))
        .route("/v1/transactions/{id}/refunds", axum::routing::post(create_refund))
        .route("/v1/refunds/{id}", get(get_refund))
        .route("/pay.html", get(payment_page))
        .fallback(unknown_endpoint)
        .with_state(shared)
}

/// A failed request: its status and the `{code, message, errors}` body.
struct Problem {
    status: StatusCode,
    code: u32,
    message: String,
    errors: Vec<FieldProblem>,
}

impl Problem {
    fn new(status: StatusCode, message: impl Into<String>) -> Problem {
        Problem { status, code: u32::from(status.as_u16()), message: message.into(), errors: Vec::new() }
    }

    fn invalid(parameter: &'static str, kind: &'static str, expected: &'static str) -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            code: 400,
            message: "Validation failed".into(),
            errors: vec![FieldProblem { kind, parameter, expected }],
        }
    }

    fn into_response(self) -> Response {
        respond(self.status, PLAIN_JSON, json::error_body(self.code, &self.message, &self.errors), None)
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: String, location: Option<String>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(location) = location.and_then(|text| HeaderValue::from_str(&text).ok()) {
        headers.insert(LOCATION, location);
    }
    (status, headers, body).into_response()
}

fn serialized(status: StatusCode, content_type: &'static str, body: Result<String, serde_json::Error>) -> Response {
    match body {
        Ok(body) => respond(status, content_type, body, None),
        Err(error) => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Records the request, then checks its credentials.
fn admit(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), Problem> {
    let header = |name: HeaderName| headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let authorization = header(AUTHORIZATION);
    shared.state().requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        authorization: authorization.clone(),
        content_type: header(CONTENT_TYPE),
        body: String::from_utf8_lossy(body).into_owned(),
    });

    let credentials = format!("{}:{}", shared.shop_id, shared.secret_key.expose());
    let expected = format!("Basic {}", STANDARD.encode(credentials));
    if authorization.as_deref() != Some(expected.as_str()) {
        return Err(Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    Ok(())
}

/// Parses a POST body, which must be declared as JSON.
fn json_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Problem> {
    let declared = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with(PLAIN_JSON));
    if !declared {
        return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "Content-Type must be application/json"));
    }
    serde_json::from_slice(body).map_err(|error| Problem::new(StatusCode::BAD_REQUEST, error.to_string()))
}

async fn create_transaction(
    State(shared): Shop,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match create_transaction_inner(&shared, &method, &uri, &headers, &body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn create_transaction_inner(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Problem> {
    admit(shared, method, uri, headers, body)?;
    let request = json_body(headers, body)?;
    let mut transaction = validate_transaction(&request)?;

    let (body, delay) = {
        let mut state = shared.state();
        transaction.id = state.next_id(0x8000);
        transaction.created_at = state.now;
        state.transactions.push(transaction.clone());
        (json::transaction(&transaction, &shared.base_url, state.redirect_entry), state.create_delay)
    };
    // The transaction exists before the response leaves, so a client that
    // gives up waiting has created it all the same.
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let body = body.map_err(|error| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    let location = format!("{}/v1/transactions/{}", shared.base_url, transaction.id);
    Ok(respond(StatusCode::CREATED, HAL_JSON, body, Some(location)))
}

/// Checks a create-transaction body against the published request schema.
fn validate_transaction(request: &Value) -> Result<FakeTransaction, Problem> {
    let fields = request.get("transaction").ok_or_else(|| Problem::invalid("transaction", "required", "object"))?;
    let customer = request.get("customer").ok_or_else(|| Problem::invalid("customer", "required", "object"))?;

    let amount = match fields.get("amount") {
        Some(Value::String(text)) => parse_request_amount(text)
            .ok_or_else(|| Problem::invalid("transaction.amount", "pattern", "^[0-9]+([.][0-9]+)?$"))?,
        Some(_) => return Err(Problem::invalid("transaction.amount", "type", "string")),
        None => return Err(Problem::invalid("transaction.amount", "required", "string")),
    };
    let currency = match fields.get("currency").and_then(Value::as_str) {
        Some(code) if code.len() == 3 && code.chars().all(|c| c.is_ascii_alphabetic()) => code.to_owned(),
        _ => return Err(Problem::invalid("transaction.currency", "pattern", "3 letters")),
    };
    let reference = optional_text(fields, "reference", "transaction.reference")?;
    if reference.as_ref().is_some_and(|text| text.chars().count() > REFERENCE_CHARS_MAX) {
        return Err(Problem::invalid("transaction.reference", "maxLength", "20"));
    }
    let merchant_data = optional_text(fields, "merchant_data", "transaction.merchant_data")?;
    let transaction_url = fields.get("transaction_url").cloned();
    if let Some(urls) = &transaction_url {
        validate_transaction_urls(urls)?;
    }

    let customer_ip = match customer.get("ip").and_then(Value::as_str) {
        Some(ip) if ip.parse::<IpAddr>().is_ok() => ip.to_owned(),
        Some(_) => return Err(Problem::invalid("customer.ip", "format", "ip address")),
        None => return Err(Problem::invalid("customer.ip", "required", "string")),
    };
    let locale = optional_text(customer, "locale", "customer.locale")?;
    if locale.as_ref().is_some_and(|text| text.len() != 2) {
        return Err(Problem::invalid("customer.locale", "pattern", "2 letters"));
    }

    let mut transaction = FakeTransaction::new("", amount, merchant_data.as_deref(), time::OffsetDateTime::UNIX_EPOCH);
    transaction.currency = currency;
    transaction.reference = reference;
    transaction.customer_ip = customer_ip;
    transaction.locale = locale;
    transaction.transaction_url = transaction_url;
    Ok(transaction)
}

/// Checks for all three URLs, each `{url, method}` with GET or POST, as the API requires.
fn validate_transaction_urls(urls: &Value) -> Result<(), Problem> {
    for (name, parameter) in [
        ("return_url", "transaction.transaction_url.return_url"),
        ("cancel_url", "transaction.transaction_url.cancel_url"),
        ("notification_url", "transaction.transaction_url.notification_url"),
    ] {
        let Some(entry) = urls.get(name) else {
            return Err(Problem::invalid(parameter, "required", "object {url, method}"));
        };
        let has_url = entry.get("url").and_then(Value::as_str).is_some_and(|url| url::Url::parse(url).is_ok());
        let has_method = matches!(entry.get("method").and_then(Value::as_str), Some("GET" | "POST"));
        if !(has_url && has_method) {
            return Err(Problem::invalid(parameter, "object", "{url, method: GET|POST}"));
        }
    }
    Ok(())
}

fn optional_text(object: &Value, field: &str, parameter: &'static str) -> Result<Option<String>, Problem> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Problem::invalid(parameter, "type", "string")),
    }
}

/// Parses a request amount: digits, optionally a dot and more digits, as a string.
fn parse_request_amount(text: &str) -> Option<Decimal> {
    let plain = !text.starts_with('-') && !text.contains(['e', 'E']);
    if !plain {
        return None;
    }
    parse_decimal(text).ok()
}

async fn get_transaction(
    State(shared): Shop,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(problem) = admit(&shared, &method, &uri, &headers, &[]) {
        return problem.into_response();
    }
    let state = shared.state();
    let found = state.transactions.iter().find(|transaction| transaction.id == id);
    match found {
        Some(transaction) => {
            serialized(StatusCode::OK, HAL_JSON, json::transaction(transaction, &shared.base_url, state.redirect_entry))
        }
        None => Problem::new(StatusCode::NOT_FOUND, format!("Transaction {id} not found")).into_response(),
    }
}

/// Lists transactions newest first, filtered by `since` (a date) and
/// `status` (a comma list), `page` from 1.
async fn list_transactions(State(shared): Shop, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if let Err(problem) = admit(&shared, &method, &uri, &headers, &[]) {
        return problem.into_response();
    }
    let query: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let parameter = |name: &str| query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());

    let since = match parameter("since").map(parse_date).transpose() {
        Ok(since) => since,
        Err(problem) => return problem.into_response(),
    };
    let statuses: Option<Vec<&str>> = parameter("status").map(|list| list.split(',').collect());
    let page = parameter("page").and_then(|text| text.parse::<usize>().ok()).unwrap_or(1).max(1);
    let per_page = parameter("per_page")
        .and_then(|text| text.parse::<usize>().ok())
        .unwrap_or(PER_PAGE_DEFAULT)
        .clamp(1, PER_PAGE_MAX);

    let state = shared.state();
    let matching: Vec<&FakeTransaction> = state
        .transactions
        .iter()
        .rev()
        .filter(|transaction| since.is_none_or(|since| transaction.created_at.date() >= since))
        .filter(|transaction| statuses.as_ref().is_none_or(|statuses| statuses.contains(&transaction.status.as_str())))
        .collect();
    let total = matching.len();
    let page_items: Vec<&FakeTransaction> =
        matching.into_iter().skip((page - 1).saturating_mul(per_page)).take(per_page).collect();
    let body = match json::transactions(&page_items, &shared.base_url, state.redirect_entry) {
        Ok(body) => body,
        Err(error) => return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    };
    drop(state);

    let mut response = respond(StatusCode::OK, PLAIN_JSON, body, None);
    response.headers_mut().insert("x-total-count", HeaderValue::from(total));
    let last = total.div_ceil(per_page).max(1);
    let link = format!(
        "<{base}/v1/transactions?page=1&per_page={per_page}>; rel=\"first\", \
         <{base}/v1/transactions?page={last}&per_page={per_page}>; rel=\"last\"",
        base = shared.base_url
    );
    if let Ok(link) = HeaderValue::from_str(&link) {
        response.headers_mut().insert("link", link);
    }
    response
}

fn parse_date(text: &str) -> Result<Date, Problem> {
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| Problem::invalid("since", "format", "YYYY-MM-DD"))
}

async fn create_refund(
    State(shared): Shop,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match create_refund_inner(&shared, &id, &method, &uri, &headers, &body) {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

fn create_refund_inner(
    shared: &Shared,
    transaction_id: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, Problem> {
    admit(shared, method, uri, headers, body)?;
    let request = json_body(headers, body)?;
    let amount = match request.get("amount") {
        Some(Value::String(text)) => {
            parse_request_amount(text).ok_or_else(|| Problem::invalid("amount", "pattern", "^[0-9]+([.][0-9]+)?$"))?
        }
        _ => return Err(Problem::invalid("amount", "required", "string")),
    };
    let comment = match request.get("comment").and_then(Value::as_str) {
        Some(comment) if !comment.trim().is_empty() => comment.to_owned(),
        _ => return Err(Problem::invalid("comment", "required", "non-empty string")),
    };

    let mut state = shared.state();
    let now = state.now;
    let reserved: Decimal = state
        .refunds
        .iter()
        .filter(|refund| refund.transaction_id == transaction_id)
        .filter(|refund| matches!(refund.status, RefundStatus::Created | RefundStatus::Sent))
        .map(|refund| refund.amount)
        .sum();
    let outcome = state.refund_outcome.clone();
    let refund_id = state.next_id(0x9000);
    let Ok(transaction) = state.transaction_mut(transaction_id) else {
        return Err(Problem::new(StatusCode::NOT_FOUND, format!("Transaction {transaction_id} not found")));
    };
    if !matches!(transaction.status, TransactionStatus::Completed | TransactionStatus::PartRefunded) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            format!("Transaction in status {} cannot be refunded", transaction.status),
        ));
    }
    let refundable = transaction.amount - transaction.refunded_amount - reserved;
    if amount <= Decimal::ZERO || amount > refundable {
        return Err(Problem::invalid("amount", "range", "above zero and at most the amount not yet refunded"));
    }
    if outcome == RefundStatus::Settled {
        transaction.apply_refund(amount);
    }
    let transaction = transaction.clone();

    let refund = FakeRefund {
        id: refund_id,
        transaction_id: transaction_id.to_owned(),
        amount,
        comment,
        status: outcome,
        created_at: now,
    };
    state.refunds.push(refund.clone());
    let body = json::refund(&refund, Some(&transaction))
        .map_err(|error| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()))?;
    Ok(respond(StatusCode::CREATED, HAL_JSON, body, Some(format!("{}/v1/refunds/{}", shared.base_url, refund.id))))
}

async fn get_refund(
    State(shared): Shop,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(problem) = admit(&shared, &method, &uri, &headers, &[]) {
        return problem.into_response();
    }
    let state = shared.state();
    let Some(refund) = state.refunds.iter().find(|refund| refund.id == id) else {
        return Problem::new(StatusCode::NOT_FOUND, format!("Refund {id} not found")).into_response();
    };
    let transaction = state.transactions.iter().find(|transaction| transaction.id == refund.transaction_id);
    serialized(StatusCode::OK, HAL_JSON, json::refund(refund, transaction))
}

/// Serves a placeholder for the hosted payment page the redirect URL points at.
async fn payment_page(uri: Uri) -> Response {
    let transaction = form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "trx")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let body = format!(
        "<!doctype html><title>Fake Maksekeskus</title><p>Fake payment page for transaction {}.</p>",
        html_escape(&transaction)
    );
    (StatusCode::OK, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn html_escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

async fn unknown_endpoint(State(shared): Shop, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(problem) = admit(&shared, &method, &uri, &headers, &body) {
        return problem.into_response();
    }
    Problem::new(StatusCode::NOT_FOUND, format!("No endpoint {method} {}", uri.path())).into_response()
}
