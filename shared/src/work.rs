//! Queue work: the messages the queues carry, sending them, processing one
//! received message, and the one decision of what to do with it afterwards.
//! The in-process consumer of `hookrun serve` (`crate::worker`) and the
//! Lambda SQS glue (`crate::lambda`) both go through [`process`] and
//! [`settle`]; they differ only in how a finished message is removed (the
//! worker deletes it, Lambda reports it as not failed).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::StoreResult;
use crate::ids::{RunId, ScheduleId};
use crate::ports::{OutboxMessage, QueueId, MAX_DELAY_FOR_QUEUE};
use crate::services::{control, delivery, executor, schedules};
use chrono::{DateTime, Utc};

/// How long a received message stays hidden from other consumers: a
/// run's executor extends it while the agent runs (a lease and a margin);
/// a delivery attempt has its timeout and a minute.
pub fn visibility(app: &App, queue: QueueId) -> Duration {
    match queue {
        QueueId::Runs | QueueId::RunsDlq => executor::visibility(app),
        QueueId::Deliveries | QueueId::DeliveriesDlq => {
            app.settings.delivery_timeout + Duration::from_secs(60)
        }
    }
}

/// Everything a queue can carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Runs queue: execute this run (the run item holds the rest). A
    /// `wake` message only hastens a waiting run whose turn has come (a
    /// slot of its line was given back): it is dropped unless the run is
    /// still queued and can start now, since the run's own message keeps
    /// coming back until the run ends.
    Run { run_id: RunId, wake: bool },
    /// Runs queue: cancel `run_id` as replaced by the newer run `by` of its
    /// concurrency key (written with `by` by the call that made it, so the
    /// trigger function needs no right to cancel).
    Replace { run_id: RunId, by: RunId },
    /// Runs queue: a schedule fires for `scheduled_time` (sent by `hookrun
    /// serve`'s scheduler, or on AWS by EventBridge Scheduler).
    Fire {
        schedule_id: ScheduleId,
        scheduled_time: DateTime<Utc>,
    },
    /// Deliveries queue: attempt this delivery. A `manual` attempt was asked
    /// for by hand: it is made even if the delivery is done, and not retried.
    Delivery { delivery_id: String, manual: bool },
}

/// The runs queue's body: `{"run_id":…}` (and `"wake":true`), or
/// `{"replace":…,"by":…}`.
#[derive(Default, Serialize, Deserialize)]
struct RunBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<RunId>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    wake: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replace: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule_id: Option<ScheduleId>,
    /// RFC 3339 (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scheduled_time: Option<String>,
}

/// The deliveries queue's body: `{"delivery_id":…,"manual":…}`.
#[derive(Serialize, Deserialize)]
struct DeliveryBody {
    delivery_id: String,
    #[serde(default)]
    manual: bool,
}

impl Message {
    pub fn queue(&self) -> QueueId {
        match self {
            Message::Run { .. } | Message::Replace { .. } | Message::Fire { .. } => QueueId::Runs,
            Message::Delivery { .. } => QueueId::Deliveries,
        }
    }

    /// The message body as stored in its queue.
    pub fn encode(&self) -> String {
        let json = match self {
            Message::Run { run_id, wake } => serde_json::to_string(&RunBody {
                run_id: Some(run_id.clone()),
                wake: *wake,
                ..RunBody::default()
            }),
            Message::Replace { run_id, by } => serde_json::to_string(&RunBody {
                replace: Some(run_id.clone()),
                by: Some(by.clone()),
                ..RunBody::default()
            }),
            Message::Fire {
                schedule_id,
                scheduled_time,
            } => serde_json::to_string(&RunBody {
                schedule_id: Some(schedule_id.clone()),
                scheduled_time: Some(crate::clock::rfc3339(*scheduled_time)),
                ..RunBody::default()
            }),
            Message::Delivery {
                delivery_id,
                manual,
            } => serde_json::to_string(&DeliveryBody {
                delivery_id: delivery_id.clone(),
                manual: *manual,
            }),
        };
        json.expect("queue messages serialise")
    }

    /// The message as written with items (the transactional outbox), sent
    /// `delay` after the write (capped at what the queue allows).
    pub fn outbox(&self, delay: Duration) -> OutboxMessage {
        OutboxMessage {
            queue: self.queue(),
            body: self.encode(),
            delay: delay.min(MAX_DELAY_FOR_QUEUE),
        }
    }

