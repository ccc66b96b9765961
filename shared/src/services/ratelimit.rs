//! Fixed-window rate limits kept as conditional counters on the item table
//! (one UpdateItem per check), so they hold across any number of processes
//! or Lambda instances. Windows are whole minutes of the injected clock.

use crate::app::App;
use crate::error::{Error, LimitScope, RateState, StoreError};

/// Counts one call against `per_minute` for `scope`/`id` (0 = unlimited):
/// the limit's state, or `RateLimited` when the window is full.
pub async fn hit(
    app: &App,
    scope: LimitScope,
    id: &str,
    per_minute: u32,
) -> Result<Option<RateState>, Error> {
    if per_minute == 0 {
        return Ok(None);
    }
    let now = app.clock.now().timestamp();
    let window = now.div_euclid(60);
    let reset_secs = (60 - now.rem_euclid(60)) as u64;
    match app.repo.count_call(scope, id, window, per_minute).await {
        Ok(count) => Ok(Some(RateState {
            limit: per_minute,
            remaining: per_minute.saturating_sub(u32::try_from(count).unwrap_or(u32::MAX)),
            reset_secs,
        })),
        Err(StoreError::ConditionFailed) => Err(Error::RateLimited {
            scope,
            state: RateState {
                limit: per_minute,
                remaining: 0,
                reset_secs,
            },
        }),
        Err(e) => Err(e.into()),
    }
}
