//! The secrets port on SQLite: one row per secret name, the value as JSON.
//! The data directory is the trust boundary of `hookrun serve`: keep it
//! readable by the service's user only.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::SqliteStore;
use crate::error::StoreResult;
use crate::ports::secrets::{SecretStore, SecretVersions};

/// Where the embedded store keeps its master key.
const MASTER_KEY_NAME: &str = "hookrun/master-key";

#[async_trait]
impl SecretStore for SqliteStore {
    async fn get(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        let name = name.to_owned();
        self.run(move |c| {
            let raw: Option<String> = c
                .query_row("SELECT value FROM secrets WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(raw.map(|r| serde_json::from_str(&r)).transpose()?)
        })
        .await
    }

    async fn master_keys(&self) -> StoreResult<Vec<String>> {
        if let Some(keys) = self.master_keys.get() {
            return Ok(keys.clone());
        }
        let candidate = crate::ids::random_hex(32);
        let keys: Vec<String> = self
            .run(move |c| {
                // First use creates it; a concurrent first use keeps the winner's.
                c.execute(
                    "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
                    params![
                        MASTER_KEY_NAME,
                        serde_json::to_string(&SecretVersions::new(candidate))?
                    ],
                )?;
                let raw: String = c.query_row(
                    "SELECT value FROM secrets WHERE name = ?1",
                    [MASTER_KEY_NAME],
                    |r| r.get(0),
                )?;
                let v: SecretVersions = serde_json::from_str(&raw)?;
                Ok(std::iter::once(v.current).chain(v.previous).collect())
            })
            .await?;
        Ok(self.master_keys.get_or_init(|| keys).clone())
    }

    async fn put(&self, name: &str, value: &SecretVersions) -> StoreResult<()> {
        let name = name.to_owned();
        let value = serde_json::to_string(value)?;
        self.run(move |c| {
            c.execute(
                "INSERT INTO secrets (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        let name = name.to_owned();
        self.run(move |c| {
            c.execute("DELETE FROM secrets WHERE name = ?1", [name])?;
            Ok(())
        })
        .await
    }
}
