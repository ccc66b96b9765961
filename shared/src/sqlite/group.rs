//! Group commit: writes that arrive together share one transaction and one
//! fsync.
//!
//! Each write is queued, with a channel for its result, to one writer
//! thread. The writer takes every queued write, runs each in a savepoint of
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

/// The writer: a thread that takes the queued writes, as many as are
/// waiting (up to [`MAX_GROUP`]), and commits them together. It ends when
/// the store's last handle is dropped.
pub(super) struct Pending {
    jobs: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    /// How many commits the writer made (tests look at it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(super) commits: Arc<std::sync::atomic::AtomicUsize>,
}

impl Pending {
    pub(super) fn start(conn: Arc<Mutex<Connection>>) -> Self {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let commits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = commits.clone();
        let writer = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                // The first write blocks; the rest are whatever else waits.
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match queue.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    let mut c = conn.lock().unwrap_or_else(|p| p.into_inner());
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    commit_group(&mut c, group);
                }
            })
            .expect("the sqlite writer thread starts");
        Pending {
            jobs: Mutex::new(Some(jobs)),
            writer: Some(writer),
            commits,
        }
    }
}

/// The last handle of the store waits for the writer to finish what was
/// queued and close its connection (which checkpoints the WAL).
impl Drop for Pending {
    fn drop(&mut self) {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// Most writes one transaction takes (the rest wait for the next).
const MAX_GROUP: usize = 512;

/// Runs `f` in the next group transaction; its result once committed.
pub(super) async fn write<T, F>(pending: &Pending, f: F) -> StoreResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
{
    let (done, result) = oneshot::channel();
    let work: Work = Box::new(move |c| f(c).map(|v| Box::new(v) as Output));
    let sent = match pending
        .jobs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        Some(jobs) => jobs.send(Job { work, done }).is_ok(),
        None => false,
    };
    if !sent {
        return Err(StoreError::Backend("the sqlite writer stopped".into()));
    }
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
        let pending = Arc::new(Pending::start(conn.clone()));
        let writes = (0..400).map(|i| {
            let pending = pending.clone();
            tokio::spawn(async move {
                write(&pending, move |c| {
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
        let commits = pending.commits.load(Ordering::Relaxed);
        assert!(commits < 400, "{commits} commits for 400 concurrent writes");
    }
}
