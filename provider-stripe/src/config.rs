//! Configuration of the Stripe adapter, validated once when it is built.
//!
//! Secrets live in [`Secret`], whose `Debug` prints only that a value is
//! there; nothing in this crate formats a secret into a log line or an error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use billing_domain::RowKind;

/// Stripe's default replay window for webhook signatures, in seconds.
pub const DEFAULT_SIGNATURE_TOLERANCE_SECS: u64 = 300;

/// How long one HTTP attempt to Stripe may take unless configured otherwise.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;

/// The placeholder Stripe replaces with the Checkout Session id when it
/// redirects the customer to the success URL.
pub const CHECKOUT_SESSION_ID_PLACEHOLDER: &str = "{CHECKOUT_SESSION_ID}";

/// Stripe accepts a Checkout Session expiry from 30 minutes to 24 hours after creation.
const CHECKOUT_EXPIRY_MIN_SECS: u64 = 30 * 60;
const CHECKOUT_EXPIRY_MAX_SECS: u64 = 24 * 60 * 60;

/// A secret string (API key, webhook signing secret). `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send or key with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// What the single line item on the hosted Checkout page shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LineItemLabel {
    /// "Invoice {number}", so no row text reaches Stripe.
    #[default]
    InvoiceNumber,
    /// A Stripe Product (`prod_...`) whose name and image the page shows; the
    /// amount is still the invoice total.
    Product(String),
}

/// The entry of the Stripe catalogue that Checkout line items for one
/// [`RowKind`] point at. Either way the customer pays the invoice's own
/// amounts: a reference names what is sold, it never sets a price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowReference {
    /// A one-time Price (`price_...`). Stripe charges a Price's own unit
    /// amount, so the adapter retrieves it at each start and uses it only
    /// when it matches the row: same currency, same unit amount, per-unit
    /// billing and a whole quantity. Otherwise the row is charged at its own
    /// amounts against the Price's Product, and a warning is logged. A
    /// Price that cannot be retrieved fails the start with Stripe's error,
    /// so a mistyped or test-mode id shows up at the first payment.
    Price(String),
    /// A Product (`prod_...`) whose name and image the page shows, charged at
    /// the row's own unit price.
    Product(String),
}

impl RowReference {
    /// Returns the Stripe id.
    pub fn id(&self) -> &str {
        match self {
            RowReference::Price(id) | RowReference::Product(id) => id,
        }
    }
}

/// Everything the adapter needs to talk to one Stripe account.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    secret_key: Secret,
    webhook_secrets: Vec<Secret>,
    success_url: String,
    cancel_url: String,
    line_item: LineItemLabel,
    row_references: BTreeMap<RowKind, RowReference>,
    api_base: Option<String>,
    signature_tolerance: Duration,
    checkout_expiry: Option<Duration>,
    request_timeout: Duration,
}

impl StripeConfig {
    /// Builds a configuration with one webhook signing secret and the defaults:
    /// a 300 s signature tolerance, Stripe's own 24 h Checkout expiry, a 30 s
    /// request timeout, generic line items and the public Stripe API.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for an empty key or secret, a success URL without
    /// `{CHECKOUT_SESSION_ID}`, or a URL that is not `http(s)://`.
    pub fn new(
        secret_key: Secret,
        webhook_secret: Secret,
        success_url: impl Into<String>,
        cancel_url: impl Into<String>,
    ) -> Result<StripeConfig, ConfigError> {
        if secret_key.expose().trim().is_empty() {
            return Err(ConfigError::Empty { field: "secret key" });
        }
        check_webhook_secret(&webhook_secret)?;
        let success_url = success_url.into();
        let cancel_url = cancel_url.into();
        check_url("success_url", &success_url)?;
        check_url("cancel_url", &cancel_url)?;
        if !success_url.contains(CHECKOUT_SESSION_ID_PLACEHOLDER) {
            return Err(ConfigError::SuccessUrlWithoutSessionId { url: success_url });
        }

        Ok(StripeConfig {
            secret_key,
            webhook_secrets: vec![webhook_secret],
            success_url,
            cancel_url,
            line_item: LineItemLabel::default(),
            row_references: BTreeMap::new(),
            api_base: None,
            signature_tolerance: Duration::from_secs(DEFAULT_SIGNATURE_TOLERANCE_SECS),
            checkout_expiry: None,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
        })
    }

