//! `hookrun runs …`: an agent's runs and one run.

use clap::Subcommand;

use serde_json::{json, Value};

use super::{list, Ctx, Paging};
use crate::client::Result;
use crate::col;
use crate::output::{cell, Column};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// An agent's runs, newest first.
    List {
        /// Only this agent's runs (else the whole workspace's).
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agent_id: Option<String>,
        /// Only runs in this state (repeat for several).
        #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "cancelled"])]
        status: Vec<String>,
        /// Only runs made this way.
        #[arg(long, value_parser = ["WEBHOOK", "TOKEN", "SCHEDULE", "API", "TEST"], ignore_case = true)]
        trigger_type: Option<String>,
        /// Only runs this trigger started.
        #[arg(long = "trigger", value_name = "TRIGGER_ID")]
        trigger_id: Option<String>,
        /// Only runs this schedule's fires made.
        #[arg(long = "schedule", value_name = "SCHEDULE_ID")]
        schedule_id: Option<String>,
        /// Only runs with this concurrency key value.
        #[arg(long, value_name = "VALUE")]
        concurrency_key: Option<String>,
        /// Runs created since then: a duration back from now (2h, 3d) or an
        /// RFC 3339 time.
        #[arg(long, value_name = "WHEN", value_parser = parse_when)]
        since: Option<String>,
        /// Runs created before then (as --since).
        #[arg(long, value_name = "WHEN", value_parser = parse_when)]
        until: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// One run: status, input, output, error, times.
    Get { run_id: String },
    /// Cancel a queued or running run (a running run's agent call is
    /// stopped). A finished run cannot be cancelled.
    Cancel { run_id: String },
    /// Retry a finished run: a new run with the same input, through the
    /// agent's current configuration. Prints the new run.
    Retry { run_id: String },
    /// Retry an agent's finished runs that match (default: the failed
    /// ones), newest first, every page until none is left; a repeated call
    /// makes no retry twice. --dry-run counts them instead.
    Replay {
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agent_id: String,
        /// Runs in this state (repeat for several; default failed).
        #[arg(long, value_parser = ["succeeded", "failed", "cancelled"])]
        status: Vec<String>,
        /// Runs created since then: a duration back from now (2h, 3d) or an
        /// RFC 3339 time.
        #[arg(long, value_name = "WHEN", value_parser = parse_when)]
        since: Option<String>,
        /// Runs created before then (as --since).
        #[arg(long, value_name = "WHEN", value_parser = parse_when)]
        until: Option<String>,
        /// Runs this trigger started.
        #[arg(long = "trigger", value_name = "TRIGGER_ID")]
        trigger_id: Option<String>,
        /// Count and show the first matching runs; replay nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A time as the service takes it (RFC 3339): a duration back from now,
/// or a time as given.
fn parse_when(raw: &str) -> std::result::Result<String, String> {
    let raw = raw.trim();
    if humantime::parse_rfc3339_weak(raw).is_ok() {
        return Ok(raw.to_owned());
    }
    let back = humantime::parse_duration(raw)
        .map_err(|e| format!("{e}: give a duration back from now (2h, 3d) or an RFC 3339 time"))?;
    let at = std::time::SystemTime::now()
        .checked_sub(back)
        .ok_or_else(|| "too far back".to_owned())?;
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("agent_id", "/agent_id"),
        col!("status", "/status"),
        col!("trigger_type", "/trigger_type"),
        col!("created_at", "/created_at"),
        col!("duration_ms", "/duration_ms"),
        // Input/output tokens of a model run; empty for runs without usage.
        col!(
            "tokens",
            |v| match v.get("usage").filter(|u| u.is_object()) {
                Some(u) => format!(
                    "{}/{}",
                    cell(u.get("input_tokens")),
                    cell(u.get("output_tokens"))
                ),
                None => String::new(),
            }
        ),
        col!("error", "/error"),
    ]
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    match cmd {
        Command::List {
            agent_id,
            status,
            trigger_type,
            trigger_id,
            schedule_id,
            concurrency_key,
            since,
            until,
            paging,
        } => {
            let mut q = Vec::new();
            if !status.is_empty() {
                q.push(("status", status.join(",")));
            }
            if let Some(t) = trigger_type {
                q.push(("trigger_type", t.to_ascii_uppercase()));
            }
            let named = [
                ("agent_id", agent_id),
                ("trigger_id", trigger_id),
                ("schedule_id", schedule_id),
                ("concurrency_key", concurrency_key),
                ("created_after", since),
                ("created_before", until),
            ];
            q.extend(named.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
            let (raw, listing) = list(ctx, &["api", "v1", "runs"], &q, &paging).await?;
            ctx.out.listing(raw.as_deref(), &listing, &columns());
        }
        Command::Get { run_id } => {
            let ans = ctx.client.get(&["api", "v1", "runs", &run_id], &[]).await?;
            ctx.out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Cancel { run_id } => {
            let ans = ctx
                .client
                .post(&["api", "v1", "runs", &run_id, "cancel"], None)
                .await?;
            ctx.out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Retry { run_id } => {
            let ans = ctx
                .client
                .post(&["api", "v1", "runs", &run_id, "retry"], None)
                .await?;
            ctx.out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Replay {
            agent_id,
            status,
            since,
            until,
            trigger_id,
            dry_run,
        } => {
            let mut req = json!({"agent_id": agent_id, "dry_run": dry_run});
            if !status.is_empty() {
                req["status"] = json!(status);
            }
            for (field, value) in [
                ("created_after", since),
                ("created_before", until),
                ("trigger_id", trigger_id),
            ] {
                if let Some(v) = value {
                    req[field] = json!(v);
                }
            }
            let path = ["api", "v1", "runs", "replay"];
            if dry_run {
                let ans = ctx.client.post(&path, Some(&req)).await?;
                ctx.out.object(Some(&ans.raw), &ans.json, &[]);
                return Ok(());
            }
            // Every page, until the service says none is left.
            let mut retries = Vec::new();
            loop {
                let ans = ctx.client.post(&path, Some(&req)).await?;
                if let Some(page) = ans.json.get("retries").and_then(Value::as_array) {
                    retries.extend(page.iter().cloned());
                }
                match ans.json.get("next_cursor").and_then(Value::as_str) {
                    Some(c) => req["cursor"] = json!(c),
                    None => break,
                }
            }
            let created = retries.iter().filter(|r| r["created"] == true).count();
            if ctx.out.json {
                let all = json!({"count": retries.len(), "created": created, "retries": retries});
                ctx.out.print_json(None, &all);
            } else {
                let listing = json!({"data": retries});
                ctx.out.listing(
                    None,
                    &listing,
                    &[
                        col!("retry_of", "/retry_of"),
                        col!("run_id", "/run_id"),
                        col!("created", "/created"),
                    ],
                );
                eprintln!(
                    "{} runs replayed ({created} new, {} made by an earlier call)",
                    retries.len(),
                    retries.len() - created
                );
            }
        }
    }
    Ok(())
}
