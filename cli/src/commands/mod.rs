//! The client commands: one module per resource of the management API,
//! plus `logs`, `trigger` (fixtures sent to a trigger), `verify` and
//! `completions`. Each command builds a request
//! from its flags, sends it through [`Client`], and shows the answer with
//! [`Output`].

pub mod agents;
pub mod completions;
pub mod deliveries;
pub mod keys;
pub mod listen;
pub mod logs;
pub mod runs;
pub mod schedules;
pub mod subscriptions;
pub mod trigger;
pub mod triggers;
pub mod verify;

use std::io::Read;

use clap::Subcommand;
use serde_json::{Map, Value};

use crate::client::{CliError, Client, Connection, Result};
use crate::output::Output;

/// The commands that talk to a running service.
#[derive(Subcommand, Debug)]
pub enum Remote {
    /// Agents: create, list, read, update, delete, rotate the webhook secret.
    Agents {
        #[command(subcommand)]
        command: agents::Command,
    },
    /// Webhook triggers: URLs with their own token, secret and rules.
    Triggers {
        #[command(subcommand)]
        command: triggers::Command,
    },
    /// Outgoing webhooks: where run events are delivered.
    Subscriptions {
        #[command(subcommand)]
        command: subscriptions::Command,
    },
    /// Schedules: agents (or triggers) run on a cron, in a time zone.
    Schedules {
        #[command(subcommand)]
        command: schedules::Command,
    },
    /// Runs of an agent.
    Runs {
        #[command(subcommand)]
        command: runs::Command,
    },
    /// Deliveries of outgoing webhooks.
    Deliveries {
        #[command(subcommand)]
        command: deliveries::Command,
    },
    /// An agent's log lines; --follow keeps printing new ones.
    Logs(logs::Args),
    /// Admin keys of the workspace: create (admin or viewer), list, revoke.
    Keys {
        #[command(subcommand)]
        command: keys::Command,
    },
    /// Send a realistic provider call (a fixture: a GitHub pull request, a
    /// Stripe invoice, a Slack command, …) to a trigger or an agent,
    /// signed as it expects; --follow prints the run's log.
    #[command(after_long_help = TRIGGER_ENV.as_str())]
    Trigger(trigger::Args),
    /// Receive hookrun's outgoing webhooks on this machine: each delivery a
    /// subscription would get, POSTed to --forward-to with its exact body
    /// and signed headers; until Ctrl-C.
    Listen(listen::Args),
}

static TRIGGER_ENV: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hookrun_core::config::vars::help_text(&["cli"]));

impl Remote {
    /// Whether the command has a `--url` of its own (a resource's URL), so
    /// that the deprecated top-level `--url` would be ambiguous there.
    pub fn takes_url(&self) -> bool {
        matches!(
            self,
            Remote::Subscriptions {
                command: subscriptions::Command::Create { .. }
                    | subscriptions::Command::Update { .. }
            }
        )
    }
}

/// What every client command gets: the client and the output mode.
pub struct Ctx {
    pub client: Client,
    pub out: Output,
}

pub async fn run(cmd: Remote, conn: &Connection, out: Output) -> Result<()> {
    // Listing the fixtures needs no service, so no key either.
    if let Remote::Trigger(args) = &cmd {
        if args.list_fixtures {
            trigger::list_fixtures();
            return Ok(());
        }
    }
    let ctx = Ctx {
        client: Client::new(conn)?,
        out,
    };
    match cmd {
        Remote::Agents { command } => agents::run(&ctx, command).await,
        Remote::Triggers { command } => triggers::run(&ctx, command).await,
        Remote::Subscriptions { command } => subscriptions::run(&ctx, command).await,
        Remote::Schedules { command } => schedules::run(&ctx, command).await,
        Remote::Runs { command } => runs::run(&ctx, command).await,
        Remote::Deliveries { command } => deliveries::run(&ctx, command).await,
        Remote::Logs(args) => logs::run(&ctx, args).await,
        Remote::Keys { command } => keys::run(&ctx, command).await,
        Remote::Trigger(args) => trigger::run(&ctx, args).await,
        Remote::Listen(args) => listen::run(&ctx, &conn.server, args).await,
    }
}

/// `--body`: the whole JSON request body, so every field the API takes
/// is reachable even without a flag of its own.
#[derive(clap::Args, Debug, Default)]
pub struct BodyArg {
    /// Request body as JSON: inline, @FILE, or - for standard input. Flags
    /// given as well override its fields.
    #[arg(long, value_name = "JSON|@FILE|-")]
    pub body: Option<String>,
}

impl BodyArg {
    /// The body as an object with `fields` (those given) set on it.
    pub fn merged(&self, fields: Vec<(&str, Option<Value>)>) -> Result<Value> {
        let mut obj = match &self.body {
            None => Map::new(),
            Some(spec) => match read_json(spec, "--body")? {
                Value::Object(m) => m,
                _ => return Err(CliError::usage("--body must be a JSON object")),
            },
        };
        for (k, v) in fields {
            if let Some(v) = v {
                obj.insert(k.to_owned(), v);
            }
        }
        Ok(Value::Object(obj))
    }
}

/// JSON given on the command line: inline, `@FILE`, or `-` (standard
/// input). Malformed JSON is a usage error, caught before anything is sent.
pub fn read_json(spec: &str, flag: &str) -> Result<Value> {
    let text = read_text(spec, flag)?;
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("{flag}: not valid JSON: {e}")))
}

