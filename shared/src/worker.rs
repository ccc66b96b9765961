//! The in-process consumer of the runs queue, for `hookrun serve` (in AWS
//! the executor function is driven by the SQS event source instead; both
//! call [`executor::process_message`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::app::App;
use crate::model::agent::MAX_TIMEOUT_SECONDS;
use crate::ports::QueueId;
use crate::services::executor::{self, Outcome};

/// How often the queue is looked at when nothing wakes the worker.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// Longest time a retried message is hidden at once.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(12 * 3600);

/// Consumes the runs queue until `shutdown` turns true, then waits up to
/// `drain` for the runs in progress. A run cut off by the drain limit keeps
/// its lease and is taken over after a restart once the lease expires.
pub async fn run_worker(
    app: App,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) {
    let concurrency = app.settings.executor_concurrency;
    let permits = Arc::new(Semaphore::new(concurrency));
    // A received message stays hidden for longer than any run can take
    // (timeout + lease grace), so only a dead executor's message reappears.
    let visibility = Duration::from_secs(MAX_TIMEOUT_SECONDS)
        + app.settings.lease_grace()
        + Duration::from_secs(30);
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
        let messages = match app
            .queue
            .receive(QueueId::Runs, free.min(10), visibility)
            .await
        {
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
                let outcome = executor::process_message(&app, &msg.body).await;
                settle(&app, &msg.receipt, &msg.body, outcome).await;
            });
        }
    }
    if !tasks.is_empty() {
        tracing::info!(in_progress = tasks.len(), "waiting for runs in progress");
        let all_done = async { while tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(drain, all_done).await.is_err() {
            tracing::warn!("drain time exceeded; unfinished runs resume after their lease expires");
        }
    }
}

/// Acts on the executor's verdict for one message.
async fn settle(app: &App, receipt: &str, body: &str, outcome: Outcome) {
    let result = match outcome {
        Outcome::Done => app.queue.delete(QueueId::Runs, receipt).await,
        Outcome::RetryAfter(d) => {
            app.queue
                .change_visibility(QueueId::Runs, receipt, d.min(MAX_RETRY_DELAY))
                .await
        }
        Outcome::Poison(reason) => {
            tracing::error!(%reason, "moving unprocessable message to the dead-letter queue");
            match app.queue.send(QueueId::RunsDlq, body, Duration::ZERO).await {
                Ok(_) => app.queue.delete(QueueId::Runs, receipt).await,
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not settle a runs-queue message; it will be redelivered");
    }
}
