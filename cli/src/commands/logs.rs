//! `hookrun logs`: an agent's log lines, once or followed.
//!
//! The logs listing has no "since" parameter and its cursors are opaque
//! (each backend encodes its own), so following works with what the API
//! gives: for one run (lines in order) the page a poll starts from is the
//! last one that had lines, and lines already printed are skipped by their
//! `seq`; for a whole agent (newest first) the first page is polled and
//! lines not seen yet are printed oldest first.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{list, under, Ctx, Paging};
use crate::client::{CliError, Result};
use crate::output::cell;

/// How often `--follow` asks for new lines (and the run's state).
const POLL: Duration = Duration::from_secs(1);
/// The executor writes a run's outcome lines just after it records the
/// outcome (`services/executor`, `finish`): once the run is finished they
/// are waited for this long at most.
const OUTCOME_WAIT: Duration = Duration::from_secs(5);
/// Lines of an attempt's outcome are numbered from `attempt * 10000 + 9000`
/// (`model::logs::seq`; streamed lines come before them).
fn is_outcome_line(seq: u64, attempt: u64) -> bool {
    seq >= attempt * 10_000 + 9_000
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long = "agent", value_name = "AGENT_ID")]
    agent_id: String,
    /// Only this run's lines, in order.
    #[arg(long = "run", value_name = "RUN_ID")]
    run_id: Option<String>,
    /// Keep printing new lines (about every second). With --run, stop when
    /// the run is finished: exit 0 if it succeeded, 1 if it failed.
    #[arg(long, short = 'f', conflicts_with_all = ["cursor", "all"])]
    follow: bool,
    #[command(flatten)]
    paging: Paging,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let segs = under(&["api", "v1", "agents"], &[&args.agent_id, "logs"]);
    let mut q = Vec::new();
    if let Some(r) = &args.run_id {
        q.push(("run_id", r.clone()));
    }
    if !args.follow {
        let (raw, listing) = list(ctx, &segs, &q, &args.paging).await?;
        if ctx.out.json {
            ctx.out.print_json(raw.as_deref(), &listing);
            return Ok(());
        }
        let mut lines = listing["data"].as_array().cloned().unwrap_or_default();
        // An agent's lines come newest first; people read logs oldest first.
        if args.run_id.is_none() {
            lines.reverse();
        }
        for l in &lines {
            print_line(ctx, l);
        }
        if let Some(c) = listing.get("next_cursor").and_then(Value::as_str) {
            eprintln!("more: --cursor {c} (or --all)");
        }
        return Ok(());
    }
    q.push(("limit", args.paging.limit.unwrap_or(100).to_string()));
    match &args.run_id {
        Some(run_id) => follow_run(ctx, &segs, q, run_id).await,
        None => follow_agent(ctx, &segs, &q).await,
    }
}

/// Prints a run's log lines until it ends, as `logs --follow --run` does
/// (`hookrun trigger --follow`): Ok when it succeeded, a negative error
/// when it failed or was cancelled.
pub async fn follow(ctx: &Ctx, agent_id: &str, run_id: &str) -> Result<()> {
    let segs = under(&["api", "v1", "agents"], &[agent_id, "logs"]);
    let q = vec![("run_id", run_id.to_owned()), ("limit", "100".to_owned())];
    follow_run(ctx, &segs, q, run_id).await
}

/// A log line: as JSON Lines with `--json` (one API record per line), else
/// `time run [stream/level] message`.
fn print_line(ctx: &Ctx, l: &Value) {
    if ctx.out.json {
        crate::say!("{}", crate::output::json_safe(&l.to_string()));
    } else {
        crate::say!(
            "{} {} [{}/{}] {}",
            cell(l.get("timestamp")),
            cell(l.get("run_id")),
            cell(l.get("stream")),
            cell(l.get("level")),
            cell(l.get("message")),
        );
    }
}

fn lines_of(page: &Value) -> Vec<Value> {
    page.get("data")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Prints one run's lines as they come; ends when the run is finished and
/// its outcome lines are printed.
async fn follow_run(
    ctx: &Ctx,
    segs: &[&str],
    query: Vec<(&str, String)>,
    run_id: &str,
) -> Result<()> {
    // The page the next poll starts at, and the last line printed.
    let mut cursor: Option<String> = None;
    let mut last_seq: Option<u64> = None;
    let mut finished: Option<(Value, Instant)> = None;
    loop {
        // Checked before the lines are read, so a run seen finished has
        // had its lines read at least once after that.
        if finished.is_none() {
            let run = ctx.client.get(&["api", "v1", "runs", run_id], &[]).await?;
            if matches!(
                run.json.get("status").and_then(Value::as_str),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                finished = Some((run.json, Instant::now()));
            }
        }
        // Every page there is now.
        loop {
            let mut q = query.clone();
            if let Some(c) = &cursor {
                q.push(("cursor", c.clone()));
            }
            let page = ctx.client.get(segs, &q).await?.json;
            for l in lines_of(&page) {
                let seq = l.get("seq").and_then(Value::as_u64).unwrap_or(0);
                if last_seq.is_none_or(|s| seq > s) {
                    print_line(ctx, &l);
                    last_seq = Some(seq);
                }
            }
            match page.get("next_cursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        if let Some((run, seen)) = &finished {
            let attempt = run.get("attempt").and_then(Value::as_u64).unwrap_or(1);
            let outcome_logged = last_seq.is_some_and(|s| is_outcome_line(s, attempt));
            if outcome_logged || seen.elapsed() >= OUTCOME_WAIT {
                return match run.get("status").and_then(Value::as_str) {
                    Some("succeeded") => Ok(()),
                    Some("cancelled") => Err(CliError::Negative(format!(
                        "run {run_id} was cancelled: {}",
                        cell(run.get("error"))
                    ))),
                    _ => Err(CliError::Negative(format!(
                        "run {run_id} failed: {}",
                        cell(run.get("error"))
                    ))),
                };
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else {
            tokio::time::sleep(POLL).await;
        }
    }
}

/// Prints an agent's new lines until interrupted. Each poll reads the
/// newest page; lines already printed are remembered for the last two
/// polls only (memory stays bounded), and a page that is all new says that
/// lines between polls may have been missed.
async fn follow_agent(ctx: &Ctx, segs: &[&str], query: &[(&str, String)]) -> Result<()> {
    let mut previous: HashSet<(String, u64)> = HashSet::new();
    let mut first = true;
    loop {
        let page = ctx.client.get(segs, query).await?.json;
        let lines = lines_of(&page);
        let mut current = HashSet::with_capacity(lines.len());
        let mut new = 0;
        // Newest first: printed oldest first.
        for l in lines.iter().rev() {
            let key = (
                cell(l.get("run_id")),
                l.get("seq").and_then(Value::as_u64).unwrap_or(0),
            );
            if !previous.contains(&key) {
                print_line(ctx, l);
                new += 1;
            }
            current.insert(key);
        }
        if !first
            && new > 0
            && new == lines.len()
            && page.get("next_cursor").is_some_and(Value::is_string)
        {
            eprintln!("hookrun: more lines arrived than one page between polls; some may not be shown (raise --limit)");
        }
        first = false;
        previous = current;
        tokio::time::sleep(POLL).await;
    }
}
