//! Real-time events on AWS, against the local AWS emulator: the `realtime`
//! function's handling of `$connect`, the channel's messages and
//! `$disconnect`, with connection items in DynamoDB, and the executor's
//! fan-out through the API Gateway Management API. The Management API is
//! a small local fake of its `@connections` routes (the emulator accepts
//! posts but does not let a test read them back), answering 410 for
//! connections the test marks gone.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use hookrun_core::aws::provision;
use hookrun_core::aws::websocket::{handle, ApiGatewayFanout, WsRequest};
use hookrun_core::model::{Connection, RunStatus, RunnerConfig, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::services::{admin, agents, events, ingress, listen, runs, subscriptions};
use hookrun_core::{work, App, Settings};
use serde_json::{json, Value};

#[path = "support/signed.rs"]
mod signed;

const ADMIN: &str = "websocket-aws-admin-key-0123456789-abcdef";

#[derive(Clone, Default)]
struct Fake {
    posts: Arc<Mutex<HashMap<String, Vec<Value>>>>,
    deleted: Arc<Mutex<Vec<String>>>,
    gone: Arc<Mutex<HashSet<String>>>,
    pause: Arc<Mutex<Option<Pause>>>,
}

/// Holds the answer to a connection's `at`-th post until told to go on.
struct Pause {
    id: String,
    at: usize,
    reached: tokio::sync::oneshot::Sender<()>,
    resume: tokio::sync::oneshot::Receiver<()>,
}

async fn post(
    State(f): State<Fake>,
    Path(id): Path<String>,
    body: String,
) -> axum::response::Response {
    if f.gone.lock().unwrap().contains(&id) {
        return (
            StatusCode::GONE,
            [
                ("x-amzn-errortype", "GoneException"),
                ("content-type", "application/json"),
            ],
            r#"{"message":"gone"}"#,
        )
            .into_response();
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    let count = {
        let mut posts = f.posts.lock().unwrap();
        let of_id = posts.entry(id.clone()).or_default();
        of_id.push(v);
        of_id.len()
    };
    let pause = {
        let mut pause = f.pause.lock().unwrap();
        match pause.as_ref() {
            Some(p) if p.id == id && p.at == count => pause.take(),
            _ => None,
        }
    };
    if let Some(p) = pause {
        p.reached.send(()).unwrap();
        p.resume.await.unwrap();
    }
    StatusCode::OK.into_response()
}

async fn delete(State(f): State<Fake>, Path(id): Path<String>) -> StatusCode {
    f.deleted.lock().unwrap().push(id);
    StatusCode::NO_CONTENT
}

impl Fake {
    async fn start() -> (Fake, String) {
        let fake = Fake::default();
        let app = axum::Router::new()
            .route(
                "/@connections/{id}",
                axum::routing::post(post).delete(delete),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (fake, url)
    }

    fn got(&self, id: &str) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .get(id)
            .cloned()
            .unwrap_or_default()
    }
}

fn ip() -> IpAddr {
    IpAddr::from([203, 0, 113, 7])
}

fn connect(id: &str, protocols: Option<&str>) -> WsRequest {
    WsRequest {
        route_key: "$connect".into(),
        connection_id: id.into(),
        protocols: protocols.map(str::to_owned),
        authorization: None,
        source_ip: ip(),
        body: None,
    }
}

fn message(id: &str, body: Value) -> WsRequest {
    WsRequest {
        route_key: "$default".into(),
        connection_id: id.into(),
        protocols: None,
        authorization: None,
        source_ip: ip(),
        body: Some(body.to_string()),
    }
}

async fn echo_agent(app: &App, ws: &hookrun_core::ids::WorkspaceId) -> hookrun_core::model::Agent {
    let req = agents::CreateAgent {
        name: "echo".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: Some(60),
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    agents::create(app, ws, req).await.unwrap().0
}

async fn connection(app: &App, id: &str) -> Option<Connection> {
    app.repo
        .get::<Connection>(&Connection::id_for(id))
        .await
        .unwrap()
        .map(|v| v.record)
}

#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn events_reach_subscribed_connections_of_their_workspace_only() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run this test through ./infra/test.sh"
    );
    let sdk = hookrun_core::aws::sdk_config().await;
    let prefix = format!("ws-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut aws = provision::provision(&sdk, &prefix).await.unwrap();
    let (fake, url) = Fake::start().await;
    // The ingress function posts nothing (it is not given the URL).
    let ingress_app = hookrun_core::aws::app(&sdk, &aws, Settings::default());
    aws.websocket_callback_url = Some(url.clone());
    let app = hookrun_core::aws::app(&sdk, &aws, Settings::default());
    let fanout = ApiGatewayFanout::new(&sdk, &url, app.repo.clone());
    let ws = admin::bootstrap(&app, Some(ADMIN))
        .await
        .unwrap()
        .workspace
        .id;
    let (other, other_key) = admin::create_workspace(&app, "other").await.unwrap();
    let other_ws = other.id;
    let channel = format!("workspace:{ws}");

    // $connect with the key in the subprotocol: accepted, the protocol
    // name selected, the key not echoed.
    let answer = handle(
        &app,
        &fanout,
        connect(
            "L0SM9cOFvHcCIhw=",
            Some(&format!("hookrun.v1, hookrun.bearer.{ADMIN}")),
        ),
    )
    .await;
    assert_eq!((answer.status, answer.protocol), (200, Some("hookrun.v1")));
    assert_eq!(
        connection(&app, "L0SM9cOFvHcCIhw=")
            .await
            .unwrap()
            .workspace_id
            .as_ref(),
        Some(&ws)
    );
    // A bad key: refused, nothing kept.
    let answer = handle(
        &app,
        &fanout,
        connect("bad", Some("hookrun.v1, hookrun.bearer.hka_nope")),
    )
    .await;
    assert_eq!(answer.status, 401);
    assert!(connection(&app, "bad").await.is_none());
    // No key: connected, but nothing until its first message authenticates.
    assert_eq!(handle(&app, &fanout, connect("c2", None)).await.status, 200);
    handle(
        &app,
        &fanout,
        message("c2", json!({"type": "subscribe", "channel": channel})),
    )
    .await;
    assert_eq!(fake.got("c2")[0]["code"], "unauthorized");
    assert!(
        fake.deleted.lock().unwrap().contains(&"c2".to_string()),
        "closed"
    );
    assert!(connection(&app, "c2").await.is_none());

    // The neighbour authenticates by message, and may not listen in.
    handle(&app, &fanout, connect("n1", None)).await;
    handle(
        &app,
        &fanout,
        message("n1", json!({"type": "auth", "api_key": other_key})),
    )
    .await;
    assert_eq!(fake.got("n1")[0]["type"], "ready");
    handle(
        &app,
        &fanout,
        message("n1", json!({"type": "subscribe", "channel": channel})),
    )
    .await;
    assert_eq!(fake.got("n1")[1]["code"], "forbidden");
    assert!(
        connection(&app, "n1").await.is_none(),
        "refused and forgotten"
    );
    handle(
        &app,
        &fanout,
        connect(
            "n2",
            Some(&format!("hookrun.v1, hookrun.bearer.{other_key}")),
        ),
    )
    .await;
    handle(
        &app,
        &fanout,
        message(
            "n2",
            json!({"type": "subscribe", "channel": format!("workspace:{other_ws}")}),
        ),
    )
    .await;
    assert_eq!(fake.got("n2")[0]["type"], "subscribed");

    // Two subscribers of this workspace, one of which will be gone.
    for id in ["L0SM9cOFvHcCIhw=", "gone"] {
        handle(
            &app,
            &fanout,
            connect(id, Some(&format!("hookrun.v1, hookrun.bearer.{ADMIN}"))),
        )
        .await;
        handle(
            &app,
            &fanout,
            message(id, json!({"type": "subscribe", "channel": channel})),
        )
        .await;
        assert_eq!(fake.got(id).last().unwrap()["type"], "subscribed", "{id}");
    }
    fake.gone.lock().unwrap().insert("gone".into());

    // A run, executed: its events reach c1, in order.
    let agent = echo_agent(&app, &ws).await;
    let run = ingress::new_run(
        &app,
        &agent,
        TriggerType::Webhook,
        json!({"event": "e"}),
        None,
    );
    runs::enqueue(&ingress_app, &run).await.unwrap();
    let body = json!({ "run_id": run.id }).to_string();
    assert_eq!(
        work::process(&app, QueueId::Runs, &body, None).await,
        work::Outcome::Done
    );
    let events: Vec<Value> = fake
        .got("L0SM9cOFvHcCIhw=")
        .into_iter()
        .filter(|e| e["run_id"] == run.id.as_str())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"run.queued"), "{kinds:?}");
    assert_eq!(kinds[1], "run.started");
    assert!(kinds.contains(&"agent.log"));
    assert_eq!(kinds.last(), Some(&"run.succeeded"));
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The gone connection was removed at its first 410; the neighbour
    // heard nothing.
    assert!(connection(&app, "gone").await.is_none());
    assert!(
        fake.got("n2").iter().all(|e| e["run_id"].is_null()),
        "{:?}",
        fake.got("n2")
    );

    // A client that resumes gets what it missed from the stored logs.
    handle(
        &app,
        &fanout,
        connect("c3", Some(&format!("hookrun.v1, hookrun.bearer.{ADMIN}"))),
    )
    .await;
    let last = events[2]["id"].as_str().unwrap();
    handle(&app, &fanout, message("c3", json!({"type": "subscribe", "channel": channel, "run_id": run.id, "last_event_id": last}))).await;
    let replayed = fake.got("c3");
    assert_eq!(replayed[0]["type"], "subscribed");
    let ids: Vec<&str> = replayed[1..]
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = events[3..]
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, want);

    // A replay of several pages goes out whole, each page after checking
    // that no newer subscribe replaced it.
    let lines: Vec<_> = (0..250u32)
        .map(|i| hookrun_core::model::LogLine {
            run_id: run.id.clone(),
            agent_id: run.agent_id.clone(),
            seq: hookrun_core::model::logs::seq::streamed_lines(1) + 500 + i,
            timestamp: run.created_at,
            stream: "output".into(),
            level: "info".into(),
            message: format!("line {i}"),
            expires_at: None,
        })
        .collect();
    app.repo.append_logs(&lines).await.unwrap();
    let before = fake.got("c3").len();
    handle(
        &app,
        &fanout,
        message(
            "c3",
            json!({"type": "subscribe", "channel": channel, "run_id": run.id}),
        ),
    )
    .await;
    let replayed = fake.got("c3")[before..].to_vec();
    assert_eq!(replayed[0]["type"], "subscribed");
    let done = app
        .repo
        .get::<hookrun_core::model::Run>(&run.id)
        .await
        .unwrap()
        .unwrap()
        .record;
    let stored = hookrun_core::live::replay::run_events(&app, &done, None)
        .await
        .unwrap();
    assert!(stored.len() > 250, "{}", stored.len());
    let ids: Vec<&str> = replayed[1..]
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = stored.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, want);

    // A newer subscribe stops that replay after the page it is posting,
    // as in `hookrun serve`: the connection's item changed meanwhile.
    let before = fake.got("c3").len();
    let (reached, reached_rx) = tokio::sync::oneshot::channel();
    let (resume_tx, resume) = tokio::sync::oneshot::channel();
    *fake.pause.lock().unwrap() = Some(Pause {
        id: "c3".into(),
        at: before + 50,
        reached,
        resume,
    });
    let older = handle(
        &app,
        &fanout,
        message(
            "c3",
            json!({"type": "subscribe", "channel": channel, "run_id": run.id}),
        ),
    );
    let newer = async {
        reached_rx.await.unwrap();
        // What a newer subscribe writes first: the connection's item.
        let mut conn = app
            .repo
            .get::<Connection>(&Connection::id_for("c3"))
            .await
            .unwrap()
            .unwrap();
        app.repo.save(&mut conn).await.unwrap();
        resume_tx.send(()).unwrap();
    };
    tokio::join!(older, newer);
    let posted = fake.got("c3").len() - before;
    assert!(
        posted <= 1 + hookrun_core::live::replay::PAGE + 3,
        "the subscribed answer and one page at most: {posted}"
    );
    assert!(
        posted > 50 && posted < stored.len(),
        "{posted} of {}",
        stored.len()
    );

    // Other messages: ping, bad JSON; $disconnect forgets the connection.
    handle(&app, &fanout, message("c3", json!({"type": "ping"}))).await;
    assert_eq!(fake.got("c3").last().unwrap()["type"], "pong");
    let mut bad = message("c3", json!({}));
    bad.body = Some("not json".into());
    handle(&app, &fanout, bad).await;
    assert_eq!(fake.got("c3").last().unwrap()["code"], "invalid_message");
    let mut bye = message("c3", json!({}));
    bye.route_key = "$disconnect".into();
    assert_eq!(handle(&app, &fanout, bye).await.status, 200);
    assert!(connection(&app, "c3").await.is_none());
}

