//! The two signature header sets of an outgoing webhook.

use crate::signature::hmac_sha256;

/// The headers that sign one attempt: the compatibility `X-Crewship-*` headers (keyed by
/// the secret string) and Standard Webhooks' `webhook-*` (keyed by the
/// base64-decoded `whsec_` key). `secrets` holds the current secret first,
/// then the previous one while its grace window lasts; Standard Webhooks
/// lists a signature per secret, `X-Crewship-Signature` carries the current one
/// and `X-Crewship-Signature-Previous` the previous one.
pub fn signature_headers(
    id: &str,
    event: &str,
    timestamp: i64,
    body: &str,
    secrets: &[String],
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_owned()),
        ("x-crewship-event", event.to_owned()),
        ("x-crewship-delivery", id.to_owned()),
        ("x-crewship-timestamp", timestamp.to_string()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    let crewship = |s: &str| {
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(
                s.as_bytes(),
                format!("{timestamp}.{body}").as_bytes()
            ))
        )
    };
    if let Some(current) = secrets.first() {
        h.push(("x-crewship-signature", crewship(current)));
    }
    if let Some(previous) = secrets.get(1) {
        h.push(("x-crewship-signature-previous", crewship(previous)));
    }
    h.push((
        "webhook-signature",
        crate::signature::standard_webhooks(id, timestamp, body, secrets),
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_both_recipes() {
        // Standard Webhooks' published example (svix): whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
        // id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330.
        let body = r#"{"test": 2432232314}"#;
        let secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()];
        let h = signature_headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "run.succeeded",
            1614265330,
            body,
            &secrets,
        );
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("webhook-signature"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let expected = format!(
            "sha256={}",
            hex::encode(hmac_sha256(
                secrets[0].as_bytes(),
                format!("1614265330.{body}").as_bytes()
            ))
        );
        assert_eq!(get("x-crewship-signature"), expected);
        assert_eq!(get("x-crewship-timestamp"), "1614265330");
        assert!(h.iter().all(|(n, _)| *n != "x-crewship-signature-previous"));

        let two = vec![
            secrets[0].clone(),
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        ];
        let h = signature_headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "run.succeeded",
            1614265330,
            body,
            &two,
        );
        let sig = h
            .iter()
            .find(|(n, _)| *n == "webhook-signature")
            .unwrap()
            .1
            .clone();
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"));
        assert!(h.iter().any(|(n, _)| *n == "x-crewship-signature-previous"));
    }
}
