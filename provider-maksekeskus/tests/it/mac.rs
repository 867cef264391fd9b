//! The MAC: the published vector, the signed fixtures, and every way a
//! message can be altered between Maksekeskus and the hash.

use billing_domain::ProviderError;
use provider_maksekeskus::mac::{self, MacError};
use provider_maksekeskus::test_server::SignedMessage;
use provider_maksekeskus::SecretKey;

use crate::support::{fake, fixture, provider, NOW};
use billing_domain::PaymentProvider;

#[test]
fn published_vector_matches() {
    let vector = fixture("mac-vector.json");
    assert_eq!(mac::sign(&vector.json, &vector.secret), vector.mac);
    assert!(vector.mac.starts_with("F7A5FC0AF516FE4F48E61290CF8F4790"));
    assert!(vector.mac.ends_with("C75617B574D0E40443C1EF00"));
    assert_eq!(mac::verify(&vector.json, &vector.mac, &vector.secret), Ok(()));
}

#[test]
fn signed_fixtures_verify() {
    for name in ["payment_return.completed.json", "token_return.completed.json"] {
        let signed = fixture(name);
        assert_eq!(mac::verify(&signed.json, &signed.mac, &signed.secret), Ok(()), "{name}");
    }
}

#[test]
fn tampered_json_fails() {
    let signed = fixture("payment_return.completed.json");
    for (from, to) in [("25.0", "2.5"), ("COMPLETED", "CANCELLED"), ("INV-2026-0042", "INV-2026-0043")] {
        let tampered = signed.json.replacen(from, to, 1);
        assert_ne!(tampered, signed.json);
        assert_eq!(mac::verify(&tampered, &signed.mac, &signed.secret), Err(MacError::Mismatch), "{from} -> {to}");
    }
}

#[test]
fn another_secret_fails() {
    let signed = fixture("payment_return.completed.json");
    let other = SecretKey::new("local-test-secret-0002").unwrap();
    assert_eq!(mac::verify(&signed.json, &signed.mac, &other), Err(MacError::Mismatch));
}

#[test]
fn lower_case_mac_fails() {
    let signed = fixture("payment_return.completed.json");
    let lower = signed.mac.to_ascii_lowercase();
    assert_eq!(mac::verify(&signed.json, &lower, &signed.secret), Err(MacError::NotUpperHex));
}

#[test]
fn truncated_mac_fails() {
    let signed = fixture("payment_return.completed.json");
    for len in [127, 64, 0] {
        let truncated = &signed.mac[..len];
        assert_eq!(mac::verify(&signed.json, truncated, &signed.secret), Err(MacError::WrongLength { len }));
    }
    let padded = format!("{}0", signed.mac);
    assert_eq!(mac::verify(&signed.json, &padded, &signed.secret), Err(MacError::WrongLength { len: 129 }));
}

#[test]
fn reserialised_json_fails() {
    let signed = fixture("payment_return.completed.json");
    let value: serde_json::Value = serde_json::from_str(&signed.json).unwrap();
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    assert_eq!(mac::verify(&pretty, &signed.mac, &signed.secret), Err(MacError::Mismatch));

    // What a PHP sender writes: escaped slashes and non-ASCII letters. The
    // text verifies as received; serde writes it back differently.
    let secret = SecretKey::new("local-test-secret-0001").unwrap();
    let as_sent = r#"{"customer_name":"J\u00fcri M\u00e4gi","return":"https:\/\/shop.example\/r","amount":11.0}"#;
    let message = SignedMessage::sign(as_sent, &secret);
    assert_eq!(mac::verify(&message.json, &message.mac, &secret), Ok(()));
    let value: serde_json::Value = serde_json::from_str(as_sent).unwrap();
    let reserialised = serde_json::to_string(&value).unwrap();
    assert_ne!(reserialised, as_sent);
    assert_eq!(mac::verify(&reserialised, &message.mac, &secret), Err(MacError::Mismatch));
}

#[tokio::test]
async fn tampered_message_rejected_before_parsing() {
    let fake = fake().await;
    let provider = provider(&fake);
    let signed = fixture("payment_return.completed.json");

    // Not even valid JSON after tampering: the MAC check must fail first.
    let garbage = SignedMessage { json: format!("{}garbage", signed.json), mac: signed.mac.clone() };
    let error = provider.verify_webhook(&garbage.form_request(), NOW).await.unwrap_err();
    let ProviderError::InvalidWebhook { reason } = error else { panic!("expected InvalidWebhook, got {error:?}") };
    assert!(reason.contains("mac does not match"), "{reason}");

    let lower = SignedMessage { json: signed.json.clone(), mac: signed.mac.to_ascii_lowercase() };
    let error = provider.verify_webhook(&lower.query_request(), NOW).await.unwrap_err();
    let ProviderError::InvalidWebhook { reason } = error else { panic!("expected InvalidWebhook, got {error:?}") };
    assert!(reason.contains("upper-case hex"), "{reason}");
    assert!(fake.requests().is_empty(), "a rejected message must not cause API calls");
}
