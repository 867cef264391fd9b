//! Starting a payment on a Stripe Checkout page.
//!
//! The session charges the payment's amount, as one generic line or, when
//! row references are configured, one line per invoice row (see
//! `line_items`). No row text, name or e-mail reaches Stripe. The session
//! and its PaymentIntent carry our opaque ids as metadata, and the create
//! call carries an idempotency key derived from the payment id, so a retried
//! call cannot open a second session.

use std::collections::HashMap;

use stripe::{RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ProductData,
};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_shared::{CheckoutSessionLocale, CheckoutSessionMode, PriceBillingScheme, PriceType};

use billing_domain::{ProviderError, ProviderReference, StartOutcome, StartRequest};

use crate::line_items::{self, CatalogPrice, Item, Label};
use crate::outcome::{METADATA_INVOICE_ID, METADATA_PAYMENT_ID, METADATA_TENANT_ID};
use crate::provider::{Ambiguity, StripeProvider};

impl StripeProvider {
    pub(crate) async fn start_checkout(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let currency = stripe_currency(request);
        let metadata = payment_metadata(request);

        let mut prices = HashMap::new();
        for id in line_items::prices_to_check(request, &self.config) {
            let price = self.retrieve_price(&id).await?;
            prices.insert(id, price);
        }
        let plan = line_items::plan(request, &self.config, &prices).map_err(|error| self.invalid_request(error))?;
        for warning in &plan.warnings {
            tracing::warn!(payment_id = %request.payment_id, invoice_id = %request.invoice_id, "{warning}");
        }
        let line_items: Vec<_> = plan.items.into_iter().map(|item| checkout_line(item, &currency)).collect();

        let mut intent_data = CreateCheckoutSessionPaymentIntentData::new();
        intent_data.metadata = Some(metadata.clone());

        // Naming the currency keeps Checkout from charging a Price's
        // `currency_options` entry for the customer's location instead of the
        // invoice's own currency and amounts.
        let mut create = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .currency(currency)
            .line_items(line_items)
            .client_reference_id(request.payment_id.to_string())
            .metadata(metadata)
            .payment_intent_data(intent_data)
            .success_url(self.config.success_url())
            .cancel_url(self.config.cancel_url());
        if let Some(expiry) = self.config.checkout_expiry() {
            let expiry_secs = i64::try_from(expiry.as_secs()).unwrap_or(i64::MAX);
            create = create.expires_at(request.requested_at.unix_timestamp().saturating_add(expiry_secs));
        }
        if let Some(locale) = request.locale.as_deref().and_then(known_locale) {
            create = create.locale(locale);
        }

        let key = self.idempotency_key(&format!("billing-checkout-{}", request.payment_id))?;
        let session = create
            .customize()
            .request_strategy(RequestStrategy::Idempotent(key))
            .send(&self.client)
            .await
            .map_err(|error| self.api_error(error, "creating a Checkout Session", Ambiguity::None))?;

        let Some(url) = session.url else {
            return Err(ProviderError::UnexpectedResponse {
                provider: self.name.clone(),
                reason: format!("Checkout Session {} has no url", session.id.as_str()),
            });
        };
        let reference =
            ProviderReference::new(session.id.as_str()).map_err(|error| ProviderError::UnexpectedResponse {
                provider: self.name.clone(),
                reason: format!("Checkout Session id: {error}"),
            })?;
        tracing::info!(
            payment_id = %request.payment_id,
            invoice_id = %request.invoice_id,
            reference = %reference,
            "stripe checkout session created"
        );
        Ok(StartOutcome::Redirect { url, reference })
    }

    /// Retrieves a Price a row reference names, to check what it charges.
    async fn retrieve_price(&self, id: &str) -> Result<CatalogPrice, ProviderError> {
        let price = RetrievePrice { id: id.to_owned() }
            .customize()
            .send(&self.client)
            .await
            .map_err(|error| self.api_error(error, &format!("retrieving Price {id}"), Ambiguity::None))?;
        Ok(CatalogPrice {
            id: price.id.as_str().to_owned(),
            product: price.product.id().as_str().to_owned(),
            currency: price.currency.to_string(),
            unit_amount: price.unit_amount,
            active: price.active,
            one_time: price.type_ == PriceType::OneTime,
            plain_per_unit: price.billing_scheme == PriceBillingScheme::PerUnit
                && price.transform_quantity.is_none()
                && price.custom_unit_amount.is_none(),
        })
    }
}

/// `GET /v1/prices/{id}`. The Price API lives in a crate of async-stripe
/// this adapter does not otherwise need, and its object type is shared.
struct RetrievePrice {
    /// Checked by the configuration to be letters, digits, `_` and `-`.
    id: String,
}

impl StripeRequest for RetrievePrice {
    type Output = stripe_shared::Price;

    fn build(&self) -> RequestBuilder {
        RequestBuilder::new(StripeMethod::Get, format!("/prices/{}", self.id))
    }
}

/// Converts one planned line to async-stripe's request type.
fn checkout_line(item: Item, currency: &stripe_types::Currency) -> CreateCheckoutSessionLineItems {
    let mut line = CreateCheckoutSessionLineItems::new();
    match item {
        Item::Price { price, quantity, .. } => {
            line.price = Some(price);
            line.quantity = Some(quantity);
        }
        Item::Inline { unit_amount, quantity, label } => {
            let mut price_data = CreateCheckoutSessionLineItemsPriceData::new(currency.clone());
            price_data.unit_amount = Some(unit_amount);
            match label {
                Label::Product(product) => price_data.product = Some(product),
                Label::Name(name) => price_data.product_data = Some(ProductData::new(name)),
            }
            line.price_data = Some(price_data);
            line.quantity = Some(quantity);
        }
    }
    line
}

/// The metadata sent with every object the adapter creates: opaque ids, nothing else.
pub(crate) fn payment_metadata(request: &StartRequest) -> HashMap<String, String> {
    HashMap::from([
        (METADATA_TENANT_ID.to_owned(), request.tenant_id.to_string()),
        (METADATA_INVOICE_ID.to_owned(), request.invoice_id.to_string()),
        (METADATA_PAYMENT_ID.to_owned(), request.payment_id.to_string()),
    ])
}

/// Stripe's lower-case currency code for the request's amount.
pub(crate) fn stripe_currency(request: &StartRequest) -> stripe_types::Currency {
    let code = request.amount.currency().code().to_ascii_lowercase();
    match code.parse::<stripe_types::Currency>() {
        Ok(currency) => currency,
        Err(never) => match never {},
    }
}

/// A locale Stripe knows, or `None` so that Checkout picks one from the browser.
fn known_locale(locale: &str) -> Option<CheckoutSessionLocale> {
    match locale.parse::<CheckoutSessionLocale>() {
        Ok(CheckoutSessionLocale::Unknown(_)) => None,
        Ok(known) => Some(known),
        Err(never) => match never {},
    }
}
