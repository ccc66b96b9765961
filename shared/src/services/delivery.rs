//! The delivery worker: one HTTP attempt per deliveries-queue
//! message, signed both ways, logged, and retried on Svix's schedule.
//!
//! Retries are new queue messages, not visibility changes, so the queue's
//! receive count (and its dead-letter redrive) only counts real processing
//! failures. Waits longer than the queue allows (15 min) are chained: a
//! message that arrives before the delivery's `next_attempt_at` is sent on
//! again with the remaining delay.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::app::App;
use crate::error::Error;
use crate::model::{Delivery, DeliveryAttempt, DeliveryStatus, Subscription};
use crate::seal;
use crate::signature::hmac_sha256;
use crate::work::{self, Message, Outcome};

/// Each wait varies by up to this fraction either way.
pub const JITTER: f64 = 0.2;
/// 429s and timeouts wait at least this long.
pub const MIN_THROTTLED_WAIT: Duration = Duration::from_secs(60);
/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// A subscription whose every attempt failed for this long is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;
/// The part of a subscriber's answer kept in the attempt log.
pub const RESPONSE_EXCERPT_BYTES: usize = 4096;

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

/// The headers that sign one attempt: seed 001's `X-Crewship-*` (keyed by
/// the secret string) and Standard Webhooks' `webhook-*` (keyed by the
/// base64-decoded `whsec_` key). `secrets` holds the current secret first,
/// then the previous one while its grace window lasts; Standard Webhooks
/// lists a signature per secret, seed 001's header carries the current one
/// and `X-Crewship-Signature-Previous` the previous one.
pub fn signature_headers(
    id: &str,
    event: &str,
    timestamp: i64,
    body: &str,
    secrets: &[String],
) -> Vec<(&'static str, String)> {
    let mut h = vec![
        ("content-type", "application/json".to_owned()),
        ("x-crewship-event", event.to_owned()),
        ("x-crewship-delivery", id.to_owned()),
        ("x-crewship-timestamp", timestamp.to_string()),
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    let crewship = |s: &str| {
        format!(
            "sha256={}",
            hex::encode(hmac_sha256(
                s.as_bytes(),
                format!("{timestamp}.{body}").as_bytes()
            ))
        )
    };
    if let Some(current) = secrets.first() {
        h.push(("x-crewship-signature", crewship(current)));
    }
    if let Some(previous) = secrets.get(1) {
        h.push(("x-crewship-signature-previous", crewship(previous)));
    }
    let standard: Vec<String> = secrets
        .iter()
        .map(|s| {
            let key = STANDARD
                .decode(s.strip_prefix("whsec_").unwrap_or(s))
                .unwrap_or_else(|_| s.as_bytes().to_vec());
            let mac = hmac_sha256(&key, format!("{id}.{timestamp}.{body}").as_bytes());
            format!("v1,{}", STANDARD.encode(mac))
        })
        .collect();
    h.push(("webhook-signature", standard.join(" ")));
    h
}

/// What one HTTP attempt came to.
#[derive(Debug, Default)]
struct AttemptResult {
    status: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
    retry_after: Option<Duration>,
    timed_out: bool,
    /// The destination is not allowed (SSRF guard): retrying cannot help.
    refused: bool,
    duration: Duration,
}

impl AttemptResult {
    fn success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

async fn attempt(
    app: &App,
    sub: &Subscription,
    delivery: &Delivery,
    secrets: &[String],
) -> AttemptResult {
    let started = Instant::now();
    let mut r = AttemptResult::default();
    if let Err(e) = app.settings.outbound.check_url(&sub.url) {
        r.error = Some(format!("destination refused: url {e}"));
        r.refused = true;
        return r;
    }

    let ts = app.clock.now().timestamp();
    let mut req = app.outbound.post(&sub.url).body(delivery.body.clone());
    for (k, v) in signature_headers(&delivery.id, &delivery.event, ts, &delivery.body, secrets) {
        req = req.header(k, v);
    }
    match req.send().await {
        Err(e) => {
            r.timed_out = e.is_timeout();
            r.refused = crate::outbound::refusal_in(&e).is_some();
            let msg = crate::error::error_chain(&e.without_url());
            r.error = Some(if r.timed_out {
                format!("timeout: {msg}")
            } else {
                msg
            });
        }
        Ok(mut resp) => {
            r.status = Some(resp.status().as_u16());
            r.retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, app.clock.now()));
            let mut body = Vec::new();
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if body.len() >= RESPONSE_EXCERPT_BYTES {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        r.timed_out = e.is_timeout();
                        r.error = Some(format!(
                            "reading the answer failed: {}",
                            crate::error::error_chain(&e.without_url())
                        ));
                        break;
                    }
                }
            }
            r.excerpt = Some(excerpt(&body));
            if !r.success() && r.error.is_none() {
                r.error = Some(format!("HTTP {}", resp.status().as_u16()));
            }
        }
    }
    r.duration = started.elapsed();
    r
}

