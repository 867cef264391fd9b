//! The signed-in customer workspace: the company's invoices with rows,
//! project links, purchased content and receipts, and the tenant portal's
//! project list. Pages in English or Estonian; the same data as JSON under
//! `/api/workspace/`.
//!
//! Every route takes a [`Customer`], which the service builds only after a
//! membership check, and reads through the customer views of the service,
//! which show a company only its own invoices. Purchased content opens only
//! through [`billing_domain::BillingService::open_content`], which asks the
//! store whether the invoice is paid. Internal notes never appear here.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use billing_domain::service::InvoiceView;
use billing_domain::{ContentId, InvoiceId};

use super::auth::{Customer, Member};
use super::error::{AppError, Format};
use super::html::{escape, language_switch, Markup, Page};
use super::i18n::Lang;
use super::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/workspace", get(home))
        .route("/workspace/invoices/{invoice_id}", get(invoice_page))
        .route("/workspace/projects", get(projects_page))
        .route("/workspace/content/{content_id}", get(open_content))
        .route("/api/workspace/invoices", get(invoices_json))
        .route("/api/workspace/invoices/{invoice_id}", get(invoice_json))
        .route("/api/workspace/projects", get(projects_json))
}

/// The navigation bar of workspace pages.
pub fn workspace_nav(lang: Lang) -> Markup {
    let texts = lang.texts();
    let code = lang.code();
    let mut nav = Markup::raw(format!(
        "<nav><a href=\"/workspace?lang={code}\">{}</a><a href=\"/workspace/projects?lang={code}\">{}</a>\
         <a href=\"/workspace/credits?lang={code}\">{}</a>",
        escape(texts.workspace_title),
        escape(texts.projects),
        escape(texts.credits),
    ));
    nav.push(Markup::raw(format!(
        "<form class=\"inline\" method=\"post\" action=\"/signout?lang={code}\"><button>{}</button></form></nav>\n",
        escape(texts.sign_out)
    )));
    nav.push(language_switch(lang));
    nav
}

/// `GET /workspace`: a customer's invoices; staff go to the staff dashboard.
async fn home(State(state): State<AppState>, member: Member, lang: Lang) -> Result<Response, AppError> {
    let customer = match member {
        Member::Staff(_) => return Ok(Redirect::to("/staff").into_response()),
        Member::Customer(customer) => customer,
    };
    let texts = lang.texts();
    let format = Format::Html(lang);
    let invoices =
        state.service().customer_invoices(&customer).await.map_err(|error| AppError::from_billing(format, &error))?;

    let mut body = workspace_nav(lang);
    body.push_fmt(format_args!("<h1>{}</h1>\n", escape(texts.your_invoices)));
    if invoices.is_empty() {
        body.push_fmt(format_args!("<p>{}</p>\n", escape(texts.no_invoices)));
    } else {
        body.push_fmt(format_args!(
            "<table id=\"invoices\"><tr><th>{}</th><th>{}</th><th>{}</th></tr>\n",
            escape(texts.invoice),
            escape(texts.status),
            escape(texts.total)
        ));
        for invoice in &invoices {
            body.push_fmt(format_args!(
                "<tr><td><a href=\"/workspace/invoices/{}?lang={}\">{}</a></td><td>{}</td><td>{}</td></tr>\n",
                invoice.invoice_id,
                lang.code(),
                escape(&invoice.number),
                escape(lang.invoice_status(invoice.status)),
                escape(&lang.money(&invoice.total)),
            ));
        }
        body.push(Markup::raw("</table>\n"));
    }
    Ok(Page::new(lang, texts.workspace_title, body).into_response())
}

/// `GET /workspace/invoices/{invoice_id}`.
async fn invoice_page(
    State(state): State<AppState>,
    Customer(customer): Customer,
    Path(invoice_id): Path<String>,
    lang: Lang,
) -> Result<Page, AppError> {
    let format = Format::Html(lang);
    let invoice_id = parse_invoice_id(format, &invoice_id)?;
    let view = state
        .service()
        .customer_invoice(&customer, invoice_id)
        .await
        .map_err(|error| AppError::from_billing(format, &error))?;
    let mut body = workspace_nav(lang);
    body.push(invoice_details(lang, &view));
    Ok(Page::new(lang, format!("{} {}", lang.texts().invoice, view.number), body))
}

