//! Card-present payments on a Stripe Terminal reader, driven from the server.
//!
//! Starting creates a `card_present` PaymentIntent with automatic capture and
//! requests the reader to process it. The reader's answer only means it is
//! prompting for a card: the payment stays pending until a webhook or a fetch
//! of the PaymentIntent confirms the money. Both calls carry idempotency keys
//! derived from the payment id. When the reader definitely refuses, the
//! PaymentIntent is canceled so it does not linger as an open payment.

use stripe::{RequestStrategy, StripeRequest};
use stripe_core::payment_intent::{CancelPaymentIntent, CancelPaymentIntentCancellationReason, CreatePaymentIntent};
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

        let process_key = self.idempotency_key(&format!("billing-terminal-process-{}", request.payment_id))?;
        let during = format!("asking reader {reader} to process PaymentIntent {}", intent.id.as_str());
        let processed = ProcessPaymentIntentTerminalReader::new(reader, intent.id.as_str())
            .customize()
            .request_strategy(RequestStrategy::Idempotent(process_key))
            .send(&self.client)
            .await
            .map_err(|error| self.api_error(error, &during, Ambiguity::MayHaveTakenEffect));
        if let Err(error) = processed {
            // A reader that may be prompting keeps its PaymentIntent. One that
            // definitely rejected the action leaves a PaymentIntent that cannot charge.
            if !error.is_ambiguous() {
                self.cancel_unused_intent(request, intent.id.as_str()).await;
            }
            return Err(error);
        }

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

    /// Cancels a PaymentIntent whose reader refused it, so it does not linger
    /// in the Dashboard as an open payment. A failure is logged, not returned:
    /// the start has failed already, and the PaymentIntent cannot charge
    /// without a reader.
    async fn cancel_unused_intent(&self, request: &StartRequest, intent_id: &str) {
        let canceled = CancelPaymentIntent::new(intent_id)
            .cancellation_reason(CancelPaymentIntentCancellationReason::Abandoned)
            .send(&self.client)
            .await;
        match canceled {
            Ok(_) => tracing::info!(
                payment_id = %request.payment_id,
                payment_intent = intent_id,
                "stripe PaymentIntent canceled after the reader refused it"
            ),
            Err(error) => tracing::warn!(
                payment_id = %request.payment_id,
                payment_intent = intent_id,
                error = %self.api_error(error, "canceling the PaymentIntent", Ambiguity::None),
                "stripe PaymentIntent left open after the reader refused it; cancel it in the Dashboard"
            ),
        }
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