/// How much longer than the subscriber's timeout a claimed attempt may take.
const CLAIM_MARGIN: Duration = Duration::from_secs(60);

/// The first 4 KiB of an answer as text (a character cut at the end is
/// dropped, invalid bytes are replaced).
fn excerpt(body: &[u8]) -> String {
    let mut cut = &body[..body.len().min(RESPONSE_EXCERPT_BYTES)];
    if let Err(e) = std::str::from_utf8(cut) {
        if e.error_len().is_none() {
            cut = &cut[..e.valid_up_to()];
        }
    }
    String::from_utf8_lossy(cut).into_owned()
}

/// The subscription's signing secrets valid now, current first.
async fn secrets(app: &App, sub: &Subscription) -> Result<Vec<String>, Error> {
    let mut out = vec![seal::open_sealed(app, &sub.secret_sealed).await?];
    if let (Some(prev), Some(until)) =
        (&sub.previous_secret_sealed, sub.previous_secret_valid_until)
    {
        if app.clock.now() < until {
            out.push(seal::open_sealed(app, prev).await?);
        }
    }
    Ok(out)
}

const BACKEND_RETRY: Duration = Duration::from_secs(5);

/// Makes one attempt of the delivery a deliveries-queue message names
/// (`manual`: asked for by hand, made whatever the delivery's state, not
/// retried).
pub async fn process(app: &App, delivery_id: &str, manual: bool) -> Outcome {
    match attempt_delivery(app, delivery_id, manual).await {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(%delivery_id, error = %e, detail = ?e, "delivery processing failed; will retry");
            Outcome::RetryAfter(BACKEND_RETRY)
        }
    }
}

async fn attempt_delivery(app: &App, delivery_id: &str, manual: bool) -> Result<Outcome, Error> {
    let Some(mut d) = app.repo.get::<Delivery>(delivery_id).await? else {
        return Ok(Outcome::Poison(format!(
            "delivery {delivery_id} does not exist"
        )));
    };
    let now = app.clock.now();
    if !manual {
        if d.status != DeliveryStatus::Pending {
            return Ok(Outcome::Done);
        }
        if let Some(at) = d.next_attempt_at {
            let remaining = (at - now).to_std().unwrap_or_default();
            if remaining > Duration::from_secs(1) {
                requeue(app, &d.id, remaining).await?;
                return Ok(Outcome::Done);
            }
        }
    }
    let sub = match app.repo.get::<Subscription>(&d.subscription_id).await? {
        Some(s) if s.enabled || manual => s.record,
        other => {
            let why = if other.is_some() {
                "subscription disabled"
            } else {
                "subscription deleted"
            };
            if !manual {
                d.status = DeliveryStatus::Failed;
                d.last_error = Some(why.into());
                d.next_attempt_at = None;
                d.completed_at = Some(now);
                d.updated_at = now;
                app.repo.try_save(&mut d).await?;
            }
            return Ok(Outcome::Done);
        }
    };
    let keys = secrets(app, &sub).await?;

    // Claim the attempt with a conditional write: of two messages for one
    // delivery (a redelivery, a re-emit) only one makes the call; the other
    // stops here. The claim also pushes `next_attempt_at` past the call's
    // longest duration, so a message arriving meanwhile waits instead.
    d.attempts += 1;
    d.updated_at = now;
    if !manual {
        let lease = app.settings.delivery_timeout + CLAIM_MARGIN;
        d.next_attempt_at = Some(now + chrono::Duration::from_std(lease).unwrap_or_default());
    }
    if !app.repo.try_save(&mut d).await? {
        return Ok(Outcome::Done);
    }

    let r = attempt(app, &sub, &d, &keys).await;
    let log = DeliveryAttempt {
        delivery_id: d.id.clone(),
        attempt: d.attempts,
        timestamp: now,
        status_code: r.status,
        error: r.error.clone(),
        duration_ms: r.duration.as_millis() as u64,
        response_excerpt: r.excerpt.clone(),
        manual,
        expires_at: d.expires_at,
    };
    app.repo.record_attempt(&log).await?;
    d.last_status_code = r.status;
    d.last_error = r.error.clone();
    d.updated_at = app.clock.now();

    let gone = r.status == Some(410);
    let mut retry_in = None;
    if r.success() {
        d.status = DeliveryStatus::Succeeded;
        d.next_attempt_at = None;
        d.completed_at = Some(d.updated_at);
    } else if manual {
        // One attempt, as asked; the delivery keeps its state otherwise.
    } else {
        let throttled = r.status == Some(429) || r.timed_out;
        let wait = if gone || r.refused {
            None
        } else {
            next_delay(
                &app.settings.delivery_schedule,
                d.attempts,
                throttled,
                r.retry_after,
                (app.jitter)(),
            )
        };
        match wait {
            Some(w) => {
                d.next_attempt_at = Some(now + chrono::Duration::from_std(w).unwrap_or_default());
                retry_in = Some(w);
            }
            None => {
                d.status = DeliveryStatus::Failed;
                d.next_attempt_at = None;
                d.completed_at = Some(d.updated_at);
            }
        }
    }
    if !app.repo.try_save(&mut d).await? {
        // Someone changed the delivery meanwhile (a manual redelivery):
        // their outcome stands, and no second retry chain is started.
        return Ok(Outcome::Done);
    }
    if let Some(w) = retry_in {
        requeue(app, &d.id, w).await?;
    }
    note_outcome(app, &sub.id, r.success(), gone).await?;
    Ok(Outcome::Done)
}

