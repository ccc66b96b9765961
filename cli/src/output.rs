//! How answers are shown: tables for people, the API's own JSON for
//! scripts (`--json`). Secrets that the API shows once are printed apart
//! from the table, on lines of their own, so they are hard to miss and
//! easy to copy.

use comfy_table::{presets, ColumnConstraint, ContentArrangement, Table};
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
    if !text.chars().any(|c| unsafe_for_terminal(c) && c != '\t') {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if unsafe_for_terminal(c) && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Characters a terminal acts on rather than shows: C0 and C1 controls
/// and DEL, and the bidirectional controls (U+061C, U+200E, U+200F,
/// U+202A–U+202E, U+2066–U+2069), which can make text read otherwise
/// than it is (a right-to-left override disguising a file name or a
/// command).
pub fn unsafe_for_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// JSON text with every [`unsafe_for_terminal`] character written as a
/// `\uXXXX` escape: the same JSON value, safe to print. (Such characters
/// can only be inside strings, where the escape means the same.)
pub fn json_safe(json: &str) -> std::borrow::Cow<'_, str> {
    if !json.chars().any(unsafe_for_terminal) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if unsafe_for_terminal(c) && !matches!(c, '\n' | '\r' | '\t') {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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

/// Narrowest a column is shortened to (when it is wider).
const MIN_COLUMN_CHARS: usize = 8;

/// Shortens the cells of a listing (`lines[0]` is the header) so the table
/// fits `width` characters: the first column (the id, to copy into the
/// next command) stays whole, the widest of the others give up characters
/// first, down to [`MIN_COLUMN_CHARS`] (a shortened cell ends with `…`);
/// if that is still too wide, the last columns are left out. Answers how
/// many were.
fn fit(lines: &mut [Vec<String>], width: usize) -> usize {
    let natural = lines.first().map_or(0, Vec::len);
    let chars = |i: usize, lines: &[Vec<String>]| {
        lines
            .iter()
            .map(|l| l.get(i).map_or(0, |c| c.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let mut n = natural;
    let mut widths: Vec<usize> = (0..n).map(|i| chars(i, lines)).collect();
    loop {
        // Borders and padding of UTF8_FULL_CONDENSED: 3 per column, and 1.
        let budget = width.saturating_sub(3 * n + 1);
        while widths.iter().sum::<usize>() > budget {
            let widest = (1..n)
                .filter(|&i| widths[i] > MIN_COLUMN_CHARS)
                .max_by_key(|&i| widths[i]);
            match widest {
                Some(i) => widths[i] -= 1,
                None => break,
            }
        }
        if widths.iter().sum::<usize>() <= budget || n <= 2 {
            break;
        }
        n -= 1;
        widths = (0..n).map(|i| chars(i, lines)).collect();
    }
    for line in lines.iter_mut() {
        line.truncate(n);
        for (cell, &w) in line.iter_mut().zip(&widths) {
            if cell.chars().count() > w {
                let mut short: String = cell.chars().take(w.saturating_sub(1)).collect();
                short.push('…');
                *cell = short;
            }
        }
    }
    natural - n
}

/// Column `i` keeps its content's width; the others wrap around it.
fn keep_whole(t: &mut Table, i: usize) {
    if let Some(column) = t.column_mut(i) {
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
}

/// A table fitted to [`table_width`]: cells wrap within their column (a
/// listing shortens them instead, see [`fit`]).
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
    /// The answer's JSON as it came (or `value`), with characters a
    /// terminal would act on escaped ([`json_safe`]).
    pub fn print_json(&self, raw: Option<&str>, value: &Value) {
        match raw {
            Some(r) if !r.trim().is_empty() => say!("{}", json_safe(r.trim_end())),
            Some(_) => {}
            None => say!("{}", json_safe(&value.to_string())),
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
            // One line per record: cells are shortened to fit, never
            // wrapped (`get` or `--json` shows every value whole).
            t.set_content_arrangement(ContentArrangement::Disabled);
            let mut lines: Vec<Vec<String>> =
                vec![columns.iter().map(|c| c.header.to_owned()).collect()];
            lines.extend(
                rows.iter()
                    .map(|r| columns.iter().map(|c| (c.get)(r)).collect()),
            );
            let left_out = table_width().map_or(0, |w| fit(&mut lines, usize::from(w)));
            let mut lines = lines.into_iter();
            t.set_header(lines.next().unwrap_or_default());
            for r in lines {
                t.add_row(r);
            }
            say!("{t}");
            if left_out > 0 {
                eprintln!("({left_out} more columns do not fit the terminal: widen it, or use get or --json)");
            }
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
        keep_whole(&mut t, 0);
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
    fn a_listing_fits_its_width_with_the_first_column_whole() {
        let id = "agt_01m9733z4b1vjhxvmqrf376t9z";
        let url = format!("http {}", "https://example.com/agent/agent/agent/agent");
        let mut lines = vec![
            vec!["id".to_owned(), "runner".to_owned(), "enabled".to_owned()],
            vec![id.to_owned(), url.clone(), "true".to_owned()],
        ];
        assert_eq!(fit(&mut lines, 60), 0);
        let row = &lines[1];
        assert_eq!(row[0], id, "the id stays whole");
        assert!(
            row[1].ends_with('…') && row[1].starts_with("http https:"),
            "{row:?}"
        );
        let total: usize = row.iter().map(|c| c.chars().count()).sum::<usize>() + 3 * 3 + 1;
        assert!(total <= 60, "{total}: {row:?}");
        assert_eq!(row[2], "true");
        // Wide enough: nothing changes.
        let mut roomy = vec![vec!["id".to_owned()], vec![id.to_owned()]];
        fit(&mut roomy, 200);
        assert_eq!(roomy[1][0], id);
        // Too narrow at the floor: the last columns are left out, down to
        // two; the first stays whole.
        let mut tight = vec![vec![
            id.to_owned(),
            "x".repeat(30),
            "y".repeat(30),
            "z".repeat(30),
        ]];
        assert_eq!(fit(&mut tight, 50), 2);
        assert_eq!(tight[0].len(), 2);
        assert_eq!(tight[0][0], id);
        assert_eq!(tight[0][1], format!("{}…", "x".repeat(12)));
        assert_eq!(fit(&mut tight, 10), 0, "never fewer than two");
    }

    #[test]
    fn terminal_controls_are_escaped_in_text_and_in_json() {
        let hostile = "ok\u{202E}txt.exe\u{9B}31m\u{1b}[2J\u{2066}";
        let shown = printable(hostile);
        assert!(!shown.chars().any(unsafe_for_terminal), "{shown:?}");
        assert!(
            shown.contains("\\u{202e}") && shown.contains("\\u{9b}"),
            "{shown}"
        );
        let json = serde_json::to_string(&json!({"line": hostile, "tab": "a\tb"})).unwrap();
        let safe = json_safe(&json);
        assert!(!safe.chars().any(unsafe_for_terminal), "{safe}");
        assert!(
            safe.contains("\\u202e") && safe.contains("\\u009b"),
            "{safe}"
        );
        let back: Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["line"], hostile, "the same value");
        assert_eq!(json_safe("{\"a\":1}"), "{\"a\":1}");
    }

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