    /// A body received from `queue`; Err says why it can never be processed.
    pub fn decode(queue: QueueId, body: &str) -> Result<Message, String> {
        match queue {
            QueueId::Runs => {
                let b = serde_json::from_str::<RunBody>(body)
                    .map_err(|e| format!("malformed runs-queue message: {e}"))?;
                match (b.run_id, b.replace, b.by, b.schedule_id, b.scheduled_time) {
                    (Some(run_id), None, None, None, None) => Ok(Message::Run {
                        run_id,
                        wake: b.wake,
                    }),
                    (None, Some(run_id), Some(by), None, None) => {
                        Ok(Message::Replace { run_id, by })
                    }
                    (None, None, None, Some(schedule_id), Some(at)) => {
                        let scheduled_time = DateTime::parse_from_rfc3339(at.trim())
                            .map_err(|e| {
                                format!("malformed runs-queue message: scheduled_time {at:?}: {e}")
                            })?
                            .with_timezone(&Utc);
                        Ok(Message::Fire {
                            schedule_id,
                            scheduled_time,
                        })
                    }
                    _ => Err(
                        "malformed runs-queue message: none of {run_id}, {replace, by}, \
                              {schedule_id, scheduled_time}"
                            .into(),
                    ),
                }
            }
            QueueId::Deliveries => serde_json::from_str::<DeliveryBody>(body)
                .map(|b| Message::Delivery {
                    delivery_id: b.delivery_id,
                    manual: b.manual,
                })
                .map_err(|e| format!("malformed deliveries-queue message: {e}")),
            QueueId::RunsDlq | QueueId::DeliveriesDlq => Err(format!(
                "{} is a dead-letter queue: nothing processes its messages",
                queue.name()
            )),
        }
    }
}

/// Queues a message, invisible for `delay` (longer waits are capped at what
/// the queue allows; the consumer chains the rest).
pub async fn send(app: &App, msg: &Message, delay: Duration) -> StoreResult<()> {
    app.queue
        .send(msg.queue(), &msg.encode(), delay.min(MAX_DELAY_FOR_QUEUE))
        .await
        .map(|_| ())
}

/// What processing one message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Finished with it (processed, or nothing left to do).
    Done,
    /// Not now, because something failed: look at it again after this long
    /// (the same message; its receive count grows toward the dead-letter
    /// queue).
    RetryAfter(Duration),
    /// Not now, and nothing failed (the workspace's runs are at their cap,
    /// another executor holds the run): a copy is queued with this delay and
    /// this one removed, so waiting never counts toward the dead-letter queue.
    Defer(Duration),
    /// It can never be processed (malformed, names nothing): dead-letter it.
    Poison(String),
}

/// Processes one message received from `queue`; `receipt` lets a long
/// run keep its message hidden while it runs.
pub async fn process(app: &App, queue: QueueId, body: &str, receipt: Option<&str>) -> Outcome {
    match Message::decode(queue, body) {
        Err(reason) => Outcome::Poison(reason),
        Ok(Message::Run { run_id, wake }) => executor::process(app, &run_id, wake, receipt).await,
        Ok(Message::Replace { run_id, by }) => control::replaced(app, &run_id, &by).await,
        Ok(Message::Fire {
            schedule_id,
            scheduled_time,
        }) => schedules::fire(app, &schedule_id, scheduled_time).await,
        Ok(Message::Delivery {
            delivery_id,
            manual,
        }) => delivery::process(app, &delivery_id, manual).await,
    }
}

/// Longest time a retried message is hidden at once (SQS allows 12 h).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 3600);

/// What becomes of a received message once its outcome is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Remove it from its queue (processed, or moved to the dead-letter queue).
    Remove,
    /// Leave it: it reappears when its visibility ends.
    Keep,
}

