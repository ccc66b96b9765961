//! Fixed-window rate limits kept as conditional counters on the item table
//! (one UpdateItem per check), so they hold across any number of processes
//! or Lambda instances. Windows are whole minutes of the injected clock.

use std::net::IpAddr;

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

/// Refuses a caller whose address failed to authenticate too often this
/// minute, before any credential is looked up.
pub async fn check_auth_failures(app: &App, ip: IpAddr) -> Result<(), Error> {
    let limit = app.settings.auth_failures_per_minute;
    if limit == 0 {
        return Ok(());
    }
    let now = app.clock.now().timestamp();
    let window = now.div_euclid(60);
    let count = app
        .repo
        .counter(LimitScope::AuthFailures, &client_key(ip), window)
        .await?;
    if count >= i64::from(limit) {
        return Err(Error::RateLimited {
            scope: LimitScope::AuthFailures,
            state: RateState {
                limit,
                remaining: 0,
                reset_secs: (60 - now.rem_euclid(60)) as u64,
            },
        });
    }
    Ok(())
}

/// Counts a failed authentication from this address (best effort).
pub async fn note_auth_failure(app: &App, ip: IpAddr) {
    let limit = app.settings.auth_failures_per_minute;
    if limit == 0 {
        return;
    }
    let window = app.clock.now().timestamp().div_euclid(60);
    // The counter stops at the limit: once there, every call is refused
    // before it can fail again.
    if let Err(e) = app
        .repo
        .count_call(LimitScope::AuthFailures, &client_key(ip), window, limit)
        .await
    {
        if !matches!(e, StoreError::ConditionFailed) {
            tracing::warn!(error = %e, "could not count a failed authentication");
        }
    }
}

/// Counts one call against `per_minute` for `scope`/`id` (0 = unlimited):
/// the limit's state, or `RateLimited` when the window is full.
pub async fn hit(
    app: &App,
    scope: LimitScope,
    id: &str,
    per_minute: u32,
) -> Result<Option<RateState>, Error> {
    if per_minute == 0 {
        return Ok(None);
    }
    let now = app.clock.now().timestamp();
    let window = now.div_euclid(60);
    let reset_secs = (60 - now.rem_euclid(60)) as u64;
    match app.repo.count_call(scope, id, window, per_minute).await {
        Ok(count) => Ok(Some(RateState {
            limit: per_minute,
            remaining: per_minute.saturating_sub(u32::try_from(count).unwrap_or(u32::MAX)),
            reset_secs,
        })),
        Err(StoreError::ConditionFailed) => Err(Error::RateLimited {
            scope,
            state: RateState {
                limit: per_minute,
                remaining: 0,
                reset_secs,
            },
        }),
        Err(e) => Err(e.into()),
    }
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
