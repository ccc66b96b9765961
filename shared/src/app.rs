//! The application: the ports, the repository and the settings every
//! service works with, built once at start-up (per cold start in Lambda)
//! and shared. Process-wide state lives here, never in statics, so two
//! `App`s in one test process do not see each other's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cache::TtlCache;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::ids::{TriggerId, WorkspaceId};
use crate::live::{Hub, StreamBudget};
use crate::model::{Agent, Subscription};
use crate::ports::{ItemTable, Queue, SecretStore};
use crate::repo::Repo;
use crate::runners::Runners;
use crate::state::limiter::Limiter;
use crate::state::targets::{Target, TargetKey};

/// Trigger targets one process keeps at most.
const TARGET_CACHE_CAP: usize = 10_000;

#[derive(Clone)]
pub struct App {
    /// The item table, typed. Services never use the port directly.
    pub repo: Repo,
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
    /// When this process last recorded each trigger's use.
    pub trigger_use: Arc<UseMemory<TriggerId>>,
    /// When this process last recorded each admin key's use (by key id).
    pub admin_key_use: Arc<UseMemory<String>>,
    /// How many calls of each trigger this process logged this minute.
    pub invocation_budget: Arc<InvocationBudget>,
    /// Trigger targets this process looked up lately (cleared by its own
    /// changes to triggers and agents).
    pub targets: Arc<TtlCache<TargetKey, Target>>,
    /// Agents the executor read lately, by id.
    pub agents: Arc<TtlCache<String, Agent>>,
    /// Each workspace's subscriptions, read once for all the events of
    /// its runs for a few seconds.
    pub subscriptions: Arc<TtlCache<WorkspaceId, Arc<Vec<Subscription>>>>,
    /// This process's share of the shared rate-limit counters.
    pub limiter: Arc<Limiter>,
    /// Where real-time run events go once stored (docs/ARCHITECTURE.md,
    /// "Real-time events").
    pub live: Hub,
    /// The event streams this process has open, against their caps.
    pub streams: Arc<StreamBudget>,
    /// Replays each workspace has running (at most a few at once).
    pub replays: Arc<crate::live::replay::ReplayGate>,
    /// The runs this process runs, for cancels made here.
    pub cancels: Arc<crate::live::cancels::Cancels>,
    /// Woken by every change to a schedule, so `hookrun serve`'s scheduler
    /// looks at its next fire again.
    pub schedules_changed: Arc<tokio::sync::Notify>,
    /// Where fires come from besides the store (EventBridge Scheduler on
    /// AWS); kept in step with every schedule.
    pub fires: Arc<dyn crate::ports::FireSource>,
}

impl App {
    pub fn new(
        items: Arc<dyn ItemTable>,
        queue: Arc<dyn Queue>,
        secrets: Arc<dyn SecretStore>,
        settings: Settings,
    ) -> Self {
        let runners = Runners::new(&settings);
        let outbound = settings.outbound.client(settings.delivery_timeout);
        App {
            repo: Repo::new(items),
            queue,
            secrets,
            clock: Arc::new(SystemClock),
            runners,
            outbound,
            jitter: Arc::new(|| rand::Rng::gen_range(&mut rand::thread_rng(), -1.0..=1.0)),
            trigger_use: Arc::default(),
            admin_key_use: Arc::default(),
            invocation_budget: Arc::default(),
            targets: Arc::new(TtlCache::new(settings.target_cache, TARGET_CACHE_CAP)),
            agents: Arc::new(TtlCache::new(settings.target_cache, TARGET_CACHE_CAP)),
            subscriptions: Arc::new(TtlCache::new(settings.target_cache, TARGET_CACHE_CAP)),
            limiter: Arc::default(),
            live: Hub::default(),
            streams: Arc::new(StreamBudget::new(settings.streams)),
            replays: Arc::default(),
            cancels: Arc::default(),
            schedules_changed: Arc::default(),
            fires: Arc::new(crate::ports::InProcess),
            settings: Arc::new(settings),
        }
    }

