//! Agents that stream: an answer of `text/event-stream` (server-sent
//! events) or newline-delimited JSON is read as it arrives, each event or
//! line handed on at once (the executor logs and broadcasts it), and the
//! last one becomes the run's output.
//!
//! The parser is small and written here: the SSE format needs only its
//! line rules (`data:`, `event:`, comments, a blank line ends an event),
//! and the crates for it bring a parser combinator library into every
//! executor bootstrap for the same few rules.

/// How an answer streams, from its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `text/event-stream`.
    Sse,
    /// `application/x-ndjson`, `application/ndjson`, `application/jsonl`,
    /// `application/x-jsonlines`.
    Ndjson,
}

impl Format {
    pub fn of(content_type: &str) -> Option<Format> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/event-stream" => Some(Format::Sse),
            "application/x-ndjson"
            | "application/ndjson"
            | "application/jsonl"
            | "application/x-jsonlines" => Some(Format::Ndjson),
            _ => None,
        }
    }
}

/// One event or line of a streamed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The text logged for it.
    pub line: String,
    /// The whole event data or line (the output, if it is the last).
    pub raw: String,
}

impl Streamed {
    /// A note of hookrun's in the run's log (a retry, a cut stream).
    pub fn warning(line: String) -> Streamed {
        Streamed {
            level: "warn".into(),
            raw: line.clone(),
            line,
        }
    }
}

/// A streamed answer's [`Parser`] under the output cap: every byte of the
/// stream counts towards `HOOKRUN_MAX_OUTPUT_BYTES`.
pub struct Capped {
    parser: Parser,
    read: usize,
    max: usize,
}

impl Capped {
    pub fn new(format: Format, max: usize) -> Self {
        Capped {
            parser: Parser::new(format),
            read: 0,
            max,
        }
    }

    /// The events `chunk` completes; `None` (the end) gives what is left.
    pub fn feed(&mut self, chunk: Option<&[u8]>) -> Result<Vec<Streamed>, super::RunnerError> {
        match chunk {
            Some(chunk) => {
                self.read += chunk.len();
                if self.read > self.max {
                    return Err(super::RunnerError::TooLarge(self.max));
                }
                Ok(self.parser.push(chunk))
            }
            None => Ok(self.parser.finish()),
        }
    }
}

/// Reads a streamed answer chunk by chunk.
pub struct Parser {
    format: Format,
    buf: Vec<u8>,
    /// SSE: the event being read.
    data: Option<String>,
    event: Option<String>,
}

impl Parser {
    pub fn new(format: Format) -> Self {
        Parser {
            format,
            buf: Vec::new(),
            data: None,
            event: None,
        }
    }

    /// The events or lines that `chunk` completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Streamed> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            self.line(line, &mut out);
        }
        out
    }

    /// What is left when the answer ends (a last line without a newline,
    /// an event without its blank line).
    pub fn finish(&mut self) -> Vec<Streamed> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let line = String::from_utf8_lossy(&rest)
                .trim_end_matches('\r')
                .to_owned();
            self.line(line, &mut out);
        }
        if self.format == Format::Sse {
            self.dispatch(&mut out);
        }
        out
    }

    fn line(&mut self, line: String, out: &mut Vec<Streamed>) {
        match self.format {
            Format::Ndjson => {
                if !line.trim().is_empty() {
                    out.push(ndjson_line(line));
                }
            }
            Format::Sse => {
                if line.is_empty() {
                    self.dispatch(out);
                    return;
                }
                if line.starts_with(':') {
                    return; // a comment (keep-alive)
                }
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line.as_str(), ""),
                };
                match field {
                    "data" => {
                        let data = self.data.get_or_insert_with(String::new);
                        if !data.is_empty() {
                            data.push('\n');
                        }
                        data.push_str(value);
                    }
                    "event" => self.event = Some(value.to_owned()),
                    _ => {} // id, retry and unknown fields
                }
            }
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Streamed>) {
        let event = self.event.take();
        let Some(data) = self.data.take() else {
            return;
        };
        let level = match event.as_deref() {
            Some("error") => "error",
            Some("warn" | "warning") => "warn",
            Some("debug") => "debug",
            _ => "info",
        };
        out.push(Streamed {
            level: level.into(),
            line: data.clone(),
            raw: data,
        });
    }
}

/// A JSON line with a `level` and a `message` (or `line`) logs as that;
/// any other line logs as it is.
fn ndjson_line(raw: String) -> Streamed {
    let parsed: Option<serde_json::Value> = crate::json::check_depth(raw.as_bytes())
        .ok()
        .and_then(|()| serde_json::from_str(&raw).ok());
    if let Some(obj) = parsed.as_ref().and_then(|v| v.as_object()) {
        let level = obj
            .get("level")
            .and_then(|l| l.as_str())
            .map(str::to_ascii_lowercase)
            .filter(|l| ["debug", "info", "warn", "error"].contains(&l.as_str()));
        let text = obj
            .get("message")
            .or_else(|| obj.get("line"))
            .and_then(|m| m.as_str());
        if let (Some(level), Some(text)) = (level, text) {
            return Streamed {
                level,
                line: text.to_owned(),
                raw,
            };
        }
    }
    Streamed {
        level: "info".into(),
        line: raw.clone(),
        raw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(format: Format, chunks: &[&str]) -> Vec<Streamed> {
        let mut p = Parser::new(format);
        let mut out: Vec<Streamed> = chunks.iter().flat_map(|c| p.push(c.as_bytes())).collect();
        out.extend(p.finish());
        out
    }

    #[test]
    fn content_types_choose_the_format() {
        assert_eq!(
            Format::of("text/event-stream; charset=utf-8"),
            Some(Format::Sse)
        );
        assert_eq!(Format::of("Application/X-NDJSON"), Some(Format::Ndjson));
        assert_eq!(Format::of("application/jsonl"), Some(Format::Ndjson));
        assert_eq!(Format::of("application/json"), None);
        assert_eq!(Format::of(""), None);
    }

    #[test]
    fn sse_events_split_across_chunks_come_out_whole() {
        let out = all(
            Format::Sse,
            &[
                ": keep-alive\n\ndata: one\n",
                "\nevent: error\nda",
                "ta: two\ndata: lines\r\n\r\n",
                "id: 3\ndata:{\"done\":true}",
            ],
        );
        let lines: Vec<(&str, &str)> = out
            .iter()
            .map(|s| (s.level.as_str(), s.line.as_str()))
            .collect();
        assert_eq!(
            lines,
            vec![
                ("info", "one"),
                ("error", "two\nlines"),
                ("info", "{\"done\":true}")
            ]
        );
    }

    #[test]
    fn ndjson_lines_log_their_message_and_level() {
        let out = all(
            Format::Ndjson,
            &[
                "{\"level\":\"WARN\",\"message\":\"careful\"}\n\n",
                "plain text\n{\"result\":",
                "42}",
            ],
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            (out[0].level.as_str(), out[0].line.as_str()),
            ("warn", "careful")
        );
        assert_eq!(
            (out[1].level.as_str(), out[1].line.as_str()),
            ("info", "plain text")
        );
        assert_eq!(out[2].raw, "{\"result\":42}");
    }

    #[test]
    fn invalid_utf8_and_an_empty_stream_do_not_fail() {
        let mut p = Parser::new(Format::Ndjson);
        let out = p.push(b"\xff\xfe\n");
        assert_eq!(out.len(), 1);
        assert!(all(Format::Sse, &[]).is_empty());
        assert!(
            all(Format::Sse, &["event: x\n\n"]).is_empty(),
            "no data, no event"
        );
    }
}
