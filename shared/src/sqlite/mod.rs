//! The embedded adapters: item table, queue and secrets in one SQLite file.
//!
//! One connection behind a mutex, used from blocking threads: SQLite
//! serialises writers anyway, and `synchronous=FULL` in WAL mode makes a
//! committed write durable before the caller (e.g. the 202) goes on. Item
//! writes that arrive together share one commit (`group`).
//! Transactions that write start IMMEDIATE, so a second process on the same
//! file (`hookrun workspace create`) waits for the lock instead of failing
//! on a stale snapshot.

mod group;
mod items;
pub mod keyfile;
mod queue;
mod secrets;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Notify;

use crate::clock::{Clock, SystemClock};
use crate::error::{StoreError, StoreResult};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    gsi1pk TEXT,
    gsi1sk TEXT,
    expires_at INTEGER,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk) WHERE gsi1pk IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_expiry ON items (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE IF NOT EXISTS queue_messages (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_visible ON queue_messages (queue, visible_at, seq);
CREATE UNIQUE INDEX IF NOT EXISTS queue_receipt ON queue_messages (receipt) WHERE receipt IS NOT NULL;
-- The next message's order is MAX(seq) + 1: without this, a scan per send.
CREATE INDEX IF NOT EXISTS queue_seq ON queue_messages (seq);

CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Brings a database made by an earlier version up to this one's schema
/// (each step checks whether it is needed, so it runs on every open).
fn migrate(conn: &Connection) -> StoreResult<()> {
    let has_gsi2: bool = conn
        .prepare("SELECT 1 FROM pragma_table_info('items') WHERE name = 'gsi2pk'")?
        .exists([])?;
    if !has_gsi2 {
        // The second index (a workspace's runs). Items written before it
        // are not in it.
        conn.execute_batch(
            "ALTER TABLE items ADD COLUMN gsi2pk TEXT; ALTER TABLE items ADD COLUMN gsi2sk TEXT;",
        )?;
    }
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS items_gsi2 ON items (gsi2pk, gsi2sk, pk, sk) WHERE gsi2pk IS NOT NULL;",
    )?;
    Ok(())
}

/// How long an agent secret read from the database is reused (changes made
/// through this store apply at once).
const SECRET_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

/// How many receives a message gets before it is moved to its dead-letter
/// queue (SQS `maxReceiveCount`).
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

/// The SQLite database behind all three embedded adapters.
#[derive(Clone)]
pub struct SqliteStore {
    /// A second connection for reads (file databases only): in WAL mode it
    /// reads while the writer commits, so a read never waits for an fsync.
    /// Declared first so it closes first: the writer, closing last,
    /// checkpoints the WAL into the database (a read-only connection
    /// cannot).
    reader: Option<Arc<Mutex<Connection>>>,
    conn: Arc<Mutex<Connection>>,
    /// Agent secrets read lately (the trigger path reads one per call).
    secret_cache: Arc<crate::cache::TtlCache<String, Option<crate::ports::SecretVersions>>>,
    /// Item writes waiting to be committed together (`group`).
    pending: Arc<group::Pending>,
    /// Woken on every send so in-process consumers need not poll tightly.
    queue_signal: Arc<Notify>,
    /// The master key, read (or created) once: it never changes while the
    /// process runs, and trigger calls need it on the hot path.
    master_keys: Arc<std::sync::OnceLock<Vec<String>>>,
    /// Where the master key lives: its own file (never the database); an
    /// in-memory store keeps one in memory.
    master_key_file: Option<std::path::PathBuf>,
    max_receives: u32,
    /// TTLs and queue visibility follow this clock (the application's),
    /// so a test that moves time moves it for the store too.
    clock: Arc<dyn Clock>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/hookrun.sqlite3`, with the master
    /// key in `dir/master.key`.
    pub fn open_dir(dir: &Path) -> StoreResult<Self> {
        Self::open_dir_with_key(dir, None)
    }

    /// [`SqliteStore::open_dir`] with the master key in `key_file` when
    /// given (`HOOKRUN_MASTER_KEY_FILE`). The directory is created 0700 and
    /// the database 0600; a store from before the key had its own file is
    /// moved to one, and its secrets sealed, on this first open.
    pub fn open_dir_with_key(dir: &Path, key_file: Option<&Path>) -> StoreResult<Self> {
        keyfile::private_dir(dir)?;
        let db = Self::database_path(dir);
        keyfile::private_file(&db)?;
        let conn = Connection::open(&db).map_err(|e| {
            StoreError::Backend(format!("cannot open the database {}: {e}", db.display()))
        })?;
        let mut store = Self::init(conn)?;
        let reader = Connection::open_with_flags(
            &db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            StoreError::Backend(format!("cannot open the database {}: {e}", db.display()))
        })?;
        reader.busy_timeout(std::time::Duration::from_secs(5))?;
        reader.set_prepared_statement_cache_capacity(64);
        store.reader = Some(Arc::new(Mutex::new(reader)));
        store.master_key_file = Some(
            key_file
                .map(Path::to_path_buf)
                .unwrap_or_else(|| keyfile::default_path(dir)),
        );
        store.seal_at_rest()?;
        Ok(store)
    }

    /// Where the database of a store in `dir` lives.
    pub fn database_path(dir: &Path) -> std::path::PathBuf {
        dir.join("hookrun.sqlite3")
    }

    /// A private in-memory database, for tests and benchmarks.
    pub fn in_memory() -> StoreResult<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> StoreResult<Self> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Every statement the adapters run, compiled once.
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA)?;
        migrate(&conn)?;
        let conn = Arc::new(Mutex::new(conn));
        Ok(SqliteStore {
            reader: None,
            pending: Arc::new(group::Pending::start(conn.clone())),
            conn,
            secret_cache: Arc::new(crate::cache::TtlCache::new(SECRET_CACHE, 10_000)),
            queue_signal: Arc::new(Notify::new()),
            master_keys: Arc::new(std::sync::OnceLock::new()),
            master_key_file: None,
            max_receives: DEFAULT_MAX_RECEIVES,
            clock: Arc::new(SystemClock),
        })
    }

    /// The store on this clock; `App::embedded` takes it from here.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn with_max_receives(mut self, n: u32) -> Self {
        self.max_receives = n.max(1);
        self
    }

    /// Resolves when a message may have been sent since the last call.
    pub fn queue_signal(&self) -> Arc<Notify> {
        self.queue_signal.clone()
    }

    /// Deletes items whose TTL passed (readers already ignore them); the
    /// embedded counterpart of DynamoDB's TTL sweeper.
    pub async fn purge_expired(&self) -> StoreResult<usize> {
        let now = self.clock.now().timestamp();
        self.run(move |c| Ok(c.execute("DELETE FROM items WHERE expires_at <= ?1", [now])?))
            .await
    }

    /// Runs the write `f` in the next group commit (`group`): its result
    /// once it is durable. `f` runs inside a transaction; it must not start
    /// one.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        group::write(&self.pending, f).await
    }

    /// Runs the read `f` on the read connection (the main one for an
    /// in-memory database) on a blocking thread.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = self.reader.clone().unwrap_or_else(|| self.conn.clone());
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{Index, ItemTable, Query};

    /// A database made before the second index opens, keeps its items, and
    /// indexes what is written from then on.
    #[tokio::test]
    async fn a_database_without_the_second_index_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = SqliteStore::database_path(dir.path());
        {
            let old = Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE items (pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT,
                 expires_at INTEGER, version INTEGER NOT NULL, data TEXT NOT NULL,
                 PRIMARY KEY (pk, sk)) WITHOUT ROWID;
                 INSERT INTO items VALUES ('A', 'B', NULL, NULL, NULL, 1, '{\"old\":true}');",
            )
            .unwrap();
        }
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let old = store.get("A", "B").await.unwrap().unwrap();
        assert_eq!(old.data["old"], true);
        assert_eq!(old.gsi2, None);
        let item = crate::ports::Item::new("C", "D", serde_json::json!({})).with_gsi2("W", "1");
        store
            .put(item, crate::ports::Condition::None)
            .await
            .unwrap();
        let page = store
            .query(Query::partition(Index::Gsi2, "W"))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        drop(store);
        // Opening again finds nothing to do.
        let again = SqliteStore::open_dir(dir.path()).unwrap();
        assert!(again.get("C", "D").await.unwrap().is_some());
    }
}
