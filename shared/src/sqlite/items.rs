//! The item-table port on SQLite: one row per item, keys and TTL as columns,
//! the document as JSON text.

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::SqliteStore;
use crate::error::{StoreError, StoreResult};
use crate::ports::items::{
    Condition, Index, Item, ItemTable, OutboxMessage, Page, Query, TxOp, MAX_TX_OPS,
};

/// Where the previous page stopped: the last item's keys (DynamoDB's
/// LastEvaluatedKey), encoded as base64url JSON.
#[derive(Serialize, Deserialize)]
struct Cursor {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsk: Option<String>,
}

fn encode_cursor(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).expect("cursor serialises"))
}

fn decode_cursor(s: &str) -> StoreResult<Cursor> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| StoreError::InvalidCursor)?;
    serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)
}

/// Sort keys sharing `prefix` lie in `[prefix, prefix + U+10FFFF)` under
/// SQLite's byte-wise collation.
fn prefix_upper(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

const COLUMNS: &str = "pk, sk, gsi1pk, gsi1sk, expires_at, version, data, gsi2pk, gsi2sk";

fn row_to_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Item, String)> {
    let gsi1pk: Option<String> = row.get(2)?;
    let gsi1sk: Option<String> = row.get(3)?;
    let data: String = row.get(6)?;
    let gsi2pk: Option<String> = row.get(7)?;
    let gsi2sk: Option<String> = row.get(8)?;
    Ok((
        Item {
            pk: row.get(0)?,
            sk: row.get(1)?,
            gsi1: gsi1pk.zip(gsi1sk),
            gsi2: gsi2pk.zip(gsi2sk),
            expires_at: row.get(4)?,
            version: row.get::<_, i64>(5)? as u64,
            data: serde_json::Value::Null,
        },
        data,
    ))
}

fn parse(pair: (Item, String)) -> StoreResult<Item> {
    let (mut item, data) = pair;
    item.data = serde_json::from_str(&data)?;
    Ok(item)
}

