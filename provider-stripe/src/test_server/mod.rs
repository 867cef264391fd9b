//! A local stand-in for the Stripe API endpoints this crate calls, and
//! helpers that build signed webhook events, for tests, examples and
//! benchmarks. Compiled only with the `test-server` feature.
//!
//! [`FakeStripe`] listens on 127.0.0.1 on an ephemeral port and replies with
//! objects built from the fixtures in `testdata/stripe`, so the real
//! async-stripe client does the HTTP. It records every request (method,
//! path, query, headers, decoded form body) for assertions, replays
//! responses for a repeated `Idempotency-Key` as Stripe does, and can move
//! its objects through the states a customer or reader would cause
//! ([`FakeStripe::pay_session`], [`FakeStripe::present_card`], ...). Those
//! methods return the object as Stripe would put it into a webhook;
//! [`event_envelope`] and [`signed_request`] wrap and sign it.
//!
//! It is a stand-in, not a simulator: it knows Checkout Sessions with
//! `price_data` or stored one-time Price line items, Prices, PaymentIntents,
//! charges, disputes and readers, and nothing else. It never contacts any other host.

mod state;
mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::Value;
use tokio::sync::oneshot;

use billing_domain::{PaymentId, WebhookRequest};

use crate::config::{ConfigError, Secret, StripeConfig};

pub use state::FakeError;
pub use webhooks::{event_envelope, signed_event, signed_request, Fixture};

use state::{ApiError, FakeState, Reply};

/// One request as the stand-in received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path, such as `/v1/checkout/sessions`.
    pub path: String,
    /// The raw query string without `?`.
    pub query: Option<String>,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The form body, percent-decoded, in order.
    pub form: Vec<(String, String)>,
}

impl RecordedRequest {
    /// Returns the first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }

    /// Returns the `Idempotency-Key` header.
    pub fn idempotency_key(&self) -> Option<&str> {
        self.header("idempotency-key")
    }

    /// Returns the first form value for `key` (such as `line_items[0][quantity]`).
    pub fn form_value(&self, key: &str) -> Option<&str> {
        self.form.iter().find(|(name, _)| name == key).map(|(_, value)| value.as_str())
    }

    /// Returns the form keys starting with `prefix`, such as every `metadata[...]` key.
    pub fn form_keys_with_prefix(&self, prefix: &str) -> Vec<&str> {
        self.form.iter().map(|(name, _)| name.as_str()).filter(|name| name.starts_with(prefix)).collect()
    }
}

/// The API key [`FakeStripe::config`] configures; the stand-in accepts any bearer key.
pub const TEST_SECRET_KEY: &str = "sk_test_stand_in";

/// The webhook signing secret [`FakeStripe::config`] configures and
/// [`FakeStripe::signed_webhook`] signs with.
pub const TEST_WEBHOOK_SECRET: &str = "whsec_test_stand_in";

/// The running stand-in. Dropping it stops the server.
#[derive(Debug)]
pub struct FakeStripe {
    address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeStripe {
    /// Starts the stand-in on 127.0.0.1 on a free port.
    ///
    /// # Errors
    ///
    /// The I/O error when no local port can be bound.
    pub async fn start() -> std::io::Result<FakeStripe> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(FakeState::new(format!("http://{address}/"))));

