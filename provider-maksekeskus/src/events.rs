//! Provider events from transaction states.
//!
//! A verified message and a fetched transaction both become a
//! [`TransactionReport`], and [`provider_event`] alone turns that into a
//! [`ProviderEvent`]. The event id is `{transaction id}:{status}` (plus the
//! cumulative refunded amount for refund statuses), so the browser return,
//! the server notification and a fetch of the same state are one event in
//! the service's inbox, and a repeated delivery is a duplicate.

use billing_domain::ids::IdError;
use billing_domain::{
    EventId, EventKind, Money, PaymentId, PaymentMatch, ProviderEvent, ProviderName, ProviderReference,
};
use time::OffsetDateTime;

use crate::status::TransactionStatus;

/// A transaction's state as one message or fetch reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransactionReport {
    pub transaction_id: String,
    pub status: TransactionStatus,
    /// The transaction amount.
    pub amount: Option<Money>,
    /// The cumulative refunded amount, when the source states it.
    pub refunded: Option<Money>,
    pub merchant_data: Option<String>,
    pub occurred_at: OffsetDateTime,
    /// Where the report came from (`payment_return`, `transaction`), for `provider_type`.
    pub origin: &'static str,
}

/// Maps a transaction state to the provider-neutral event.
///
/// CREATED, PENDING and APPROVED are pending; COMPLETED succeeded; CANCELLED
/// and EXPIRED end the attempt; PART_REFUNDED and REFUNDED report the
/// cumulative refunded amount.
pub(crate) fn provider_event(provider: &ProviderName, report: &TransactionReport) -> Result<ProviderEvent, EventError> {
    let transaction = &report.transaction_id;
    let status = report.status;
    let missing_amount = || EventError::MissingAmount { transaction: transaction.clone(), status };

    let (kind, amount) = match status {
        TransactionStatus::Created | TransactionStatus::Pending | TransactionStatus::Approved => {
            (EventKind::Pending, report.amount)
        }
        TransactionStatus::Completed => (EventKind::Succeeded, Some(report.amount.ok_or_else(missing_amount)?)),
        TransactionStatus::Cancelled => (EventKind::Canceled, report.amount),
        TransactionStatus::Expired => (EventKind::Expired, report.amount),
        TransactionStatus::PartRefunded | TransactionStatus::Refunded => {
            let total_refunded = refunded_total(report)?;
            // The transaction amount is the original charge, not what moved back,
            // so a refund event carries its total in the kind only.
            (EventKind::Refunded { total_refunded }, None)
        }
    };

    let event_id = match &kind {
        EventKind::Refunded { total_refunded } => format!("{transaction}:{status}:{}", total_refunded.amount()),
        _ => format!("{transaction}:{status}"),
    };
    let reference = ProviderReference::new(transaction.clone())
        .map_err(|source| EventError::InvalidId { value: transaction.clone(), source })?;
    let event_id =
        EventId::new(event_id.clone()).map_err(|source| EventError::InvalidId { value: event_id, source })?;

    Ok(ProviderEvent {
        provider: provider.clone(),
        event_id,
        occurred_at: report.occurred_at,
        matches: PaymentMatch {
            tenant_id: None,
            invoice_id: None,
            payment_id: report.merchant_data.as_deref().and_then(|text| text.parse::<PaymentId>().ok()),
            reference: Some(reference),
        },
        kind,
        amount,
        provider_type: format!("{}:{status}", report.origin),
    })
}

/// The cumulative refunded amount: stated, or the whole amount for REFUNDED.
fn refunded_total(report: &TransactionReport) -> Result<Money, EventError> {
    let stated = match (report.status, report.refunded) {
        (_, Some(refunded)) => Some(refunded),
        (TransactionStatus::Refunded, None) => report.amount,
        (_, None) => None,
    };
    stated.ok_or_else(|| EventError::MissingRefundedAmount {
        transaction: report.transaction_id.clone(),
        status: report.status,
    })
}

