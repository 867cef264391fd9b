//! The staff JSON API under `/api/staff/`: invoices, payments staff start or
//! record, and the reconciliation queue.
//!
//! Every route takes a [`Staff`], which exists only after the service
//! checked that the caller is staff of the token's tenant, and passes its
//! `StaffContext` to the service, which confines every lookup to that
//! tenant. Amounts and quantities travel as decimal strings, never as JSON
//! numbers, so no float ever touches money. The demo seed creates its
//! invoices through [`create_and_issue`], the same code this API runs.

use std::str::FromStr;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use billing_domain::service::{ForcedOutcome, IssuedInvoice, NewInvoice, PaymentStart};
use billing_domain::{
    BillingError, BillingService, CompanyId, ContentId, Currency, EventKey, Invoice, InvoiceRow, ManualMethod, Money,
    PaymentId, ProjectId, StaffContext,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::auth::Staff;
use super::error::{AppError, Format};
use super::state::AppState;
use super::workspace::parse_invoice_id;

/// How many queue entries the reconciliation views list at most.
pub const QUEUE_LIMIT: usize = 100;

/// Payments pending or unknown for longer than this are listed as stale by default.
pub const DEFAULT_STALE_MINUTES: i64 = 10;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/staff/invoices", post(create_invoice))
        .route("/api/staff/invoices/{invoice_id}", get(invoice))
        .route("/api/staff/invoices/{invoice_id}/issue", post(issue))
        .route("/api/staff/invoices/{invoice_id}/void", post(void))
        .route("/api/staff/invoices/{invoice_id}/notes", post(add_note))
        .route("/api/staff/invoices/{invoice_id}/receipts", post(attach_receipt))
        .route("/api/staff/invoices/{invoice_id}/terminal", post(start_terminal))
        .route("/api/staff/invoices/{invoice_id}/manual-payments", post(record_manual))
        .route("/api/staff/reconciliation", get(queue))
        .route("/api/staff/events/retry", post(retry_event))
        .route("/api/staff/payments/{payment_id}/reconcile", post(reconcile))
        .route("/api/staff/payments/{payment_id}/force", post(force))
}

/// A new invoice as the API receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceDraft {
    pub company_id: CompanyId,
    pub number: String,
    /// ISO 4217 code, such as `EUR`.
    pub currency: String,
    pub rows: Vec<RowDraft>,
}

/// One row of an [`InvoiceDraft`]; `quantity` and `unit_price` are decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowDraft {
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    #[serde(default)]
    pub project_id: Option<ProjectId>,
    #[serde(default)]
    pub content_id: Option<ContentId>,
    #[serde(default)]
    pub credits: Option<u64>,
}

impl InvoiceDraft {
    /// The service's input, with every amount checked against the currency.
    ///
    /// # Errors
    ///
    /// [`BillingError::InvalidInput`] for an unknown currency or a number that
    /// is not a decimal; [`BillingError::Money`] for more fraction digits than
    /// the currency has.
    pub fn into_new_invoice(self) -> Result<NewInvoice, BillingError> {
        let currency = Currency::from_code(&self.currency)
            .map_err(|error| BillingError::InvalidInput { reason: format!("currency {:?}: {error}", self.currency) })?;
        let mut rows = Vec::with_capacity(self.rows.len());
        for (index, row) in self.rows.into_iter().enumerate() {
            rows.push(InvoiceRow {
                quantity: decimal(index, "quantity", &row.quantity)?,
                unit_price: Money::new(decimal(index, "unit_price", &row.unit_price)?, currency)?,
                description: row.description,
                project: row.project_id,
                content: row.content_id,
                credits: row.credits,
            });
        }
        Ok(NewInvoice { company_id: self.company_id, number: self.number, currency, rows })
    }
}

fn decimal(index: usize, field: &str, text: &str) -> Result<Decimal, BillingError> {
    Decimal::from_str(text.trim()).map_err(|_| BillingError::InvalidInput {
        reason: format!("row {index}: {field} {text:?} is not a decimal number; write it as a string like \"12.50\""),
    })
}

/// Creates a draft from `draft` and issues it: the path the API and the demo seed share.
///
/// # Errors
///
/// As [`InvoiceDraft::into_new_invoice`], [`BillingService::create_invoice`]
/// and [`BillingService::issue_invoice`].
pub async fn create_and_issue(
    service: &BillingService,
    staff: &StaffContext,
    draft: InvoiceDraft,
) -> Result<IssuedInvoice, BillingError> {
    let invoice = service.create_invoice(staff, draft.into_new_invoice()?).await?;
    service.issue_invoice(staff, invoice.id).await
}

fn json_error(error: &BillingError) -> AppError {
    AppError::from_billing(Format::Json, error)
}

