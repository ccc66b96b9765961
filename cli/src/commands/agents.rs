//! `hookrun agents …`: `/api/v1/agents` (request fields:
//! `hookrun_core::services::agents::{CreateAgent, UpdateAgent}`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::{list, some, BodyArg, Ctx, Paging};
use crate::client::Result;
use crate::col;
use crate::output::{cell, Column};

/// The secrets an agent's create and rotate answers show once.
const SECRETS: &[&str] = &["webhook_secret", "signing_secret"];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an agent; prints its webhook secret once.
    Create {
        /// Display name (1-200 characters).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// List the workspace's agents.
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one agent.
    Get { id: String },
    /// Change an agent (only the fields given); bumps its version.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Delete an agent and its webhook secret.
    Delete { id: String },
    /// Tokens the agent's runs used, per day (UTC) and model.
    Usage {
        id: String,
        /// Count runs created since this time (RFC 3339) or date
        /// (YYYY-MM-DD); default 30 days ago.
        #[arg(long)]
        since: Option<String>,
    },
    /// Replace the webhook secret; prints the new one once.
    RotateSecret {
        id: String,
        /// How long the previous secret keeps working (default: the
        /// service's, 86400; 0 ends it at once).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<i64>,
    },
    /// Replace the signing secret hookrun signs its calls to an http agent
    /// with; prints the new one once.
    RotateSigningSecret {
        id: String,
        /// How long calls also carry a signature by the previous secret
        /// (default: the service's, 86400; 0 ends it at once).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<i64>,
    },
}

/// The fields create and update share.
#[derive(clap::Args, Debug)]
pub struct Fields {
    /// Run the agent by POSTing each run to this URL (an `http` runner).
    #[arg(long, value_name = "URL", conflicts_with = "echo")]
    runner_url: Option<String>,
    /// Answer with the message it was given (the `echo` runner; the default
    /// for a new agent).
    #[arg(long)]
    echo: bool,
    /// Run timeout in seconds (1-840; default 600).
    #[arg(long, value_name = "SECONDS")]
    timeout_seconds: Option<u64>,
    /// Whether the agent accepts runs (`--active` is accepted too).
    #[arg(long, alias = "active", value_name = "BOOL")]
    enabled: Option<bool>,
    /// Runs of the agent executing at once at most (1-1000; the others
    /// wait their turn in order), or `none` for only the workspace's cap.
    #[arg(long, value_name = "N|none", value_parser = parse_cap)]
    max_concurrent_runs: Option<Value>,
    #[command(flatten)]
    concurrency: super::ConcurrencyArgs,
}

/// A cap, or `none` (JSON null: no cap of the agent's own).
fn parse_cap(raw: &str) -> std::result::Result<Value, String> {
    if raw.eq_ignore_ascii_case("none") {
        return Ok(Value::Null);
    }
    raw.parse::<u32>()
        .map(|n| json!(n))
        .map_err(|_| "a number (1-1000) or none".to_owned())
}

impl Fields {
    fn json(&self, name: Option<String>) -> Vec<(&'static str, Option<Value>)> {
        let runner = match (&self.runner_url, self.echo) {
            (Some(url), _) => Some(json!({ "type": "http", "url": url })),
            (None, true) => Some(json!({ "type": "echo" })),
            (None, false) => None,
        };
        vec![
            ("name", some(name)),
            ("runner", runner),
            ("timeout_seconds", some(self.timeout_seconds)),
            ("enabled", some(self.enabled)),
            ("max_concurrent_runs", self.max_concurrent_runs.clone()),
            ("concurrency", self.concurrency.json()),
        ]
    }
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("name", "/name"),
        // The runner's type and what it calls: a URL, a model, a function.
        col!("runner", |v| {
            let kind = cell(v.pointer("/runner/type"));
            let target = [
                "/runner/url",
                "/runner/model",
                "/runner/model_id",
                "/runner/function",
            ]
            .iter()
            .find_map(|p| v.pointer(p));
            match target {
                Some(t) => format!("{kind} {}", cell(Some(t))),
                None => kind,
            }
        }),
        col!("enabled", "/enabled"),
        col!("timeout_s", "/timeout_seconds"),
        col!("version", "/version"),
        col!("created_at", "/created_at"),
    ]
}

/// `POST /api/v1/agents/{id}/{action}`, with `grace_seconds` when given;
/// prints the new secret once.
async fn rotate(ctx: &Ctx, id: &str, action: &str, grace_seconds: Option<i64>) -> Result<()> {
    let req = json!({ "grace_seconds": grace_seconds });
    let req = grace_seconds.is_some().then_some(&req);
    let ans = ctx
        .client
        .post(&["api", "v1", "agents", id, action], req)
        .await?;
    ctx.out.object(Some(&ans.raw), &ans.json, SECRETS);
    Ok(())
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = ctx.out;
    match cmd {
        Command::Create { name, fields, body } => {
            let req = body.merged(fields.json(name))?;
            let ans = ctx
                .client
                .post(&["api", "v1", "agents"], Some(&req))
                .await?;
            out.object(Some(&ans.raw), &ans.json, SECRETS);
        }
        Command::List { paging } => {
            let (raw, listing) = list(ctx, &["api", "v1", "agents"], &[], &paging).await?;
            out.listing(raw.as_deref(), &listing, &columns());
        }
        Command::Get { id } => {
            let ans = ctx.client.get(&["api", "v1", "agents", &id], &[]).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Update {
            id,
            name,
            fields,
            body,
        } => {
            let req = body.merged(fields.json(name))?;
            let ans = ctx
                .client
                .patch(&["api", "v1", "agents", &id], &req)
                .await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Usage { id, since } => {
            let query: Vec<(&str, String)> = since.map(|s| ("since", s)).into_iter().collect();
            let ans = ctx
                .client
                .get(&["api", "v1", "agents", &id, "usage"], &query)
                .await?;
            let columns = vec![
                col!("date", "/date"),
                col!("model", "/model"),
                col!("runs", "/runs"),
                col!("input_tokens", "/input_tokens"),
                col!("output_tokens", "/output_tokens"),
            ];
            let days = json!({ "data": ans.json.get("days").cloned().unwrap_or_default() });
            out.listing(Some(&ans.raw), &days, &columns);
            if ans.json.get("truncated") == Some(&Value::Bool(true)) {
                eprintln!("(only the newest 10000 runs were read: earlier days are not counted)");
            }
        }
        Command::Delete { id } => {
            ctx.client.delete(&["api", "v1", "agents", &id]).await?;
            out.note(&format!("deleted agent {id}"));
        }
        Command::RotateSecret { id, grace_seconds } => {
            rotate(ctx, &id, "rotate-secret", grace_seconds).await?;
        }
        Command::RotateSigningSecret { id, grace_seconds } => {
            rotate(ctx, &id, "rotate-signing-secret", grace_seconds).await?;
        }
    }
    Ok(())
}
