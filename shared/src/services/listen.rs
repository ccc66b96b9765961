//! `hookrun listen` sessions (docs/ARCHITECTURE.md, "Listen sessions"): a
//! short-lived subscription whose deliveries are pushed to the listening
//! client over the real-time channel (or fetched by it), which forwards
//! them to a URL on its machine and reports on them, instead of hookrun
//! POSTing them. The deliveries are made, signed, logged and retried as
//! any subscription's (the same body, headers and retry schedule); only
//! the attempt is the client's. A session hears of no run once it has
//! expired, a few minutes after its client was last heard of.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::error::{Entity, Error};
use crate::ids::{self, AgentId, RunId, WorkspaceId};
use crate::live::ListenPush;
use crate::model::subscription::ListenSession;
use crate::model::{Delivery, DeliveryStatus, Environment, Subscription};
use crate::ports::{Index, Query};
use crate::services::{delivery, sealing, subscriptions};

/// How long a session lives after its client was last heard of.
pub const SESSION_TTL: Duration = Duration::from_secs(300);
/// A `listen` (or a fetch) moves the session's end on only once this much
/// of it has passed, so a client heard of all the time writes once a
/// minute.
const RENEW_AFTER: Duration = Duration::from_secs(60);
/// The longest a fetch waits for a delivery (under API Gateway's 30 s).
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// Deliveries one fetch (or one `listen`) gives at most, oldest due first.
pub const PAGE: usize = 25;
/// How often a waiting fetch looks again.
const POLL: Duration = Duration::from_millis(500);

/// Opens a session, or renews the one this machine holds for `label`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenListen {
    /// Names the listening machine; the same machine and label always
    /// make the same session (its pending deliveries are resumed).
    pub machine_id: String,
    /// What the session forwards to (the local URL), so one machine may
    /// hold several.
    pub label: String,
    /// The run events it hears of (default: all of them).
    pub events: Option<Vec<String>>,
    /// Only this agent's runs.
    pub agent_id: Option<String>,
    pub environment: Option<Environment>,
    /// `whsec_…`: what its deliveries are signed with. The client keeps
    /// it, one per workspace and machine, so the local handler's
    /// configuration stays the same from one session to the next.
    pub secret: String,
}

/// A session as the API shows it (never its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListenView {
    pub id: String,
    pub events: Vec<String>,
    pub agent_id: Option<AgentId>,
    pub environment: Environment,
    /// It hears of no run after this, unless its client is heard of again.
    #[serde(with = "crate::clock::ts")]
    pub expires_at: DateTime<Utc>,
}

/// A delivery to forward: exactly what a subscription's receiver gets.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListenDelivery {
    pub id: String,
    pub event: String,
    pub run_id: RunId,
    /// The attempt this is (1 the first time).
    pub attempt: u32,
    /// The headers hookrun sends a subscription's receiver (`X-Crewship-*`
    /// and Standard Webhooks'), signed with the session's secret.
    pub headers: BTreeMap<String, String>,
    /// The body, byte for byte.
    pub body: String,
}

/// What became of a forwarded delivery.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenAttempt {
    /// The local receiver's status code; none when it could not be
    /// reached.
    pub status_code: Option<u16>,
    /// Why there was no answer (refused, timed out).
    pub error: Option<String>,
    pub duration_ms: u64,
    /// The start of the answer (the first 4 KiB are kept).
    pub response: Option<String>,
}

pub fn view(s: &Subscription) -> ListenView {
    ListenView {
        id: s.id.clone(),
        events: s.events.clone(),
        agent_id: s.agent_id.clone(),
        environment: s.environment,
        expires_at: s.listen.as_ref().map(|l| l.expires_at).unwrap_or_default(),
    }
}

fn session_id(workspace_id: &WorkspaceId, machine_id: &str, label: &str) -> String {
    let digest = ids::sha256_hex(&format!("{workspace_id}|{machine_id}|{label}"));
    format!("sub_listen_{}", &digest[..24])
}

fn validate(req: &OpenListen) -> Result<(), Error> {
    let plain = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if req.machine_id.is_empty() || req.machine_id.len() > 128 || !plain(&req.machine_id) {
        return Err(Error::invalid(
            "machine_id",
            "machine_id must be 1 to 128 letters, digits, - or _",
        ));
    }
    if req.label.trim().is_empty() || req.label.chars().count() > 500 {
        return Err(Error::invalid("label", "label must be 1 to 500 characters"));
    }
    let key = req
        .secret
        .strip_prefix("whsec_")
        .and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok());
    if key.is_none_or(|k| k.len() < 24) {
        return Err(Error::invalid(
            "secret",
            "secret must be whsec_ and a base64 key of at least 24 bytes",
        ));
    }
    Ok(())
}

