//! Fixed-window rate limits kept as conditional counters on the item table
//! (one UpdateItem per check), so they hold across any number of processes
//! or Lambda instances. Windows are whole minutes of the injected clock.

use crate::app::App;
use crate::error::{ApiError, StoreError};

/// What a limit allowed: for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

/// Counts one call against `per_minute` for `scope`/`id` (0 = unlimited).
pub async fn hit(
    app: &App,
    scope: &'static str,
    id: &str,
    per_minute: u32,
) -> Result<Option<RateState>, ApiError> {
    if per_minute == 0 {
        return Ok(None);
    }
    let now = app.clock.now().timestamp();
    let window = now.div_euclid(60);
    let reset_secs = (60 - now.rem_euclid(60)) as u64;
    let pk = format!("RL#{scope}#{id}#{window}");
    match app
        .items
        .increment(&pk, "RL", 1, per_minute as i64, Some((window + 2) * 60))
        .await
    {
        Ok(count) => Ok(Some(RateState {
            limit: per_minute,
            remaining: per_minute.saturating_sub(count as u32),
            reset_secs,
        })),
        Err(StoreError::ConditionFailed) => Err(ApiError::RateLimited {
            limit: per_minute,
            reset_secs,
            scope: match scope {
                "ip" => " per source IP",
                "trigger" => " for this trigger",
                "agent" => " for this agent",
                "workspace" => " for this workspace",
                _ => "",
            },
        }),
        Err(e) => Err(e.into()),
    }
}
