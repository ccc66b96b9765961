//! Over 400 lines because it is a table: one declaration per variable,
//! kept in one file so the whole list reads in one place.
//!
//! The environment variables hookrun reads, each described once: its
//! name, default, bounds, unit and meaning. Parsing takes the default and
//! the bounds from here, and `--help` and the README's table are written
//! from the same list, so the three cannot disagree.

use std::time::Duration;

/// The unit of a numeric variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Seconds,
    Days,
}

/// How a variable's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer within `min..=max` (inclusive), in `unit`.
    Number { min: u64, max: u64, unit: Unit },
    /// `true`/`false` (also 1/0, yes/no, on/off).
    Flag,
    /// Free text; empty counts as unset.
    Text,
    /// Text that is never printed (tokens, keys).
    Secret,
}

/// One environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// The value used when the variable is unset or empty ("" for none).
    pub default: &'static str,
    pub kind: Kind,
    /// Who reads it: `all` (every function and `hookrun serve`), `aws`
    /// (the AWS backend), `serve` (`hookrun serve`), `cli` (other commands).
    pub scope: &'static str,
    pub help: &'static str,
}

/// A setting that is present but unusable stops start-up with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

const fn number(
    name: &'static str,
    default: &'static str,
    min: u64,
    max: u64,
    unit: Unit,
    help: &'static str,
) -> Var {
    Var {
        name,
        default,
        kind: Kind::Number { min, max, unit },
        scope: "all",
        help,
    }
}

impl Var {
    /// The variable is read by `hookrun serve` only.
    const fn in_serve(self) -> Var {
        Var {
            scope: "serve",
            ..self
        }
    }
}

const fn text(
    name: &'static str,
    default: &'static str,
    scope: &'static str,
    help: &'static str,
) -> Var {
    Var {
        name,
        default,
        kind: Kind::Text,
        scope,
        help,
    }
}

const DAY: u64 = 24 * 3600;

