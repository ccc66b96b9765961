//! Runs: recording and queueing them, reading them back, and their logs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{ApiError, StoreError};
use crate::ids;
use crate::model::{from_item, LogLine, Run, RunStatus, TriggerType};
use crate::ports::{Condition, Index, Item, Query, QueueId, TxOp};

/// The runs-queue message: just the run's id; the run item holds the rest.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunMessage {
    pub run_id: String,
}

/// Writes the run as `queued` and queues it. When this returns Ok both are
/// durable; when it fails neither is left behind (the run is removed again
/// if the queue refuses the message).
pub async fn enqueue(app: &App, run: &Run) -> Result<(), ApiError> {
    enqueue_once(app, run, None).await.map(|_| ())
}

/// [`enqueue`], made idempotent by a dedup key (partition key, expiry):
/// the run and the key are written in one transaction, so of any number of
/// concurrent calls with the same key exactly one creates a run; the others
/// get that run's id. Returns the id of the run the call belongs to.
pub async fn enqueue_once(
    app: &App,
    run: &Run,
    dedup: Option<(String, i64)>,
) -> Result<String, ApiError> {
    let mut ops = vec![TxOp::Put(run.to_item(1), Condition::NotExists)];
    if let Some((pk, expires_at)) = &dedup {
        let item = Item::new(pk, DEDUP_SK, serde_json::json!({ "run_id": run.id }))
            .with_expiry(Some(*expires_at));
        ops.push(TxOp::Put(item, Condition::NotExists));
    }
    match app.items.transact(ops).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) if dedup.is_some() => {
            let pk = &dedup.as_ref().expect("checked").0;
            let original = app
                .items
                .get(pk, DEDUP_SK)
                .await?
                .and_then(|i| i.data["run_id"].as_str().map(str::to_owned))
                .ok_or_else(|| {
                    ApiError::Conflict(
                        "a call with this idempotency key is being processed; retry".into(),
                    )
                })?;
            requeue_if_stranded(app, &original).await?;
            return Ok(original);
        }
        Err(e) => return Err(e.into()),
    }
    let body = serde_json::to_string(&RunMessage {
        run_id: run.id.clone(),
    })
    .expect("serialises");
    if let Err(e) = app.queue.send(QueueId::Runs, &body, Duration::ZERO).await {
        let (pk, sk) = Run::key(&run.id);
        let mut undo = vec![TxOp::Delete {
            pk,
            sk,
            condition: Condition::None,
        }];
        if let Some((dpk, _)) = dedup {
            undo.push(TxOp::Delete {
                pk: dpk,
                sk: DEDUP_SK.into(),
                condition: Condition::None,
            });
        }
        if let Err(cleanup) = app.items.transact(undo).await {
            tracing::error!(run_id = %run.id, error = %cleanup, "could not remove a run whose message was not queued");
        }
        return Err(e.into());
    }
    Ok(run.id.clone())
}

const DEDUP_SK: &str = "DEDUP";

/// How long a queued run may wait before a repeat of its call sends its
/// queue message again.
const STRANDED_AFTER_SECS: i64 = 30;

/// The call that made this run may have stopped between writing it and
/// queueing it (a process killed in between). A repeat of that call gives
/// it its message again: the executor runs a run once however many
/// messages it gets.
async fn requeue_if_stranded(app: &App, run_id: &str) -> Result<(), ApiError> {
    if let Some((run, _)) = load(app, run_id).await? {
        let age = app.clock.now() - run.created_at;
        if run.status == RunStatus::Queued && age.num_seconds() >= STRANDED_AFTER_SECS {
            let body = serde_json::to_string(&RunMessage {
                run_id: run.id.clone(),
            })
            .expect("serialises");
            app.queue.send(QueueId::Runs, &body, Duration::ZERO).await?;
        }
    }
    Ok(())
}

/// A run and its item version, if it exists at all.
pub async fn load(app: &App, run_id: &str) -> Result<Option<(Run, u64)>, ApiError> {
    Ok(crate::model::load(app, run_id, Run::key).await?)
}

/// A run of the workspace; other workspaces' runs are "not found".
pub async fn get(app: &App, workspace_id: &str, run_id: &str) -> Result<Run, ApiError> {
    match load(app, run_id).await? {
        Some((run, _)) if run.workspace_id == workspace_id => Ok(run),
        _ => Err(ApiError::NotFound("run")),
    }
}

#[derive(Debug, Default, Clone)]
pub struct RunFilter {
    pub trigger_type: Option<TriggerType>,
    pub status: Option<RunStatus>,
}

impl RunFilter {
    fn matches(&self, run: &Run) -> bool {
        self.trigger_type.is_none_or(|t| t == run.trigger_type)
            && self.status.is_none_or(|s| s == run.status)
    }
}

/// Pages of the underlying query read for one filtered listing before it
/// returns what it has (with a cursor to go on), so a rare filter value
/// cannot make one request read a whole history.
const MAX_PAGES_PER_LISTING: usize = 20;

/// An agent's runs, newest first, filtered, with cursor paging.
pub async fn list_for_agent(
    app: &App,
    agent_id: &str,
    filter: &RunFilter,
    limit: usize,
    mut cursor: Option<String>,
) -> Result<(Vec<Run>, Option<String>), ApiError> {
    let mut out = Vec::with_capacity(limit);
    for _ in 0..MAX_PAGES_PER_LISTING {
        // Ask only for what is still missing: every item of a page is then
        // either returned or filtered out, so the page's cursor is exact.
        let page = app
            .items
            .query(
                Query::partition(Index::Gsi1, Run::agent_partition(agent_id))
                    .backward()
                    .limit(limit - out.len())
                    .after(cursor.take()),
            )
            .await?;
        for item in &page.items {
            let run: Run = from_item(item)?;
            if filter.matches(&run) {
                out.push(run);
            }
        }
        cursor = page.next_cursor;
        if out.len() >= limit || cursor.is_none() {
            break;
        }
    }
    Ok((out, cursor))
}

/// Appends log lines (each is its own item; at most 100 per transaction).
pub async fn append_logs(app: &App, lines: Vec<LogLine>) -> Result<(), ApiError> {
    let ops: Vec<TxOp> = lines
        .iter()
        .map(|l| TxOp::Put(l.to_item(), Condition::None))
        .collect();
    for chunk in ops.chunks(crate::ports::items::MAX_TX_OPS) {
        app.items.transact(chunk.to_vec()).await?;
    }
    Ok(())
}

/// An agent's log lines: one run's in order, or all runs' newest first.
pub async fn logs(
    app: &App,
    agent_id: &str,
    run_id: Option<&str>,
    limit: usize,
    cursor: Option<String>,
) -> Result<(Vec<LogLine>, Option<String>), ApiError> {
    let mut q = Query::partition(Index::Primary, LogLine::partition(agent_id))
        .limit(limit)
        .after(cursor);
    q = match run_id {
        Some(r) => {
            if !ids::is_plausible_id(r) {
                return Ok((vec![], None));
            }
            q.prefix(format!("{r}#"))
        }
        None => q.backward(),
    };
    Ok(crate::model::page_of(app, q).await?)
}
