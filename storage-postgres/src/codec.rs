//! Conversions between domain values and the column values of the schema.
//!
//! Status enums become the lower-case names the CHECK constraints list,
//! unsigned counts become `bigint` after a range check, and aggregates are
//! decoded from their `jsonb` body. Nothing here talks to the database.

use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;

use billing_domain::ledger::{EntryKind, HoldStatus};
use billing_domain::log::{Attention, InboxState};
use billing_domain::store::StoreError;
use billing_domain::LogEntryId;

use crate::error::{corrupt, store_error};

/// Converts a count the domain keeps as `u64` into a `bigint`.
pub(crate) fn to_bigint(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Constraint {
        constraint: format!("{what} is {value}, above the largest storable value {}", i64::MAX),
    })
}

/// Converts a stored `bigint` back into a domain `u64`.
pub(crate) fn from_bigint(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, format_args!("stored value {value} is negative")))
}

/// Decodes the `jsonb` column `column` of `row` into a domain value.
pub(crate) fn decode_json<T: DeserializeOwned>(row: &PgRow, column: &str, what: &str) -> Result<T, StoreError> {
    row.try_get::<Json<T>, _>(column).map(|Json(value)| value).map_err(|error| store_error(what, error))
}

/// Reads one typed column of `row`.
pub(crate) fn column<'r, T>(row: &'r PgRow, column: &str, what: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get::<T, _>(column).map_err(|error| store_error(what, error))
}

/// Reads the `version` column as the domain's `u64`.
pub(crate) fn version(row: &PgRow, what: &str) -> Result<u64, StoreError> {
    from_bigint(column::<i64>(row, "version", what)?, what)
}

pub(crate) fn inbox_state_name(state: InboxState) -> &'static str {
    match state {
        InboxState::Done => "done",
        InboxState::Unresolved => "unresolved",
    }
}

pub(crate) fn inbox_state(name: &str, what: &str) -> Result<InboxState, StoreError> {
    match name {
        "done" => Ok(InboxState::Done),
        "unresolved" => Ok(InboxState::Unresolved),
        other => Err(corrupt(what, format_args!("unknown inbox state {other:?}"))),
    }
}

pub(crate) fn attention_name(attention: Attention) -> &'static str {
    match attention {
        Attention::NotNeeded => "not_needed",
        Attention::Open => "open",
        Attention::Resolved { .. } => "resolved",
    }
}

pub(crate) fn resolved_by(attention: Attention) -> Option<uuid::Uuid> {
    match attention {
        Attention::Resolved { by } => Some(by.as_uuid()),
        Attention::NotNeeded | Attention::Open => None,
    }
}

/// Rebuilds a log entry's attention from its `attention` and `resolved_by` columns.
pub(crate) fn attention(name: &str, resolved_by: Option<uuid::Uuid>, what: &str) -> Result<Attention, StoreError> {
    match (name, resolved_by) {
        ("not_needed", None) => Ok(Attention::NotNeeded),
        ("open", None) => Ok(Attention::Open),
        ("resolved", Some(by)) => Ok(Attention::Resolved { by: LogEntryId::from_uuid(by) }),
        (other, by) => Err(corrupt(what, format_args!("attention {other:?} with resolved_by {by:?}"))),
    }
}

pub(crate) fn entry_kind_name(kind: &EntryKind) -> &'static str {
    match kind {
        EntryKind::Grant { .. } => "grant",
        EntryKind::Consumption { .. } => "consumption",
        EntryKind::Capture { .. } => "capture",
        EntryKind::Reversal { .. } => "reversal",
        EntryKind::Adjustment { .. } => "adjustment",
    }
}

/// The invoice and payment an entry books credits for, if it is a grant or reversal.
pub(crate) fn entry_invoice(kind: &EntryKind) -> (Option<uuid::Uuid>, Option<uuid::Uuid>) {
    match kind {
        EntryKind::Grant { invoice_id, payment_id } | EntryKind::Reversal { invoice_id, payment_id, .. } => {
            (Some(invoice_id.as_uuid()), Some(payment_id.as_uuid()))
        }
        EntryKind::Consumption { .. } | EntryKind::Capture { .. } | EntryKind::Adjustment { .. } => (None, None),
    }
}

pub(crate) fn hold_status_name(status: HoldStatus) -> &'static str {
    match status {
        HoldStatus::Open => "open",
        HoldStatus::Captured { .. } => "captured",
        HoldStatus::Released => "released",
        HoldStatus::Expired => "expired",
    }
}

pub(crate) fn hold_captured(status: HoldStatus) -> Option<u64> {
    match status {
        HoldStatus::Captured { amount } => Some(amount),
        HoldStatus::Open | HoldStatus::Released | HoldStatus::Expired => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigint_range_is_checked() {
        assert_eq!(to_bigint(7, "credits").unwrap(), 7);
        assert!(matches!(to_bigint(u64::MAX, "credits"), Err(StoreError::Constraint { .. })));
        assert!(matches!(from_bigint(-1, "credits"), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn attention_round_trips_through_columns() {
        let by = LogEntryId::from_random_bytes([4; 16]);
        for value in [Attention::NotNeeded, Attention::Open, Attention::Resolved { by }] {
            let rebuilt = attention(attention_name(value), resolved_by(value), "log entry").unwrap();
            assert_eq!(rebuilt, value);
        }
        assert!(attention("resolved", None, "log entry").is_err());
    }

    #[test]
    fn inbox_state_round_trips() {
        for state in [InboxState::Done, InboxState::Unresolved] {
            assert_eq!(inbox_state(inbox_state_name(state), "inbox").unwrap(), state);
        }
        assert!(inbox_state("lost", "inbox").is_err());
    }
}