/// A secret given on the command line: `@FILE` or `-` (standard input)
/// keep it out of the process list and the shell history; a trailing
/// newline is not part of it.
pub fn read_secret(spec: &str, flag: &str) -> Result<String> {
    let text = read_text(spec, flag)?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_owned())
}

fn read_text(spec: &str, flag: &str) -> Result<String> {
    if spec == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage(format!("{flag}: cannot read standard input: {e}")))?;
        return Ok(s);
    }
    match spec.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("{flag}: cannot read {path}: {e}"))),
        None => Ok(spec.to_owned()),
    }
}

/// `--limit`, `--cursor`, `--all` of every listing.
#[derive(clap::Args, Debug, Default)]
pub struct Paging {
    /// Records per page (1-100; the service's default is 20).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub limit: Option<u16>,
    /// Start after this cursor (the `next_cursor` of the page before).
    #[arg(long, conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow the cursors and show every page.
    #[arg(long)]
    pub all: bool,
}

/// A listing: one page as the API answered it (`raw` for `--json`), or,
/// with `--all`, every page's records in one listing of the same shape
/// (`next_cursor` null; other fields, e.g. the invocation tallies, from
/// the first page).
pub async fn list(
    ctx: &Ctx,
    segments: &[&str],
    query: &[(&str, String)],
    paging: &Paging,
) -> Result<(Option<String>, Value)> {
    /// Pages an `--all` follows at most: a cursor that never ends (a
    /// service bug) must not loop forever.
    const MAX_PAGES: usize = 10_000;
    let mut q: Vec<(&str, String)> = query.to_vec();
    if let Some(l) = paging.limit.or(paging.all.then_some(100)) {
        q.push(("limit", l.to_string()));
    }
    let mut cursor = paging.cursor.clone();
    let mut combined: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let mut page_q = q.clone();
        if let Some(c) = &cursor {
            page_q.push(("cursor", c.clone()));
        }
        let ans = ctx.client.get(segments, &page_q).await?;
        if !ans.json.get("data").is_some_and(Value::is_array) {
            return Err(CliError::BadAnswer("a listing without data".into()));
        }
        if !paging.all {
            return Ok((Some(ans.raw), ans.json));
        }
        cursor = ans
            .json
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match &mut combined {
            None => combined = Some(ans.json),
            Some(all) => {
                let more = ans.json["data"].as_array().cloned().unwrap_or_default();
                if let Some(data) = all["data"].as_array_mut() {
                    data.extend(more);
                }
            }
        }
        if cursor.is_none() {
            break;
        }
    }
    if cursor.is_some() {
        return Err(CliError::BadAnswer(format!(
            "the listing did not end after {MAX_PAGES} pages"
        )));
    }
    let mut all = combined.unwrap_or_else(|| serde_json::json!({ "data": [] }));
    all["next_cursor"] = Value::Null;
    Ok((None, all))
}

/// The path segments of `rest` under `base` (`["api","v1","agents"]`, `[id]`).
pub fn under<'a>(base: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(rest).copied().collect()
}

/// A JSON value from a flag, when given.
pub fn some<T: Into<Value>>(v: Option<T>) -> Option<Value> {
    v.map(Into::into)
}

/// The options that set a concurrency key (agents and triggers).
#[derive(clap::Args, Debug, Clone)]
pub struct ConcurrencyArgs {
    /// Runs with the same value of this key never overlap: a JSON pointer
    /// into the payload (/pull_request/number), header:NAME, or a template
    /// ({{ input.repo }}); `none` removes the key.
    #[arg(long, value_name = "KEY|none")]
    pub concurrency_key: Option<String>,
    /// What a call does while a run of its key value is going: queue (wait
    /// its turn, the default), skip (make no run) or replace (cancel the
    /// run going).
    #[arg(long, value_parser = ["queue", "skip", "replace"], requires = "concurrency_key")]
    pub on_conflict: Option<String>,
}

impl ConcurrencyArgs {
    /// The `concurrency` field: absent, null (`none`) or the key.
    pub fn json(&self) -> Option<Value> {
        let key = self.concurrency_key.as_deref()?;
        if key.eq_ignore_ascii_case("none") {
            return Some(Value::Null);
        }
        let mut c = serde_json::json!({ "key": key });
        if let Some(on) = &self.on_conflict {
            c["on_conflict"] = on.as_str().into();
        }
        Some(c)
    }
}

/// A list flag given at least once, as a JSON array.
pub fn some_list(v: &[String]) -> Option<Value> {
    (!v.is_empty()).then(|| Value::from(v.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_override_the_body() {
        let b = BodyArg {
            body: Some(r#"{"name":"a","timeout_seconds":5,"extra":{"x":1}}"#.into()),
        };
        let v = b
            .merged(vec![("name", Some(json!("b"))), ("enabled", None)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, json!({"name":"b","timeout_seconds":5,"extra":{"x":1}}));
        let none = BodyArg::default()
            .merged(vec![("name", Some(json!("n")))])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(none, json!({"name":"n"}));
    }

    #[test]
    fn bad_bodies_are_usage_errors() {
        for body in ["{nope", "[1]", "@/nonexistent/file.json"] {
            let e = BodyArg {
                body: Some(body.into()),
            }
            .merged(vec![])
            .err()
            .map(|e| e.exit_code());
            assert_eq!(e, Some(crate::client::exit::USAGE), "{body}");
        }
    }
}
