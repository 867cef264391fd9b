//! Staff refunds through Maksekeskus.
//!
//! A refund is created with its required comment and goes CREATED → SENT →
//! SETTLED, or ends FAILED. A 2xx response can already carry FAILED, and
//! SENT only reserves the amount on the merchant balance. Only a SETTLED refund
//! means the money went back, so only then does a [`RefundReport`] carry
//! events. The provider never applies them itself: the caller passes each to
//! `BillingService::apply_event`, which reverses credits once.

use billing_domain::{Money, Payment, ProviderError, ProviderEvent, StaffContext};

use crate::amount::{format_amount, money_from_wire};
use crate::client::{error_chain, RefundBody, RefundWire};
use crate::provider::MaksekeskusProvider;
use crate::status::{RefundStatus, TransactionStatus};

/// A refund as Maksekeskus reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub transaction_id: String,
    pub status: RefundStatus,
    /// The amount of this refund, when the response states it.
    pub amount: Option<Money>,
}

/// A refund and the events it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReport {
    pub refund: Refund,
    /// The `Refunded` event with the transaction's cumulative refunded amount
    /// after a SETTLED refund. It is empty for every other status, and also
    /// while the transaction does not show the refund yet (reconcile the
    /// payment later). Apply each with `BillingService::apply_event`.
    pub events: Vec<ProviderEvent>,
}

impl MaksekeskusProvider {
    /// Refunds `amount` of a succeeded payment, as staff, with the comment
    /// Maksekeskus requires.
    ///
    /// # Errors
    ///
    /// [`ProviderError::InvalidRequest`] for a payment of another tenant or
    /// provider, one that has not succeeded, an amount in another currency,
    /// not above zero or above what is left to refund, or an empty comment;
    /// [`ProviderError::MissingReference`] for a payment without a transaction
    /// id; [`ProviderError::Timeout`] when the response was lost, in which case
    /// the refund may exist; [`ProviderError::Api`] when Maksekeskus refuses
    /// (code 1045: the payment is still being processed, retry later).
    pub async fn refund(
        &self,
        staff: &StaffContext,
        payment: &Payment,
        amount: Money,
        comment: &str,
    ) -> Result<RefundReport, ProviderError> {
        let transaction_id = self.refundable_transaction(staff, payment)?;
        self.check_refund_amount(payment, amount)?;
        if comment.trim().is_empty() {
            return Err(self.invalid_request("Maksekeskus requires a comment with every refund".into()));
        }

        let body = RefundBody { amount: format_amount(amount), comment: comment.trim().to_owned() };
        // FIXME: a refund whose response was lost is not looked up before a
        // retry, so staff who retry at once may refund twice. Check the
        // merchant portal first.
        let wire = self.client.create_refund(&transaction_id, &body).await.inspect_err(|error| {
            tracing::warn!(payment_id = %payment.id, staff = %staff.user_id(), %error, "creating a Maksekeskus refund failed");
        })?;
        let report = self.refund_report(payment, &transaction_id, &wire).await?;
        tracing::info!(
            payment_id = %payment.id,
            transaction_id = %transaction_id,
            refund_id = %report.refund.id,
            refund_status = %report.refund.status,
            staff = %staff.user_id(),
            "Maksekeskus refund created"
        );
        Ok(report)
    }

    /// Fetches a refund again, to follow a CREATED or SENT refund until it
    /// settles or fails.
    ///
    /// # Errors
    ///
    /// As [`MaksekeskusProvider::refund`] for the payment checks, and
    /// [`ProviderError::UnexpectedResponse`] when the refund belongs to
    /// another transaction.
    pub async fn refund_status(
        &self,
        staff: &StaffContext,
        payment: &Payment,
        refund_id: &str,
    ) -> Result<RefundReport, ProviderError> {
        let transaction_id = self.refundable_transaction(staff, payment)?;
        let wire = self.client.refund(refund_id).await?;
        self.refund_report(payment, &transaction_id, &wire).await
    }

    /// Checks that staff may refund the payment and returns its transaction id.
    fn refundable_transaction(&self, staff: &StaffContext, payment: &Payment) -> Result<String, ProviderError> {
        if payment.tenant_id != staff.tenant_id() {
            return Err(self.invalid_request(format!("payment {} belongs to another tenant", payment.id)));
        }
        if payment.provider != self.name {
            return Err(self.invalid_request(format!(
                "payment {} was made through {}, not {}",
                payment.id, payment.provider, self.name
            )));
        }
        if !payment.status().has_succeeded() {
            return Err(self.invalid_request(format!(
                "payment {} is {} and has nothing to refund; reconcile it first if the money arrived",
                payment.id,
                payment.status()
            )));
        }
        match &payment.reference {
            Some(reference) => Ok(reference.as_str().to_owned()),
            None => Err(ProviderError::MissingReference { payment: payment.id }),
        }
    }

    fn check_refund_amount(&self, payment: &Payment, amount: Money) -> Result<(), ProviderError> {
        if amount.currency() != payment.amount.currency() {
            return Err(self.invalid_request(format!(
                "refund is in {} but payment {} is in {}",
                amount.currency(),
                payment.id,
                payment.amount.currency()
            )));
        }
        if amount.is_zero() || amount.is_negative() {
            return Err(self.invalid_request(format!("refund amount {amount} must be above zero")));
        }
        let refundable =
            payment.amount.checked_sub(payment.refunded()).map_err(|error| self.invalid_request(error.to_string()))?;
        if amount > refundable {
            return Err(self.invalid_request(format!(
                "refund of {amount} exceeds the {refundable} left to refund on payment {}",
                payment.id
            )));
        }
        Ok(())
    }

    async fn refund_report(
        &self,
        payment: &Payment,
        transaction_id: &str,
        wire: &RefundWire,
    ) -> Result<RefundReport, ProviderError> {
        if let Some(other) = wire.transaction_id().filter(|id| *id != transaction_id) {
            return Err(self.unexpected(format!(
                "refund {} belongs to transaction {other}, not to {transaction_id} of payment {}",
                wire.id, payment.id
            )));
        }
        let amount = match wire.amount {
            Some(amount) => Some(
                money_from_wire(amount.0, payment.amount.currency().code())
                    .map_err(|error| self.unexpected(format!("refund {} amount: {}", wire.id, error_chain(&error))))?,
            ),
            None => None,
        };
        let refund = Refund {
            id: wire.id.clone(),
            transaction_id: transaction_id.to_owned(),
            status: RefundStatus::from_wire(&wire.status),
            amount,
        };
        if refund.status != RefundStatus::Settled {
            return Ok(RefundReport { refund, events: Vec::new() });
        }

        // The refund object does not state the cumulative refunded amount, so
        // the transaction is read. Its event id is the one a later fetch or
        // notification of the same state produces.
        let transaction = self.fetch_transaction(transaction_id).await?;
        let shows_refund = transaction.status.parse::<TransactionStatus>().is_ok_and(TransactionStatus::is_refund);
        if !shows_refund {
            tracing::warn!(payment_id = %payment.id, refund_id = %refund.id, "refund settled but the transaction does not show it yet; reconcile the payment later");
            return Ok(RefundReport { refund, events: Vec::new() });
        }
        let events = self.transaction_events(&transaction, "refund")?;
        Ok(RefundReport { refund, events })
    }
}
