//! The application: the ports and settings every service works with,
//! built once at start-up (per cold start in Lambda) and shared.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::ports::{ItemTable, Queue, SecretStore};
use crate::runners::Runners;
use crate::sqlite::SqliteStore;

#[derive(Clone)]
pub struct App {
    pub items: Arc<dyn ItemTable>,
    pub queue: Arc<dyn Queue>,
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub runners: Runners,
    /// The client for subscriber calls, with the SSRF guard built in.
    pub outbound: reqwest::Client,
    /// A factor in [-1, 1] that scales retry jitter; random in service,
    /// fixed in tests.
    pub jitter: Arc<dyn Fn() -> f64 + Send + Sync>,
}

impl App {
    pub fn new(
        items: Arc<dyn ItemTable>,
        queue: Arc<dyn Queue>,
        secrets: Arc<dyn SecretStore>,
        settings: Settings,
    ) -> Self {
        let runners = Runners::new(&settings);
        let outbound = settings.outbound.client(std::time::Duration::from_secs(
            settings.delivery_timeout_seconds,
        ));
        App {
            items,
            queue,
            secrets,
            clock: Arc::new(SystemClock),
            settings: Arc::new(settings),
            runners,
            outbound,
            jitter: Arc::new(|| rand::Rng::gen_range(&mut rand::thread_rng(), -1.0..=1.0)),
        }
    }

    /// Everything on one SQLite store (`hookrun serve`, tests, benchmarks).
    pub fn embedded(store: SqliteStore, settings: Settings) -> Self {
        let store = Arc::new(store);
        App::new(store.clone(), store.clone(), store, settings)
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_jitter(mut self, jitter: Arc<dyn Fn() -> f64 + Send + Sync>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Unix seconds at which a record made now expires.
    pub fn retention_expiry(&self) -> i64 {
        (self.clock.now() + chrono::Duration::days(self.settings.run_retention_days)).timestamp()
    }
}
