//! Every setting hookrun reads from its environment, read here and nowhere
//! else, validated at start: a value out of its bounds stops start-up with
//! an error naming the variable and the allowed range, so no setting can
//! panic the process later. The variables themselves (name, default,
//! bounds, unit, meaning) are listed once in [`vars`].
//!
//! The Lambda functions call [`Settings::from_env`] and
//! [`AwsSettings::from_env`]; `hookrun serve` adds [`ServeSettings`] and
//! lets its command-line flags override those.

pub mod vars;

use std::path::PathBuf;
use std::time::Duration;

pub use vars::ConfigError;
use vars::Env;

use crate::outbound::OutboundPolicy;

/// Service settings (see [`vars`] for each variable).
#[derive(Clone, Debug)]
pub struct Settings {
    pub max_body_bytes: usize,
    /// When unset, the internal routes answer 404, as if not registered.
    pub internal_token: Option<String>,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub run_retention: Duration,
    pub default_secret_grace: Duration,
    /// When the per-agent route stops taking `X-Webhook-Secret`.
    pub plaintext_secret_until: chrono::DateTime<chrono::Utc>,
    pub executor_concurrency: usize,
    pub workspace_concurrency: u32,
    pub max_output_bytes: usize,
    /// An executor's hold on a running run; renewed every third of it.
    pub lease: Duration,
    pub max_run_attempts: u32,
    pub outbound: OutboundPolicy,
    pub delivery_timeout: Duration,
    /// Waits after the 1st, 2nd, … failed delivery attempt.
    pub delivery_schedule: Vec<Duration>,
    /// Calls per minute; 0 means no limit.
    pub rate_limit_per_ip: u32,
    pub rate_limit_per_trigger: u32,
    pub rate_limit_per_workspace: u32,
    /// Failed authentications per address and minute before 429; 0: none.
    pub auth_failures_per_minute: u32,
    /// Peers whose forwarding headers name the client (`hookrun serve`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub invocation_retention: Duration,
    pub secret_prefix: String,
    /// How long a looked-up trigger target is reused (`HOOKRUN_TARGET_CACHE_SECONDS`).
    pub target_cache: Duration,
    /// How many event streams may be open at once (`hookrun serve`).
    pub streams: StreamLimits,
    /// Callers not limited per address (`HOOKRUN_RATE_LIMIT_PER_IP`): set
    /// by `hookrun serve --demo` to loopback, so a developer's own calls
    /// are never throttled as a stranger's would be; no variable sets it.
    pub ip_limit_exempt: Vec<ipnet::IpNet>,
}

/// The defaults of every variable.
impl Default for Settings {
    fn default() -> Self {
        Settings::from_lookup(|_| None).expect("the declared defaults are valid")
    }
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds settings from any key lookup (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        Ok(Settings {
            max_body_bytes: env.int(&vars::MAX_BODY_BYTES)?,
            internal_token: env.text(&vars::INTERNAL_TOKEN),
            public_url: env
                .text(&vars::PUBLIC_URL)
                .map(|u| u.trim_end_matches('/').to_owned()),
            run_retention: env.duration(&vars::RUN_RETENTION_DAYS)?,
            default_secret_grace: env.duration(&vars::SECRET_GRACE_SECONDS)?,
            plaintext_secret_until: parse_time(
                &vars::PLAINTEXT_SECRET_UNTIL,
                &env.raw(&vars::PLAINTEXT_SECRET_UNTIL),
            )?,
            executor_concurrency: env.int(&vars::EXECUTOR_CONCURRENCY)?,
            workspace_concurrency: env.int(&vars::WORKSPACE_CONCURRENCY)?,
            max_output_bytes: env.int(&vars::MAX_OUTPUT_BYTES)?,
            lease: env.duration(&vars::LEASE_SECONDS)?,
            max_run_attempts: env.int(&vars::MAX_RUN_ATTEMPTS)?,
            outbound: OutboundPolicy {
                allow_http: env.flag(&vars::OUTBOUND_ALLOW_HTTP)?,
                allow: crate::outbound::parse_allowlist(&env.raw(&vars::OUTBOUND_ALLOW_CIDRS))
                    .map_err(|reason| ConfigError {
                        name: vars::OUTBOUND_ALLOW_CIDRS.name,
                        reason,
                    })?,
                proxy: parse_proxy(env.text(&vars::OUTBOUND_PROXY))?,
            },
            delivery_timeout: env.duration(&vars::DELIVERY_TIMEOUT_SECONDS)?,
            delivery_schedule: parse_schedule(&env.raw(&vars::DELIVERY_RETRY_SCHEDULE))?,
            rate_limit_per_ip: env.int(&vars::RATE_LIMIT_PER_IP)?,
            rate_limit_per_trigger: env.int(&vars::RATE_LIMIT_PER_TRIGGER)?,
            rate_limit_per_workspace: env.int(&vars::RATE_LIMIT_PER_WORKSPACE)?,
            auth_failures_per_minute: env.int(&vars::AUTH_FAILURES_PER_MINUTE)?,
            trusted_proxies: crate::outbound::parse_allowlist(&env.raw(&vars::TRUSTED_PROXIES))
                .map_err(|reason| ConfigError {
                    name: vars::TRUSTED_PROXIES.name,
                    reason,
                })?,
            invocation_retention: env.duration(&vars::INVOCATION_RETENTION_DAYS)?,
            secret_prefix: parse_secret_prefix(&env.raw(&vars::SECRET_PREFIX))?,
            target_cache: env.duration(&vars::TARGET_CACHE_SECONDS)?,
            ip_limit_exempt: Vec::new(),
            streams: StreamLimits {
                total: env.int(&vars::MAX_STREAMS)?,
                per_workspace: env.int(&vars::MAX_STREAMS_PER_WORKSPACE)?,
                per_key: env.int(&vars::MAX_STREAMS_PER_KEY)?,
                send_timeout: env.duration(&vars::STREAM_SEND_TIMEOUT_SECONDS)?,
            },
        })
    }
}

