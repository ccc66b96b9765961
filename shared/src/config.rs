//! Every setting hookrun reads from its environment, read in one place.
//!
//! The Lambda functions call [`Settings::from_env`]; `hookrun serve` does
//! too and then lets its command-line flags override a few.

use std::time::Duration;

/// Service settings. Field docs name the environment variable.
#[derive(Clone)]
pub struct Settings {
    /// `HOOKRUN_MAX_BODY_BYTES`: largest trigger body (default 256 KiB).
    pub max_body_bytes: usize,
    /// `HOOKRUN_INTERNAL_TOKEN`: token for the internal routes; when unset
    /// those routes answer 404, as if not registered (seed 000).
    pub internal_token: Option<String>,
    /// `HOOKRUN_PUBLIC_URL`: base URL clients reach hookrun at, used to show
    /// webhook URLs (default: none, paths only).
    pub public_url: Option<String>,
    /// `HOOKRUN_RUN_RETENTION_DAYS`: how long runs and their logs are kept (default 30).
    pub run_retention_days: i64,
    /// `HOOKRUN_SECRET_GRACE_SECONDS`: how long a rotated agent secret stays
    /// valid when the rotation does not say (default 86400).
    pub default_secret_grace_seconds: i64,
    /// `HOOKRUN_EXECUTOR_CONCURRENCY`: runs executed at once by one process (default 4).
    pub executor_concurrency: usize,
    /// `HOOKRUN_MAX_OUTPUT_BYTES`: largest agent answer read (default 256 KiB).
    pub max_output_bytes: usize,
    /// `HOOKRUN_LEASE_GRACE_SECONDS`: a running run's lease outlasts its
    /// timeout by this much before another executor may take it over (default 30).
    pub lease_grace_seconds: u64,
    /// `HOOKRUN_MAX_RUN_ATTEMPTS`: executor starts of one run before it is
    /// failed as abandoned (default 3).
    pub max_run_attempts: u32,
    /// `HOOKRUN_OUTBOUND_ALLOW_HTTP` (true/false, default false) and
    /// `HOOKRUN_OUTBOUND_ALLOW_CIDRS` (comma-separated ranges that subscriber
    /// URLs may reach although private or loopback; default none).
    pub outbound: crate::outbound::OutboundPolicy,
    /// `HOOKRUN_DELIVERY_TIMEOUT_SECONDS`: how long a subscriber has to answer (default 30).
    pub delivery_timeout_seconds: u64,
    /// `HOOKRUN_DELIVERY_RETRY_SCHEDULE`: comma-separated waits in seconds
    /// after each failed delivery attempt (default Svix's
    /// `5,300,1800,7200,18000,36000,36000`).
    pub delivery_schedule: Vec<u64>,
    /// `HOOKRUN_RATE_LIMIT_PER_IP`: calls per minute from one source IP to
    /// one target, counted before authentication (default 30; 0 = no limit).
    pub rate_limit_per_ip: u32,
    /// `HOOKRUN_RATE_LIMIT_PER_TRIGGER`: calls per minute to one trigger or
    /// agent unless the trigger sets its own (default 100; 0 = no limit).
    pub rate_limit_per_trigger: u32,
    /// `HOOKRUN_RATE_LIMIT_PER_WORKSPACE`: calls per minute to one workspace (default 1000; 0 = no limit).
    pub rate_limit_per_workspace: u32,
    /// `HOOKRUN_INVOCATION_RETENTION_DAYS`: how long trigger invocation logs are kept (default 14).
    pub invocation_retention_days: i64,
    /// `HOOKRUN_SECRET_PREFIX`: first part of agent secret names,
    /// `{prefix}/{workspace}/agents/{agent}` (default `hookrun`; the SAM
    /// template sets `hookrun-{Stage}`).
    pub secret_prefix: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_body_bytes: 256 * 1024,
            internal_token: None,
            public_url: None,
            run_retention_days: 30,
            default_secret_grace_seconds: 24 * 3600,
            executor_concurrency: 4,
            max_output_bytes: 256 * 1024,
            lease_grace_seconds: 30,
            max_run_attempts: 3,
            outbound: crate::outbound::OutboundPolicy::default(),
            delivery_timeout_seconds: 30,
            delivery_schedule: crate::services::delivery::SCHEDULE_SECS.to_vec(),
            rate_limit_per_ip: 30,
            rate_limit_per_trigger: 100,
            rate_limit_per_workspace: 1000,
            invocation_retention_days: 14,
            secret_prefix: "hookrun".into(),
        }
    }
}

