//! Who may call: the agent route's signature or secret, a trigger's token
//! and signature scheme, and a trigger's source allowlist. Every check on a
//! secret is constant-time.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::{header, AuthMethod, Route, SECRET_HEADER, SIGNATURE_HEADER};
use crate::app::App;
use crate::error::Error;
use crate::model::{Agent, Trigger};
use crate::ports::SecretVersions;
use crate::services::agents;
use crate::services::sealing;
use crate::services::triggers::validate::{origin_host, parse_ip_entry};
use crate::{providers, signature};

/// The token of `Authorization: Bearer …`, if the header holds one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    header(headers, "authorization")
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The per-agent route: `X-Signature` (preferred) or `X-Webhook-Secret`
/// against every agent secret value valid now (the current one, and the
/// previous one during a rotation's grace window). When both headers are
/// present the signature decides.
pub async fn authenticate_agent(
    app: &App,
    agent: &Agent,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AuthMethod, Error> {
    let (signature, plaintext) = (
        header(headers, SIGNATURE_HEADER),
        header(headers, SECRET_HEADER),
    );
    if signature.is_none() && plaintext.is_none() {
        return Err(Error::signature_rejected(
            "X-Signature",
            "missing X-Signature (hex HMAC-SHA256 of the body) or X-Webhook-Secret",
        ));
    }
    let now = app.clock.now();
    let until = app.settings.plaintext_secret_until;
    if signature.is_none() && now > until {
        return Err(Error::signature_rejected(
            "X-Signature",
            format!(
                "X-Webhook-Secret stopped working at its sunset, {}: send X-Signature, the hex HMAC-SHA256 of the body keyed by the agent's webhook secret",
                crate::clock::http_date(until)
            ),
        ));
    }
    let secret = agents::secret(app, agent).await?;
    if let Some(method) = check_agent_secret(&secret, now, signature, plaintext, body) {
        return Ok(method);
    }
    // The cached secret may predate a rotation made by another process.
    let fresh = agents::fresh_secret(app, agent).await?;
    if fresh != secret {
        if let Some(method) = check_agent_secret(&fresh, now, signature, plaintext, body) {
            return Ok(method);
        }
    }
    Err(Error::signature_rejected(
        "X-Signature",
        if signature.is_some() {
            "invalid signature"
        } else {
            "invalid webhook secret"
        },
    ))
}

/// Every valid value is checked, without stopping early, so timing does not
/// tell which one matched.
fn check_agent_secret(
    secret: &SecretVersions,
    now: chrono::DateTime<chrono::Utc>,
    signature: Option<&str>,
    plaintext: Option<&str>,
    body: &[u8],
) -> Option<AuthMethod> {
    if let Some(sig) = signature {
        let ok = secret
            .valid_at(now)
            .fold(false, |ok, s| signature::verify_hex(s, body, sig) | ok);
        return ok.then_some(AuthMethod::Signature);
    }
    let presented = plaintext.unwrap_or_default();
    let ok = secret
        .valid_at(now)
        .fold(false, |ok, s| signature::secrets_equal(s, presented) | ok);
    ok.then_some(AuthMethod::PlaintextSecret)
}

/// Trigger routes: the token (already matched by its hash when resolving)
/// and, when the trigger has a secret, its signature scheme. The id route
/// also takes the plaintext `X-Webhook-Secret`.
pub async fn authenticate_trigger(
    app: &App,
    route: Route<'_>,
    t: &Trigger,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<AuthMethod, Error> {
    let by_token = matches!(route, Route::TokenUrl { .. } | Route::Bearer);
    let Some(sealed) = &t.secret_sealed else {
        return Ok(if by_token {
            AuthMethod::Token
        } else {
            AuthMethod::Open
        });
    };
    if let (Route::TriggerId { .. }, Some(_)) = (route, header(headers, SECRET_HEADER)) {
        // A provider's own scheme is the only way in: its signature covers
        // the body and a timestamp, a plaintext secret covers nothing.
        let scheme = t.signature.scheme;
        if scheme != crate::model::SignatureScheme::Hmac {
            return Err(Error::signature_rejected(
                scheme.header_name(),
                format!(
                    "this trigger checks {scheme} signatures: send {}, not X-Webhook-Secret",
                    scheme.header_name()
                ),
            ));
        }
    }
    let secret = sealing::open_sealed(app, sealed).await?;
    if let (Route::TriggerId { .. }, Some(plain)) = (route, header(headers, SECRET_HEADER)) {
        return if signature::secrets_equal(&secret, plain) {
            Ok(AuthMethod::TriggerSignature)
        } else {
            Err(Error::signature_rejected(
                "X-Webhook-Secret",
                "invalid webhook secret",
            ))
        };
    }
    providers::verify(
        &t.signature,
        &secret,
        headers,
        body,
        app.clock.now().timestamp(),
    )
    .map_err(|reason| Error::signature_rejected(t.signature.header_name(), reason))?;
    Ok(if by_token {
        AuthMethod::Token
    } else {
        AuthMethod::TriggerSignature
    })
}

/// An empty allowlist allows all; otherwise the `Origin`'s host must be
/// listed, or the caller's IP listed or inside a listed range.
pub fn check_sources(t: &Trigger, headers: &HeaderMap, ip: Option<IpAddr>) -> Result<(), Error> {
    let s = &t.allowed_sources;
    if s.is_empty() {
        return Ok(());
    }
    let origin = header(headers, "origin").and_then(origin_host);
    let origin_ok = origin.is_some_and(|o| {
        s.origins
            .iter()
            .any(|allowed| origin_host(allowed).as_deref() == Some(&o))
    });
    let ip_ok = ip.is_some_and(|ip| {
        s.ips
            .iter()
            .filter_map(|e| parse_ip_entry(e))
            .any(|net| net.contains(&ip))
    });
    if origin_ok || ip_ok {
        Ok(())
    } else {
        Err(Error::Forbidden("source not allowed for this trigger"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_tokens() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer  wht_x "));
        assert_eq!(bearer(&h), Some("wht_x"));
        h.insert("authorization", HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn agent_secrets_in_their_grace_window() {
        let now = chrono::Utc::now();
        let v = SecretVersions {
            current: "new".into(),
            previous: Some("old".into()),
            previous_valid_until: Some(now + chrono::Duration::seconds(10)),
        };
        let body = b"{}";
        let sig_old = signature::sign_hex("old", body);
        assert_eq!(
            check_agent_secret(&v, now, Some(&sig_old), None, body),
            Some(AuthMethod::Signature)
        );
        let later = now + chrono::Duration::seconds(11);
        assert_eq!(
            check_agent_secret(&v, later, Some(&sig_old), None, body),
            None
        );
        assert_eq!(
            check_agent_secret(&v, later, None, Some("new"), body),
            Some(AuthMethod::PlaintextSecret)
        );
        assert_eq!(check_agent_secret(&v, later, None, Some("ne"), body), None);
    }
}
