//! The route table and the request log.
//!
//! Each request is logged once when it finishes, with its method, the
//! matched route template, the status and the time taken. The raw path and
//! query are deliberately left out: `/pay/{token}` would otherwise write a
//! bearer secret into the log, and return URLs carry provider references.

use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{header, HeaderValue, Request, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::state::AppState;
use super::{credits, public, signin, staff_api, staff_pages, webhooks, workspace};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(public::home))
        .route("/pay/{token}", get(public::entry).post(public::start))
        .route("/return/{provider}", get(public::returned).post(public::returned))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::sign_out))
        .route("/webhooks/{provider}", post(webhooks::receive).get(webhooks::receive))
        .merge(workspace::routes())
        .merge(credits::routes())
        .merge(staff_pages::routes())
        .merge(staff_api::routes())
        .fallback(public::not_found)
        // Every answer may carry private data or a bearer link: no shared
        // caching, and no Referer that would hand `/pay/{token}` to a provider.
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response)
                .on_failure(()),
        )
        .with_state(state)
}

fn request_span(request: &Request<Body>) -> Span {
    let route = request.extensions().get::<MatchedPath>().map_or("(no route)", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route)
}

fn log_response(response: &Response<Body>, latency: Duration, _span: &Span) {
    tracing::info!(status = response.status().as_u16(), latency_ms = latency.as_millis(), "request finished");
}
