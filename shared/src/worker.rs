//! The in-process queue consumers of `hookrun serve`: the runs queue
//! (executor) and the deliveries queue (outgoing webhooks). In AWS the
//! executor and delivery functions are driven by SQS event sources instead;
//! both paths go through `crate::work` (one processing function, one
//! settle decision).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::app::App;
use crate::ports::QueueId;
use crate::work::{self, Settled};

/// Which queue a worker consumes, and how long a received message stays
/// hidden: longer than any processing of it can take, so only a dead
/// worker's message reappears.
#[derive(Clone, Copy, Debug)]
pub enum Work {
    Runs,
    Deliveries,
}

impl Work {
    fn queue(self) -> QueueId {
        match self {
            Work::Runs => QueueId::Runs,
            Work::Deliveries => QueueId::Deliveries,
        }
    }

    fn visibility(self, app: &App) -> Duration {
        crate::work::visibility(app, self.queue())
    }
}

/// How often the queue is looked at when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// How long one receive waits for a message on a queue that can (SQS:
/// six requests a minute per idle queue instead of 120). It is also how
/// long a stop may wait for the receive in flight.
pub const LONG_POLL: Duration = Duration::from_secs(10);

/// Consumes a queue until `shutdown` turns true, then waits up to `drain`
/// for the work in progress. A run cut off by the drain limit keeps its
/// lease and is taken over after a restart once the lease expires; a cut-off
/// delivery attempt is made again.
pub async fn run_worker(
    app: App,
    work: Work,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let concurrency = app.settings.executor_concurrency;
    let permits = Arc::new(Semaphore::new(concurrency));
    let visibility = work.visibility(&app);
    let queue = work.queue();
    let mut tasks = JoinSet::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Some(joined) = tasks.try_join_next() {
            report_panic(queue, joined);
        }
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                joined = tasks.join_next() => {
                    if let Some(joined) = joined {
                        report_panic(queue, joined);
                    }
                }
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let notified = wake.notified();
        let receive = app
            .queue
            .receive_waiting(queue, free.min(10), visibility, LONG_POLL);
        tokio::pin!(receive);
        let received = tokio::select! {
            r = &mut receive => r,
            _ = shutdown.changed() => {
                // A receive in flight is not dropped: the queue may hand it
                // messages even after its caller is gone, and they would
                // stay hidden for their whole visibility timeout. It is let
                // finish, and what it got is made visible again at once.
                if let Ok(messages) = receive.await {
                    for m in messages {
                        let _ = app.queue.change_visibility(queue, &m.receipt, Duration::ZERO).await;
                    }
                }
                continue;
            }
        };
        let messages = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(queue = queue.name(), error = %e, "queue receive failed");
                Vec::new()
            }
        };
        if messages.is_empty() {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(IDLE_POLL) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        for msg in messages {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let app = app.clone();
            tasks.spawn(async move {
                let _permit = permit;
                let outcome = work::process(&app, queue, &msg.body, Some(&msg.receipt)).await;
                if work::settle(&app, queue, &msg.receipt, &msg.body, outcome).await
                    == Settled::Remove
                {
                    if let Err(e) = app.queue.delete(queue, &msg.receipt).await {
                        tracing::warn!(queue = queue.name(), error = %e, "could not delete a settled message; it will be redelivered");
                    }
                }
            });
        }
    }
    if !tasks.is_empty() {
        tracing::info!(
            queue = queue.name(),
            in_progress = tasks.len(),
            "waiting for work in progress"
        );
        let all_done = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(drain, all_done).await.is_err() {
            tracing::warn!("drain time exceeded; unfinished runs resume after their lease expires");
        }
    }
}

/// A task that panicked left its message unsettled: it reappears when its
/// visibility ends and is processed again.
fn report_panic(queue: QueueId, joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!(queue = queue.name(), error = %e, "message processing panicked; the message will be redelivered");
    }
}