/// A setting that is present but unusable stops start-up with this.
#[derive(Debug, thiserror::Error)]
#[error("invalid value for {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds settings from any key lookup (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Settings::default();
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Ok(Settings {
            max_body_bytes: number(&get, "HOOKRUN_MAX_BODY_BYTES", d.max_body_bytes, 1)?,
            internal_token: non_empty("HOOKRUN_INTERNAL_TOKEN"),
            public_url: non_empty("HOOKRUN_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned()),
            run_retention_days: number(
                &get,
                "HOOKRUN_RUN_RETENTION_DAYS",
                d.run_retention_days,
                1,
            )?,
            default_secret_grace_seconds: number(
                &get,
                "HOOKRUN_SECRET_GRACE_SECONDS",
                d.default_secret_grace_seconds,
                0,
            )?,
            executor_concurrency: number(
                &get,
                "HOOKRUN_EXECUTOR_CONCURRENCY",
                d.executor_concurrency,
                1,
            )?,
            max_output_bytes: number(&get, "HOOKRUN_MAX_OUTPUT_BYTES", d.max_output_bytes, 1)?,
            lease_grace_seconds: number(
                &get,
                "HOOKRUN_LEASE_GRACE_SECONDS",
                d.lease_grace_seconds,
                0,
            )?,
            max_run_attempts: number(&get, "HOOKRUN_MAX_RUN_ATTEMPTS", d.max_run_attempts, 1)?,
            outbound: crate::outbound::OutboundPolicy {
                allow_http: boolean(&get, "HOOKRUN_OUTBOUND_ALLOW_HTTP", false)?,
                allow: crate::outbound::parse_allowlist(
                    &get("HOOKRUN_OUTBOUND_ALLOW_CIDRS").unwrap_or_default(),
                )
                .map_err(|reason| ConfigError {
                    name: "HOOKRUN_OUTBOUND_ALLOW_CIDRS",
                    reason,
                })?,
            },
            delivery_timeout_seconds: number(
                &get,
                "HOOKRUN_DELIVERY_TIMEOUT_SECONDS",
                d.delivery_timeout_seconds,
                1,
            )?,
            delivery_schedule: match get("HOOKRUN_DELIVERY_RETRY_SCHEDULE")
                .filter(|v| !v.trim().is_empty())
            {
                None => d.delivery_schedule,
                Some(raw) => raw
                    .split(',')
                    .map(|p| p.trim().parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| ConfigError {
                        name: "HOOKRUN_DELIVERY_RETRY_SCHEDULE",
                        reason: format!("{raw:?} is not a comma-separated list of seconds"),
                    })?,
            },
            rate_limit_per_ip: number(&get, "HOOKRUN_RATE_LIMIT_PER_IP", d.rate_limit_per_ip, 0)?,
            rate_limit_per_trigger: number(
                &get,
                "HOOKRUN_RATE_LIMIT_PER_TRIGGER",
                d.rate_limit_per_trigger,
                0,
            )?,
            rate_limit_per_workspace: number(
                &get,
                "HOOKRUN_RATE_LIMIT_PER_WORKSPACE",
                d.rate_limit_per_workspace,
                0,
            )?,
            invocation_retention_days: number(
                &get,
                "HOOKRUN_INVOCATION_RETENTION_DAYS",
                d.invocation_retention_days,
                1,
            )?,
            secret_prefix: non_empty("HOOKRUN_SECRET_PREFIX").unwrap_or(d.secret_prefix),
        })
    }

    pub fn lease_grace(&self) -> Duration {
        Duration::from_secs(self.lease_grace_seconds)
    }
}

fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: bool,
) -> Result<bool, ConfigError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => Err(ConfigError {
            name,
            reason: format!("{other:?} is not true or false"),
        }),
    }
}

