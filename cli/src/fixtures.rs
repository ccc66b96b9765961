//! Realistic provider calls for `hookrun trigger --fixture NAME`: one JSON
//! file each in `cli/fixtures/` (built into the binary), with the body the
//! provider sends and the headers it adds besides its signature.
//!
//! Placeholders make each call new (providers never repeat a delivery id,
//! and hookrun deduplicates on `X-GitHub-Delivery`, `webhook-id` and
//! `Idempotency-Key`): `{{uuid}}`, `{{id}}` (24 random hex digits),
//! `{{now}}` (Unix seconds; a string that is only `{{now}}` becomes a
//! number) and `{{now_iso}}` (RFC 3339), in header values and body
//! strings.

use std::collections::BTreeMap;

use rust_embed::Embed;
use serde::Deserialize;
use serde_json::Value;

use crate::client::{CliError, Result};

#[derive(Embed)]
#[folder = "fixtures"]
struct Files;

/// One provider call, as its file describes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// `provider:event` (`github:push`), or `generic`.
    pub name: String,
    pub description: String,
    /// The signature scheme the provider signs with (a trigger of that
    /// scheme takes it as it is).
    pub scheme: String,
    /// `application/json…`, or `application/x-www-form-urlencoded`
    /// (Slack's commands: the body's fields, form-encoded).
    pub content_type: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// A fixture made ready to send: placeholders filled, overrides applied,
/// the body encoded as the provider sends it.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub body: Vec<u8>,
    /// The id Standard Webhooks signs (`webhook-id`).
    pub message_id: String,
}

/// Every fixture, by name.
pub fn all() -> Vec<Fixture> {
    let mut out: Vec<Fixture> = Files::iter()
        .filter(|n| n.ends_with(".json"))
        .filter_map(|n| {
            let file = Files::get(&n)?;
            // The files are part of the build and checked by tests: one
            // that does not parse is a bug, left out rather than a panic.
            serde_json::from_slice(&file.data).ok()
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The fixture called `name`; an unknown name lists the known ones.
pub fn find(name: &str) -> Result<Fixture> {
    let fixtures = all();
    fixtures
        .iter()
        .find(|f| f.name == name)
        .cloned()
        .ok_or_else(|| {
            let names: Vec<&str> = fixtures.iter().map(|f| f.name.as_str()).collect();
            CliError::usage(format!(
                "no fixture {name:?}; there are: {} (hookrun trigger --list-fixtures)",
                names.join(", ")
            ))
        })
}

/// One `--set POINTER=VALUE`: the pointer into the body, and the value
/// (JSON when it parses, else the text as a string).
pub fn parse_set(spec: &str) -> Result<(String, Value)> {
    let (pointer, raw) = spec.split_once('=').ok_or_else(|| {
        CliError::usage(format!(
            "--set {spec:?}: expected POINTER=VALUE, e.g. /pull_request/title=\"Fix it\""
        ))
    })?;
    if !pointer.starts_with('/') {
        return Err(CliError::usage(format!(
            "--set {spec:?}: the pointer must start with / (a JSON pointer into the payload)"
        )));
    }
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    Ok((pointer.to_owned(), value))
}

/// Sets `pointer` in `body` to `value`: an existing member or element is
/// replaced, a new member of an existing object added.
fn apply_set(body: &mut Value, pointer: &str, value: Value) -> Result<()> {
    if let Some(slot) = body.pointer_mut(pointer) {
        *slot = value;
        return Ok(());
    }
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let key = last.replace("~1", "/").replace("~0", "~");
    match body.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(key, value);
            Ok(())
        }
        _ => Err(CliError::usage(format!(
            "--set {pointer}: the payload has no object at {:?} to set it in",
            if parent.is_empty() { "/" } else { parent }
        ))),
    }
}

/// What the placeholders stand for in one call.
struct Fill {
    uuid: String,
    id: String,
    now: i64,
    now_iso: String,
}

impl Fill {
    fn new(now: i64) -> Fill {
        let h = hookrun_core::ids::random_hex(32);
        let uuid = format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        );
        let now_iso = chrono::DateTime::from_timestamp(now, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        Fill {
            uuid,
            id: hookrun_core::ids::random_hex(24),
            now,
            now_iso,
        }
    }

    fn text(&self, s: &str) -> String {
        s.replace("{{uuid}}", &self.uuid)
            .replace("{{id}}", &self.id)
            .replace("{{now_iso}}", &self.now_iso)
            .replace("{{now}}", &self.now.to_string())
    }

    fn value(&self, v: &mut Value) {
        match v {
            Value::String(s) if s == "{{now}}" => *v = Value::from(self.now),
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|i| self.value(i)),
            Value::Object(map) => map.values_mut().for_each(|i| self.value(i)),
            _ => {}
        }
    }
}

