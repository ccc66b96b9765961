//! Real-time run events: the WebSocket channel `workspace:{id}` and the SSE
//! routes follow runs of streaming agents, every line in order exactly
//! once, across a reconnect; workspaces are kept apart.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::harness::{FakeAgent, Hookrun, ADMIN_KEY};

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const WAIT: Duration = Duration::from_secs(30);

fn ws_url(h: &Hookrun) -> String {
    format!("{}/api/v1/ws", h.base.replacen("http", "ws", 1))
}

/// Connects with the key in the subprotocol (as a browser would).
pub(crate) async fn ws_connect(h: &Hookrun, key: &str) -> Ws {
    let mut req = ws_url(h).into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("hookrun.v1, hookrun.bearer.{key}").parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    // The key is never echoed: the server picks the protocol name.
    assert_eq!(resp.headers()["sec-websocket-protocol"], "hookrun.v1");
    let ready = next_json(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    ws
}

/// The next JSON text frame (pings and pongs skipped).
pub(crate) async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .unwrap();
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// The close frame's code (frames before it skipped).
async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

pub(crate) async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

pub(crate) async fn subscribe(ws: &mut Ws, v: Value) -> Value {
    let mut msg = json!({"type": "subscribe"});
    msg.as_object_mut()
        .unwrap()
        .extend(v.as_object().unwrap().clone());
    send(ws, msg).await;
    next_json(ws).await
}

/// Events of one run off a WebSocket until its terminal event, or until
/// `stop_after` events (then the connection is dropped).
async fn ws_events(ws: &mut Ws, run_id: &str, stop_after: Option<usize>) -> Vec<Value> {
    let mut got = vec![];
    loop {
        let e = next_json(ws).await;
        assert_ne!(e["type"], "error", "{e}");
        if e["run_id"] != run_id {
            continue;
        }
        let terminal = e["type"] == "run.succeeded" || e["type"] == "run.failed";
        got.push(e);
        if terminal || stop_after == Some(got.len()) {
            return got;
        }
    }
}

/// An SSE stream's events (`id`, `event`, `data` parsed), until it ends or
/// `stop_after` events were read (then the request is dropped).
async fn sse_events(
    h: &Hookrun,
    path: &str,
    last_event_id: Option<&str>,
    stop_after: Option<usize>,
) -> Vec<Value> {
    sse_from(h.http.clone(), h.url(path), last_event_id, stop_after).await
}

async fn sse_from(
    http: reqwest::Client,
    url: String,
    last_event_id: Option<&str>,
    stop_after: Option<usize>,
) -> Vec<Value> {
    sse_until(http, url, last_event_id, move |got| {
        stop_after == Some(got.len())
    })
    .await
}

/// An SSE stream's events until it ends or `done` says the events so far
/// are enough (then the request is dropped).
async fn sse_until(
    http: reqwest::Client,
    url: String,
    last_event_id: Option<&str>,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut req = http.get(url).bearer_auth(ADMIN_KEY);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut buf = String::new();
    let mut got = vec![];
    loop {
        let chunk = tokio::time::timeout(WAIT, resp.chunk())
            .await
            .expect("SSE data in time")
            .unwrap();
        let Some(chunk) = chunk else { return got };
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let (mut id, mut event, mut data) = (None, None, None);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str::<Value>(v).unwrap());
                }
            }
            let Some(data) = data else { continue }; // a keep-alive comment
            assert_eq!(
                event.as_deref(),
                data["type"].as_str(),
                "event: names the type"
            );
            assert_eq!(id.as_deref(), data["id"].as_str(), "id: is the event id");
            got.push(data);
            if done(&got) {
                return got;
            }
        }
    }
}