/// Opens the session of this machine and label, or renews it (events,
/// agent, environment and secret as given now).
pub async fn open(
    app: &App,
    workspace_id: &WorkspaceId,
    req: OpenListen,
) -> Result<Subscription, Error> {
    validate(&req)?;
    let events = match &req.events {
        Some(e) => subscriptions::validate_events(e)?,
        None => crate::model::subscription::EVENTS
            .iter()
            .map(|e| (*e).to_owned())
            .collect(),
    };
    let agent_id =
        subscriptions::validate_agent(app, workspace_id, req.agent_id.as_deref()).await?;
    let now = app.clock.now();
    let listen = Some(ListenSession {
        expires_at: now + chrono::Duration::from_std(SESSION_TTL).unwrap_or_default(),
    });
    let id = session_id(workspace_id, &req.machine_id, &req.label);
    let sealed = sealing::seal_with_current(app, &req.secret).await?;
    let environment = req.environment.unwrap_or_default();
    let sub = match app.repo.find::<Subscription>(workspace_id, &id).await {
        Ok(mut s) => {
            s.record.events = events;
            s.record.agent_id = agent_id;
            s.record.environment = environment;
            s.record.secret_sealed = sealed;
            s.record.listen = listen;
            s.record.enabled = true;
            s.record.disabled_reason = None;
            s.record.updated_at = now;
            if !app.repo.try_save(&mut s).await? {
                return Err(Error::Conflict("the session changed; retry".into()));
            }
            s.record
        }
        Err(Error::NotFound(_)) => {
            let name: String = format!("listen: {}", req.label.trim())
                .chars()
                .take(200)
                .collect();
            let sub = Subscription {
                id,
                workspace_id: workspace_id.clone(),
                name,
                url: "listen:".into(),
                events,
                environment,
                agent_id,
                enabled: true,
                disabled_reason: None,
                failing_since: None,
                secret_sealed: sealed,
                previous_secret_sealed: None,
                previous_secret_valid_until: None,
                created_at: now,
                updated_at: now,
                listen,
            };
            app.repo.create(&sub).await?;
            sub
        }
        Err(e) => return Err(e),
    };
    // The workspace's subscriptions are cached for fan-out: a new session
    // hears of runs from the next read on (at once in this process).
    app.forget_cached();
    Ok(sub)
}

/// A listen session of the workspace (another subscription is not one).
async fn session(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
) -> Result<crate::repo::Versioned<Subscription>, Error> {
    let s = app.repo.find::<Subscription>(workspace_id, id).await?;
    if s.listen.is_none() {
        return Err(Error::NotFound(Entity::Subscription));
    }
    Ok(s)
}

/// Moves the session's end on: its client was heard of now (at most one
/// write a minute for a client heard of all the time).
async fn renew(app: &App, sub: &mut crate::repo::Versioned<Subscription>) -> Result<(), Error> {
    let now = app.clock.now();
    let ttl = chrono::Duration::from_std(SESSION_TTL).unwrap_or_default();
    let renew = chrono::Duration::from_std(RENEW_AFTER).unwrap_or_default();
    if sub
        .listen
        .as_ref()
        .is_some_and(|l| l.expires_at - now < ttl - renew)
    {
        let was_expired = sub.listen.as_ref().is_some_and(|l| l.expires_at <= now);
        sub.record.listen = Some(ListenSession {
            expires_at: now + ttl,
        });
        sub.record.updated_at = now;
        // Lost to a concurrent renewal: that one did the same.
        app.repo.try_save(sub).await?;
        if was_expired {
            app.forget_cached();
        }
    }
    Ok(())
}

/// A delivery as its client forwards it, headers signed now.
fn to_forward(d: Delivery, secrets: &[String], now: DateTime<Utc>) -> ListenDelivery {
    let ts = now.timestamp();
    ListenDelivery {
        headers: delivery::signature_headers(&d.id, &d.event, ts, &d.body, secrets)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        attempt: d.attempts + 1,
        id: d.id,
        event: d.event,
        run_id: d.run_id,
        body: d.body,
    }
}

/// Up to `max` of the session's deliveries due now, oldest first (the due
/// index is sorted by when each is due, so the first not yet due ends it).
async fn due_now(app: &App, id: &str, max: usize) -> Result<Vec<Delivery>, Error> {
    let now = app.clock.now();
    let mut ready = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .repo
            .page::<Delivery>(
                Query::partition(Index::Gsi2, Delivery::due_partition(id))
                    .limit(PAGE)
                    .after(cursor),
            )
            .await?;
        let mut later = false;
        for d in page.data {
            if d.status != DeliveryStatus::Pending {
                continue;
            }
            if d.next_attempt_at.is_some_and(|at| at <= now) {
                ready.push(d);
            } else {
                later = true;
                break;
            }
        }
        match page.next_cursor {
            Some(c) if !later && ready.len() < max => cursor = Some(c),
            _ => break,
        }
    }
    ready.truncate(max);
    Ok(ready)
}