        let router = Router::new().fallback(answer).with_state(Arc::clone(&state));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let server = axum::serve(listener, router).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::warn!(%error, "fake Stripe server stopped with an error");
            }
        });
        Ok(FakeStripe { address, state, shutdown: Some(shutdown) })
    }

    /// Returns the base URL to configure with
    /// [`crate::StripeConfig::with_api_base`], such as `http://127.0.0.1:40123/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Builds a provider configuration pointed at this stand-in, with
    /// [`TEST_SECRET_KEY`] and [`TEST_WEBHOOK_SECRET`].
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for a success URL without `{CHECKOUT_SESSION_ID}` or a
    /// URL that is not `http(s)://`.
    pub fn config(&self, success_url: &str, cancel_url: &str) -> Result<StripeConfig, ConfigError> {
        StripeConfig::new(Secret::new(TEST_SECRET_KEY), Secret::new(TEST_WEBHOOK_SECRET), success_url, cancel_url)?
            .with_api_base(self.base_url())
    }

    /// Wraps `object` in an event envelope created at `timestamp` and signs
    /// it with [`TEST_WEBHOOK_SECRET`] at the same time, as Stripe would
    /// deliver it.
    ///
    /// # Errors
    ///
    /// [`FakeError::Serialise`] when the object cannot be written as JSON.
    pub fn signed_webhook(
        &self,
        event_id: &str,
        event_type: &str,
        object: Value,
        timestamp: i64,
    ) -> Result<WebhookRequest, FakeError> {
        signed_event(&event_envelope(event_id, event_type, timestamp, object), TEST_WEBHOOK_SECRET, timestamp)
    }

    /// The id of the Checkout Session created for `payment_id`, found by its
    /// `client_reference_id`.
    pub fn session_id_for_payment(&self, payment_id: PaymentId) -> Option<String> {
        let payment_id = payment_id.to_string();
        let state = self.lock();
        let mut sessions = state.sessions.values();
        let session =
            sessions.find(|session| session.get("client_reference_id").and_then(Value::as_str) == Some(&payment_id))?;
        session.get("id").and_then(Value::as_str).map(str::to_owned)
    }

    /// Returns every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Delays every response by `delay`, to provoke client timeouts.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Fails the next API request with a Stripe error.
    pub fn fail_next(&self, status: u16, code: &str, message: &str) {
        self.lock().failures.push_back((None, ApiError::new(status, error_type(status), code, message)));
    }

    /// Fails the next API request whose path contains `path`, such as
    /// `"/process_payment_intent"`, with a Stripe error.
    pub fn fail_next_on(&self, path: &str, status: u16, code: &str, message: &str) {
        let failure = ApiError::new(status, error_type(status), code, message);
        self.lock().failures.push_back((Some(path.to_owned()), failure));
    }

    /// Sets the stand-in's clock, in Unix seconds (`created` fields and expiry).
    pub fn set_time(&self, unix_secs: i64) {
        self.lock().now = unix_secs;
    }

    /// Returns a Checkout Session as stored.
    pub fn session(&self, id: &str) -> Option<Value> {
        self.lock().sessions.get(id).cloned()
    }

    /// Returns a PaymentIntent as stored.
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        self.lock().intents.get(id).cloned()
    }

    /// Returns a charge as stored.
    pub fn charge(&self, id: &str) -> Option<Value> {
        self.lock().charges.get(id).cloned()
    }

    /// Pays the session as a customer would: it becomes `complete`/`paid`, with a
    /// succeeded PaymentIntent and charge carrying the session's
    /// `payment_intent_data` metadata. Returns the session.
    ///
    /// # Errors
    ///
    /// [`FakeError`] for an unknown session or one that is not open.
    pub fn pay_session(&self, session_id: &str) -> Result<Value, FakeError> {
        self.lock().pay_session(session_id)
    }

    /// Completes the session with a delayed payment method: it becomes
    /// `complete`/`unpaid` and its PaymentIntent `processing`. Returns the session.
    ///
    /// # Errors
    ///
    /// [`FakeError`] for an unknown session or one that is not open.
    pub fn complete_session_unpaid(&self, session_id: &str) -> Result<Value, FakeError> {
        self.lock().complete_session_unpaid(session_id)
    }

    /// Settles the delayed payment (`async_payment_succeeded`). Returns the session.
    ///
    /// # Errors
    ///
    /// [`FakeError`] unless the session is `complete`/`unpaid`.
    pub fn settle_async_payment(&self, session_id: &str) -> Result<Value, FakeError> {
        self.lock().settle_async_payment(session_id)
    }

    /// Fails the delayed payment (`async_payment_failed`). Returns the session.
    ///
    /// # Errors
    ///
    /// [`FakeError`] unless the session is `complete`/`unpaid`.
    pub fn fail_async_payment(&self, session_id: &str) -> Result<Value, FakeError> {
        self.lock().fail_async_payment(session_id)
    }

    /// Expires the session unpaid. Returns the session.
    ///
    /// # Errors
    ///
    /// [`FakeError`] for an unknown session or one that is not open.
    pub fn expire_session(&self, session_id: &str) -> Result<Value, FakeError> {
        self.lock().expire_session(session_id)
    }

    /// Refunds `amount_minor` of the PaymentIntent's charge. Returns the charge,
    /// whose `amount_refunded` is cumulative, as in `charge.refunded`.
    ///
    /// # Errors
    ///
    /// [`FakeError`] without a charge, or when the refunds would exceed it.
    pub fn refund(&self, payment_intent_id: &str, amount_minor: i64) -> Result<Value, FakeError> {
        self.lock().refund(payment_intent_id, amount_minor)
    }

    /// Opens a dispute on the PaymentIntent's charge in `status` (`needs_response`,
    /// `won`, `lost`, ...), or moves the charge's dispute to `status` when it
    /// has one. Returns the dispute, as in `charge.dispute.*`; `GET
    /// /v1/disputes` lists it.
    ///
    /// # Errors
    ///
    /// [`FakeError`] without a charge.
    pub fn dispute(&self, payment_intent_id: &str, status: &str) -> Result<Value, FakeError> {
        self.lock().dispute(payment_intent_id, status)
    }

    /// Stores a one-time, per-unit Price, for line items that name it and
    /// for `GET /v1/prices/{id}`. Returns the Price.
    pub fn add_price(&self, id: &str, product: &str, currency: &str, unit_amount: i64) -> Value {
        self.lock().add_price(id, product, currency, unit_amount)
    }

    /// Changes one field of a stored Price (`active`, `type`, ...).
    pub fn set_price_field(&self, id: &str, field: &str, value: Value) {
        if let Some(Value::Object(price)) = self.lock().prices.get_mut(id) {
            price.insert(field.to_owned(), value);
        }
    }

    /// Presents a card on a reader that is processing a PaymentIntent:
    /// the PaymentIntent succeeds and the action too. Returns the reader.
    ///
    /// # Errors
    ///
    /// [`FakeError`] unless the reader is processing a PaymentIntent.
    pub fn present_card(&self, reader_id: &str) -> Result<Value, FakeError> {
        self.lock().finish_reader_action(reader_id, true)
    }

    /// Declines the card on a reader: the action fails and the
    /// PaymentIntent records the error. Returns the reader.
    ///
    /// # Errors
    ///
    /// [`FakeError`] unless the reader is processing a PaymentIntent.
    pub fn decline_card(&self, reader_id: &str) -> Result<Value, FakeError> {
        self.lock().finish_reader_action(reader_id, false)
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stripe's error `type` for a status: `api_error` for its own failures,
/// `invalid_request_error` for the caller's.
fn error_type(status: u16) -> &'static str {
    if status >= 500 {
        "api_error"
    } else {
        "invalid_request_error"
    }
}

impl Drop for FakeStripe {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn answer(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect(),
        form: form_urlencoded::parse(&body).into_owned().collect(),
    };

    let (delay, result) = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let result = state.handle(&request);
        state.requests.push(request);
        (state.delay, result)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let (status, content_type, body) = match result {
        Ok(Reply::Json(body)) => (StatusCode::OK, "application/json", body.to_string()),
        Ok(Reply::Html(page)) => (StatusCode::OK, "text/html; charset=utf-8", page),
        Err(error) => (
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_REQUEST),
            "application/json",
            error.body().to_string(),
        ),
    };
    let mut response = (status, body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
