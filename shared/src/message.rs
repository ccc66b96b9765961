//! The message an agent receives for a webhook event (docs/ARCHITECTURE.md,
//! "A trigger call, from HTTP to the 202").

use serde_json::Value;

/// Formats a payload as
///
/// ```text
/// Webhook event received:
/// Event: pull_request.opened
/// Source: github
/// Data: {"repository":"org/repo",...}
/// ```
///
/// `Event` is the payload's `event` (or `type`), `Source` its `source`;
/// `Data` is its `data` field when present, else the whole payload. Long data
/// is cut so one message stays a reasonable prompt.
pub fn webhook_message(payload: &Value) -> String {
    webhook_message_with(payload, None, None)
}

/// [`webhook_message`], with the event and source a provider named outside
/// the payload (e.g. `X-GitHub-Event`) used when the payload names none.
pub fn webhook_message_with(payload: &Value, event: Option<&str>, source: Option<&str>) -> String {
    let text = |keys: &[&str], fallback: Option<&str>| {
        keys.iter()
            .find_map(|k| payload.get(*k).and_then(Value::as_str))
            .or(fallback)
            .unwrap_or("unknown")
            .to_owned()
    };
    let event = text(&["event", "type"], event);
    let source = text(&["source"], source);
    let data = payload.get("data").unwrap_or(payload);
    let mut data = serde_json::to_string(data).unwrap_or_default();
    truncate_utf8(&mut data, MAX_DATA_CHARS);
    format!("Webhook event received:\nEvent: {event}\nSource: {source}\nData: {data}")
}

const MAX_DATA_CHARS: usize = 16 * 1024;

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut.
pub fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push('…');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_the_documented_example() {
        let payload = json!({
            "event": "pull_request.opened",
            "source": "github",
            "data": {"repository": "org/repo", "pr_number": 42}
        });
        assert_eq!(
            webhook_message(&payload),
            "Webhook event received:\nEvent: pull_request.opened\nSource: github\nData: {\"pr_number\":42,\"repository\":\"org/repo\"}"
        );
    }

    #[test]
    fn falls_back_to_type_and_whole_payload() {
        let payload = json!({"type": "alert", "value": 3});
        let m = webhook_message(&payload);
        assert!(m.contains("Event: alert\nSource: unknown\n"), "{m}");
        assert!(m.ends_with("Data: {\"type\":\"alert\",\"value\":3}"), "{m}");
        assert!(webhook_message(&json!([1, 2])).contains("Event: unknown"));
    }

    #[test]
    fn provider_names_fill_in_what_the_payload_lacks() {
        let m = webhook_message_with(
            &json!({"action": "opened"}),
            Some("pull_request.opened"),
            Some("github"),
        );
        assert!(
            m.contains("Event: pull_request.opened\nSource: github\n"),
            "{m}"
        );
        let m = webhook_message_with(
            &json!({"event": "own", "source": "mine"}),
            Some("x"),
            Some("y"),
        );
        assert!(m.contains("Event: own\nSource: mine\n"), "{m}");
    }

    #[test]
    fn truncates_on_char_boundary() {
        let mut s = "é".repeat(10);
        truncate_utf8(&mut s, 5);
        assert_eq!(s, "éé…");
    }
}
