//! Run events to subscriptions: one delivery per matching subscription.
//!
//! Delivery ids are derived from (run, subscription, event), and each
//! delivery is created with a conditional put, so emitting an event again
//! (after a crash or a redelivered queue message) creates nothing twice.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::clock::rfc3339;
use crate::error::Error;
use crate::ids::WorkspaceId;
use crate::model::{Delivery, DeliveryStatus, Run, Subscription};
use crate::repo::Repo;
use crate::work::Message;

/// Subscriptions of one workspace read per event at most (pages of 100).
const MAX_SUBSCRIPTIONS: usize = 1000;

/// The payload of a run event (`deployment_id` is the agent id: the
/// compatibility name, docs/ARCHITECTURE.md glossary).
pub fn payload(event: &str, run: &Run, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut data = json!({
        "run_id": run.id,
        "deployment_id": run.agent_id,
        "status": run.status.as_str(),
        "output": run.output,
        "started_at": run.started_at.map(rfc3339),
        "completed_at": run.completed_at.map(rfc3339),
    });
    // Only when the run has one: the seed's payload stays as it was for
    // runs whose agent reports no usage.
    if let Some(usage) = &run.usage {
        data["usage"] = json!(usage);
    }
    if event == "run.failed" {
        data["error"] = json!(run.error);
    }
    if event == "run.cancelled" {
        data["cancelled_at"] = json!(run.control.cancelled_at.map(rfc3339));
        data["cancel_reason"] = json!(run.control.cancel_reason);
    }
    json!({ "event": event, "timestamp": rfc3339(now), "data": data })
}

/// The id of `event`'s delivery of `run_id` to a subscription: derived, so
/// emitting twice creates one delivery.
pub fn delivery_id(run_id: &str, subscription_id: &str, event: &str) -> String {
    let h = Sha256::digest(format!("{run_id}|{subscription_id}|{event}").as_bytes());
    format!("dlv_{}", &hex::encode(h)[..26])
}

/// Creates and queues the deliveries of `event` for `run`. Returns how many
/// subscriptions matched.
pub async fn emit(app: &App, event: &str, run: &Run) -> Result<usize, Error> {
    let now = app.clock.now();
    let body = serde_json::to_string(&payload(event, run, now)).expect("serialises");
    let subscriptions = workspace_subscriptions(app, &run.workspace_id).await?;
    let mut matched = 0;
    for sub in subscriptions
        .iter()
        .filter(|s| s.wants(event, run.environment, &run.agent_id, now))
    {
        matched += 1;
        deliver(app, sub, event, run, &body).await?;
    }
    Ok(matched)
}

/// The workspace's subscriptions (at most [`MAX_SUBSCRIPTIONS`]), read once
/// for every event of its runs within the cache time
/// (`HOOKRUN_TARGET_CACHE_SECONDS`): a run's `run.started` and its terminal
/// event share one read.
async fn workspace_subscriptions(
    app: &App,
    workspace_id: &WorkspaceId,
) -> Result<Arc<Vec<Subscription>>, Error> {
    if let Some(hit) = app.subscriptions.get(workspace_id) {
        return Ok(hit);
    }
    let mut all = Vec::new();
    let mut cursor = None;
    let mut seen = 0;
    loop {
        let query = Repo::gsi_query(Subscription::list_partition(workspace_id), false)
            .limit(100)
            .after(cursor);
        let page = app.repo.page::<Subscription>(query).await?;
        seen += page.data.len() + page.unreadable.len();
        all.extend(page.data);
        match page.next_cursor {
            Some(c) if seen < MAX_SUBSCRIPTIONS => cursor = Some(c),
            _ => break,
        }
    }
    let all = Arc::new(all);
    app.subscriptions.insert(workspace_id.clone(), all.clone());
    Ok(all)
}

async fn deliver(
    app: &App,
    sub: &Subscription,
    event: &str,
    run: &Run,
    body: &str,
) -> Result<(), Error> {
    let now = app.clock.now();
    let delivery = Delivery {
        id: delivery_id(&run.id, &sub.id, event),
        workspace_id: run.workspace_id.clone(),
        subscription_id: sub.id.clone(),
        run_id: run.id.clone(),
        event: event.to_owned(),
        body: body.to_owned(),
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: Some(now),
        last_status_code: None,
        last_error: None,
        created_at: now,
        updated_at: now,
        completed_at: None,
        expires_at: Some(app.retention_expiry()),
        listen: sub.listen.is_some(),
    };
    // The delivery and its first message are written together: emitted
    // before, it exists with its message already sent, and nothing is sent
    // again.
    // A listen session's is no different: its message's turn pushes it to
    // the session's client (`services::listen::push`).
    let messages = vec![Message::Delivery {
        delivery_id: delivery.id.clone(),
        manual: false,
    }
    .outbox(Duration::ZERO)];
    app.repo.create_with_messages(&delivery, messages).await?;
    Ok(())
}
