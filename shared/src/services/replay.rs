//! Bulk replay: retries of an agent's finished runs that match a filter
//! (status, creation time, trigger), a page of at most 1,000 per call with
//! a cursor to go on, or with `dry_run` only their count and first ids.
//!
//! Each retry is written with a key derived from the filter and its
//! original (the idempotency keys of trigger calls, kept 24 hours), so a
//! call repeated (a client that lost the answer, a rerun script) finds the
//! retries it made and makes none twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::Error;
use crate::ids::{RunId, WorkspaceId};
use crate::model::{Run, RunStatus};
use crate::repo::runs::dedup_key;
use crate::services::runs::Enqueued;
use crate::services::{agents, control, runs};

/// Retries one call makes at most.
pub const MAX_PER_CALL: usize = 1000;
/// Runs a dry run counts at most.
pub const MAX_COUNTED: usize = 10_000;
/// Ids a dry run shows.
const FIRST_IDS: usize = 20;
/// Runs read per page.
const PAGE: usize = 100;

/// One status, or several.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Statuses {
    One(RunStatus),
    Many(Vec<RunStatus>),
}

/// Which runs to replay, and how.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub agent_id: String,
    /// `succeeded`, `failed` or `cancelled`, or a list of them; default
    /// `failed`.
    #[serde(default)]
    pub status: Option<Statuses>,
    /// Only runs created at or after this time (RFC 3339).
    #[serde(default)]
    pub created_after: Option<String>,
    /// Only runs created before this time (RFC 3339).
    #[serde(default)]
    pub created_before: Option<String>,
    /// Only runs this trigger started.
    #[serde(default)]
    pub trigger_id: Option<String>,
    /// Count what would be replayed; replay nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Retries this call makes at most, 1 to 1000 (default 1000).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous call with the same filter.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A retry this call made (or a repeated call found).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Replayed {
    pub retry_of: RunId,
    pub run_id: RunId,
    /// False when an earlier call with the same filter made it.
    pub created: bool,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplayAnswer {
    pub dry_run: bool,
    /// Dry run: the runs that match (at most 10,000 are counted). Else:
    /// the runs this call replayed.
    pub count: usize,
    /// Dry run: whether more than 10,000 match.
    pub truncated: bool,
    /// Dry run: the first 20 matching runs, newest first.
    pub first_ids: Vec<RunId>,
    /// The retries this call made, or found made by the same call before.
    pub retries: Vec<Replayed>,
    /// Give it back as `cursor` (with the same filter) to go on; null
    /// when every matching run was replayed.
    pub next_cursor: Option<String>,
}

/// A checked filter.
struct Filter {
    statuses: Vec<RunStatus>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    trigger_id: Option<String>,
}

impl Filter {
    fn of(req: &ReplayRequest) -> Result<Filter, Error> {
        let statuses = match &req.status {
            None => vec![RunStatus::Failed],
            Some(Statuses::One(s)) => vec![*s],
            Some(Statuses::Many(list)) => list.clone(),
        };
        if statuses.is_empty() {
            return Err(Error::invalid(
                "status",
                "status must name at least one status",
            ));
        }
        if let Some(s) = statuses.iter().find(|s| !s.is_terminal()) {
            return Err(Error::invalid(
                "status",
                format!(
                    "status {}: only finished runs (succeeded, failed, cancelled) can be replayed",
                    s.as_str()
                ),
            ));
        }
        let after = runs::time_param("created_after", req.created_after.as_deref())?;
        let before = runs::time_param("created_before", req.created_before.as_deref())?;
        if let (Some(a), Some(b)) = (after, before) {
            if a >= b {
                return Err(Error::invalid(
                    "created_before",
                    "created_before must be later than created_after",
                ));
            }
        }
        Ok(Filter {
            statuses,
            after,
            before,
            trigger_id: req.trigger_id.clone(),
        })
    }

