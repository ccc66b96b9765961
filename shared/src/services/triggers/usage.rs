//! How triggers are used: invocation logs and when each was last used.

use crate::app::App;
use crate::error::Error;
use crate::ids::WorkspaceId;
use crate::model::{Invocation, Trigger};
use crate::repo::Listing;

/// A trigger's invocations, newest first.
pub async fn invocations(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    limit: usize,
    cursor: Option<String>,
) -> Result<Listing<Invocation>, Error> {
    let t = app.repo.find::<Trigger>(workspace_id, id).await?;
    Ok(app.repo.invocations(&t.id, limit, cursor).await?)
}

/// Whether this call may be logged one by one: at most
/// [`crate::app::INVOCATIONS_LOGGED_PER_MINUTE`] per trigger and minute in
/// one process; the rest are only counted.
pub fn may_log(app: &App, t: &Trigger) -> bool {
    let minute = app.clock.now().timestamp().div_euclid(60);
    app.invocation_budget.take(&t.id, minute)
}

/// Counts a call that is not logged one by one (best effort).
pub async fn count_rejection(app: &App, t: &Trigger, reason: &str, ip: Option<std::net::IpAddr>) {
    let minute = app.clock.now().timestamp().div_euclid(60);
    let expires_at = app.expiry_after(app.settings.invocation_retention);
    let ip = ip.map(|i| i.to_string());
    if let Err(e) = app
        .repo
        .count_rejection(&t.id, minute, reason, ip.as_deref(), expires_at)
        .await
    {
        tracing::warn!(trigger_id = %t.id, error = %e, "could not count a refused call");
    }
}

/// The latest tallies of calls counted instead of logged, newest first.
pub async fn rejection_tallies(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<Vec<crate::model::RejectionTally>, Error> {
    let t = app.repo.find::<Trigger>(workspace_id, id).await?;
    Ok(app.repo.rejection_tallies(&t.id, 100).await?)
}

/// Records a call of a trigger (best effort: a lost log line never fails
/// the call itself).
pub async fn record_invocation(app: &App, inv: Invocation) {
    if let Err(e) = app.repo.record_invocation(&inv).await {
        tracing::warn!(trigger_id = %inv.trigger_id, error = %e, "could not record an invocation");
    }
}

/// Records that the trigger was used, at most once a minute per trigger and
/// process (so `last_used_at` may lag by up to a minute).
pub async fn touch(app: &App, t: &Trigger) {
    if !app.trigger_use.due(&t.id) {
        return;
    }
    if let Err(e) = app.repo.record_use(&t.id, app.clock.now()).await {
        tracing::debug!(trigger_id = %t.id, error = %e, "last_used_at not recorded");
    }
}

/// Fills in `last_used_at` from its own item.
pub async fn with_last_used(app: &App, mut t: Trigger) -> Result<Trigger, Error> {
    t.last_used_at = app.repo.last_used(&t.id).await?;
    Ok(t)
}

/// [`with_last_used`] for a page of triggers, read concurrently.
pub async fn all_with_last_used(app: &App, list: Vec<Trigger>) -> Result<Vec<Trigger>, Error> {
    futures_util::future::try_join_all(list.into_iter().map(|t| with_last_used(app, t))).await
}
