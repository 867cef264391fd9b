//! Configuration: shop credentials, the API environment, the three callback
//! URLs, the hosted page's default locale and the request timeout.
//!
//! The secret key is both the HTTP Basic password and the MAC key, so it is
//! held in [`SecretKey`], whose `Debug` prints nothing of it. Every value is
//! validated when it is set; nothing here performs I/O.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use billing_domain::ids::IdError;
use billing_domain::ProviderName;
use url::Url;

/// The name a provider registers under and its events carry, unless configured otherwise.
pub const PROVIDER_NAME: &str = "maksekeskus";

/// The live REST API; paths start with `/v1`.
pub const LIVE_API_BASE: &str = "https://api.maksekeskus.ee";

/// The test REST API. The hyphenated `api-test.` host of older clients is legacy.
pub const TEST_API_BASE: &str = "https://api.test.maksekeskus.ee";

/// How long one API request may take before it counts as timed out.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The shop's secret key from the merchant portal. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret key.
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptySecretKey`] for an empty or blank value.
    pub fn new(value: impl Into<String>) -> Result<SecretKey, ConfigError> {
        let value = value.into();
        if value.trim().is_empty() {
            return Err(ConfigError::EmptySecretKey);
        }
        Ok(SecretKey(value))
    }

    /// The key itself, for the Basic auth header and the MAC. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// The Maksekeskus API the provider calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    Live,
    Test,
    /// An explicit API base URL without `/v1`, such as a local fake server.
    /// It must be HTTPS, or plain HTTP to a loopback address.
    Custom {
        api_base: String,
    },
}

/// The HTTP method Maksekeskus uses to call a callback URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMethod {
    Get,
    Post,
}

impl CallbackMethod {
    /// The method name as the API expects it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackMethod::Get => "GET",
            CallbackMethod::Post => "POST",
        }
    }
}

/// One callback URL with the method Maksekeskus should use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl {
    url: Url,
    method: CallbackMethod,
}

impl CallbackUrl {
    /// Validates an absolute HTTP or HTTPS URL.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidUrl`] when `url` does not parse or is not HTTP(S).
    pub fn new(url: &str, method: CallbackMethod) -> Result<CallbackUrl, ConfigError> {
        let parsed = parse_http_url("callback URL", url)?;
        Ok(CallbackUrl { url: parsed, method })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn method(&self) -> CallbackMethod {
        self.method
    }
}

/// The three per-transaction callback URLs. Maksekeskus requires all three
/// when any is sent, so they are configured together or not at all. Without
/// them the defaults from the merchant portal apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionUrls {
    /// The page the buyer's browser is sent to after a successful payment.
    pub return_url: CallbackUrl,
    /// The page the buyer's browser is sent to after a cancel or an error.
    pub cancel_url: CallbackUrl,
    /// The endpoint that receives the server-to-server notification.
    pub notification_url: CallbackUrl,
}

/// Everything the provider needs to talk to one Maksekeskus shop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaksekeskusConfig {
    provider_name: ProviderName,
    shop_id: String,
    secret_key: SecretKey,
    api_base: Url,
    transaction_urls: Option<TransactionUrls>,
    locale: Option<String>,
    request_timeout: Duration,
}