/// A `hookrun listen` client on API Gateway's channel: its `listen`
/// message is answered with what is due, and the delivery function's turn
/// for a later delivery posts it to the listening connection only.
#[tokio::test]
#[ignore = "needs the local AWS emulator: run ./infra/test.sh"]
async fn a_listen_session_gets_what_is_due_then_pushes_on_its_connection() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run this test through ./infra/test.sh"
    );
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let sdk = hookrun_core::aws::sdk_config().await;
    let prefix = format!("wl-{}", ulid::Ulid::new().to_string().to_lowercase());
    let mut aws = provision::provision(&sdk, &prefix).await.unwrap();
    let (fake, url) = Fake::start().await;
    // The delivery function's app: its hub posts to the connections.
    aws.websocket_callback_url = Some(url.clone());
    let app = hookrun_core::aws::app(&sdk, &aws, Settings::default());
    let fanout = ApiGatewayFanout::new(&sdk, &url, app.repo.clone());
    let ws = admin::bootstrap(&app, Some(ADMIN))
        .await
        .unwrap()
        .workspace
        .id;
    let agent = echo_agent(&app, &ws).await;
    let open: listen::OpenListen = serde_json::from_value(json!({
        "machine_id": "laptop", "label": "http://localhost:3000/hooks", "secret": SECRET,
    }))
    .unwrap();
    let session = listen::open(&app, &ws, open).await.unwrap();
    let finish = |n: u32| {
        let mut run = ingress::new_run(&app, &agent, TriggerType::Webhook, json!({"n": n}), None);
        run.status = RunStatus::Succeeded;
        run
    };
    // A run finished while no client listened: its delivery waits, due.
    let early = finish(1);
    events::emit(&app, "run.succeeded", &early).await.unwrap();

    let bearer = format!("hookrun.v1, hookrun.bearer.{ADMIN}");
    for id in ["L1", "S1"] {
        handle(&app, &fanout, connect(id, Some(&bearer))).await;
    }
    let channel = format!("workspace:{ws}");
    handle(
        &app,
        &fanout,
        message("S1", json!({"type": "subscribe", "channel": channel})),
    )
    .await;
    handle(
        &app,
        &fanout,
        message("L1", json!({"type": "listen", "session_id": session.id})),
    )
    .await;
    let got = fake.got("L1");
    assert_eq!(got[0]["type"], "listening", "{got:?}");
    assert_eq!(got[0]["session"]["id"], session.id.as_str());
    assert_eq!(got[0]["more"], false);
    let d = &got[0]["due"][0];
    assert_eq!(
        (d["run_id"].as_str(), d["attempt"].as_u64()),
        (Some(early.id.as_str()), Some(1))
    );
    signed::assert_standard_signed(d, SECRET);
    assert_eq!(
        connection(&app, "L1")
            .await
            .unwrap()
            .listen_session
            .as_deref(),
        Some(session.id.as_str())
    );

    // A later run: the delivery function's turn posts it to L1, not to
    // the connection that only follows events.
    let later = finish(2);
    events::emit(&app, "run.succeeded", &later).await.unwrap();
    let log = subscriptions::deliveries(&app, &ws, &session.id, 10, None)
        .await
        .unwrap();
    let id = log
        .data
        .iter()
        .find(|d| d.run_id == later.id)
        .expect("the later run's delivery")
        .id
        .clone();
    let body = work::Message::Delivery {
        delivery_id: id.clone(),
        manual: false,
    }
    .encode();
    assert_eq!(
        work::process(&app, QueueId::Deliveries, &body, None).await,
        work::Outcome::Done
    );
    let got = fake.got("L1");
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["type"], "delivery");
    assert_eq!(got[1]["session_id"], session.id.as_str());
    assert_eq!(got[1]["delivery"]["id"], id.as_str());
    assert_eq!(got[1]["delivery"]["run_id"], later.id.as_str());
    assert!(
        fake.got("S1").iter().all(|m| m["type"] != "delivery"),
        "{:?}",
        fake.got("S1")
    );

    // A session that is not there (closed, another workspace's): said so.
    handle(
        &app,
        &fanout,
        message(
            "L1",
            json!({"type": "listen", "session_id": "sub_listen_nope"}),
        ),
    )
    .await;
    assert_eq!(fake.got("L1").last().unwrap()["code"], "not_found");
}
