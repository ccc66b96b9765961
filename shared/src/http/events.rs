//! Server-sent events (docs/ARCHITECTURE.md, "Real-time events"): a run's
//! or an agent's events as `text/event-stream`, each with its `id:`, so a
//! client resumes with `Last-Event-ID`. In `hookrun serve` a stream stays
//! open for live events (a run's ends after its terminal event); where the
//! process does not stream (a Lambda behind an HTTP API), it answers with
//! the events so far and closes.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{Extensions, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;

use super::extract::{Admin, ApiPath, ApiQuery};
use super::openapi::ManagementErrors;
use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;
use crate::live::{parse_event_id, replay, Ended, Filter, Follower, LiveEvent, StreamSlot};
use crate::model::logs::seq;
use crate::services::{agents, runs};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The resume point, for clients that cannot send `Last-Event-ID`
    /// (the header wins when both are sent).
    last_event_id: Option<String>,
}

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A run's events: `run.queued`, `run.started`, every `agent.log` line and
/// the terminal event, from the start (or after `Last-Event-ID`); the
/// stream ends after the terminal event.
#[utoipa::path(
    get,
    path = "/api/v1/runs/{run_id}/events",
    tag = "events",
    operation_id = "stream_run_events",
    security(("admin_key" = [])),
    params(
        ("run_id" = String, Path, description = "The run's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: the stream resumes after it"),
        EventsQuery
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "One SSE event per run event: `id:` the event's id, `event:` its type, `data:` the event as JSON"),
        ManagementErrors
    )
)]
pub async fn run_events(
    State(app): State<App>,
    admin: Admin,
    ApiPath(run_id): ApiPath<String>,
    headers: HeaderMap,
    extensions: Extensions,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let run = runs::get(&app, &admin.workspace_id, &run_id).await?;
    let last = resume_point(&headers, q.last_event_id.as_deref())?;
    let past_the_end = run.status.is_terminal()
        && last
            .as_ref()
            .is_some_and(|(r, s)| *r == run.id && *s >= seq::terminal(run.attempt));
    if past_the_end {
        // The run is over and the client saw its end: nothing will come.
        let none = stream::empty::<Result<Event, Infallible>>();
        return Ok(Sse::new(none).into_response());
    }
    let filter = Filter {
        workspace_id: admin.workspace_id,
        agent_id: Some(run.agent_id.clone()),
        run_id: Some(run.id.clone()),
    };
    respond(app, filter, last, true, &admin.key_id, &extensions).await
}

/// An agent's events, live: every run of the agent, as the run route gives
/// them. With `Last-Event-ID` it first gives what was missed since that
/// event. It stays open until the client leaves.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{agent_id}/events",
    tag = "events",
    operation_id = "stream_agent_events",
    security(("admin_key" = [])),
    params(
        ("agent_id" = String, Path, description = "The agent's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received: the stream resumes after it"),
        EventsQuery
    ),
    responses(
        (status = 200, content_type = "text/event-stream", body = LiveEvent,
         description = "One SSE event per run event: `id:` the event's id, `event:` its type, `data:` the event as JSON"),
        ManagementErrors
    )
)]
pub async fn agent_events(
    State(app): State<App>,
    admin: Admin,
    ApiPath(agent_id): ApiPath<String>,
    headers: HeaderMap,
    extensions: Extensions,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    let agent = agents::get(&app, &admin.workspace_id, &agent_id).await?;
    let last = resume_point(&headers, q.last_event_id.as_deref())?;
    let filter = Filter {
        workspace_id: admin.workspace_id,
        agent_id: Some(agent.id),
        run_id: None,
    };
    respond(app, filter, last, false, &admin.key_id, &extensions).await
}

/// `Last-Event-ID` (or the query's), checked: a malformed one is a 400,
/// not a silent replay from the start.
fn resume_point(headers: &HeaderMap, query: Option<&str>) -> Result<Option<(RunId, u32)>, Error> {
    let raw = match headers.get("last-event-id") {
        Some(v) => Some(v.to_str().map_err(|_| bad_resume())?.to_owned()),
        None => query.map(str::to_owned),
    };
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => parse_event_id(raw).map(Some).ok_or_else(bad_resume),
    }
}

fn bad_resume() -> Error {
    Error::invalid(
        "last_event_id",
        "Last-Event-ID must be an event id as the stream sent it: {run_id}:{seq}",
    )
}

async fn respond(
    app: App,
    filter: Filter,
    last: Option<(RunId, u32)>,
    ends_with_run: bool,
    key_id: &str,
    extensions: &Extensions,
) -> Result<Response, ApiError> {
    if !app.live.is_local() {
        // Nothing streams in this process: what is stored, a page at a
        // time, then the end.
        let replay = replay::Replay::start(&app, &filter, last).await?;
        return Ok(Sse::new(stored(app, replay)).into_response());
    }
    // A long-lived stream: counted against the stream caps, not the
    // connections'.
    let slot = app.streams.take(&filter.workspace_id, key_id)?;
    let follower = Follower::start(&app, filter, last).await?;
    super::ConnectionSlot::release_for(extensions);
    let hub = app.live.clone();
    let body = follow(follower, ends_with_run, hub, slot);
    Ok(Sse::new(body)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// The live stream: ends after the run's terminal event (a run stream),
/// when the client falls behind (an `error` event says so first), or when
/// the server stops.
fn follow(
    follower: Follower,
    ends_with_run: bool,
    hub: crate::live::Hub,
    slot: StreamSlot,
) -> impl Stream<Item = Result<Event, Infallible>> {
    // The slot lives as long as the stream (dropped with it, when it ends
    // or the client leaves).
    let slot = std::sync::Arc::new(slot);
    stream::unfold(Some(follower), move |state| {
        let hub = hub.clone();
        let _slot = slot.clone();
        async move {
            let mut follower = state?;
            let next = tokio::select! {
                next = follower.next() => next,
                () = hub.closed() => Err(Ended::Closed),
            };
            match next {
                Ok(e) => {
                    let done = ends_with_run && e.kind.is_terminal();
                    Some((Ok(sse(&e)), (!done).then_some(follower)))
                }
                Err(ended) => {
                    let event = Event::default()
                        .event("error")
                        .data(serde_json::json!({"code": ended_code(ended), "message": ended.to_string()}).to_string());
                    Some((Ok(event), None))
                }
            }
        }
    })
    .fuse()
}

/// A replay's events as SSE, read a page at a time; a page that cannot
/// be read ends the stream with an `error` event.
fn stored(app: App, replay: replay::Replay) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Some(replay), move |state| {
        let app = app.clone();
        async move {
            let mut replay = state?;
            match replay.next_page(&app).await {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    let events: Vec<_> = page.iter().map(|e| Ok(sse(e))).collect();
                    Some((stream::iter(events), Some(replay)))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a replay could not be read");
                    let ended = Ended::Unavailable;
                    let event = Event::default().event("error").data(
                        serde_json::json!({"code": ended_code(ended), "message": ended.to_string()})
                            .to_string(),
                    );
                    Some((stream::iter(vec![Ok(event)]), None))
                }
            }
        }
    })
    .flatten()
}

pub(super) fn ended_code(ended: Ended) -> &'static str {
    match ended {
        Ended::Lagged => "too_slow",
        Ended::Closed => "going_away",
        Ended::Unavailable => "unavailable",
    }
}

fn sse(e: &LiveEvent) -> Event {
    Event::default()
        .id(e.id.clone())
        .event(e.kind.as_str())
        .data(e.to_json())
}
