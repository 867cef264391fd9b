//! Turning failures into HTTP answers: a status code, and a page or a JSON body.
//!
//! Routes under `/api/` answer JSON (`{"error": "..."}`); every other route
//! answers an HTML page in the caller's language. A client error shows the
//! error's own sentence, which names the value and what to do. A server
//! error shows a generic sentence and is logged with its cause; its details
//! never reach the caller. Public pages do not use this type for the link's
//! own states (gone, not found): they render their own localised pages.

use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing_domain::invoice::InvoiceError;
use billing_domain::ledger::LedgerError;
use billing_domain::store::StoreError;
use billing_domain::{BillingError, ProviderError};

use super::html::{link, message, Markup, Page};
use super::i18n::Lang;

/// How a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html(Lang),
    Json,
}

impl Format {
    /// JSON for `/api/` routes, else HTML in the negotiated language.
    pub fn of(parts: &Parts) -> Format {
        if parts.uri.path().starts_with("/api/") {
            Format::Json
        } else {
            Format::Html(Lang::negotiate(parts.uri.query(), &parts.headers))
        }
    }
}

/// A failed request, ready to answer.
#[derive(Debug, Clone)]
pub struct AppError {
    format: Format,
    status: StatusCode,
    message: String,
}

impl AppError {
    pub fn new(format: Format, status: StatusCode, message: &str) -> AppError {
        AppError { format, status, message: message.to_owned() }
    }

    pub fn unauthenticated(format: Format, message: &str) -> AppError {
        AppError::new(format, StatusCode::UNAUTHORIZED, message)
    }

    pub fn bad_request(format: Format, message: &str) -> AppError {
        AppError::new(format, StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// The answer for an error of the service. Server errors are logged here.
    pub fn from_billing(format: Format, error: &BillingError) -> AppError {
        let status = status_of(error);
        if status.is_server_error() {
            tracing::error!(%error, status = status.as_u16(), "request failed");
            return AppError::new(format, status, "the request could not be completed; try again later");
        }
        AppError::new(format, status, &error.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self.format {
            Format::Json => (self.status, Json(serde_json::json!({ "error": self.message }))).into_response(),
            Format::Html(lang) => error_page(lang, self.status, &self.message).into_response(),
        }
    }
}

fn error_page(lang: Lang, status: StatusCode, detail: &str) -> Page {
    let texts = lang.texts();
    let mut body = match status {
        StatusCode::UNAUTHORIZED => message(texts.sign_in, texts.signed_in_required),
        StatusCode::FORBIDDEN => message(texts.error_title, texts.forbidden),
        status if status.is_server_error() => message(texts.error_title, texts.error_text),
        _ => message(texts.error_title, detail),
    };
    body.push(Markup::raw("\n<p>"));
    body.push(link(&format!("/signin?lang={}", lang.code()), texts.sign_in));
    body.push(Markup::raw("</p>"));
    Page::new(lang, texts.error_title, body).status(status)
}

/// The status code that says what went wrong.
pub fn status_of(error: &BillingError) -> StatusCode {
    match error {
        BillingError::Access(_) => StatusCode::FORBIDDEN,
        BillingError::NotFound { .. } | BillingError::PublicLinkNotFound => StatusCode::NOT_FOUND,
        BillingError::PublicLinkGone { .. } => StatusCode::GONE,
        BillingError::UnknownProvider { .. } => StatusCode::BAD_REQUEST,
        BillingError::NotPayable { .. }
        | BillingError::PaymentInProgress { .. }
        | BillingError::ChannelNotAllowed { .. } => StatusCode::CONFLICT,
        BillingError::StartFailed { .. } => StatusCode::BAD_GATEWAY,
        BillingError::InvalidInput { .. } | BillingError::Money(_) | BillingError::Id(_) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        BillingError::Invoice(InvoiceError::Row { .. } | InvoiceError::NegativeTotal { .. }) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        BillingError::Invoice(_) | BillingError::Payment(_) => StatusCode::CONFLICT,
        BillingError::Ledger(ledger) => ledger_status(ledger),
        BillingError::Provider(ProviderError::InvalidWebhook { .. }) => StatusCode::BAD_REQUEST,
        BillingError::Provider(ProviderError::Timeout { .. }) => StatusCode::GATEWAY_TIMEOUT,
        BillingError::Provider(_) => StatusCode::BAD_GATEWAY,
        BillingError::Store(store) if store.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
        BillingError::Store(StoreError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        BillingError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn ledger_status(error: &LedgerError) -> StatusCode {
    match error {
        LedgerError::HoldNotFound { .. } => StatusCode::NOT_FOUND,
        LedgerError::InsufficientCredits { .. } | LedgerError::HoldNotOpen { .. } | LedgerError::HoldExpired { .. } => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::service::AccessError;
    use billing_domain::{IdempotencyKey, InvoiceStatus, TenantId, UserId};

    use super::*;

    #[test]
    fn statuses_name_the_failure() {
        let tenant = TenantId::from_random_bytes([1; 16]);
        let user = UserId::from_random_bytes([2; 16]);
        let key = IdempotencyKey::new("job-1").unwrap();
        let cases = [
            (BillingError::Access(AccessError::NotStaff { tenant, user }), StatusCode::FORBIDDEN),
            (BillingError::PublicLinkNotFound, StatusCode::NOT_FOUND),
            (BillingError::PublicLinkGone { status: InvoiceStatus::Paid }, StatusCode::GONE),
            (BillingError::InvalidInput { reason: "empty".into() }, StatusCode::UNPROCESSABLE_ENTITY),
            (BillingError::Ledger(LedgerError::IdempotencyKeyReused { key }), StatusCode::UNPROCESSABLE_ENTITY),
            (BillingError::Provider(ProviderError::InvalidWebhook { reason: "sig".into() }), StatusCode::BAD_REQUEST),
            (BillingError::Store(StoreError::Conflict { what: "invoice".into() }), StatusCode::SERVICE_UNAVAILABLE),
            (BillingError::Store(StoreError::Corrupt { reason: "bad row".into() }), StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (error, expected) in cases {
            assert_eq!(status_of(&error), expected, "{error}");
        }
    }

    #[test]
    fn server_errors_hide_their_cause() {
        let error = BillingError::Store(StoreError::Unavailable { reason: "password authentication failed".into() });
        let answer = AppError::from_billing(Format::Json, &error);

        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!answer.message.contains("password"));
    }
}