/// The stored version of the live item at this key, if any.
fn live_version(tx: &Connection, pk: &str, sk: &str, now: i64) -> StoreResult<Option<u64>> {
    Ok(tx.prepare_cached("SELECT version FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)")?.query_row(params![pk, sk, now],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(|v| v as u64))
}

fn check(tx: &Connection, pk: &str, sk: &str, cond: Condition, now: i64) -> StoreResult<()> {
    if cond == Condition::None {
        return Ok(());
    }
    let live = live_version(tx, pk, sk, now)?;
    let ok = match cond {
        Condition::None => true,
        Condition::NotExists => live.is_none(),
        Condition::Exists => live.is_some(),
        Condition::Version(v) => live == Some(v),
    };
    if ok {
        Ok(())
    } else {
        Err(StoreError::ConditionFailed)
    }
}

fn validate_key(pk: &str, sk: &str) -> StoreResult<()> {
    if pk.is_empty() || sk.is_empty() {
        return Err(StoreError::Invalid("empty key".into()));
    }
    Ok(())
}

fn write(tx: &Connection, item: &Item) -> StoreResult<()> {
    validate_key(&item.pk, &item.sk)?;
    let split = |g: &Option<(String, String)>| match g {
        Some((p, s)) => (Some(p.clone()), Some(s.clone())),
        None => (None, None),
    };
    let (gpk, gsk) = split(&item.gsi1);
    let (g2pk, g2sk) = split(&item.gsi2);
    tx.prepare_cached("INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, expires_at, version, data, gsi2pk, gsi2sk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)")?.execute(params![
            item.pk,
            item.sk,
            gpk,
            gsk,
            item.expires_at,
            item.version as i64,
            serde_json::to_string(&item.data)?,
            g2pk,
            g2sk
        ],
    )?;
    Ok(())
}

fn apply(tx: &Connection, op: &TxOp, now: i64) -> StoreResult<()> {
    match op {
        TxOp::Put(item, cond) => {
            check(tx, &item.pk, &item.sk, *cond, now)?;
            write(tx, item)
        }
        TxOp::Delete { pk, sk, condition } => {
            check(tx, pk, sk, *condition, now)?;
            tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")?
                .execute(params![pk, sk])?;
            Ok(())
        }
    }
}

#[async_trait]
impl ItemTable for SqliteStore {
    async fn get(&self, pk: &str, sk: &str) -> StoreResult<Option<Item>> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        let clock = self.clock.clone();
        self.read(move |c| {
            let sql = format!(
                "SELECT {COLUMNS} FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)"
            );
            c.prepare_cached(&sql)?
                .query_row(params![pk, sk, clock.now().timestamp()], row_to_item)
                .optional()?
                .map(parse)
                .transpose()
        })
        .await
    }

    async fn put(&self, item: Item, condition: Condition) -> StoreResult<()> {
        self.transact(vec![TxOp::Put(item, condition)]).await
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> StoreResult<()> {
        self.transact(vec![TxOp::Delete {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
            condition,
        }])
        .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> StoreResult<()> {
        self.transact_with_messages(ops, Vec::new()).await
    }

    /// One SQLite transaction holds the items and the queue rows: both are
    /// durable at the commit, or neither is.
    async fn transact_with_messages(
        &self,
        ops: Vec<TxOp>,
        messages: Vec<OutboxMessage>,
    ) -> StoreResult<()> {
        if ops.is_empty() || ops.len() > MAX_TX_OPS {
            return Err(StoreError::Invalid(format!(
                "a transaction holds 1 to {MAX_TX_OPS} operations, got {}",
                ops.len()
            )));
        }
        let clock = self.clock.clone();
        let sends = !messages.is_empty();
        self.write(move |tx| {
            let now = clock.now();
            for op in &ops {
                apply(tx, op, now.timestamp())?;
            }
            for m in &messages {
                super::queue::insert_message(
                    tx,
                    m.queue,
                    &m.body,
                    m.delay,
                    now.timestamp_millis(),
                )?;
            }
            Ok(())
        })
        .await?;
        if sends {
            self.queue_signal.notify_waiters();
        }
        Ok(())
    }

    async fn query(&self, q: Query) -> StoreResult<Page> {
        if q.limit == 0 {
            return Err(StoreError::Invalid("query limit must be positive".into()));
        }
        let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let clock = self.clock.clone();
        self.read(move |c| {
            let now = clock.now().timestamp();
            let (pcol, scol) = q.index.key_names();
            let (cmp, order) = if q.forward { (">", "ASC") } else { ("<", "DESC") };
            let mut sql = format!(
                "SELECT {COLUMNS} FROM items WHERE {pcol} = ?1 AND (expires_at IS NULL OR expires_at > ?2)"
            );
            let mut args: Vec<rusqlite::types::Value> = vec![q.pk.clone().into(), now.into()];
            if let Some(prefix) = &q.sk_prefix {
                args.push(prefix.clone().into());
                args.push(prefix_upper(prefix).into());
                sql += &format!(" AND {scol} >= ?{} AND {scol} < ?{}", args.len() - 1, args.len());
            }
            if let Some((low, high)) = &q.sk_between {
                args.push(low.clone().into());
                args.push(high.clone().into());
                sql += &format!(" AND {scol} >= ?{} AND {scol} <= ?{}", args.len() - 1, args.len());
            }
            match (&cursor, q.index) {
                (Some(cur), Index::Primary) => {
                    args.push(cur.sk.clone().into());
                    sql += &format!(" AND sk {cmp} ?{}", args.len());
                }
                (Some(cur), Index::Gsi1 | Index::Gsi2) => {
                    let gsk = cur.gsk.clone().ok_or(StoreError::InvalidCursor)?;
                    args.push(gsk.into());
                    args.push(cur.pk.clone().into());
                    args.push(cur.sk.clone().into());
                    let n = args.len();
                    sql += &format!(" AND ({scol}, pk, sk) {cmp} (?{}, ?{}, ?{})", n - 2, n - 1, n);
                }
                (None, _) => {}
            }
            sql += &match q.index {
                Index::Primary => format!(" ORDER BY sk {order}"),
                Index::Gsi1 | Index::Gsi2 => {
                    format!(" ORDER BY {scol} {order}, pk {order}, sk {order}")
                }
            };
            args.push(((q.limit + 1) as i64).into());
            sql += &format!(" LIMIT ?{}", args.len());

            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(args), row_to_item)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut items = rows.into_iter().map(parse).collect::<StoreResult<Vec<_>>>()?;
            let next_cursor = if items.len() > q.limit {
                items.truncate(q.limit);
                items.last().map(|last| {
                    encode_cursor(&Cursor {
                        pk: last.pk.clone(),
                        sk: last.sk.clone(),
                        gsk: match q.index {
                            Index::Primary => None,
                            Index::Gsi1 => last.gsi1.as_ref().map(|g| g.1.clone()),
                            Index::Gsi2 => last.gsi2.as_ref().map(|g| g.1.clone()),
                        },
                    })
                })
            } else {
                None
            };
            Ok(Page { items, next_cursor })
        })
        .await
    }

    async fn increment(
        &self,
        pk: &str,
        sk: &str,
        by: i64,
        max: i64,
        expires_at: Option<i64>,
        note: Option<&str>,
    ) -> StoreResult<i64> {
        validate_key(pk, sk)?;
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        let note = note.map(str::to_owned);
        let clock = self.clock.clone();
        self.write(move |tx| {
            let now = clock.now().timestamp();
            let current: Option<(i64, String)> = tx.prepare_cached("SELECT version, data FROM items WHERE pk = ?1 AND sk = ?2 AND (expires_at IS NULL OR expires_at > ?3)")?.query_row(params![pk, sk, now],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (mut item, old) = match current {
                Some((version, data)) => {
                    let mut data: serde_json::Value = serde_json::from_str(&data)?;
                    let old = data.get("count").and_then(|v| v.as_i64()).unwrap_or(0);
                    data["count"] = serde_json::json!(old + by);
                    let mut item = Item::new(pk.clone(), sk.clone(), data);
                    item.version = version as u64 + 1;
                    let prior_expiry: Option<i64> = tx.prepare_cached("SELECT expires_at FROM items WHERE pk = ?1 AND sk = ?2")?.query_row(params![pk, sk],
                        |r| r.get(0),
                    )?;
                    (item.with_expiry(prior_expiry), old)
                }
                None => (
                    Item::new(pk.clone(), sk.clone(), serde_json::json!({ "count": by })).with_expiry(expires_at),
                    0,
                ),
            };
            if old + by > max {
                return Err(StoreError::ConditionFailed);
            }
            if let Some(note) = note {
                item.data["note"] = serde_json::json!(note);
            }
            write(tx, &item)?;
            Ok(old + by)
        })
        .await
    }
}