/// What a run of the streaming agent with `n` lines announces, in order:
/// queued, started, the start line, every streamed line, the outcome line,
/// succeeded.
fn assert_whole_run(events: &[Value], n: usize, run_id: &str) {
    let ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "each event exactly once: {ids:?}");
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    assert!(events.iter().all(|e| e["run_id"] == run_id));
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"run.queued"), "{kinds:?}");
    assert_eq!(kinds[1], "run.started");
    assert_eq!(kinds.last(), Some(&"run.succeeded"));
    let lines: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "agent.log" && e["data"]["stream"] == "output")
        .map(|e| e["data"]["line"].as_str().unwrap())
        .collect();
    let mut want: Vec<String> = (0..n).map(|i| format!("line {i}")).collect();
    want.push(json!({"done": true, "lines": n}).to_string());
    assert_eq!(lines, want);
    assert_eq!(
        events.len(),
        n + 1 + 5,
        "queued, started, start line, lines, outcome line, succeeded"
    );
}

async fn streaming_agent(h: &Hookrun, fake: &FakeAgent, query: &str) -> (String, String) {
    h.create_agent(json!({
        "name": "streamer",
        "runner": {"type": "http", "url": fake.url(&format!("/stream?{query}"))},
    }))
    .await
}

#[tokio::test]
async fn websocket_and_sse_follow_a_streaming_run_exactly_once_across_reconnects() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let n = 60;
    let (agent, secret) =
        streaming_agent(&h, &fake, &format!("n={n}&delay_ms=25&format=sse")).await;

    // Subscribed before the run exists: the workspace channel sees it all.
    let mut whole = ws_connect(&h, ADMIN_KEY).await;
    let ok = subscribe(
        &mut whole,
        json!({"channel": format!("workspace:{}", h.workspace)}),
    )
    .await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    // And one that will drop out in the middle and resume.
    let mut first = ws_connect(&h, ADMIN_KEY).await;
    subscribe(
        &mut first,
        json!({"channel": format!("workspace:{}", h.workspace), "agent_id": agent}),
    )
    .await;
    // An agent's SSE stream, subscribed before the run too.
    let agent_sse = tokio::spawn(sse_from(
        h.http.clone(),
        h.url(&format!("/api/v1/agents/{agent}/events")),
        None,
        Some(n + 6),
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let run_id = h
        .trigger(&agent, &secret, json!({"event": "go", "source": "test"}))
        .await;

    let mut resumed = ws_events(&mut first, &run_id, Some(20)).await;
    drop(first);
    let last = resumed.last().unwrap()["id"].as_str().unwrap().to_owned();
    let mut again = ws_connect(&h, ADMIN_KEY).await;
    let ok = subscribe(
        &mut again,
        json!({"channel": format!("workspace:{}", h.workspace), "last_event_id": last}),
    )
    .await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    resumed.extend(ws_events(&mut again, &run_id, None).await);
    assert_whole_run(&resumed, n, &run_id);

    assert_whole_run(&ws_events(&mut whole, &run_id, None).await, n, &run_id);
    assert_whole_run(&agent_sse.await.unwrap(), n, &run_id);

    // The run's own SSE stream: from the start, cut, resumed with
    // Last-Event-ID; it ends by itself after the terminal event.
    let path = format!("/api/v1/runs/{run_id}/events");
    let mut sse = sse_events(&h, &path, None, Some(25)).await;
    let last = sse.last().unwrap()["id"].as_str().unwrap().to_owned();
    sse.extend(sse_events(&h, &path, Some(&last), None).await);
    assert_whole_run(&sse, n, &run_id);

    // The final event is the run's output; the lines are its log.
    let run = h.wait_finished(&run_id, WAIT).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], json!({"done": true, "lines": n}));
    let (_, logs) = h
        .get(&format!(
            "/api/v1/agents/{agent}/logs?run_id={run_id}&limit=100"
        ))
        .await;
    let output_lines = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["stream"] == "output")
        .count();
    assert_eq!(
        output_lines,
        n + 1,
        "each streamed event logged once, the output not again"
    );
}

/// Whether the last event is `run_id`'s terminal event.
fn ends_run(got: &[Value], run_id: &str) -> bool {
    got.last().is_some_and(|e| {
        e["run_id"] == run_id && (e["type"] == "run.succeeded" || e["type"] == "run.failed")
    })
}

