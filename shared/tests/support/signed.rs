//! What the listen suites (`listen`, `websocket_aws`) check of a delivery
//! given to a client: its Standard Webhooks signature verifies over its
//! body with the session's secret, as the client's receiver checks it.

use serde_json::Value;

/// `d` (a `delivery` or a `listening` entry) is signed with `secret`.
pub fn assert_standard_signed(d: &Value, secret: &str) {
    let ts: i64 = d["headers"]["webhook-timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        d["headers"]["webhook-signature"],
        hookrun_core::signature::standard_webhooks(
            d["id"].as_str().unwrap(),
            ts,
            d["body"].as_str().unwrap(),
            &[secret.into()]
        ),
        "{d}"
    );
}
