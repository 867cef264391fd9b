//! Mapping of a Stripe object's state to the domain's vocabulary.
//!
//! Webhooks and fetches both end here, so a Checkout Session or PaymentIntent
//! in a given state always becomes the same [`EventKind`] and amount. The
//! functions are pure: they read the object and never call Stripe.

use std::collections::HashMap;

use billing_domain::{EventKind, InvoiceId, Money, PaymentId, PaymentMatch, ProviderReference, TenantId};

use crate::amount::{from_stripe_amount, AmountError};
use crate::wire::{Charge, Dispute, PaymentIntent, Session};

/// Metadata keys the adapter sends to Stripe. They carry opaque ids only.
pub const METADATA_TENANT_ID: &str = "tenant_id";
pub const METADATA_INVOICE_ID: &str = "invoice_id";
pub const METADATA_PAYMENT_ID: &str = "payment_id";

/// A state mapped to the domain: the kind, the amount Stripe reports as moved, and a
/// short label of the Stripe state for deterministic fetch event ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: EventKind,
    pub amount: Option<Money>,
    pub label: String,
}

/// Builds the payment match from our metadata ids, with `reference` as the
/// fallback. `client_reference_id` replaces a missing `payment_id`.
///
/// A metadata value that is not a UUID is treated as absent: the object was
/// not created by this adapter, and matching falls back to the reference.
///
/// # Errors
///
/// [`OutcomeError::InvalidReference`] for an empty reference.
pub fn payment_match(
    metadata: Option<&HashMap<String, String>>,
    client_reference_id: Option<&str>,
    reference: &str,
) -> Result<PaymentMatch, OutcomeError> {
    let value = |key: &str| metadata.and_then(|metadata| metadata.get(key)).map(String::as_str);
    let payment_id = value(METADATA_PAYMENT_ID).or(client_reference_id);
    Ok(PaymentMatch {
        tenant_id: parse_id::<TenantId>(value(METADATA_TENANT_ID)),
        invoice_id: parse_id::<InvoiceId>(value(METADATA_INVOICE_ID)),
        payment_id: parse_id::<PaymentId>(payment_id),
        reference: Some(
            ProviderReference::new(reference)
                .map_err(|_| OutcomeError::InvalidReference { reference: reference.to_owned() })?,
        ),
    })
}

/// Returns the amount a Checkout Session charges.
///
/// # Errors
///
/// [`OutcomeError::MissingField`] when `amount_total` or `currency` is null.
pub fn session_amount(session: &Session) -> Result<Money, OutcomeError> {
    let minor =
        session.amount_total.ok_or(OutcomeError::MissingField { object: "checkout.session", field: "amount_total" })?;
    let currency = session
        .currency
        .as_deref()
        .ok_or(OutcomeError::MissingField { object: "checkout.session", field: "currency" })?;
    Ok(from_stripe_amount(minor, currency)?)
}

/// Maps a fetched Checkout Session, with its PaymentIntent and latest charge
/// expanded, to outcomes: its settlement state, then any refund.
///
/// # Errors
///
/// [`OutcomeError`] for a state, amount or currency the adapter cannot read.
pub fn session_outcomes(session: &Session) -> Result<Vec<Outcome>, OutcomeError> {
    let status = session.status.as_deref().unwrap_or("open");
    let state = match (status, session.payment_status.as_str()) {
        ("open", _) => Outcome { kind: EventKind::Pending, amount: None, label: "open".into() },
        ("expired", _) => Outcome { kind: EventKind::Expired, amount: None, label: "expired".into() },
        ("complete", "paid") => Outcome {
            kind: EventKind::Succeeded,
            amount: Some(session_amount(session)?),
            label: "complete:paid".into(),
        },
        // A delayed payment method: the PaymentIntent says whether it is still
        // processing or has failed.
        ("complete", "unpaid") => match &session.payment_intent {
            Some(intent) => {
                let mut outcome = intent_outcome(intent)?;
                outcome.label = format!("complete:unpaid:{}", outcome.label);
                outcome
            }
            None => Outcome { kind: EventKind::Pending, amount: None, label: "complete:unpaid".into() },
        },
        (status, payment_status) => {
            return Err(OutcomeError::UnknownStatus {
                object: "checkout.session",
                value: format!("{status}/{payment_status}"),
            })
        }
    };

    let mut outcomes = vec![state];
    if let Some(refund) = session.payment_intent.as_ref().and_then(|intent| intent.latest_charge.as_ref()) {
        outcomes.extend(refund_outcome(refund)?);
    }
    Ok(outcomes)
}

