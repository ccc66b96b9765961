//! Fixed-window rate limits: counters on the item table shared by every
//! process and Lambda instance, pre-aggregated in each process so a call
//! costs a fraction of a write ([`Limiter`]). Windows are whole minutes of
//! the injected clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::app::App;
use crate::error::{Error, LimitScope, RateState, StoreError};

/// How a caller's address is counted: an IPv4 address as it is, an IPv6
/// address by its /64 (one host usually holds a whole /64, so counting
/// single addresses would let it rotate past any limit).
pub fn client_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// What a credential that did not match answers: `refused`, counted
/// against its address, or `429` once that address failed too often this
/// minute. Only failures are throttled: a credential that matches is
/// never looked at here, so a typo loop, a fuzzer or a neighbour behind
/// the same address cannot lock the right key out (keys and tokens are
/// long random values: guessing one is hopeless, throttled or not). An
/// address this process already saw over the limit is answered without a
/// write.
pub async fn failed_auth(app: &App, ip: IpAddr, refused: Error) -> Error {
    let limit = app.settings.auth_failures_per_minute;
    if limit == 0 {
        return refused;
    }
    let now = app.clock.now().timestamp();
    let window = now.div_euclid(60);
    let key = client_key(ip);
    let over = || Error::RateLimited {
        scope: LimitScope::AuthFailures,
        state: RateState {
            limit,
            remaining: 0,
            reset_secs: (60 - now.rem_euclid(60)) as u64,
        },
    };
    if app.limiter.blocked(&key, window) {
        return over();
    }
    // The counter stops at the limit: a failure past it is refused by the
    // condition, and this process remembers the address until the window
    // ends.
    match app
        .repo
        .count_call(LimitScope::AuthFailures, &key, window, limit)
        .await
    {
        Ok(n) => {
            if n >= i64::from(limit) {
                app.limiter.block(key, window);
            }
            refused
        }
        Err(StoreError::ConditionFailed) => {
            app.limiter.block(key, window);
            over()
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not count a failed authentication");
            refused
        }
    }
}

/// Counts one call against `per_minute` for `scope`/`id` (0 = unlimited)
/// in this process: the limit's state, or `RateLimited` when the window is
/// full as far as this process knows. No I/O: when this process's share is
/// due to be reported, the returned [`Report`] says so, and the caller
/// passes it to [`report`] with its other writes.
pub fn admit(
    app: &App,
    scope: LimitScope,
    id: &str,
    per_minute: u32,
    reports: &mut Vec<Report>,
) -> Result<Option<RateState>, Error> {
    if per_minute == 0 {
        return Ok(None);
    }
    let now = app.clock.now().timestamp();
    let window = now.div_euclid(60);
    let reset_secs = (60 - now.rem_euclid(60)) as u64;
    match app.limiter.admit(scope, id, window, per_minute) {
        Admission::Admitted { used, report } => {
            reports.extend(report);
            Ok(Some(RateState {
                limit: per_minute,
                remaining: per_minute.saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
                reset_secs,
            }))
        }
        Admission::Full => Err(Error::RateLimited {
            scope,
            state: RateState {
                limit: per_minute,
                remaining: 0,
                reset_secs,
            },
        }),
    }
}

/// Adds each report's calls to its shared counter, concurrently, and
/// learns the counters' totals (best effort: a failed report is logged and
/// its calls counted again with the next one).
pub async fn report(app: &App, reports: Vec<Report>) {
    let writes = reports.into_iter().map(|r| async move {
        match app.repo.add_calls(r.scope, &r.id, r.window, r.calls).await {
            Ok(total) => app.limiter.learned(&r, total),
            Err(e) => {
                app.limiter.unreported(&r);
                tracing::warn!(error = %e, scope = ?r.scope, "could not report rate-limit counts");
            }
        }
    });
    futures_util::future::join_all(writes).await;
}

/// Calls of one limit admitted by this process and not yet added to the
/// shared counter.
#[derive(Debug, Clone)]
pub struct Report {
    scope: LimitScope,
    id: String,
    window: i64,
    calls: i64,
}

enum Admission {
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
    fn admit(&self, scope: LimitScope, id: &str, window: i64, per_minute: u32) -> Admission {
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
    fn learned(&self, r: &Report, total: i64) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counters.get_mut(&(r.scope, r.id.clone())) {
            if c.window == r.window {
                c.shared = c.shared.max(total);
            }
        }
    }

    /// A report that failed: its calls are pending again.
    fn unreported(&self, r: &Report) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = counters.get_mut(&(r.scope, r.id.clone())) {
            if c.window == r.window {
                c.shared -= r.calls;
                c.pending += r.calls;
            }
        }
    }

    fn blocked(&self, key: &str, window: i64) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .is_some_and(|w| *w == window)
    }

    fn block(&self, key: String, window: i64) {
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

    #[test]
    fn ipv6_is_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        assert_eq!(client_key("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(
            client_key("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7",
            "IPv4-mapped addresses count as IPv4"
        );
    }
}