/// A transaction state that cannot become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    #[error("transaction {transaction} is {status} but states no amount, so the payment cannot be checked against it")]
    MissingAmount { transaction: String, status: TransactionStatus },

    #[error("transaction {transaction} is {status} but states no refunded amount; fetch the transaction")]
    MissingRefundedAmount { transaction: String, status: TransactionStatus },

    #[error("{value:?} cannot serve as a provider reference or event id")]
    InvalidId {
        value: String,
        #[source]
        source: IdError,
    },
}

#[cfg(test)]
mod tests {
    use billing_domain::Currency;
    use rust_decimal_macros::dec;
    use time::macros::datetime;

    use super::*;

    const TRANSACTION: &str = "8d2f4a10-5c3e-4b9a-a7e1-2f6c0b9d3e55";
    const PAYMENT: &str = "5f0b5a7e-2a43-4b43-9d4e-0c1d2e3f4a5b";

    fn eur(amount: rust_decimal::Decimal) -> Money {
        Money::new(amount, Currency::EUR).unwrap()
    }

    fn report(status: TransactionStatus) -> TransactionReport {
        TransactionReport {
            transaction_id: TRANSACTION.into(),
            status,
            amount: Some(eur(dec!(25))),
            refunded: None,
            merchant_data: Some(PAYMENT.into()),
            occurred_at: datetime!(2026-11-30 10:15:42 UTC),
            origin: "payment_return",
        }
    }

    fn provider() -> ProviderName {
        ProviderName::new("maksekeskus").unwrap()
    }

    #[test]
    fn statuses_map_to_event_kinds() {
        let cases = [
            (TransactionStatus::Created, EventKind::Pending),
            (TransactionStatus::Pending, EventKind::Pending),
            (TransactionStatus::Approved, EventKind::Pending),
            (TransactionStatus::Completed, EventKind::Succeeded),
            (TransactionStatus::Cancelled, EventKind::Canceled),
            (TransactionStatus::Expired, EventKind::Expired),
            (TransactionStatus::Refunded, EventKind::Refunded { total_refunded: eur(dec!(25)) }),
        ];
        for (status, kind) in cases {
            let event = provider_event(&provider(), &report(status)).unwrap();
            assert_eq!(event.kind, kind, "{status}");
        }
    }

    #[test]
    fn event_id_is_transaction_and_status() {
        let event = provider_event(&provider(), &report(TransactionStatus::Completed)).unwrap();
        assert_eq!(event.event_id.as_str(), format!("{TRANSACTION}:COMPLETED"));
        assert_eq!(event.amount, Some(eur(dec!(25))));
        assert_eq!(event.provider_type, "payment_return:COMPLETED");
        assert_eq!(event.matches.payment_id.unwrap().to_string(), PAYMENT);
        assert_eq!(event.matches.reference.unwrap().as_str(), TRANSACTION);
    }

    #[test]
    fn refund_event_id_carries_cumulative_total() {
        let mut partial = report(TransactionStatus::PartRefunded);
        partial.refunded = Some(eur(dec!(5)));
        let event = provider_event(&provider(), &partial).unwrap();
        assert_eq!(event.event_id.as_str(), format!("{TRANSACTION}:PART_REFUNDED:5.00"));
        assert_eq!(event.kind, EventKind::Refunded { total_refunded: eur(dec!(5)) });
        assert_eq!(event.amount, None);
    }

    #[test]
    fn success_without_amount_is_an_error() {
        let mut completed = report(TransactionStatus::Completed);
        completed.amount = None;
        let error = provider_event(&provider(), &completed).unwrap_err();
        assert!(matches!(error, EventError::MissingAmount { .. }), "{error}");
    }

    #[test]
    fn partial_refund_without_total_is_an_error() {
        let error = provider_event(&provider(), &report(TransactionStatus::PartRefunded)).unwrap_err();
        assert!(matches!(error, EventError::MissingRefundedAmount { .. }), "{error}");
    }

    #[test]
    fn foreign_merchant_data_uses_reference() {
        let mut foreign = report(TransactionStatus::Completed);
        foreign.merchant_data = Some("order-77".into());
        let event = provider_event(&provider(), &foreign).unwrap();
        assert_eq!(event.matches.payment_id, None);
        assert_eq!(event.matches.reference.unwrap().as_str(), TRANSACTION);
    }
}
