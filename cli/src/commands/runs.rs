//! `hookrun runs …`: an agent's runs and one run.

use clap::Subcommand;

use super::{list, under, Ctx, Paging};
use crate::client::Result;
use crate::col;
use crate::output::{cell, Column};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// An agent's runs, newest first.
    List {
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agent_id: String,
        /// Only runs in this state.
        #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "cancelled"])]
        status: Option<String>,
        /// Only runs made this way.
        #[arg(long, value_parser = ["WEBHOOK", "TOKEN", "SCHEDULE", "API", "TEST"], ignore_case = true)]
        trigger_type: Option<String>,
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
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
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
            paging,
        } => {
            let mut q = Vec::new();
            if let Some(s) = status {
                q.push(("status", s));
            }
            if let Some(t) = trigger_type {
                q.push(("trigger_type", t.to_ascii_uppercase()));
            }
            let segs = under(&["api", "v1", "agents"], &[&agent_id, "runs"]);
            let (raw, listing) = list(ctx, &segs, &q, &paging).await?;
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
    }
    Ok(())
}
