//! Webhook signatures: HMAC-SHA256 over the raw body bytes, compared in
//! constant time.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// Lowercase hex HMAC-SHA256, what `X-Signature` carries (the per-agent route).
pub fn sign_hex(secret: &str, body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), body))
}

/// Checks a hex signature (either case, no prefix) against the body.
/// Malformed hex is simply a mismatch. The MAC check itself is
/// constant-time (`hmac`'s `verify_slice`).
pub fn verify_hex(secret: &str, body: &[u8], signature_hex: &str) -> bool {
    let sig = signature_hex.trim();
    if sig.len() != 64 {
        return false;
    }
    let Ok(bytes) = hex::decode(sig) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Constant-time equality of two secrets that hides their lengths too: the
/// SHA-256 digests (always 32 bytes) are compared, not the strings.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use sha2::Digest;
    let (da, db) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    da.as_slice().ct_eq(db.as_slice()).into()
}

/// Standard Webhooks' `webhook-signature`: `v1,{base64 HMAC-SHA256}` of
/// `{id}.{timestamp}.{body}` keyed by each secret's base64-decoded
/// `whsec_` key, space-separated (one per secret, so a receiver holding
/// either side of a rotation verifies).
pub fn standard_webhooks(id: &str, timestamp: i64, body: &str, secrets: &[String]) -> String {
    let standard: Vec<String> = secrets
        .iter()
        .map(|s| {
            let key = base64::engine::general_purpose::STANDARD
                .decode(s.strip_prefix("whsec_").unwrap_or(s))
                .unwrap_or_else(|_| s.as_bytes().to_vec());
            let mac = hmac_sha256(&key, format!("{id}.{timestamp}.{body}").as_bytes());
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(mac)
            )
        })
        .collect();
    standard.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verifies_either_case_and_rejects_tampering() {
        let body = br#"{"event":"x"}"#;
        let sig = sign_hex("s3cret", body);
        assert!(verify_hex("s3cret", body, &sig));
        assert!(verify_hex("s3cret", body, &sig.to_uppercase()));
        assert!(!verify_hex("other", body, &sig));
        assert!(!verify_hex("s3cret", br#"{"event":"y"}"#, &sig));
        assert!(!verify_hex("s3cret", body, &format!("sha256={sig}")));
        assert!(!verify_hex("s3cret", body, "zz"));
        assert!(!verify_hex("s3cret", body, &"g".repeat(64)));
        assert!(!verify_hex("s3cret", body, ""));
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
