//! Identifiers: opaque newtypes so a payment id can never be passed where an
//! invoice id belongs.
//!
//! Internal ids are UUIDs minted by the service from its random source port.
//! Provider-side ids (event ids, references) are strings the provider chose;
//! they are validated for length and emptiness only.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Builds an id from 16 random bytes (a version 4 UUID).
            pub fn from_random_bytes(bytes: [u8; 16]) -> $name {
                $name(uuid::Builder::from_random_bytes(bytes).into_uuid())
            }

            pub fn from_uuid(uuid: Uuid) -> $name {
                $name(uuid)
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<$name, IdError> {
                Uuid::parse_str(text)
                    .map($name)
                    .map_err(|_| IdError::Malformed { kind: stringify!($name), value: text.to_owned() })
            }
        }
    };
}

uuid_id!(
    /// A workspace (tenant); every row carries one.
    TenantId
);
uuid_id!(
    /// A customer company inside a tenant.
    CompanyId
);
uuid_id!(
    /// A signed-in user, staff or customer.
    UserId
);
uuid_id!(InvoiceId);
uuid_id!(PaymentId);
uuid_id!(ProjectId);
uuid_id!(
    /// A piece of purchased content unlocked by a paid invoice.
    ContentId
);
uuid_id!(HoldId);
uuid_id!(LedgerEntryId);
uuid_id!(LogEntryId);

macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps a provider-chosen string.
            ///
            /// # Errors
            ///
            /// [`IdError::Empty`] or [`IdError::TooLong`].
            pub fn new(value: impl Into<String>) -> Result<$name, IdError> {
                let value = value.into();
                if value.trim().is_empty() {
                    return Err(IdError::Empty { kind: stringify!($name) });
                }
                if value.len() > $max {
                    return Err(IdError::TooLong { kind: stringify!($name), len: value.len(), max: $max });
                }
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<$name, IdError> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
    };
}

text_id!(
    /// The provider's id of one notification (`evt_...` for Stripe). Together
    /// with the provider name it is the inbox key.
    EventId,
    255
);
text_id!(
    /// The provider's handle on a payment: a Checkout Session id, a
    /// PaymentIntent id, a Maksekeskus transaction id, a bank transfer reference.
    ProviderReference,
    255
);
text_id!(
    /// A caller-chosen key that makes a credit operation safe to retry.
    IdempotencyKey,
    255
);
text_id!(
    /// The name a provider adapter registers under (`stripe`, `maksekeskus`, `free`, `manual`).
    ProviderName,
    64
);

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },

    #[error("{kind} is {len} bytes long; the maximum is {max}")]
    TooLong { kind: &'static str, len: usize, max: usize },

    #[error("{kind} {value:?} is not a UUID")]
    Malformed { kind: &'static str, value: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_id_rejects_empty_and_long() {
        assert_eq!(EventId::new("  ").unwrap_err(), IdError::Empty { kind: "EventId" });
        let long = "x".repeat(256);
        assert!(matches!(EventId::new(long), Err(IdError::TooLong { len: 256, max: 255, .. })));
        assert_eq!(EventId::new("evt_1").unwrap().as_str(), "evt_1");
    }

    #[test]
    fn uuid_id_parses_and_rejects() {
        let id = InvoiceId::from_random_bytes([7; 16]);
        assert_eq!(id.to_string().parse::<InvoiceId>().unwrap(), id);
        assert!(matches!("nope".parse::<InvoiceId>(), Err(IdError::Malformed { kind: "InvoiceId", .. })));
    }

    #[test]
    fn text_id_deserialization_validates() {
        assert!(serde_json::from_str::<ProviderReference>("\"\"").is_err());
        assert_eq!(serde_json::from_str::<ProviderReference>("\"cs_1\"").unwrap().as_str(), "cs_1");
    }
}
