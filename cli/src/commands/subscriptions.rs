//! `hookrun subscriptions …`: `/api/v1/subscriptions` (request fields:
//! `hookrun_core::services::subscriptions::{CreateSubscription,
//! UpdateSubscription}`).

use clap::Subcommand;
use serde_json::{json, Value};

use super::{list, some, some_list, under, BodyArg, Ctx, Paging};
use crate::client::Result;
use crate::col;
use crate::output::Column;

/// What the create and rotate answers show once.
const SECRETS: &[&str] = &["secret"];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Subscribe a URL to run events; prints the signing secret once.
    Create {
        /// What the subscription is for.
        #[arg(long)]
        name: Option<String>,
        /// Where deliveries are POSTed (the API's `url`; the service's
        /// own address is --server).
        #[arg(long, alias = "endpoint", value_name = "URL")]
        url: Option<String>,
        /// Only this agent's runs.
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agent_id: Option<String>,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// List the workspace's subscriptions.
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one subscription (`disabled_reason` says why hookrun disabled it).
    Get { id: String },
    /// Change a subscription (only the fields given).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Where deliveries are POSTed.
        #[arg(long, alias = "endpoint", value_name = "URL")]
        url: Option<String>,
        /// Only this agent's runs.
        #[arg(long = "agent", value_name = "AGENT_ID", conflicts_with = "all_agents")]
        agent_id: Option<String>,
        /// Every agent's runs (clears --agent).
        #[arg(long)]
        all_agents: bool,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Delete a subscription.
    Delete { id: String },
    /// New signing secret, printed once.
    RotateSecret {
        id: String,
        /// How long the previous secret keeps signing too (default 0: it
        /// stops at once).
        #[arg(long, value_name = "SECONDS")]
        grace_seconds: Option<i64>,
    },
    /// The subscription's deliveries, newest first.
    Deliveries {
        id: String,
        #[command(flatten)]
        paging: Paging,
    },
}

/// The fields create and update share.
#[derive(clap::Args, Debug)]
pub struct Fields {
    /// An event to deliver: run.succeeded, run.failed, run.started
    /// (repeat the flag for several).
    #[arg(long = "event", value_name = "EVENT")]
    events: Vec<String>,
    /// Only runs of this environment.
    #[arg(long, value_parser = ["production", "staging"])]
    environment: Option<String>,
    /// Whether deliveries are made (`--active` is accepted too).
    #[arg(long, alias = "active", value_name = "BOOL")]
    enabled: Option<bool>,
}

impl Fields {
    fn json(&self) -> Vec<(&'static str, Option<Value>)> {
        vec![
            ("events", some_list(&self.events)),
            ("environment", some(self.environment.clone())),
            ("enabled", some(self.enabled)),
        ]
    }
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("name", "/name"),
        col!("url", "/url"),
        col!("events", "/events"),
        col!("agent_id", "/agent_id"),
        col!("enabled", "/enabled"),
        col!("disabled_reason", "/disabled_reason"),
    ]
}

pub fn delivery_columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("event", "/event"),
        col!("status", "/status"),
        col!("attempts", "/attempts"),
        col!("last_status", "/last_status_code"),
        col!("run_id", "/run_id"),
        col!("created_at", "/created_at"),
    ]
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = ctx.out;
    const BASE: [&str; 3] = ["api", "v1", "subscriptions"];
    match cmd {
        Command::Create {
            name,
            url,
            agent_id,
            fields,
            body,
        } => {
            let mut f = vec![
                ("name", some(name)),
                ("url", some(url)),
                ("agent_id", some(agent_id)),
            ];
            f.extend(fields.json());
            let req = body.merged(f)?;
            let ans = ctx.client.post(&BASE, Some(&req)).await?;
            out.object(Some(&ans.raw), &ans.json, SECRETS);
        }
        Command::List { paging } => {
            let (raw, listing) = list(ctx, &BASE, &[], &paging).await?;
            out.listing(raw.as_deref(), &listing, &columns());
        }
        Command::Get { id } => {
            let ans = ctx.client.get(&under(&BASE, &[&id]), &[]).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Update {
            id,
            name,
            url,
            agent_id,
            all_agents,
            fields,
            body,
        } => {
            let agent = match (agent_id, all_agents) {
                (Some(a), _) => Some(json!(a)),
                (None, true) => Some(Value::Null),
                (None, false) => None,
            };
            let mut f = vec![
                ("name", some(name)),
                ("url", some(url)),
                ("agent_id", agent),
            ];
            f.extend(fields.json());
            let req = body.merged(f)?;
            let ans = ctx.client.patch(&under(&BASE, &[&id]), &req).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Delete { id } => {
            ctx.client.delete(&under(&BASE, &[&id])).await?;
            out.note(&format!("deleted subscription {id}"));
        }
        Command::RotateSecret { id, grace_seconds } => {
            let req = grace_seconds.map(|g| json!({ "grace_seconds": g }));
            let ans = ctx
                .client
                .post(&under(&BASE, &[&id, "rotate-secret"]), req.as_ref())
                .await?;
            out.object(Some(&ans.raw), &ans.json, SECRETS);
        }
        Command::Deliveries { id, paging } => {
            let segs = under(&BASE, &[&id, "deliveries"]);
            let (raw, listing) = list(ctx, &segs, &[], &paging).await?;
            out.listing(raw.as_deref(), &listing, &delivery_columns());
        }
    }
    Ok(())
}