/// Caps on the event streams (SSE, WebSocket) open at once, and how long
/// a WebSocket client may take to take a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    pub total: usize,
    pub per_workspace: usize,
    pub per_key: usize,
    pub send_timeout: std::time::Duration,
}

/// Loopback, both families: `hookrun serve`'s local-development flags
/// (`--allow-local-agents`, `--demo`) name it.
pub fn loopback() -> Vec<ipnet::IpNet> {
    ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| n.parse().expect("loopback ranges parse"))
        .collect()
}

/// Longest wait between two delivery attempts.
const MAX_SCHEDULE_STEP_SECS: u64 = 24 * 3600;
/// Most attempts a schedule may plan.
const MAX_SCHEDULE_STEPS: usize = 50;

fn parse_schedule(raw: &str) -> Result<Vec<Duration>, ConfigError> {
    let bad = |reason: String| ConfigError {
        name: vars::DELIVERY_RETRY_SCHEDULE.name,
        reason,
    };
    let steps = raw
        .split(',')
        .map(|p| p.trim().parse::<u64>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad(format!("{raw:?} is not a comma-separated list of seconds")))?;
    if steps.len() > MAX_SCHEDULE_STEPS {
        return Err(bad(format!("at most {MAX_SCHEDULE_STEPS} waits")));
    }
    if let Some(s) = steps.iter().find(|s| **s > MAX_SCHEDULE_STEP_SECS) {
        return Err(bad(format!(
            "{s} is outside 0 to {MAX_SCHEDULE_STEP_SECS} seconds"
        )));
    }
    Ok(steps.into_iter().map(Duration::from_secs).collect())
}

/// The outgoing proxy, an `http(s)://host:port` URL.
/// An RFC 3339 time (`2026-12-31T23:59:59Z`, any offset).
fn parse_time(var: &vars::Var, raw: &str) -> Result<chrono::DateTime<chrono::Utc>, ConfigError> {
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| ConfigError {
            name: var.name,
            reason: format!("{raw:?} is not an RFC 3339 time like 2026-12-31T23:59:59Z ({e})"),
        })
}

fn parse_proxy(raw: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(raw) = raw else { return Ok(None) };
    let bad = |reason: &str| ConfigError {
        name: vars::OUTBOUND_PROXY.name,
        reason: reason.into(),
    };
    let url = url::Url::parse(&raw).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(bad("must be an http:// or https:// URL with a host"));
    }
    reqwest::Proxy::all(raw.as_str()).map_err(|_| bad("not a usable proxy URL"))?;
    Ok(Some(raw))
}

/// Secrets Manager names allow letters, digits and `/_+=.@-`.
fn parse_secret_prefix(raw: &str) -> Result<String, ConfigError> {
    let ok = !raw.is_empty()
        && raw.len() <= 128
        && raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ConfigError {
            name: vars::SECRET_PREFIX.name,
            reason: "must be 1 to 128 letters, digits or /_+=.@-".into(),
        })
    }
}

/// Where the AWS backend's resources are (set by the SAM template on every
/// function, or by `hookrun serve --backend aws`).
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    pub table_name: String,
    pub queue_urls: QueueUrls,
    pub secret_cache: Duration,
    /// Needed by the functions that seal or open trigger and subscription
    /// secrets.
    pub master_key_secret: Option<String>,
    /// Where run events are posted to WebSocket clients (API Gateway's
    /// connection URL); None: not posted.
    pub websocket_callback_url: Option<String>,
    /// EventBridge Scheduler, when schedules fire from there.
    pub scheduler: Option<SchedulerSettings>,
}

/// Where EventBridge Scheduler keeps hookrun's schedules and sends their
/// fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchedulerSettings {
    pub group: String,
    pub role_arn: String,
    pub queue_arn: String,
}

