//! `hookrun keys …`: the workspace's admin keys (`/api/v1/admin-keys`).

use clap::Subcommand;
use hookrun_core::model::Role;
use serde_json::json;

use super::{list, under, Ctx, Paging};
use crate::client::Result;
use crate::col;
use crate::output::Column;

/// What the create answer shows once.
const SECRETS: &[&str] = &["key"];

/// `--role`: a role's name as the API writes it (`admin`, `viewer`).
pub fn role_arg() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create an admin key; prints the key once.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// admin (default) or viewer (read only).
        #[arg(long, value_parser = role_arg(), default_value = "admin")]
        role: String,
    },
    /// List the workspace's keys (prefix, role, created, last used).
    List {
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one key (never the key itself).
    Get { id: String },
    /// Revoke a key: it authenticates nothing from then on. The last admin
    /// key cannot be revoked.
    Revoke { id: String },
}

pub fn columns() -> Vec<Column> {
    vec![
        col!("id", "/id"),
        col!("name", "/name"),
        col!("role", "/role"),
        col!("prefix", "/key_prefix"),
        col!("created_at", "/created_at"),
        col!("last_used_at", "/last_used_at"),
    ]
}

pub async fn run(ctx: &Ctx, cmd: Command) -> Result<()> {
    let out = ctx.out;
    const BASE: [&str; 3] = ["api", "v1", "admin-keys"];
    match cmd {
        Command::Create { name, role } => {
            let req = json!({ "name": name, "role": role });
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
        Command::Revoke { id } => {
            ctx.client.delete(&under(&BASE, &[&id])).await?;
            out.note(&format!("revoked admin key {id}"));
        }
    }
    Ok(())
}