pub const MAX_BODY_BYTES: Var = number(
    "HOOKRUN_MAX_BODY_BYTES",
    "262144",
    1,
    256 * 1024,
    Unit::Bytes,
    "largest trigger body; larger ones get 413 (a run item must fit DynamoDB's 400 KB)",
);
pub const INTERNAL_TOKEN: Var = Var {
    name: "HOOKRUN_INTERNAL_TOKEN",
    default: "",
    kind: Kind::Secret,
    scope: "all",
    help: "token of the internal routes (X-Internal-Token); unset, they answer 404",
};
pub const PUBLIC_URL: Var = text(
    "HOOKRUN_PUBLIC_URL",
    "",
    "all",
    "base URL clients reach hookrun at, used to show webhook URLs (hookrun serve: its own address)",
);
pub const PLAINTEXT_SECRET_UNTIL: Var = text(
    "HOOKRUN_PLAINTEXT_SECRET_UNTIL",
    "2026-12-31T23:59:59Z",
    "all",
    "until when the per-agent route still takes its webhook secret in plain text (X-Webhook-Secret), an RFC 3339 time its Sunset header shows; after it only X-Signature is taken",
);
pub const RUN_RETENTION_DAYS: Var = number(
    "HOOKRUN_RUN_RETENTION_DAYS",
    "30",
    1,
    3650,
    Unit::Days,
    "how long runs, their logs and deliveries are kept",
);
pub const SECRET_GRACE_SECONDS: Var = number(
    "HOOKRUN_SECRET_GRACE_SECONDS",
    "86400",
    0,
    30 * DAY,
    Unit::Seconds,
    "how long a rotated agent secret keeps working when the rotation does not say",
);
pub const EXECUTOR_CONCURRENCY: Var = number(
    "HOOKRUN_EXECUTOR_CONCURRENCY",
    "16",
    1,
    1024,
    Unit::Count,
    "runs (and delivery attempts) one process works on at once",
);
pub const WORKSPACE_CONCURRENCY: Var = number(
    "HOOKRUN_WORKSPACE_CONCURRENCY",
    "8",
    1,
    1000,
    Unit::Count,
    "runs of one workspace executing at once, across every executor; the rest wait their turn, so one workspace cannot hold every executor",
);
pub const MAX_OUTPUT_BYTES: Var = number(
    "HOOKRUN_MAX_OUTPUT_BYTES",
    "262144",
    1,
    16 * 1024 * 1024,
    Unit::Bytes,
    "largest agent answer read; a run (input, message, output) is stored in at most 350 KiB, or fails saying so",
);
pub const LEASE_SECONDS: Var = number(
    "HOOKRUN_LEASE_SECONDS",
    "30",
    6,
    300,
    Unit::Seconds,
    "an executor's hold on a running run, renewed every third of it while the agent runs; a crashed executor's runs are taken over once it ends",
);
pub const MAX_RUN_ATTEMPTS: Var = number(
    "HOOKRUN_MAX_RUN_ATTEMPTS",
    "3",
    1,
    100,
    Unit::Count,
    "executor starts of one run before it is failed as abandoned",
);
pub const OUTBOUND_ALLOW_HTTP: Var = Var {
    name: "HOOKRUN_OUTBOUND_ALLOW_HTTP",
    default: "false",
    kind: Kind::Flag,
    scope: "all",
    help: "allow plain http:// agent and subscriber URLs",
};
pub const OUTBOUND_ALLOW_CIDRS: Var = text(
    "HOOKRUN_OUTBOUND_ALLOW_CIDRS",
    "",
    "all",
    "comma-separated ranges that agent and subscriber URLs may reach although private or loopback",
);
pub const OUTBOUND_PROXY: Var = text(
    "HOOKRUN_OUTBOUND_PROXY",
    "",
    "all",
    "the proxy agent and subscriber calls go through (http:// or https:// URL); unset, none is used, whatever HTTP_PROXY and HTTPS_PROXY say; destinations are checked before the call either way",
);
pub const DELIVERY_TIMEOUT_SECONDS: Var = number(
    "HOOKRUN_DELIVERY_TIMEOUT_SECONDS",
    "30",
    1,
    600,
    Unit::Seconds,
    "how long a subscriber has to answer a delivery",
);
pub const DELIVERY_RETRY_SCHEDULE: Var = text(
    "HOOKRUN_DELIVERY_RETRY_SCHEDULE",
    "5,300,1800,7200,18000,36000,36000",
    "all",
    "comma-separated waits in seconds after each failed delivery attempt (each 0 to 86400)",
);
pub const RATE_LIMIT_PER_IP: Var = number(
    "HOOKRUN_RATE_LIMIT_PER_IP",
    "30",
    0,
    1_000_000,
    Unit::Count,
    "trigger calls per minute from one source IP to one target, before authentication (0: none)",
);
pub const RATE_LIMIT_PER_TRIGGER: Var = number(
    "HOOKRUN_RATE_LIMIT_PER_TRIGGER",
    "100",
    0,
    1_000_000,
    Unit::Count,
    "calls per minute to one trigger or agent unless the trigger sets its own (0: none)",
);
pub const RATE_LIMIT_PER_WORKSPACE: Var = number(
    "HOOKRUN_RATE_LIMIT_PER_WORKSPACE",
    "1000",
    0,
    10_000_000,
    Unit::Count,
    "calls per minute to one workspace (0: none)",
);
pub const AUTH_FAILURES_PER_MINUTE: Var = number(
    "HOOKRUN_AUTH_FAILURES_PER_MINUTE",
    "20",
    0,
    100_000,
    Unit::Count,
    "failed admin-key, trigger-token and internal-token authentications one address (an IPv6 /64) may make in a minute; then its wrong credentials get 429, never a right one (0: no limit)",
);
pub const TARGET_CACHE_SECONDS: Var = number(
    "HOOKRUN_TARGET_CACHE_SECONDS",
    "5",
    0,
    5,
    Unit::Seconds,
    "how long a process keeps a trigger, token or agent it looked up for a trigger call: the longest a deletion, deactivation or new token takes to reach every instance",
);
pub const TRUSTED_PROXIES: Var = text(
    "HOOKRUN_TRUSTED_PROXIES",
    "",
    "serve",
    "comma-separated ranges of proxies in front of hookrun serve: only from them is the client address taken from X-Forwarded-For or Forwarded (the rightmost hop that is not a trusted proxy)",
);
pub const INVOCATION_RETENTION_DAYS: Var = number(
    "HOOKRUN_INVOCATION_RETENTION_DAYS",
    "14",
    1,
    365,
    Unit::Days,
    "how long trigger invocation logs are kept",
);
pub const SECRET_PREFIX: Var = text(
    "HOOKRUN_SECRET_PREFIX",
    "hookrun",
    "all",
    "first part of agent secret names, {prefix}/{workspace}/agents/{agent}",
);