    /// Everything on one SQLite store (`hookrun serve`, tests, benchmarks),
    /// on the store's clock.
    #[cfg(feature = "sqlite")]
    pub fn embedded(store: crate::sqlite::SqliteStore, settings: Settings) -> Self {
        let clock = store.clock();
        let store = Arc::new(store);
        App::new(store.clone(), store.clone(), store, settings).with_clock(clock)
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Fires from an outside scheduler, kept in step with the schedules.
    pub fn with_fires(mut self, fires: Arc<dyn crate::ports::FireSource>) -> Self {
        self.fires = fires;
        self
    }

    /// Forgets what this process cached (targets, agents, subscriptions):
    /// called after it changed a trigger, an agent or a subscription, so its
    /// own changes apply at once.
    pub fn forget_cached(&self) {
        self.targets.clear();
        self.agents.clear();
        self.subscriptions.clear();
    }

    /// The same app publishing to `hub` (`hookrun serve`: a local hub).
    pub fn with_live(mut self, hub: Hub) -> Self {
        self.live = hub;
        self
    }

    pub fn with_jitter(mut self, jitter: Arc<dyn Fn() -> f64 + Send + Sync>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Unix seconds at which a run (or anything kept as long) made now expires.
    pub fn retention_expiry(&self) -> i64 {
        self.expiry_after(self.settings.run_retention)
    }

    /// Unix seconds `keep` from now.
    pub fn expiry_after(&self, keep: std::time::Duration) -> i64 {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        self.clock
            .now()
            .checked_add_signed(keep)
            .map_or(i64::MAX, |t| t.timestamp())
    }
}

/// Remembers when this process last recorded a trigger's (or an admin
/// key's) use, so it writes `last_used_at` at most once a minute per id.
pub struct UseMemory<K>(Mutex<HashMap<K, Instant>>);

impl<K> Default for UseMemory<K> {
    fn default() -> Self {
        UseMemory(Mutex::new(HashMap::new()))
    }
}

/// How often one process records a trigger's use.
pub const USE_RECORD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Entries kept before the memory starts afresh.
const USE_MEMORY_CAP: usize = 10_000;

impl<K: std::hash::Hash + Eq + Clone> UseMemory<K> {
    /// True when the use should be recorded now (and remembers that it was).
    pub fn due(&self, id: &K) -> bool {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if seen
            .get(id)
            .is_some_and(|at| at.elapsed() < USE_RECORD_INTERVAL)
        {
            return false;
        }
        if seen.len() >= USE_MEMORY_CAP {
            seen.clear();
        }
        seen.insert(id.clone(), Instant::now());
        true
    }
}

/// Calls of one trigger logged one by one per minute and process; the rest
/// are counted (a trigger under a flood keeps its history readable).
pub const INVOCATIONS_LOGGED_PER_MINUTE: u32 = 120;

/// Counts logged calls per trigger in the current minute.
#[derive(Default)]
pub struct InvocationBudget(Mutex<(i64, HashMap<TriggerId, u32>)>);

impl InvocationBudget {
    /// True when one more call of `id` may be logged in `minute`.
    pub fn take(&self, id: &TriggerId, minute: i64) -> bool {
        let mut state = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if state.0 != minute {
            *state = (minute, HashMap::new());
        }
        let used = state.1.entry(id.clone()).or_insert(0);
        if *used >= INVOCATIONS_LOGGED_PER_MINUTE {
            return false;
        }
        *used += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invocations_are_logged_up_to_a_cap_per_minute() {
        let b = InvocationBudget::default();
        let t = TriggerId::parse("trg_a").unwrap();
        let logged = (0..200).filter(|_| b.take(&t, 7)).count();
        assert_eq!(logged as u32, INVOCATIONS_LOGGED_PER_MINUTE);
        assert!(b.take(&t, 8), "a new minute, a new budget");
    }

    #[test]
    fn a_use_is_recorded_once_a_minute() {
        let m = UseMemory::default();
        let a = TriggerId::parse("trg_a").unwrap();
        let b = TriggerId::parse("trg_b").unwrap();
        assert!(m.due(&a));
        assert!(!m.due(&a));
        assert!(m.due(&b));
    }
}
