//! The Maksekeskus REST API: create, fetch and list transactions, create and
//! fetch refunds, with the request and response shapes they use.
//!
//! Every call carries HTTP Basic auth (shop id and secret key) and the
//! configured timeout. Every failure becomes a [`ProviderError`] that tells
//! whether the call may have taken effect: a create or refund whose response
//! never arrived is [`ProviderError::Timeout`], and a connection that was
//! never opened is [`ProviderError::Transport`]. Bodies are parsed whatever
//! the content type says, because single resources come back as
//! `application/hal+json`. This module never logs a body or the secret.

use std::error::Error as StdError;
use std::fmt;

use billing_domain::{ProviderError, ProviderName};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::Date;
use url::Url;

use crate::amount::WireDecimal;
use crate::config::{ConfigError, MaksekeskusConfig, SecretKey};

/// Field errors quoted from one error response, at most.
const FIELD_ERRORS_QUOTED_MAX: usize = 5;

/// A `POST /v1/transactions` body.
#[derive(Debug, Serialize)]
pub(crate) struct CreateTransactionBody {
    pub transaction: TransactionFields,
    pub customer: CustomerFields,
}

#[derive(Debug, Serialize)]
pub(crate) struct TransactionFields {
    /// A decimal string with two fraction digits, such as `"25.00"`.
    pub amount: String,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub merchant_data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction_url: Option<TransactionUrlFields>,
}

#[derive(Debug, Serialize)]
pub(crate) struct TransactionUrlFields {
    pub return_url: UrlField,
    pub cancel_url: UrlField,
    pub notification_url: UrlField,
}

#[derive(Debug, Serialize)]
pub(crate) struct UrlField {
    pub url: String,
    pub method: &'static str,
}

