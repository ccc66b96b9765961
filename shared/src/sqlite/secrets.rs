//! The secrets port on SQLite: one row per secret name, the value sealed
//! (AES-256-GCM) under the master key, which lives in its own file
//! (`keyfile`), never in the database.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{keyfile, SqliteStore};
use crate::error::{StoreError, StoreResult};
use crate::ports::secrets::{SecretStore, SecretVersions};
use crate::seal::{self, MasterKey};

/// Where stores from before the master key had its own file kept it.
const LEGACY_MASTER_KEY_ROW: &str = "hookrun/master-key";

impl SqliteStore {
    /// The master key's values, current first, read (or created) once.
    fn load_master_keys(&self) -> StoreResult<Vec<String>> {
        if let Some(keys) = self.master_keys.get() {
            return Ok(keys.clone());
        }
        let keys = match &self.master_key_file {
            None => vec![crate::ids::random_hex(32)],
            Some(path) => match keyfile::read(path)? {
                Some(keys) => keys,
                None => {
                    // A store from before the key had its own file keeps
                    // its key (its sealed values must still open).
                    let legacy = self.legacy_master_key()?;
                    let keys = legacy.unwrap_or_else(|| vec![crate::ids::random_hex(32)]);
                    keyfile::create(path, &keys)?
                }
            },
        };
        Ok(self.master_keys.get_or_init(|| keys).clone())
    }

    fn legacy_master_key(&self) -> StoreResult<Option<Vec<String>>> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let raw: Option<String> = conn
            .query_row(
                "SELECT value FROM secrets WHERE name = ?1",
                [LEGACY_MASTER_KEY_ROW],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match raw {
            Some(raw) => {
                let v: SecretVersions = serde_json::from_str(&raw)?;
                Some(std::iter::once(v.current).chain(v.previous).collect())
            }
            None => None,
        })
    }

    fn keys(&self) -> StoreResult<Vec<MasterKey>> {
        Ok(self
            .load_master_keys()?
            .iter()
            .map(|k| MasterKey::from_secret(k))
            .collect())
    }

    /// Moves a store to secrets at rest: the master key into its file (the
    /// legacy row is removed once the file holds it) and every plaintext
    /// secret sealed. Run at open; a no-op once done.
    pub(super) fn seal_at_rest(&self) -> StoreResult<()> {
        let keys = self.keys()?;
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.unchecked_transaction()?;
        tx.execute(
            "DELETE FROM secrets WHERE name = ?1",
            [LEGACY_MASTER_KEY_ROW],
        )?;
        let plain: Vec<(String, String)> = {
            let mut stmt =
                tx.prepare("SELECT name, value FROM secrets WHERE value NOT LIKE 'v1.%'")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        for (name, value) in plain {
            tx.execute(
                "UPDATE secrets SET value = ?2 WHERE name = ?1",
                params![name, seal::seal(&keys[0], &value)],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn open_value(keys: &[MasterKey], raw: &str) -> StoreResult<SecretVersions> {
        let json = if raw.starts_with("v1.") {
            seal::open(keys, raw).ok_or_else(|| {
                StoreError::Corrupt("a stored secret does not open with the master key".into())
            })?
        } else {
            raw.to_owned()
        };
        Ok(serde_json::from_str(&json)?)
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    /// Read through a short cache (the trigger path reads an agent's secret
    /// on every call); this process's own changes update it at once.
    async fn get(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        if let Some(hit) = self.secret_cache.get(&name.to_owned()) {
            return Ok(hit);
        }
        let value = self.get_uncached(name).await?;
        self.secret_cache.insert(name.to_owned(), value.clone());
        Ok(value)
    }

    async fn get_fresh(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        self.get_uncached(name).await
    }

    async fn get_uncached(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        let keys = self.keys()?;
        let name = name.to_owned();
        self.read(move |c| {
            let raw: Option<String> = c
                .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            raw.map(|r| SqliteStore::open_value(&keys, &r)).transpose()
        })
        .await
    }

    async fn master_keys(&self) -> StoreResult<Vec<String>> {
        self.load_master_keys()
    }

    async fn put(&self, name: &str, value: &SecretVersions) -> StoreResult<()> {
        let keys = self.keys()?;
        let name = name.to_owned();
        let sealed = seal::seal(&keys[0], &serde_json::to_string(value)?);
        let key = name.clone();
        self.write(move |c| {
            c.execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, sealed],
            )?;
            Ok(())
        })
        .await?;
        self.secret_cache.insert(key, Some(value.clone()));
        Ok(())
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.secret_cache.remove(&name);
        self.write(move |c| {
            c.execute("DELETE FROM secrets WHERE name = ?1", [name])?;
            Ok(())
        })
        .await
    }
}
