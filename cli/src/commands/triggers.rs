//! `hookrun triggers …`: `/api/v1/webhook-triggers` (request fields:
//! `hookrun_core::services::triggers::{CreateTrigger, UpdateTrigger}`;
//! `--body` reaches the nested ones: `signature`, `input_mapping`,
//! `metadata`, …).

use clap::Subcommand;
use serde_json::{json, Value};

use super::{list, read_json, some, some_list, under, BodyArg, Ctx, Paging};
use crate::client::Result;
use crate::col;
use crate::output::{cell, Column};

/// What the create and regenerate answers show once.
const SECRETS: &[&str] = &["token", "secret"];

const PATH: [&str; 3] = ["api", "v1", "webhook-triggers"];

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a trigger; prints its token (and secret) once.
    Create {
        /// The agent the trigger runs.
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agent_id: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Make a signing secret (printed once).
        #[arg(long, conflicts_with = "secret")]
        generate_secret: bool,
        /// Use this signing secret (e.g. a provider's): the secret,
        /// `@FILE` or `-` (standard input), which keep it out of `ps` and
        /// the shell history.
        #[arg(long, value_name = "SECRET|@FILE|-")]
        secret: Option<String>,
        /// Also answer POST /api/v1/agents/{agent}/webhook (one per agent).
        #[arg(long)]
        agent_route: bool,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// List triggers, of one agent or all.
    List {
        /// Only this agent's triggers.
        #[arg(long = "agent", value_name = "AGENT_ID")]
        agent_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one trigger (never its token or secret).
    Get { id: String },
    /// Change a trigger (only the fields given).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Answer POST /api/v1/agents/{agent}/webhook or not.
        #[arg(long, value_name = "BOOL")]
        agent_route: Option<bool>,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Delete a trigger; its URLs answer 404 at once.
    Delete { id: String },
    /// New token, printed once; the old one stops at once.
    RegenerateToken { id: String },
    /// New signing secret (or --secret), printed once; the old one stops
    /// at once.
    RegenerateSecret {
        id: String,
        /// Use this secret: the secret, `@FILE` or `-` (standard input).
        #[arg(long, value_name = "SECRET|@FILE|-")]
        secret: Option<String>,
    },
    /// Send a test event through the trigger's pipeline (a run of type TEST).
    Test {
        id: String,
        /// The event: JSON inline, @FILE or - (default: a hookrun.test event).
        #[arg(long, value_name = "JSON|@FILE|-")]
        payload: Option<String>,
    },
    /// Calls that reached the trigger, newest first, and (first page) the
    /// tallies of calls refused before they authenticated.
    Invocations {
        id: String,
        #[command(flatten)]
        paging: Paging,
    },
}

/// The fields create and update share.
#[derive(clap::Args, Debug)]
pub struct Fields {
    #[arg(long)]
    description: Option<String>,
    /// Whether the trigger accepts calls (the API's `is_active`; `--active`
    /// is accepted too).
    #[arg(long = "enabled", alias = "active", value_name = "BOOL")]
    is_active: Option<bool>,
    /// Accept only these event types (repeat the flag for several).
    #[arg(long = "event-type", value_name = "TYPE")]
    event_types: Vec<String>,
    /// The environment of the runs it makes.
    #[arg(long, value_parser = ["production", "staging"])]
    environment: Option<String>,
    /// Calls accepted per minute.
    #[arg(long = "rate-limit", value_name = "PER_MINUTE")]
    rate_limit_per_minute: Option<u32>,
    /// Signature scheme of the calls (hmac, github, stripe, slack,
    /// standard-webhooks); --body sets its other options.
    #[arg(long, value_name = "SCHEME")]
    signature_scheme: Option<String>,
    /// Accept calls only from these addresses or CIDR ranges (repeatable).
    #[arg(long = "allow-ip", value_name = "CIDR")]
    allow_ips: Vec<String>,
    /// Accept calls only with these Origin hosts (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    allow_origins: Vec<String>,
    /// When its token URL answers: at once (queued, the default) or once
    /// the run has started (started: waits up to 10 s).
    #[arg(long, value_parser = ["queued", "started"])]
    respond_when: Option<String>,
    #[command(flatten)]
    concurrency: super::ConcurrencyArgs,
}

impl Fields {
    fn json(&self) -> Vec<(&'static str, Option<Value>)> {
        let allowed = (!self.allow_ips.is_empty() || !self.allow_origins.is_empty())
            .then(|| json!({ "ips": self.allow_ips, "origins": self.allow_origins }));
        vec![
            ("description", some(self.description.clone())),
            ("is_active", some(self.is_active)),
            ("event_types", some_list(&self.event_types)),
            ("environment", some(self.environment.clone())),
            ("rate_limit_per_minute", some(self.rate_limit_per_minute)),
            ("respond_when", some(self.respond_when.clone())),
            (
                "signature",
                self.signature_scheme
                    .as_ref()
                    .map(|s| json!({ "scheme": s })),
            ),
            ("allowed_sources", allowed),
            ("concurrency", self.concurrency.json()),
        ]
    }
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("agent_id", "/agent_id"),
        col!("name", "/name"),
        col!("active", "/is_active"),
        col!("secret", "/has_secret"),
        col!("signature", |v| match v.pointer("/signature/scheme") {
            Some(s) => cell(Some(s)),
            None if v.get("has_secret") == Some(&Value::Bool(true)) => "hmac".into(),
            None => "-".into(),
        }),
        col!("token_prefix", "/token_prefix"),
        col!("last_used_at", "/last_used_at"),
    ]
}