pub const TABLE_NAME: Var = text(
    "HOOKRUN_TABLE_NAME",
    "",
    "aws",
    "the DynamoDB table (required)",
);
pub const RUNS_QUEUE_URL: Var = text("HOOKRUN_RUNS_QUEUE_URL", "", "aws", "the runs queue");
pub const RUNS_DLQ_URL: Var = text(
    "HOOKRUN_RUNS_DLQ_URL",
    "",
    "aws",
    "the runs dead-letter queue",
);
pub const DELIVERIES_QUEUE_URL: Var = text(
    "HOOKRUN_DELIVERIES_QUEUE_URL",
    "",
    "aws",
    "the deliveries queue",
);
pub const DELIVERIES_DLQ_URL: Var = text(
    "HOOKRUN_DELIVERIES_DLQ_URL",
    "",
    "aws",
    "the deliveries dead-letter queue",
);
pub const SECRET_CACHE_SECONDS: Var = Var {
    name: "HOOKRUN_SECRET_CACHE_SECONDS",
    default: "5",
    kind: Kind::Number {
        min: 0,
        max: 5,
        unit: Unit::Seconds,
    },
    scope: "aws",
    help: "how long an agent secret read from Secrets Manager is cached in the process: the longest a rotation takes to reach every instance",
};
pub const MASTER_KEY_SECRET: Var = text(
    "HOOKRUN_MASTER_KEY_SECRET",
    "",
    "aws",
    "name or ARN of the master-key secret that seals trigger and subscription secrets",
);
pub const SCHEDULE_GROUP: Var = text(
    "HOOKRUN_SCHEDULE_GROUP",
    "",
    "aws",
    "the EventBridge Scheduler schedule group each hookrun schedule is kept in (with HOOKRUN_SCHEDULER_ROLE_ARN and HOOKRUN_RUNS_QUEUE_ARN); unset, schedules fire only from hookrun serve",
);
pub const SCHEDULER_ROLE_ARN: Var = text(
    "HOOKRUN_SCHEDULER_ROLE_ARN",
    "",
    "aws",
    "the role EventBridge Scheduler assumes to send a fire to the runs queue",
);
pub const RUNS_QUEUE_ARN: Var = text(
    "HOOKRUN_RUNS_QUEUE_ARN",
    "",
    "aws",
    "the runs queue's ARN: where EventBridge Scheduler sends fires",
);
pub const WEBSOCKET_CALLBACK_URL: Var = text(
    "HOOKRUN_WEBSOCKET_CALLBACK_URL",
    "",
    "aws",
    "the API Gateway WebSocket API's connection URL (https://{api}.execute-api.{region}.amazonaws.com/{stage}): where the executor posts run events; unset, nothing is posted",
);

