//! Over 400 lines: one suite per port operation, kept in one file so every
//! adapter's test file runs the same list.
//!
//! Contract suites for the ports (docs/ARCHITECTURE.md, "Layers"): what every adapter must do.
//!
//! Each suite is a public async function so that every adapter's tests call
//! the very same checks: the SQLite adapters in `tests/contract_sqlite.rs`,
//! the AWS adapters against a local emulator in their own test file. The
//! suites only use keys under the `prefix` they are given, so they can share
//! a table or a queue with other data.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::error::StoreError;
use crate::ports::{
    Condition, Index, Item, ItemTable, Query, Queue, QueueId, SecretStore, SecretVersions, TxOp,
};

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", ulid::Ulid::new())
}

/// Get, put and delete with every kind of condition.
pub async fn items_conditional_writes(t: &dyn ItemTable, prefix: &str) {
    let pk = unique(prefix);
    assert!(
        t.get(&pk, "A").await.unwrap().is_none(),
        "missing item reads as None"
    );

    let item = Item::new(&pk, "A", json!({"n": 1, "s": "x"})).with_gsi1(format!("{pk}#G"), "1");
    t.put(item.clone(), Condition::NotExists).await.unwrap();
    assert_eq!(
        t.get(&pk, "A").await.unwrap(),
        Some(item.clone()),
        "read back as written"
    );

    assert!(
        matches!(
            t.put(item.clone(), Condition::NotExists).await,
            Err(StoreError::ConditionFailed)
        ),
        "NotExists fails on an existing item"
    );
    assert!(
        matches!(
            t.put(Item::new(&pk, "B", json!({})), Condition::Exists)
                .await,
            Err(StoreError::ConditionFailed)
        ),
        "Exists fails on a missing item"
    );
    assert!(
        t.get(&pk, "B").await.unwrap().is_none(),
        "a failed put writes nothing"
    );

    let mut v2 = Item::new(&pk, "A", json!({"n": 2}));
    v2.version = 2;
    assert!(
        matches!(
            t.put(v2.clone(), Condition::Version(7)).await,
            Err(StoreError::ConditionFailed)
        ),
        "a wrong version fails"
    );
    t.put(v2.clone(), Condition::Version(1)).await.unwrap();
    let got = t.get(&pk, "A").await.unwrap().unwrap();
    assert_eq!((got.version, got.data), (2, json!({"n": 2})));
    assert_eq!(
        got.gsi1, None,
        "a put replaces the whole item, GSI keys included"
    );

    assert!(
        matches!(
            t.delete(&pk, "A", Condition::Version(1)).await,
            Err(StoreError::ConditionFailed)
        ),
        "delete with a stale version fails"
    );
    assert!(t.get(&pk, "A").await.unwrap().is_some());
    t.delete(&pk, "A", Condition::Version(2)).await.unwrap();
    assert!(t.get(&pk, "A").await.unwrap().is_none());
    t.delete(&pk, "A", Condition::None).await.unwrap();
    assert!(
        matches!(
            t.delete(&pk, "A", Condition::Exists).await,
            Err(StoreError::ConditionFailed)
        ),
        "delete with Exists fails on a missing item"
    );
}

/// A batch of unconditional puts (more than one BatchWriteItem holds)
/// writes every item, replacing what was there.
pub async fn items_put_batch(t: &dyn ItemTable, prefix: &str) {
    let pk = unique(prefix);
    t.put(
        Item::new(&pk, "k007", json!({"old": true})),
        Condition::None,
    )
    .await
    .unwrap();
    let items: Vec<Item> = (0..60)
        .map(|i| Item::new(&pk, format!("k{i:03}"), json!({ "n": i })))
        .collect();
    t.put_batch(items).await.unwrap();
    let mut seen = Vec::new();
    let mut q = Query::partition(Index::Primary, &pk).limit(100);
    loop {
        let page = t.query(q.clone()).await.unwrap();
        seen.extend(page.items.iter().map(|i| i.data["n"].as_i64().unwrap()));
        match page.next_cursor {
            Some(c) => q = q.after(Some(c)),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..60).collect::<Vec<i64>>(),
        "every item, replaced ones included"
    );
}