    fn matches(&self, run: &Run) -> bool {
        self.statuses.contains(&run.status)
            && self.before.is_none_or(|b| run.created_at < b)
            && self
                .trigger_id
                .as_deref()
                .is_none_or(|t| run.trigger_id.as_ref().is_some_and(|id| id.as_str() == t))
    }

    /// Newest first: a run older than `created_after` ends the walk.
    fn past_the_window(&self, run: &Run) -> bool {
        self.after.is_some_and(|a| run.created_at < a)
    }

    /// The filter as text: what a retry's key is derived from.
    fn canonical(&self, agent_id: &str) -> String {
        let mut statuses: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        serde_json::json!({
            "agent_id": agent_id,
            "status": statuses,
            "created_after": self.after.map(crate::clock::rfc3339),
            "created_before": self.before.map(crate::clock::rfc3339),
            "trigger_id": self.trigger_id,
        })
        .to_string()
    }
}

/// Replays (or, with `dry_run`, counts) an agent's runs matching `req`.
pub async fn replay(
    app: &App,
    workspace_id: &WorkspaceId,
    req: ReplayRequest,
) -> Result<ReplayAnswer, Error> {
    let filter = Filter::of(&req)?;
    let limit = match req.limit {
        None => MAX_PER_CALL,
        Some(n) if (1..=MAX_PER_CALL).contains(&n) => n,
        Some(_) => {
            return Err(Error::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PER_CALL}"),
            ))
        }
    };
    let agent = agents::get(app, workspace_id, &req.agent_id).await?;
    if !req.dry_run && !agent.enabled {
        return Err(Error::Conflict(format!(
            "agent {} is disabled: enable it to replay its runs",
            agent.id
        )));
    }
    let mut answer = ReplayAnswer {
        dry_run: req.dry_run,
        count: 0,
        truncated: false,
        first_ids: vec![],
        retries: vec![],
        next_cursor: None,
    };
    let canonical = filter.canonical(agent.id.as_str());
    let mut cursor = req.cursor;
    loop {
        // A replay asks only for what it may still make, so a page never
        // holds more matches than that and the cursor resumes after it.
        let want = if req.dry_run {
            PAGE
        } else {
            (limit - answer.count).min(PAGE)
        };
        let page = app
            .repo
            .runs_of_agent(&agent.id, None, want, cursor.take(), |_| true)
            .await?;
        let mut ended = page.next_cursor.is_none();
        for run in &page.data {
            if filter.past_the_window(run) {
                ended = true;
                break;
            }
            if !filter.matches(run) {
                continue;
            }
            if req.dry_run {
                if answer.count == MAX_COUNTED {
                    answer.truncated = true;
                    return Ok(answer);
                }
                answer.count += 1;
                if answer.first_ids.len() < FIRST_IDS {
                    answer.first_ids.push(run.id.clone());
                }
            } else {
                answer
                    .retries
                    .push(replay_one(app, &agent, run, &canonical).await?);
                answer.count += 1;
            }
        }
        if ended {
            return Ok(answer);
        }
        cursor = page.next_cursor;
        if !req.dry_run && answer.count >= limit {
            answer.next_cursor = cursor;
            return Ok(answer);
        }
    }
}

/// One retry, keyed by the filter and its original.
async fn replay_one(
    app: &App,
    agent: &crate::model::Agent,
    original: &Run,
    canonical: &str,
) -> Result<Replayed, Error> {
    let run = control::retry_of(app, agent, original);
    let expires = (app.clock.now() + chrono::Duration::hours(24)).timestamp();
    let key = dedup_key(
        &format!("replay:{}", agent.id),
        &format!("{canonical}|{}", original.id),
        expires,
        canonical.as_bytes(),
    );
    let made = runs::enqueue_once(app, &run, Some(key)).await?;
    let created = matches!(made, Enqueued::New(_));
    if created {
        control::list_retry(app, &original.id, &run.id).await;
    }
    Ok(Replayed {
        retry_of: original.id.clone(),
        run_id: made.run_id().clone(),
        created,
    })
}
