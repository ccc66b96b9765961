//! The port contract suites on the embedded SQLite adapters.

use hookrun_core::contract;
use hookrun_core::sqlite::SqliteStore;

fn store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (SqliteStore::open_dir(dir.path()).unwrap(), dir)
}

#[tokio::test]
async fn items_conditional_writes() {
    let (s, _d) = store();
    contract::items_conditional_writes(&s, "t-").await;
}

#[tokio::test]
async fn items_put_batch() {
    let (s, _d) = store();
    contract::items_put_batch(&s, "t-").await;
}

#[tokio::test]
async fn items_ttl() {
    let (s, _d) = store();
    contract::items_ttl(&s, "t-").await;
}

#[tokio::test]
async fn items_query_and_paging() {
    let (s, _d) = store();
    contract::items_query_and_paging(&s, "t-").await;
}

#[tokio::test]
async fn items_transactions() {
    let (s, _d) = store();
    contract::items_transactions(&s, "t-").await;
}

#[tokio::test]
async fn items_counters() {
    let (s, _d) = store();
    contract::items_counters(&s, "t-").await;
}

#[tokio::test]
async fn items_outbox() {
    let (s, _d) = store();
    // The queue rows are written in the items' transaction: nothing to relay.
    contract::items_outbox(&s, &s, "t-", || async {}).await;
}

#[tokio::test]
async fn queue_semantics() {
    let (s, _d) = store();
    contract::queue_semantics(&s).await;
}

#[tokio::test]
async fn queue_dead_letter() {
    let (s, _d) = store();
    let s = s.with_max_receives(3);
    contract::queue_dead_letter(&s, 3).await;
}

#[tokio::test]
async fn secrets_roundtrip() {
    let (s, _d) = store();
    contract::secrets_roundtrip(&s, "t-").await;
}

/// The queue survives a reopen of the database: what was sent and not
/// deleted is still there (the basis of "stopped and started, it loses
/// nothing").
#[tokio::test]
async fn queue_is_durable_across_reopen() {
    use hookrun_core::ports::{Queue, QueueId};
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    {
        let s = SqliteStore::open_dir(dir.path()).unwrap();
        s.send(QueueId::Runs, "kept", Duration::ZERO).await.unwrap();
    }
    let s = SqliteStore::open_dir(dir.path()).unwrap();
    let got = s
        .receive(QueueId::Runs, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, "kept");
}

#[tokio::test]
async fn secrets_master_keys() {
    let (s, _d) = store();
    contract::secrets_master_keys(&s).await;
}