/// Items whose TTL passed are gone for readers and conditions.
pub async fn items_ttl(t: &dyn ItemTable, prefix: &str) {
    let pk = unique(prefix);
    let past = Utc::now().timestamp() - 10;
    let future = Utc::now().timestamp() + 3600;
    t.put(
        Item::new(&pk, "old", json!({})).with_expiry(Some(past)),
        Condition::None,
    )
    .await
    .unwrap();
    t.put(
        Item::new(&pk, "new", json!({})).with_expiry(Some(future)),
        Condition::None,
    )
    .await
    .unwrap();
    assert!(
        t.get(&pk, "old").await.unwrap().is_none(),
        "expired item is not returned"
    );
    assert!(t.get(&pk, "new").await.unwrap().is_some());
    let page = t
        .query(Query::partition(Index::Primary, &pk))
        .await
        .unwrap();
    let keys: Vec<_> = page.items.iter().map(|i| i.sk.as_str()).collect();
    assert_eq!(keys, vec!["new"], "queries skip expired items");
    t.put(
        Item::new(&pk, "old", json!({"again": true})),
        Condition::NotExists,
    )
    .await
    .expect("an expired item counts as absent");
}

/// Queries by partition and sort-key prefix, both directions, on the table
/// and the GSI, with cursor paging that visits every item exactly once.
pub async fn items_query_and_paging(t: &dyn ItemTable, prefix: &str) {
    let pk = unique(prefix);
    let gpk = format!("{pk}#IDX");
    for i in 0..7 {
        let item = Item::new(&pk, format!("X#{i:02}"), json!({"i": i}))
            .with_gsi1(&gpk, format!("{:02}", 10 - i))
            .with_gsi2(format!("{gpk}2"), format!("{:02}", 20 + i));
        t.put(item, Condition::None).await.unwrap();
    }
    t.put(Item::new(&pk, "Y#00", json!({})), Condition::None)
        .await
        .unwrap();
    t.put(
        Item::new(format!("{pk}-other"), "X#00", json!({})),
        Condition::None,
    )
    .await
    .unwrap();

    let collect = |q: Query| async move {
        let mut out = vec![];
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = t.query(q.clone().after(cursor)).await.unwrap();
            assert!(
                page.items.len() <= q.limit,
                "a page holds at most `limit` items"
            );
            out.extend(
                page.items
                    .into_iter()
                    .map(|i| i.data["i"].as_i64().unwrap_or(-1)),
            );
            pages += 1;
            assert!(pages < 20, "paging terminates");
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out
    };
    let fwd = collect(Query::partition(Index::Primary, &pk).prefix("X#").limit(3)).await;
    assert_eq!(
        fwd,
        vec![0, 1, 2, 3, 4, 5, 6],
        "prefix query in order, every item once"
    );
    let back = collect(
        Query::partition(Index::Primary, &pk)
            .prefix("X#")
            .backward()
            .limit(2),
    )
    .await;
    assert_eq!(back, vec![6, 5, 4, 3, 2, 1, 0]);
    let all = collect(Query::partition(Index::Primary, &pk).limit(100)).await;
    assert_eq!(all.len(), 8, "whole partition, nothing from another one");
    let gsi = collect(Query::partition(Index::Gsi1, &gpk).limit(4)).await;
    assert_eq!(gsi, vec![6, 5, 4, 3, 2, 1, 0], "GSI sorted by gsi1sk");
    let gsi_back = collect(Query::partition(Index::Gsi1, &gpk).backward().limit(5)).await;
    assert_eq!(gsi_back, vec![0, 1, 2, 3, 4, 5, 6]);
    // The second index, and a sort-key range (both ends included).
    let gpk2 = format!("{gpk}2");
    let gsi2 = collect(Query::partition(Index::Gsi2, &gpk2).backward().limit(3)).await;
    assert_eq!(gsi2, vec![6, 5, 4, 3, 2, 1, 0], "GSI2 sorted by gsi2sk");
    let range = collect(
        Query::partition(Index::Gsi2, &gpk2)
            .between("22", "25")
            .backward()
            .limit(2),
    )
    .await;
    assert_eq!(range, vec![5, 4, 3, 2], "a range, paged");
    let range = collect(
        Query::partition(Index::Primary, &pk)
            .between("X#01", "X#03")
            .limit(10),
    )
    .await;
    assert_eq!(range, vec![1, 2, 3]);
    let stored = t.get(&pk, "X#03").await.unwrap().unwrap();
    assert_eq!(stored.gsi2, Some((gpk2.clone(), "23".to_owned())));
    let none = t
        .query(Query::partition(Index::Primary, &pk).prefix("Z#"))
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());

    assert!(
        matches!(
            t.query(Query::partition(Index::Primary, &pk).after(Some("not-a-cursor!".into())))
                .await,
            Err(StoreError::InvalidCursor)
        ),
        "a cursor we did not hand out is refused"
    );
}