/// Per run: each event once, in `seq` order, nothing after its terminal
/// event.
fn assert_each_run_in_order(events: &[Value], resumed_from: &str) {
    let mut last: std::collections::HashMap<&str, (u64, bool)> = Default::default();
    for e in events {
        let run = e["run_id"].as_str().unwrap();
        let seq = e["seq"].as_u64().unwrap();
        if let Some((before, ended)) = last.get(run) {
            assert!(
                !ended,
                "{} after its run's end (resumed from {resumed_from})",
                e["id"]
            );
            assert!(
                seq > *before,
                "{} after seq {before} (resumed from {resumed_from})",
                e["id"]
            );
        }
        let terminal = e["type"] == "run.succeeded" || e["type"] == "run.failed";
        last.insert(run, (seq, terminal));
    }
}

/// Resumes from `from` on the workspace's WebSocket channel and on the
/// agent's SSE stream; each answers `run_id`'s events after it (up to its
/// terminal event).
async fn resume_both(h: &Hookrun, agent: &str, run_id: &str, from: &str) -> [Vec<Value>; 2] {
    let mut ws = ws_connect(h, ADMIN_KEY).await;
    let ok = subscribe(
        &mut ws,
        json!({"channel": format!("workspace:{}", h.workspace), "last_event_id": from}),
    )
    .await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    let mut over_ws = vec![];
    while !ends_run(&over_ws, run_id) {
        let e = next_json(&mut ws).await;
        assert_ne!(e["type"], "error", "{e}");
        over_ws.push(e);
    }
    let run = run_id.to_owned();
    let over_sse = sse_until(
        h.http.clone(),
        h.url(&format!("/api/v1/agents/{agent}/events")),
        Some(from),
        move |got| ends_run(got, &run),
    )
    .await;
    for got in [&over_ws, &over_sse] {
        assert_each_run_in_order(got, from);
    }
    [over_ws, over_sse].map(|got| got.into_iter().filter(|e| e["run_id"] == run_id).collect())
}

/// Resuming an agent's or a workspace's stream from any event of a run
/// gives the rest of that run once, in `seq` order, its terminal event
/// after all of its lines: from each event while the run goes on, and
/// again once it finished; for an agent that streams and one that answers
/// JSON after 0.3 s.
#[tokio::test]
async fn broad_resumes_from_every_position_give_the_rest_of_the_run_once_in_order() {
    let fake = FakeAgent::start().await;
    // Many resumes at once: the stream caps are not under test here.
    let h = std::sync::Arc::new(Hookrun::start_with(&[
        ("HOOKRUN_MAX_STREAMS_PER_KEY", "1000"),
        ("HOOKRUN_MAX_STREAMS_PER_WORKSPACE", "1000"),
        ("HOOKRUN_MAX_STREAMS", "1000"),
    ]));
    let streamer = streaming_agent(&h, &fake, "n=5&delay_ms=40&format=sse").await;
    let slow = h
        .create_agent(json!({"name": "slow", "runner": {"type": "http", "url": fake.url("/slow")}}))
        .await;
    for (agent, secret) in [streamer, slow] {
        let mut live = ws_connect(&h, ADMIN_KEY).await;
        subscribe(
            &mut live,
            json!({"channel": format!("workspace:{}", h.workspace), "agent_id": agent}),
        )
        .await;
        let run_id = h
            .trigger(&agent, &secret, json!({"event": "go", "source": "test"}))
            .await;
        // Each event as it is published is a resume point at once, while
        // the run goes on.
        let mut whole: Vec<Value> = vec![];
        let mut during = vec![];
        while !ends_run(&whole, &run_id) {
            let e = next_json(&mut live).await;
            if e["run_id"] != run_id.as_str() {
                continue;
            }
            let terminal = e["type"] == "run.succeeded" || e["type"] == "run.failed";
            if !terminal {
                let (h, agent, run_id) = (h.clone(), agent.clone(), run_id.clone());
                let from = e["id"].as_str().unwrap().to_owned();
                during.push((
                    from.clone(),
                    tokio::spawn(async move { resume_both(&h, &agent, &run_id, &from).await }),
                ));
            }
            whole.push(e);
        }
        let ids = |v: &[Value]| -> Vec<String> {
            v.iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let all = ids(&whole);
        let position = |from: &str| all.iter().position(|id| id == from).unwrap();
        for (from, task) in during {
            for got in task.await.unwrap() {
                assert_eq!(
                    ids(&got),
                    all[position(&from) + 1..],
                    "resumed from {from} while running"
                );
            }
        }
        // And from every position of the finished run but its last.
        for from in &all[..all.len() - 1] {
            for got in resume_both(&h, &agent, &run_id, from).await {
                assert_eq!(
                    ids(&got),
                    all[position(from) + 1..],
                    "resumed from {from} once finished"
                );
            }
        }
    }
}

#[tokio::test]
async fn ndjson_lines_are_logged_with_their_levels_and_the_last_is_the_output() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = streaming_agent(&h, &fake, "n=12&format=ndjson").await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "go"})).await;
    let run = h.wait_finished(&run_id, WAIT).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"], json!({"done": true, "lines": 12}));
    let events = sse_events(&h, &format!("/api/v1/runs/{run_id}/events"), None, None).await;
    assert_whole_run(&events, 12, &run_id);
    let warned: Vec<&str> = events
        .iter()
        .filter(|e| e["data"]["level"] == "warn")
        .map(|e| e["data"]["line"].as_str().unwrap())
        .collect();
    assert_eq!(warned, ["line 9"]);
}

