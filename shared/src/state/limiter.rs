//! The per-process half of the rate limits (`services::ratelimit`): calls
//! admitted here and not yet added to the shared counters, and addresses
//! over their failed-authentication limit.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::LimitScope;

/// Calls of one limit admitted by this process and not yet added to the
/// shared counter.
#[derive(Debug, Clone)]
pub struct Report {
    pub(crate) scope: LimitScope,
    pub(crate) id: String,
    pub(crate) window: i64,
    pub(crate) calls: i64,
}

pub(crate) enum Admission {
    Admitted { used: i64, report: Option<Report> },
    Full,
}

/// How many calls a process admits before it reports them: a tenth of the
/// limit, at least 1 (small limits are exact), at most 10.
fn batch(per_minute: u32) -> i64 {
    i64::from(per_minute / 10).clamp(1, 10)
}

/// One limit's counter as this process sees it.
#[derive(Debug, Clone, Copy, Default)]
struct Counter {
    window: i64,
    /// The shared counter's total when this process last reported.
    shared: i64,
    /// Calls admitted here since (a report in flight included).
    pending: i64,
}

/// Entries kept before old windows are dropped.
const LIMITER_CAP: usize = 50_000;

/// Per-process pre-aggregation of the shared rate counters
/// (docs/ARCHITECTURE.md, "Rate limits"): a call is admitted or refused
/// from what this process knows, and every `batch` admitted calls are
/// added to the shared counter with one write, which also tells the
/// process what the others added. Each process can be at most one batch
/// behind, so with N processes taking calls for one limit in one minute
/// at most N × (batch − 1) calls pass beyond it; one process is exact.
#[derive(Default)]
pub struct Limiter {
    counters: Mutex<HashMap<(LimitScope, String), Counter>>,
    /// Addresses over their failed-authentication limit, by window.
    blocked: Mutex<HashMap<String, i64>>,
}

impl Limiter {
    pub(crate) fn admit(
        &self,
        scope: LimitScope,
        id: &str,
        window: i64,
        per_minute: u32,
    ) -> Admission {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if counters.len() >= LIMITER_CAP {
            counters.retain(|_, c| c.window >= window);
        }
        let c = counters.entry((scope, id.to_owned())).or_default();
        if c.window != window {
            *c = Counter {
                window,
                ..Counter::default()
            };
        }
        let limit = i64::from(per_minute);
        if c.shared + c.pending >= limit {
            return Admission::Full;
        }
        c.pending += 1;
        let used = c.shared + c.pending;
        // Report when a batch is full, and at the limit itself, so the
        // last calls of a window are known to the others at once.
        let report = (c.pending >= batch(per_minute) || used >= limit).then(|| {
            let r = Report {
                scope,
                id: id.to_owned(),
                window,
                calls: c.pending,
            };
            c.shared += c.pending;
            c.pending = 0;
            r
        });
        Admission::Admitted { used, report }
    }

    /// The shared counter's total after a report.
    pub(crate) fn learned(&self, r: &Report, total: i64) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counters.get_mut(&(r.scope, r.id.clone())) {
            if c.window == r.window {
                c.shared = c.shared.max(total);
            }
        }
    }

    /// A report that failed: its calls are pending again.
    pub(crate) fn unreported(&self, r: &Report) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counters.get_mut(&(r.scope, r.id.clone())) {
            if c.window == r.window {
                c.shared -= r.calls;
                c.pending += r.calls;
            }
        }
    }

    pub(crate) fn blocked(&self, key: &str, window: i64) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .is_some_and(|w| *w == window)
    }

    pub(crate) fn block(&self, key: String, window: i64) {
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.len() >= LIMITER_CAP {
            blocked.retain(|_, w| *w >= window);
        }
        blocked.insert(key, window);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(l: &Limiter, window: i64, limit: u32) -> Option<Option<Report>> {
        match l.admit(LimitScope::Trigger, "trg_a", window, limit) {
            Admission::Admitted { report, .. } => Some(report),
            Admission::Full => None,
        }
    }

    #[test]
    fn one_process_is_exact_and_reports_once_a_batch() {
        let l = Limiter::default();
        let mut reports = 0;
        let mut admitted_calls = 0;
        for _ in 0..150 {
            if let Some(r) = admitted(&l, 7, 100) {
                admitted_calls += 1;
                if let Some(r) = r {
                    l.learned(&r, admitted_calls);
                    reports += 1;
                }
            }
        }
        assert_eq!(admitted_calls, 100, "exactly the limit");
        assert_eq!(reports, 10, "one write per batch of 10");
        assert!(admitted(&l, 8, 100).is_some(), "a new window starts afresh");
    }

    #[test]
    fn others_reports_are_learned_and_overshoot_is_one_batch_each() {
        // Two processes share a limit of 100 (batch 10).
        let (a, b) = (Limiter::default(), Limiter::default());
        let mut shared = 0;
        let mut admitted_calls = 0;
        for i in 0..400 {
            let l = if i % 2 == 0 { &a } else { &b };
            if let Some(r) = admitted(l, 7, 100) {
                admitted_calls += 1;
                if let Some(r) = r {
                    shared += r.calls;
                    l.learned(&r, shared);
                }
            }
        }
        assert!(
            (100..=100 + 2 * 9).contains(&admitted_calls),
            "{admitted_calls} admitted: at most one batch (less one) over per process"
        );
    }

    #[test]
    fn small_limits_report_every_call() {
        let l = Limiter::default();
        for _ in 0..3 {
            assert!(matches!(admitted(&l, 1, 5), Some(Some(_))));
        }
    }

    #[test]
    fn a_failed_report_is_pending_again() {
        let l = Limiter::default();
        let r = admitted(&l, 1, 5).unwrap().unwrap();
        l.unreported(&r);
        let again = admitted(&l, 1, 5).unwrap().unwrap();
        assert_eq!(again.calls, 2);
    }
}
