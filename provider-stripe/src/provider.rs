//! [`StripeProvider`]: the domain's [`PaymentProvider`] port over Stripe's API.
//!
//! It owns the async-stripe client and the webhook verifier, and maps every
//! Stripe error to a [`ProviderError`]. It never touches the store: the
//! service applies what it reports. The operations themselves live in
//! `checkout`, `terminal` and `fetch`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;

use billing_domain::provider::Operation;
use billing_domain::service::Clock;
use billing_domain::{
    Channel, Payment, PaymentProvider, ProviderError, ProviderEvent, ProviderName, StartOutcome, StartRequest,
    WebhookRequest,
};

use crate::config::{ConfigError, StripeConfig};
use crate::webhook::{Normalised, WebhookError, WebhookVerifier};
use crate::PROVIDER_NAME;

/// The Stripe adapter. Cheap to share behind an `Arc`.
pub struct StripeProvider {
    pub(crate) config: StripeConfig,
    pub(crate) client: stripe::Client,
    pub(crate) verifier: WebhookVerifier,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) name: ProviderName,
}

impl fmt::Debug for StripeProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl StripeProvider {
    /// Builds the adapter. `clock` dates the events built from fetches, which
    /// report a state observed now rather than a moment Stripe names.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Client`] when the HTTP client cannot be built (a secret
    /// key with characters a header cannot carry, an invalid API base).
    pub fn new(config: StripeConfig, clock: Arc<dyn Clock>) -> Result<StripeProvider, ConfigError> {
        ensure_crypto_provider();

        let mut builder = stripe::ClientBuilder::new(config.secret_key().expose()).timeout(config.request_timeout());
        if let Some(base) = config.api_base() {
            builder = builder.url(base);
        }
        let client = builder.build().map_err(|error| ConfigError::Client { reason: error.to_string() })?;
        let name =
            ProviderName::new(PROVIDER_NAME).map_err(|error| ConfigError::Client { reason: error.to_string() })?;

        Ok(StripeProvider { verifier: WebhookVerifier::from_config(&config), config, client, clock, name })
    }

    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    /// The verifier this provider checks webhooks with, for callers that
    /// verify without the service.
    pub fn verifier(&self) -> &WebhookVerifier {
        &self.verifier
    }

    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> ProviderName {
        self.name.clone()
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        match &request.channel {
            Channel::HostedPage => self.start_checkout(request).await,
            Channel::Terminal { reader } => self.start_terminal(request, reader).await,
            Channel::Free => Err(self.unsupported(Operation::StartFree)),
            Channel::Manual { .. } => Err(self.unsupported(Operation::StartManual)),
        }
    }

    async fn verify_webhook(
        &self,
        request: &WebhookRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        let verified = self.verifier.verify(request, now).map_err(invalid_webhook)?;
        let event = match verified.normalise().map_err(invalid_webhook)? {
            Normalised::Event(event) => event,
            Normalised::NeedsPaymentIntent(pending) => {
                let intent = self.retrieve_intent(pending.payment_intent_id(), false).await?;
                pending.complete(&intent).map_err(invalid_webhook)?
            }
        };
        tracing::debug!(
            event_id = %event.event_id,
            event_type = %event.provider_type,
            kind = %event.kind,
            payment_id = event.matches.payment_id.map(tracing::field::display),
            "stripe webhook verified"
        );
        Ok(vec![event])
    }

    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        self.fetch(payment).await
    }
}

impl StripeProvider {
    pub(crate) fn unsupported(&self, operation: Operation) -> ProviderError {
        ProviderError::Unsupported { provider: self.name.clone(), operation }
    }

    /// Builds an idempotency key. Keys are a short prefix and a UUID, so
    /// they are never empty or longer than Stripe's 255 characters.
    pub(crate) fn idempotency_key(&self, key: &str) -> Result<stripe::IdempotencyKey, ProviderError> {
        stripe::IdempotencyKey::new(key).map_err(|error| self.invalid_request(error))
    }

    pub(crate) fn invalid_request(&self, reason: impl fmt::Display) -> ProviderError {
        ProviderError::InvalidRequest { provider: self.name.clone(), reason: reason.to_string() }
    }

    /// Maps an async-stripe error. With [`Ambiguity::MayHaveTakenEffect`], a
    /// lost connection or a 5xx answer counts as a timeout, because Stripe may
    /// have acted before the answer was lost.
    pub(crate) fn api_error(&self, error: stripe::StripeError, during: &str, ambiguity: Ambiguity) -> ProviderError {
        let provider = self.name.clone();
        let may_have_acted = ambiguity == Ambiguity::MayHaveTakenEffect;
        match error {
            stripe::StripeError::Timeout => ProviderError::Timeout { provider, during: during.to_owned() },
            stripe::StripeError::ClientError(reason) if may_have_acted => {
                ProviderError::Timeout { provider, during: format!("{during} (connection failed: {reason})") }
            }
            stripe::StripeError::ClientError(reason) => ProviderError::Transport { provider, reason },
            // Stripe returns `terminal_reader_timeout` when the reader did not
            // respond in time, and the reader may have received the action anyway.
            stripe::StripeError::Stripe(api, status)
                if may_have_acted
                    && (status >= 500 || api.code == Some(stripe::ApiErrorsCode::TerminalReaderTimeout)) =>
            {
                ProviderError::Timeout {
                    provider,
                    during: format!("{during} (status {status}: {})", api_message(&api)),
                }
            }
            stripe::StripeError::Stripe(api, status) => {
                ProviderError::Api { provider, status, message: format!("{during}: {}", api_message(&api)) }
            }
            stripe::StripeError::JSONDeserialize(reason) => {
                ProviderError::UnexpectedResponse { provider, reason: format!("{during}: {reason}") }
            }
            stripe::StripeError::ConfigError(reason) => ProviderError::InvalidRequest { provider, reason },
        }
    }
}

/// Whether a failed call may still have taken effect at Stripe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ambiguity {
    /// A read, or a create whose result nobody can use without its answer.
    None,
    /// The call may have started something the customer can act on (a reader
    /// prompting for a card).
    MayHaveTakenEffect,
}

fn api_message(api: &stripe::ApiErrors) -> String {
    let code = api.code.as_ref().map(|code| code.as_str().to_owned());
    match (api.message.as_deref(), code) {
        (Some(message), Some(code)) => format!("{message} ({code})"),
        (Some(message), None) => message.to_owned(),
        (None, Some(code)) => code,
        (None, None) => "no error message".to_owned(),
    }
}

fn invalid_webhook(error: WebhookError) -> ProviderError {
    ProviderError::InvalidWebhook { reason: error.to_string() }
}

/// Installs ring as rustls' process-wide crypto provider when none is set.
///
/// rustls picks its provider from crate features; when another crate in the
/// same binary enables a second provider (aws-lc-rs), rustls can no longer
/// choose and panics on the first TLS configuration unless one is installed.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed a provider first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
