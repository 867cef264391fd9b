//! Credits over HTTP: the balance and history page, module usage with an
//! idempotency key, and staff adjustments.
//!
//! A module calls `POST /api/usage` with an `Idempotency-Key` header; a retry
//! with the same key and request returns the first receipt instead of
//! charging again, and the same key with another request is refused (422).
//! Customers see the history without the reasons staff wrote for their
//! adjustments; staff see the reasons.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use billing_domain::ledger::{ConsumptionRequest, EntryKind, LedgerEntry};
use billing_domain::{IdempotencyKey, Transition};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::auth::{Member, Staff};
use super::error::{AppError, Format};
use super::html::{escape, Markup, Page};
use super::i18n::Lang;
use super::staff_pages::staff_nav;
use super::state::AppState;
use super::workspace::workspace_nav;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspace/credits", get(credits_page))
        .route("/api/credits", get(credits_json))
        .route("/api/usage", post(consume))
        .route("/api/staff/credits/adjustments", post(adjust_json))
        .route("/staff/credits/adjust", post(adjust_form))
}

/// One line of the credit history as a caller may see it.
#[derive(Debug, Clone, Serialize)]
pub struct CreditLine {
    pub at: String,
    pub amount: i64,
    pub kind: &'static str,
    /// The module, the invoice id, or (for staff only) the adjustment's reason.
    pub detail: Option<String>,
}

fn credit_line(entry: &LedgerEntry, for_staff: bool) -> CreditLine {
    let (kind, detail) = match &entry.kind {
        EntryKind::Grant { invoice_id, .. } => ("grant", Some(invoice_id.to_string())),
        EntryKind::Consumption { module, .. } => ("consumption", Some(module.clone())),
        EntryKind::Capture { module, .. } => ("capture", Some(module.clone())),
        EntryKind::Reversal { invoice_id, .. } => ("reversal", Some(invoice_id.to_string())),
        EntryKind::Adjustment { reason, .. } => ("adjustment", for_staff.then(|| reason.clone())),
    };
    CreditLine { at: timestamp(entry.created_at), amount: entry.amount, kind, detail }
}

fn timestamp(at: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    at.format(format).unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// `GET /workspace/credits`.
async fn credits_page(State(state): State<AppState>, member: Member, lang: Lang) -> Result<Page, AppError> {
    let texts = lang.texts();
    let format = Format::Html(lang);
    let service = state.service();
    let tenant = member.tenant_id();
    let balance = service.balance(tenant).await.map_err(|error| AppError::from_billing(format, &error))?;
    let history = service.history(tenant).await.map_err(|error| AppError::from_billing(format, &error))?;
    let for_staff = matches!(member, Member::Staff(_));

    let mut body = if for_staff { staff_nav() } else { workspace_nav(lang) };
    body.push_fmt(format_args!(
        "<h1>{}</h1>\n<p id=\"balance\">{}: {} &middot; {}: {} &middot; {}: {}</p>\n",
        escape(texts.credits),
        escape(texts.balance),
        balance.balance,
        escape(texts.held),
        balance.held,
        escape(texts.available),
        balance.available,
    ));
    body.push_fmt(format_args!("<h2>{}</h2>\n<table id=\"history\">\n", escape(texts.history)));
    for entry in history.iter().rev() {
        let line = credit_line(entry, for_staff);
        let label = match line.kind {
            "grant" => texts.entry_grant,
            "consumption" => texts.entry_consumption,
            "capture" => texts.entry_capture,
            "reversal" => texts.entry_reversal,
            _ => texts.entry_adjustment,
        };
        body.push_fmt(format_args!(
            "<tr><td>{}</td><td>{:+}</td><td>{} {}</td></tr>\n",
            escape(&line.at),
            line.amount,
            escape(label),
            escape(line.detail.as_deref().unwrap_or_default()),
        ));
    }
    body.push(Markup::raw("</table>\n"));
    Ok(Page::new(lang, texts.credits, body))
}

/// `GET /api/credits`: balance, holds and history.
async fn credits_json(State(state): State<AppState>, member: Member) -> Result<Response, AppError> {
    let service = state.service();
    let tenant = member.tenant_id();
    let balance = service.balance(tenant).await.map_err(|error| AppError::from_billing(Format::Json, &error))?;
    let history = service.history(tenant).await.map_err(|error| AppError::from_billing(Format::Json, &error))?;
    let for_staff = matches!(member, Member::Staff(_));
    let lines: Vec<CreditLine> = history.iter().map(|entry| credit_line(entry, for_staff)).collect();
    Ok(Json(serde_json::json!({ "balance": balance, "history": lines })).into_response())
}

#[derive(Debug, Deserialize)]
pub struct UsageRequest {
    module: String,
    amount: u64,
}

/// `POST /api/usage`: a module consumes credits of the caller's tenant.
async fn consume(
    State(state): State<AppState>,
    member: Member,
    headers: HeaderMap,
    Json(usage): Json<UsageRequest>,
) -> Result<Response, AppError> {
    let key = headers.get("idempotency-key").and_then(|value| value.to_str().ok()).ok_or_else(|| {
        AppError::new(
            Format::Json,
            StatusCode::BAD_REQUEST,
            "an Idempotency-Key header is required; send a new unique key per usage and the same key on retries",
        )
    })?;
    let idempotency_key =
        IdempotencyKey::new(key).map_err(|error| AppError::bad_request(Format::Json, &error.to_string()))?;
    let request = ConsumptionRequest {
        tenant_id: member.tenant_id(),
        module: usage.module,
        amount: usage.amount,
        idempotency_key,
    };
    let receipt = state
        .service()
        .consume_credits(&request)
        .await
        .map_err(|error| AppError::from_billing(Format::Json, &error))?;
    let replayed = receipt.transition == Transition::AlreadyApplied;
    tracing::info!(user_id = %member.user_id(), entry_id = %receipt.entry_id, replayed, "module usage recorded");
    Ok(Json(serde_json::json!({
        "entry_id": receipt.entry_id,
        "amount": receipt.amount,
        "balance_after": receipt.balance_after,
        "replayed": replayed,
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub struct Adjustment {
    amount: i64,
    reason: String,
}

/// `POST /api/staff/credits/adjustments`.
async fn adjust_json(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Json(adjustment): Json<Adjustment>,
) -> Result<Response, AppError> {
    let entry = state
        .service()
        .adjust_credits(&staff, adjustment.amount, &adjustment.reason)
        .await
        .map_err(|error| AppError::from_billing(Format::Json, &error))?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// `POST /staff/credits/adjust`: the dashboard's form.
async fn adjust_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Form(adjustment): Form<Adjustment>,
) -> Result<Response, AppError> {
    state
        .service()
        .adjust_credits(&staff, adjustment.amount, &adjustment.reason)
        .await
        .map_err(|error| AppError::from_billing(Format::Html(Lang::En), &error))?;
    Ok(Redirect::to("/staff").into_response())
}
