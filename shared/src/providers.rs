//! Over 400 lines, half of it the schemes' published test vectors; the five
//! schemes share the header and freshness helpers, so they stay together.
//!
//! Provider signature schemes for triggers, each checked on the
//! raw body bytes in constant time: a plain HMAC header (configurable, e.g.
//! Grafana, Shopify), GitHub, Stripe, Slack and Standard Webhooks.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::model::{SignatureConfig, SignatureScheme};
pub const DEFAULT_HEADER: &str = "x-webhook-signature";
/// Longest signature header read. Real ones are well under 200 bytes;
/// anything longer is refused before a single HMAC is computed.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 1024;
/// Most signatures checked per request: each costs an HMAC of the whole
/// body, so an unauthenticated caller may not ask for more.
pub const MAX_CANDIDATES: usize = 8;
pub const DEFAULT_TOLERANCE: u64 = 300;

fn mac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m
}

/// Constant-time check of `presented` against the MAC of `parts`.
fn matches(key: &[u8], parts: &[&[u8]], presented: &[u8]) -> bool {
    mac(key, parts).verify_slice(presented).is_ok()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A signature header, refused when absent or over
/// [`MAX_SIGNATURE_HEADER_BYTES`].
fn signature_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
    missing: &'static str,
    too_long: &'static str,
) -> Result<&'a str, &'static str> {
    let v = header(headers, name).ok_or(missing)?;
    if v.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(too_long);
    }
    Ok(v)
}

fn fresh(ts: &str, now: i64, tolerance: u64) -> Result<i64, &'static str> {
    let t: i64 = ts
        .trim()
        .parse()
        .map_err(|_| "malformed signature timestamp")?;
    if now.abs_diff(t) > tolerance {
        return Err("signature timestamp outside the tolerance");
    }
    Ok(t)
}

