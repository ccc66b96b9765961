//! Every signature scheme's header parsing and checking, on arbitrary
//! headers and bodies: never a panic, never more than the capped work.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use hookrun_core::model::{SignatureConfig, SignatureScheme};
use hookrun_core::providers;
use libfuzzer_sys::fuzz_target;

const HEADERS: [&str; 8] = [
    "x-webhook-signature",
    "x-hub-signature-256",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let scheme = SignatureScheme::ALL[data[0] as usize % SignatureScheme::ALL.len()];
    let variant = data[1];
    let text = String::from_utf8_lossy(&data[2..]);
    // Header values up to the first blank line, one per known header; the
    // rest is the body.
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut headers = HeaderMap::new();
    for (name, value) in HEADERS.iter().zip(head.split('\n')) {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let mut cfg = SignatureConfig {
        scheme,
        ..Default::default()
    };
    if scheme == SignatureScheme::Hmac {
        cfg.encoding = Some(if variant & 1 == 0 { "hex" } else { "base64" }.into());
        if variant & 2 != 0 {
            cfg.prefix = Some("v1=".into());
        }
        if variant & 4 != 0 {
            cfg.header = Some("x-hub-signature-256".into());
        }
    }
    let _ = providers::validate(&cfg);
    let secret = if scheme == SignatureScheme::StandardWebhooks {
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    } else {
        "fuzz-secret"
    };
    let _ = providers::verify(&cfg, secret, &headers, body.as_bytes(), 1_700_000_000);
    let _ = providers::source_header(&headers);
    let _ = providers::event_header(&headers);
});
