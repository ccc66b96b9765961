//! Where a schedule's fires come from, when not from the store itself.
//!
//! `hookrun serve`'s scheduler reads the schedules from the store, so
//! nothing outside needs keeping in step ([`InProcess`]). On AWS each
//! schedule is also an EventBridge Scheduler schedule that sends the fire
//! message; the schedules service keeps it in step with every change, and
//! undoes its own write when the outside one fails.

use async_trait::async_trait;

use crate::error::StoreResult;

/// A schedule as the outside scheduler needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireSpec {
    pub schedule_id: String,
    /// In the outside scheduler's own syntax (`cron(…)`, `rate(…)`).
    pub expression: String,
    /// An IANA zone.
    pub timezone: String,
    pub enabled: bool,
}

#[async_trait]
pub trait FireSource: Send + Sync + 'static {
    /// Creates the schedule's outside counterpart, or replaces it.
    async fn put(&self, spec: &FireSpec) -> StoreResult<()>;
    /// Removes it (nothing happens when there is none).
    async fn remove(&self, schedule_id: &str) -> StoreResult<()>;
    /// Whether fires come from outside (then every schedule is put there).
    fn is_external(&self) -> bool;
}

/// Fires come from `hookrun serve`'s own scheduler: nothing to keep in step.
#[derive(Debug, Default)]
pub struct InProcess;

#[async_trait]
impl FireSource for InProcess {
    async fn put(&self, _spec: &FireSpec) -> StoreResult<()> {
        Ok(())
    }

    async fn remove(&self, _schedule_id: &str) -> StoreResult<()> {
        Ok(())
    }

    fn is_external(&self) -> bool {
        false
    }
}
