//! Staff pages (English only): the dashboard with the reconciliation queue,
//! recent activity and credit adjustments, and the staff invoice page with
//! internal notes, payments, the log and the Terminal and manual-payment
//! forms.
//!
//! Forms post to `/staff/...` routes that call the same service use cases
//! as the JSON API and send the browser back to the page (303). Every route
//! takes a [`Staff`], so customers get 403 and strangers 401.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use billing_domain::log::{Attention, LogEntry};
use billing_domain::service::StaffInvoiceView;
use billing_domain::{BillingError, EventId, EventKey, Payment, ProviderName};
use serde::Deserialize;

use super::auth::Staff;
use super::error::{AppError, Format};
use super::html::{escape, Markup, Page};
use super::i18n::Lang;
use super::staff_api::{
    manual_payment, parse_payment_id, terminal_payment, ForceRequest, ManualRequest, NoteRequest, TerminalRequest,
    DEFAULT_STALE_MINUTES, QUEUE_LIMIT,
};
use super::state::AppState;
use super::workspace::{invoice_details, parse_invoice_id};

const FORMAT: Format = Format::Html(Lang::En);

/// How many recent log entries the dashboard lists.
const ACTIVITY_LIMIT: usize = 30;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff", get(dashboard))
        .route("/staff/invoices/{invoice_id}", get(invoice_page))
        .route("/staff/invoices/{invoice_id}/terminal", post(terminal_form))
        .route("/staff/invoices/{invoice_id}/manual-payment", post(manual_form))
        .route("/staff/invoices/{invoice_id}/notes", post(note_form))
        .route("/staff/payments/{payment_id}/reconcile", post(reconcile_form))
        .route("/staff/payments/{payment_id}/force", post(force_form))
        .route("/staff/events/retry", post(retry_form))
}

fn failed(error: &BillingError) -> AppError {
    AppError::from_billing(FORMAT, error)
}

/// The navigation bar of staff pages.
pub fn staff_nav() -> Markup {
    Markup::raw(
        "<nav><a href=\"/staff\">Dashboard</a><a href=\"/workspace/credits\">Credits</a>\
         <form class=\"inline\" method=\"post\" action=\"/signout\"><button>Sign out</button></form></nav>\n",
    )
}

/// `GET /staff`.
async fn dashboard(State(state): State<AppState>, Staff(staff): Staff) -> Result<Page, AppError> {
    let service = state.service();
    let unresolved = service.unresolved_log(&staff, QUEUE_LIMIT).await.map_err(|error| failed(&error))?;
    let stale = service
        .stale_payments(&staff, time::Duration::minutes(DEFAULT_STALE_MINUTES), QUEUE_LIMIT)
        .await
        .map_err(|error| failed(&error))?;
    let activity = service.recent_log(&staff, ACTIVITY_LIMIT).await.map_err(|error| failed(&error))?;
    let balance = service.balance(staff.tenant_id()).await.map_err(|error| failed(&error))?;

    let mut body = staff_nav();
    body.push(Markup::raw("<h1>Staff dashboard</h1>\n<h2>Reconciliation queue</h2>\n"));
    if unresolved.is_empty() && stale.is_empty() {
        body.push(Markup::raw("<p id=\"queue-empty\">Nothing waits for staff.</p>\n"));
    }
    if !unresolved.is_empty() {
        body.push(log_table("unresolved", &unresolved, true));
    }
    if !stale.is_empty() {
        body.push_fmt(format_args!("<h3>Payments pending or unknown for over {DEFAULT_STALE_MINUTES} minutes</h3>\n"));
        body.push(payments_table("stale", &stale));
    }
    body.push_fmt(format_args!(
        "<h2>Credits</h2>\n<p id=\"balance\">Balance {} &middot; reserved {} &middot; available {}</p>\n\
         <form method=\"post\" action=\"/staff/credits/adjust\" id=\"adjust\">\
         <input name=\"amount\" type=\"number\" step=\"1\" required placeholder=\"credits (+/-)\"> \
         <input name=\"reason\" required placeholder=\"reason\" size=\"30\"> <button>Adjust credits</button></form>\n",
        balance.balance, balance.held, balance.available
    ));
    body.push(Markup::raw("<h2>Recent activity</h2>\n"));
    body.push(log_table("activity", &activity, false));
    Ok(Page::new(Lang::En, "Staff dashboard", body))
}