/// Maps a fetched PaymentIntent, with its latest charge expanded, to outcomes.
///
/// # Errors
///
/// [`OutcomeError`] for a state, amount or currency the adapter cannot read.
pub fn intent_outcomes(intent: &PaymentIntent) -> Result<Vec<Outcome>, OutcomeError> {
    let mut outcomes = vec![intent_outcome(intent)?];
    if let Some(charge) = &intent.latest_charge {
        outcomes.extend(refund_outcome(charge)?);
    }
    Ok(outcomes)
}

/// Maps a PaymentIntent's status.
///
/// `requires_payment_method` after a recorded error is a failed attempt;
/// without one the customer has not paid yet. `requires_capture` stays
/// pending because the adapter creates PaymentIntents with automatic capture.
///
/// # Errors
///
/// [`OutcomeError::UnknownStatus`] for a status Stripe did not document.
pub fn intent_outcome(intent: &PaymentIntent) -> Result<Outcome, OutcomeError> {
    let status = intent.status.as_str();
    let (kind, amount) = match status {
        "succeeded" => (EventKind::Succeeded, Some(from_stripe_amount(intent.amount_received, &intent.currency)?)),
        "processing" | "requires_action" | "requires_confirmation" | "requires_capture" => (EventKind::Pending, None),
        "requires_payment_method" if intent.has_last_payment_error => (EventKind::Failed, None),
        "requires_payment_method" => (EventKind::Pending, None),
        "canceled" => (EventKind::Canceled, None),
        other => return Err(OutcomeError::UnknownStatus { object: "payment_intent", value: other.to_owned() }),
    };
    Ok(Outcome { kind, amount, label: status.to_owned() })
}

/// The cumulative refund on a charge, if there is any.
///
/// # Errors
///
/// [`OutcomeError::Amount`] for an amount or currency the adapter cannot read.
pub fn refund_outcome(charge: &Charge) -> Result<Option<Outcome>, OutcomeError> {
    if charge.amount_refunded <= 0 {
        return Ok(None);
    }
    let total_refunded = from_stripe_amount(charge.amount_refunded, &charge.currency)?;
    Ok(Some(Outcome {
        kind: EventKind::Refunded { total_refunded },
        amount: Some(total_refunded),
        label: format!("refunded:{}", charge.amount_refunded),
    }))
}

/// Maps a dispute to outcomes: its opening, then its result once it has one.
/// A fetch reports both, so a payment whose opening webhook never arrived
/// still ends won or lost.
///
/// # Errors
///
/// [`OutcomeError`] for a status or amount the adapter cannot read.
pub fn dispute_outcomes(dispute: &Dispute) -> Result<Vec<Outcome>, OutcomeError> {
    let amount = Some(from_stripe_amount(dispute.amount, &dispute.currency)?);
    let opened = Outcome { kind: EventKind::DisputeOpened, amount, label: format!("dispute:{}:opened", dispute.id) };
    let Some(result) = dispute_result(dispute)? else {
        return Ok(vec![opened]);
    };
    let closed = Outcome { kind: result, amount, label: format!("dispute:{}:{}", dispute.id, dispute.status) };
    Ok(vec![opened, closed])
}

/// Returns the result of a closed dispute, or `None` while it is open. An inquiry
/// that closed without a chargeback (`warning_closed`) and a dispute that
/// was prevented both leave the money with the merchant, so they count as won.
///
/// # Errors
///
/// [`OutcomeError::UnknownStatus`] for a status Stripe did not document.
pub fn dispute_result(dispute: &Dispute) -> Result<Option<EventKind>, OutcomeError> {
    match dispute.status.as_str() {
        "won" | "warning_closed" | "prevented" => Ok(Some(EventKind::DisputeWon)),
        "lost" => Ok(Some(EventKind::DisputeLost)),
        "warning_needs_response" | "warning_under_review" | "needs_response" | "under_review" => Ok(None),
        other => Err(OutcomeError::UnknownStatus { object: "dispute", value: other.to_owned() }),
    }
}

fn parse_id<T: std::str::FromStr>(value: Option<&str>) -> Option<T> {
    value.and_then(|value| value.parse().ok())
}

/// Why a Stripe object could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeError {
    #[error("{object} has no {field}")]
    MissingField { object: &'static str, field: &'static str },

    #[error("{object} has status {value:?}, which the adapter does not know")]
    UnknownStatus { object: &'static str, value: String },

    #[error("its object is not readable: {reason}")]
    Unreadable { reason: String },

    #[error("reference {reference:?} is not a valid provider reference")]
    InvalidReference { reference: String },

    #[error(transparent)]
    Amount(#[from] AmountError),
}
