//! `hookrun deliveries …`: one delivery of an outgoing webhook.

use clap::Subcommand;
use serde_json::{json, Value};

use super::Ctx;
use crate::client::Result;
use crate::col;
use crate::output::{cell, Column};

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One delivery and its attempt log.
    Get { id: String },
    /// Make one more attempt now (not retried).
    Redeliver { id: String },
}

fn attempt_columns() -> Vec<Column> {
    vec![
        col!("attempt", "/attempt"),
        col!("timestamp", "/timestamp"),
        col!("status", "/status_code"),
        col!("duration_ms", "/duration_ms"),
        col!("manual", "/manual"),
        col!("error", "/error"),
    ]
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = ctx.out;
    match cmd {
        Command::Get { id } => {
            let ans = ctx
                .client
                .get(&["api", "v1", "deliveries", &id], &[])
                .await?;
            if out.json {
                out.print_json(Some(&ans.raw), &ans.json);
                return Ok(());
            }
            // The attempt log reads better as rows than as one JSON cell.
            let mut summary = ans.json.clone();
            let attempts = summary
                .as_object_mut()
                .and_then(|o| o.remove("attempt_log"))
                .unwrap_or(Value::Null);
            out.object(None, &summary, &[]);
            crate::say!("\nattempts:");
            out.listing(None, &json!({ "data": attempts }), &attempt_columns());
        }
        Command::Redeliver { id } => {
            let ans = ctx
                .client
                .post(&["api", "v1", "deliveries", &id, "redeliver"], None)
                .await?;
            if out.json {
                out.print_json(Some(&ans.raw), &ans.json);
            } else {
                crate::say!(
                    "delivery {} {}",
                    cell(ans.json.get("delivery_id")),
                    cell(ans.json.get("status"))
                );
            }
        }
    }
    Ok(())
}