#[tokio::test]
async fn a_streaming_agent_still_meets_the_timeout_and_the_size_cap() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start_with(&[("HOOKRUN_MAX_OUTPUT_BYTES", "2048")]);
    // 1 s timeout, a line every 200 ms for 100 lines.
    let (slow, secret) = h
        .create_agent(json!({
            "name": "slow-stream", "timeout_seconds": 1,
            "runner": {"type": "http", "url": fake.url("/stream?n=100&delay_ms=200&format=ndjson")},
        }))
        .await;
    let run_id = h.trigger(&slow, &secret, json!({"event": "go"})).await;
    let run = h.wait_finished(&run_id, WAIT).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["exit_code"], 124);
    let events = sse_events(&h, &format!("/api/v1/runs/{run_id}/events"), None, None).await;
    let streamed = events
        .iter()
        .filter(|e| e["data"]["stream"] == "output")
        .count();
    assert!(
        (2..=6).contains(&streamed),
        "the lines before the timeout are kept: {streamed}"
    );
    assert_eq!(events.last().unwrap()["type"], "run.failed");
    assert_eq!(events.last().unwrap()["data"]["exit_code"], 124);

    // 200 lines at once are more than 2 KiB.
    let (big, secret) = streaming_agent(&h, &fake, "n=200&format=sse").await;
    let run_id = h.trigger(&big, &secret, json!({"event": "go"})).await;
    let run = h.wait_finished(&run_id, WAIT).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit of 2048 bytes"),
        "{run}"
    );
}

