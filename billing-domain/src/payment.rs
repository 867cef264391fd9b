//! Payments: one attempt to settle an invoice through one provider and channel.
//!
//! The state machine only moves forward:
//! `Created → Pending | Unknown → Succeeded | Failed | Expired | Canceled`,
//! then `Succeeded → PartiallyRefunded | Refunded | Disputed`,
//! `Disputed → DisputeWon | DisputeLost`. `Unknown` means "may have happened":
//! only a fetch of the provider's state or an audited staff decision leaves it.
//! A late or repeated report returns [`PaymentMove::Stale`] or
//! [`Transition::AlreadyApplied`] instead of rewinding the state.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{InvoiceId, PaymentId, ProviderName, ProviderReference, TenantId};
use crate::money::{Money, MoneyError};
use crate::Transition;

/// The way the customer pays in one attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Channel {
    /// A provider-hosted page (Stripe Checkout, Maksekeskus payment page).
    HostedPage,
    /// A card reader operated by staff.
    Terminal { reader: String },
    /// An invoice whose total is zero.
    Free,
    /// Money received outside any provider and confirmed by staff.
    Manual { method: ManualMethod, reference: String },
}

/// The way money arrived outside a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualMethod {
    Cash,
    BankTransfer,
}

impl ManualMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ManualMethod::Cash => "cash",
            ManualMethod::BankTransfer => "bank_transfer",
        }
    }
}

