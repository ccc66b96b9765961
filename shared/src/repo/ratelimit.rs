//! Rate-limit counters: a conditional increment per check (failed
//! authentications), an unconditional one per report of admitted calls.

use super::Repo;
use crate::error::{LimitScope, StoreResult};
use crate::model::keys;

impl Repo {
    /// The counter of `scope`/`id` in minute `window` (0 when none).
    pub async fn counter(&self, scope: LimitScope, id: &str, window: i64) -> StoreResult<i64> {
        let (pk, sk) = keys::rate_counter(scope, id, window);
        Ok(self
            .table()
            .get(&pk, &sk)
            .await?
            .and_then(|item| item.data["count"].as_i64())
            .unwrap_or(0))
    }

    /// Adds one to the counter of `scope`/`id` in minute `window` unless it
    /// would pass `max`; the new count, or `ConditionFailed` when full. The
    /// counter expires two minutes after its window.
    pub async fn count_call(
        &self,
        scope: LimitScope,
        id: &str,
        window: i64,
        max: u32,
    ) -> StoreResult<i64> {
        let (pk, sk) = keys::rate_counter(scope, id, window);
        self.table()
            .increment(&pk, &sk, 1, i64::from(max), Some((window + 2) * 60), None)
            .await
    }

    /// Adds `calls` admitted elsewhere to the counter of `scope`/`id` in
    /// minute `window`, whatever it holds; the new total.
    pub async fn add_calls(
        &self,
        scope: LimitScope,
        id: &str,
        window: i64,
        calls: i64,
    ) -> StoreResult<i64> {
        let (pk, sk) = keys::rate_counter(scope, id, window);
        self.table()
            .increment(&pk, &sk, calls, i64::MAX, Some((window + 2) * 60), None)
            .await
    }
}