/// Checks a request against the trigger's scheme and one secret value.
/// Err is a short reason, safe to show (it never echoes a signature).
pub fn verify(
    cfg: &SignatureConfig,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let tolerance = cfg.tolerance.unwrap_or(DEFAULT_TOLERANCE);
    let key = secret.as_bytes();
    match cfg.scheme {
        SignatureScheme::Github => {
            let sig = signature_header(
                headers,
                "x-hub-signature-256",
                "missing X-Hub-Signature-256",
                "X-Hub-Signature-256 is longer than 1024 bytes",
            )?;
            let hex_sig = sig
                .strip_prefix("sha256=")
                .ok_or("malformed X-Hub-Signature-256")?;
            let bytes = hex::decode(hex_sig).map_err(|_| "malformed X-Hub-Signature-256")?;
            matches(key, &[body], &bytes)
                .then_some(())
                .ok_or("invalid signature")
        }
        SignatureScheme::Stripe => {
            let sig = signature_header(
                headers,
                "stripe-signature",
                "missing Stripe-Signature",
                "Stripe-Signature is longer than 1024 bytes",
            )?;
            let mut t = None;
            let mut v1 = Vec::new();
            for part in sig.split(',') {
                match part.trim().split_once('=') {
                    Some(("t", v)) => t = Some(v),
                    Some(("v1", v)) => v1.push(v),
                    _ => {}
                }
            }
            if v1.len() > MAX_CANDIDATES {
                return Err("Stripe-Signature carries more than 8 v1 signatures");
            }
            let t = t.ok_or("malformed Stripe-Signature")?;
            fresh(t, now, tolerance)?;
            // Any v1 may match (Stripe sends one per active secret); every
            // one is checked so timing does not tell which.
            let ok = v1.iter().fold(false, |ok, v| {
                let m = hex::decode(v)
                    .map(|b| matches(key, &[t.as_bytes(), b".", body], &b))
                    .unwrap_or(false);
                ok | m
            });
            ok.then_some(()).ok_or("invalid signature")
        }
        SignatureScheme::Slack => {
            let ts = header(headers, "x-slack-request-timestamp")
                .ok_or("missing X-Slack-Request-Timestamp")?;
            fresh(ts, now, tolerance)?;
            let sig = signature_header(
                headers,
                "x-slack-signature",
                "missing X-Slack-Signature",
                "X-Slack-Signature is longer than 1024 bytes",
            )?;
            let bytes = sig
                .strip_prefix("v0=")
                .and_then(|h| hex::decode(h).ok())
                .ok_or("malformed X-Slack-Signature")?;
            matches(key, &[b"v0:", ts.as_bytes(), b":", body], &bytes)
                .then_some(())
                .ok_or("invalid signature")
        }
        SignatureScheme::StandardWebhooks => {
            let id = header(headers, "webhook-id").ok_or("missing webhook-id")?;
            let ts = header(headers, "webhook-timestamp").ok_or("missing webhook-timestamp")?;
            fresh(ts, now, tolerance)?;
            let sigs = signature_header(
                headers,
                "webhook-signature",
                "missing webhook-signature",
                "webhook-signature is longer than 1024 bytes",
            )?;
            if sigs.split(' ').count() > MAX_CANDIDATES {
                return Err("webhook-signature carries more than 8 signatures");
            }
            let key = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .map_err(|_| "the trigger secret is not a whsec_ key")?;
            let ok = sigs.split(' ').fold(false, |ok, s| {
                let m = s
                    .strip_prefix("v1,")
                    .and_then(|b| STANDARD.decode(b).ok())
                    .map(|b| matches(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body], &b))
                    .unwrap_or(false);
                ok | m
            });
            ok.then_some(()).ok_or("invalid signature")
        }
        SignatureScheme::Hmac => {
            let name = cfg
                .header
                .as_deref()
                .unwrap_or(DEFAULT_HEADER)
                .to_ascii_lowercase();
            let default_prefix = if name == DEFAULT_HEADER {
                "sha256="
            } else {
                ""
            };
            let prefix = cfg.prefix.as_deref().unwrap_or(default_prefix);
            let sig = signature_header(
                headers,
                &name,
                "missing signature header",
                "the signature header is longer than 1024 bytes",
            )?;
            let raw = sig.strip_prefix(prefix).ok_or("malformed signature")?;
            let bytes = match cfg.encoding.as_deref().unwrap_or("hex") {
                "base64" => STANDARD.decode(raw).map_err(|_| "malformed signature")?,
                _ => hex::decode(raw).map_err(|_| "malformed signature")?,
            };
            matches(key, &[body], &bytes)
                .then_some(())
                .ok_or("invalid signature")
        }
    }
}

/// The headers that sign `body` for `cfg`'s scheme with `secret`, as the
/// provider sends them: [`verify`]'s counterpart (`hookrun trigger` signs
/// its fixtures with it, so what it sends is what a trigger takes). `now`
/// is Unix seconds; `id` names the message where the scheme has one
/// (Standard Webhooks' `webhook-id`). Err: a Standard Webhooks secret
/// that is not a `whsec_` key.
pub fn sign(
    cfg: &SignatureConfig,
    secret: &str,
    body: &[u8],
    now: i64,
    id: &str,
) -> Result<Vec<(String, String)>, &'static str> {
    let key = secret.as_bytes();
    let hex_mac = |parts: &[&[u8]]| hex::encode(mac(key, parts).finalize().into_bytes());
    let ts = now.to_string();
    Ok(match cfg.scheme {
        SignatureScheme::Github => vec![(
            "X-Hub-Signature-256".into(),
            format!("sha256={}", hex_mac(&[body])),
        )],
        SignatureScheme::Stripe => vec![(
            "Stripe-Signature".into(),
            format!("t={ts},v1={}", hex_mac(&[ts.as_bytes(), b".", body])),
        )],
        SignatureScheme::Slack => vec![
            ("X-Slack-Request-Timestamp".into(), ts.clone()),
            (
                "X-Slack-Signature".into(),
                format!("v0={}", hex_mac(&[b"v0:", ts.as_bytes(), b":", body])),
            ),
        ],
        SignatureScheme::StandardWebhooks => {
            let key = STANDARD
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .map_err(|_| "the trigger secret is not a whsec_ key")?;
            let sig = mac(&key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body])
                .finalize()
                .into_bytes();
            vec![
                ("webhook-id".into(), id.to_owned()),
                ("webhook-timestamp".into(), ts),
                (
                    "webhook-signature".into(),
                    format!("v1,{}", STANDARD.encode(sig)),
                ),
            ]
        }
        SignatureScheme::Hmac => {
            let name = cfg.header.as_deref().unwrap_or(DEFAULT_HEADER);
            let default_prefix = if name.eq_ignore_ascii_case(DEFAULT_HEADER) {
                "sha256="
            } else {
                ""
            };
            let prefix = cfg.prefix.as_deref().unwrap_or(default_prefix);
            let raw = mac(key, &[body]).finalize().into_bytes();
            let encoded = match cfg.encoding.as_deref().unwrap_or("hex") {
                "base64" => STANDARD.encode(raw),
                _ => hex::encode(raw),
            };
            vec![(name.to_owned(), format!("{prefix}{encoded}"))]
        }
    })
}