fn invoice_summary(state: &AppState, invoice: &Invoice) -> serde_json::Value {
    serde_json::json!({
        "invoice_id": invoice.id,
        "number": invoice.number,
        "status": invoice.status(),
        "total": invoice.total().ok(),
        "staff_url": format!("{}/staff/invoices/{}", state.base_url(), invoice.id),
    })
}

/// `POST /api/staff/invoices`: a draft.
async fn create_invoice(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Json(draft): Json<InvoiceDraft>,
) -> Result<Response, AppError> {
    let new = draft.into_new_invoice().map_err(|error| json_error(&error))?;
    let invoice = state.service().create_invoice(&staff, new).await.map_err(|error| json_error(&error))?;
    Ok((StatusCode::CREATED, Json(invoice_summary(&state, &invoice))).into_response())
}

/// `POST /api/staff/invoices/{invoice_id}/issue`: opens the invoice and
/// returns its public link, the only time the link is shown.
async fn issue(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let issued = state.service().issue_invoice(&staff, invoice_id).await.map_err(|error| json_error(&error))?;
    let mut body = invoice_summary(&state, &issued.invoice);
    body["public_url"] = serde_json::Value::String(state.public_link(issued.token.expose()));
    Ok(Json(body).into_response())
}

async fn invoice(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let view = state.service().staff_invoice(&staff, invoice_id).await.map_err(|error| json_error(&error))?;
    Ok(Json(view).into_response())
}