/// `GET /staff/invoices/{invoice_id}`.
async fn invoice_page(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
) -> Result<Page, AppError> {
    let invoice_id = parse_invoice_id(FORMAT, &invoice_id)?;
    let view = state.service().staff_invoice(&staff, invoice_id).await.map_err(|error| failed(&error))?;

    let mut body = staff_nav();
    body.push(invoice_details(Lang::En, &view.invoice));
    body.push(notes_section(&view));
    body.push(Markup::raw("<h2>Payments</h2>\n"));
    body.push(payments_table("payments", &view.payments));
    if view.invoice.status == billing_domain::InvoiceStatus::Open {
        body.push(payment_forms(&state, &view));
    }
    body.push(Markup::raw("<h2>Log</h2>\n"));
    body.push(log_table("log", &view.log, false));
    Ok(Page::new(Lang::En, format!("Invoice {} (staff)", view.invoice.number), body))
}

fn notes_section(view: &StaffInvoiceView) -> Markup {
    let mut html = Markup::raw("<section class=\"staff\"><h2>Internal notes (staff only)</h2>\n<ul id=\"notes\">\n");
    for note in &view.internal_notes {
        html.push_fmt(format_args!("<li>{}</li>\n", escape(&note.text)));
    }
    html.push_fmt(format_args!(
        "</ul>\n<form method=\"post\" action=\"/staff/invoices/{}/notes\">\
         <input name=\"text\" required size=\"40\" placeholder=\"note\"> <button>Add note</button></form></section>\n",
        view.invoice.invoice_id
    ));
    html
}

fn payment_forms(state: &AppState, view: &StaffInvoiceView) -> Markup {
    let invoice_id = view.invoice.invoice_id;
    let mut html = Markup::default();
    if let Some(terminal) = &state.offers().terminal {
        html.push_fmt(format_args!(
            "<form method=\"post\" action=\"/staff/invoices/{invoice_id}/terminal\" id=\"terminal\">\
             <label>Card reader <select name=\"reader\">"
        ));
        for reader in &terminal.readers {
            html.push_fmt(format_args!("<option>{}</option>", escape(reader)));
        }
        html.push(Markup::raw("</select></label> <button>Start Terminal payment</button></form>\n"));
    }
    if state.offers().manual.is_some() {
        html.push_fmt(format_args!(
            "<form method=\"post\" action=\"/staff/invoices/{invoice_id}/manual-payment\" id=\"manual\">\
             <select name=\"method\"><option value=\"bank_transfer\">Bank transfer</option>\
             <option value=\"cash\">Cash</option></select> \
             <input name=\"reference\" required placeholder=\"receipt or transfer reference\" size=\"30\"> \
             <button>Record payment</button></form>\n"
        ));
    }
    html
}

fn payments_table(id: &str, payments: &[Payment]) -> Markup {
    let mut html = Markup::raw(format!(
        "<table id=\"{}\"><tr><th>Payment</th><th>Provider</th><th>Status</th><th>Amount</th><th></th></tr>\n",
        escape(id)
    ));
    for payment in payments {
        let mut actions = Markup::default();
        if payment.status().is_in_flight() {
            actions.push_fmt(format_args!(
                "<form class=\"inline\" method=\"post\" action=\"/staff/payments/{id}/reconcile\">\
                 <button>Reconcile</button></form>\
                 <form class=\"inline\" method=\"post\" action=\"/staff/payments/{id}/force\">\
                 <select name=\"outcome\"><option value=\"succeeded\">succeeded</option>\
                 <option value=\"failed\">failed</option></select> \
                 <input name=\"reason\" required placeholder=\"reason\"> <button>Force outcome</button></form>",
                id = payment.id
            ));
        }
        html.push_fmt(format_args!(
            "<tr><td><a href=\"/staff/invoices/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            payment.invoice_id,
            payment.id,
            escape(payment.provider.as_str()),
            payment.status(),
            escape(&payment.amount.to_string()),
            actions.as_str(),
        ));
    }
    html.push(Markup::raw("</table>\n"));
    html
}

