//! Validation of trigger settings: each check names the field it refused.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::{json, Value};

use crate::error::Error;
use crate::model::{AllowedSources, SignatureScheme};

fn bad(field: &str, message: impl Into<String>) -> Error {
    Error::invalid(field, message)
}

pub fn name(name: &str) -> Result<String, Error> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 200 {
        return Err(bad("name", "name must be 1 to 200 characters"));
    }
    Ok(n.to_owned())
}

pub fn description(d: Option<String>) -> Result<Option<String>, Error> {
    match d {
        Some(d) if d.chars().count() > 2000 => Err(bad(
            "description",
            "description must be at most 2000 characters",
        )),
        other => Ok(other),
    }
}

/// An origin entry as a bare lowercase host.
pub fn origin_host(entry: &str) -> Option<String> {
    let e = entry.trim();
    let host = if e.contains("://") {
        reqwest::Url::parse(e).ok()?.host_str()?.to_owned()
    } else {
        e.split('/').next()?.split(':').next()?.to_owned()
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// An address or CIDR range of an allowlist.
pub fn parse_ip_entry(entry: &str) -> Option<IpNet> {
    let e = entry.trim();
    e.parse::<IpNet>()
        .ok()
        .or_else(|| e.parse::<IpAddr>().ok().map(IpNet::from))
}

pub fn sources(s: AllowedSources) -> Result<AllowedSources, Error> {
    if s.origins.len() + s.ips.len() > 100 {
        return Err(bad(
            "allowed_sources",
            "allowed_sources holds at most 100 entries",
        ));
    }
    for o in &s.origins {
        origin_host(o).ok_or_else(|| {
            bad(
                "allowed_sources.origins",
                format!("allowed_sources.origins: {o:?} is not a host or origin"),
            )
        })?;
    }
    for ip in &s.ips {
        parse_ip_entry(ip).ok_or_else(|| {
            bad(
                "allowed_sources.ips",
                format!("allowed_sources.ips: {ip:?} is not an IP address or CIDR"),
            )
        })?;
    }
    Ok(s)
}

/// Mapping values are a JSON pointer, or `{pointer, default, required}`.
pub fn mapping(m: &serde_json::Map<String, Value>) -> Result<(), Error> {
    if m.len() > 100 {
        return Err(bad(
            "input_mapping",
            "input_mapping holds at most 100 fields",
        ));
    }
    for (name, spec) in m {
        let field = format!("input_mapping.{name}");
        if name.is_empty() {
            return Err(bad(
                "input_mapping",
                "input_mapping field names must not be empty",
            ));
        }
        let pointer = match spec {
            Value::String(p) => p.as_str(),
            Value::Object(o) => {
                if let Some(k) = o
                    .keys()
                    .find(|k| !["pointer", "default", "required"].contains(&k.as_str()))
                {
                    return Err(bad(&field, format!("{field}: unknown key {k:?}")));
                }
                if o.get("required").is_some_and(|r| !r.is_boolean()) {
                    return Err(bad(
                        &field,
                        format!("{field}.required must be true or false"),
                    ));
                }
                o.get("pointer").and_then(Value::as_str).ok_or_else(|| {
                    bad(
                        &field,
                        format!("{field}.pointer must be a JSON pointer string"),
                    )
                })?
            }
            _ => {
                return Err(bad(
                    &field,
                    format!("{field} must be a JSON pointer or an object"),
                ))
            }
        };
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(bad(
                &field,
                format!("{field}: {pointer:?} is not a JSON pointer (it starts with /)"),
            ));
        }
    }
    Ok(())
}

pub fn event_types(e: Vec<String>) -> Result<Vec<String>, Error> {
    if e.len() > 100 || e.iter().any(|x| x.trim().is_empty() || x.len() > 200) {
        return Err(bad(
            "event_types",
            "event_types holds at most 100 non-empty names",
        ));
    }
    Ok(e)
}

pub fn rate(r: Option<u32>) -> Result<Option<u32>, Error> {
    match r {
        Some(n) if !(1..=100_000).contains(&n) => Err(bad(
            "rate_limit_per_minute",
            "rate_limit_per_minute must be between 1 and 100000",
        )),
        other => Ok(other),
    }
}

pub fn metadata(m: Option<Value>) -> Result<Value, Error> {
    let m = m.unwrap_or_else(|| json!({}));
    if !m.is_object() {
        return Err(bad("metadata", "metadata must be a JSON object"));
    }
    if m.to_string().len() > 8 * 1024 {
        return Err(bad("metadata", "metadata must be at most 8 KiB"));
    }
    Ok(m)
}

/// A secret given by the operator, for the scheme it will sign with.
pub fn secret(secret: &str, scheme: SignatureScheme) -> Result<(), Error> {
    if !(8..=512).contains(&secret.len()) {
        return Err(bad("secret", "secret must be 8 to 512 characters"));
    }
    if scheme == SignatureScheme::StandardWebhooks {
        use base64::Engine;
        let key = secret
            .strip_prefix("whsec_")
            .ok_or_else(|| bad("secret", "a standard-webhooks secret starts with whsec_"))?;
        base64::engine::general_purpose::STANDARD
            .decode(key)
            .map_err(|_| bad("secret", "a standard-webhooks secret is whsec_ and base64"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(e: Error) -> String {
        match e {
            Error::Invalid { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    fn map(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_and_descriptions() {
        assert_eq!(name("  a  ").unwrap(), "a");
        assert_eq!(field(name(" ").unwrap_err()), "name");
        assert_eq!(field(name(&"x".repeat(201)).unwrap_err()), "name");
        assert!(description(Some("d".repeat(2000))).is_ok());
        assert_eq!(
            field(description(Some("d".repeat(2001))).unwrap_err()),
            "description"
        );
    }

    #[test]
    fn mappings_name_the_bad_entry() {
        assert!(mapping(&map(json!({"title": "/pull_request/title", "all": ""}))).is_ok());
        assert!(mapping(&map(
            json!({"t": {"pointer": "/a", "default": 1, "required": true}})
        ))
        .is_ok());
        let e = mapping(&map(json!({"title": "pull_request/title"}))).unwrap_err();
        assert!(e.to_string().contains("starts with /"), "{e}");
        assert_eq!(field(e), "input_mapping.title");
        assert_eq!(
            field(mapping(&map(json!({"t": {"pointer": "/a", "extra": 1}}))).unwrap_err()),
            "input_mapping.t"
        );
        assert_eq!(
            field(mapping(&map(json!({"t": {"pointer": "/a", "required": "yes"}}))).unwrap_err()),
            "input_mapping.t"
        );
        assert_eq!(
            field(mapping(&map(json!({"t": {"default": 1}}))).unwrap_err()),
            "input_mapping.t"
        );
        assert_eq!(
            field(mapping(&map(json!({"t": 5}))).unwrap_err()),
            "input_mapping.t"
        );
        assert_eq!(
            field(mapping(&map(json!({"": "/a"}))).unwrap_err()),
            "input_mapping"
        );
        let many: serde_json::Map<String, Value> =
            (0..101).map(|i| (format!("f{i}"), json!("/a"))).collect();
        assert_eq!(field(mapping(&many).unwrap_err()), "input_mapping");
    }

    #[test]
    fn sources_hosts_and_ranges() {
        assert_eq!(
            origin_host("https://Hooks.Example.com:8443/x").as_deref(),
            Some("hooks.example.com")
        );
        assert_eq!(
            origin_host("example.com:80/p").as_deref(),
            Some("example.com")
        );
        assert_eq!(origin_host(""), None);
        assert!(parse_ip_entry("10.0.0.0/8").is_some());
        assert!(parse_ip_entry(" 192.0.2.1 ").is_some());
        assert!(parse_ip_entry("::1").is_some());
        assert!(parse_ip_entry("10.0.0.0/33").is_none());
        let ok = AllowedSources {
            origins: vec!["https://github.com".into()],
            ips: vec!["192.30.252.0/22".into()],
        };
        assert!(sources(ok).is_ok());
        let bad_ip = AllowedSources {
            origins: vec![],
            ips: vec!["nope".into()],
        };
        assert_eq!(field(sources(bad_ip).unwrap_err()), "allowed_sources.ips");
        let bad_origin = AllowedSources {
            origins: vec!["https://".into()],
            ips: vec![],
        };
        assert_eq!(
            field(sources(bad_origin).unwrap_err()),
            "allowed_sources.origins"
        );
    }

    #[test]
    fn limits_events_metadata_and_secrets() {
        assert_eq!(rate(Some(100_000)).unwrap(), Some(100_000));
        assert_eq!(field(rate(Some(0)).unwrap_err()), "rate_limit_per_minute");
        assert_eq!(rate(None).unwrap(), None);
        assert_eq!(
            field(event_types(vec![" ".into()]).unwrap_err()),
            "event_types"
        );
        assert_eq!(metadata(None).unwrap(), json!({}));
        assert_eq!(field(metadata(Some(json!([1]))).unwrap_err()), "metadata");
        assert_eq!(
            field(metadata(Some(json!({"a": "x".repeat(9000)}))).unwrap_err()),
            "metadata"
        );
        assert!(secret("12345678", SignatureScheme::Hmac).is_ok());
        assert_eq!(
            field(secret("short", SignatureScheme::Hmac).unwrap_err()),
            "secret"
        );
        assert!(secret(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            SignatureScheme::StandardWebhooks
        )
        .is_ok());
        assert!(secret("12345678", SignatureScheme::StandardWebhooks).is_err());
        assert!(secret("whsec_!!!!!!!!", SignatureScheme::StandardWebhooks).is_err());
    }
}
