//! [`MaksekeskusProvider`]: the [`PaymentProvider`] for Maksekeskus.
//!
//! Starting a payment creates a transaction and returns the hosted page that
//! Maksekeskus names in `payment_methods.other` (`redirect`); the URL is
//! never built by hand. Messages are verified by MAC before they are parsed.
//! A fetch reads `GET /v1/transactions/{id}`, and a payment whose create
//! timed out (so it has no transaction id) is looked up by its
//! `merchant_data` before anyone starts another attempt, because the API has
//! no idempotency key.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::provider::Operation;
use billing_domain::service::Clock;
use billing_domain::{
    Channel, Currency, EventId, EventKind, Payment, PaymentMatch, PaymentProvider, ProviderError, ProviderEvent,
    ProviderName, ProviderReference, StartOutcome, StartRequest, WebhookRequest,
};
use time::OffsetDateTime;
use url::Url;

use crate::amount::{format_amount, money_from_wire};
use crate::client::{
    error_chain, ApiClient, CreateTransactionBody, CustomerFields, TransactionFields, TransactionUrlFields,
    TransactionWire, UrlField,
};
use crate::config::{normalize_locale, CallbackUrl, ConfigError, MaksekeskusConfig};

use crate::events::{provider_event, TransactionReport};
use crate::message::{signed_parameters, verify_message, Message, PaymentReturn, TokenReturn, WebhookError};
use crate::status::TransactionStatus;
use crate::timestamp;

/// Longest `transaction.reference` Maksekeskus accepts, in characters.
const REFERENCE_CHARS_MAX: usize = 20;

/// Page size asked for when looking up a transaction by `merchant_data`.
const LOOKUP_PER_PAGE: u32 = 100;

/// Pages read before a lookup gives up, so one lookup makes at most this many requests.
const LOOKUP_PAGES_MAX: u32 = 20;

/// The operating system's clock, for when a fetch states no time of its own.
#[derive(Debug, Clone, Copy, Default)]
struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Hosted-page payments, notifications, reconciliation and refunds through Maksekeskus.
#[derive(Clone)]
pub struct MaksekeskusProvider {
    pub(crate) name: ProviderName,
    pub(crate) config: MaksekeskusConfig,
    pub(crate) client: ApiClient,
    pub(crate) clock: Arc<dyn Clock>,
}

impl fmt::Debug for MaksekeskusProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaksekeskusProvider").field("name", &self.name).field("config", &self.config).finish()
    }
}

impl MaksekeskusProvider {
    /// Creates a provider for the configured shop, using the system clock.
    ///
    /// # Errors
    ///
    /// [`ConfigError::HttpClient`] when the TLS backend cannot be set up.
    pub fn new(config: MaksekeskusConfig) -> Result<MaksekeskusProvider, ConfigError> {
        let name = config.provider_name().clone();
        let client = ApiClient::new(&config, name.clone())?;
        Ok(MaksekeskusProvider { name, config, client, clock: Arc::new(SystemClock) })
    }