impl Fixture {
    pub fn is_form(&self) -> bool {
        self.content_type
            .starts_with("application/x-www-form-urlencoded")
    }

    /// The call to send at `now` (Unix seconds), with `sets` applied.
    pub fn prepare(&self, sets: &[(String, Value)], now: i64) -> Result<Prepared> {
        let fill = Fill::new(now);
        let mut body = self.body.clone();
        fill.value(&mut body);
        for (pointer, value) in sets {
            apply_set(&mut body, pointer, value.clone())?;
        }
        let bytes = if self.is_form() {
            let Value::Object(fields) = &body else {
                return Err(CliError::usage(format!(
                    "fixture {}: a form body must be an object",
                    self.name
                )));
            };
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (k, v) in fields {
                match v {
                    Value::String(s) => form.append_pair(k, s),
                    other => form.append_pair(k, &other.to_string()),
                };
            }
            form.finish().into_bytes()
        } else {
            serde_json::to_vec(&body).expect("a JSON value serialises")
        };
        let headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), fill.text(v)))
            .collect();
        Ok(Prepared {
            headers,
            content_type: self.content_type.clone(),
            body: bytes,
            message_id: format!("msg_{}", fill.id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 9] = [
        "generic",
        "github:issues.opened",
        "github:pull_request.opened",
        "github:push",
        "grafana:alert.firing",
        "slack:command",
        "standard-webhooks:user.created",
        "stripe:checkout.session.completed",
        "stripe:invoice.paid",
    ];

    #[test]
    fn every_file_is_a_fixture_and_every_fixture_is_listed() {
        let files = Files::iter().filter(|n| n.ends_with(".json")).count();
        let names: Vec<String> = all().into_iter().map(|f| f.name).collect();
        assert_eq!(files, names.len(), "a fixture file does not parse");
        assert_eq!(names, NAMES);
        for f in all() {
            hookrun_core::model::SignatureScheme::try_from(f.scheme.clone())
                .unwrap_or_else(|_| panic!("{}: unknown scheme {}", f.name, f.scheme));
        }
    }

    #[test]
    fn placeholders_make_each_call_new_and_sets_override() {
        let f = find("stripe:invoice.paid").unwrap();
        let sets = vec![
            parse_set("/data/object/amount_paid=1200").unwrap(),
            parse_set("/data/object/note=paid in full").unwrap(),
        ];
        let a = f.prepare(&sets, 1_700_000_000).unwrap();
        let b = f.prepare(&[], 1_700_000_000).unwrap();
        let va: Value = serde_json::from_slice(&a.body).unwrap();
        let vb: Value = serde_json::from_slice(&b.body).unwrap();
        assert_eq!(va["created"], 1_700_000_000);
        assert_eq!(va["data"]["object"]["amount_paid"], 1200);
        assert_eq!(va["data"]["object"]["note"], "paid in full");
        assert!(va["id"].as_str().unwrap().starts_with("evt_"));
        assert_ne!(va["id"], vb["id"], "a new event id each time");
        assert!(!String::from_utf8_lossy(&a.body).contains("{{"));

        let gh = find("github:push")
            .unwrap()
            .prepare(&[], 1_700_000_000)
            .unwrap();
        let delivery = gh
            .headers
            .iter()
            .find(|(k, _)| k == "X-GitHub-Delivery")
            .map(|(_, v)| v.clone())
            .unwrap();
        assert_eq!(delivery.len(), 36);
        assert_eq!(&delivery[14..15], "4", "a version-4 UUID");
    }

    #[test]
    fn a_slack_command_is_form_encoded() {
        let f = find("slack:command").unwrap();
        let p = f
            .prepare(&[parse_set("/text=deploy & roll back").unwrap()], 1)
            .unwrap();
        let body = String::from_utf8(p.body).unwrap();
        assert!(body.contains("command=%2Fagent"), "{body}");
        assert!(body.contains("text=deploy+%26+roll+back"), "{body}");
    }

    #[test]
    fn bad_names_and_sets_are_usage_errors() {
        assert!(
            matches!(find("github:nope"), Err(CliError::Usage(m)) if m.contains("github:push"))
        );
        assert!(parse_set("no-equals").is_err());
        assert!(parse_set("title=x").is_err(), "a pointer starts with /");
        let f = find("generic").unwrap();
        let e = f
            .prepare(&[parse_set("/nowhere/deep=1").unwrap()], 1)
            .unwrap_err();
        assert!(matches!(e, CliError::Usage(m) if m.contains("/nowhere")));
    }
}