fn log_table(id: &str, entries: &[LogEntry], with_retry: bool) -> Markup {
    let mut html = Markup::raw(format!(
        "<table id=\"{}\"><tr><th>When</th><th>Outcome</th><th>What</th><th>Invoice</th><th></th></tr>\n",
        escape(id)
    ));
    for entry in entries {
        let invoice = entry
            .invoice_id
            .map(|invoice| format!("<a href=\"/staff/invoices/{invoice}\">open</a>"))
            .unwrap_or_default();
        let mut action = Markup::default();
        if let (true, Some(event), Attention::Open) = (with_retry, &entry.event, entry.attention) {
            action.push_fmt(format_args!(
                "<form class=\"inline\" method=\"post\" action=\"/staff/events/retry\">\
                 <input type=\"hidden\" name=\"provider\" value=\"{}\">\
                 <input type=\"hidden\" name=\"event_id\" value=\"{}\"><button>Retry</button></form>",
                escape(event.provider.as_str()),
                escape(event.event_id.as_str())
            ));
        }
        html.push_fmt(format_args!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{invoice}</td><td>{}</td></tr>\n",
            entry.at.time(),
            entry.outcome,
            escape(&entry.reason),
            action.as_str()
        ));
    }
    html.push(Markup::raw("</table>\n"));
    html
}

async fn terminal_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Form(request): Form<TerminalRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(FORMAT, &invoice_id)?;
    terminal_payment(&state, &staff, invoice_id, &request.reader).await.map_err(|error| failed(&error))?;
    Ok(Redirect::to(&format!("/staff/invoices/{invoice_id}")).into_response())
}

async fn manual_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Form(request): Form<ManualRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(FORMAT, &invoice_id)?;
    manual_payment(&state, &staff, invoice_id, request).await.map_err(|error| failed(&error))?;
    Ok(Redirect::to(&format!("/staff/invoices/{invoice_id}")).into_response())
}

async fn note_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(invoice_id): Path<String>,
    Form(note): Form<NoteRequest>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(FORMAT, &invoice_id)?;
    state.service().add_internal_note(&staff, invoice_id, &note.text).await.map_err(|error| failed(&error))?;
    Ok(Redirect::to(&format!("/staff/invoices/{invoice_id}")).into_response())
}

async fn reconcile_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(payment_id): Path<String>,
) -> Result<Response, AppError> {
    let payment_id = parse_payment_id(FORMAT, &payment_id)?;
    let report = state.service().reconcile_payment(&staff, payment_id).await.map_err(|error| failed(&error))?;
    Ok(Redirect::to(&format!("/staff/invoices/{}", report.payment.invoice_id)).into_response())
}

async fn force_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Path(payment_id): Path<String>,
    Form(request): Form<ForceRequest>,
) -> Result<Response, AppError> {
    let payment_id = parse_payment_id(FORMAT, &payment_id)?;
    let report = state
        .service()
        .force_outcome(&staff, payment_id, request.outcome.into(), &request.reason)
        .await
        .map_err(|error| failed(&error))?;
    let target = report.invoice_id.map_or_else(|| "/staff".to_owned(), |invoice| format!("/staff/invoices/{invoice}"));
    Ok(Redirect::to(&target).into_response())
}

#[derive(Debug, Deserialize)]
pub struct RetryForm {
    provider: String,
    event_id: String,
}

async fn retry_form(
    State(state): State<AppState>,
    Staff(staff): Staff,
    Form(form): Form<RetryForm>,
) -> Result<Response, AppError> {
    let key = EventKey {
        provider: ProviderName::new(form.provider).map_err(|error| failed(&error.into()))?,
        event_id: EventId::new(form.event_id).map_err(|error| failed(&error.into()))?,
    };
    state.service().retry_event(&staff, &key).await.map_err(|error| failed(&error))?;
    Ok(Redirect::to("/staff").into_response())
}
