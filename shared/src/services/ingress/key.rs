//! A call's concurrency key value: read from the payload as it came (a
//! JSON pointer), a header, or a template over the run it makes. A call
//! without a value makes an unconstrained run, and its invocation says so.

use axum::http::HeaderMap;
use serde_json::{json, Value};

use crate::model::concurrency::{key_value, KeySource};
use crate::model::{Concurrency, Run};
use crate::runners::template;

/// What reading a key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRead {
    /// The value a run keeps.
    Value(String),
    /// Why the call has none.
    Missing(String),
}

/// The value a pointer or a header key reads from the call; None for a
/// template, which reads the run ([`from_run`]).
pub fn from_call(c: &Concurrency, headers: &HeaderMap, payload: &Value) -> Option<KeyRead> {
    match c.source()? {
        KeySource::Pointer(pointer) => Some(match payload.pointer(pointer) {
            None | Some(Value::Null) => {
                KeyRead::Missing(format!("the payload has no value at {pointer}"))
            }
            Some(v) => read(text_of(v), || {
                format!("the payload's value at {pointer} is empty")
            }),
        }),
        KeySource::Header(name) => Some(match headers.get(name) {
            None => KeyRead::Missing(format!("the call has no {name} header")),
            Some(v) => read(
                String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
                || format!("the call's {name} header is empty"),
            ),
        }),
        KeySource::Template(_) => None,
    }
}

/// The value a template key renders for a run (`input`, `message`,
/// `trigger`); a pointer or header key reads nothing here.
pub fn from_run(c: &Concurrency, run: &Run) -> KeyRead {
    let Some(KeySource::Template(source)) = c.source() else {
        return KeyRead::Missing("the key reads the call, not the run".into());
    };
    let context = json!({
        "input": run.input,
        "message": run.message,
        "trigger": {"type": run.trigger_type, "id": run.trigger_id},
    });
    match template::render_with(source, &context) {
        Ok(text) => read(text.trim().to_owned(), || {
            "the template rendered nothing".into()
        }),
        Err(e) => KeyRead::Missing(format!("the template failed: {e}")),
    }
}

/// What an invocation log says of a call whose key read nothing.
pub fn missing_note(c: &Concurrency, why: &str) -> String {
    format!(
        "concurrency key {}: {why}; the run is not constrained by it",
        c.key
    )
}

fn read(text: String, empty: impl FnOnce() -> String) -> KeyRead {
    if text.is_empty() {
        KeyRead::Missing(empty())
    } else {
        KeyRead::Value(key_value(&text))
    }
}

/// A JSON value as key text: a string as it is, anything else as JSON.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OnConflict;

    fn c(key: &str) -> Concurrency {
        Concurrency {
            key: key.into(),
            on_conflict: OnConflict::Skip,
        }
    }

    #[test]
    fn pointers_and_headers_read_the_call() {
        let payload = json!({"pull_request": {"number": 42, "title": ""}, "repo": "a/b"});
        let mut headers = HeaderMap::new();
        headers.insert("x-github-delivery", "d-1".parse().unwrap());
        assert_eq!(
            from_call(&c("/pull_request/number"), &headers, &payload),
            Some(KeyRead::Value("42".into()))
        );
        assert_eq!(
            from_call(&c("/repo"), &headers, &payload),
            Some(KeyRead::Value("a/b".into()))
        );
        assert!(matches!(
            from_call(&c("/pull_request/title"), &headers, &payload),
            Some(KeyRead::Missing(why)) if why.contains("empty")
        ));
        assert!(matches!(
            from_call(&c("/nope"), &headers, &payload),
            Some(KeyRead::Missing(why)) if why.contains("/nope")
        ));
        assert_eq!(
            from_call(&c("header:X-GitHub-Delivery"), &headers, &payload),
            Some(KeyRead::Value("d-1".into()))
        );
        assert!(matches!(
            from_call(&c("header:X-Other"), &headers, &payload),
            Some(KeyRead::Missing(why)) if why.contains("X-Other")
        ));
        assert_eq!(from_call(&c("{{ input.repo }}"), &headers, &payload), None);
    }
}
