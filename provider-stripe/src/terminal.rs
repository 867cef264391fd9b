//! Card-present payments on a Stripe Terminal reader, driven from the server.
//!
//! Starting creates a `card_present` PaymentIntent with automatic capture and
//! requests the reader to process it. The reader's answer only means it is
//! prompting for a card: the payment stays pending until a webhook or a fetch
//! of the PaymentIntent confirms the money. Both calls carry idempotency keys
//! derived from the payment id.

use stripe::{RequestStrategy, StripeRequest};
use stripe_core::payment_intent::CreatePaymentIntent;
use stripe_shared::{PaymentIntentAllowedPaymentMethodTypes, PaymentIntentCaptureMethod};
use stripe_terminal::terminal_reader::{CancelActionTerminalReader, ProcessPaymentIntentTerminalReader};

use billing_domain::{ProviderError, ProviderReference, StaffContext, StartOutcome, StartRequest};

use crate::amount::to_stripe_amount;
use crate::checkout::{payment_metadata, stripe_currency};
use crate::provider::{Ambiguity, StripeProvider};

impl StripeProvider {
    pub(crate) async fn start_terminal(
        &self,
        request: &StartRequest,
        reader: &str,
    ) -> Result<StartOutcome, ProviderError> {
        let amount_minor = to_stripe_amount(request.amount).map_err(|error| self.invalid_request(error))?;

        // rc.10 has no `payment_method_types` setter; `allowed_payment_method_types`
        // limits the PaymentIntent to card-present methods instead.
        let intent_key = self.idempotency_key(&format!("billing-terminal-intent-{}", request.payment_id))?;
        let intent = CreatePaymentIntent::new(amount_minor, stripe_currency(request))
            .allowed_payment_method_types(vec![PaymentIntentAllowedPaymentMethodTypes::CardPresent])
            .capture_method(PaymentIntentCaptureMethod::Automatic)
            .metadata(payment_metadata(request))
            .customize()
            .request_strategy(RequestStrategy::Idempotent(intent_key))
            .send(&self.client)
            .await
            .map_err(|error| self.api_error(error, "creating a card-present PaymentIntent", Ambiguity::None))?;

        // FIXME: when the reader call fails, the PaymentIntent stays behind in
        // `requires_payment_method`. It can never charge, but it is not canceled.
        let process_key = self.idempotency_key(&format!("billing-terminal-process-{}", request.payment_id))?;
        let during = format!("asking reader {reader} to process PaymentIntent {}", intent.id.as_str());
        ProcessPaymentIntentTerminalReader::new(reader, intent.id.as_str())
            .customize()
            .request_strategy(RequestStrategy::Idempotent(process_key))
            .send(&self.client)
            .await
            .map_err(|error| self.api_error(error, &during, Ambiguity::MayHaveTakenEffect))?;

        let reference =
            ProviderReference::new(intent.id.as_str()).map_err(|error| ProviderError::UnexpectedResponse {
                provider: self.name.clone(),
                reason: format!("PaymentIntent id: {error}"),
            })?;
        tracing::info!(
            payment_id = %request.payment_id,
            invoice_id = %request.invoice_id,
            reference = %reference,
            reader,
            "stripe reader is processing a payment"
        );
        Ok(StartOutcome::TerminalStarted { reference, reader: reader.to_owned() })
    }

    /// Cancels what `reader` is doing (a card prompt), as staff.
    ///
    /// The payment the reader was processing stays pending until its
    /// PaymentIntent's state arrives by webhook or fetch.
    ///
    /// # Note
    ///
    /// Readers belong to the Stripe account, not to a tenant, so any staff
    /// member of any tenant sharing the account can cancel any reader.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidRequest`] for an empty reader id, and the
    /// mapped Stripe error when the call fails.
    pub async fn cancel_reader_action(&self, staff: &StaffContext, reader: &str) -> Result<(), ProviderError> {
        if reader.trim().is_empty() {
            return Err(self.invalid_request("reader id must not be empty"));
        }
        CancelActionTerminalReader::new(reader).send(&self.client).await.map_err(|error| {
            self.api_error(error, &format!("canceling the action of reader {reader}"), Ambiguity::None)
        })?;
        tracing::info!(reader, staff = %staff.user_id(), tenant_id = %staff.tenant_id(), "stripe reader action canceled");
        Ok(())
    }
}
