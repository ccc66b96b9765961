//! Fixed-window rate limits: counters on the item table shared by every
//! process and Lambda instance, pre-aggregated in each process so a call
//! costs a fraction of a write ([`Limiter`], in `state`). Windows are
//! whole minutes of the injected clock.
//!
//! [`Limiter`]: crate::state::limiter::Limiter

use std::net::IpAddr;

use crate::app::App;
use crate::error::{Error, LimitScope, RateState, StoreError};
use crate::state::limiter::Admission;
pub use crate::state::limiter::Report;

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

#[cfg(test)]
mod tests {
    use super::*;

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
