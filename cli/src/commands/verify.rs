//! `hookrun verify`: checks the signatures of an outgoing webhook as a
//! receiver would, from a saved request. The expected signatures are made
//! by the very function hookrun signs deliveries with
//! (`hookrun_core::services::delivery::signature_headers`) and compared in
//! constant time (`hookrun_core::signature::secrets_equal`), so this
//! command and the sender cannot drift apart.

use std::path::PathBuf;
use std::time::Duration;

use hookrun_core::services::delivery::signature_headers;
use hookrun_core::signature::secrets_equal;
use serde_json::{json, Value};

use crate::client::{CliError, Result};
use crate::output::Output;

/// Most header fields read from a saved request.
const MAX_HEADERS: usize = 128;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["request", "headers"]))]
pub struct Args {
    /// The subscription's signing secret (whsec_…), or the agent's for a
    /// call hookrun made to an http agent; `@FILE` or `-` (standard
    /// input); or HOOKRUN_SUBSCRIPTION_SECRET.
    #[arg(
        long,
        env = "HOOKRUN_SUBSCRIPTION_SECRET",
        hide_env_values = true,
        value_name = "SECRET|@FILE|-"
    )]
    secret: String,
    /// The raw HTTP request as received: request line, headers, blank
    /// line, body.
    #[arg(long, value_name = "FILE")]
    request: Option<PathBuf>,
    /// The header lines alone (`Name: value`), with --body.
    #[arg(
        long,
        value_name = "FILE",
        requires = "body",
        conflicts_with = "request"
    )]
    headers: Option<PathBuf>,
    /// The body alone, byte for byte, with --headers.
    #[arg(long, value_name = "FILE", requires = "headers")]
    body: Option<PathBuf>,
    /// Largest accepted age (or clock skew) of the signature timestamp,
    /// e.g. 300s, 5m (Standard Webhooks' default is 5 minutes).
    #[arg(long, default_value = "300s", value_parser = parse_tolerance)]
    tolerance: Duration,
}

fn parse_tolerance(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s.trim()).map_err(|e| format!("{e} (e.g. 300s, 5m)"))
}

/// A saved request: its header fields (names lowercased) and body bytes.
#[derive(Debug, Default)]
pub struct Saved {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Saved {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
    }

    /// A whole request: request line, headers, blank line, body (cut to
    /// `Content-Length` when it says less, e.g. an editor's final newline).
    pub fn parse_request(raw: &[u8]) -> Result<Saved> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(raw) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return Err(CliError::usage(
                    "--request: the headers do not end (no blank line after them)",
                ))
            }
            Err(e) => {
                return Err(CliError::usage(format!(
                    "--request: not an HTTP request: {e}"
                )))
            }
        };
        let mut saved = Saved {
            headers: fields(req.headers),
            body: raw[head_len..].to_vec(),
        };
        saved.fit_body()?;
        Ok(saved)
    }

    /// Header lines alone (a request or status line first is allowed and
    /// skipped), and the body as it is.
    pub fn parse_parts(head: &[u8], body: Vec<u8>) -> Result<Saved> {
        let mut head = head.to_vec();
        if head.starts_with(b"POST ") || head.starts_with(b"HTTP/") {
            let line_end = head
                .iter()
                .position(|b| *b == b'\n')
                .map_or(head.len(), |i| i + 1);
            head.drain(..line_end);
        }
        // httparse wants the blank line that ends a header block.
        while head.last().is_some_and(|b| b.is_ascii_whitespace()) {
            head.pop();
        }
        head.extend_from_slice(b"\r\n\r\n");
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(&head, &mut headers) {
            Ok(httparse::Status::Complete((_, parsed))) => Ok(Saved {
                headers: fields(parsed),
                body,
            }),
            Ok(httparse::Status::Partial) => Err(CliError::usage("--headers: incomplete")),
            Err(e) => Err(CliError::usage(format!("--headers: not header lines: {e}"))),
        }
    }

    fn fit_body(&mut self) -> Result<()> {
        if self
            .header("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
        {
            return Err(CliError::usage(
                "--request: a chunked body is not supported; save it decoded with --headers and --body",
            ));
        }
        if let Some(len) = self.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| CliError::usage("--request: malformed Content-Length"))?;
            if len > self.body.len() {
                return Err(CliError::usage(format!(
                    "--request: the body is {} bytes, Content-Length says {len}",
                    self.body.len()
                )));
            }
            self.body.truncate(len);
        }
        Ok(())
    }
}