/// Transactions apply every operation or none.
pub async fn items_transactions(t: &dyn ItemTable, prefix: &str) {
    let pk = unique(prefix);
    t.put(Item::new(&pk, "exists", json!({})), Condition::None)
        .await
        .unwrap();
    let failing = vec![
        TxOp::Put(Item::new(&pk, "a", json!({})), Condition::NotExists),
        TxOp::Put(Item::new(&pk, "exists", json!({})), Condition::NotExists),
    ];
    assert!(matches!(
        t.transact(failing).await,
        Err(StoreError::ConditionFailed)
    ));
    assert!(
        t.get(&pk, "a").await.unwrap().is_none(),
        "nothing of a failed transaction is applied"
    );

    let ok = vec![
        TxOp::Put(Item::new(&pk, "a", json!({"k": 1})), Condition::NotExists),
        TxOp::Delete {
            pk: pk.clone(),
            sk: "exists".into(),
            condition: Condition::Exists,
        },
    ];
    t.transact(ok).await.unwrap();
    assert!(t.get(&pk, "a").await.unwrap().is_some());
    assert!(t.get(&pk, "exists").await.unwrap().is_none());

    let too_many: Vec<_> = (0..101)
        .map(|i| TxOp::Put(Item::new(&pk, format!("m{i}"), json!({})), Condition::None))
        .collect();
    assert!(matches!(
        t.transact(too_many).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Atomic counters with a ceiling (rate limits).
pub async fn items_counters(t: &dyn ItemTable, prefix: &str) {
    let pk = unique(prefix);
    let exp = Some(Utc::now().timestamp() + 120);
    assert_eq!(t.increment(&pk, "c", 1, 3, exp, None).await.unwrap(), 1);
    assert_eq!(t.increment(&pk, "c", 1, 3, exp, None).await.unwrap(), 2);
    assert_eq!(t.increment(&pk, "c", 1, 3, exp, None).await.unwrap(), 3);
    assert!(matches!(
        t.increment(&pk, "c", 1, 3, exp, None).await,
        Err(StoreError::ConditionFailed)
    ));
    let item = t.get(&pk, "c").await.unwrap().unwrap();
    assert_eq!(
        item.data["count"],
        json!(3),
        "a refused increment changes nothing"
    );
    assert_eq!(item.expires_at, exp);
    // A note rides beside the count; the latest one wins.
    t.increment(&pk, "n", 1, 100, exp, Some("192.0.2.1"))
        .await
        .unwrap();
    t.increment(&pk, "n", 1, 100, exp, Some("192.0.2.2"))
        .await
        .unwrap();
    let noted = t.get(&pk, "n").await.unwrap().unwrap();
    assert_eq!(noted.data["count"], 2);
    assert_eq!(noted.data["note"], "192.0.2.2");
}

/// Receives until `n` messages arrived or `within` passed (SQS may return
/// fewer messages than are visible on any one call).
/// The transactional outbox: a write with messages delivers them once
/// `deliver` has run (nothing for engines that write the queue in the same
/// transaction, one relay pass for engines that relay a change stream); a
/// write whose condition fails delivers nothing; the messages may ride on a
/// put that replaces an item as well as on one that creates it.
pub async fn items_outbox<F, Fut>(t: &dyn ItemTable, q: &dyn Queue, prefix: &str, deliver: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    use crate::ports::OutboxMessage;
    let pk = format!("{prefix}outbox");
    let msg = |body: &str| OutboxMessage {
        queue: QueueId::Runs,
        body: body.to_owned(),
        delay: Duration::ZERO,
    };
    let item = Item::new(&pk, "a", json!({"n": 1}));
    let dedup = Item::new(&pk, "dedup", json!({}));
    t.transact_with_messages(
        vec![
            TxOp::Put(item.clone(), Condition::NotExists),
            TxOp::Put(dedup.clone(), Condition::NotExists),
        ],
        vec![msg("first")],
    )
    .await
    .unwrap();
    assert!(t.get(&pk, "a").await.unwrap().is_some());
    // A failed condition: neither the write nor the message.
    let err = t
        .transact_with_messages(
            vec![
                TxOp::Put(Item::new(&pk, "b", json!({})), Condition::NotExists),
                TxOp::Put(dedup.clone(), Condition::NotExists),
            ],
            vec![msg("never")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed), "{err:?}");
    assert!(t.get(&pk, "b").await.unwrap().is_none());
    // A replacing put carries its own message; a later plain put none.
    let mut v2 = item.clone();
    v2.version = 2;
    t.transact_with_messages(
        vec![TxOp::Put(v2.clone(), Condition::Version(1))],
        vec![msg("second")],
    )
    .await
    .unwrap();
    let mut v3 = v2.clone();
    v3.version = 3;
    t.put(v3, Condition::Version(2)).await.unwrap();
    deliver().await;
    let got = receive_n(
        q,
        QueueId::Runs,
        2,
        Duration::from_secs(30),
        Duration::from_secs(10),
    )
    .await;
    let mut bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    assert_eq!(bodies, vec!["first", "second"]);
    for m in &got {
        q.delete(QueueId::Runs, &m.receipt).await.unwrap();
    }
    deliver().await;
    let rest = q
        .receive(QueueId::Runs, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(rest.is_empty(), "nothing else was sent: {rest:?}");
}

pub async fn receive_n(
    q: &dyn Queue,
    queue: QueueId,
    n: usize,
    visibility: Duration,
    within: Duration,
) -> Vec<crate::ports::QueueMessage> {
    let deadline = tokio::time::Instant::now() + within;
    let mut out = vec![];
    while out.len() < n && tokio::time::Instant::now() < deadline {
        let got = q.receive(queue, n - out.len(), visibility).await.unwrap();
        if got.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out.extend(got);
    }
    out
}

/// Send, receive, visibility, redelivery, delete, delay; queues are separate.
/// Needs queues that hold no other messages.
pub async fn queue_semantics(q: &dyn Queue) {
    let long = Duration::from_secs(60);
    q.send(QueueId::Runs, r#"{"n":1}"#, Duration::ZERO)
        .await
        .unwrap();
    q.send(QueueId::Deliveries, r#"{"d":1}"#, Duration::ZERO)
        .await
        .unwrap();

    let got = receive_n(q, QueueId::Runs, 1, long, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, r#"{"n":1}"#);
    assert_eq!(got[0].receive_count, 1);
    assert!(
        q.receive(QueueId::Runs, 10, long).await.unwrap().is_empty(),
        "invisible while received"
    );

    q.change_visibility(QueueId::Runs, &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = receive_n(q, QueueId::Runs, 1, long, Duration::from_secs(5)).await;
    assert_eq!(again.len(), 1, "visible again after change_visibility(0)");
    assert_eq!(again[0].id, got[0].id);
    assert_eq!(again[0].receive_count, 2);
    q.delete(QueueId::Runs, &again[0].receipt).await.unwrap();
    q.change_visibility(QueueId::Runs, &again[0].receipt, Duration::ZERO)
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        q.receive(QueueId::Runs, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "deleted for good"
    );

    let d = receive_n(q, QueueId::Deliveries, 1, long, Duration::from_secs(5)).await;
    assert_eq!(d.len(), 1, "each queue holds its own messages");
    assert_eq!(d[0].body, r#"{"d":1}"#);
    q.delete(QueueId::Deliveries, &d[0].receipt).await.unwrap();

    q.send(QueueId::Runs, "later", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        q.receive(QueueId::Runs, 10, long).await.unwrap().is_empty(),
        "delayed message hidden"
    );
    let later = receive_n(q, QueueId::Runs, 1, long, Duration::from_secs(10)).await;
    assert_eq!(later.len(), 1, "delayed message arrives");
    assert_eq!(later[0].body, "later");
    q.delete(QueueId::Runs, &later[0].receipt).await.unwrap();

    q.send(QueueId::Runs, "visibility", Duration::ZERO)
        .await
        .unwrap();
    let first = receive_n(
        q,
        QueueId::Runs,
        1,
        Duration::from_secs(1),
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(first.len(), 1);
    let second = receive_n(q, QueueId::Runs, 1, long, Duration::from_secs(10)).await;
    assert_eq!(
        second.len(),
        1,
        "an expired visibility timeout makes it visible again"
    );
    assert_eq!(
        (second[0].id.as_str(), second[0].receive_count),
        (first[0].id.as_str(), 2)
    );
    q.delete(QueueId::Runs, &second[0].receipt).await.unwrap();
}

/// A message received `max_receives` times without being deleted moves to
/// the dead-letter queue. Needs empty queues.
pub async fn queue_dead_letter(q: &dyn Queue, max_receives: u32) {
    q.send(QueueId::Runs, "poison", Duration::ZERO)
        .await
        .unwrap();
    for i in 1..=max_receives {
        let got = receive_n(q, QueueId::Runs, 1, Duration::ZERO, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1, "receive {i} of {max_receives}");
        assert_eq!(got[0].receive_count, i);
    }
    let mut moved = vec![];
    for _ in 0..50 {
        // This receive is the one past the limit: it redrives the message.
        let left = q.receive(QueueId::Runs, 10, Duration::ZERO).await.unwrap();
        assert!(left.is_empty(), "no receive beyond max_receives");
        moved = q
            .receive(QueueId::RunsDlq, 10, Duration::from_secs(60))
            .await
            .unwrap();
        if !moved.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(moved.len(), 1, "the message reached the dead-letter queue");
    assert_eq!(moved[0].body, "poison");
    q.delete(QueueId::RunsDlq, &moved[0].receipt).await.unwrap();
    assert!(
        q.receive(QueueId::Runs, 10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "and left the work queue"
    );
}

/// Create, read, replace and delete secrets, rotation state included.
pub async fn secrets_roundtrip(s: &dyn SecretStore, prefix: &str) {
    let name = format!("{}/agents/a", unique(prefix));
    assert!(s.get(&name).await.unwrap().is_none());
    s.put(&name, &SecretVersions::new("one".into()))
        .await
        .unwrap();
    assert_eq!(s.get(&name).await.unwrap().unwrap().current, "one");

    let until = Utc::now() + chrono::Duration::hours(1);
    let rotated = SecretVersions {
        current: "two".into(),
        previous: Some("one".into()),
        previous_valid_until: Some(until),
    };
    s.put(&name, &rotated).await.unwrap();
    let got = s.get(&name).await.unwrap().unwrap();
    assert_eq!(got.current, "two");
    assert_eq!(got.previous.as_deref(), Some("one"));
    assert_eq!(
        got.valid_at(Utc::now()).collect::<Vec<_>>(),
        vec!["two", "one"]
    );
    assert_eq!(
        got.valid_at(until + chrono::Duration::seconds(1))
            .collect::<Vec<_>>(),
        vec!["two"]
    );

    s.delete(&name).await.unwrap();
    assert!(s.get(&name).await.unwrap().is_none());
    s.delete(&name).await.unwrap();
}

/// The master key exists, has a current value, and is stable across reads.
pub async fn secrets_master_keys(s: &dyn SecretStore) {
    let first = s.master_keys().await.unwrap();
    assert!(!first.is_empty(), "a current master key");
    assert!(first[0].len() >= 32, "a strong master key");
    assert_eq!(s.master_keys().await.unwrap(), first, "stable across reads");
}
