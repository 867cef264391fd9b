//! Local stand-ins for a provider's hosted payment page, so the demo and
//! the browser test can pay without keys and without the internet.
//!
//! A stand-in is a second small server on its own loopback port. Its page
//! says plainly that it is a stand-in and offers Pay and Cancel. On either
//! button it asks a [`HostedStandIn`] for the webhook the real provider
//! would send, correctly signed, delivers it over HTTP to the workspace
//! server's `/webhooks/{provider}` route, and sends the browser to the
//! server's return page. So the provider adapter's signature check, the
//! webhook route and the return page all run exactly as with the real
//! provider; only the hosted page itself is replaced.
//!
//! [`StandInRedirect`] wraps the real provider adapter and changes nothing
//! but the hosted-page URL of a started payment, which it points at the
//! stand-in page. This module must never be wired when real provider keys
//! are configured.

pub mod maksekeskus;
pub mod stripe;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use billing_domain::{
    Payment, PaymentProvider, ProviderError, ProviderEvent, ProviderName, StartOutcome, StartRequest, WebhookRequest,
};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::html::{escape, Markup, Page};
use super::i18n::Lang;

/// The button the customer pressed on the stand-in page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandInOutcome {
    Paid,
    Canceled,
}

/// A stand-in failure for one reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandInError {
    #[error("the stand-in knows no payment with reference {reference}")]
    UnknownReference { reference: String },

    #[error("the stand-in has no card reader {reader} with a payment waiting")]
    UnknownReader { reader: String },

    #[error("the stand-in could not build the webhook: {reason}")]
    Webhook { reason: String },
}

/// The provider-specific half of a stand-in: what the page shows and which
/// signed webhook each button sends.
#[async_trait]
pub trait HostedStandIn: Send + Sync {
    /// The provider whose page this stands in for; also the webhook route's name.
    fn provider(&self) -> ProviderName;

    /// The provider's name as people know it ("Stripe").
    fn title(&self) -> &str;

    /// The amount to show for `reference`, such as "EUR 49.90".
    ///
    /// # Errors
    ///
    /// [`StandInError::UnknownReference`].
    async fn amount(&self, reference: &str) -> Result<String, StandInError>;

    /// The webhook the provider would send for `outcome`, signed as it signs them.
    ///
    /// # Errors
    ///
    /// [`StandInError`] naming what is missing.
    async fn webhook(&self, reference: &str, outcome: StandInOutcome) -> Result<WebhookRequest, StandInError>;

    /// The webhook the provider would send when a card is presented on
    /// (`Paid`) or declined by (`Canceled`) a card reader. Providers without
    /// card readers keep this default.
    ///
    /// # Errors
    ///
    /// [`StandInError::UnknownReader`] by default.
    async fn reader_webhook(&self, reader: &str, outcome: StandInOutcome) -> Result<WebhookRequest, StandInError> {
        let _ = outcome;
        Err(StandInError::UnknownReader { reader: reader.to_owned() })
    }
}

/// Wraps a real provider adapter and points its hosted-page redirects at a stand-in page.
pub struct StandInRedirect {
    inner: Arc<dyn PaymentProvider>,
    page_base: String,
}

impl StandInRedirect {
    /// `page_base` is the stand-in server's URL, such as `http://127.0.0.1:40123`.
    pub fn new(inner: Arc<dyn PaymentProvider>, page_base: impl Into<String>) -> StandInRedirect {
        StandInRedirect { inner, page_base: page_base.into() }
    }
}

impl fmt::Debug for StandInRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StandInRedirect")
            .field("provider", &self.inner.name())
            .field("page_base", &self.page_base)
            .finish()
    }
}

#[async_trait]
impl PaymentProvider for StandInRedirect {
    fn name(&self) -> ProviderName {
        self.inner.name()
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        match self.inner.start_payment(request).await? {
            StartOutcome::Redirect { reference, .. } => {
                let url = format!("{}/checkout/{}", self.page_base, encode(reference.as_str()));
                Ok(StartOutcome::Redirect { url, reference })
            }
            other => Ok(other),
        }
    }

    async fn verify_webhook(
        &self,
        request: &WebhookRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        self.inner.verify_webhook(request, now).await
    }

    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        self.inner.fetch_payment(payment).await
    }
}

#[derive(Clone)]
struct StandInState {
    stand_in: Arc<dyn HostedStandIn>,
    /// The workspace server's base URL, for the webhook and the return page.
    server_base: String,
    client: reqwest::Client,
}

/// A stand-in page server running in the background; dropping it stops it.
#[derive(Debug)]
pub struct RunningStandIn {
    provider: ProviderName,
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl RunningStandIn {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The provider whose pages this serves.
    pub fn provider(&self) -> &ProviderName {
        &self.provider
    }
}

/// Serves the stand-in page for `stand_in` on `listener`, delivering
/// webhooks to the workspace server at `server_base`.
///
/// # Errors
///
/// The listener's I/O errors.
pub fn spawn_stand_in(
    stand_in: Arc<dyn HostedStandIn>,
    listener: TcpListener,
    server_base: impl Into<String>,
) -> std::io::Result<RunningStandIn> {
    let address = listener.local_addr()?;
    let provider = stand_in.provider();
    let title = stand_in.title().to_owned();
    let state = StandInState { stand_in, server_base: server_base.into(), client: reqwest::Client::new() };
    let router = Router::new()
        .route("/checkout/{reference}", get(checkout_page))
        .route("/checkout/{reference}/pay", post(pay))
        .route("/checkout/{reference}/cancel", post(cancel))
        .route("/readers/{reader}", get(reader_page))
        .route("/readers/{reader}/present", post(present_card))
        .route("/readers/{reader}/decline", post(decline_card))
        .with_state(state);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tracing::warn!(%address, provider = %title, "local stand-in for the provider's hosted page is running; no money moves");
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "stand-in page server failed");
        }
    });
    Ok(RunningStandIn { provider, address, _stop: stop })
}