    /// Uses `clock` for the time of events whose source states none (a
    /// fetched CANCELLED has no timestamp), so tests and examples are repeatable.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> MaksekeskusProvider {
        self.clock = clock;
        self
    }

    pub fn config(&self) -> &MaksekeskusConfig {
        &self.config
    }

    /// Builds the create-transaction body, checking what Maksekeskus requires.
    fn transaction_body(&self, request: &StartRequest) -> Result<CreateTransactionBody, ProviderError> {
        let operation = match &request.channel {
            Channel::HostedPage => None,
            Channel::Terminal { .. } => Some(Operation::StartTerminal),
            Channel::Free => Some(Operation::StartFree),
            Channel::Manual { .. } => Some(Operation::StartManual),
        };
        if let Some(operation) = operation {
            return Err(ProviderError::Unsupported { provider: self.name.clone(), operation });
        }

        let amount = request.amount;
        if amount.currency() != Currency::EUR {
            return Err(self.invalid_request(format!(
                "invoice {} is in {}, but Maksekeskus documents only EUR; bill this invoice in EUR or use another \
                 provider",
                request.invoice_number,
                amount.currency()
            )));
        }
        if amount.is_zero() || amount.is_negative() {
            return Err(self.invalid_request(format!("amount {amount} must be above zero")));
        }

        let Some(ip) = request.customer_ip.as_deref() else {
            return Err(self.invalid_request(
                "Maksekeskus requires the customer's IP address; pass it in PaymentOptions::customer_ip".into(),
            ));
        };
        // NOTE: the official SDK's request schema declares an IPv4 address;
        // whether the API rejects IPv6 is not documented, so both are sent.
        let ip = ip
            .trim()
            .parse::<IpAddr>()
            .map_err(|_| self.invalid_request(format!("customer IP {ip:?} is not an IPv4 or IPv6 address")))?;
        let locale = match request.locale.as_deref() {
            Some(locale) => Some(normalize_locale(locale).ok_or_else(|| {
                self.invalid_request(format!(
                    "locale {locale:?} is not a two-letter ISO 639-1 code such as \"et\" or \"en\""
                ))
            })?),
            None => self.config.locale().map(str::to_owned),
        };

        Ok(CreateTransactionBody {
            transaction: TransactionFields {
                amount: format_amount(amount),
                currency: amount.currency().code().to_owned(),
                reference: transaction_reference(&request.invoice_number),
                merchant_data: request.payment_id.to_string(),
                transaction_url: self.config.transaction_urls().map(|urls| TransactionUrlFields {
                    return_url: url_field(&urls.return_url),
                    cancel_url: url_field(&urls.cancel_url),
                    notification_url: url_field(&urls.notification_url),
                }),
            },
            customer: CustomerFields { ip: ip.to_string(), locale },
        })
    }

    /// Fetches a transaction and checks that the response is about it.
    pub(crate) async fn fetch_transaction(&self, transaction_id: &str) -> Result<TransactionWire, ProviderError> {
        let transaction = self.client.transaction(transaction_id).await?;
        if transaction.id != transaction_id {
            return Err(self.unexpected(format!(
                "requested transaction {transaction_id} but the response is about {}",
                transaction.id
            )));
        }
        Ok(transaction)
    }

    /// Maps a fetched transaction to its events.
    pub(crate) fn transaction_events(
        &self,
        transaction: &TransactionWire,
        origin: &'static str,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        let report = self.transaction_report(transaction, origin)?;
        let event = provider_event(&self.name, &report).map_err(|error| self.unexpected(error_chain(&error)))?;
        Ok(vec![event])
    }

    fn transaction_report(
        &self,
        transaction: &TransactionWire,
        origin: &'static str,
    ) -> Result<TransactionReport, ProviderError> {
        let id = &transaction.id;
        let status = transaction
            .status
            .parse::<TransactionStatus>()
            .map_err(|error| self.unexpected(format!("transaction {id}: {error}")))?;
        let currency = transaction.currency.as_deref();
        let to_money = |amount: Option<crate::amount::WireDecimal>, field: &str| match (amount, currency) {
            (None, _) => Ok(None),
            (Some(_), None) => Err(self.unexpected(format!("transaction {id} states {field} without a currency"))),
            (Some(amount), Some(currency)) => money_from_wire(amount.0, currency)
                .map(Some)
                .map_err(|error| self.unexpected(format!("transaction {id} {field}: {}", error_chain(&error)))),
        };
        let amount = to_money(transaction.amount, "amount")?;
        // NOTE: no source says whether `refunded_amount` counts refunds that
        // are still SENT. If it does, a fetch reports them before they settle.
        let refunded = to_money(transaction.refunded_amount, "refunded_amount")?;
        let completed_at = match (status, transaction.completed_at.as_deref()) {
            (TransactionStatus::Completed, Some(text)) => timestamp::parse(text).ok(),
            _ => None,
        };
        Ok(TransactionReport {
            transaction_id: id.clone(),
            status,
            amount,
            refunded,
            merchant_data: transaction.merchant_data.clone().filter(|text| !text.is_empty()),
            occurred_at: completed_at.unwrap_or_else(|| self.clock.now()),
            origin,
        })
    }

    async fn payment_return_events(
        &self,
        message: PaymentReturn,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        if let Some(shop) = &message.shop {
            if shop != self.config.shop_id() {
                let error =
                    WebhookError::WrongShop { expected: self.config.shop_id().to_owned(), received: shop.clone() };
                return Err(reject(&error));
            }
        }
        // The message states the transaction amount but not how much of it was
        // refunded, so a partial refund is read from the transaction itself.
        if message.status == TransactionStatus::PartRefunded {
            let transaction = self.fetch_transaction(&message.transaction_id).await?;
            return self.transaction_events(&transaction, "payment_return");
        }
        let report = TransactionReport {
            transaction_id: message.transaction_id,
            status: message.status,
            amount: message.amount,
            refunded: None,
            merchant_data: message.merchant_data,
            occurred_at: message.message_time.unwrap_or(now),
            origin: "payment_return",
        };
        let event = provider_event(&self.name, &report)
            .map_err(|error| ProviderError::InvalidWebhook { reason: error_chain(&error) })?;
        Ok(vec![event])
    }

    /// Maps a `token_return`, which names the transaction but states no
    /// amount. One with an `error` ends the attempt, as the official plugin
    /// treats it. For any other, the transaction is fetched.
    async fn token_return_events(
        &self,
        message: TokenReturn,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        let Some(error) = message.error else {
            let transaction = self.fetch_transaction(&message.transaction_id).await?;
            return self.transaction_events(&transaction, "token_return");
        };
        let code = error.code.unwrap_or_else(|| "unknown".to_owned());
        let reference = ProviderReference::new(message.transaction_id.clone())
            .map_err(|error| ProviderError::InvalidWebhook { reason: error.to_string() })?;
        let event_id = EventId::new(format!("{}:token_error:{code}", message.transaction_id))
            .map_err(|error| ProviderError::InvalidWebhook { reason: error.to_string() })?;
        Ok(vec![ProviderEvent {
            provider: self.name.clone(),
            event_id,
            occurred_at: message.message_time.unwrap_or(now),
            matches: PaymentMatch { reference: Some(reference), ..PaymentMatch::default() },
            kind: EventKind::Failed,
            amount: None,
            provider_type: format!("token_return:error:{code}"),
        }])
    }

    /// Builds the event that keeps a verified message of an unhandled type in
    /// the log. Its id is derived from the MAC, which is unique per message text.
    fn ignored_message_event(
        &self,
        message_type: String,
        mac: &str,
        now: OffsetDateTime,
    ) -> Result<ProviderEvent, ProviderError> {
        let event_id = EventId::new(format!("{message_type}:{}", &mac[..32.min(mac.len())]))
            .map_err(|error| ProviderError::InvalidWebhook { reason: error.to_string() })?;
        Ok(ProviderEvent {
            provider: self.name.clone(),
            event_id,
            occurred_at: now,
            matches: PaymentMatch::default(),
            kind: EventKind::Ignored { provider_type: message_type.clone() },
            amount: None,
            provider_type: message_type,
        })
    }

    /// Finds the transaction of a payment that has no transaction id, by the
    /// `merchant_data` it was created with.
    ///
    /// Finding none means the create never took effect, or took effect but the
    /// buyer never received its payment page. No money can move through such a
    /// transaction, so the attempt is reported as failed and the invoice can
    /// be paid again.
    async fn look_up_transaction(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        let merchant_data = payment.id.to_string();
        // A day earlier than the payment's UTC date, so the API's time zone cannot hide it.
        let created = payment.created_at.date();
        let since = created.previous_day().unwrap_or(created);

        let mut seen = 0;
        for page in 1..=LOOKUP_PAGES_MAX {
            let listed = self.client.list_transactions(since, page, LOOKUP_PER_PAGE).await?;
            let found = listed
                .transactions
                .iter()
                .find(|transaction| transaction.merchant_data.as_deref() == Some(merchant_data.as_str()));
            if let Some(transaction) = found {
                tracing::info!(payment_id = %payment.id, transaction_id = %transaction.id, "found the transaction of a payment without a reference");
                return self.transaction_events(transaction, "transaction");
            }
            seen += listed.transactions.len();
            let exhausted = listed.transactions.is_empty() || listed.total_count.is_some_and(|total| seen >= total);
            if exhausted {
                tracing::info!(payment_id = %payment.id, listed = seen, "no transaction was created for the payment");
                return Ok(vec![self.not_created_event(payment)?]);
            }
        }
        Err(self.unexpected(format!(
            "more than {} transactions since {since}; payment {} could not be looked up, so find it in the \
             merchant portal and settle it by hand",
            LOOKUP_PAGES_MAX * LOOKUP_PER_PAGE,
            payment.id
        )))
    }

    fn not_created_event(&self, payment: &Payment) -> Result<ProviderEvent, ProviderError> {
        let event_id =
            EventId::new(format!("{}:NOT_CREATED", payment.id)).map_err(|error| self.unexpected(error.to_string()))?;
        Ok(ProviderEvent {
            provider: self.name.clone(),
            event_id,
            occurred_at: self.clock.now(),
            matches: PaymentMatch {
                tenant_id: Some(payment.tenant_id),
                invoice_id: Some(payment.invoice_id),
                payment_id: Some(payment.id),
                reference: None,
            },
            kind: EventKind::Failed,
            amount: None,
            provider_type: "transaction_lookup:NOT_FOUND".into(),
        })
    }

    pub(crate) fn invalid_request(&self, reason: String) -> ProviderError {
        ProviderError::InvalidRequest { provider: self.name.clone(), reason }
    }

    pub(crate) fn unexpected(&self, reason: String) -> ProviderError {
        ProviderError::UnexpectedResponse { provider: self.name.clone(), reason }
    }
}