/// The state of a payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Stored, provider not yet called.
    Created,
    /// The provider accepted the attempt; the customer has not finished.
    Pending,
    /// The provider call timed out or answered ambiguously: it may have happened.
    Unknown,
    Succeeded,
    Failed,
    Expired,
    Canceled,
    PartiallyRefunded,
    Refunded,
    Disputed,
    DisputeWon,
    DisputeLost,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Created => "created",
            PaymentStatus::Pending => "pending",
            PaymentStatus::Unknown => "unknown",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Expired => "expired",
            PaymentStatus::Canceled => "canceled",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Disputed => "disputed",
            PaymentStatus::DisputeWon => "dispute_won",
            PaymentStatus::DisputeLost => "dispute_lost",
        }
    }

    /// Whether the attempt may still succeed, so the public page shows "processing".
    pub fn is_in_flight(self) -> bool {
        matches!(self, PaymentStatus::Created | PaymentStatus::Pending | PaymentStatus::Unknown)
    }

    /// Whether the money arrived at some point (later refunds included).
    pub fn has_succeeded(self) -> bool {
        matches!(
            self,
            PaymentStatus::Succeeded
                | PaymentStatus::PartiallyRefunded
                | PaymentStatus::Refunded
                | PaymentStatus::Disputed
                | PaymentStatus::DisputeWon
                | PaymentStatus::DisputeLost
        )
    }

    /// Whether the attempt ended without money moving.
    pub fn has_failed(self) -> bool {
        matches!(self, PaymentStatus::Failed | PaymentStatus::Expired | PaymentStatus::Canceled)
    }

    fn rank(self) -> u8 {
        match self {
            PaymentStatus::Created => 0,
            PaymentStatus::Pending | PaymentStatus::Unknown => 1,
            _ => 2,
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of asking a payment to move to a pre-settlement state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentMove {
    /// The payment moved.
    Moved(Transition),
    /// The report is older than what is on record (a late "pending" after
    /// "succeeded"); nothing changed.
    Stale { current: PaymentStatus },
}

/// One attempt to settle an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub tenant_id: TenantId,
    pub invoice_id: InvoiceId,
    pub provider: ProviderName,
    pub channel: Channel,
    /// The invoice total when the attempt started.
    pub amount: Money,
    status: PaymentStatus,
    /// The provider's handle, once the provider has given one.
    pub reference: Option<ProviderReference>,
    /// Cumulative amount the provider reports as refunded.
    refunded: Money,
    /// Set when a second payment succeeded for an already settled invoice.
    pub overpayment: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Optimistic concurrency version, bumped by the store on every write.
    pub version: u64,
}

impl Payment {
    pub fn new(
        id: PaymentId,
        tenant_id: TenantId,
        invoice_id: InvoiceId,
        provider: ProviderName,
        channel: Channel,
        amount: Money,
        now: OffsetDateTime,
    ) -> Payment {
        Payment {
            id,
            tenant_id,
            invoice_id,
            provider,
            channel,
            amount,
            status: PaymentStatus::Created,
            reference: None,
            refunded: Money::zero(amount.currency()),
            overpayment: false,
            created_at: now,
            updated_at: now,
            version: 0,
        }
    }

    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    pub fn refunded(&self) -> Money {
        self.refunded
    }

    /// Moves a payment that has not settled yet to `Pending`, `Unknown`,
    /// `Failed`, `Expired` or `Canceled`.
    ///
    /// A report for a payment that has already settled or failed is `Stale`,
    /// except that `Unknown` and `Pending` may still end in failure.
    ///
    /// # Errors
    ///
    /// [`PaymentError::InvalidTransition`] when `to` is not one of those targets.
    pub fn advance(&mut self, to: PaymentStatus, now: OffsetDateTime) -> Result<PaymentMove, PaymentError> {
        if !(to.is_in_flight() || to.has_failed()) {
            return Err(PaymentError::InvalidTransition { payment: self.id, from: self.status, to });
        }
        if self.status == to {
            return Ok(PaymentMove::Moved(Transition::AlreadyApplied));
        }
        // Settled and failed payments are final for this method, and no report
        // may take a payment back towards `Created`.
        if self.status.rank() == 2 || to.rank() < self.status.rank() {
            return Ok(PaymentMove::Stale { current: self.status });
        }
        self.status = to;
        self.updated_at = now;
        Ok(PaymentMove::Moved(Transition::Applied))
    }

    /// Records that the money arrived.
    ///
    /// A success is accepted after `Failed`, `Expired` or `Canceled` too: a
    /// provider can fail one attempt of a PaymentIntent and succeed a later one,
    /// and money that arrived is the truth the invoice must follow.
    pub fn succeed(&mut self, now: OffsetDateTime) -> Transition {
        if self.status.has_succeeded() {
            return Transition::AlreadyApplied;
        }
        self.status = PaymentStatus::Succeeded;
        self.updated_at = now;
        Transition::Applied
    }

    /// Records the cumulative refunded amount the provider reports.
    ///
    /// Returns the amount newly refunded by this report (zero for a replay).
    ///
    /// # Errors
    ///
    /// [`PaymentError::InvalidTransition`] before success,
    /// [`PaymentError::RefundExceedsAmount`] when the cumulative amount is above
    /// what was paid, [`PaymentError::Money`] for another currency.
    pub fn record_refund(&mut self, cumulative: Money, now: OffsetDateTime) -> Result<Money, PaymentError> {
        if !self.status.has_succeeded() || self.status == PaymentStatus::DisputeLost {
            return Err(PaymentError::InvalidTransition {
                payment: self.id,
                from: self.status,
                to: PaymentStatus::Refunded,
            });
        }
        let newly = cumulative.checked_sub(self.refunded)?;
        if cumulative > self.amount {
            return Err(PaymentError::RefundExceedsAmount {
                payment: self.id,
                refunded: cumulative,
                paid: self.amount,
            });
        }
        if newly.is_negative() || newly.is_zero() {
            return Ok(Money::zero(self.amount.currency()));
        }
        self.refunded = cumulative;
        self.status =
            if cumulative == self.amount { PaymentStatus::Refunded } else { PaymentStatus::PartiallyRefunded };
        self.updated_at = now;
        Ok(newly)
    }

    /// Marks the payment as contested. An opening that arrives after the
    /// dispute closed is stale and changes nothing.
    ///
    /// NOTE: a payment has one dispute. Stripe allows one per charge, but a
    /// provider that opened a second one after the first closed would see
    /// its opening ignored and its result rejected for staff.
    ///
    /// # Errors
    ///
    /// [`PaymentError::InvalidTransition`] unless the money arrived.
    pub fn open_dispute(&mut self, now: OffsetDateTime) -> Result<Transition, PaymentError> {
        match self.status {
            PaymentStatus::Disputed | PaymentStatus::DisputeWon | PaymentStatus::DisputeLost => {
                Ok(Transition::AlreadyApplied)
            }
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded => {
                self.status = PaymentStatus::Disputed;
                self.updated_at = now;
                Ok(Transition::Applied)
            }
            from => Err(PaymentError::InvalidTransition { payment: self.id, from, to: PaymentStatus::Disputed }),
        }
    }

    /// Closes a dispute as won or lost.
    ///
    /// # Errors
    ///
    /// [`PaymentError::InvalidTransition`] unless a dispute is open.
    pub fn close_dispute(&mut self, won: bool, now: OffsetDateTime) -> Result<Transition, PaymentError> {
        let to = if won { PaymentStatus::DisputeWon } else { PaymentStatus::DisputeLost };
        if self.status == to {
            return Ok(Transition::AlreadyApplied);
        }
        if self.status != PaymentStatus::Disputed {
            return Err(PaymentError::InvalidTransition { payment: self.id, from: self.status, to });
        }
        self.status = to;
        self.updated_at = now;
        Ok(Transition::Applied)
    }
}

/// A rejected payment change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    #[error("payment {payment} cannot move from {from} to {to}")]
    InvalidTransition { payment: PaymentId, from: PaymentStatus, to: PaymentStatus },

    #[error("payment {payment}: refunded total {refunded} exceeds the {paid} paid")]
    RefundExceedsAmount { payment: PaymentId, refunded: Money, paid: Money },

    #[error(transparent)]
    Money(#[from] MoneyError),
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;
    use crate::money::Currency;

    fn at() -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH
    }

    fn eur(amount: rust_decimal::Decimal) -> Money {
        Money::new(amount, Currency::EUR).unwrap()
    }

    fn payment() -> Payment {
        Payment::new(
            PaymentId::from_random_bytes([1; 16]),
            TenantId::from_random_bytes([2; 16]),
            InvoiceId::from_random_bytes([3; 16]),
            ProviderName::new("stripe").unwrap(),
            Channel::HostedPage,
            eur(dec!(20)),
            at(),
        )
    }

    #[test]
    fn pending_then_succeeded() {
        let mut payment = payment();
        assert_eq!(payment.advance(PaymentStatus::Pending, at()).unwrap(), PaymentMove::Moved(Transition::Applied));
        assert_eq!(
            payment.advance(PaymentStatus::Pending, at()).unwrap(),
            PaymentMove::Moved(Transition::AlreadyApplied)
        );
        assert_eq!(payment.succeed(at()), Transition::Applied);
        assert_eq!(payment.succeed(at()), Transition::AlreadyApplied);
    }

    #[test]
    fn late_pending_after_success_is_stale() {
        let mut payment = payment();
        payment.succeed(at());
        assert_eq!(
            payment.advance(PaymentStatus::Pending, at()).unwrap(),
            PaymentMove::Stale { current: PaymentStatus::Succeeded }
        );
        assert_eq!(
            payment.advance(PaymentStatus::Expired, at()).unwrap(),
            PaymentMove::Stale { current: PaymentStatus::Succeeded }
        );
        assert_eq!(payment.status(), PaymentStatus::Succeeded);
    }

    #[test]
    fn unknown_resolves_to_failure_or_success() {
        let mut payment = payment();
        payment.advance(PaymentStatus::Unknown, at()).unwrap();
        assert!(payment.status().is_in_flight());
        payment.advance(PaymentStatus::Failed, at()).unwrap();
        assert_eq!(payment.status(), PaymentStatus::Failed);
        assert_eq!(payment.succeed(at()), Transition::Applied);
        assert_eq!(payment.status(), PaymentStatus::Succeeded);
    }

    #[test]
    fn advance_rejects_settlement_targets() {
        let mut payment = payment();
        let error = payment.advance(PaymentStatus::Refunded, at()).unwrap_err();
        assert_eq!(error.to_string(), format!("payment {} cannot move from created to refunded", payment.id));
    }

    #[test]
    fn refunds_are_cumulative() {
        let mut payment = payment();
        assert!(payment.record_refund(eur(dec!(5)), at()).is_err());
        payment.succeed(at());
        assert_eq!(payment.record_refund(eur(dec!(5)), at()).unwrap(), eur(dec!(5)));
        assert_eq!(payment.status(), PaymentStatus::PartiallyRefunded);
        assert_eq!(payment.record_refund(eur(dec!(5)), at()).unwrap(), eur(dec!(0)));
        assert_eq!(payment.record_refund(eur(dec!(3)), at()).unwrap(), eur(dec!(0)));
        assert_eq!(payment.record_refund(eur(dec!(20)), at()).unwrap(), eur(dec!(15)));
        assert_eq!(payment.status(), PaymentStatus::Refunded);
    }

    #[test]
    fn refund_above_amount_is_rejected() {
        let mut payment = payment();
        payment.succeed(at());
        assert!(matches!(payment.record_refund(eur(dec!(21)), at()), Err(PaymentError::RefundExceedsAmount { .. })));
        let usd = Money::new(dec!(1), Currency::USD).unwrap();
        assert!(matches!(payment.record_refund(usd, at()), Err(PaymentError::Money(_))));
    }

    #[test]
    fn dispute_opens_and_closes_once() {
        let mut payment = payment();
        assert!(payment.open_dispute(at()).is_err());
        payment.succeed(at());
        assert_eq!(payment.open_dispute(at()).unwrap(), Transition::Applied);
        assert_eq!(payment.open_dispute(at()).unwrap(), Transition::AlreadyApplied);
        assert_eq!(payment.close_dispute(false, at()).unwrap(), Transition::Applied);
        assert_eq!(payment.close_dispute(false, at()).unwrap(), Transition::AlreadyApplied);
        assert!(payment.close_dispute(true, at()).is_err());
    }

    #[test]
    fn late_dispute_opening_after_close_changes_nothing() {
        let mut payment = payment();
        payment.succeed(at());
        payment.open_dispute(at()).unwrap();
        payment.close_dispute(true, at()).unwrap();

        assert_eq!(payment.open_dispute(at()).unwrap(), Transition::AlreadyApplied);
        assert_eq!(payment.status(), PaymentStatus::DisputeWon);
    }
}
