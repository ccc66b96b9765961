//! A small in-process cache whose entries expire after a fixed time: what
//! keeps the trigger hot path off DynamoDB and Secrets Manager for repeat
//! callers. Its time-to-live is the staleness an operator's change may have
//! on another process (docs/ARCHITECTURE.md, "Caches and their staleness").
//! Bounded: at its cap it starts afresh rather than evicting one by one, so
//! a flood of distinct keys costs memory once, never a scan.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    cap: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache keeping entries `ttl` (zero: nothing is kept) and at most
    /// `cap` of them.
    pub fn new(ttl: Duration, cap: usize) -> Self {
        TtlCache {
            ttl,
            cap,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value, if stored less than the time-to-live ago.
    pub fn get(&self, key: &K) -> Option<V> {
        self.get_within(key, self.ttl)
    }

    /// The value, if stored less than `age` ago (and within the TTL).
    pub fn get_within(&self, key: &K, age: Duration) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < age.min(self.ttl))
            .map(|(_, v)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.cap {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= self.cap {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn remove(&self, key: &K) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    /// Forgets everything (after a change made in this process).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_cap_holds() {
        let c = TtlCache::new(Duration::from_millis(50), 3);
        c.insert("a", 1);
        assert_eq!(c.get(&"a"), Some(1));
        assert_eq!(c.get_within(&"a", Duration::ZERO), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&"a"), None, "expired");
        for (i, k) in ["a", "b", "c", "d"].into_iter().enumerate() {
            c.insert(k, i);
        }
        let kept = ["a", "b", "c", "d"]
            .iter()
            .filter(|k| c.get(k).is_some())
            .count();
        assert!(kept <= 3, "{kept} entries over a cap of 3");
        assert_eq!(c.get(&"d"), Some(3), "the newest entry is kept");
        c.clear();
        assert_eq!(c.get(&"d"), None);
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let c = TtlCache::new(Duration::ZERO, 10);
        c.insert(1, 1);
        assert_eq!(c.get(&1), None);
    }
}