impl MaksekeskusConfig {
    /// A configuration for one shop in one environment, with the portal's
    /// default callback URLs, no default locale and [`DEFAULT_REQUEST_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::EmptyShopId`], [`ConfigError::InvalidUrl`] or
    /// [`ConfigError::InsecureApiBase`] for a custom API base.
    pub fn new(
        shop_id: impl Into<String>,
        secret_key: SecretKey,
        environment: Environment,
    ) -> Result<MaksekeskusConfig, ConfigError> {
        let shop_id = shop_id.into();
        if shop_id.trim().is_empty() {
            return Err(ConfigError::EmptyShopId);
        }
        let api_base = match environment {
            Environment::Live => parse_http_url("API base URL", LIVE_API_BASE)?,
            Environment::Test => parse_http_url("API base URL", TEST_API_BASE)?,
            Environment::Custom { api_base } => parse_custom_api_base(&api_base)?,
        };
        Ok(MaksekeskusConfig {
            provider_name: parse_provider_name(PROVIDER_NAME)?,
            shop_id,
            secret_key,
            api_base,
            transaction_urls: None,
            locale: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// Registers the provider under `name` instead of [`PROVIDER_NAME`], so
    /// that two shops (two legal entities, say) can serve one service.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidProviderName`] for an empty or over-long name.
    pub fn with_provider_name(mut self, name: &str) -> Result<MaksekeskusConfig, ConfigError> {
        self.provider_name = parse_provider_name(name)?;
        Ok(self)
    }

    /// Sends these return, cancel and notification URLs with every transaction.
    pub fn with_transaction_urls(mut self, urls: TransactionUrls) -> MaksekeskusConfig {
        self.transaction_urls = Some(urls);
        self
    }

    /// The hosted page's language when a payment request names none.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidLocale`] unless `locale` starts with a two-letter
    /// ISO 639-1 code (`et`, `en`, `en-GB`).
    pub fn with_locale(mut self, locale: &str) -> Result<MaksekeskusConfig, ConfigError> {
        let normalized =
            normalize_locale(locale).ok_or_else(|| ConfigError::InvalidLocale { value: locale.to_owned() })?;
        self.locale = Some(normalized);
        Ok(self)
    }

    /// How long one API request may take.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroTimeout`] for a zero duration.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Result<MaksekeskusConfig, ConfigError> {
        if timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        self.request_timeout = timeout;
        Ok(self)
    }

    pub fn provider_name(&self) -> &ProviderName {
        &self.provider_name
    }

    pub fn shop_id(&self) -> &str {
        &self.shop_id
    }

    pub fn secret_key(&self) -> &SecretKey {
        &self.secret_key
    }

    /// The API base URL, without `/v1`.
    pub fn api_base(&self) -> &Url {
        &self.api_base
    }

    pub fn transaction_urls(&self) -> Option<&TransactionUrls> {
        self.transaction_urls.as_ref()
    }

    /// The default locale, lower case.
    pub fn locale(&self) -> Option<&str> {
        self.locale.as_deref()
    }

    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// A rejected configuration value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("provider name {value:?} is invalid")]
    InvalidProviderName {
        value: String,
        #[source]
        source: IdError,
    },

    #[error("shop id must not be empty; use the Shop ID from the Maksekeskus merchant portal")]
    EmptyShopId,

    #[error("secret key must not be empty; use the Secret key from the Maksekeskus merchant portal")]
    EmptySecretKey,

    #[error("{what} {value:?} is invalid: {reason}")]
    InvalidUrl { what: &'static str, value: String, reason: String },

    #[error(
        "API base URL {value:?} uses plain HTTP to a host that is not loopback; the secret key would travel \
         unencrypted, so use HTTPS"
    )]
    InsecureApiBase { value: String },

    #[error("locale {value:?} is not a two-letter ISO 639-1 code such as \"et\" or \"en\"")]
    InvalidLocale { value: String },

    #[error("request timeout must be above zero")]
    ZeroTimeout,

    #[error("the HTTP client could not be built")]
    HttpClient(#[source] reqwest::Error),
}

/// Reduces `et`, `ET`, `en-GB` or `en_GB` to the lower-case language code.
pub(crate) fn normalize_locale(locale: &str) -> Option<String> {
    let language = locale.split(['-', '_']).next()?;
    let is_code = language.len() == 2 && language.chars().all(|c| c.is_ascii_alphabetic());
    is_code.then(|| language.to_ascii_lowercase())
}

fn parse_provider_name(name: &str) -> Result<ProviderName, ConfigError> {
    ProviderName::new(name).map_err(|source| ConfigError::InvalidProviderName { value: name.to_owned(), source })
}

fn parse_http_url(what: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|error| ConfigError::InvalidUrl {
        what,
        value: value.to_owned(),
        reason: error.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::InvalidUrl {
            what,
            value: value.to_owned(),
            reason: format!("scheme {:?} is not http or https", url.scheme()),
        });
    }
    if url.host().is_none() {
        return Err(ConfigError::InvalidUrl { what, value: value.to_owned(), reason: "it has no host".into() });
    }
    Ok(url)
}

fn parse_custom_api_base(value: &str) -> Result<Url, ConfigError> {
    let url = parse_http_url("API base URL", value)?;
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(ConfigError::InsecureApiBase { value: value.to_owned() });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::InvalidUrl {
            what: "API base URL",
            value: value.to_owned(),
            reason: "it must not carry a query or fragment".into(),
        });
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => IpAddr::V4(address).is_loopback(),
        Some(url::Host::Ipv6(address)) => IpAddr::V6(address).is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretKey {
        SecretKey::new("s3cret-value").unwrap()
    }