    /// Adds another accepted webhook signing secret, so an endpoint's secret
    /// can be rotated without rejecting events signed with the old one.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Empty`] for an empty secret.
    pub fn with_webhook_secret(mut self, secret: Secret) -> Result<StripeConfig, ConfigError> {
        check_webhook_secret(&secret)?;
        self.webhook_secrets.push(secret);
        Ok(self)
    }

    /// Sends API requests to `base` instead of `https://api.stripe.com/`, for a
    /// local stand-in. A base with a path must end in `/`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] unless `base` starts with `http://` or `https://`.
    pub fn with_api_base(mut self, base: impl Into<String>) -> Result<StripeConfig, ConfigError> {
        let base = base.into();
        check_url("api base", &base)?;
        self.api_base = Some(base);
        Ok(self)
    }

    /// Sets how far a signature's timestamp may be from the clock reading.
    pub fn with_signature_tolerance(mut self, tolerance: Duration) -> StripeConfig {
        self.signature_tolerance = tolerance;
        self
    }

    /// Makes Checkout Sessions expire `expiry` after creation.
    ///
    /// # Errors
    ///
    /// [`ConfigError::CheckoutExpiryOutOfRange`] outside 30 minutes to 24 hours.
    pub fn with_checkout_expiry(mut self, expiry: Duration) -> Result<StripeConfig, ConfigError> {
        let secs = expiry.as_secs();
        if !(CHECKOUT_EXPIRY_MIN_SECS..=CHECKOUT_EXPIRY_MAX_SECS).contains(&secs) {
            return Err(ConfigError::CheckoutExpiryOutOfRange { secs });
        }
        self.checkout_expiry = Some(expiry);
        Ok(self)
    }

    /// Sets what the Checkout line item shows when the invoice is charged as
    /// one line, and what rows of a kind without a reference show when it is
    /// itemised.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStripeId`] for a product id that is empty or not
    /// made of letters, digits, `_` and `-`.
    pub fn with_line_item(mut self, label: LineItemLabel) -> Result<StripeConfig, ConfigError> {
        if let LineItemLabel::Product(product) = &label {
            check_stripe_id("line item product id", product)?;
        }
        self.line_item = label;
        Ok(self)
    }

    /// Points the Checkout line items of rows of `kind` at a Price or Product.
    ///
    /// Once any kind has a reference, Checkout shows one line item per
    /// invoice row instead of a single line for the total. An invoice
    /// Checkout cannot itemise (a negative discount row, more than 100 rows)
    /// is still charged as one line, with a warning logged.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidStripeId`] for an id that is empty or not made
    /// of letters, digits, `_` and `-`.
    pub fn with_row_reference(mut self, kind: RowKind, reference: RowReference) -> Result<StripeConfig, ConfigError> {
        let field = match reference {
            RowReference::Price(_) => "row price id",
            RowReference::Product(_) => "row product id",
        };
        check_stripe_id(field, reference.id())?;
        self.row_references.insert(kind, reference);
        Ok(self)
    }

    /// Sets how long one HTTP attempt to Stripe may take before the call
    /// counts as timed out (and its outcome as unknown).
    pub fn with_request_timeout(mut self, timeout: Duration) -> StripeConfig {
        self.request_timeout = timeout;
        self
    }

    pub fn secret_key(&self) -> &Secret {
        &self.secret_key
    }

    pub fn webhook_secrets(&self) -> &[Secret] {
        &self.webhook_secrets
    }

    pub fn success_url(&self) -> &str {
        &self.success_url
    }

    pub fn cancel_url(&self) -> &str {
        &self.cancel_url
    }

    pub fn line_item(&self) -> &LineItemLabel {
        &self.line_item
    }

    /// Returns the reference that rows of `kind` use, if one is configured.
    pub fn row_reference(&self, kind: RowKind) -> Option<&RowReference> {
        self.row_references.get(&kind)
    }

    /// Returns whether Checkout shows one line item per invoice row.
    pub fn itemises_rows(&self) -> bool {
        !self.row_references.is_empty()
    }

    pub fn api_base(&self) -> Option<&str> {
        self.api_base.as_deref()
    }

    pub fn signature_tolerance(&self) -> Duration {
        self.signature_tolerance
    }

