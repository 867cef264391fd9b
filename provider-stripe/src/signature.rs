//! The `Stripe-Signature` header: parsing, verification and, for tests and
//! stand-ins, signing.
//!
//! Stripe signs `"{t}.{raw body}"` with HMAC-SHA256 keyed by the endpoint's
//! signing secret (the whole `whsec_...` string) and sends
//! `t=<unix seconds>,v1=<hex>[,v1=<hex>...]`. Only the `v1` scheme counts;
//! other schemes (`v0` in test mode) are ignored. During a secret rotation the
//! header carries one `v1` per secret, so any `v1` matching any configured
//! secret is accepted. Comparison is constant-time. This module verifies the
//! exact bytes it is given and never parses or re-serialises the body.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

type HmacSha256 = Hmac<Sha256>;

/// The header Stripe puts its signature in.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Length of an HMAC-SHA256 tag in bytes.
const TAG_LEN: usize = 32;

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Every `v1` tag in the header, decoded from hex.
    pub v1: Vec<[u8; TAG_LEN]>,
}

impl SignatureHeader {
    /// Parses the header value.
    ///
    /// # Errors
    ///
    /// [`SignatureError::Malformed`] for an item that is not `key=value`, a
    /// missing, repeated or non-numeric `t`, or a `v1` that is not 64 hex
    /// digits; [`SignatureError::NoV1Signature`] when no `v1` is present.
    pub fn parse(value: &str) -> Result<SignatureHeader, SignatureError> {
        let mut timestamp = None;
        let mut v1 = Vec::new();

        for item in value.split(',') {
            let item = item.trim();
            let Some((key, raw)) = item.split_once('=') else {
                return Err(SignatureError::Malformed { reason: format!("item {item:?} is not key=value") });
            };
            match key {
                "t" => {
                    let parsed = raw.parse::<i64>().map_err(|_| SignatureError::Malformed {
                        reason: format!("timestamp {raw:?} is not an integer"),
                    })?;
                    if timestamp.replace(parsed).is_some() {
                        return Err(SignatureError::Malformed { reason: "more than one timestamp".into() });
                    }
                }
                "v1" => v1.push(decode_tag(raw)?),
                // Other schemes (v0 in test mode, future ones) carry no weight.
                _ => {}
            }
        }

        let Some(timestamp) = timestamp else {
            return Err(SignatureError::Malformed { reason: "no t= timestamp".into() });
        };
        if v1.is_empty() {
            return Err(SignatureError::NoV1Signature);
        }
        Ok(SignatureHeader { timestamp, v1 })
    }
}

/// Checks `header` against `body` for any of `secrets`, then checks that its
/// timestamp is within `tolerance` of `now_unix` in either direction.
///
/// # Errors
///
/// [`SignatureError::NoMatchingSignature`] when no `v1` matches any secret,
/// [`SignatureError::TimestampOutsideTolerance`] for a stale or future timestamp.
pub fn verify(
    header: &SignatureHeader,
    body: &[u8],
    secrets: &[Secret],
    tolerance: Duration,
    now_unix: i64,
) -> Result<(), SignatureError> {
    let matched = secrets.iter().any(|secret| {
        let mac = signed_payload_mac(secret.expose(), header.timestamp, body);
        // `verify_slice` compares in constant time; it consumes the MAC, so each
        // candidate gets a clone of the keyed state.
        header.v1.iter().any(|tag| mac.clone().verify_slice(tag).is_ok())
    });
    if !matched {
        return Err(SignatureError::NoMatchingSignature { n_signatures: header.v1.len(), n_secrets: secrets.len() });
    }

    let tolerance_secs = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    let skew_secs = now_unix.saturating_sub(header.timestamp);
    if skew_secs.saturating_abs() > tolerance_secs {
        return Err(SignatureError::TimestampOutsideTolerance {
            timestamp: header.timestamp,
            now: now_unix,
            tolerance_secs,
        });
    }
    Ok(())
}

/// Builds a `Stripe-Signature` header value for `body`, as Stripe would send
/// it: `t={timestamp},v1={hex}`. For tests and local stand-ins.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let tag = signed_payload_mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

fn signed_payload_mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail. The
    // fallback, a zero key that matches no signature, only satisfies the type.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn decode_tag(raw: &str) -> Result<[u8; TAG_LEN], SignatureError> {
    let mut tag = [0u8; TAG_LEN];
    hex::decode_to_slice(raw, &mut tag)
        .map_err(|_| SignatureError::Malformed { reason: format!("v1 signature is not {} hex digits", TAG_LEN * 2) })?;
    Ok(tag)
}

/// The reason a `Stripe-Signature` header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing; is the request from Stripe?")]
    MissingHeader,

    #[error("the Stripe-Signature header is malformed: {reason}")]
    Malformed { reason: String },

    #[error("the Stripe-Signature header has no v1 signature")]
    NoV1Signature,

    #[error(
        "none of the {n_signatures} v1 signatures matches any of the {n_secrets} signing secrets; \
         check the endpoint secret and that the body reaches the verifier unmodified"
    )]
    NoMatchingSignature { n_signatures: usize, n_secrets: usize },

    #[error(
        "signature timestamp {timestamp} is more than {tolerance_secs} s from now ({now}); \
         a replay, or a clock that is off"
    )]
    TimestampOutsideTolerance { timestamp: i64, now: i64, tolerance_secs: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;
    const NOW: i64 = 1_800_000_000;

    fn secrets() -> Vec<Secret> {
        vec![Secret::new(SECRET)]
    }

    fn check(header: &str, now: i64) -> Result<(), SignatureError> {
        let parsed = SignatureHeader::parse(header)?;
        verify(&parsed, BODY, &secrets(), Duration::from_secs(300), now)
    }

    #[test]
    fn signed_header_verifies() {
        assert_eq!(check(&sign(SECRET, NOW, BODY), NOW), Ok(()));
    }

    #[test]
    fn known_vector_matches() {
        // HMAC-SHA256 of "1800000000.{body}" keyed with the secret, computed
        // independently with `openssl dgst -sha256 -hmac`.
        let header = sign(SECRET, NOW, BODY);
        assert_eq!(header, format!("t={NOW},v1={}", EXPECTED_TAG));
    }

    const EXPECTED_TAG: &str = "d0ffffa7434b9a227ebe60bf97ad6137fbc31cbd39613e1ac0e4bc924c41fde7";

    #[test]
    fn v0_and_unknown_schemes_are_ignored() {
        let signed = sign(SECRET, NOW, BODY);
        let tag = signed.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW},v0={},v1={tag},v9=zz", "00".repeat(32));
        assert_eq!(check(&header, NOW), Ok(()));
    }

    #[test]
    fn header_without_v1_is_rejected() {
        assert_eq!(check(&format!("t={NOW},v0={}", "00".repeat(32)), NOW), Err(SignatureError::NoV1Signature));
    }

    #[test]
    fn malformed_headers_are_rejected() {
        for header in ["", "t", "v1=abc", "t=x,v1=00", "t=1,t=2,v1=00", &format!("v1={}", "00".repeat(32))] {
            assert!(matches!(check(header, NOW), Err(SignatureError::Malformed { .. })), "{header:?}");
        }
    }
}