fn invocation_columns() -> Vec<Column> {
    vec![
        col!("timestamp", "/timestamp"),
        col!("result", |v| {
            let result = cell(v.get("result"));
            if v.get("test") == Some(&Value::Bool(true)) {
                format!("{result} (test)")
            } else {
                result
            }
        }),
        col!("status", "/status"),
        col!("source_ip", "/source_ip"),
        col!("run_id", "/run_id"),
        col!("error", "/error"),
    ]
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = ctx.out;
    match cmd {
        Command::Create {
            agent_id,
            name,
            generate_secret,
            secret,
            agent_route,
            fields,
            body,
        } => {
            let mut f = vec![
                ("agent_id", some(agent_id)),
                ("name", some(name)),
                ("generate_secret", generate_secret.then_some(json!(true))),
                (
                    "secret",
                    some(
                        secret
                            .map(|s| super::read_secret(&s, "--secret"))
                            .transpose()?,
                    ),
                ),
                ("agent_route", agent_route.then_some(json!(true))),
            ];
            f.extend(fields.json());
            let req = body.merged(f)?;
            let ans = ctx.client.post(&PATH, Some(&req)).await?;
            out.object(Some(&ans.raw), &ans.json, SECRETS);
        }
        Command::List { agent_id, paging } => {
            let q: Vec<(&str, String)> = agent_id.into_iter().map(|a| ("agent_id", a)).collect();
            let (raw, listing) = list(ctx, &PATH, &q, &paging).await?;
            out.listing(raw.as_deref(), &listing, &columns());
        }
        Command::Get { id } => {
            let ans = ctx.client.get(&under(&PATH, &[&id]), &[]).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Update {
            id,
            name,
            agent_route,
            fields,
            body,
        } => {
            let mut f = vec![("name", some(name)), ("agent_route", some(agent_route))];
            f.extend(fields.json());
            let req = body.merged(f)?;
            let ans = ctx.client.patch(&under(&PATH, &[&id]), &req).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Delete { id } => {
            ctx.client.delete(&under(&PATH, &[&id])).await?;
            out.note(&format!("deleted trigger {id}"));
        }
        Command::RegenerateToken { id } => {
            let p = under(&PATH, &[&id, "regenerate-token"]);
            let ans = ctx.client.post(&p, None).await?;
            out.object(Some(&ans.raw), &ans.json, SECRETS);
        }
        Command::RegenerateSecret { id, secret } => {
            let p = under(&PATH, &[&id, "regenerate-secret"]);
            let req = secret
                .map(|s| super::read_secret(&s, "--secret"))
                .transpose()?
                .map(|s| json!({ "secret": s }));
            let ans = ctx.client.post(&p, req.as_ref()).await?;
            out.object(Some(&ans.raw), &ans.json, SECRETS);
        }
        Command::Test { id, payload } => {
            let payload = payload.map(|p| read_json(&p, "--payload")).transpose()?;
            let p = under(&PATH, &[&id, "test"]);
            let ans = ctx.client.post(&p, payload.as_ref()).await?;
            if out.json {
                out.print_json(Some(&ans.raw), &ans.json);
            } else {
                crate::say!("accepted: run {}", cell(ans.json.get("run_id")));
            }
        }
        Command::Invocations { id, paging } => {
            let p = under(&PATH, &[&id, "invocations"]);
            let (raw, listing) = list(ctx, &p, &[], &paging).await?;
            out.listing(raw.as_deref(), &listing, &invocation_columns());
            if !out.json {
                tallies(&listing);
            }
        }
    }
    Ok(())
}

/// The first page's `rejected_unauthenticated` tallies, when there are any.
fn tallies(listing: &Value) {
    let Some(rows) = listing
        .get("rejected_unauthenticated")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
    else {
        return;
    };
    crate::say!("\nrefused before authenticating (per minute and reason):");
    for r in rows {
        crate::say!(
            "  {}  {}  x{}  last from {}",
            cell(r.get("minute")),
            cell(r.get("reason")),
            cell(r.get("count")),
            cell(r.get("last_source_ip"))
        );
    }
}