fn fields(h: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    h.iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// What came of one header set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The signature matches and its timestamp is within the tolerance.
    Valid,
    /// The signature matches but the timestamp is too old (or too far ahead).
    Stale { age_secs: i64 },
    /// The headers are there but do not verify with this secret and body.
    Invalid(&'static str),
    /// This header set is not in the request.
    Missing,
}

impl Outcome {
    fn word(&self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Stale { .. } => "stale",
            Outcome::Invalid(_) => "invalid",
            Outcome::Missing => "missing",
        }
    }

    fn detail(&self, tolerance: Duration) -> String {
        match self {
            Outcome::Valid => String::new(),
            Outcome::Stale { age_secs } => format!(
                "the signature matches, but its timestamp is {} s {} (tolerance {} s)",
                age_secs.unsigned_abs(),
                if *age_secs >= 0 { "old" } else { "ahead" },
                tolerance.as_secs()
            ),
            Outcome::Invalid(why) => (*why).to_owned(),
            Outcome::Missing => "no such headers".into(),
        }
    }
}

/// The two header sets' outcomes: X-Crewship-* and Standard Webhooks.
pub fn check(saved: &Saved, secret: &str, now: i64, tolerance: Duration) -> (Outcome, Outcome) {
    let body = std::str::from_utf8(&saved.body);
    let fresh = |ts: i64| {
        let age = now.saturating_sub(ts);
        if age.unsigned_abs() > tolerance.as_secs() {
            Outcome::Stale { age_secs: age }
        } else {
            Outcome::Valid
        }
    };
    let expected = |id: &str, ts: i64, body: &str, name: &str| {
        signature_headers(id, "", ts, body, &[secret.to_owned()])
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .unwrap_or_default()
    };

    let crewship = match saved.header("x-crewship-signature") {
        None => Outcome::Missing,
        Some(sig) => match (saved.header("x-crewship-timestamp"), body) {
            (None, _) => Outcome::Invalid("missing X-Crewship-Timestamp"),
            (_, Err(_)) => Outcome::Invalid("the body is not UTF-8, so hookrun did not sign it"),
            (Some(ts), Ok(body)) => match ts.parse::<i64>() {
                Err(_) => Outcome::Invalid("malformed X-Crewship-Timestamp"),
                Ok(ts) => {
                    let want = expected("", ts, body, "x-crewship-signature");
                    // The previous secret's signature, during a rotation.
                    let previous = saved
                        .header("x-crewship-signature-previous")
                        .is_some_and(|p| secrets_equal(p, &want));
                    if secrets_equal(sig, &want) | previous {
                        fresh(ts)
                    } else {
                        Outcome::Invalid("signature mismatch (wrong secret, or the body or timestamp was changed)")
                    }
                }
            },
        },
    };

    let standard = match saved.header("webhook-signature") {
        None => Outcome::Missing,
        Some(sigs) => match (
            saved.header("webhook-id"),
            saved.header("webhook-timestamp"),
            body,
        ) {
            (None, _, _) => Outcome::Invalid("missing webhook-id"),
            (_, None, _) => Outcome::Invalid("missing webhook-timestamp"),
            (_, _, Err(_)) => Outcome::Invalid("the body is not UTF-8, so hookrun did not sign it"),
            (Some(id), Some(ts), Ok(body)) => match ts.parse::<i64>() {
                Err(_) => Outcome::Invalid("malformed webhook-timestamp"),
                Ok(ts) => {
                    let want = expected(id, ts, body, "webhook-signature");
                    // One entry per valid secret; each is compared, so the
                    // time taken does not say which matched.
                    let ok = sigs
                        .split_whitespace()
                        .fold(false, |ok, s| ok | secrets_equal(s, &want));
                    if ok {
                        fresh(ts)
                    } else {
                        Outcome::Invalid("signature mismatch (wrong secret, or the body, id or timestamp was changed)")
                    }
                }
            },
        },
    };
    (crewship, standard)
}

