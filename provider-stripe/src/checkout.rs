//! Starting a payment on a Stripe Checkout page.
//!
//! The session charges the invoice total as one line item, labelled with the
//! invoice number or a configured Product, so no row text, name or e-mail
//! reaches Stripe. The session and its PaymentIntent carry our opaque ids as
//! metadata, and the create call carries an idempotency key derived from the
//! payment id, so a retried call cannot open a second session.

use std::collections::HashMap;

use stripe::{RequestStrategy, StripeRequest};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionPaymentIntentData, ProductData,
};
use stripe_shared::{CheckoutSessionLocale, CheckoutSessionMode};

use billing_domain::{ProviderError, ProviderReference, StartOutcome, StartRequest};

use crate::amount::to_stripe_amount;
use crate::config::LineItemLabel;
use crate::outcome::{METADATA_INVOICE_ID, METADATA_PAYMENT_ID, METADATA_TENANT_ID};
use crate::provider::{Ambiguity, StripeProvider};

impl StripeProvider {
    pub(crate) async fn start_checkout(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let amount_minor = to_stripe_amount(request.amount).map_err(|error| self.invalid_request(error))?;
        let currency = stripe_currency(request);
        let metadata = payment_metadata(request);

        let mut price_data = CreateCheckoutSessionLineItemsPriceData::new(currency);
        price_data.unit_amount = Some(amount_minor);
        match self.config.line_item() {
            LineItemLabel::InvoiceNumber => {
                price_data.product_data = Some(ProductData::new(format!("Invoice {}", request.invoice_number)));
            }
            LineItemLabel::Product(product) => price_data.product = Some(product.clone()),
        }
        let mut line_item = CreateCheckoutSessionLineItems::new();
        line_item.price_data = Some(price_data);
        line_item.quantity = Some(1);

        let mut intent_data = CreateCheckoutSessionPaymentIntentData::new();
        intent_data.metadata = Some(metadata.clone());

        let mut create = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .line_items(vec![line_item])
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