/// The session's deliveries due now, oldest first (at most [`PAGE`]),
/// waiting up to `wait` for one; the fetch tells hookrun the client is
/// there, so the session lives on.
pub async fn due(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    wait: Duration,
) -> Result<Vec<ListenDelivery>, Error> {
    let mut sub = session(app, workspace_id, id).await?;
    renew(app, &mut sub).await?;
    let secrets = delivery::subscription_secrets(app, &sub).await?;
    let started = std::time::Instant::now();
    loop {
        let ready = due_now(app, id, PAGE).await?;
        if !ready.is_empty() || started.elapsed() >= wait.min(MAX_WAIT) {
            let now = app.clock.now();
            return Ok(ready
                .into_iter()
                .map(|d| to_forward(d, &secrets, now))
                .collect());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            // The server is stopping: a waiting fetch answers at once (with
            // nothing), so it does not hold the stop up.
            _ = app.live.closed() => return Ok(Vec::new()),
        }
    }
}

/// What a `listen` message on the channel is answered with: the session,
/// and (when asked for) the deliveries due now, oldest first, at most
/// [`PAGE`], with whether more are due.
pub struct Resumed {
    pub session: ListenView,
    /// None when not asked for (a keep-alive).
    pub due: Option<Vec<ListenDelivery>>,
    pub more: bool,
}

/// A client listening on the real-time channel (its `listen` message,
/// first and then every so often): the session lives on, and, with
/// `give_due`, what is due now is given, oldest first, a page at a time;
/// what comes due later is pushed ([`push`]). A client that was away gets
/// here what it missed.
pub async fn resume(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    give_due: bool,
) -> Result<Resumed, Error> {
    let mut sub = session(app, workspace_id, id).await?;
    renew(app, &mut sub).await?;
    let session = view(&sub);
    if !give_due {
        return Ok(Resumed {
            session,
            due: None,
            more: false,
        });
    }
    let secrets = delivery::subscription_secrets(app, &sub).await?;
    let now = app.clock.now();
    let mut due = due_now(app, id, PAGE + 1).await?;
    let more = due.len() > PAGE;
    due.truncate(PAGE);
    Ok(Resumed {
        session,
        due: Some(
            due.into_iter()
                .map(|d| to_forward(d, &secrets, now))
                .collect(),
        ),
        more,
    })
}

/// A listen session's delivery come due (the delivery worker's turn for
/// it): pushed over the real-time channel to the connections listening to
/// the session. It stays pending until its client reports it, so a client
/// not there now gets it when it says `listen` again.
pub(crate) async fn push(app: &App, sub: &Subscription, d: Delivery) -> Result<(), Error> {
    let secrets = delivery::subscription_secrets(app, sub).await?;
    let forward = to_forward(d, &secrets, app.clock.now());
    app.live
        .push_listen(ListenPush {
            workspace_id: sub.workspace_id.clone(),
            session_id: sub.id.clone(),
            text: crate::live::protocol::delivery(&sub.id, &forward).to_string(),
        })
        .await;
    Ok(())
}

/// Records what became of a forwarded delivery and settles it as the
/// delivery worker settles its own attempts (a failure waits for its
/// next attempt by the retry schedule, then is pushed again).
pub async fn report(
    app: &App,
    workspace_id: &WorkspaceId,
    id: &str,
    delivery_id: &str,
    req: ListenAttempt,
) -> Result<Delivery, Error> {
    let sub = session(app, workspace_id, id).await?;
    let d = match app.repo.get::<Delivery>(delivery_id).await? {
        Some(d) if d.subscription_id == sub.id => d,
        _ => return Err(Error::NotFound(Entity::Delivery)),
    };
    if d.status != DeliveryStatus::Pending {
        // Reported twice (a client that lost the first answer): it stands.
        return Ok(d.record);
    }
    let error = req.error.map(|e| e.chars().take(1000).collect::<String>());
    delivery::settle_reported(
        app,
        d,
        sub,
        req.status_code,
        error,
        req.response.as_deref(),
        Duration::from_millis(req.duration_ms.min(3_600_000)),
    )
    .await?;
    app.repo
        .get::<Delivery>(delivery_id)
        .await?
        .map(|d| d.record)
        .ok_or(Error::NotFound(Entity::Delivery))
}

/// Ends a session at once (its client stopped): it hears of nothing more,
/// and what it had still to forward is given up (no client will). Its
/// deliveries stay in the delivery log until they expire.
pub async fn close(app: &App, workspace_id: &WorkspaceId, id: &str) -> Result<(), Error> {
    session(app, workspace_id, id).await?;
    subscriptions::delete(app, workspace_id, id).await?;
    let now = app.clock.now();
    // Bounded: a delivery whose save is lost to a concurrent change is
    // looked at again on the next page, at most this many times.
    for _ in 0..20 {
        let page = app
            .repo
            .page::<Delivery>(Query::partition(Index::Gsi2, Delivery::due_partition(id)).limit(100))
            .await?;
        if page.data.is_empty() {
            break;
        }
        for d in page.data {
            let Some(mut v) = app.repo.get::<Delivery>(&d.id).await? else {
                continue;
            };
            if v.status == DeliveryStatus::Pending {
                v.record.status = DeliveryStatus::Failed;
                v.record.last_error = Some("the listen session was closed".into());
                v.record.next_attempt_at = None;
                v.record.completed_at = Some(now);
                v.record.updated_at = now;
                app.repo.try_save(&mut v).await?;
            }
        }
    }
    Ok(())
}
