//! The secrets port on Secrets Manager. A secret's `AWSCURRENT` version holds
//! the JSON of [`SecretVersions`], so a rotation's previous value and its
//! grace window travel with it. Reads are cached in process for a short TTL:
//! the ingress hot path must not pay a Secrets Manager call per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;

use super::backend;
use crate::error::{StoreError, StoreResult};
use crate::ports::secrets::{SecretStore, SecretVersions};

/// Shortest interval between two uncached reads of one secret.
const MIN_REFRESH: Duration = Duration::from_secs(5);

pub struct SecretsManagerStore {
    client: Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Option<SecretVersions>)>>,
    master_key: Option<String>,
    master_cache: Mutex<Option<(Instant, Vec<String>)>>,
}

/// How long master-key versions are cached (they change only on rotation).
const MASTER_KEY_TTL: Duration = Duration::from_secs(300);

impl SecretsManagerStore {
    pub fn new(client: Client, ttl: Duration) -> Self {
        SecretsManagerStore {
            client,
            ttl,
            cache: Mutex::new(HashMap::new()),
            master_key: None,
            master_cache: Mutex::new(None),
        }
    }

    /// The name or ARN of the master-key secret.
    pub fn with_master_key(mut self, name: Option<String>) -> Self {
        self.master_key = name;
        self
    }

    /// One version stage of a plain-string secret, if it exists.
    async fn raw_stage(&self, name: &str, stage: &str) -> StoreResult<Option<String>> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(stage)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.secret_string().map(str::to_owned)),
            Err(err) => match err.into_service_error() {
                e if e.is_resource_not_found_exception() => Ok(None),
                e => Err(backend(e)),
            },
        }
    }

    fn cached(&self, name: &str) -> Option<Option<SecretVersions>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(name)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn remember(&self, name: &str, value: Option<SecretVersions>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(name.to_owned(), (Instant::now(), value));
    }

    async fn fetch(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage("AWSCURRENT")
            .send()
            .await;
        let value = match result {
            Ok(out) => {
                let raw = out.secret_string().ok_or_else(|| {
                    StoreError::Backend(format!("secret {name} has no string value"))
                })?;
                Some(serde_json::from_str(raw)?)
            }
            Err(err) => match err.into_service_error() {
                e if e.is_resource_not_found_exception() => None,
                // A secret scheduled for deletion is gone for us.
                e if e.is_invalid_request_exception() => None,
                e => return Err(backend(e)),
            },
        };
        self.remember(name, value.clone());
        Ok(value)
    }
}

#[async_trait]
impl SecretStore for SecretsManagerStore {
    async fn get(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        if let Some(hit) = self.cached(name) {
            return Ok(hit);
        }
        self.fetch(name).await
    }

    async fn get_uncached(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        self.fetch(name).await
    }

    async fn get_fresh(&self, name: &str) -> StoreResult<Option<SecretVersions>> {
        // At most one refresh per secret every few seconds, so a stream of
        // bad signatures cannot turn into a stream of Secrets Manager calls.
        let recent = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            cache
                .get(name)
                .filter(|(at, _)| at.elapsed() < MIN_REFRESH)
                .map(|(_, v)| v.clone())
        };
        match recent {
            Some(v) => Ok(v),
            None => self.fetch(name).await,
        }
    }

    /// `AWSCURRENT` and, when present, `AWSPREVIOUS` of the master-key secret:
    /// Secrets Manager's own rotation keeps the previous version, so values
    /// sealed before a rotation still open.
    async fn master_keys(&self) -> StoreResult<Vec<String>> {
        let name = self
            .master_key
            .as_deref()
            .ok_or_else(|| StoreError::Invalid("HOOKRUN_MASTER_KEY_SECRET is not set".into()))?;
        if let Some((at, keys)) = self
            .master_cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            if at.elapsed() < MASTER_KEY_TTL {
                return Ok(keys.clone());
            }
        }
        // Both stages at once: one round trip on a cold process.
        let (current, previous) = tokio::join!(
            self.raw_stage(name, "AWSCURRENT"),
            self.raw_stage(name, "AWSPREVIOUS")
        );
        let current = current?.ok_or_else(|| {
            StoreError::Backend(format!("master-key secret {name} has no current value"))
        })?;
        let mut keys = vec![current];
        if let Some(previous) = previous? {
            if previous != keys[0] {
                keys.push(previous);
            }
        }
        *self.master_cache.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    async fn put(&self, name: &str, value: &SecretVersions) -> StoreResult<()> {
        let raw = serde_json::to_string(value)?;
        let result = self
            .client
            .put_secret_value()
            .secret_id(name)
            .secret_string(&raw)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(err) => match err.into_service_error() {
                e if e.is_resource_not_found_exception() => {
                    self.client
                        .create_secret()
                        .name(name)
                        .description("hookrun webhook secret")
                        .secret_string(&raw)
                        .send()
                        .await
                        .map_err(backend)?;
                }
                e => return Err(backend(e)),
            },
        }
        self.remember(name, Some(value.clone()));
        Ok(())
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        let result = self
            .client
            .delete_secret()
            .secret_id(name)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(err) => match err.into_service_error() {
                e if e.is_resource_not_found_exception() => {}
                e => return Err(backend(e)),
            },
        }
        self.remember(name, None);
        Ok(())
    }
}
