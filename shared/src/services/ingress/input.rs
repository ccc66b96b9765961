//! From a trigger call's body to a run's input and message: parsing, the
//! event a call carries, the trigger's event filter and its input mapping.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use super::header;
use crate::error::Error;
use crate::message::webhook_message_with;
use crate::model::Trigger;
use crate::providers;

pub fn parse_json(body: &[u8]) -> Result<Value, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::invalid(
            "body",
            "request body is empty; send a JSON document",
        ));
    }
    crate::json::check_depth(body)
        .map_err(|m| Error::invalid("body", format!("request body: {m}")))?;
    serde_json::from_slice(body)
        .map_err(|e| Error::invalid("body", format!("request body is not valid JSON: {e}")))
}

/// Trigger bodies: JSON, or a form body kept as text (Slack commands, some
/// form tools), or nothing at all (a bare ping from a scheduler).
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Error> {
    let form = header(headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        return std::str::from_utf8(body)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| Error::invalid("body", "form body is not UTF-8"));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    parse_json(body)
}

/// The event a call carries: the provider's header (with GitHub's `action`
/// appended as `event.action` when present), else `event` or `type`.
pub fn event_names(headers: &HeaderMap, payload: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(h) = providers::event_header(headers) {
        if let Some(action) = payload.get("action").and_then(Value::as_str) {
            names.push(format!("{h}.{action}"));
        }
        names.push(h);
    }
    for k in ["event", "type"] {
        if let Some(v) = payload.get(k).and_then(Value::as_str) {
            names.push(v.to_owned());
        }
    }
    names
}

/// Whether the trigger's event filter lets this call through (an empty
/// filter lets everything through).
pub fn wanted(t: &Trigger, headers: &HeaderMap, payload: &Value) -> bool {
    t.event_types.is_empty()
        || event_names(headers, payload)
            .iter()
            .any(|n| t.event_types.iter().any(|e| e == n))
}

/// The run's input and message. Without a mapping the payload is the
/// input; with one, each field is read by its JSON pointer (or takes its
/// default). The message is the input's (or payload's) `message` string,
/// else the formatted webhook message.
pub fn map_input(
    t: &Trigger,
    payload: Value,
    event: Option<&str>,
    source: Option<&str>,
) -> Result<(Value, String), Error> {
    let input = match &t.input_mapping {
        None => payload.clone(),
        Some(mapping) => {
            let mut out = serde_json::Map::new();
            for (name, spec) in mapping {
                let (pointer, default, required) = match spec {
                    Value::String(p) => (p.as_str(), None, false),
                    Value::Object(o) => (
                        o.get("pointer").and_then(Value::as_str).unwrap_or(""),
                        o.get("default"),
                        o.get("required").and_then(Value::as_bool).unwrap_or(false),
                    ),
                    _ => continue,
                };
                match payload.pointer(pointer).or(default) {
                    Some(v) => {
                        out.insert(name.clone(), v.clone());
                    }
                    None if required => {
                        return Err(Error::invalid(
                            format!("input_mapping.{name}"),
                            format!(
                                "required input field {name:?} is missing (nothing at {pointer:?} in the payload)"
                            ),
                        ))
                    }
                    None => {}
                }
            }
            Value::Object(out)
        }
    };
    let message = input
        .get("message")
        .and_then(Value::as_str)
        .or_else(|| payload.get("message").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| webhook_message_with(&payload, event, source));
    Ok((input, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trigger(mapping: Option<Value>, events: &[&str]) -> Trigger {
        let now = chrono::Utc::now();
        Trigger {
            id: crate::ids::TriggerId::parse("trg_1").unwrap(),
            workspace_id: crate::ids::WorkspaceId::parse("ws_1").unwrap(),
            agent_id: crate::ids::AgentId::parse("agt_1").unwrap(),
            name: "t".into(),
            description: None,
            token_hash: String::new(),
            token_prefix: String::new(),
            is_active: true,
            secret_sealed: None,
            signature: Default::default(),
            allowed_sources: Default::default(),
            input_mapping: mapping.map(|m| m.as_object().unwrap().clone()),
            event_types: events.iter().map(|e| e.to_string()).collect(),
            environment: Default::default(),
            rate_limit_per_minute: None,
            metadata: json!({}),
            agent_route: false,
            respond_when: Default::default(),
            concurrency: None,
            last_used_at: None,
            created_by_id: String::new(),
            created_at: now,
            updated_at: now,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bodies_nest_at_most_64_levels() {
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(parse_json(ok.as_bytes()).is_ok());
        let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let e = parse_json(deep.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("deeper than 64"), "{e}");
    }

    #[test]
    fn bodies() {
        assert_eq!(parse_json(br#"{"a":1}"#).unwrap(), json!({"a": 1}));
        assert!(parse_json(b"  ").unwrap_err().to_string().contains("empty"));
        assert!(parse_json(b"{")
            .unwrap_err()
            .to_string()
            .contains("not valid JSON"));
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        assert_eq!(parse_body(&form, b"a=1&b=2").unwrap(), json!("a=1&b=2"));
        assert!(parse_body(&form, &[0xff, 0xfe]).is_err());
        assert_eq!(parse_body(&HeaderMap::new(), b"").unwrap(), json!({}));
    }

    #[test]
    fn events_from_headers_and_payload() {
        let gh = headers(&[("x-github-event", "pull_request")]);
        let payload = json!({"action": "opened", "type": "t"});
        assert_eq!(
            event_names(&gh, &payload),
            vec!["pull_request.opened", "pull_request", "t"]
        );
        let t = trigger(None, &["pull_request.opened"]);
        assert!(wanted(&t, &gh, &payload));
        assert!(!wanted(&t, &HeaderMap::new(), &json!({"event": "push"})));
        assert!(wanted(&trigger(None, &[]), &HeaderMap::new(), &json!({})));
    }

    #[test]
    fn mapping_reads_pointers_defaults_and_required_fields() {
        let t = trigger(
            Some(json!({
                "title": "/pull_request/title",
                "repo": {"pointer": "/repository/name", "default": "unknown"},
                "number": {"pointer": "/number", "required": true},
                "absent": "/nope",
            })),
            &[],
        );
        let payload = json!({"pull_request": {"title": "Fix"}, "number": 7});
        let (input, message) = map_input(&t, payload, Some("pr"), Some("github")).unwrap();
        assert_eq!(
            input,
            json!({"title": "Fix", "repo": "unknown", "number": 7})
        );
        assert!(message.starts_with("Webhook event received:\nEvent: pr\nSource: github"));

        let e = map_input(&t, json!({}), None, None).unwrap_err();
        assert!(
            matches!(&e, Error::Invalid { field, .. } if field == "input_mapping.number"),
            "{e:?}"
        );
    }

    #[test]
    fn the_message_comes_from_the_input_first() {
        let t = trigger(Some(json!({"message": "/text"})), &[]);
        let (_, m) = map_input(&t, json!({"text": "hi", "message": "no"}), None, None).unwrap();
        assert_eq!(m, "hi");
        let (input, m) =
            map_input(&trigger(None, &[]), json!({"message": "x"}), None, None).unwrap();
        assert_eq!((input, m.as_str()), (json!({"message": "x"}), "x"));
    }
}