fn number<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
    min: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match get(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => {
            let v: T = raw.trim().parse().map_err(|_| ConfigError {
                name,
                reason: format!("{raw:?} is not a number"),
            })?;
            if v < min {
                return Err(ConfigError {
                    name,
                    reason: format!("must be at least {min}"),
                });
            }
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_and_overrides() {
        let s = Settings::from_lookup(lookup(&[])).unwrap();
        assert_eq!(s.max_body_bytes, 262_144);
        assert!(s.internal_token.is_none());
        let s = Settings::from_lookup(lookup(&[
            ("HOOKRUN_MAX_BODY_BYTES", "1024"),
            ("HOOKRUN_INTERNAL_TOKEN", "tok"),
            ("HOOKRUN_PUBLIC_URL", "https://hooks.example.com/"),
        ]))
        .unwrap();
        assert_eq!(s.max_body_bytes, 1024);
        assert_eq!(s.internal_token.as_deref(), Some("tok"));
        assert_eq!(s.public_url.as_deref(), Some("https://hooks.example.com"));
    }

    #[test]
    fn outbound_settings() {
        let s = Settings::from_lookup(lookup(&[
            ("HOOKRUN_OUTBOUND_ALLOW_HTTP", "true"),
            ("HOOKRUN_OUTBOUND_ALLOW_CIDRS", "127.0.0.0/8,::1"),
        ]))
        .unwrap();
        assert!(s.outbound.allow_http);
        assert_eq!(s.outbound.allow.len(), 2);
        let e = Settings::from_lookup(lookup(&[("HOOKRUN_OUTBOUND_ALLOW_HTTP", "maybe")]))
            .err()
            .unwrap();
        assert_eq!(e.name, "HOOKRUN_OUTBOUND_ALLOW_HTTP");
        let e = Settings::from_lookup(lookup(&[("HOOKRUN_OUTBOUND_ALLOW_CIDRS", "10.0.0.0/33")]))
            .err()
            .unwrap();
        assert_eq!(e.name, "HOOKRUN_OUTBOUND_ALLOW_CIDRS");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Settings::from_lookup(lookup(&[("HOOKRUN_MAX_BODY_BYTES", "lots")]))
            .err()
            .unwrap();
        assert_eq!(e.name, "HOOKRUN_MAX_BODY_BYTES");
        let e = Settings::from_lookup(lookup(&[("HOOKRUN_EXECUTOR_CONCURRENCY", "0")]))
            .err()
            .unwrap();
        assert!(e.to_string().contains("at least 1"), "{e}");
    }
}

/// Where the AWS backend's resources are (set by the SAM template on every
/// function, or by `hookrun serve --backend aws`).
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// `HOOKRUN_TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    pub queue_urls: QueueUrls,
    /// `HOOKRUN_SECRET_CACHE_SECONDS`: how long a secret read is cached in
    /// process (default 30).
    pub secret_cache_seconds: u64,
    /// `HOOKRUN_MASTER_KEY_SECRET`: name or ARN of the master-key secret
    /// (needed by the functions that seal or open trigger and subscription
    /// secrets).
    pub master_key_secret: Option<String>,
}

/// Queue URLs; a function only needs the queues it uses.
#[derive(Clone, Debug, Default)]
pub struct QueueUrls {
    /// `HOOKRUN_RUNS_QUEUE_URL`
    pub runs: Option<String>,
    /// `HOOKRUN_RUNS_DLQ_URL`
    pub runs_dlq: Option<String>,
    /// `HOOKRUN_DELIVERIES_QUEUE_URL`
    pub deliveries: Option<String>,
    /// `HOOKRUN_DELIVERIES_DLQ_URL`
    pub deliveries_dlq: Option<String>,
}

impl AwsSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let non_empty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        Ok(AwsSettings {
            table_name: non_empty("HOOKRUN_TABLE_NAME").ok_or(ConfigError {
                name: "HOOKRUN_TABLE_NAME",
                reason: "required for the AWS backend".into(),
            })?,
            queue_urls: QueueUrls {
                runs: non_empty("HOOKRUN_RUNS_QUEUE_URL"),
                runs_dlq: non_empty("HOOKRUN_RUNS_DLQ_URL"),
                deliveries: non_empty("HOOKRUN_DELIVERIES_QUEUE_URL"),
                deliveries_dlq: non_empty("HOOKRUN_DELIVERIES_DLQ_URL"),
            },
            secret_cache_seconds: number(&get, "HOOKRUN_SECRET_CACHE_SECONDS", 30, 0)?,
            master_key_secret: non_empty("HOOKRUN_MASTER_KEY_SECRET"),
        })
    }
}