    pub fn checkout_expiry(&self) -> Option<Duration> {
        self.checkout_expiry
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

fn check_webhook_secret(secret: &Secret) -> Result<(), ConfigError> {
    if secret.expose().trim().is_empty() {
        return Err(ConfigError::Empty { field: "webhook signing secret" });
    }
    Ok(())
}

/// Checks an id that goes into a URL path (`/v1/prices/{id}`), allowing
/// only the characters of Stripe's generated ids.
fn check_stripe_id(field: &'static str, id: &str) -> Result<(), ConfigError> {
    let valid = !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if !valid {
        return Err(ConfigError::InvalidStripeId { field, id: id.to_owned() });
    }
    Ok(())
}

fn check_url(field: &'static str, url: &str) -> Result<(), ConfigError> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(ConfigError::InvalidUrl { field, url: url.to_owned() });
    }
    Ok(())
}

/// Why a Stripe configuration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the {field} must not be empty")]
    Empty { field: &'static str },

    #[error("{field} {url:?} is not an http:// or https:// URL")]
    InvalidUrl { field: &'static str, url: String },

    #[error(
        "success_url {url:?} lacks the {{CHECKOUT_SESSION_ID}} placeholder; \
         add it so the return page can confirm the session"
    )]
    SuccessUrlWithoutSessionId { url: String },

    #[error("a Checkout expiry of {secs} s is outside Stripe's range of 1800 to 86400 s")]
    CheckoutExpiryOutOfRange { secs: u64 },

    #[error("{field} {id:?} is not a Stripe id; copy it from the Dashboard (letters, digits, `_` and `-`)")]
    InvalidStripeId { field: &'static str, id: String },

    #[error("the Stripe client could not be built: {reason}")]
    Client { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> StripeConfig {
        StripeConfig::new(
            Secret::new("sk_test_123"),
            Secret::new("whsec_abc"),
            "https://shop.example/paid?session={CHECKOUT_SESSION_ID}",
            "https://shop.example/cancel",
        )
        .unwrap()
    }

    #[test]
    fn debug_redacts_secrets() {
        let config = config().with_webhook_secret(Secret::new("whsec_second")).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("sk_test_123"), "{printed}");
        assert!(!printed.contains("whsec_abc"), "{printed}");
        assert!(!printed.contains("whsec_second"), "{printed}");
        assert!(printed.contains("redacted"), "{printed}");
    }

    #[test]
    fn success_url_needs_session_placeholder() {
        let error = StripeConfig::new(
            Secret::new("sk_test_123"),
            Secret::new("whsec_abc"),
            "https://shop.example/paid",
            "https://shop.example/cancel",
        )
        .unwrap_err();
        assert!(matches!(error, ConfigError::SuccessUrlWithoutSessionId { .. }));
        assert!(error.to_string().contains("{CHECKOUT_SESSION_ID}"), "{error}");
    }

    #[test]
    fn empty_secrets_are_rejected() {
        let error = StripeConfig::new(
            Secret::new(" "),
            Secret::new("whsec_abc"),
            "https://a/{CHECKOUT_SESSION_ID}",
            "https://a",
        )
        .unwrap_err();
        assert_eq!(error, ConfigError::Empty { field: "secret key" });
        assert_eq!(
            config().with_webhook_secret(Secret::new("")).unwrap_err(),
            ConfigError::Empty { field: "webhook signing secret" }
        );
    }

    #[test]
    fn checkout_expiry_follows_stripe_range() {
        assert!(config().with_checkout_expiry(Duration::from_secs(3600)).is_ok());
        assert_eq!(
            config().with_checkout_expiry(Duration::from_secs(60)).unwrap_err(),
            ConfigError::CheckoutExpiryOutOfRange { secs: 60 }
        );
        assert!(config().with_checkout_expiry(Duration::from_secs(2 * 86400)).is_err());
    }

    #[test]
    fn row_references_need_plain_stripe_ids() {
        let itemising = config()
            .with_row_reference(RowKind::Credits, RowReference::Price("price_1Credits".into()))
            .unwrap()
            .with_row_reference(RowKind::Content, RowReference::Product("prod_Content-2".into()))
            .unwrap();
        assert!(itemising.itemises_rows());
        assert_eq!(itemising.row_reference(RowKind::Credits), Some(&RowReference::Price("price_1Credits".into())));
        assert_eq!(itemising.row_reference(RowKind::Other), None);

        for bad in ["", "price_1/../charges", "prod 1", "price_é"] {
            let error = config().with_row_reference(RowKind::Other, RowReference::Price(bad.into())).unwrap_err();
            assert_eq!(error, ConfigError::InvalidStripeId { field: "row price id", id: bad.into() });
        }
        assert!(!config().itemises_rows());
    }

    #[test]
    fn api_base_must_be_http() {
        assert!(config().with_api_base("http://127.0.0.1:9999/").is_ok());
        assert!(matches!(config().with_api_base("127.0.0.1:9999"), Err(ConfigError::InvalidUrl { .. })));
    }
}
