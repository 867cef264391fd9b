//! A provider whose webhooks carry an HMAC-SHA256 signature, for load runs.
//!
//! The load harness needs every event to pass real signature verification,
//! while the real provider adapters start payments through provider APIs
//! that a load run on one machine does not have. [`SignedProvider`] signs and verifies the way hosted-page
//! providers do: the header `x-bench-signature: t=<unix seconds>,v1=<hex>`
//! carries HMAC-SHA256 over `"<t>.<body>"` with a shared secret, checked in
//! constant time and rejected outside a replay window. The body is a
//! JSON-encoded [`ProviderEvent`]. Starting a payment returns a redirect
//! whose reference derives from the payment id. It must never be registered
//! in production: it is a load-test double, not a provider integration.

use std::fmt;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;

use billing_domain::provider::{Operation, PaymentProvider, ProviderError, StartOutcome, StartRequest, WebhookRequest};
use billing_domain::{Payment, ProviderEvent, ProviderName, ProviderReference};

/// The header carrying the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "x-bench-signature";

/// How far a signature's timestamp may be from the verifier's clock.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

/// See the module documentation. `Debug` does not print the secret.
pub struct SignedProvider {
    name: ProviderName,
    /// The MAC keyed with the shared secret, cloned for each message.
    keyed: HmacSha256,
}

impl fmt::Debug for SignedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedProvider").field("name", &self.name).finish_non_exhaustive()
    }
}

impl SignedProvider {
    /// A provider registered as `name` that signs and verifies with `secret`.
    ///
    /// # Errors
    ///
    /// [`hmac::digest::InvalidLength`], which HMAC never returns in practice
    /// because it accepts keys of any length.
    pub fn new(name: ProviderName, secret: &[u8]) -> Result<SignedProvider, hmac::digest::InvalidLength> {
        Ok(SignedProvider { name, keyed: <HmacSha256 as Mac>::new_from_slice(secret)? })
    }

    /// The webhook a provider would send for `event`, signed at `now`.
    ///
    /// # Errors
    ///
    /// [`serde_json::Error`] when the event cannot be encoded.
    pub fn signed_webhook(
        &self,
        event: &ProviderEvent,
        now: OffsetDateTime,
    ) -> Result<WebhookRequest, serde_json::Error> {
        let body = serde_json::to_vec(event)?;
        let timestamp = now.unix_timestamp();
        let signature = hex::encode(self.mac(timestamp, &body).finalize().into_bytes());
        Ok(WebhookRequest {
            headers: vec![(SIGNATURE_HEADER.to_owned(), format!("t={timestamp},v1={signature}"))],
            query: None,
            body,
        })
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    fn verify(&self, request: &WebhookRequest, now: OffsetDateTime) -> Result<(), String> {
        let header = request.header(SIGNATURE_HEADER).ok_or_else(|| format!("missing {SIGNATURE_HEADER} header"))?;
        let (timestamp, signature) = parse_signature_header(header)?;
        if (now.unix_timestamp() - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
            return Err(format!("signature timestamp {timestamp} is outside the {SIGNATURE_TOLERANCE_SECS} s window"));
        }
        let expected = hex::decode(signature).map_err(|_| "signature is not hex".to_owned())?;
        self.mac(timestamp, &request.body).verify_slice(&expected).map_err(|_| "signature does not match".to_owned())
    }
}

/// Splits `t=<seconds>,v1=<hex>` into its two parts.
fn parse_signature_header(header: &str) -> Result<(i64, &str), String> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signature = Some(value),
            _ => {}
        }
    }
    match (timestamp, signature) {
        (Some(timestamp), Some(signature)) => Ok((timestamp, signature)),
        _ => Err(format!("{SIGNATURE_HEADER} header needs t=<seconds> and v1=<hex>")),
    }
}

#[async_trait]
impl PaymentProvider for SignedProvider {
    fn name(&self) -> ProviderName {
        self.name.clone()
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let reference = ProviderReference::new(format!("bench-{}", request.payment_id)).map_err(|error| {
            ProviderError::InvalidRequest { provider: self.name.clone(), reason: error.to_string() }
        })?;
        Ok(StartOutcome::Redirect { url: format!("https://pay.invalid/{reference}"), reference })
    }

    async fn verify_webhook(
        &self,
        request: &WebhookRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        self.verify(request, now).map_err(|reason| ProviderError::InvalidWebhook { reason })?;
        let event: ProviderEvent = serde_json::from_slice(&request.body)
            .map_err(|error| ProviderError::InvalidWebhook { reason: format!("body is not an event: {error}") })?;
        if event.provider != self.name {
            return Err(ProviderError::InvalidWebhook { reason: format!("event names provider {}", event.provider) });
        }
        Ok(vec![event])
    }

    async fn fetch_payment(&self, _payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Unsupported { provider: self.name.clone(), operation: Operation::Fetch })
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::event::{EventKind, PaymentMatch};
    use billing_domain::EventId;

    use super::*;

    fn provider() -> SignedProvider {
        SignedProvider::new(ProviderName::new("bench").unwrap(), b"secret").unwrap()
    }

    fn event() -> ProviderEvent {
        ProviderEvent {
            provider: ProviderName::new("bench").unwrap(),
            event_id: EventId::new("evt_1").unwrap(),
            occurred_at: OffsetDateTime::UNIX_EPOCH,
            matches: PaymentMatch::default(),
            kind: EventKind::Pending,
            amount: None,
            provider_type: "payment.pending".into(),
        }
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000)
    }

    #[tokio::test]
    async fn signed_webhook_verifies() {
        let request = provider().signed_webhook(&event(), now()).unwrap();
        assert_eq!(provider().verify_webhook(&request, now()).await.unwrap(), vec![event()]);
    }

    #[tokio::test]
    async fn tampered_body_is_rejected() {
        let mut request = provider().signed_webhook(&event(), now()).unwrap();
        request.body[10] ^= 1;
        let error = provider().verify_webhook(&request, now()).await.unwrap_err();
        assert_eq!(error, ProviderError::InvalidWebhook { reason: "signature does not match".into() });
    }

    #[tokio::test]
    async fn other_secret_and_old_timestamp_are_rejected() {
        let request = SignedProvider::new(ProviderName::new("bench").unwrap(), b"other")
            .unwrap()
            .signed_webhook(&event(), now())
            .unwrap();
        assert!(provider().verify_webhook(&request, now()).await.is_err());

        let request = provider().signed_webhook(&event(), now()).unwrap();
        let later = now() + time::Duration::seconds(SIGNATURE_TOLERANCE_SECS + 1);
        let error = provider().verify_webhook(&request, later).await.unwrap_err();
        assert!(error.to_string().contains("outside the 300 s window"), "{error}");
    }

    #[tokio::test]
    async fn missing_header_is_rejected() {
        let mut request = provider().signed_webhook(&event(), now()).unwrap();
        request.headers.clear();
        let error = provider().verify_webhook(&request, now()).await.unwrap_err();
        assert!(error.to_string().contains("missing x-bench-signature"), "{error}");
    }
}
