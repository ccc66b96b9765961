//! How answers are shown: tables for people, the API's own JSON for
//! scripts (`--json`). Secrets that the API shows once are printed apart
//! from the table, on lines of their own, so they are hard to miss and
//! easy to copy.

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;

/// Longest cell in a table; the rest is one `--json` away.
const MAX_CELL_CHARS: usize = 300;

/// One column of a listing: its header and how to read it from a record.
pub struct Column {
    pub header: &'static str,
    pub get: fn(&Value) -> String,
}

/// A column that shows the field at a JSON pointer (`/runner/type`).
#[macro_export]
macro_rules! col {
    ($header:literal, $pointer:literal) => {
        $crate::output::Column {
            header: $header,
            get: |v| $crate::output::cell(v.pointer($pointer)),
        }
    };
    ($header:literal, |$v:ident| $body:expr) => {
        $crate::output::Column {
            header: $header,
            get: |$v| $body,
        }
    };
}

/// `println!` that ends the process quietly when standard output is
/// closed (`hookrun agents list | head -1`): a reader that has seen enough
/// is no error, and `println!` would panic there.
#[macro_export]
macro_rules! say {
    () => {
        $crate::output::write_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))
    };
}

pub fn write_line(args: std::fmt::Arguments<'_>) {
    write_bytes(format!("{args}\n").as_bytes());
}

/// Writes to standard output; see [`say!`](crate::say).
pub fn write_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(crate::client::exit::OK));
        }
        eprintln!("hookrun: cannot write to standard output: {e}");
        std::process::exit(i32::from(crate::client::exit::REFUSED));
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

/// Text from the service made safe for a terminal: control characters
/// (ESC, OSC, C1, …) other than tab are shown escaped (`\u{1b}`). Log
/// lines and outputs carry what outside callers sent, and raw escape
/// sequences could rewrite an operator's screen or clipboard.
pub fn printable(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A value as a table cell: strings bare, lists joined, absent as `-`;
/// always [`printable`].
pub fn cell(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    };
    shorten(printable(&text))
}

fn shorten(text: String) -> String {
    if text.chars().count() <= MAX_CELL_CHARS {
        return text;
    }
    let mut s: String = text.chars().take(MAX_CELL_CHARS).collect();
    s.push_str("… (--json shows all)");
    s
}

/// Narrowest width a table is fitted to (below it, rows are left whole).
const MIN_TABLE_WIDTH: u16 = 20;

/// The width tables are fitted to: `$COLUMNS` when set, else the width of
/// the terminal standard output is; none when it is a pipe or a file, so a
/// script reading rows gets them whole (and `--json` gets every value).
fn table_width() -> Option<u16> {
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok());
    columns
        .or_else(|| terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0))
        .filter(|w| *w >= MIN_TABLE_WIDTH)
}

/// A table fitted to [`table_width`]: cells wrap within their column.
fn table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    match table_width() {
        Some(width) => {
            t.set_width(width)
                .set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    t
}

impl Output {
    /// The API's JSON as it came (`raw`), or `value` re-encoded when the
    /// command assembled it (several pages, a report).
    pub fn print_json(&self, raw: Option<&str>, value: &Value) {
        match raw {
            Some(r) if !r.trim().is_empty() => say!("{}", r.trim_end()),
            Some(_) => {}
            None => say!("{value}"),
        }
    }

    /// A listing (`{"data": [...], "next_cursor": …}`) as a table, one row
    /// per record; a cursor left over is named on standard error, so the
    /// table on standard output stays clean.
    pub fn listing(&self, raw: Option<&str>, listing: &Value, columns: &[Column]) {
        if self.json {
            return self.print_json(raw, listing);
        }
        let rows = listing
            .get("data")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if rows.is_empty() {
            say!("(none)");
        } else {
            let mut t = table();
            t.set_header(columns.iter().map(|c| c.header));
            for r in rows {
                t.add_row(columns.iter().map(|c| (c.get)(r)));
            }
            say!("{t}");
        }
        if let Some(c) = listing.get("next_cursor").and_then(Value::as_str) {
            eprintln!("more: --cursor {c} (or --all)");
        }
        if let Some(bad) = listing.get("unreadable").and_then(Value::as_array) {
            for u in bad {
                eprintln!(
                    "unreadable record {}: {}",
                    cell(u.get("id")),
                    cell(u.get("error"))
                );
            }
        }
    }

    /// One record as a two-column table of its fields; the fields named in
    /// `secrets` are printed below it, once, on lines of their own.
    pub fn object(&self, raw: Option<&str>, value: &Value, secrets: &[&str]) {
        if self.json {
            return self.print_json(raw, value);
        }
        let mut t = table();
        t.set_header(["field", "value"]);
        // A secret shown once also appears inside other fields (the token
        // in `urls.token_url`): the table names it instead, so it is
        // printed in one place only, below.
        let shown: Vec<(&str, &str)> = secrets
            .iter()
            .filter_map(|k| Some((*k, value.get(*k)?.as_str().filter(|s| !s.is_empty())?)))
            .collect();
        if let Some(fields) = value.as_object() {
            for (k, v) in fields {
                if secrets.contains(&k.as_str()) {
                    continue;
                }
                let mut text = cell(Some(v));
                for (name, secret) in &shown {
                    text = text.replace(&printable(secret), &format!("<{name}, below>"));
                }
                t.add_row([printable(k), text]);
            }
        }
        say!("{t}");
        self.secrets(value, secrets);
    }

    /// The one-time secrets of an answer, each on its own line.
    pub fn secrets(&self, value: &Value, secrets: &[&str]) {
        let shown: Vec<(&str, &str)> = secrets
            .iter()
            .filter_map(|k| Some((*k, value.get(*k)?.as_str()?)))
            .collect();
        if shown.is_empty() {
            return;
        }
        say!();
        for (k, v) in shown {
            say!("{k} (shown once, keep it): {}", printable(v));
        }
    }

    /// A sentence for people; nothing in `--json` mode, where the answer
    /// (or the exit code) says it.
    pub fn note(&self, text: &str) {
        if !self.json {
            say!("{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells() {
        assert_eq!(cell(None), "-");
        assert_eq!(cell(Some(&Value::Null)), "-");
        assert_eq!(cell(Some(&json!("x"))), "x");
        assert_eq!(cell(Some(&json!(["a", "b"]))), "a, b");
        assert_eq!(cell(Some(&json!({"a": 1}))), r#"{"a":1}"#);
        assert_eq!(cell(Some(&json!(true))), "true");
        // Escape sequences from outside callers never reach the terminal.
        assert_eq!(
            cell(Some(&json!("a\u{1b}]52;c;aGk=\u{7}b\tc\nd\u{9b}"))),
            "a\\u{1b}]52;c;aGk=\\u{7}b\tc\\nd\\u{9b}"
        );
        let long = cell(Some(&json!("y".repeat(1000))));
        assert!(long.ends_with("(--json shows all)"));
        assert!(long.chars().count() < 400);
    }
}