    #[test]
    fn debug_redacts_secret_key() {
        let config = MaksekeskusConfig::new("shop-1", secret(), Environment::Test).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret-value"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn environments_pick_dotted_hosts() {
        let live = MaksekeskusConfig::new("shop-1", secret(), Environment::Live).unwrap();
        let test = MaksekeskusConfig::new("shop-1", secret(), Environment::Test).unwrap();
        assert_eq!(live.api_base().as_str(), "https://api.maksekeskus.ee/");
        assert_eq!(test.api_base().as_str(), "https://api.test.maksekeskus.ee/");
    }

    #[test]
    fn custom_base_allows_plain_http_only_to_loopback() {
        for base in ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9", "https://mk.example"] {
            let environment = Environment::Custom { api_base: base.into() };
            assert!(MaksekeskusConfig::new("shop-1", secret(), environment).is_ok(), "{base}");
        }
        let environment = Environment::Custom { api_base: "http://mk.example".into() };
        let error = MaksekeskusConfig::new("shop-1", secret(), environment).unwrap_err();
        assert!(matches!(error, ConfigError::InsecureApiBase { .. }), "{error}");
    }

    #[test]
    fn custom_base_rejects_garbage() {
        for base in ["not a url", "ftp://127.0.0.1", "http://127.0.0.1/?x=1"] {
            let environment = Environment::Custom { api_base: base.into() };
            let error = MaksekeskusConfig::new("shop-1", secret(), environment).unwrap_err();
            assert!(matches!(error, ConfigError::InvalidUrl { .. }), "{base}: {error}");
        }
    }

    #[test]
    fn empty_credentials_are_rejected() {
        assert!(matches!(SecretKey::new(" "), Err(ConfigError::EmptySecretKey)));
        assert!(matches!(MaksekeskusConfig::new("", secret(), Environment::Test), Err(ConfigError::EmptyShopId)));
    }

    #[test]
    fn locale_is_normalized_or_rejected() {
        assert_eq!(normalize_locale("ET").as_deref(), Some("et"));
        assert_eq!(normalize_locale("en-GB").as_deref(), Some("en"));
        assert_eq!(normalize_locale("ru_RU").as_deref(), Some("ru"));
        assert_eq!(normalize_locale("est"), None);
        assert_eq!(normalize_locale(""), None);
        assert_eq!(normalize_locale("e1"), None);
        let config = MaksekeskusConfig::new("shop-1", secret(), Environment::Test).unwrap();
        assert!(matches!(config.with_locale("xyz"), Err(ConfigError::InvalidLocale { .. })));
    }

    #[test]
    fn provider_name_defaults_and_can_change() {
        let config = MaksekeskusConfig::new("shop-1", secret(), Environment::Test).unwrap();
        assert_eq!(config.provider_name().as_str(), PROVIDER_NAME);
        let renamed = config.clone().with_provider_name("maksekeskus-lv").unwrap();
        assert_eq!(renamed.provider_name().as_str(), "maksekeskus-lv");
        assert!(matches!(config.with_provider_name(""), Err(ConfigError::InvalidProviderName { .. })));
    }

    #[test]
    fn zero_timeout_is_rejected() {
        let config = MaksekeskusConfig::new("shop-1", secret(), Environment::Test).unwrap();
        assert!(matches!(config.with_request_timeout(Duration::ZERO), Err(ConfigError::ZeroTimeout)));
    }

    #[test]
    fn callback_urls_must_be_http() {
        assert!(CallbackUrl::new("https://shop.example/return", CallbackMethod::Post).is_ok());
        assert!(matches!(
            CallbackUrl::new("mailto:someone@example.com", CallbackMethod::Get),
            Err(ConfigError::InvalidUrl { .. })
        ));
    }
}
