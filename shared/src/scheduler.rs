//! `hookrun serve`'s scheduler: sleeps until the earliest next fire of the
//! enabled schedules (an index sorted by it, `Schedule::DUE_PARTITION`),
//! or until a schedule changes, then hands each due schedule to
//! [`schedules::tick`], which queues its fire and its next fire time in
//! one write. No polling while idle; schedules live in the store, so a
//! restart picks up where it stopped (missed fires follow `catch_up`).

use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::services::schedules;

/// Due schedules handled in one pass.
const BATCH: usize = 100;
/// Longest sleep: the next fire is looked at again at least this often
/// (a change made by another process is not announced here).
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// Shortest sleep between two looks.
const SHORTEST_SLEEP: Duration = Duration::from_millis(200);
/// How long to wait after the store failed.
const BACKOFF: Duration = Duration::from_secs(5);

/// Runs until `shutdown` turns true.
pub async fn run_scheduler(app: App, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let changed = app.schedules_changed.notified();
        let now = app.clock.now();
        let wait = match schedules::due(&app, now, BATCH).await {
            Ok((due, _)) if !due.is_empty() => {
                for s in due {
                    let id = s.id.clone();
                    if let Err(e) = schedules::tick(&app, s, now).await {
                        tracing::warn!(schedule_id = %id, error = %e, "a due schedule could not be handled; trying again");
                    }
                }
                // Their next fires may be sooner than what is left.
                continue;
            }
            // (An index that still shows a handled fire as next gives a
            // time passed: wait a moment for it rather than spin.)
            Ok((_, next)) => next
                .map(|at| (at - app.clock.now()).to_std().unwrap_or_default())
                .unwrap_or(LONGEST_SLEEP)
                .clamp(SHORTEST_SLEEP, LONGEST_SLEEP),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the due schedules; trying again");
                BACKOFF
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = changed => {}
            _ = shutdown.changed() => {}
        }
    }
}