pub fn run(args: Args, out: Output) -> Result<()> {
    let read = |p: &PathBuf, flag: &str| {
        std::fs::read(p)
            .map_err(|e| CliError::usage(format!("{flag}: cannot read {}: {e}", p.display())))
    };
    let saved = match (&args.request, &args.headers, &args.body) {
        (Some(r), _, _) => Saved::parse_request(&read(r, "--request")?)?,
        (None, Some(h), Some(b)) => Saved::parse_parts(&read(h, "--headers")?, read(b, "--body")?)?,
        _ => {
            return Err(CliError::usage(
                "give --request FILE, or --headers FILE and --body FILE",
            ))
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let secret = super::read_secret(&args.secret, "--secret")?;
    let (crewship, standard) = check(&saved, &secret, now, args.tolerance);
    let valid = crewship == Outcome::Valid || standard == Outcome::Valid;
    if out.json {
        let one = |o: &Outcome| json!({ "status": o.word(), "detail": o.detail(args.tolerance) });
        let report: Value = json!({
            "valid": valid,
            "x_crewship": one(&crewship),
            "standard_webhooks": one(&standard),
            "tolerance_seconds": args.tolerance.as_secs(),
        });
        crate::say!("{report}");
    } else {
        for (name, o) in [
            ("X-Crewship-Signature", &crewship),
            ("webhook-signature", &standard),
        ] {
            let detail = o.detail(args.tolerance);
            if detail.is_empty() {
                crate::say!("{name:<22} {}", o.word());
            } else {
                crate::say!("{name:<22} {:<8} {detail}", o.word());
            }
        }
    }
    if valid {
        Ok(())
    } else {
        Err(CliError::Negative("no valid signature".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn signed(ts: i64, body: &str) -> Vec<u8> {
        let mut raw = String::from("POST /hook HTTP/1.1\r\nhost: example\r\n");
        for (k, v) in signature_headers("dlv_1", "run.succeeded", ts, body, &[SECRET.to_owned()]) {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str(&format!("content-length: {}\r\n\r\n{body}\n", body.len()));
        raw.into_bytes()
    }

    fn tol() -> Duration {
        Duration::from_secs(300)
    }

    #[test]
    fn a_signed_request_verifies_both_ways() {
        let saved =
            Saved::parse_request(&signed(1000, r#"{"a":1}"#)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(saved.body, br#"{"a":1}"#, "cut to Content-Length");
        assert_eq!(
            check(&saved, SECRET, 1010, tol()),
            (Outcome::Valid, Outcome::Valid)
        );
    }

    #[test]
    fn wrong_secret_tampering_and_age_are_told_apart() {
        let saved =
            Saved::parse_request(&signed(1000, r#"{"a":1}"#)).unwrap_or_else(|e| panic!("{e}"));
        let other = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let (c, s) = check(&saved, other, 1000, tol());
        assert!(matches!(c, Outcome::Invalid(_)) && matches!(s, Outcome::Invalid(_)));
        let (c, s) = check(&saved, SECRET, 1000 + 301, tol());
        assert_eq!(c, Outcome::Stale { age_secs: 301 });
        assert_eq!(s, Outcome::Stale { age_secs: 301 });
        let mut tampered = saved;
        tampered.body = br#"{"a":2}"#.to_vec();
        let (c, s) = check(&tampered, SECRET, 1000, tol());
        assert!(matches!(c, Outcome::Invalid(_)) && matches!(s, Outcome::Invalid(_)));
    }

    #[test]
    fn missing_sets_and_parts() {
        let saved = Saved::parse_parts(b"Content-Type: application/json\n", b"{}".to_vec())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            check(&saved, SECRET, 0, tol()),
            (Outcome::Missing, Outcome::Missing)
        );
        let head = b"HTTP/1.1 200 OK\nwebhook-id: x\nwebhook-signature: v1,AAAA\n\n";
        let saved = Saved::parse_parts(head, b"{}".to_vec()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(saved.header("webhook-id"), Some("x"));
        assert_eq!(
            check(&saved, SECRET, 0, tol()).1,
            Outcome::Invalid("missing webhook-timestamp")
        );
    }

    #[test]
    fn bad_files_are_usage_errors() {
        for raw in [
            &b"not http at all\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nx: y\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 99\r\n\r\n{}",
        ] {
            let e = Saved::parse_request(raw).err().map(|e| e.exit_code());
            assert_eq!(
                e,
                Some(crate::client::exit::USAGE),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(parse_tolerance("5m").is_ok_and(|d| d.as_secs() == 300));
        assert!(parse_tolerance("300").is_ok_and(|d| d.as_secs() == 300));
        assert!(parse_tolerance("soon").is_err());
    }
}