async fn checkout_page(State(state): State<StandInState>, Path(reference): Path<String>) -> Response {
    let title = state.stand_in.title().to_owned();
    let amount = match state.stand_in.amount(&reference).await {
        Ok(amount) => amount,
        Err(error) => return (StatusCode::NOT_FOUND, error.to_string()).into_response(),
    };
    let reference = escape(&encode(&reference));
    let body = Markup::raw(format!(
        "<p class=\"notice\" id=\"stand-in-notice\">Local stand-in for {title}'s hosted payment page. \
         No card is charged and no money moves; the buttons send the webhook {title} would send.</p>\n\
         <h1>{title} checkout (stand-in)</h1>\n<p class=\"amount\" id=\"stand-in-amount\">{amount}</p>\n\
         <form class=\"inline\" method=\"post\" action=\"/checkout/{reference}/pay\"><button id=\"stand-in-pay\">Pay</button></form>\n\
         <form class=\"inline\" method=\"post\" action=\"/checkout/{reference}/cancel\"><button id=\"stand-in-cancel\">Cancel</button></form>\n",
        title = escape(&title),
        amount = escape(&amount),
    ));
    Page::new(Lang::En, format!("{title} checkout (stand-in)"), body).into_response()
}

async fn pay(state: State<StandInState>, reference: Path<String>) -> Response {
    finish(state, reference, StandInOutcome::Paid).await
}

async fn cancel(state: State<StandInState>, reference: Path<String>) -> Response {
    finish(state, reference, StandInOutcome::Canceled).await
}

/// Delivers the signed webhook for `outcome`, then sends the browser to the return page.
async fn finish(State(state): State<StandInState>, Path(reference): Path<String>, outcome: StandInOutcome) -> Response {
    let webhook = match state.stand_in.webhook(&reference, outcome).await {
        Ok(webhook) => webhook,
        Err(error) => return (StatusCode::NOT_FOUND, error.to_string()).into_response(),
    };
    if let Err(failure) = deliver(&state, webhook, outcome).await {
        return failure;
    }
    let provider = state.stand_in.provider();
    let target = format!("{}/return/{provider}?reference={}", state.server_base, encode(&reference));
    Redirect::to(&target).into_response()
}

/// A simulated card reader: staff start a Terminal payment on it, then
/// present or decline a card here.
async fn reader_page(State(state): State<StandInState>, Path(reader): Path<String>) -> Response {
    let title = escape(state.stand_in.title());
    let reader = escape(&encode(&reader));
    let body = Markup::raw(format!(
        "<p class=\"notice\" id=\"stand-in-notice\">Local stand-in for a {title} card reader. \
         No card is charged and no money moves.</p>\n<h1>Reader {reader} (stand-in)</h1>\n\
         <form class=\"inline\" method=\"post\" action=\"/readers/{reader}/present\"><button>Present card</button></form>\n\
         <form class=\"inline\" method=\"post\" action=\"/readers/{reader}/decline\"><button>Decline card</button></form>\n"
    ));
    Page::new(Lang::En, format!("{} reader (stand-in)", state.stand_in.title()), body).into_response()
}

async fn present_card(state: State<StandInState>, reader: Path<String>) -> Response {
    reader_finish(state, reader, StandInOutcome::Paid).await
}

async fn decline_card(state: State<StandInState>, reader: Path<String>) -> Response {
    reader_finish(state, reader, StandInOutcome::Canceled).await
}

async fn reader_finish(
    State(state): State<StandInState>,
    Path(reader): Path<String>,
    outcome: StandInOutcome,
) -> Response {
    let webhook = match state.stand_in.reader_webhook(&reader, outcome).await {
        Ok(webhook) => webhook,
        Err(error) => return (StatusCode::NOT_FOUND, error.to_string()).into_response(),
    };
    if let Err(failure) = deliver(&state, webhook, outcome).await {
        return failure;
    }
    Redirect::to(&format!("/readers/{}", encode(&reader))).into_response()
}

/// Posts a signed webhook to the workspace server; a non-2xx answer becomes the page's answer.
async fn deliver(state: &StandInState, webhook: WebhookRequest, outcome: StandInOutcome) -> Result<(), Response> {
    let provider = state.stand_in.provider();
    let mut url = format!("{}/webhooks/{provider}", state.server_base);
    if let Some(query) = &webhook.query {
        url = format!("{url}?{query}");
    }
    let mut request = state.client.post(&url).body(webhook.body.clone());
    for (name, value) in &webhook.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) if response.status().is_success() => {
            tracing::info!(%provider, ?outcome, "stand-in delivered a signed webhook");
            Ok(())
        }
        Ok(response) => {
            let status = response.status();
            tracing::error!(%provider, status = status.as_u16(), "the workspace server rejected the stand-in's webhook");
            let text = format!("The workspace server returned {status} for the signed webhook; see its log.");
            Err((StatusCode::BAD_GATEWAY, text).into_response())
        }
        Err(error) => {
            tracing::error!(%provider, %error, "the stand-in could not reach the workspace server");
            Err((StatusCode::BAD_GATEWAY, format!("cannot reach the workspace server: {error}")).into_response())
        }
    }
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
