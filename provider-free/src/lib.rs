//! Payments that need no payment provider: invoices with a zero total, and
//! money staff confirm by hand (cash, bank transfer).
//!
//! Both complete through the same provider-event path as Stripe and
//! Maksekeskus, so the invoice, payment, credits and log look the same
//! whichever way an invoice was settled. Event ids derive from the invoice
//! (free) or from the invoice and its receipt or transfer reference (manual),
//! so completing twice is a duplicate, never a second credit grant.
//!
//! Neither provider receives webhooks. Recording a manual payment is
//! staff-only because [`BillingService::record_manual_payment`] takes a
//! `StaffContext`; these providers never start one on their own.
//!
//! [`BillingService::record_manual_payment`]: billing_domain::BillingService::record_manual_payment

use async_trait::async_trait;
use billing_domain::provider::Operation;
use billing_domain::{
    Channel, EventId, EventKind, Payment, PaymentMatch, PaymentProvider, ProviderError, ProviderEvent, ProviderName,
    ProviderReference, StartOutcome, StartRequest, WebhookRequest,
};
use time::OffsetDateTime;

/// The name [`FreeProvider`] registers under.
pub const FREE: &str = "free";
/// The name [`ManualProvider`] registers under.
pub const MANUAL: &str = "manual";

/// Completes invoices whose total is zero.
#[derive(Debug, Clone, Default)]
pub struct FreeProvider;

/// Completes payments staff confirmed by hand: cash or a bank transfer with its reference.
#[derive(Debug, Clone, Default)]
pub struct ManualProvider;

#[async_trait]
impl PaymentProvider for FreeProvider {
    fn name(&self) -> ProviderName {
        provider_name(FREE)
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let name = self.name();
        if request.channel != Channel::Free {
            return Err(ProviderError::Unsupported { provider: name, operation: operation_for(&request.channel) });
        }
        if !request.amount.is_zero() {
            return Err(ProviderError::InvalidRequest {
                provider: name,
                reason: format!(
                    "invoice {} totals {}; only a zero total completes for free",
                    request.invoice_number, request.amount
                ),
            });
        }
        let reference = reference(&name, format!("free:{}", request.invoice_id))?;
        let event = completion(&name, request.requested_at, request, &reference)?;
        tracing::info!(invoice_id = %request.invoice_id, payment_id = %request.payment_id, "zero-total invoice completed");
        Ok(StartOutcome::Completed { reference, events: vec![event] })
    }

    async fn verify_webhook(
        &self,
        _request: &WebhookRequest,
        _now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Unsupported { provider: self.name(), operation: Operation::Webhook })
    }

    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        if payment.channel != Channel::Free {
            return Err(ProviderError::Unsupported { provider: self.name(), operation: Operation::Fetch });
        }
        restate_completion(&self.name(), payment)
    }
}

#[async_trait]
impl PaymentProvider for ManualProvider {
    fn name(&self) -> ProviderName {
        provider_name(MANUAL)
    }

    async fn start_payment(&self, request: &StartRequest) -> Result<StartOutcome, ProviderError> {
        let name = self.name();
        let Channel::Manual { method, reference: receipt } = &request.channel else {
            return Err(ProviderError::Unsupported { provider: name, operation: operation_for(&request.channel) });
        };
        if receipt.trim().is_empty() {
            return Err(ProviderError::InvalidRequest {
                provider: name,
                reason: "a manual payment needs its receipt number or bank transfer reference".into(),
            });
        }
        let reference = reference(&name, format!("{}:{}:{receipt}", method.as_str(), request.invoice_id))?;
        let event = completion(&name, request.requested_at, request, &reference)?;
        tracing::info!(invoice_id = %request.invoice_id, payment_id = %request.payment_id, method = method.as_str(), "manual payment recorded");
        Ok(StartOutcome::Completed { reference, events: vec![event] })
    }

    async fn verify_webhook(
        &self,
        _request: &WebhookRequest,
        _now: OffsetDateTime,
    ) -> Result<Vec<ProviderEvent>, ProviderError> {
        Err(ProviderError::Unsupported { provider: self.name(), operation: Operation::Webhook })
    }

    async fn fetch_payment(&self, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
        if !matches!(payment.channel, Channel::Manual { .. }) {
            return Err(ProviderError::Unsupported { provider: self.name(), operation: Operation::Fetch });
        }
        restate_completion(&self.name(), payment)
    }
}

fn completion(
    name: &ProviderName,
    occurred_at: OffsetDateTime,
    request: &StartRequest,
    reference: &ProviderReference,
) -> Result<ProviderEvent, ProviderError> {
    Ok(ProviderEvent {
        provider: name.clone(),
        event_id: event_id(name, reference)?,
        occurred_at,
        matches: PaymentMatch {
            tenant_id: Some(request.tenant_id),
            invoice_id: Some(request.invoice_id),
            payment_id: Some(request.payment_id),
            reference: Some(reference.clone()),
        },
        kind: EventKind::Succeeded,
        amount: Some(request.amount),
        provider_type: format!("{name}.completed"),
    })
}

/// A free or manual payment that exists was completed when it was recorded;
/// fetching restates that completion under the same event id, which the
/// inbox recognises as a duplicate. Callers first check that the payment is
/// of the provider's own channel: `start_payment` refused any other, so there
/// is no completion to restate.
fn restate_completion(name: &ProviderName, payment: &Payment) -> Result<Vec<ProviderEvent>, ProviderError> {
    let Some(reference) = &payment.reference else {
        return Err(ProviderError::MissingReference { payment: payment.id });
    };
    Ok(vec![ProviderEvent {
        provider: name.clone(),
        event_id: event_id(name, reference)?,
        occurred_at: payment.created_at,
        matches: PaymentMatch {
            tenant_id: Some(payment.tenant_id),
            invoice_id: Some(payment.invoice_id),
            payment_id: Some(payment.id),
            reference: Some(reference.clone()),
        },
        kind: EventKind::Succeeded,
        amount: Some(payment.amount),
        provider_type: format!("{name}.completed"),
    }])
}

/// The inbox id of a completion. Each reference completes once and these
/// providers report nothing else, so the reference itself is the id; any
/// prefix could push a reference that fits past the event id limit.
fn event_id(name: &ProviderName, reference: &ProviderReference) -> Result<EventId, ProviderError> {
    EventId::new(reference.as_str())
        .map_err(|error| ProviderError::InvalidRequest { provider: name.clone(), reason: error.to_string() })
}

fn reference(name: &ProviderName, text: String) -> Result<ProviderReference, ProviderError> {
    ProviderReference::new(text)
        .map_err(|error| ProviderError::InvalidRequest { provider: name.clone(), reason: error.to_string() })
}

fn operation_for(channel: &Channel) -> Operation {
    match channel {
        Channel::HostedPage => Operation::StartHostedPage,
        Channel::Terminal { .. } => Operation::StartTerminal,
        Channel::Free => Operation::StartFree,
        Channel::Manual { .. } => Operation::StartManual,
    }
}

fn provider_name(text: &'static str) -> ProviderName {
    match ProviderName::new(text) {
        Ok(name) => name,
        // Both names are short non-empty constants, which `ProviderName` accepts.
        Err(_) => unreachable!("{text} is a valid provider name"),
    }
}