pub const ADDR: Var = text(
    "HOOKRUN_ADDR",
    "127.0.0.1:8080",
    "serve",
    "address to listen on (--addr)",
);
pub const BACKEND: Var = text(
    "HOOKRUN_BACKEND",
    "sqlite",
    "serve",
    "sqlite (embedded store in the data directory) or aws (--backend)",
);
pub const DATA_DIR: Var = text(
    "HOOKRUN_DATA_DIR",
    "./hookrun-data",
    "serve",
    "where the SQLite database and (by default) the master key live; created readable by the service user only (--data-dir)",
);
pub const MASTER_KEY_FILE: Var = text(
    "HOOKRUN_MASTER_KEY_FILE",
    "",
    "serve",
    "sqlite backend: the master key's file (default master.key in the data directory); keep it apart from database backups",
);
pub const AWS_PROVISION: Var = text(
    "HOOKRUN_AWS_PROVISION",
    "",
    "serve",
    "aws backend: create (if missing) and use a table and queues named after this prefix (--provision)",
);
pub const LOG_FORMAT: Var = text(
    "HOOKRUN_LOG_FORMAT",
    "text",
    "serve",
    "text or json log lines on standard error (--log-format)",
);
pub const LOG: Var = text(
    "HOOKRUN_LOG",
    "info",
    "serve",
    "log filter, e.g. debug or hookrun_core=debug,info",
);
pub const DRAIN_SECONDS: Var = number(
    "HOOKRUN_DRAIN_SECONDS",
    "30",
    0,
    3600,
    Unit::Seconds,
    "how long a stop waits for work in progress (--drain-seconds)",
)
.in_serve();
pub const MAX_CONNECTIONS: Var = number(
    "HOOKRUN_MAX_CONNECTIONS",
    "512",
    1,
    100_000,
    Unit::Count,
    "connections served at once; more wait to be accepted (keep it below the process's file-descriptor limit)",
)
.in_serve();
pub const MAX_CONNECTIONS_PER_ADDRESS: Var = number(
    "HOOKRUN_MAX_CONNECTIONS_PER_ADDRESS",
    "64",
    1,
    100_000,
    Unit::Count,
    "connections one client address (an IPv6 /64) may hold at once; more are closed as they come (a trusted proxy's own address is not capped)",
)
.in_serve();
pub const MAX_STREAMS: Var = number(
    "HOOKRUN_MAX_STREAMS",
    "256",
    1,
    100_000,
    Unit::Count,
    "event streams (SSE and WebSocket, a WebSocket from its upgrade) open at once, apart from HOOKRUN_MAX_CONNECTIONS; more get 429 (SSE) or close 4029 (WebSocket)",
)
.in_serve();
pub const MAX_STREAMS_PER_WORKSPACE: Var = number(
    "HOOKRUN_MAX_STREAMS_PER_WORKSPACE",
    "64",
    1,
    100_000,
    Unit::Count,
    "event streams one workspace may have open at once",
)
.in_serve();
pub const MAX_STREAMS_PER_KEY: Var = number(
    "HOOKRUN_MAX_STREAMS_PER_KEY",
    "16",
    1,
    100_000,
    Unit::Count,
    "event streams one admin key may have open at once",
)
.in_serve();
pub const STREAM_SEND_TIMEOUT_SECONDS: Var = number(
    "HOOKRUN_STREAM_SEND_TIMEOUT_SECONDS",
    "10",
    1,
    300,
    Unit::Seconds,
    "time a WebSocket client may take to take one frame before it is closed with 4008 (too slow)",
)
.in_serve();
pub const HTTP2: Var = Var {
    name: "HOOKRUN_HTTP2",
    default: "false",
    kind: Kind::Flag,
    scope: "serve",
    help: "also accept cleartext HTTP/2 (prior knowledge), with pings every 20 s answered within the header-read time and at most 32 streams a connection; off, such a connection is refused as a bad HTTP/1.1 request",
};
pub const HEADER_READ_TIMEOUT_SECONDS: Var = number(
    "HOOKRUN_HEADER_READ_TIMEOUT_SECONDS",
    "10",
    1,
    600,
    Unit::Seconds,
    "time a client has to send a request's headers; slower connections are closed",
)
.in_serve();
pub const IDLE_TIMEOUT_SECONDS: Var = number(
    "HOOKRUN_IDLE_TIMEOUT_SECONDS",
    "60",
    1,
    3600,
    Unit::Seconds,
    "time a new connection may stay open before its first request",
)
.in_serve();
pub const BODY_READ_TIMEOUT_SECONDS: Var = number(
    "HOOKRUN_BODY_READ_TIMEOUT_SECONDS",
    "30",
    1,
    3600,
    Unit::Seconds,
    "time a client has to send a request's body",
)
.in_serve();
pub const BOOTSTRAP_ADMIN_KEY: Var = Var {
    name: "HOOKRUN_BOOTSTRAP_ADMIN_KEY",
    default: "",
    kind: Kind::Secret,
    scope: "serve",
    help: "the first admin key of a new store (at least 32 characters); unset, one is generated and printed once",
};
pub const WEBHOOK_SECRET: Var = Var {
    name: "HOOKRUN_WEBHOOK_SECRET",
    default: "",
    kind: Kind::Secret,
    scope: "cli",
    help: "hookrun sign: the agent's webhook secret (--secret)",
};
pub const TRIGGER_SECRET: Var = Var {
    name: "HOOKRUN_TRIGGER_SECRET",
    default: "",
    kind: Kind::Secret,
    scope: "cli",
    help: "hookrun trigger: the secret to sign with, the trigger's signing secret or the agent's webhook secret (--secret)",
};
pub const WS_URL: Var = Var {
    name: "HOOKRUN_WS_URL",
    default: "",
    kind: Kind::Text,
    scope: "cli",
    help: "hookrun listen: the real-time channel's URL (--ws-url); on AWS the stack's WebSocketUrl output, by default /api/v1/ws under --server",
};

