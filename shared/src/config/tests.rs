//! The configuration's bounds, defaults and documentation.

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
    assert_eq!(s.run_retention, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(s.delivery_schedule.len(), 7);
    assert_eq!(s.delivery_schedule[0], Duration::from_secs(5));
    let s = Settings::from_lookup(lookup(&[
        ("HOOKRUN_MAX_BODY_BYTES", "1024"),
        ("HOOKRUN_INTERNAL_TOKEN", "tok"),
        ("HOOKRUN_PUBLIC_URL", "https://hooks.example.com/"),
        ("HOOKRUN_LEASE_SECONDS", "10"),
    ]))
    .unwrap();
    assert_eq!(s.max_body_bytes, 1024);
    assert_eq!(s.internal_token.as_deref(), Some("tok"));
    assert_eq!(s.public_url.as_deref(), Some("https://hooks.example.com"));
    assert_eq!(s.lease, Duration::from_secs(10));
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
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_OUTBOUND_ALLOW_HTTP", "maybe")])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_OUTBOUND_ALLOW_HTTP");
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_OUTBOUND_ALLOW_CIDRS", "10.0.0.0/33")]))
        .unwrap_err();
    assert_eq!(e.name, "HOOKRUN_OUTBOUND_ALLOW_CIDRS");
}

#[test]
fn bad_values_name_the_variable_and_the_range() {
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_MAX_BODY_BYTES", "lots")])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_MAX_BODY_BYTES");
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_EXECUTOR_CONCURRENCY", "0")])).unwrap_err();
    assert!(e.to_string().contains("outside 1 to 1024"), "{e}");
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_MAX_BODY_BYTES", "999999999")])).unwrap_err();
    assert!(e.to_string().contains("1 to 262144 bytes"), "{e}");
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_RUN_RETENTION_DAYS", "-1")])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_RUN_RETENTION_DAYS");
    let e = Settings::from_lookup(lookup(&[(
        "HOOKRUN_DELIVERY_RETRY_SCHEDULE",
        "5,99999999999",
    )]))
    .unwrap_err();
    assert!(e.to_string().contains("0 to 86400"), "{e}");
    let e = Settings::from_lookup(lookup(&[("HOOKRUN_SECRET_PREFIX", "a b")])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_SECRET_PREFIX");
}

#[test]
fn every_declared_default_parses_and_every_number_has_sane_bounds() {
    for var in vars::ALL {
        if let vars::Kind::Number { min, max, .. } = var.kind {
            assert!(min <= max, "{}", var.name);
            let d: u64 = var.default.parse().unwrap();
            assert!((min..=max).contains(&d), "{} default", var.name);
            // The largest value of a day count still fits a Duration.
            let _ = Duration::from_secs(max * 24 * 3600);
        }
    }
    let names: std::collections::HashSet<_> = vars::ALL.iter().map(|v| v.name).collect();
    assert_eq!(names.len(), vars::ALL.len(), "each variable once");
}

#[test]
fn settings_read_only_declared_variables() {
    let read = std::sync::Mutex::new(Vec::new());
    let spy = |k: &str| {
        read.lock().unwrap().push(k.to_owned());
        None
    };
    Settings::from_lookup(spy).unwrap();
    let _ = AwsSettings::from_lookup(spy);
    ServeSettings::from_lookup(spy).unwrap();
    for name in read.lock().unwrap().iter() {
        assert!(
            vars::ALL.iter().any(|v| v.name == name),
            "{name} is read but not declared"
        );
    }
}

#[test]
fn serve_settings() {
    let s = ServeSettings::from_lookup(lookup(&[])).unwrap();
    assert_eq!(s.addr, "127.0.0.1:8080");
    assert_eq!(s.backend, Backend::Sqlite);
    assert_eq!(s.drain, Duration::from_secs(30));
    let e = ServeSettings::from_lookup(lookup(&[("HOOKRUN_BACKEND", "mysql")])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_BACKEND");
    let e = ServeSettings::from_lookup(lookup(&[("HOOKRUN_DRAIN_SECONDS", "86400")])).unwrap_err();
    assert!(e.to_string().contains("0 to 3600 seconds"), "{e}");
    assert!(vars::help_text(&["serve"]).contains("HOOKRUN_DATA_DIR"));
}

/// The README's table of variables is the declared list, so neither
/// can drift from the other. On failure, paste the printed table.
#[test]
fn the_readme_lists_every_variable() {
    let readme = include_str!("../../../README.md");
    let table = vars::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's configuration table differs from config/vars.rs (./infra/readme-config-table.sh rewrites it); it should read:\n{table}"
    );
}

#[test]
fn aws_settings_need_a_table() {
    let e = AwsSettings::from_lookup(lookup(&[])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_TABLE_NAME");
    let a = AwsSettings::from_lookup(lookup(&[("HOOKRUN_TABLE_NAME", "t")])).unwrap();
    assert_eq!(a.secret_cache, Duration::from_secs(5));
}

#[test]
fn the_eventbridge_scheduler_settings_come_together_or_not_at_all() {
    let a = AwsSettings::from_lookup(lookup(&[("HOOKRUN_TABLE_NAME", "t")])).unwrap();
    assert_eq!(a.scheduler, None);
    let all = [
        ("HOOKRUN_TABLE_NAME", "t"),
        ("HOOKRUN_SCHEDULE_GROUP", "hookrun-prod"),
        ("HOOKRUN_SCHEDULER_ROLE_ARN", "arn:aws:iam::1:role/s"),
        ("HOOKRUN_RUNS_QUEUE_ARN", "arn:aws:sqs:us-east-1:1:runs"),
    ];
    let a = AwsSettings::from_lookup(lookup(&all)).unwrap();
    assert_eq!(a.scheduler.unwrap().group, "hookrun-prod");
    let e = AwsSettings::from_lookup(lookup(&all[..2])).unwrap_err();
    assert_eq!(e.name, "HOOKRUN_SCHEDULE_GROUP");
    assert!(e.reason.contains("together"), "{}", e.reason);
}
