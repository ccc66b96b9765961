//! The in-process queue consumers of `hookrun serve`: the runs queue
//! (executor) and the deliveries queue (outgoing webhooks). In AWS the
//! executor and delivery functions are driven by SQS event sources instead;
//! both paths call the same `process_message` functions.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::app::App;
use crate::model::agent::MAX_TIMEOUT_SECONDS;
use crate::ports::QueueId;
use crate::services::executor::Outcome;
use crate::services::{delivery, executor};

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
        match self {
            Work::Runs => {
                Duration::from_secs(MAX_TIMEOUT_SECONDS)
                    + app.settings.lease_grace()
                    + Duration::from_secs(30)
            }
            Work::Deliveries => {
                Duration::from_secs(app.settings.delivery_timeout_seconds) + Duration::from_secs(60)
            }
        }
    }

    async fn process(self, app: &App, body: &str) -> Outcome {
        match self {
            Work::Runs => executor::process_message(app, body).await,
            Work::Deliveries => delivery::process_message(app, body).await,
        }
    }
}

/// How often the queue is looked at when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Longest time a retried message is hidden at once.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 3600);

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
        while tasks.try_join_next().is_some() {}
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                _ = tasks.join_next() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        }
        let notified = wake.notified();
        let messages = match app.queue.receive(queue, free.min(10), visibility).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "runs queue receive failed");
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
                let outcome = work.process(&app, &msg.body).await;
                settle(&app, queue, &msg.receipt, &msg.body, outcome).await;
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

/// Acts on the executor's verdict for one message.
async fn settle(app: &App, queue: QueueId, receipt: &str, body: &str, outcome: Outcome) {
    let result = match outcome {
        Outcome::Done => app.queue.delete(queue, receipt).await,
        Outcome::RetryAfter(d) => {
            app.queue
                .change_visibility(queue, receipt, d.min(MAX_RETRY_DELAY))
                .await
        }
        Outcome::Poison(reason) => {
            tracing::error!(queue = queue.name(), %reason, "moving unprocessable message to the dead-letter queue");
            match app
                .queue
                .send(queue.dead_letter().unwrap_or(queue), body, Duration::ZERO)
                .await
            {
                Ok(_) => app.queue.delete(queue, receipt).await,
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(queue = queue.name(), error = %e, "could not settle a message; it will be redelivered");
    }
}