/// Queue URLs; a function only needs the queues it uses.
#[derive(Clone, Debug, Default)]
pub struct QueueUrls {
    pub runs: Option<String>,
    pub runs_dlq: Option<String>,
    pub deliveries: Option<String>,
    pub deliveries_dlq: Option<String>,
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        Ok(AwsSettings {
            table_name: env.text(&vars::TABLE_NAME).ok_or(ConfigError {
                name: vars::TABLE_NAME.name,
                reason: "required for the AWS backend".into(),
            })?,
            queue_urls: QueueUrls {
                runs: env.text(&vars::RUNS_QUEUE_URL),
                runs_dlq: env.text(&vars::RUNS_DLQ_URL),
                deliveries: env.text(&vars::DELIVERIES_QUEUE_URL),
                deliveries_dlq: env.text(&vars::DELIVERIES_DLQ_URL),
            },
            secret_cache: env.duration(&vars::SECRET_CACHE_SECONDS)?,
            master_key_secret: env.text(&vars::MASTER_KEY_SECRET),
            websocket_callback_url: env.text(&vars::WEBSOCKET_CALLBACK_URL),
            scheduler: match (
                env.text(&vars::SCHEDULE_GROUP),
                env.text(&vars::SCHEDULER_ROLE_ARN),
                env.text(&vars::RUNS_QUEUE_ARN),
            ) {
                (None, None, None) => None,
                (Some(group), Some(role_arn), Some(queue_arn)) => Some(SchedulerSettings {
                    group,
                    role_arn,
                    queue_arn,
                }),
                _ => {
                    return Err(ConfigError {
                        name: vars::SCHEDULE_GROUP.name,
                        reason: "set HOOKRUN_SCHEDULE_GROUP, HOOKRUN_SCHEDULER_ROLE_ARN and \
                                 HOOKRUN_RUNS_QUEUE_ARN together, or none of them"
                            .into(),
                    })
                }
            },
        })
    }
}

/// Which store `hookrun` opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Aws,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What `hookrun serve` (and the commands that open a store) read besides
/// [`Settings`]. Command-line flags override these.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    pub addr: String,
    pub backend: Backend,
    pub data_dir: PathBuf,
    pub master_key_file: Option<PathBuf>,
    pub provision: Option<String>,
    pub log_format: LogFormat,
    pub log_filter: String,
    pub drain: Duration,
    pub bootstrap_admin_key: Option<String>,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// Cleartext HTTP/2 (prior knowledge) besides HTTP/1.1.
    pub http2: bool,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl ServeSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        Ok(ServeSettings {
            addr: env.raw(&vars::ADDR),
            backend: parse_backend(&env.raw(&vars::BACKEND))?,
            data_dir: PathBuf::from(env.raw(&vars::DATA_DIR)),
            master_key_file: env.text(&vars::MASTER_KEY_FILE).map(PathBuf::from),
            provision: env.text(&vars::AWS_PROVISION),
            log_format: parse_log_format(&env.raw(&vars::LOG_FORMAT))?,
            log_filter: env.raw(&vars::LOG),
            drain: env.duration(&vars::DRAIN_SECONDS)?,
            bootstrap_admin_key: env.text(&vars::BOOTSTRAP_ADMIN_KEY),
            max_connections: env.int(&vars::MAX_CONNECTIONS)?,
            max_connections_per_address: env.int(&vars::MAX_CONNECTIONS_PER_ADDRESS)?,
            http2: env.flag(&vars::HTTP2)?,
            header_read_timeout: env.duration(&vars::HEADER_READ_TIMEOUT_SECONDS)?,
            idle_timeout: env.duration(&vars::IDLE_TIMEOUT_SECONDS)?,
            body_read_timeout: env.duration(&vars::BODY_READ_TIMEOUT_SECONDS)?,
        })
    }
}

pub fn parse_backend(raw: &str) -> Result<Backend, ConfigError> {
    match raw.trim() {
        "sqlite" => Ok(Backend::Sqlite),
        "aws" => Ok(Backend::Aws),
        other => Err(ConfigError {
            name: vars::BACKEND.name,
            reason: format!("{other:?} is not sqlite or aws"),
        }),
    }
}

pub fn parse_log_format(raw: &str) -> Result<LogFormat, ConfigError> {
    match raw.trim() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError {
            name: vars::LOG_FORMAT.name,
            reason: format!("{other:?} is not text or json"),
        }),
    }
}

/// The agent webhook secret for `hookrun sign`, when set.
pub fn webhook_secret_from_env() -> Option<String> {
    Env(|k| std::env::var(k).ok()).text(&vars::WEBHOOK_SECRET)
}

/// The real-time channel's URL `hookrun listen` connects to, when set.
pub fn ws_url_from_env() -> Option<String> {
    Env(|k| std::env::var(k).ok()).text(&vars::WS_URL)
}

/// The secret `hookrun trigger` signs with, when set.
pub fn trigger_secret_from_env() -> Option<String> {
    Env(|k| std::env::var(k).ok()).text(&vars::TRIGGER_SECRET)
}

#[cfg(test)]
mod tests;
