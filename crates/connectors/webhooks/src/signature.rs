//! Signatures: the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256>` over `<id>.<timestamp>.<body>`), a plain
//! HMAC-SHA256 of the body, and constant-time comparison.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::secrets::SIGNING_SECRET_PREFIX;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

type HmacSha256 = Hmac<Sha256>;

/// Decodes the HMAC key of a Standard Webhooks secret: the base64 bytes after `whsec_`.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret.strip_prefix(SIGNING_SECRET_PREFIX).ok_or_else(|| {
        format!("a signing secret starts with `{SIGNING_SECRET_PREFIX}`, then base64")
    })?;
    let key = STANDARD
        .decode(encoded)
        .map_err(|_| format!("the part after `{SIGNING_SECRET_PREFIX}` is not base64"))?;
    if key.len() < 24 || key.len() > 64 {
        return Err(format!(
            "the key after `{SIGNING_SECRET_PREFIX}` is {} bytes; use 24 to 64 bytes",
            key.len()
        ));
    }
    Ok(key)
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Computes the `webhook-signature` value of one message: `v1,<base64>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = hmac_sha256(
        key,
        &[
            id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    format!("v1,{}", STANDARD.encode(digest))
}

/// True when one of the space-separated signatures in `header` is the `v1` signature of the
/// message. Other versions are skipped, as the scheme requires.
pub fn verify(key: &[u8], id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let expected = hmac_sha256(
        key,
        &[
            id.as_bytes(),
            b".",
            timestamp.to_string().as_bytes(),
            b".",
            body,
        ],
    );
    header
        .split(' ')
        .filter_map(|candidate| candidate.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|given| constant_time_eq(&given, &expected))
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    difference == 0
}

/// Compares two secrets in constant time by comparing their SHA-256 digests, so neither
/// the content nor the length of the expected secret leaks through timing.
pub fn secrets_match(given: &str, expected: &str) -> bool {
    constant_time_eq(&Sha256::digest(given), &Sha256::digest(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_specification_example() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signature = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let header = format!("v1a,whatever {signature}");
        assert!(verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &header
        ));
        assert!(!verify(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265331,
            body,
            &header
        ));
    }

    #[test]
    fn signing_keys_need_the_prefix_and_base64() {
        assert!(signing_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(signing_key("whsec_not base64!").is_err());
        assert!(
            signing_key("whsec_c2hvcnQ=")
                .unwrap_err()
                .contains("5 bytes")
        );
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_match("abc", "abc"));
        assert!(!secrets_match("abc", "abd"));
        assert!(!secrets_match("abc", "abcd"));
    }
}
