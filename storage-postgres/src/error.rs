//! Translation of PostgreSQL and driver errors into the domain's [`StoreError`].
//!
//! The service retries [`StoreError::Conflict`] from the start of its
//! operation, so only errors after which a fresh attempt can succeed map
//! there: serialisation failures and deadlocks. Everything that means the
//! database cannot be reached becomes [`StoreError::Unavailable`], and rows
//! that do not decode become [`StoreError::Corrupt`]. This module never
//! retries anything itself.

use billing_domain::store::StoreError;

/// SQLSTATE `serialization_failure`.
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE `deadlock_detected`.
const DEADLOCK_DETECTED: &str = "40P01";
/// SQLSTATE `unique_violation`.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE `check_violation`.
pub(crate) const CHECK_VIOLATION: &str = "23514";
/// SQLSTATE `foreign_key_violation`.
const FOREIGN_KEY_VIOLATION: &str = "23503";
/// SQLSTATE `not_null_violation`.
const NOT_NULL_VIOLATION: &str = "23502";
/// SQLSTATE `numeric_value_out_of_range`.
const NUMERIC_OUT_OF_RANGE: &str = "22003";

/// The SQLSTATE and constraint name of a database error, when it is one.
pub(crate) fn violation(error: &sqlx::Error) -> Option<(String, Option<String>)> {
    let sqlx::Error::Database(database) = error else {
        return None;
    };
    let code = database.code()?.into_owned();
    Some((code, database.constraint().map(str::to_owned)))
}

/// Whether `error` violates the constraint or unique index named `name`.
pub(crate) fn violates(error: &sqlx::Error, code: &str, name: &str) -> bool {
    matches!(violation(error), Some((found, Some(constraint))) if found == code && constraint == name)
}

/// Maps a driver error met while doing `what` (a phrase such as "invoice 1234").
pub(crate) fn store_error(what: &str, error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database) => {
            let code = database.code().map(|code| code.into_owned()).unwrap_or_default();
            match code.as_str() {
                SERIALIZATION_FAILURE | DEADLOCK_DETECTED => StoreError::Conflict { what: what.to_owned() },
                UNIQUE_VIOLATION
                | CHECK_VIOLATION
                | FOREIGN_KEY_VIOLATION
                | NOT_NULL_VIOLATION
                | NUMERIC_OUT_OF_RANGE => StoreError::Constraint {
                    constraint: format!(
                        "{} ({what}): {}",
                        database.constraint().unwrap_or("unnamed constraint"),
                        database.message()
                    ),
                },
                _ => StoreError::Unavailable { reason: format!("{what}: {} (SQLSTATE {code})", database.message()) },
            }
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::ColumnNotFound(_) | sqlx::Error::Decode(_) => {
            StoreError::Corrupt { reason: format!("{what}: {error}") }
        }
        _ => StoreError::Unavailable { reason: format!("{what}: {error}") },
    }
}

/// A value read from the database that the domain does not accept.
pub(crate) fn corrupt(what: &str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { reason: format!("{what}: {problem}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_timeout_is_unavailable() {
        let error = store_error("invoice 1", sqlx::Error::PoolTimedOut);
        assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
        assert!(!error.is_retryable());
    }

    #[test]
    fn decode_failure_is_corrupt() {
        let error = store_error("payment 2", sqlx::Error::ColumnNotFound("body".into()));
        assert_eq!(error, StoreError::Corrupt { reason: "payment 2: no column found for name: body".into() });
    }
}
