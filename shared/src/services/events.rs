//! Run events to subscriptions: one delivery per matching subscription.
//!
//! Delivery ids are derived from (run, subscription, event), and each
//! delivery is created with a conditional put, so emitting an event again
//! (after a crash or a redelivered queue message) creates nothing twice.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::clock::rfc3339;
use crate::error::{ApiError, StoreError};
use crate::model::{from_item, Delivery, DeliveryStatus, Run, Subscription};
use crate::ports::{Condition, Index, Query, QueueId};
use crate::services::delivery::DeliveryMessage;

/// How long a never-attempted delivery may wait before a re-emit sends its
/// message again (a fresh one's message is still in the queue).
const STRANDED_AFTER_SECS: i64 = 60;

/// Subscriptions of one workspace read per event at most (pages of 100).
const MAX_SUBSCRIPTIONS: usize = 1000;

/// The seed 001 payload of a run event.
pub fn payload(event: &str, run: &Run, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut data = json!({
        "run_id": run.id,
        "deployment_id": run.agent_id,
        "status": run.status.as_str(),
        "output": run.output,
        "started_at": run.started_at.map(rfc3339),
        "completed_at": run.completed_at.map(rfc3339),
    });
    if event == "run.failed" {
        data["error"] = json!(run.error);
    }
    json!({ "event": event, "timestamp": rfc3339(now), "data": data })
}

fn delivery_id(run_id: &str, subscription_id: &str, event: &str) -> String {
    let h = Sha256::digest(format!("{run_id}|{subscription_id}|{event}").as_bytes());
    format!("dlv_{}", &hex::encode(h)[..26])
}

/// Creates and queues the deliveries of `event` for `run`. Returns how many
/// subscriptions matched.
pub async fn emit(app: &App, event: &str, run: &Run) -> Result<usize, ApiError> {
    let mut matched = 0;
    let mut cursor = None;
    let mut seen = 0;
    let now = app.clock.now();
    let body = serde_json::to_string(&payload(event, run, now)).expect("serialises");
    loop {
        let page = app
            .items
            .query(
                Query::partition(Index::Gsi1, Subscription::list_partition(&run.workspace_id))
                    .limit(100)
                    .after(cursor),
            )
            .await?;
        seen += page.items.len();
        for item in &page.items {
            let sub: Subscription = from_item(item)?;
            if sub.wants(event, &run.environment, &run.agent_id) {
                matched += 1;
                deliver(app, &sub, event, run, &body).await?;
            }
        }
        match page.next_cursor {
            Some(c) if seen < MAX_SUBSCRIPTIONS => cursor = Some(c),
            _ => break,
        }
    }
    Ok(matched)
}

async fn deliver(
    app: &App,
    sub: &Subscription,
    event: &str,
    run: &Run,
    body: &str,
) -> Result<(), ApiError> {
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
    };
    match app
        .items
        .put(delivery.to_item(1), Condition::NotExists)
        .await
    {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => {
            // Emitted before. Queue it again only if it never got going (the
            // earlier emit may have stopped between the put and the send).
            let (pk, sk) = Delivery::key(&delivery.id);
            let existing: Option<Delivery> = app
                .items
                .get(&pk, &sk)
                .await?
                .map(|i| from_item(&i))
                .transpose()?;
            let stranded = matches!(&existing, Some(d) if d.status == DeliveryStatus::Pending
                && d.attempts == 0
                && now - d.updated_at >= chrono::Duration::seconds(STRANDED_AFTER_SECS));
            if !stranded {
                return Ok(());
            }
        }
        Err(e) => return Err(e.into()),
    }
    let msg = DeliveryMessage {
        delivery_id: delivery.id,
        manual: false,
    };
    app.queue
        .send(
            QueueId::Deliveries,
            &serde_json::to_string(&msg).expect("serialises"),
            Duration::ZERO,
        )
        .await?;
    Ok(())
}
