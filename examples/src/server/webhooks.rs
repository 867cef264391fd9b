//! Provider webhooks: `POST /webhooks/{provider}` (and `GET`, for providers
//! that notify by query string).
//!
//! The raw body bytes, headers and query string go to the provider adapter
//! untouched, because signatures cover the exact bytes. The answer tells the
//! provider whether to deliver again:
//!
//! - a signature or payload the adapter rejects: 400, nothing applied;
//! - verified events, each stored in the inbox before this answers, even
//!   when it cannot apply yet and waits for staff: 200;
//! - anything that kept an event from being stored: 5xx, so the provider
//!   retries.
//!
//! Payloads and signature headers are never logged.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use billing_domain::store::StoreError;
use billing_domain::{BillingError, ProviderError, ProviderName, WebhookRequest};

use super::state::AppState;

pub async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(provider) = ProviderName::new(provider) else {
        return answer(StatusCode::NOT_FOUND, "no such provider");
    };
    let request = WebhookRequest {
        headers: headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
            .collect(),
        query,
        body: body.to_vec(),
    };

    match state.service().handle_webhook(&provider, &request).await {
        Ok(reports) => {
            let waiting = reports.iter().filter(|report| report.needs_attention).count();
            for report in reports.iter().filter(|report| report.needs_attention) {
                tracing::warn!(
                    %provider,
                    event_id = %report.event.event_id,
                    payment_id = report.payment_id.map(tracing::field::display),
                    invoice_id = report.invoice_id.map(tracing::field::display),
                    outcome = %report.outcome,
                    "webhook event stored for staff reconciliation"
                );
            }
            tracing::info!(%provider, events = reports.len(), waiting, "webhook accepted");
            let outcomes: Vec<&str> = reports.iter().map(|report| report.outcome.as_str()).collect();
            (StatusCode::OK, Json(serde_json::json!({ "received": reports.len(), "outcomes": outcomes })))
                .into_response()
        }
        Err(BillingError::Provider(ProviderError::InvalidWebhook { reason })) => {
            answer(StatusCode::BAD_REQUEST, &format!("webhook rejected: {reason}"))
        }
        Err(BillingError::UnknownProvider { .. }) => answer(StatusCode::NOT_FOUND, "no such provider"),
        Err(error) => {
            tracing::error!(%provider, %error, "webhook could not be stored; the provider will deliver it again");
            let status = match &error {
                BillingError::Store(store) if store.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
                BillingError::Store(StoreError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            answer(status, "the event could not be stored; deliver it again")
        }
    }
}

fn answer(status: StatusCode, error: &str) -> Response {
    (status, Json(serde_json::json!({ "error": error }))).into_response()
}