#[derive(Debug, Serialize)]
pub(crate) struct CustomerFields {
    pub ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// A transaction object, as create, fetch and list return it.
#[derive(Debug, Deserialize)]
pub(crate) struct TransactionWire {
    pub id: String,
    pub status: String,
    pub amount: Option<WireDecimal>,
    pub currency: Option<String>,
    pub merchant_data: Option<String>,
    pub completed_at: Option<String>,
    pub refunded_amount: Option<WireDecimal>,
    pub payment_methods: Option<PaymentMethodsWire>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PaymentMethodsWire {
    pub other: Option<Vec<PaymentMethodWire>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PaymentMethodWire {
    pub name: Option<String>,
    pub url: Option<String>,
}

/// One page of `GET /v1/transactions`.
#[derive(Debug)]
pub(crate) struct TransactionPage {
    pub transactions: Vec<TransactionWire>,
    /// The `X-Total-Count` header, when sent.
    pub total_count: Option<usize>,
}

/// A `POST /v1/transactions/{id}/refunds` body.
#[derive(Debug, Serialize)]
pub(crate) struct RefundBody {
    pub amount: String,
    pub comment: String,
}

/// A refund object.
#[derive(Debug, Deserialize)]
pub(crate) struct RefundWire {
    pub id: String,
    pub status: String,
    pub amount: Option<WireDecimal>,
    /// The refunded transaction: an object with `id` and `status`, or its id.
    pub transaction: Option<serde_json::Value>,
}

impl RefundWire {
    pub(crate) fn transaction_id(&self) -> Option<&str> {
        match self.transaction.as_ref()? {
            serde_json::Value::String(id) => Some(id),
            serde_json::Value::Object(object) => object.get("id")?.as_str(),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct ApiErrorWire {
    code: Option<serde_json::Value>,
    message: Option<String>,
    #[serde(default)]
    errors: Vec<ApiFieldErrorWire>,
}

#[derive(Deserialize)]
struct ApiFieldErrorWire {
    #[serde(rename = "type")]
    kind: Option<String>,
    parameter: Option<String>,
    expected: Option<serde_json::Value>,
}

/// The API call that is running, for error messages and for deciding whether
/// a lost response leaves the outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    CreateTransaction,
    GetTransaction,
    ListTransactions,
    CreateRefund,
    GetRefund,
}

impl Call {
    /// Whether the call changes state at Maksekeskus.
    fn mutates(self) -> bool {
        matches!(self, Call::CreateTransaction | Call::CreateRefund)
    }
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::CreateTransaction => "create transaction",
            Call::GetTransaction => "get transaction",
            Call::ListTransactions => "list transactions",
            Call::CreateRefund => "create refund",
            Call::GetRefund => "get refund",
        })
    }
}

/// An HTTP client bound to one shop.
#[derive(Clone)]
pub(crate) struct ApiClient {
    http: reqwest::Client,
    api_base: Url,
    shop_id: String,
    secret_key: SecretKey,
    provider: ProviderName,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient").field("api_base", &self.api_base.as_str()).finish_non_exhaustive()
    }
}

impl ApiClient {
    pub(crate) fn new(config: &MaksekeskusConfig, provider: ProviderName) -> Result<ApiClient, ConfigError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout())
            .connect_timeout(config.request_timeout())
            .build()
            .map_err(ConfigError::HttpClient)?;
        Ok(ApiClient {
            http,
            api_base: config.api_base().clone(),
            shop_id: config.shop_id().to_owned(),
            secret_key: config.secret_key().clone(),
            provider,
        })
    }

    pub(crate) async fn create_transaction(
        &self,
        body: &CreateTransactionBody,
    ) -> Result<TransactionWire, ProviderError> {
        let url = self.endpoint(&["transactions"])?;
        let request = self.http.post(url).json(body);
        self.send(request, Call::CreateTransaction).await.map(|(transaction, _)| transaction)
    }

    pub(crate) async fn transaction(&self, transaction_id: &str) -> Result<TransactionWire, ProviderError> {
        let url = self.endpoint(&["transactions", transaction_id])?;
        self.send(self.http.get(url), Call::GetTransaction).await.map(|(transaction, _)| transaction)
    }

    /// Lists one page of transactions created on or after `since`. Pages start at 1.
    pub(crate) async fn list_transactions(
        &self,
        since: Date,
        page: u32,
        per_page: u32,
    ) -> Result<TransactionPage, ProviderError> {
        let since = since.format(format_description!("[year]-[month]-[day]")).map_err(|error| {
            ProviderError::InvalidRequest { provider: self.provider.clone(), reason: format!("date {since}: {error}") }
        })?;
        let url = self.endpoint(&["transactions"])?;
        let query = [("since", since), ("page", page.to_string()), ("per_page", per_page.to_string())];
        let (transactions, headers) = self.send(self.http.get(url).query(&query), Call::ListTransactions).await?;
        let total_count = headers
            .get("x-total-count")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<usize>().ok());
        Ok(TransactionPage { transactions, total_count })
    }

    pub(crate) async fn create_refund(
        &self,
        transaction_id: &str,
        body: &RefundBody,
    ) -> Result<RefundWire, ProviderError> {
        let url = self.endpoint(&["transactions", transaction_id, "refunds"])?;
        self.send(self.http.post(url).json(body), Call::CreateRefund).await.map(|(refund, _)| refund)
    }

    pub(crate) async fn refund(&self, refund_id: &str) -> Result<RefundWire, ProviderError> {
        let url = self.endpoint(&["refunds", refund_id])?;
        self.send(self.http.get(url), Call::GetRefund).await.map(|(refund, _)| refund)
    }

    /// `{api base}/v1/{segments}`, each segment percent-encoded.
    fn endpoint(&self, segments: &[&str]) -> Result<Url, ProviderError> {
        let mut url = self.api_base.clone();
        let Ok(mut path) = url.path_segments_mut() else {
            return Err(ProviderError::InvalidRequest {
                provider: self.provider.clone(),
                reason: format!("API base URL {} cannot carry a path", self.api_base),
            });
        };
        path.pop_if_empty().push("v1").extend(segments);
        drop(path);
        Ok(url)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        call: Call,
    ) -> Result<(T, HeaderMap), ProviderError> {
        let request = request.basic_auth(&self.shop_id, Some(self.secret_key.expose()));
        let response = request.send().await.map_err(|error| self.transport_error(&error, call))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|error| self.transport_error(&error, call))?;

        if !status.is_success() {
            tracing::warn!(provider = %self.provider, call = %call, status = status.as_u16(), "Maksekeskus rejected a request");
            return Err(self.api_error(status, &body));
        }
        let parsed = serde_json::from_slice(&body).map_err(|error| ProviderError::UnexpectedResponse {
            provider: self.provider.clone(),
            reason: format!("{call} returned {status} with a body that is not the expected JSON: {error}"),
        })?;
        Ok((parsed, headers))
    }

    /// Classifies a failure to get a response. A request that never reached
    /// Maksekeskus is a definite failure. One whose response was lost may have
    /// taken effect if it changes state.
    fn transport_error(&self, error: &reqwest::Error, call: Call) -> ProviderError {
        let provider = self.provider.clone();
        let detail = error_chain(error);
        if error.is_connect() {
            return ProviderError::Transport { provider, reason: format!("{call}: could not connect: {detail}") };
        }
        if error.is_timeout() {
            return ProviderError::Timeout { provider, during: call.to_string() };
        }
        if call.mutates() {
            return ProviderError::Timeout { provider, during: format!("{call} (the response was lost: {detail})") };
        }
        ProviderError::Transport { provider, reason: format!("{call}: {detail}") }
    }

    fn api_error(&self, status: StatusCode, body: &[u8]) -> ProviderError {
        let mut message = match serde_json::from_slice::<ApiErrorWire>(body) {
            Ok(wire) => describe_api_error(&wire),
            Err(_) => "the error body carries no Maksekeskus error object".to_owned(),
        };
        if status == StatusCode::UNAUTHORIZED {
            message = format!("{message}; the shop id or secret key was rejected, check the configuration");
        }
        ProviderError::Api { provider: self.provider.clone(), status: status.as_u16(), message }
    }
}

fn describe_api_error(wire: &ApiErrorWire) -> String {
    let mut text = wire.message.clone().unwrap_or_else(|| "no message".to_owned());
    if let Some(code) = &wire.code {
        text.push_str(&format!(" (code {})", json_text(code)));
    }
    let fields: Vec<String> = wire
        .errors
        .iter()
        .take(FIELD_ERRORS_QUOTED_MAX)
        .map(|field| {
            let parameter = field.parameter.as_deref().unwrap_or("?");
            let kind = field.kind.as_deref().unwrap_or("invalid");
            match &field.expected {
                Some(expected) => format!("{parameter}: {kind}, expected {}", json_text(expected)),
                None => format!("{parameter}: {kind}"),
            }
        })
        .collect();
    if !fields.is_empty() {
        text.push_str(&format!("; {}", fields.join("; ")));
    }
    text
}

fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Joins the error's message and those of its sources with ": ".
pub(crate) fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