#[tokio::test]
async fn workspaces_are_kept_apart_and_bad_credentials_are_refused() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (other_ws, other_key) = h.create_workspace("other");
    let (agent, secret) = streaming_agent(&h, &fake, "n=3&format=sse").await;

    // Another workspace's channel is refused, with a reason and a close code.
    let mut intruder = ws_connect(&h, &other_key).await;
    let refused = subscribe(
        &mut intruder,
        json!({"channel": format!("workspace:{}", h.workspace)}),
    )
    .await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "forbidden");
    assert_eq!(close_code(&mut intruder).await, 4003);

    // Its own channel hears nothing of this workspace's runs; the first
    // message may carry the key instead of the handshake.
    let (mut neighbour, _) = tokio_tungstenite::connect_async(ws_url(&h)).await.unwrap();
    send(
        &mut neighbour,
        json!({"type": "auth", "api_key": other_key}),
    )
    .await;
    assert_eq!(
        next_json(&mut neighbour).await["workspace_id"],
        other_ws.as_str()
    );
    subscribe(
        &mut neighbour,
        json!({"channel": format!("workspace:{other_ws}")}),
    )
    .await;
    // Nor may it name this workspace's agent.
    let named = subscribe(
        &mut neighbour,
        json!({"channel": format!("workspace:{other_ws}"), "agent_id": agent}),
    )
    .await;
    assert_eq!(named["code"], "not_found", "{named}");
    subscribe(
        &mut neighbour,
        json!({"channel": format!("workspace:{other_ws}")}),
    )
    .await;

    let mut mine = ws_connect(&h, ADMIN_KEY).await;
    subscribe(
        &mut mine,
        json!({"channel": format!("workspace:{}", h.workspace)}),
    )
    .await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "go"})).await;
    assert_whole_run(&ws_events(&mut mine, &run_id, None).await, 3, &run_id);
    send(&mut neighbour, json!({"type": "ping"})).await;
    let answer = next_json(&mut neighbour).await;
    assert_eq!(
        answer["type"], "pong",
        "nothing of the other workspace came first: {answer}"
    );

    // SSE of another workspace's run or agent: 404, as every other route.
    for path in [
        format!("/api/v1/runs/{run_id}/events"),
        format!("/api/v1/agents/{agent}/events"),
    ] {
        let resp = h
            .http
            .get(h.url(&path))
            .bearer_auth(&other_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A malformed Last-Event-ID is a 400, not a replay from the start.
    let resp = h
        .http
        .get(h.url(&format!("/api/v1/runs/{run_id}/events")))
        .bearer_auth(ADMIN_KEY)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");

    // A bad key in the handshake: an ordinary 401, no upgrade.
    let mut req = ws_url(&h).into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        "hookrun.v1, hookrun.bearer.hka_wrong".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    // A bad first message: an error, then close 4001.
    let (mut anon, _) = tokio_tungstenite::connect_async(ws_url(&h)).await.unwrap();
    send(
        &mut anon,
        json!({"type": "subscribe", "channel": format!("workspace:{}", h.workspace)}),
    )
    .await;
    assert_eq!(next_json(&mut anon).await["code"], "unauthorized");
    assert_eq!(close_code(&mut anon).await, 4001);
    // Not a WebSocket handshake at all: a JSON 400.
    let (status, body) = h.get("/api/v1/ws").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    // The key never reaches the log.
    assert!(!h.log().contains(&other_key));
}

/// Connects without a key (it would authenticate with its first message).
async fn ws_connect_anonymous(h: &Hookrun) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(ws_url(h)).await.unwrap();
    ws
}

/// Frames the server cannot take end the connection with RFC 6455's code
/// for them: a message over the limit (4 KiB before authenticating, 64 KiB
/// after) with 1009, a text frame that is not UTF-8 with 1007, a frame of
/// a reserved type with 1002.
#[tokio::test]
async fn frames_over_the_limits_or_broken_close_with_their_codes() {
    let h = Hookrun::start();
    // Before authenticating: more than the auth message needs.
    let mut anonymous = ws_connect_anonymous(&h).await;
    send(
        &mut anonymous,
        json!({"type": "auth", "api_key": "x".repeat(16 * 1024)}),
    )
    .await;
    assert_eq!(close_code(&mut anonymous).await, 1009);
    // A normal auth message still fits.
    let mut anonymous = ws_connect_anonymous(&h).await;
    send(
        &mut anonymous,
        json!({"type": "auth", "api_key": ADMIN_KEY}),
    )
    .await;
    assert_eq!(next_json(&mut anonymous).await["type"], "ready");
    // Authenticated: 64 KiB at most.
    let mut ws = ws_connect(&h, ADMIN_KEY).await;
    send(
        &mut ws,
        json!({"type": "ping", "pad": "x".repeat(100 * 1024)}),
    )
    .await;
    assert_eq!(close_code(&mut ws).await, 1009);
    // Not UTF-8.
    use tokio_tungstenite::tungstenite::protocol::frame::{coding, Frame};
    let mut ws = ws_connect(&h, ADMIN_KEY).await;
    let bad = Frame::message(
        vec![0xff, 0xfe, 0x22],
        coding::OpCode::Data(coding::Data::Text),
        true,
    );
    ws.send(Message::Frame(bad)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1007);
    // A reserved frame type.
    let mut ws = ws_connect(&h, ADMIN_KEY).await;
    let odd = Frame::message(
        vec![1, 2, 3],
        coding::OpCode::Data(coding::Data::Reserved(3)),
        true,
    );
    ws.send(Message::Frame(odd)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 1002);
}