#[async_trait]
impl PaymentProvider for MaksekeskusProvider {
    fn name(&self) -> ProviderName {
        self.name.clone()
    }

    /// Creates a transaction and returns the hosted payment page.
    ///
    /// # Errors
    ///
    /// [`ProviderError::Unsupported`] for channels other than a hosted page,
    /// [`ProviderError::InvalidRequest`] for a currency other than EUR or a
    /// missing or invalid customer IP or locale, [`ProviderError::Timeout`]
    /// when the response was lost (the transaction may exist), and
    /// [`ProviderError::UnexpectedResponse`] when the response names no
    /// `redirect` payment page.
    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let body = self.transaction_body(request)?;
        let transaction = self.client.create_transaction(&body).await.inspect_err(|error| {
            tracing::warn!(payment_id = %request.payment_id, invoice_id = %request.invoice_id, %error, "creating a Maksekeskus transaction failed");
        })?;

        let url = redirect_url(&transaction).map_err(|reason| self.unexpected(reason))?;
        let reference = ProviderReference::new(transaction.id.clone())
            .map_err(|error| self.unexpected(format!("transaction id: {error}")))?;
        tracing::info!(payment_id = %request.payment_id, invoice_id = %request.invoice_id, transaction_id = %reference, "Maksekeskus transaction created");
        Ok(StartOutcome::Redirect { url, reference })
    }

    /// Verifies a return or notification and reports its events.
    ///
    /// A `token_return` and a `payment_return` for a partial refund lack the
    /// amounts an event needs, so the transaction is fetched for them.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidWebhook`] when the parameters are missing or the
    /// MAC does not verify. It is also returned when the verified message is
    /// malformed or names another shop or an unknown status. The two messages
    /// that need a fetch can also return the errors of a fetch.
    async fn verify_webhook(
        &self,
        request: &WebhookRequest,
        now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        let parameters = signed_parameters(request).map_err(|error| reject(&error))?;
        let message = verify_message(&parameters, self.config.secret_key()).map_err(|error| reject(&error))?;
        match message {
            Message::PaymentReturn(message) => self.payment_return_events(message, now).await,
            Message::TokenReturn(message) => self.token_return_events(message, now).await,
            Message::Other { message_type } => {
                Ok(vec![self.ignored_message_event(message_type, &parameters.mac, now)?])
            }
        }
    }

    /// Fetches the payment's transaction, or looks it up by `merchant_data`
    /// when the create timed out before a transaction id was recorded.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidRequest`] for a payment of another provider,
    /// [`ProviderError::Timeout`], [`ProviderError::Transport`] and
    /// [`ProviderError::Api`] when Maksekeskus cannot respond, and
    /// [`ProviderError::UnexpectedResponse`] for a response that cannot be mapped.
    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        if payment.provider != self.name {
            return Err(self.invalid_request(format!(
                "payment {} belongs to provider {}, not {}",
                payment.id, payment.provider, self.name
            )));
        }
        let Some(reference) = &payment.reference else {
            return self.look_up_transaction(payment).await;
        };
        let transaction = self.fetch_transaction(reference.as_str()).await?;
        self.transaction_events(&transaction, "transaction")
    }
}

