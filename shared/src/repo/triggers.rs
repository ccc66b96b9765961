//! Triggers as stored: the trigger item, the copy under its token's hash,
//! the agent-route pointer, the last-use item and invocation logs.

use chrono::{DateTime, Utc};

use super::{create_op, remove_op, save_op, Listing, Repo, Versioned};
use crate::error::StoreResult;
use crate::ids::{AgentId, TriggerId, WorkspaceId};
use crate::model::{from_item, Invocation, Trigger};
use crate::ports::{Condition, Index, Item, Query, TxOp};

impl Repo {
    /// Creates the trigger, its token item and (with `agent_route`) its
    /// agent-route pointer in one transaction; `ConditionFailed` when the
    /// agent already has a route trigger.
    pub async fn create_trigger(&self, t: &Trigger) -> StoreResult<()> {
        let mut ops = vec![
            create_op(t),
            TxOp::Put(t.token_item(), Condition::NotExists),
        ];
        if t.agent_route {
            ops.push(TxOp::Put(t.agent_route_item(), Condition::NotExists));
        }
        self.transact(ops).await
    }

    /// Saves a changed trigger with its token copy, moving the token and
    /// the agent-route pointer if they changed (`old` is the trigger as it
    /// was read). `ConditionFailed` when the trigger changed meanwhile or
    /// the agent already has another route trigger.
    pub async fn save_trigger(&self, v: &mut Versioned<Trigger>, old: &Trigger) -> StoreResult<()> {
        let mut ops = vec![save_op(v), TxOp::Put(v.token_item(), Condition::None)];
        if old.token_hash != v.token_hash {
            ops.push(remove_op(Trigger::token_key(&old.token_hash)));
        }
        match (old.agent_route, v.agent_route) {
            (false, true) => ops.push(TxOp::Put(v.agent_route_item(), Condition::NotExists)),
            (true, false) => ops.push(remove_op(Trigger::agent_route_key(&old.agent_id))),
            _ => {}
        }
        self.transact(ops).await?;
        v.saved();
        Ok(())
    }

    /// Deletes the trigger (if unchanged), its token and its route pointer.
    pub async fn delete_trigger(&self, v: &Versioned<Trigger>) -> StoreResult<()> {
        let mut ops = vec![
            super::delete_op(v),
            remove_op(Trigger::token_key(&v.token_hash)),
        ];
        if v.agent_route {
            ops.push(remove_op(Trigger::agent_route_key(&v.agent_id)));
        }
        self.transact(ops).await
    }

    /// The trigger a token's hash leads to (one GetItem).
    pub async fn trigger_by_token_hash(&self, hash: &str) -> StoreResult<Option<Trigger>> {
        let (pk, sk) = Trigger::token_key(hash);
        match self.table().get(&pk, &sk).await? {
            Some(item) => Ok(Some(from_item(&item)?)),
            None => Ok(None),
        }
    }

    /// The id of the trigger that answers the agent's source-validated route.
    pub async fn agent_route(&self, agent_id: &AgentId) -> StoreResult<Option<TriggerId>> {
        let (pk, sk) = Trigger::agent_route_key(agent_id);
        Ok(self
            .table()
            .get(&pk, &sk)
            .await?
            .and_then(|item| item.data["trigger_id"].as_str().and_then(TriggerId::parse)))
    }

    /// A workspace's triggers in creation order, optionally one agent's.
    pub async fn triggers(
        &self,
        workspace_id: &WorkspaceId,
        agent_id: Option<&AgentId>,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Listing<Trigger>> {
        let q = Self::gsi_query(Trigger::list_partition(workspace_id), false).after(cursor);
        self.page_filtered(q, limit, |t: &Trigger| {
            agent_id.is_none_or(|a| *a == t.agent_id)
        })
        .await
    }

    /// When the trigger was last used, if it was.
    pub async fn last_used(&self, id: &TriggerId) -> StoreResult<Option<DateTime<Utc>>> {
        let (pk, sk) = Trigger::usage_key(id);
        Ok(self
            .table()
            .get(&pk, &sk)
            .await?
            .and_then(|item| item.data["last_used_at"].as_str()?.parse().ok()))
    }

    /// Records that the trigger was used at `at`.
    pub async fn record_use(&self, id: &TriggerId, at: DateTime<Utc>) -> StoreResult<()> {
        let (pk, sk) = Trigger::usage_key(id);
        let item = Item::new(
            pk,
            sk,
            serde_json::json!({ "last_used_at": crate::clock::rfc3339(at) }),
        );
        self.table().put(item, Condition::None).await
    }

    /// Counts a call refused before it authenticated: one conditional
    /// counter per trigger, minute and reason, holding the latest source.
    pub async fn count_rejection(
        &self,
        id: &TriggerId,
        minute: i64,
        reason: &str,
        source_ip: Option<&str>,
        expires_at: i64,
    ) -> StoreResult<()> {
        let pk = Invocation::rejection_partition(id);
        let sk = Invocation::rejection_sort_key(minute, reason);
        self.table()
            .increment(&pk, &sk, 1, i64::MAX, Some(expires_at), source_ip)
            .await
            .map(|_| ())
    }

    /// The latest tallies of refused calls, newest minute first.
    pub async fn rejection_tallies(
        &self,
        id: &TriggerId,
        limit: usize,
    ) -> StoreResult<Vec<crate::model::RejectionTally>> {
        let page = self
            .table()
            .query(
                Query::partition(Index::Primary, Invocation::rejection_partition(id))
                    .backward()
                    .limit(limit),
            )
            .await?;
        Ok(page
            .items
            .iter()
            .filter_map(|item| {
                let (minute, reason) = item.sk.split_once('#')?;
                let minute: i64 = minute.parse().ok()?;
                Some(crate::model::RejectionTally {
                    minute: DateTime::from_timestamp(minute * 60, 0)?,
                    reason: reason.to_owned(),
                    count: item.data["count"].as_u64().unwrap_or(0),
                    last_source_ip: item.data["note"].as_str().map(str::to_owned),
                })
            })
            .collect())
    }

    pub async fn record_invocation(&self, inv: &Invocation) -> StoreResult<()> {
        self.table().put(inv.to_item(), Condition::None).await
    }

    /// A trigger's invocations, newest first.
    pub async fn invocations(
        &self,
        id: &TriggerId,
        limit: usize,
        cursor: Option<String>,
    ) -> StoreResult<Listing<Invocation>> {
        self.page(
            Query::partition(Index::Primary, Invocation::partition(id))
                .backward()
                .limit(limit)
                .after(cursor),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Record;

    #[test]
    fn keys_stay_as_stored() {
        assert_eq!(Trigger::key_for("trg_1").0, "TRG#trg_1");
        assert_eq!(Trigger::token_key("ab").0, "TOKEN#ab");
        assert_eq!(Trigger::usage_key("trg_1").0, "TRGUSED#trg_1");
        assert_eq!(Trigger::agent_route_key("agt_1").0, "AGENTROUTE#agt_1");
    }
}
