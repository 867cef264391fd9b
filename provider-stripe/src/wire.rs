//! The few fields of Stripe objects the adapter reads, as plain serde types.
//!
//! Webhook payloads are rendered in the endpoint's API version, which may
//! differ from the version async-stripe was generated for. Reading only
//! these fields, and ignoring the rest, keeps a change in an unrelated field
//! from turning a genuine payment event into a rejected webhook. Fetched
//! objects arrive as async-stripe's typed objects and are converted into the
//! same types, so webhooks and fetches share one mapping.

use std::collections::HashMap;

use serde::Deserialize;

/// An id, or the expanded object that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum IdOrObject {
    Id(String),
    Object { id: String },
}

impl IdOrObject {
    pub fn id(&self) -> &str {
        match self {
            IdOrObject::Id(id) | IdOrObject::Object { id } => id,
        }
    }
}

/// A `checkout.session`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Session {
    pub id: String,
    /// `open`, `complete` or `expired`.
    pub status: Option<String>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: String,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    pub client_reference_id: Option<String>,
    /// Only read from fetches, where the adapter expands it.
    #[serde(skip)]
    pub payment_intent: Option<PaymentIntent>,
}

/// A `payment_intent`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_received: i64,
    pub currency: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
    /// `processing`, `requires_capture`, `canceled` or `succeeded`.
    pub status: String,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    #[serde(default)]
    pub payment_method_types: Vec<String>,
    /// Whether Stripe recorded an error for the last attempt.
    #[serde(rename = "last_payment_error", default, deserialize_with = "present")]
    pub has_last_payment_error: bool,
    /// Only read from fetches, where the adapter expands it.
    #[serde(skip)]
    pub latest_charge: Option<Charge>,
}

impl PaymentIntent {
    /// Returns whether the PaymentIntent is for a card reader (Terminal).
    pub fn is_card_present(&self) -> bool {
        self.payment_method_types.iter().any(|kind| kind == "card_present" || kind == "interac_present")
    }
}

/// A `charge`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    /// Cumulative: the total refunded so far, not this refund alone.
    #[serde(default)]
    pub amount_refunded: i64,
    pub currency: String,
    /// Whether a dispute was ever opened on the charge; it stays true once closed.
    #[serde(default)]
    pub disputed: bool,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    pub payment_intent: Option<IdOrObject>,
}

/// A `dispute`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `warning_needs_response`, `warning_under_review`, `warning_closed`,
    /// `needs_response`, `under_review`, `won`, `lost` or `prevented`.
    pub status: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    pub charge: Option<IdOrObject>,
    pub payment_intent: Option<IdOrObject>,
}

/// A `terminal.reader`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reader {
    pub id: String,
    pub action: Option<ReaderAction>,
}

/// The action a reader is performing or last performed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ReaderAction {
    #[serde(rename = "type")]
    pub kind: String,
    /// `in_progress`, `succeeded` or `failed`.
    pub status: String,
    pub failure_code: Option<String>,
    pub process_payment_intent: Option<ProcessPaymentIntentAction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ProcessPaymentIntentAction {
    pub payment_intent: IdOrObject,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = Option::<serde::de::IgnoredAny>::deserialize(deserializer)?;
    Ok(value.is_some())
}

impl From<&stripe_shared::Dispute> for Dispute {
    fn from(dispute: &stripe_shared::Dispute) -> Dispute {
        Dispute {
            id: dispute.id.as_str().to_owned(),
            amount: dispute.amount,
            currency: dispute.currency.to_string(),
            status: dispute.status.as_str().to_owned(),
            created: dispute.created,
            charge: Some(IdOrObject::Id(dispute.charge.id().as_str().to_owned())),
            payment_intent: dispute
                .payment_intent
                .as_ref()
                .map(|intent| IdOrObject::Id(intent.id().as_str().to_owned())),
        }
    }
}

impl From<&stripe_shared::CheckoutSession> for Session {
    fn from(session: &stripe_shared::CheckoutSession) -> Session {
        let payment_intent = match &session.payment_intent {
            Some(stripe_types::Expandable::Object(intent)) => Some(PaymentIntent::from(intent.as_ref())),
            Some(stripe_types::Expandable::Id(_)) | None => None,
        };
        Session {
            id: session.id.as_str().to_owned(),
            status: session.status.as_ref().map(|status| status.as_str().to_owned()),
            payment_status: session.payment_status.as_str().to_owned(),
            amount_total: session.amount_total,
            currency: session.currency.as_ref().map(ToString::to_string),
            metadata: session.metadata.clone(),
            client_reference_id: session.client_reference_id.clone(),
            payment_intent,
        }
    }
}

impl From<&stripe_shared::PaymentIntent> for PaymentIntent {
    fn from(intent: &stripe_shared::PaymentIntent) -> PaymentIntent {
        let latest_charge = match &intent.latest_charge {
            Some(stripe_types::Expandable::Object(charge)) => Some(Charge::from(charge.as_ref())),
            Some(stripe_types::Expandable::Id(_)) | None => None,
        };
        PaymentIntent {
            id: intent.id.as_str().to_owned(),
            amount: intent.amount,
            amount_received: intent.amount_received,
            currency: intent.currency.to_string(),
            status: intent.status.as_str().to_owned(),
            metadata: Some(intent.metadata.clone()),
            payment_method_types: intent.payment_method_types.clone(),
            has_last_payment_error: intent.last_payment_error.is_some(),
            latest_charge,
        }
    }
}

impl From<&stripe_shared::Charge> for Charge {
    fn from(charge: &stripe_shared::Charge) -> Charge {
        Charge {
            id: charge.id.as_str().to_owned(),
            amount: charge.amount,
            amount_refunded: charge.amount_refunded,
            currency: charge.currency.to_string(),
            disputed: charge.disputed,
            metadata: Some(charge.metadata.clone()),
            payment_intent: charge
                .payment_intent
                .as_ref()
                .map(|intent| IdOrObject::Id(intent.id().as_str().to_owned())),
        }
    }
}
