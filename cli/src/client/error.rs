//! What can go wrong in a client command, and the exit code each maps to.
//! The codes are a contract with scripts (README "Command-line client",
//! `hookrun --help`), so they live in one place.

/// Exit codes of the client commands.
pub mod exit {
    /// The command did what it was asked.
    pub const OK: u8 = 0;
    /// The service refused the request (a 4xx other than 404 and 429), a
    /// signature did not verify, or a followed run failed.
    pub const REFUSED: u8 = 1;
    /// The command line or a file it names is wrong (clap uses 2 too).
    pub const USAGE: u8 = 2;
    /// The service could not be reached, timed out, failed (5xx) or is
    /// rate limiting (429): retrying later may help.
    pub const UNAVAILABLE: u8 = 3;
    /// The resource does not exist (404).
    pub const NOT_FOUND: u8 = 4;
}

/// The help text that documents the exit codes (`hookrun --help`).
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the service refused the request (4xx other than 404 and 429), a
     signature did not verify (verify), or the followed run failed
     (logs --follow --run)
  2  usage error: bad flags, an unreadable file, malformed JSON given
  3  the service could not be reached, timed out, answered 5xx, rate
     limited the call (429), or what answered is not hookrun
  4  not found (404)";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong input detected before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// No answer at all: refused connection, DNS, TLS, timeout.
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    /// The service answered with an error; `code` and `message` are the
    /// API's own (`{"error":{"code","message"}}`).
    #[error(
        "{status} {}: {}",
        crate::output::printable(code),
        crate::output::printable(message)
    )]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    /// Something other than hookrun answered (a `--server` that points at
    /// another server, most likely): a redirect, a 2xx that is not JSON, a
    /// 4xx without the API's error body.
    #[error(
        "the answer from {url} is not hookrun's ({detail}); is --server (HOOKRUN_URL) the hookrun service's address?"
    )]
    NotHookrun { url: String, detail: String },
    /// The service answered JSON that is not what the API documents.
    #[error("unexpected answer from the service: {0}")]
    BadAnswer(String),
    /// The check the command made came out negative (a signature that does
    /// not verify, a run that failed); the details were printed already.
    #[error("{0}")]
    Negative(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Unreachable { .. } => exit::UNAVAILABLE,
            CliError::Api { status: 404, .. } => exit::NOT_FOUND,
            // Rate limited: retrying later helps, as with a 5xx.
            CliError::Api { status, .. } if *status >= 500 || *status == 429 => exit::UNAVAILABLE,
            CliError::Api { .. } => exit::REFUSED,
            CliError::NotHookrun { .. } | CliError::BadAnswer(_) => exit::UNAVAILABLE,
            CliError::Negative(_) => exit::REFUSED,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        CliError::Usage(msg.into())
    }
}

pub type Result<T, E = CliError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> CliError {
        CliError::Api {
            status,
            code: "c".into(),
            message: "m".into(),
        }
    }

    #[test]
    fn statuses_map_to_documented_codes() {
        assert_eq!(api(400).exit_code(), 1);
        assert_eq!(api(401).exit_code(), 1);
        assert_eq!(api(409).exit_code(), 1);
        assert_eq!(api(404).exit_code(), 4);
        assert_eq!(api(500).exit_code(), 3);
        assert_eq!(api(503).exit_code(), 3);
        assert_eq!(api(429).exit_code(), 3);
        assert_eq!(CliError::usage("x").exit_code(), 2);
        assert_eq!(
            CliError::Unreachable {
                url: "u".into(),
                detail: "d".into()
            }
            .exit_code(),
            3
        );
    }
}
