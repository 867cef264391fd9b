//! The Maksekeskus message authentication code (MAC).
//!
//! A message arrives as two parameters, `json` and `mac`, where `mac` is the
//! upper-case hex SHA-512 of the `json` text's bytes followed by the secret
//! key's bytes: a plain hash of the concatenation, not HMAC, 128 characters
//! long. This module hashes the `json` string exactly as received. It must
//! never parse and re-serialise it first, because key order, number format
//! (`11.0` against `11`) and escapes (`\/`, `\u00e4`) would change the bytes.

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use crate::config::SecretKey;

/// Length of a MAC in hex characters (512 bits).
pub const MAC_HEX_LEN: usize = 128;

/// Computes the MAC of `json` the way Maksekeskus signs messages.
pub fn sign(json: &str, secret_key: &SecretKey) -> String {
    let mut hasher = Sha512::new();
    hasher.update(json.as_bytes());
    hasher.update(secret_key.expose().as_bytes());
    hex::encode_upper(hasher.finalize())
}

/// Checks `mac` against the MAC of `json`, in constant time.
///
/// The received value must be exactly what Maksekeskus sends: 128 upper-case
/// hex characters. A lower-case or truncated value is rejected before any
/// comparison, since Maksekeskus never sends one.
///
/// # Errors
///
/// [`MacError::WrongLength`], [`MacError::NotUpperHex`] or [`MacError::Mismatch`].
pub fn verify(json: &str, mac: &str, secret_key: &SecretKey) -> Result<(), MacError> {
    if mac.len() != MAC_HEX_LEN {
        return Err(MacError::WrongLength { len: mac.len() });
    }
    if !mac.bytes().all(|byte| byte.is_ascii_digit() || (b'A'..=b'F').contains(&byte)) {
        return Err(MacError::NotUpperHex);
    }

    let expected = sign(json, secret_key);
    if bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
        Ok(())
    } else {
        Err(MacError::Mismatch)
    }
}

/// A rejected MAC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MacError {
    #[error("mac is {len} characters long; a Maksekeskus MAC is {MAC_HEX_LEN} upper-case hex characters")]
    WrongLength { len: usize },

    #[error("mac contains characters other than upper-case hex (0-9, A-F); Maksekeskus sends it upper case")]
    NotUpperHex,

    #[error("mac does not match the json parameter; the message was altered or signed with another secret key")]
    Mismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> SecretKey {
        SecretKey::new("unit-test-secret").unwrap()
    }

    #[test]
    fn sign_is_upper_hex_of_expected_length() {
        let mac = sign("{}", &secret());
        assert_eq!(mac.len(), MAC_HEX_LEN);
        assert!(mac.bytes().all(|byte| byte.is_ascii_digit() || byte.is_ascii_uppercase()));
    }

    #[test]
    fn verify_accepts_own_signature() {
        let json = r#"{"a":1}"#;
        assert_eq!(verify(json, &sign(json, &secret()), &secret()), Ok(()));
    }

    #[test]
    fn verify_rejects_another_secret() {
        let json = r#"{"a":1}"#;
        let other = SecretKey::new("other-secret").unwrap();
        assert_eq!(verify(json, &sign(json, &other), &secret()), Err(MacError::Mismatch));
    }

    #[test]
    fn verify_rejects_non_hex_of_right_length() {
        let mac = "G".repeat(MAC_HEX_LEN);
        assert_eq!(verify("{}", &mac, &secret()), Err(MacError::NotUpperHex));
    }
}