/// Derives the `reference` sent with a transaction: the invoice number, or
/// its last 20 characters when longer, since the sequence part usually comes
/// last. Maksekeskus shows it to staff, and matching relies on `merchant_data`.
fn transaction_reference(invoice_number: &str) -> Option<String> {
    let trimmed = invoice_number.trim();
    if trimmed.is_empty() {
        return None;
    }
    let kept: Vec<char> = trimmed.chars().rev().take(REFERENCE_CHARS_MAX).collect();
    Some(kept.into_iter().rev().collect())
}

fn url_field(callback: &CallbackUrl) -> UrlField {
    UrlField { url: callback.url().to_string(), method: callback.method().as_str() }
}

/// Finds the `url` of the `payment_methods.other` entry named `redirect`.
fn redirect_url(transaction: &TransactionWire) -> Result<String, String> {
    let entry = transaction
        .payment_methods
        .as_ref()
        .and_then(|methods| methods.other.as_ref())
        .and_then(|other| other.iter().find(|method| method.name.as_deref() == Some("redirect")));
    let Some(url) = entry.and_then(|method| method.url.as_deref()) else {
        return Err(format!(
            "transaction {} was created but the response has no payment_methods.other entry named redirect, so \
             there is no payment page to send the buyer to",
            transaction.id
        ));
    };
    match Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") => Ok(url.to_owned()),
        _ => Err(format!("transaction {}: redirect URL {url:?} is not an HTTP(S) URL", transaction.id)),
    }
}

/// Turns a message error into the port's webhook rejection.
fn reject(error: &WebhookError) -> ProviderError {
    tracing::debug!(%error, "Maksekeskus message rejected");
    ProviderError::InvalidWebhook { reason: error_chain(error) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_keeps_short_invoice_numbers() {
        assert_eq!(transaction_reference("INV-2026-0042").as_deref(), Some("INV-2026-0042"));
        assert_eq!(transaction_reference("  ").as_deref(), None);
    }

    #[test]
    fn reference_keeps_last_twenty_characters() {
        let reference = transaction_reference("ACME-SUBSIDIARY-2026-000123").unwrap();
        assert_eq!(reference, "BSIDIARY-2026-000123");
        assert!(reference.chars().count() <= REFERENCE_CHARS_MAX);
        let unicode = transaction_reference("ÄÖÜÕŠŽäöüõšžÄÖÜÕŠŽäöüõ").unwrap();
        assert_eq!(unicode.chars().count(), REFERENCE_CHARS_MAX);
    }
}