/// Acts on an outcome: a retry hides the message for its delay, poison is
/// copied to the dead-letter queue. Never fails: what cannot be done now is
/// left for the message's next receive.
pub async fn settle(
    app: &App,
    queue: QueueId,
    receipt: &str,
    body: &str,
    outcome: Outcome,
) -> Settled {
    match outcome {
        Outcome::Done => Settled::Remove,
        Outcome::RetryAfter(delay) => {
            let delay = delay.min(MAX_RETRY_DELAY);
            if let Err(e) = app.queue.change_visibility(queue, receipt, delay).await {
                tracing::warn!(queue = queue.name(), error = %e, "could not delay a retried message");
            }
            Settled::Keep
        }
        Outcome::Defer(delay) => {
            let delay = delay.min(MAX_DELAY_FOR_QUEUE);
            match app.queue.send(queue, body, delay).await {
                Ok(_) => Settled::Remove,
                Err(e) => {
                    tracing::warn!(queue = queue.name(), error = %e, "could not queue a deferred message; delaying it instead");
                    let _ = app.queue.change_visibility(queue, receipt, delay).await;
                    Settled::Keep
                }
            }
        }
        Outcome::Poison(reason) => {
            let Some(dlq) = queue.dead_letter() else {
                tracing::error!(queue = queue.name(), %reason, "unprocessable message on a dead-letter queue; left there");
                return Settled::Keep;
            };
            tracing::error!(queue = queue.name(), %reason, "moving unprocessable message to the dead-letter queue");
            match app.queue.send(dlq, body, Duration::ZERO).await {
                Ok(_) => Settled::Remove,
                Err(e) => {
                    tracing::error!(queue = queue.name(), error = %e, "dead-letter send failed; the queue's redrive policy takes over");
                    Settled::Keep
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_wire_form() {
        let run = Message::Run {
            run_id: RunId::parse("run_1").unwrap(),
            wake: false,
        };
        assert_eq!(run.encode(), r#"{"run_id":"run_1"}"#);
        assert_eq!(Message::decode(QueueId::Runs, &run.encode()).unwrap(), run);
        let wake = Message::Run {
            run_id: RunId::parse("run_1").unwrap(),
            wake: true,
        };
        assert_eq!(wake.encode(), r#"{"run_id":"run_1","wake":true}"#);
        assert_eq!(
            Message::decode(QueueId::Runs, &wake.encode()).unwrap(),
            wake
        );
        let replace = Message::Replace {
            run_id: RunId::parse("run_1").unwrap(),
            by: RunId::parse("run_2").unwrap(),
        };
        assert_eq!(replace.encode(), r#"{"replace":"run_1","by":"run_2"}"#);
        assert_eq!(
            Message::decode(QueueId::Runs, &replace.encode()).unwrap(),
            replace
        );
        assert!(Message::decode(QueueId::Runs, r#"{"replace":"run_1"}"#).is_err());
        // As EventBridge Scheduler sends it.
        let fire = Message::decode(
            QueueId::Runs,
            r#"{"schedule_id":"sch_1","scheduled_time":"2026-12-07T09:00:00Z"}"#,
        )
        .unwrap();
        assert_eq!(
            fire,
            Message::Fire {
                schedule_id: ScheduleId::parse("sch_1").unwrap(),
                scheduled_time: DateTime::parse_from_rfc3339("2026-12-07T09:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            }
        );
        assert_eq!(
            Message::decode(QueueId::Runs, &fire.encode()).unwrap(),
            fire
        );
        assert!(Message::decode(
            QueueId::Runs,
            r#"{"schedule_id":"sch_1","scheduled_time":"9am"}"#
        )
        .is_err());
        assert!(Message::decode(QueueId::Runs, r#"{}"#).is_err());
        let d = Message::Delivery {
            delivery_id: "dlv_1".into(),
            manual: true,
        };
        assert_eq!(d.encode(), r#"{"delivery_id":"dlv_1","manual":true}"#);
        assert_eq!(
            Message::decode(QueueId::Deliveries, r#"{"delivery_id":"dlv_1"}"#).unwrap(),
            Message::Delivery {
                delivery_id: "dlv_1".into(),
                manual: false
            }
        );
    }

    #[test]
    fn bodies_that_cannot_be_processed_say_why() {
        assert!(Message::decode(QueueId::Runs, "nope")
            .unwrap_err()
            .contains("malformed runs-queue message"));
        assert!(Message::decode(QueueId::Runs, r#"{"run_id":"a#b"}"#).is_err());
        assert!(Message::decode(QueueId::RunsDlq, r#"{"run_id":"run_1"}"#)
            .unwrap_err()
            .contains("dead-letter"));
    }
}