/// A run's stream resumed at or past its terminal event, once the run is
/// over, ends at once instead of waiting for events that will never come.
#[tokio::test]
async fn a_finished_runs_stream_resumed_past_its_end_ends_at_once() {
    let h = Hookrun::start();
    let (agent, secret) = h.create_agent(json!({"name": "echo"})).await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "e"})).await;
    h.wait_finished(&run_id, WAIT).await;
    let path = format!("/api/v1/runs/{run_id}/events");
    let whole = sse_events(&h, &path, None, None).await;
    let terminal = whole.last().unwrap()["id"].as_str().unwrap().to_owned();
    for from in [terminal, format!("{run_id}:99999")] {
        let rest = tokio::time::timeout(
            Duration::from_secs(5),
            sse_events(&h, &path, Some(&from), None),
        )
        .await
        .unwrap_or_else(|_| panic!("the stream resumed from {from} did not end"));
        assert!(rest.is_empty(), "{rest:?}");
    }
}

/// An SSE stream of `agent` opened with `key`, its answer kept open.
async fn open_stream(h: &Hookrun, key: &str, agent: &str) -> reqwest::Response {
    h.http
        .get(h.url(&format!("/api/v1/agents/{agent}/events")))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// Event streams have caps of their own, in all, per workspace and per
/// key: over one, SSE answers 429 with the JSON error and a WebSocket
/// closes with 4029. They do not count against the connections' cap, so
/// with every stream slot taken, calls are still served.
#[tokio::test]
async fn event_streams_have_caps_of_their_own() {
    let h = Hookrun::start_with(&[
        ("HOOKRUN_MAX_STREAMS", "6"),
        ("HOOKRUN_MAX_STREAMS_PER_WORKSPACE", "4"),
        ("HOOKRUN_MAX_STREAMS_PER_KEY", "2"),
        ("HOOKRUN_MAX_CONNECTIONS", "8"),
    ]);
    let (agent, secret) = h.create_agent(json!({"name": "a"})).await;
    let mut held = vec![];
    for _ in 0..2 {
        let s = open_stream(&h, ADMIN_KEY, &agent).await;
        assert_eq!(s.status(), StatusCode::OK);
        held.push(s);
    }
    let over = open_stream(&h, ADMIN_KEY, &agent).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(over.headers().contains_key("retry-after"));
    let body: Value = over.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("for this admin key"),
        "{body}"
    );
    // Another key of the workspace: two more, then the workspace is full.
    let mut keys = vec![];
    for name in ["second", "third"] {
        let (s, k) = h
            .admin(
                reqwest::Method::POST,
                "/api/v1/admin-keys",
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{k}");
        keys.push(k["key"].as_str().unwrap().to_owned());
    }
    for _ in 0..2 {
        let s = open_stream(&h, &keys[0], &agent).await;
        assert_eq!(s.status(), StatusCode::OK);
        held.push(s);
    }
    let over = open_stream(&h, &keys[1], &agent).await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = over.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("for this workspace"),
        "{body}"
    );
    // Another workspace: two more fill the process's cap of 6.
    let (_, other_key) = h.create_workspace("other");
    let (s, other_agent) = h
        .http
        .post(h.url("/api/v1/agents"))
        .bearer_auth(&other_key)
        .json(&json!({"name": "b"}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(s, StatusCode::CREATED);
    let other_agent = other_agent.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let s = open_stream(&h, &other_key, &other_agent).await;
        assert_eq!(s.status(), StatusCode::OK);
        held.push(s);
    }
    // A WebSocket now: closed with 4029.
    let mut req = ws_url(&h).into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("hookrun.v1, hookrun.bearer.{other_key}")
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(close_code(&mut ws).await, 4029);
    // Six streams on a cap of eight connections: a new client's calls
    // are still served (the streams gave their connection slots back).
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..4 {
        let resp = fresh
            .get(h.url("/healthz"))
            .send()
            .await
            .expect("served beside the streams");
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let run_id = h.trigger(&agent, &secret, json!({"event": "e"})).await;
    assert!(run_id.starts_with("run_"));
    // A stream that ends gives its place back.
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = tokio::time::timeout(WAIT, async {
        loop {
            let s = open_stream(&h, ADMIN_KEY, &agent).await;
            if s.status() == StatusCode::OK {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await
    .expect("a slot comes back once its stream ends");
    assert_eq!(again.status(), StatusCode::OK);
}

/// A subscribe sent while the previous one is still reading its replay
/// replaces it: that replay is dropped, not computed and sent first.
#[tokio::test]
async fn a_newer_subscribe_drops_the_replay_of_the_older() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start();
    let (agent, secret) = streaming_agent(&h, &fake, "n=400&format=ndjson").await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "go"})).await;
    h.wait_finished(&run_id, WAIT).await;
    // Without Nagle's delay, so the messages below arrive together.
    let mut req = ws_url(&h).into_client_request().unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("hookrun.v1, hookrun.bearer.{ADMIN_KEY}")
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, None, true)
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "ready");
    let channel = format!("workspace:{}", h.workspace);
    // Back to back, in one write: a resume from the run's start, then a
    // plain one, then a ping.
    for m in [
        json!({"type": "subscribe", "channel": channel, "last_event_id": format!("{run_id}:0")}),
        json!({"type": "subscribe", "channel": channel, "agent_id": agent}),
        json!({"type": "ping"}),
    ] {
        ws.feed(Message::Text(m.to_string().into())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut got = vec![];
    loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "pong" {
            break;
        }
        got.push(m);
    }
    let kinds: Vec<&str> = got.iter().map(|m| m["type"].as_str().unwrap()).collect();
    assert!(
        kinds.iter().all(|k| *k == "subscribed"),
        "no replayed event of the dropped subscription: {kinds:?}"
    );
    // The newer one answers (the pong may overtake it: a ping is answered
    // at once, a subscription once set up).
    let subscribed = if got.is_empty() {
        next_json(&mut ws).await
    } else {
        got.pop().unwrap()
    };
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
    assert_eq!(subscribed["agent_id"], agent.as_str(), "{subscribed}");
    assert!(got.is_empty(), "one subscribed only: {got:?}");
}

/// A client that stops reading is given up on (close 4008) after the
/// frame in flight: when it reads again it finds whole events, then the
/// close code, never a cut frame.
#[tokio::test]
async fn a_client_that_stops_reading_finds_whole_frames_then_4008() {
    let fake = FakeAgent::start().await;
    let h = Hookrun::start_with(&[
        ("HOOKRUN_STREAM_SEND_TIMEOUT_SECONDS", "1"),
        ("HOOKRUN_MAX_OUTPUT_BYTES", "16777216"),
    ]);
    // About 12 MB of events: more than the sockets' buffers hold (the
    // server's send buffer grows to 4 MB on Linux by default).
    let (agent, secret) = streaming_agent(&h, &fake, "n=2400&pad=5000&format=ndjson").await;
    let run_id = h.trigger(&agent, &secret, json!({"event": "go"})).await;
    // Storing 12 MB of lines takes the emulator 15 s on a quiet machine;
    // what is tested is the framing, not that time.
    h.wait_finished(&run_id, Duration::from_secs(120)).await;
    // A small receive buffer, so the server's sends stall soon.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr: std::net::SocketAddr = h.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let mut req = ws_url(&h).into_client_request().unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {ADMIN_KEY}").parse().unwrap(),
    );
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (mut ws, _) = tokio_tungstenite::client_async(req, stream).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "ready");
    let channel = format!("workspace:{}", h.workspace);
    send(
        &mut ws,
        json!({"type": "subscribe", "channel": channel, "run_id": run_id}),
    )
    .await;
    // Not reading: the server gives up after 1 s, and its close waits
    // behind the rest of the frame it was sending.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut events = 0;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no close frame after {events} events"));
        match frame {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t)
                    .unwrap_or_else(|e| panic!("frame {events} is not whole JSON: {e}"));
                if v["type"] != "subscribed" {
                    events += 1;
                }
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 4008, "{frame:?}");
                break;
            }
            other => panic!("after {events} events: {other:?}"),
        }
    }
    assert!(
        (1..2400).contains(&events),
        "given up part way through: {events} events"
    );
}
