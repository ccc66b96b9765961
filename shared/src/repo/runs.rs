//! Runs as stored: the run item with its idempotency key, and log lines.

use super::{create_op, Listing, Repo};
use crate::error::{StoreError, StoreResult};
use crate::ids::{AgentId, RunId, WorkspaceId};
use crate::model::{keys, KeyHold, LogLine, Run};
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
    /// The concurrency key's hold changed since it was read: nothing was
    /// written; read it again.
    Contended,
}

/// A conditional write made with a run, all or nothing: a concurrency
/// key's hold ([`Claim::hold`]), or the schedule that fired it.
#[derive(Debug, Clone)]
pub struct Claim {
    pub op: TxOp,
}

impl Claim {
    /// A concurrency key's hold naming `hold.run_id`, over the one read
    /// (`read`: its version; None: there was none). Each hold starts at a
    /// version of its own (random, as slots do), so a reader's `Version`
    /// condition never matches a hold written again after it read one.
    pub fn hold(hold: &KeyHold, read: Option<u64>, expires_at: Option<i64>) -> Claim {
        let mut item = hold.to_item(expires_at);
        let condition = match read {
            Some(v) => {
                item.version = v + 1;
                Condition::Version(v)
            }
            None => {
                item.version = rand::Rng::gen_range(&mut rand::thread_rng(), 1..(1u64 << 62));
                Condition::NotExists
            }
        };
        Claim {
            op: TxOp::Put(item, condition),
        }
    }
}

/// `q` narrowed to sort keys in `ids`, when given.
fn within(q: Query, ids: Option<(String, String)>) -> Query {
    match ids {
        Some((low, high)) => q.between(low, high),
        None => q,
    }
}

impl Repo {
    /// Writes a new run, its queue message and its idempotency key, all or
    /// nothing: of any number of concurrent calls with the same key exactly
    /// one writes a run, and a written run always reaches the queue.
    pub async fn create_run(
        &self,
        run: &Run,
        dedup: Option<&DedupKey>,
        claim: Option<&Claim>,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<Written> {
        let mut ops = vec![create_op(run)];
        if let Some(c) = claim {
            ops.push(c.op.clone());
        }
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
        match self.table().transact_with_messages(ops, messages).await {
            Ok(()) => Ok(Written::New),
            Err(StoreError::ConditionFailed) if dedup.is_some() || claim.is_some() => {
                let Some(d) = dedup else {
                    return Ok(Written::Contended);
                };
                Ok(match self.dedup_seen(d).await? {
                    Some(seen) => seen,
                    // The key is free: it was the hold that changed.
                    None if claim.is_some() => Written::Contended,
                    None => Written::Unresolved,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// What an idempotency key names now: None when it is not stored,
    /// `Unresolved` when it names no run.
    pub async fn dedup_seen(&self, dedup: &DedupKey) -> StoreResult<Option<Written>> {
        let (pk, sk) = &dedup.key;
        let Some(item) = self.table().get(pk, sk).await? else {
            return Ok(None);
        };
        let Some(run_id) = item.data["run_id"].as_str().and_then(RunId::parse) else {
            return Ok(Some(Written::Unresolved));
        };
        Ok(Some(Written::Repeat {
            run_id,
            body_sha256: item.data["body_sha256"].as_str().map(str::to_owned),
        }))
    }

    /// An agent's runs, newest first, with ids in `ids` (both ends
    /// included) when given, that `keep` accepts.
    pub async fn runs_of_agent(
        &self,
        agent_id: &AgentId,
        ids: Option<(String, String)>,
        limit: usize,
        cursor: Option<String>,
        keep: impl Fn(&Run) -> bool,
    ) -> StoreResult<Listing<Run>> {
        let q = Self::gsi_query(Run::agent_partition(agent_id), true).after(cursor);
        self.page_filtered(within(q, ids), limit, keep).await
    }

    /// A workspace's runs (its runs index, `gsi2`), newest first, as
    /// [`Repo::runs_of_agent`].
    pub async fn runs_of_workspace(
        &self,
        workspace_id: &WorkspaceId,
        ids: Option<(String, String)>,
        limit: usize,
        cursor: Option<String>,
        keep: impl Fn(&Run) -> bool,
    ) -> StoreResult<Listing<Run>> {
        let q = Query::partition(Index::Gsi2, Run::workspace_partition(workspace_id))
            .backward()
            .after(cursor);
        self.page_filtered(within(q, ids), limit, keep).await
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