/// Every variable, in the order `--help` and the README list them.
pub const ALL: &[Var] = &[
    ADDR,
    BACKEND,
    DATA_DIR,
    MASTER_KEY_FILE,
    AWS_PROVISION,
    LOG_FORMAT,
    LOG,
    DRAIN_SECONDS,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_ADDRESS,
    MAX_STREAMS,
    MAX_STREAMS_PER_WORKSPACE,
    MAX_STREAMS_PER_KEY,
    STREAM_SEND_TIMEOUT_SECONDS,
    HTTP2,
    HEADER_READ_TIMEOUT_SECONDS,
    IDLE_TIMEOUT_SECONDS,
    BODY_READ_TIMEOUT_SECONDS,
    BOOTSTRAP_ADMIN_KEY,
    PUBLIC_URL,
    INTERNAL_TOKEN,
    MAX_BODY_BYTES,
    MAX_OUTPUT_BYTES,
    RUN_RETENTION_DAYS,
    INVOCATION_RETENTION_DAYS,
    SECRET_GRACE_SECONDS,
    PLAINTEXT_SECRET_UNTIL,
    SECRET_PREFIX,
    EXECUTOR_CONCURRENCY,
    LEASE_SECONDS,
    WORKSPACE_CONCURRENCY,
    MAX_RUN_ATTEMPTS,
    RATE_LIMIT_PER_IP,
    RATE_LIMIT_PER_TRIGGER,
    RATE_LIMIT_PER_WORKSPACE,
    AUTH_FAILURES_PER_MINUTE,
    TARGET_CACHE_SECONDS,
    TRUSTED_PROXIES,
    OUTBOUND_ALLOW_HTTP,
    OUTBOUND_ALLOW_CIDRS,
    OUTBOUND_PROXY,
    DELIVERY_TIMEOUT_SECONDS,
    DELIVERY_RETRY_SCHEDULE,
    TABLE_NAME,
    RUNS_QUEUE_URL,
    RUNS_DLQ_URL,
    DELIVERIES_QUEUE_URL,
    DELIVERIES_DLQ_URL,
    MASTER_KEY_SECRET,
    WEBSOCKET_CALLBACK_URL,
    SCHEDULE_GROUP,
    SCHEDULER_ROLE_ARN,
    RUNS_QUEUE_ARN,
    SECRET_CACHE_SECONDS,
    WEBHOOK_SECRET,
    TRIGGER_SECRET,
    WS_URL,
];

