//! When a failed delivery is tried again: Svix's schedule with jitter,
//! throttling, and `Retry-After`.

use std::time::Duration;

/// Each wait varies by up to this fraction either way.
pub const JITTER: f64 = 0.2;
/// 429s and timeouts wait at least this long.
pub const MIN_THROTTLED_WAIT: Duration = Duration::from_secs(60);
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The wait before the next attempt after `failed_attempts` failures, or
/// `None` when the schedule is exhausted. `jitter` in [-1, 1] scales the
/// ±20 % variation. The default schedule (`HOOKRUN_DELIVERY_RETRY_SCHEDULE`)
/// is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; eight attempts in all.
pub fn next_delay(
    schedule: &[Duration],
    failed_attempts: u32,
    throttled: bool,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    let base = *schedule.get((failed_attempts as usize).checked_sub(1)?)?;
    let factor = 1.0 + JITTER * jitter.clamp(-1.0, 1.0);
    let mut wait = base.mul_f64(factor);
    if throttled {
        wait = wait.max(MIN_THROTTLED_WAIT);
    }
    if let Some(ra) = retry_after {
        wait = wait.max(ra.min(MAX_RETRY_AFTER));
    }
    Some(wait)
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}
#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULE_SECS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

    fn schedule() -> Vec<Duration> {
        SCHEDULE_SECS
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect()
    }

    #[test]
    fn the_default_schedule_is_svix() {
        assert_eq!(crate::Settings::default().delivery_schedule, schedule());
    }

    #[test]
    fn schedule_with_jitter() {
        assert_eq!(
            next_delay(&schedule(), 1, false, None, 0.0),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            next_delay(&schedule(), 2, false, None, 0.0),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            next_delay(&schedule(), 7, false, None, 0.0),
            Some(Duration::from_secs(36_000))
        );
        assert_eq!(
            next_delay(&schedule(), 8, false, None, 0.0),
            None,
            "eight attempts, then failed"
        );
        assert_eq!(next_delay(&schedule(), 0, false, None, 0.0), None);
        assert_eq!(
            next_delay(&schedule(), 3, false, None, 1.0),
            Some(Duration::from_secs(2160)),
            "+20 %"
        );
        assert_eq!(
            next_delay(&schedule(), 3, false, None, -1.0),
            Some(Duration::from_secs(1440)),
            "-20 %"
        );
        assert_eq!(
            next_delay(&schedule(), 3, false, None, 7.0),
            Some(Duration::from_secs(2160)),
            "jitter is clamped"
        );
    }

    #[test]
    fn throttling_and_retry_after() {
        assert_eq!(
            next_delay(&schedule(), 1, true, None, 0.0),
            Some(MIN_THROTTLED_WAIT)
        );
        assert_eq!(
            next_delay(&schedule(), 1, true, Some(Duration::from_secs(120)), 0.0),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            next_delay(&schedule(), 2, true, Some(Duration::from_secs(10)), 0.0),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            next_delay(
                &schedule(),
                1,
                false,
                Some(Duration::from_secs(999_999)),
                0.0
            ),
            Some(MAX_RETRY_AFTER)
        );
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("90", now), Some(Duration::from_secs(90)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 2026 00:02:00 GMT", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