/// `POST /api/staff/invoices/{invoice_id}/void`: withdraws an unpaid invoice.
async fn void(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let invoice = state.service().void_invoice(&staff, invoice_id).await.map_err(|error| json_error(&error))?;
    Ok(Json(invoice_summary(&state, &invoice)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct NoteRequest {
    pub text: String,
}

async fn add_note(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Json(note): Json<NoteRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let invoice =
        state.service().add_internal_note(&staff, invoice_id, &note.text).await.map_err(|error| json_error(&error))?;
    Ok((StatusCode::CREATED, Json(invoice_summary(&state, &invoice))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReceiptRequest {
    pub label: String,
    pub url: String,
}

async fn attach_receipt(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Json(receipt): Json<ReceiptRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let invoice = state
        .service()
        .attach_receipt(&staff, invoice_id, &receipt.label, &receipt.url)
        .await
        .map_err(|error| json_error(&error))?;
    Ok((StatusCode::CREATED, Json(invoice_summary(&state, &invoice))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct TerminalRequest {
    pub reader: String,
}

/// `POST /api/staff/invoices/{invoice_id}/terminal`: starts a card-present
/// payment on one of the configured readers.
async fn start_terminal(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Json(request): Json<TerminalRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let start =
        terminal_payment(&state, &staff, invoice_id, &request.reader).await.map_err(|error| json_error(&error))?;
    Ok((StatusCode::ACCEPTED, Json(start_json(&start))).into_response())
}

/// Starts a Terminal payment after checking the reader is one the server offers.
pub async fn terminal_payment(
    state: &AppState,
    staff: &StaffContext,
    invoice_id: billing_domain::InvoiceId,
    reader: &str,
) -> Result<PaymentStart, BillingError> {
    let Some(terminal) = &state.offers().terminal else {
        return Err(BillingError::InvalidInput { reason: "no Terminal provider is configured".into() });
    };
    if !terminal.readers.iter().any(|known| known == reader) {
        return Err(BillingError::InvalidInput {
            reason: format!("reader {reader:?} is not configured; use one of {:?}", terminal.readers),
        });
    }
    let start = state.service().start_terminal_payment(staff, invoice_id, &terminal.provider, reader).await?;
    tracing::info!(%invoice_id, staff = %staff.user_id(), reader, "terminal payment started");
    Ok(start)
}

#[derive(Debug, Deserialize)]
pub struct ManualRequest {
    pub method: ManualMethod,
    pub reference: String,
}

/// `POST /api/staff/invoices/{invoice_id}/manual-payments`: cash or a bank
/// transfer staff confirmed; the same reference twice is recorded once.
async fn record_manual(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Json(request): Json<ManualRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let start = manual_payment(&state, &staff, invoice_id, request).await.map_err(|error| json_error(&error))?;
    Ok(Json(start_json(&start)).into_response())
}

pub async fn manual_payment(
    state: &AppState,
    staff: &StaffContext,
    invoice_id: billing_domain::InvoiceId,
    request: ManualRequest,
) -> Result<PaymentStart, BillingError> {
    let Some(manual) = &state.offers().manual else {
        return Err(BillingError::InvalidInput { reason: "no manual payment provider is configured".into() });
    };
    state.service().record_manual_payment(staff, invoice_id, manual, request.method, &request.reference).await
}

fn start_json(start: &PaymentStart) -> serde_json::Value {
    match start {
        PaymentStart::Redirect { payment_id, url } => serde_json::json!({ "payment_id": payment_id, "redirect": url }),
        PaymentStart::Completed { payment, events } => serde_json::json!({
            "payment_id": payment.id,
            "payment_status": payment.status(),
            "events": events,
        }),
        PaymentStart::TerminalStarted { payment_id, reader } => {
            serde_json::json!({ "payment_id": payment_id, "reader": reader, "payment_status": "pending" })
        }
        PaymentStart::AlreadyRecorded { payment } => serde_json::json!({
            "payment_id": payment.id,
            "payment_status": payment.status(),
            "already_recorded": true,
        }),
    }
}

#[derive(Debug, Deserialize)]
pub struct QueueQuery {
    pub older_than_minutes: Option<i64>,
}

/// `GET /api/staff/reconciliation`: open log entries and stale payments.
async fn queue(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Query(query): Query<QueueQuery>,
) -> Result<Response, AppError> {
    let minutes = query.older_than_minutes.unwrap_or(DEFAULT_STALE_MINUTES).max(0);
    let service = state.service();
    let unresolved = service.unresolved_log(&staff, QUEUE_LIMIT).await.map_err(|error| json_error(&error))?;
    let stale = service
        .stale_payments(&staff, time::Duration::minutes(minutes), QUEUE_LIMIT)
        .await
        .map_err(|error| json_error(&error))?;
    Ok(Json(serde_json::json!({ "unresolved": unresolved, "stale": stale })).into_response())
}

/// `POST /api/staff/events/retry`: applies a stored event again.
async fn retry_event(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Json(key): Json<EventKey>,
) -> Result<Response, AppError> {
    let report = state.service().retry_event(&staff, &key).await.map_err(|error| json_error(&error))?;
    Ok(Json(report).into_response())
}

/// `POST /api/staff/payments/{payment_id}/reconcile`: fetches the provider's state.
async fn reconcile(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(payment_id): Path<String>,
) -> Result<Response, AppError> {
    let payment_id = parse_payment_id(Format::Json, &payment_id)?;
    let report = state.service().reconcile_payment(&staff, payment_id).await.map_err(|error| json_error(&error))?;
    Ok(Json(report).into_response())
}

/// What staff decide when forcing an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
}

impl From<Outcome> for ForcedOutcome {
    fn from(outcome: Outcome) -> ForcedOutcome {
        match outcome {
            Outcome::Succeeded => ForcedOutcome::Succeeded,
            Outcome::Failed => ForcedOutcome::Failed,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ForceRequest {
    pub outcome: Outcome,
    pub reason: String,
}

/// `POST /api/staff/payments/{payment_id}/force`: settles a payment the
/// provider cannot answer for; the reason and the staff member are logged.
async fn force(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(payment_id): Path<String>,
    Json(request): Json<ForceRequest>,
) -> Result<Response, AppError> {
    let payment_id = parse_payment_id(Format::Json, &payment_id)?;
    let report = state
        .service()
        .force_outcome(&staff, payment_id, request.outcome.into(), &request.reason)
        .await
        .map_err(|error| json_error(&error))?;
    Ok(Json(report).into_response())
}

pub fn parse_payment_id(format: Format, text: &str) -> Result<PaymentId, AppError> {
    text.parse().map_err(|_| AppError::new(format, StatusCode::NOT_FOUND, &format!("no payment {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(quantity: &str, unit_price: &str, currency: &str) -> InvoiceDraft {
        InvoiceDraft {
            company_id: CompanyId::from_random_bytes([1; 16]),
            number: "2026-0001".into(),
            currency: currency.into(),
            rows: vec![RowDraft {
                description: "Work".into(),
                quantity: quantity.into(),
                unit_price: unit_price.into(),
                project_id: None,
                content_id: None,
                credits: None,
            }],
        }
    }

    #[test]
    fn draft_becomes_an_invoice_in_its_currency() {
        let new = draft("2", "12.50", "eur").into_new_invoice().unwrap();

        assert_eq!(new.currency, Currency::EUR);
        assert_eq!(new.rows[0].unit_price.to_minor().unwrap(), 1250);
    }

    #[test]
    fn excess_fraction_digits_are_refused() {
        assert!(matches!(draft("1", "12.505", "EUR").into_new_invoice(), Err(BillingError::Money(_))));
    }

    #[test]
    fn non_decimal_quantity_names_the_field() {
        let Err(BillingError::InvalidInput { reason }) = draft("two", "1.00", "EUR").into_new_invoice() else {
            panic!("expected invalid input");
        };
        assert!(reason.contains("quantity \"two\""), "{reason}");
    }

    #[test]
    fn unknown_currency_is_refused() {
        assert!(matches!(draft("1", "1.00", "XXQ").into_new_invoice(), Err(BillingError::InvalidInput { .. })));
    }
}