/// Checks a signature configuration when a trigger is saved.
pub fn validate(cfg: &SignatureConfig) -> Result<(), String> {
    if let Some(h) = &cfg.header {
        if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
            return Err("signature.header is not a valid header name".into());
        }
    }
    if let Some(e) = &cfg.encoding {
        if e != "hex" && e != "base64" {
            return Err("signature.encoding must be hex or base64".into());
        }
    }
    if let Some(t) = cfg.tolerance {
        if !(1..=3600).contains(&t) {
            return Err("signature.tolerance must be between 1 and 3600 seconds".into());
        }
    }
    if cfg.scheme != SignatureScheme::Hmac
        && (cfg.header.is_some() || cfg.encoding.is_some() || cfg.prefix.is_some())
    {
        return Err("signature.header, encoding and prefix apply to the hmac scheme only".into());
    }
    Ok(())
}

/// The provider a request's headers say it comes from, if any.
pub fn source_header(headers: &HeaderMap) -> Option<&'static str> {
    [
        ("x-github-event", "github"),
        ("x-gitlab-event", "gitlab"),
        ("stripe-signature", "stripe"),
        ("x-slack-signature", "slack"),
        ("x-grafana-alerting-signature", "grafana"),
        ("x-shopify-hmac-sha256", "shopify"),
    ]
    .iter()
    .find(|(h, _)| headers.contains_key(*h))
    .map(|(_, s)| *s)
}

