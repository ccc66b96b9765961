//! The delivery worker (docs/ARCHITECTURE.md, "A delivery attempt"): one
//! HTTP attempt per deliveries-queue message, signed both ways
//! ([`signing`]), logged, and retried on a schedule ([`schedule`]).
//!
//! Retries are new queue messages, not visibility changes, so the queue's
//! receive count (and its dead-letter redrive) only counts real processing
//! failures. Waits longer than the queue allows (15 min) are chained: a
//! message that arrives before the delivery's `next_attempt_at` is sent on
//! again with the remaining delay.

mod schedule;
mod signing;

pub use schedule::{next_delay, parse_retry_after, JITTER, MAX_RETRY_AFTER, MIN_THROTTLED_WAIT};
pub use signing::signature_headers;

use std::time::{Duration, Instant};

use crate::app::App;
use crate::error::Error;
use crate::model::{Delivery, DeliveryAttempt, DeliveryStatus, Subscription};
use crate::repo::Versioned;
use crate::services::sealing;
use crate::work::{self, Message, Outcome};

/// A subscription whose every attempt failed for this long is disabled.
pub const DISABLE_AFTER_DAYS: i64 = 5;
/// The part of a subscriber's answer kept in the attempt log.
pub const RESPONSE_EXCERPT_BYTES: usize = 4096;

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
    if let Err(e) = app.settings.outbound.guard(&sub.url).await {
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
    sealing::open_current_and_previous(
        app,
        &sub.secret_sealed,
        sub.previous_secret_sealed.as_deref(),
        sub.previous_secret_valid_until,
    )
    .await
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
        Some(s) if s.enabled || manual => s,
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
    if sub.listen.is_some() {
        // A listen session's client makes the attempts: the delivery, due
        // now, is pushed to it over the real-time channel and stays
        // pending until it reports. A manual redelivery makes it due again
        // first.
        if manual {
            d.status = DeliveryStatus::Pending;
            d.next_attempt_at = Some(now);
            d.completed_at = None;
            d.updated_at = now;
            if !app.repo.try_save(&mut d).await? {
                return Ok(Outcome::Done);
            }
        }
        super::listen::push(app, &sub, d.record).await?;
        return Ok(Outcome::Done);
    }
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
    settle(app, d, sub, r, manual, now).await
}

/// Records an attempt made at `now` and settles the delivery by it: done,
/// failed, or pending until its next attempt (by the subscription's retry
/// schedule). The worker's own attempts and a listen session's (made by
/// its client, `services::listen`) go through here alike; a listen
/// session's next attempt is a queue message too, whose turn pushes the
/// delivery to its client again.
async fn settle(
    app: &App,
    mut d: Versioned<Delivery>,
    sub: Versioned<Subscription>,
    r: AttemptResult,
    manual: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome, Error> {
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
    // The outcome and the next attempt's message are written together, so
    // a crash between them cannot leave a pending delivery without one.
    let retry: Vec<_> = retry_in
        .map(|w| {
            Message::Delivery {
                delivery_id: d.id.clone(),
                manual: false,
            }
            .outbox(w)
        })
        .into_iter()
        .collect();
    let next_attempt = d.next_attempt_at;
    if !app
        .repo
        .try_save_with_messages(&mut d, retry.clone())
        .await?
    {
        // Someone changed the delivery meanwhile: a manual redelivery (one
        // attempt, never retried). Its outcome stands; if it left the
        // delivery pending, this chain's retry must still be queued.
        if !retry.is_empty() {
            requeue_after_lost_save(app, &d.id, next_attempt, retry).await?;
        }
        return Ok(Outcome::Done);
    }
    note_outcome(app, sub, r.success(), gone).await?;
    Ok(Outcome::Done)
}

/// Settles a listen session's delivery by the attempt its client made and
/// reports (`services::listen`): the same bookkeeping as the worker's own
/// attempts, retry schedule included.
pub(crate) async fn settle_reported(
    app: &App,
    mut d: Versioned<Delivery>,
    sub: Versioned<Subscription>,
    status: Option<u16>,
    error: Option<String>,
    answer: Option<&str>,
    duration: Duration,
) -> Result<(), Error> {
    let mut r = AttemptResult {
        status,
        error,
        excerpt: answer.map(|a| excerpt(a.as_bytes())),
        duration,
        ..Default::default()
    };
    if !r.success() && r.error.is_none() {
        r.error = Some(match status {
            Some(s) => format!("HTTP {s}"),
            None => "no answer".to_owned(),
        });
    }
    let now = app.clock.now();
    d.attempts += 1;
    d.updated_at = now;
    settle(app, d, sub, r, false, now).await.map(|_| ())
}

/// The subscription's signing secrets valid now, current first (a listen
/// session's client gets its deliveries signed with them).
pub(crate) async fn subscription_secrets(
    app: &App,
    sub: &Subscription,
) -> Result<Vec<String>, Error> {
    secrets(app, sub).await
}

/// The automatic chain's outcome lost to a manual redelivery: while the
/// delivery is still pending, write the chain's next attempt (and its
/// message) onto the delivery as it is now.
async fn requeue_after_lost_save(
    app: &App,
    id: &str,
    next_attempt: Option<chrono::DateTime<chrono::Utc>>,
    retry: Vec<crate::ports::OutboxMessage>,
) -> Result<(), Error> {
    for _ in 0..3 {
        let Some(mut current) = app.repo.get::<Delivery>(id).await? else {
            return Ok(());
        };
        if current.status != DeliveryStatus::Pending {
            return Ok(());
        }
        current.next_attempt_at = next_attempt;
        current.updated_at = app.clock.now();
        if app
            .repo
            .try_save_with_messages(&mut current, retry.clone())
            .await?
        {
            return Ok(());
        }
    }
    Err(Error::Conflict(format!("delivery {id} keeps changing")))
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
/// or five days of nothing but failures disables the subscription. Starts
/// from the subscription as read for this attempt (most attempts change
/// nothing), and reads it again only after losing a write to a change.
async fn note_outcome(
    app: &App,
    loaded: Versioned<Subscription>,
    success: bool,
    gone: bool,
) -> Result<(), Error> {
    let id = loaded.id.clone();
    let mut current = Some(loaded);
    for _ in 0..3 {
        let mut sub = match current.take() {
            Some(s) => s,
            None => match app.repo.get::<Subscription>(&id).await? {
                Some(s) => s,
                None => return Ok(()),
            },
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
