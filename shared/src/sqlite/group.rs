//! Group commit: writes that arrive together share one transaction and one
//! fsync.
//!
//! Each write is queued with a channel for its result. Whoever next holds
//! the connection takes every queued write, runs each in a savepoint of
//! one IMMEDIATE transaction (a write that fails is rolled back alone, and
//! each sees the ones before it, as if they ran one after the other),
//! commits once, and only then hands out the results. So a caller still
//! learns of its write only once it is durable (`synchronous=FULL`), and
//! under load one fsync covers many calls instead of one each.

use std::any::Any;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use crate::error::{StoreError, StoreResult};

type Output = Box<dyn Any + Send>;
type Work = Box<dyn FnOnce(&Connection) -> StoreResult<Output> + Send>;

struct Job {
    work: Work,
    done: oneshot::Sender<StoreResult<Output>>,
}

/// Writes waiting for the connection, and how many commits took some.
#[derive(Default)]
pub(super) struct Pending(Mutex<Vec<Job>>, std::sync::atomic::AtomicUsize);

/// Most writes one transaction takes (the rest wait for the next).
const MAX_GROUP: usize = 512;

/// Runs `f` in the next group transaction; its result once committed.
pub(super) async fn write<T, F>(
    conn: &Arc<Mutex<Connection>>,
    pending: &Arc<Pending>,
    f: F,
) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    let (done, result) = oneshot::channel();
    let work: Work = Box::new(move |c| f(c).map(|v| Box::new(v) as Output));
    pending
        .0
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Job { work, done });
    let (conn, pending) = (conn.clone(), pending.clone());
    tokio::task::spawn_blocking(move || {
        let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let jobs: Vec<Job> = {
                let mut queued = pending.0.lock().unwrap_or_else(|p| p.into_inner());
                let n = queued.len().min(MAX_GROUP);
                queued.drain(..n).collect()
            };
            if jobs.is_empty() {
                // An earlier holder of the connection took this write.
                return;
            }
            pending.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            commit_group(&mut c, jobs);
        }
    });
    let output = result
        .await
        .map_err(|_| StoreError::Backend("the sqlite writer stopped".into()))??;
    Ok(*output
        .downcast::<T>()
        .expect("a write's result has the type it was queued with"))
}

fn commit_group(c: &mut Connection, jobs: Vec<Job>) {
    let mut tx = match c.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            for job in jobs {
                let _ = job.done.send(Err(backend(&e)));
            }
            return;
        }
    };
    let mut finished = Vec::with_capacity(jobs.len());
    for job in jobs {
        let result = match tx.savepoint() {
            Ok(mut sp) => {
                let r = (job.work)(&sp);
                if r.is_ok() {
                    sp.commit().map_err(|e| backend(&e)).and(r)
                } else {
                    // Undoes this write alone; the others stand.
                    let _ = sp.rollback();
                    r
                }
            }
            Err(e) => Err(backend(&e)),
        };
        finished.push((job.done, result));
    }
    match tx.commit() {
        Ok(()) => {
            for (done, result) in finished {
                let _ = done.send(result);
            }
        }
        Err(e) => {
            for (done, _) in finished {
                let _ = done.send(Err(backend(&e)));
            }
        }
    }
}

fn backend(e: &rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_arriving_together_share_commits_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("t.db")).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY)")
            .unwrap();
        let conn = Arc::new(Mutex::new(c));
        let pending = Arc::new(Pending::default());
        let writes = (0..400).map(|i| {
            let (conn, pending) = (conn.clone(), pending.clone());
            tokio::spawn(async move {
                write(&conn, &pending, move |c| {
                    c.execute("INSERT INTO t (k) VALUES (?1)", [i])?;
                    if i % 3 == 0 {
                        // Fails after writing: its row must not stay.
                        return Err(StoreError::ConditionFailed);
                    }
                    Ok(i)
                })
                .await
            })
        });
        let results = futures_util::future::join_all(writes).await;
        for (i, r) in results.into_iter().enumerate() {
            match r.unwrap() {
                Ok(v) => assert_eq!(v, i as i64),
                Err(e) => {
                    assert_eq!(i % 3, 0, "only the failing writes fail");
                    assert!(matches!(e, StoreError::ConditionFailed));
                }
            }
        }
        let c = conn.lock().unwrap();
        let rows: i64 = c
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let failing: i64 = c
            .query_row("SELECT COUNT(*) FROM t WHERE k % 3 = 0", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 400 - 134, "every successful write, and only those");
        assert_eq!(failing, 0);
        let commits = pending.1.load(Ordering::Relaxed);
        assert!(commits < 400, "{commits} commits for 400 concurrent writes");
    }
}