/// The invoice as the workspace shows it, shared by the customer and staff pages.
pub fn invoice_details(lang: Lang, view: &InvoiceView) -> Markup {
    let texts = lang.texts();
    let mut html = Markup::raw(format!(
        "<h1 id=\"invoice-number\">{} {}</h1>\n<p id=\"company\">{}: {}</p>\n\
         <p id=\"invoice-status\">{}: {} &middot; {}: {}</p>\n",
        escape(texts.invoice),
        escape(&view.number),
        escape(texts.company),
        escape(&view.company.name),
        escape(texts.status),
        escape(lang.invoice_status(view.status)),
        escape(texts.total),
        escape(&lang.money(&view.total)),
    ));
    html.push_fmt(format_args!(
        "<table id=\"rows\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>\n",
        escape(texts.description),
        escape(texts.quantity),
        escape(texts.unit_price),
        escape(texts.line_total),
        escape(texts.row_details),
    ));
    for row in &view.rows {
        let mut extra = Markup::default();
        if let Some(project) = &row.project {
            extra.push(external_link(&project.url, &project.name));
        }
        if let Some(content) = &row.content {
            match content.location {
                Some(_) => extra.push_fmt(format_args!(
                    "{}: <a class=\"content\" href=\"/workspace/content/{}\">{} &ndash; {}</a>",
                    escape(texts.content),
                    content.content_id,
                    escape(&content.title),
                    escape(texts.open_content)
                )),
                None => extra.push_fmt(format_args!(
                    "{}: {} ({})",
                    escape(texts.content),
                    escape(&content.title),
                    escape(texts.locked_content)
                )),
            }
        }
        if let Some(credits) = row.credits {
            extra.push_fmt(format_args!("{}: {credits}", escape(texts.credits)));
        }
        html.push_fmt(format_args!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&row.description),
            row.quantity,
            escape(&lang.money(&row.unit_price)),
            escape(&lang.money(&row.line_total)),
            extra.as_str(),
        ));
    }
    html.push(Markup::raw("</table>\n"));
    html.push_fmt(format_args!("<h2>{}</h2>\n", escape(texts.receipts)));
    if view.receipts.is_empty() {
        html.push_fmt(format_args!("<p>{}</p>\n", escape(texts.no_receipts)));
    }
    for receipt in &view.receipts {
        html.push_fmt(format_args!(
            "<p class=\"receipt\">{}</p>\n",
            external_link(&receipt.url, &receipt.label).as_str()
        ));
    }
    html
}

/// A link to an address staff entered; anything but http(s) is shown as text.
pub fn external_link(url: &str, label: &str) -> Markup {
    if url.starts_with("https://") || url.starts_with("http://") {
        Markup::raw(format!("<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>", escape(url), escape(label)))
    } else {
        Markup::raw(format!("{} ({})", escape(label), escape(url)))
    }
}

/// `GET /workspace/projects`: the tenant portal.
async fn projects_page(
    State(state): State<AppState>,
    Customer(customer): Customer,
    lang: Lang,
) -> Result<Page, AppError> {
    let texts = lang.texts();
    let format = Format::Html(lang);
    let projects =
        state.service().tenant_projects(&customer).await.map_err(|error| AppError::from_billing(format, &error))?;
    let mut body = workspace_nav(lang);
    body.push_fmt(format_args!("<h1>{}</h1>\n", escape(texts.projects)));
    if projects.is_empty() {
        body.push_fmt(format_args!("<p>{}</p>\n", escape(texts.no_projects)));
    }
    body.push(Markup::raw("<ul id=\"projects\">\n"));
    for project in &projects {
        body.push_fmt(format_args!("<li>{}</li>\n", external_link(&project.url, &project.name).as_str()));
    }
    body.push(Markup::raw("</ul>\n"));
    Ok(Page::new(lang, texts.projects, body))
}

/// `GET /workspace/content/{content_id}`: to the content, once the store says paid.
async fn open_content(
    State(state): State<AppState>,
    Customer(customer): Customer,
    Path(content_id): Path<String>,
    lang: Lang,
) -> Result<Response, AppError> {
    let format = Format::Html(lang);
    let content_id: ContentId =
        content_id.parse().map_err(|_| AppError::new(format, StatusCode::NOT_FOUND, "no such content"))?;
    let content = state
        .service()
        .open_content(&customer, content_id)
        .await
        .map_err(|error| AppError::from_billing(format, &error))?;
    tracing::info!(%content_id, user_id = %customer.user_id(), "purchased content opened");
    Ok(Redirect::to(&content.location).into_response())
}

async fn invoices_json(State(state): State<AppState>, Customer(customer): Customer) -> Result<Response, AppError> {
    let invoices = state
        .service()
        .customer_invoices(&customer)
        .await
        .map_err(|error| AppError::from_billing(Format::Json, &error))?;
    Ok(Json(invoices).into_response())
}

async fn invoice_json(
    State(state): State<AppState>,
    Customer(customer): Customer,
    Path(invoice_id): Path<String>,
) -> Result<Response, AppError> {
    let invoice_id = parse_invoice_id(Format::Json, &invoice_id)?;
    let view = state
        .service()
        .customer_invoice(&customer, invoice_id)
        .await
        .map_err(|error| AppError::from_billing(Format::Json, &error))?;
    Ok(Json(view).into_response())
}

async fn projects_json(State(state): State<AppState>, Customer(customer): Customer) -> Result<Response, AppError> {
    let projects = state
        .service()
        .tenant_projects(&customer)
        .await
        .map_err(|error| AppError::from_billing(Format::Json, &error))?;
    Ok(Json(projects).into_response())
}

pub fn parse_invoice_id(format: Format, text: &str) -> Result<InvoiceId, AppError> {
    text.parse().map_err(|_| AppError::new(format, StatusCode::NOT_FOUND, &format!("no invoice {text:?}")))
}
