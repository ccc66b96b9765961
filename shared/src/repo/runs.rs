//! Runs as stored: the run item with its idempotency key, and log lines.

use super::{create_op, Listing, Repo};
use crate::error::{StoreError, StoreResult};
use crate::ids::{AgentId, RunId};
use crate::model::{keys, LogLine, Run};
use crate::ports::{Condition, Index, Item, OutboxMessage, Query, TxOp};

/// An idempotency key to write with a run: where, until when, and the
/// SHA-256 of the body it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupKey {
    pub key: crate::model::Key,
    /// Unix seconds.
    pub expires_at: i64,
    pub body_sha256: String,
}

/// What writing a run with an idempotency key came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    /// The run (and its key) were written.
    New,
    /// The key was there before: the run the first call made, and the hash
    /// of that call's body (absent on keys written before it was kept).
    Repeat {
        run_id: RunId,
        body_sha256: Option<String>,
    },
    /// The key was there, but it names no run yet (a concurrent first call
    /// is between its two steps, or the key is corrupt).
    Unresolved,
}

impl Repo {
    /// Writes a new run, its queue message and its idempotency key, all or
    /// nothing: of any number of concurrent calls with the same key exactly
    /// one writes a run, and a written run always reaches the queue.
    pub async fn create_run(
        &self,
        run: &Run,
        dedup: Option<&DedupKey>,
        message: OutboxMessage,
    ) -> StoreResult<Written> {
        let mut ops = vec![create_op(run)];
        if let Some(d) = dedup {
            let (pk, sk) = d.key.clone();
            let item = Item::new(
                pk,
                sk,
                serde_json::json!({ "run_id": run.id, "body_sha256": d.body_sha256 }),
            )
            .with_expiry(Some(d.expires_at));
            ops.push(TxOp::Put(item, Condition::NotExists));
        }
        match self
            .table()
            .transact_with_messages(ops, vec![message])
            .await
        {
            Ok(()) => Ok(Written::New),
            Err(StoreError::ConditionFailed) if dedup.is_some() => {
                let (pk, sk) = &dedup.expect("checked").key;
                let Some(item) = self.table().get(pk, sk).await? else {
                    return Ok(Written::Unresolved);
                };
                let Some(run_id) = item.data["run_id"].as_str().and_then(RunId::parse) else {
                    return Ok(Written::Unresolved);
                };
                Ok(Written::Repeat {
                    run_id,
                    body_sha256: item.data["body_sha256"].as_str().map(str::to_owned),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// An agent's runs, newest first, that `keep` accepts.
    pub async fn runs_of_agent(
        &self,
        agent_id: &AgentId,
        limit: usize,
        cursor: Option<String>,
        keep: impl Fn(&Run) -> bool,
    ) -> StoreResult<Listing<Run>> {
        let q = Self::gsi_query(Run::agent_partition(agent_id), true).after(cursor);
        self.page_filtered(q, limit, keep).await
    }

    /// Appends log lines (each is its own item), batched without a
    /// transaction: each line is whole on its own.
    pub async fn append_logs(&self, lines: &[LogLine]) -> StoreResult<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.table()
            .put_batch(lines.iter().map(LogLine::to_item).collect())
            .await
    }

    /// An agent's log lines: one run's in order, or all runs' newest first.
    pub async fn logs(
        &self,
        agent_id: &AgentId,
        run_id: Option<&RunId>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Listing<LogLine>> {
        let q = Query::partition(Index::Primary, LogLine::partition(agent_id))
            .limit(limit)
            .after(cursor);
        let q = match run_id {
            Some(r) => q.prefix(LogLine::run_prefix(r)),
            None => q.backward(),
        };
        self.page(q).await
    }
}

/// The key under which an idempotency key is kept for a target, with the
/// hash of the body it came with.
pub fn dedup_key(target: &str, presented: &str, expires_at: i64, body: &[u8]) -> DedupKey {
    use sha2::{Digest, Sha256};
    DedupKey {
        key: keys::dedup(target, &crate::ids::sha256_hex(presented)),
        expires_at,
        body_sha256: hex::encode(Sha256::digest(body)),
    }
}