/// The event a provider names in its headers, if any.
pub fn event_header(headers: &HeaderMap) -> Option<String> {
    ["x-github-event", "x-gitlab-event", "x-event-type"]
        .iter()
        .find_map(|h| header(headers, h))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// A flood of signature candidates is refused before any HMAC: the cost
    /// of a call is bounded whatever its headers hold.
    #[test]
    fn candidates_and_header_sizes_are_capped() {
        let now = 1_700_000_000;
        let many = std::iter::repeat_n("v1=00", 300)
            .collect::<Vec<_>>()
            .join(",");
        let h = headers(&[("stripe-signature", format!("t={now},{many}"))]);
        let e = verify(&cfg("stripe"), "whsec_x", &h, b"{}", now).unwrap_err();
        assert!(e.contains("longer than 1024 bytes"), "{e}");
        let nine = std::iter::repeat_n("v1=00", 9)
            .collect::<Vec<_>>()
            .join(",");
        let h = headers(&[("stripe-signature", format!("t={now},{nine}"))]);
        let e = verify(&cfg("stripe"), "whsec_x", &h, b"{}", now).unwrap_err();
        assert!(e.contains("more than 8"), "{e}");
        let sigs = std::iter::repeat_n("v1,AAAA", 9)
            .collect::<Vec<_>>()
            .join(" ");
        let h = headers(&[
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", now.to_string()),
            ("webhook-signature", sigs),
        ]);
        let e = verify(&cfg("standard-webhooks"), "whsec_AAAA", &h, b"{}", now).unwrap_err();
        assert!(e.contains("more than 8"), "{e}");
        let h = headers(&[(
            "x-hub-signature-256",
            format!("sha256={}", "0".repeat(2000)),
        )]);
        let e = verify(&cfg("github"), "s", &h, b"{}", now).unwrap_err();
        assert!(e.contains("longer than 1024"), "{e}");
    }

    fn cfg(scheme: &str) -> SignatureConfig {
        SignatureConfig {
            scheme: SignatureScheme::try_from(scheme.to_owned()).unwrap(),
            ..Default::default()
        }
    }

    /// Whatever `sign` makes, `verify` takes, for every scheme and
    /// option; a wrong secret or a changed body is refused.
    #[test]
    fn sign_is_verifys_counterpart() {
        let now = 1_700_000_000;
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let mut configs: Vec<SignatureConfig> =
            ["hmac", "github", "stripe", "slack", "standard-webhooks"]
                .into_iter()
                .map(cfg)
                .collect();
        configs.push(SignatureConfig {
            header: Some("X-Grafana-Signature".into()),
            encoding: Some("base64".into()),
            prefix: Some("v1=".into()),
            ..cfg("hmac")
        });
        for c in configs {
            let signed = sign(&c, secret, b"{\"a\":1}", now, "msg_1").unwrap();
            let h = headers(
                &signed
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect::<Vec<_>>(),
            );
            assert_eq!(verify(&c, secret, &h, b"{\"a\":1}", now), Ok(()), "{c:?}");
            assert!(
                verify(&c, "whsec_b3RoZXI=", &h, b"{\"a\":1}", now).is_err(),
                "{c:?}"
            );
            assert!(verify(&c, secret, &h, b"{\"a\":2}", now).is_err(), "{c:?}");
        }
        assert!(sign(&cfg("standard-webhooks"), "not base64!", b"{}", now, "m").is_err());
    }

    fn hex_mac(key: &[u8], parts: &[&[u8]]) -> String {
        hex::encode(mac(key, parts).finalize().into_bytes())
    }

    #[test]
    fn github_published_test_vector() {
        // docs.github.com, "Validating webhook deliveries": secret
        // "It's a Secret to Everybody", payload "Hello, World!".
        let h = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".into(),
        )]);
        assert_eq!(
            verify(
                &cfg("github"),
                "It's a Secret to Everybody",
                &h,
                b"Hello, World!",
                0
            ),
            Ok(())
        );
        assert!(verify(
            &cfg("github"),
            "It's a Secret to Everybody",
            &h,
            b"Hello, World?",
            0
        )
        .is_err());
        assert!(verify(&cfg("github"), "another secret", &h, b"Hello, World!", 0).is_err());
        assert_eq!(
            verify(&cfg("github"), "s", &HeaderMap::new(), b"x", 0),
            Err("missing X-Hub-Signature-256")
        );
    }

    #[test]
    fn stripe_any_v1_may_match_within_tolerance() {
        let body = br#"{"id":"evt_1","type":"charge.succeeded"}"#;
        let (secret, old) = ("whsec_current", "whsec_rolled");
        let t = 1_700_000_000i64;
        let good = hex_mac(secret.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
        let stale = hex_mac(old.as_bytes(), &[t.to_string().as_bytes(), b".", body]);
        let h = headers(&[(
            "stripe-signature",
            format!("t={t},v1={stale},v1={good},v0=ignored"),
        )]);
        assert_eq!(verify(&cfg("stripe"), secret, &h, body, t + 10), Ok(()));
        assert_eq!(
            verify(&cfg("stripe"), old, &h, body, t),
            Ok(()),
            "either secret's v1 works"
        );
        assert!(verify(&cfg("stripe"), "whsec_other", &h, body, t).is_err());
        assert_eq!(
            verify(&cfg("stripe"), secret, &h, body, t + 301),
            Err("signature timestamp outside the tolerance")
        );
        assert!(
            verify(&cfg("stripe"), secret, &h, body, t - 301).is_err(),
            "too far in the future"
        );
        let only_stale = headers(&[("stripe-signature", format!("t={t},v1={stale}"))]);
        assert!(verify(&cfg("stripe"), secret, &only_stale, body, t).is_err());
    }

    #[test]
    fn slack_v0() {
        let body = b"token=x&team_id=T1&command=%2Fdeploy";
        let ts = "1531420618";
        let sig = format!(
            "v0={}",
            hex_mac(
                b"8f742231b10e8888abcd99yyyzzz85a5",
                &[b"v0:", ts.as_bytes(), b":", body]
            )
        );
        let h = headers(&[
            ("x-slack-request-timestamp", ts.into()),
            ("x-slack-signature", sig),
        ]);
        assert_eq!(
            verify(
                &cfg("slack"),
                "8f742231b10e8888abcd99yyyzzz85a5",
                &h,
                body,
                1531420618
            ),
            Ok(())
        );
        assert!(verify(
            &cfg("slack"),
            "8f742231b10e8888abcd99yyyzzz85a5",
            &h,
            body,
            1531420618 + 600
        )
        .is_err());
    }

    #[test]
    fn standard_webhooks_published_example() {
        let h = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            ("webhook-timestamp", "1614265330".into()),
            (
                "webhook-signature",
                "v1,bm9ldmFsaWQ= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
            ),
        ]);
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            verify(&cfg("standard-webhooks"), secret, &h, body, 1614265330),
            Ok(())
        );
        assert!(verify(
            &cfg("standard-webhooks"),
            secret,
            &h,
            body,
            1614265330 + 301
        )
        .is_err());
        assert!(verify(&cfg("standard-webhooks"), secret, &h, b"{}", 1614265330).is_err());
    }

    #[test]
    fn configurable_hmac_headers() {
        let body = br#"{"alerts":[]}"#;
        // Grafana: hex in X-Grafana-Alerting-Signature, no prefix.
        let grafana = SignatureConfig {
            header: Some("X-Grafana-Alerting-Signature".into()),
            ..cfg("hmac")
        };
        let h = headers(&[("x-grafana-alerting-signature", hex_mac(b"g", &[body]))]);
        assert_eq!(verify(&grafana, "g", &h, body, 0), Ok(()));
        // Shopify: base64 in X-Shopify-Hmac-Sha256.
        let shopify = SignatureConfig {
            header: Some("X-Shopify-Hmac-Sha256".into()),
            encoding: Some("base64".into()),
            ..cfg("hmac")
        };
        let b64 = STANDARD.encode(mac(b"s", &[body]).finalize().into_bytes());
        assert_eq!(
            verify(
                &shopify,
                "s",
                &headers(&[("x-shopify-hmac-sha256", b64)]),
                body,
                0
            ),
            Ok(())
        );
        // The default: X-Webhook-Signature: sha256=<hex> (the bearer-token route's convention).
        let h = headers(&[(
            "x-webhook-signature",
            format!("sha256={}", hex_mac(b"k", &[body])),
        )]);
        assert_eq!(verify(&cfg("hmac"), "k", &h, body, 0), Ok(()));
        let bare = headers(&[("x-webhook-signature", hex_mac(b"k", &[body]))]);
        assert!(
            verify(&cfg("hmac"), "k", &bare, body, 0).is_err(),
            "the prefix is required"
        );
    }

    #[test]
    fn validation() {
        assert!(validate(&cfg("hmac")).is_ok());
        let e = SignatureScheme::try_from("md5".to_owned()).unwrap_err();
        assert!(e.contains("must be one of hmac, github"), "{e}");
        assert!(validate(&SignatureConfig {
            encoding: Some("b32".into()),
            ..cfg("hmac")
        })
        .is_err());
        assert!(validate(&SignatureConfig {
            header: Some("bad header".into()),
            ..cfg("hmac")
        })
        .is_err());
        assert!(validate(&SignatureConfig {
            tolerance: Some(0),
            ..cfg("stripe")
        })
        .is_err());
        assert!(validate(&SignatureConfig {
            header: Some("X-A".into()),
            ..cfg("github")
        })
        .is_err());
    }
}