/// Queues the next attempt, waiting at most what the queue allows now.
async fn requeue(app: &App, id: &str, wait: Duration) -> Result<(), Error> {
    let msg = Message::Delivery {
        delivery_id: id.to_owned(),
        manual: false,
    };
    work::send(app, &msg, wait).await?;
    Ok(())
}

/// Keeps the subscription's failure streak: a success ends it, `410 Gone`
/// or five days of nothing but failures disables the subscription.
async fn note_outcome(app: &App, sub_id: &str, success: bool, gone: bool) -> Result<(), Error> {
    for _ in 0..3 {
        let Some(mut sub) = app.repo.get::<Subscription>(sub_id).await? else {
            return Ok(());
        };
        let now = app.clock.now();
        let changed = if success {
            sub.failing_since.take().is_some()
        } else if gone {
            sub.enabled = false;
            sub.disabled_reason = Some("the receiver answered 410 Gone".into());
            true
        } else {
            match sub.failing_since {
                None => {
                    sub.failing_since = Some(now);
                    true
                }
                Some(since)
                    if sub.enabled && now - since >= chrono::Duration::days(DISABLE_AFTER_DAYS) =>
                {
                    sub.enabled = false;
                    sub.disabled_reason = Some(format!(
                        "every delivery attempt failed for {DISABLE_AFTER_DAYS} days (since {})",
                        crate::clock::rfc3339(since)
                    ));
                    true
                }
                Some(_) => false,
            }
        };
        if !changed {
            return Ok(());
        }
        if let Some(reason) = sub.disabled_reason.as_deref().filter(|_| !sub.enabled) {
            tracing::warn!(subscription_id = %sub.id, %reason, "subscription disabled");
        }
        sub.updated_at = now;
        if app.repo.try_save(&mut sub).await? {
            return Ok(());
        }
    }
    Ok(())
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

    #[test]
    fn signatures_follow_both_recipes() {
        // Standard Webhooks' published example (svix): whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
        // id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330.
        let body = r#"{"test": 2432232314}"#;
        let secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()];
        let h = signature_headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "run.succeeded",
            1614265330,
            body,
            &secrets,
        );
        let get = |k: &str| {
            h.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("webhook-signature"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let expected = format!(
            "sha256={}",
            hex::encode(hmac_sha256(
                secrets[0].as_bytes(),
                format!("1614265330.{body}").as_bytes()
            ))
        );
        assert_eq!(get("x-crewship-signature"), expected);
        assert_eq!(get("x-crewship-timestamp"), "1614265330");
        assert!(h.iter().all(|(n, _)| *n != "x-crewship-signature-previous"));

        let two = vec![
            secrets[0].clone(),
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        ];
        let h = signature_headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "run.succeeded",
            1614265330,
            body,
            &two,
        );
        let sig = h
            .iter()
            .find(|(n, _)| *n == "webhook-signature")
            .unwrap()
            .1
            .clone();
        assert_eq!(sig.split(' ').count(), 2);
        assert!(sig.starts_with("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1,"));
        assert!(h.iter().any(|(n, _)| *n == "x-crewship-signature-previous"));
    }
}
