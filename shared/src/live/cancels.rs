//! Cancellations within one process: the executor watches the runs it is
//! running here, and a cancel made in the same process (`hookrun serve`,
//! where the API and the executor share an `App`) stops the runner at once.
//! Across processes (the AWS functions) the executor learns of a cancel
//! from the run item it reads at every lease renewal instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::ids::RunId;

#[derive(Default)]
pub struct Cancels {
    running: Mutex<HashMap<RunId, watch::Sender<bool>>>,
}

/// A run being watched; dropping it stops the watch.
pub struct CancelWatch {
    cancels: Arc<Cancels>,
    run_id: RunId,
    rx: watch::Receiver<bool>,
}

impl Cancels {
    /// Watches `run_id` (an executor about to run it).
    pub fn watch(self: &Arc<Self>, run_id: &RunId) -> CancelWatch {
        let (tx, rx) = watch::channel(false);
        self.lock().insert(run_id.clone(), tx);
        CancelWatch {
            cancels: self.clone(),
            run_id: run_id.clone(),
            rx,
        }
    }

    /// Tells this process's executor of `run_id`, if it runs it, that the
    /// run was cancelled (after the cancel is stored).
    pub fn signal(&self, run_id: &RunId) {
        if let Some(tx) = self.lock().get(run_id) {
            let _ = tx.send(true);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, watch::Sender<bool>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CancelWatch {
    /// Resolves once the run is cancelled here (never, otherwise).
    pub async fn cancelled(&mut self) {
        if self.rx.wait_for(|c| *c).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for CancelWatch {
    fn drop(&mut self) {
        let mut running = self.cancels.lock();
        // Only this watch's entry (a later attempt here has its own).
        if running
            .get(&self.run_id)
            .is_some_and(|tx| tx.subscribe().same_channel(&self.rx))
        {
            running.remove(&self.run_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_signal_reaches_the_watch_of_its_run_only() {
        let cancels = Arc::new(Cancels::default());
        let (a, b) = (RunId::generate(), RunId::generate());
        let mut wa = cancels.watch(&a);
        let mut wb = cancels.watch(&b);
        cancels.signal(&a);
        tokio::time::timeout(std::time::Duration::from_secs(1), wa.cancelled())
            .await
            .expect("a is cancelled");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), wb.cancelled())
                .await
                .is_err(),
            "b is not"
        );
        drop(wa);
        assert_eq!(cancels.lock().len(), 1);
        drop(wb);
        assert!(cancels.lock().is_empty());
    }
}
