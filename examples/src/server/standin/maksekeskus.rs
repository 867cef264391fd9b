//! The Maksekeskus stand-in, built on `provider-maksekeskus`'s local fake API.
//!
//! The real [`MaksekeskusProvider`] creates transactions against
//! [`FakeMaksekeskus`] on a loopback port. The stand-in page's buttons move
//! the fake transaction to `COMPLETED` or `CANCELLED`. Then they deliver the
//! `payment_return` notification, signed by the fake with the shop's secret
//! key, as a form post, the way Maksekeskus notifies a shop.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::ids::IdError;
use billing_domain::{Currency, Money, ProviderName, WebhookRequest};
use provider_maksekeskus::test_server::FakeMaksekeskus;
use provider_maksekeskus::{
    CallbackMethod, CallbackUrl, ConfigError, MaksekeskusConfig, MaksekeskusProvider, TransactionStatus,
    TransactionUrls, PROVIDER_NAME,
};
use time::OffsetDateTime;

use super::{HostedStandIn, StandInError, StandInOutcome};
use crate::server::i18n::Lang;

/// See the module documentation.
#[derive(Debug)]
pub struct MaksekeskusStandIn {
    fake: Arc<FakeMaksekeskus>,
    provider: ProviderName,
}

impl MaksekeskusStandIn {
    /// A stand-in page for the transactions of `fake`.
    ///
    /// # Errors
    ///
    /// [`IdError`] if the adapter's provider name were invalid.
    pub fn new(fake: Arc<FakeMaksekeskus>) -> Result<MaksekeskusStandIn, IdError> {
        Ok(MaksekeskusStandIn { fake, provider: ProviderName::new(PROVIDER_NAME)? })
    }
}

/// The callback URLs of the reference server at `server_base`: the browser
/// comes back to `/return/maksekeskus`, notifications go to `/webhooks/maksekeskus`.
///
/// # Errors
///
/// [`ConfigError`] for a base URL that is not HTTP(S).
pub fn transaction_urls(server_base: &str) -> Result<TransactionUrls, ConfigError> {
    let return_url = format!("{server_base}/return/{PROVIDER_NAME}");
    Ok(TransactionUrls {
        return_url: CallbackUrl::new(&return_url, CallbackMethod::Post)?,
        cancel_url: CallbackUrl::new(&return_url, CallbackMethod::Post)?,
        notification_url: CallbackUrl::new(&format!("{server_base}/webhooks/{PROVIDER_NAME}"), CallbackMethod::Post)?,
    })
}

/// The real adapter, configured against `fake`, calling back to `server_base`.
///
/// # Errors
///
/// [`ConfigError`] for a base URL the adapter rejects.
pub fn provider_for_fake(fake: &FakeMaksekeskus, server_base: &str) -> Result<MaksekeskusProvider, ConfigError> {
    let config: MaksekeskusConfig = fake.config()?.with_transaction_urls(transaction_urls(server_base)?);
    MaksekeskusProvider::new(config)
}

#[async_trait]
impl HostedStandIn for MaksekeskusStandIn {
    fn provider(&self) -> ProviderName {
        self.provider.clone()
    }

    fn title(&self) -> &str {
        "Maksekeskus"
    }

    async fn amount(&self, reference: &str) -> Result<String, StandInError> {
        let transaction = self
            .fake
            .transaction(reference)
            .ok_or_else(|| StandInError::UnknownReference { reference: reference.to_owned() })?;
        let amount = Currency::from_code(&transaction.currency)
            .ok()
            .and_then(|currency| Money::new(transaction.amount, currency).ok());
        Ok(match amount {
            Some(amount) => Lang::En.money(&amount),
            None => format!("{} {}", transaction.currency, transaction.amount),
        })
    }

    async fn webhook(&self, reference: &str, outcome: StandInOutcome) -> Result<WebhookRequest, StandInError> {
        let status = match outcome {
            StandInOutcome::Paid => TransactionStatus::Completed,
            StandInOutcome::Canceled => TransactionStatus::Cancelled,
        };
        self.fake.set_now(OffsetDateTime::now_utc());
        let message = self
            .fake
            .payment_return(reference, status)
            .map_err(|_| StandInError::UnknownReference { reference: reference.to_owned() })?;
        Ok(message.form_request())
    }
}
