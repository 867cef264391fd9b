//! The Stripe stand-in, built on `provider-stripe`'s local fake API.
//!
//! The real [`StripeProvider`] creates Checkout Sessions against
//! [`FakeStripe`] on a loopback port with the real async-stripe client. The
//! stand-in page's Pay button moves the fake session to `complete`/`paid`
//! and delivers `checkout.session.completed`. Cancel expires the session and
//! delivers `checkout.session.expired`. Both events are signed with the
//! fake's webhook secret the way Stripe signs them, so the adapter's
//! signature check runs unchanged. The simulated card reader presents or
//! declines a card for the Terminal payment waiting on it and delivers
//! `terminal.reader.action_succeeded` or `.action_failed`.

use std::sync::Arc;

use async_trait::async_trait;
use billing_domain::ids::IdError;
use billing_domain::service::Clock;
use billing_domain::{Currency, Money, ProviderName, WebhookRequest};
use provider_stripe::test_server::{FakeError, FakeStripe};
use provider_stripe::{ConfigError, StripeProvider, CHECKOUT_SESSION_ID_PLACEHOLDER, PROVIDER_NAME};
use time::OffsetDateTime;

use super::{HostedStandIn, StandInError, StandInOutcome};
use crate::server::i18n::Lang;

/// See the module documentation.
#[derive(Debug)]
pub struct StripeStandIn {
    fake: Arc<FakeStripe>,
    provider: ProviderName,
}

impl StripeStandIn {
    /// A stand-in page for the Checkout Sessions of `fake`.
    ///
    /// # Errors
    ///
    /// [`IdError`] if the adapter's provider name were invalid.
    pub fn new(fake: Arc<FakeStripe>) -> Result<StripeStandIn, IdError> {
        Ok(StripeStandIn { fake, provider: ProviderName::new(PROVIDER_NAME)? })
    }
}

/// The success and cancel URL of the reference server at `server_base`:
/// its return page, with the Checkout Session id Stripe fills in.
pub fn return_url(server_base: &str) -> String {
    format!("{server_base}/return/{PROVIDER_NAME}?reference={CHECKOUT_SESSION_ID_PLACEHOLDER}")
}

/// The real adapter, configured against `fake`, returning to `server_base`.
///
/// # Errors
///
/// [`ConfigError`] for a base URL the adapter rejects.
pub fn provider_for_fake(
    fake: &FakeStripe,
    server_base: &str,
    clock: Arc<dyn Clock>,
) -> Result<StripeProvider, ConfigError> {
    let url = return_url(server_base);
    StripeProvider::new(fake.config(&url, &url)?, clock)
}

#[async_trait]
impl HostedStandIn for StripeStandIn {
    fn provider(&self) -> ProviderName {
        self.provider.clone()
    }

    fn title(&self) -> &str {
        "Stripe"
    }

    async fn amount(&self, reference: &str) -> Result<String, StandInError> {
        let unknown = || StandInError::UnknownReference { reference: reference.to_owned() };
        let session = self.fake.session(reference).ok_or_else(unknown)?;
        let minor = session.get("amount_total").and_then(serde_json::Value::as_i64).ok_or_else(unknown)?;
        let code = session.get("currency").and_then(serde_json::Value::as_str).ok_or_else(unknown)?;
        let currency = Currency::from_code(code).map_err(|_| unknown())?;
        let amount = Money::from_minor(minor, currency).map_err(|_| unknown())?;
        Ok(Lang::En.money(&amount))
    }

    async fn webhook(&self, reference: &str, outcome: StandInOutcome) -> Result<WebhookRequest, StandInError> {
        let failed = |error: FakeError| StandInError::Webhook { reason: error.to_string() };
        let (event_type, session) = match outcome {
            StandInOutcome::Paid => ("checkout.session.completed", self.fake.pay_session(reference)),
            StandInOutcome::Canceled => ("checkout.session.expired", self.fake.expire_session(reference)),
        };
        let session = session.map_err(failed)?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let event_id = format!("evt_stand_in_{event_type}_{reference}").replace('.', "_");
        self.fake.signed_webhook(&event_id, event_type, session, now).map_err(failed)
    }

    async fn reader_webhook(&self, reader: &str, outcome: StandInOutcome) -> Result<WebhookRequest, StandInError> {
        let unknown = |_: FakeError| StandInError::UnknownReader { reader: reader.to_owned() };
        let (event_type, object) = match outcome {
            StandInOutcome::Paid => ("terminal.reader.action_succeeded", self.fake.present_card(reader)),
            StandInOutcome::Canceled => ("terminal.reader.action_failed", self.fake.decline_card(reader)),
        };
        let object = object.map_err(unknown)?;
        let now = OffsetDateTime::now_utc();
        // The same reader takes many payments: the clock keeps event ids apart.
        let event_id = format!("evt_stand_in_{}_{reader}_{}", event_type.replace('.', "_"), now.unix_timestamp_nanos());
        let failed = |error: FakeError| StandInError::Webhook { reason: error.to_string() };
        self.fake.signed_webhook(&event_id, event_type, object, now.unix_timestamp()).map_err(failed)
    }
}
