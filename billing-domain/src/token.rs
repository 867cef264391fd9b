//! Public link tokens: bearer secrets that open an invoice's payment entry.
//!
//! A token is 256 random bits from the caller's random source, shown once as
//! URL-safe hex. Only its SHA-256 hash is stored, so a leaked database cannot
//! be turned into working links. Tokens are unrelated to invoice ids and numbers.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Number of random bytes in a token (256 bits, above the 128-bit minimum).
pub const TOKEN_BYTES: usize = 32;

/// A freshly minted public link token. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicToken(String);

impl PublicToken {
    /// Encodes random bytes as a token.
    pub fn from_random_bytes(bytes: [u8; TOKEN_BYTES]) -> PublicToken {
        PublicToken(hex::encode(bytes))
    }

    /// Wraps a token received from a URL; it is not validated beyond being
    /// hashed and looked up.
    pub fn from_presented(text: &str) -> PublicToken {
        PublicToken(text.to_owned())
    }

    /// The secret text that goes into the link. Show it once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for PublicToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicToken(<redacted>)")
    }
}

/// SHA-256 of a public token, the only form in which a store keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TokenHash(#[serde(with = "hex_bytes")] [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    pub fn from_bytes(bytes: [u8; 32]) -> TokenHash {
        TokenHash(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", hex::encode(&self.0[..4]))
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_256_bits_of_hex() {
        let token = PublicToken::from_random_bytes([0xab; TOKEN_BYTES]);
        assert_eq!(token.expose().len(), 64);
        assert_eq!(token.hash(), TokenHash::of(token.expose()));
    }

    #[test]
    fn debug_redacts_token() {
        let token = PublicToken::from_random_bytes([0xab; TOKEN_BYTES]);
        assert!(!format!("{token:?}").contains("abab"));
    }

    #[test]
    fn different_tokens_hash_differently() {
        assert_ne!(TokenHash::of("a"), TokenHash::of("b"));
    }
}
