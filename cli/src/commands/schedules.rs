//! `hookrun schedules …`: `/api/v1/schedules` (request fields:
//! `hookrun_core::services::schedules::{CreateSchedule, UpdateSchedule}`).

use clap::Subcommand;
use serde_json::Value;

use super::{list, some, under, BodyArg, Ctx, Paging};
use crate::client::{CliError, Result};
use crate::col;
use crate::output::Column;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run an agent (or a trigger) on a cron, in a time zone.
    Create {
        #[arg(long)]
        name: Option<String>,
        /// The agent it runs.
        #[arg(long = "agent", value_name = "AGENT_ID", conflicts_with = "trigger_id")]
        agent_id: Option<String>,
        /// Or run through this trigger (its input mapping and event filter).
        #[arg(long = "trigger", value_name = "TRIGGER_ID")]
        trigger_id: Option<String>,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// List the workspace's schedules.
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one schedule with its next fires.
    Get { id: String },
    /// Change a schedule (only the fields given).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        fields: Fields,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Pause a schedule: no fires until it is resumed.
    Pause { id: String },
    /// Resume a paused schedule (its last missed fire runs if catch-up
    /// says so).
    Resume { id: String },
    /// Delete a schedule.
    Delete { id: String },
    /// The next fire times of a schedule, in UTC and in its zone.
    Next { id: String },
}

/// The fields create and update share.
#[derive(clap::Args, Debug)]
pub struct Fields {
    /// Five fields (0 9 * * MON-FRI), rate(5 minutes), or an AWS
    /// cron(0 9 ? * 2-6 *).
    #[arg(long, value_name = "EXPRESSION")]
    cron: Option<String>,
    /// An IANA time zone (default UTC).
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// The run's input (a JSON object; `scheduled_time` is added).
    #[arg(long, value_name = "JSON", value_parser = parse_object)]
    payload: Option<Value>,
    /// While the previous run is still going: skip (default), queue-one,
    /// allow.
    #[arg(long, value_parser = ["skip", "queue-one", "queue_one", "allow"])]
    overlap: Option<String>,
    /// Missed fires (hookrun stopped, schedule paused): latest (default:
    /// the last one, if under an hour old) or none.
    #[arg(long, value_parser = ["latest", "none"])]
    catch_up: Option<String>,
    /// Whether it fires.
    #[arg(long, value_name = "BOOL")]
    enabled: Option<bool>,
}

fn parse_object(raw: &str) -> std::result::Result<Value, String> {
    match serde_json::from_str::<Value>(raw) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err("the payload must be a JSON object".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

impl Fields {
    fn json(&self) -> Vec<(&'static str, Option<Value>)> {
        vec![
            ("cron", some(self.cron.clone())),
            ("timezone", some(self.timezone.clone())),
            ("payload", self.payload.clone()),
            (
                "overlap",
                some(self.overlap.as_ref().map(|o| o.replace('-', "_"))),
            ),
            ("catch_up", some(self.catch_up.clone())),
            ("enabled", some(self.enabled)),
        ]
    }
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("name", "/name"),
        col!("cron", "/cron"),
        col!("timezone", "/timezone"),
        col!("enabled", "/enabled"),
        col!("next_fire", "/next_fire_times/0/local"),
        col!("last_run_id", "/last_run_id"),
        col!("skipped", "/skipped_fires"),
    ]
}

fn fire_columns() -> Vec<Column> {
    vec![col!("utc", "/utc"), col!("local", "/local")]
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = ctx.out;
    const BASE: [&str; 3] = ["api", "v1", "schedules"];
    match cmd {
        Command::Create {
            name,
            agent_id,
            trigger_id,
            fields,
            body,
        } => {
            let mut f = vec![
                ("name", some(name)),
                ("agent_id", some(agent_id)),
                ("trigger_id", some(trigger_id)),
            ];
            f.extend(fields.json());
            let req = body.merged(f)?;
            let ans = ctx.client.post(&BASE, Some(&req)).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
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
            fields,
            body,
        } => {
            let mut f = vec![("name", some(name))];
            f.extend(fields.json());
            let req = body.merged(f)?;
            let ans = ctx.client.patch(&under(&BASE, &[&id]), &req).await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Pause { id } => {
            let ans = ctx
                .client
                .post(&under(&BASE, &[&id, "pause"]), None)
                .await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Resume { id } => {
            let ans = ctx
                .client
                .post(&under(&BASE, &[&id, "resume"]), None)
                .await?;
            out.object(Some(&ans.raw), &ans.json, &[]);
        }
        Command::Delete { id } => {
            ctx.client.delete(&under(&BASE, &[&id])).await?;
            out.note(&format!("deleted schedule {id}"));
        }
        Command::Next { id } => {
            let ans = ctx.client.get(&under(&BASE, &[&id]), &[]).await?;
            let fires = ans
                .json
                .get("next_fire_times")
                .cloned()
                .ok_or_else(|| CliError::Usage("the answer has no next_fire_times".into()))?;
            let listing = serde_json::json!({ "data": fires, "next_cursor": null });
            out.listing(None, &listing, &fire_columns());
        }
    }
    Ok(())
}
