//! Transaction and refund statuses as Maksekeskus names them.
//!
//! Transaction statuses are a closed set: an unknown name (including the
//! legacy redirect-flavour `PAID`, `RECEIVED` and `DECLINED`) is an error,
//! because guessing could mark an unpaid invoice paid. Refund statuses are
//! open: the sources disagree on the full list, so an unknown name is kept
//! as [`RefundStatus::Other`] and treated as not settled.

use std::fmt;
use std::str::FromStr;

/// The state of a Maksekeskus transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// Created by the merchant; the buyer has not started paying.
    Created,
    /// The buyer is in the payment flow, or the channel is processing.
    Pending,
    /// Card data verified on some channels; the payment is not done yet.
    Approved,
    /// Paid.
    Completed,
    /// The buyer cancelled in the bank or payment dialog.
    Cancelled,
    /// Not completed within 30 minutes of the last status change.
    Expired,
    PartRefunded,
    Refunded,
}

impl TransactionStatus {
    /// Every status, in the order of the Maksekeskus state model.
    pub const ALL: [TransactionStatus; 8] = [
        TransactionStatus::Created,
        TransactionStatus::Pending,
        TransactionStatus::Approved,
        TransactionStatus::Completed,
        TransactionStatus::Cancelled,
        TransactionStatus::Expired,
        TransactionStatus::PartRefunded,
        TransactionStatus::Refunded,
    ];

    /// The name on the wire, such as `COMPLETED`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransactionStatus::Created => "CREATED",
            TransactionStatus::Pending => "PENDING",
            TransactionStatus::Approved => "APPROVED",
            TransactionStatus::Completed => "COMPLETED",
            TransactionStatus::Cancelled => "CANCELLED",
            TransactionStatus::Expired => "EXPIRED",
            TransactionStatus::PartRefunded => "PART_REFUNDED",
            TransactionStatus::Refunded => "REFUNDED",
        }
    }

    /// Whether money has been returned to the buyer (partly or fully).
    pub fn is_refund(self) -> bool {
        matches!(self, TransactionStatus::PartRefunded | TransactionStatus::Refunded)
    }
}

impl fmt::Display for TransactionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TransactionStatus {
    type Err = UnknownStatus;

    fn from_str(text: &str) -> Result<TransactionStatus, UnknownStatus> {
        TransactionStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownStatus { status: text.to_owned() })
    }
}

/// A transaction status name this adapter does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown transaction status {status:?}; expected one of CREATED, PENDING, APPROVED, COMPLETED, CANCELLED, \
     EXPIRED, PART_REFUNDED, REFUNDED (a legacy redirect-flavour shop must be switched to the current messages by \
     Maksekeskus support)"
)]
pub struct UnknownStatus {
    pub status: String,
}

/// The state of a refund. Only [`RefundStatus::Settled`] means the money went back.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// The merchant started it.
    Created,
    /// Sent to the bank or processor; the amount is reserved on the merchant balance.
    Sent,
    /// Done: the money went back to the buyer.
    Settled,
    /// Refused, mostly for Finnish bank links or on a processor error.
    Failed,
    /// A status the sources do not confirm (`PENDING`, `CANCELLED` appear in one SDK).
    Other(String),
}

impl RefundStatus {
    /// Reads a status name; unknown names become [`RefundStatus::Other`].
    pub fn from_wire(text: &str) -> RefundStatus {
        match text {
            "CREATED" => RefundStatus::Created,
            "SENT" => RefundStatus::Sent,
            "SETTLED" => RefundStatus::Settled,
            "FAILED" => RefundStatus::Failed,
            other => RefundStatus::Other(other.to_owned()),
        }
    }

    /// The name on the wire, such as `SETTLED`.
    pub fn as_str(&self) -> &str {
        match self {
            RefundStatus::Created => "CREATED",
            RefundStatus::Sent => "SENT",
            RefundStatus::Settled => "SETTLED",
            RefundStatus::Failed => "FAILED",
            RefundStatus::Other(name) => name,
        }
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_status_round_trips() {
        for status in TransactionStatus::ALL {
            assert_eq!(status.as_str().parse::<TransactionStatus>().unwrap(), status);
        }
    }

    #[test]
    fn legacy_and_lower_case_names_are_unknown() {
        for name in ["PAID", "RECEIVED", "DECLINED", "completed", ""] {
            assert_eq!(name.parse::<TransactionStatus>().unwrap_err().status, name);
        }
    }

    #[test]
    fn refund_status_keeps_unknown_names() {
        assert_eq!(RefundStatus::from_wire("SETTLED"), RefundStatus::Settled);
        assert_eq!(RefundStatus::from_wire("PENDING"), RefundStatus::Other("PENDING".into()));
        assert_eq!(RefundStatus::from_wire("PENDING").as_str(), "PENDING");
    }
}