impl Var {
    /// `v` if it is within this number variable's bounds (a command-line
    /// flag that overrides the variable is held to them too).
    pub fn check(&self, v: u64) -> Result<u64, ConfigError> {
        let Kind::Number { min, max, unit } = self.kind else {
            unreachable!("{} is declared as a number", self.name)
        };
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(ConfigError {
                name: self.name,
                reason: format!("{v} is outside {min} to {max} {}", unit_name(unit)),
            })
        }
    }
}

/// Reads variables from a lookup (the environment, or a map in tests),
/// with the defaults and bounds of their [`Var`].
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value, or the default; empty (or blank) counts as unset.
    pub fn raw(&self, var: &Var) -> String {
        (self.0)(var.name)
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| var.default.to_owned())
    }

    /// The value when set and not empty; the default otherwise, `None` if
    /// that is empty too.
    pub fn text(&self, var: &Var) -> Option<String> {
        Some(self.raw(var)).filter(|v| !v.trim().is_empty())
    }

    pub fn flag(&self, var: &Var) -> Result<bool, ConfigError> {
        match self.raw(var).trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            other => Err(ConfigError {
                name: var.name,
                reason: format!("{other:?} is not true or false"),
            }),
        }
    }

    /// A number within the variable's bounds.
    pub fn number(&self, var: &Var) -> Result<u64, ConfigError> {
        let raw = self.raw(var);
        let v: u64 = raw.trim().parse().map_err(|_| ConfigError {
            name: var.name,
            reason: format!("{raw:?} is not a whole number"),
        })?;
        var.check(v)
    }

    /// A number that fits `T` (the bounds are chosen so it always does).
    pub fn int<T: TryFrom<u64>>(&self, var: &Var) -> Result<T, ConfigError> {
        let v = self.number(var)?;
        T::try_from(v).map_err(|_| ConfigError {
            name: var.name,
            reason: format!("{v} is too large"),
        })
    }

    /// A duration: the number in the variable's unit.
    pub fn duration(&self, var: &Var) -> Result<Duration, ConfigError> {
        let v = self.number(var)?;
        Ok(match var.kind {
            Kind::Number {
                unit: Unit::Days, ..
            } => Duration::from_secs(v * 24 * 3600),
            _ => Duration::from_secs(v),
        })
    }
}

fn unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "",
        Unit::Bytes => "bytes",
        Unit::Seconds => "seconds",
        Unit::Days => "days",
    }
}

/// What `--help` and the README say of a variable's allowed values.
pub fn describe_values(var: &Var) -> String {
    match var.kind {
        Kind::Number { min, max, unit } => format!("{min} to {max} {}", unit_name(unit))
            .trim_end()
            .to_owned(),
        Kind::Flag => "true or false".into(),
        Kind::Text | Kind::Secret => String::new(),
    }
}

/// Every variable as the README's configuration table (a unit test keeps
/// the README's copy equal to this).
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | allowed | meaning |\n|---|---|---|---|\n");
    for var in ALL {
        let default = if var.default.is_empty() {
            "none".to_owned()
        } else {
            format!("`{}`", var.default)
        };
        let scope = match var.scope {
            "aws" => " (AWS backend)",
            "serve" => " (`hookrun serve`)",
            "cli" => "",
            _ => "",
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} | {}{scope} |\n",
            var.name,
            describe_values(var),
            var.help.replace('|', "\\|"),
        ));
    }
    out
}

/// The variables of these scopes as `--help` text.
pub fn help_text(scopes: &[&str]) -> String {
    let mut out = String::from("Environment variables:\n");
    for var in ALL.iter().filter(|v| scopes.contains(&v.scope)) {
        let mut line = format!("  {}", var.name);
        let values = describe_values(var);
        let default = if var.default.is_empty() {
            String::new()
        } else {
            format!("default {}", var.default)
        };
        let extra: Vec<&str> = [values.as_str(), default.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        line.push_str(&format!("\n      {}", var.help));
        if !extra.is_empty() {
            line.push_str(&format!(" [{}]", extra.join("; ")));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
