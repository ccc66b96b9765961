//! The Lambda glue driven with real API Gateway (HTTP API payload 2.0, REST
//! API 1.0) and SQS event JSON, on the embedded store.

use aws_lambda_events::event::sqs::SqsEvent;
use axum::body::Body;
use hookrun_core::ids::{AgentId, WorkspaceId};
use hookrun_core::model::Run;
use hookrun_core::model::{RunStatus, RunnerConfig, TriggerType};
use hookrun_core::ports::{Queue, QueueId};
use hookrun_core::services::{admin, agents, ingress, runs};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{http, lambda, signature, App, Settings};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Fixture {
    app: App,
    store: SqliteStore,
    ws: WorkspaceId,
    agent: AgentId,
    secret: String,
}

async fn load_run(f: &Fixture, id: &str) -> Run {
    f.app.repo.get::<Run>(id).await.unwrap().unwrap().record
}

const ADMIN: &str = "lambda-test-admin-key-0001-abcdefghij";

async fn fixture() -> Fixture {
    let store = SqliteStore::in_memory().unwrap();
    let app = App::embedded(store.clone(), Settings::default());
    let ws = admin::bootstrap(&app, Some(ADMIN))
        .await
        .unwrap()
        .workspace
        .id;
    let req = agents::CreateAgent {
        name: "a".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (agent, secret) = agents::create(&app, &ws, req).await.unwrap();
    Fixture {
        app,
        store,
        ws,
        agent: agent.id,
        secret,
    }
}

fn v2_event(method: &str, path: &str, headers: Value, body: &str, source_ip: &str) -> String {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip, "userAgent": "curl/8.5"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:10:00:00 +0000",
            "timeEpoch": 1795341600000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
    .to_string()
}

fn v1_event(
    method: &str,
    path: &str,
    headers: Value,
    body: &str,
    source_ip: &str,
    base64: bool,
) -> String {
    let multi: serde_json::Map<String, Value> = headers
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json!([v])))
        .collect();
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi,
        "queryStringParameters": null,
        "multiValueQueryStringParameters": null,
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "identity": {"sourceIp": source_ip, "userAgent": "curl/8.5"},
            "path": format!("/prod{path}"),
            "protocol": "HTTP/1.1",
            "requestId": "req-2",
            "requestTimeEpoch": 1795341600000u64,
            "resourceId": "res",
            "resourcePath": "/{proxy+}",
            "stage": "prod"
        },
        "body": body,
        "isBase64Encoded": base64
    })
    .to_string()
}

async fn call(router: axum::Router, event: &str) -> (u16, Value) {
    let req = lambda_http::request::from_str(event).expect("a valid API Gateway event");
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(resp.into_body()), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn http_api_v2_trigger_records_the_context_source_ip() {
    let f = fixture().await;
    let body = r#"{"event":"push","source":"github"}"#;
    let sig = signature::sign_hex(&f.secret, body.as_bytes());
    let path = format!("/api/v1/webhooks/{}/{}/trigger", f.ws, f.agent);
    let headers = json!({"content-type": "application/json", "x-signature": sig, "x-forwarded-for": "6.6.6.6"});
    let router = lambda::http_handler(http::ingress_router(f.app.clone()));
    let (status, v) = call(
        router,
        &v2_event("POST", &path, headers, body, "203.0.113.9"),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let run = load_run(&f, v["run_id"].as_str().unwrap()).await;
    assert_eq!(
        run.source_ip.as_deref(),
        Some("203.0.113.9"),
        "from the request context, not a header"
    );
    assert_eq!(run.trigger_type, TriggerType::Webhook);
}

#[tokio::test]
async fn rest_api_v1_trigger_with_a_base64_body() {
    use base64::Engine;
    // As template.yaml sets for every function: routes are matched without
    // the REST API's stage prefix.
    std::env::set_var("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true");
    let f = fixture().await;
    let body = r#"{"event":"alert","data":{"value":99}}"#;
    let sig = signature::sign_hex(&f.secret, body.as_bytes());
    let path = format!("/api/v1/webhooks/{}/{}/trigger", f.ws, f.agent);
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let headers = json!({"content-type": "application/json", "x-signature": sig});
    let router = lambda::http_handler(http::ingress_router(f.app.clone()));
    let (status, v) = call(
        router.clone(),
        &v1_event(
            "POST",
            &path,
            headers.clone(),
            &encoded,
            "198.51.100.7",
            true,
        ),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let run = load_run(&f, v["run_id"].as_str().unwrap()).await;
    assert_eq!(run.source_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(run.input["data"]["value"], 99);

    let bad = json!({"content-type": "application/json", "x-signature": "00".repeat(32)});
    let (status, v) = call(
        router,
        &v1_event("POST", &path, bad, body, "198.51.100.7", false),
    )
    .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn each_function_serves_only_its_routes() {
    let f = fixture().await;
    let auth = json!({"authorization": format!("Bearer {ADMIN}")});
    let api = lambda::http_handler(http::api_router(f.app.clone()));
    let ingress_fn = lambda::http_handler(http::ingress_router(f.app.clone()));

    let (status, v) = call(
        api.clone(),
        &v2_event("GET", "/api/v1/agents", auth.clone(), "", "203.0.113.9"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"][0]["id"], f.agent.as_str());
    let (status, _) = call(
        ingress_fn,
        &v2_event("GET", "/api/v1/agents", auth, "", "203.0.113.9"),
    )
    .await;
    assert_eq!(status, 404, "the ingress function has no management routes");

    let path = format!("/api/v1/webhooks/{}/{}/trigger", f.ws, f.agent);
    let sig = signature::sign_hex(&f.secret, b"{}");
    let (status, _) = call(
        api,
        &v2_event(
            "POST",
            &path,
            json!({"x-signature": sig}),
            "{}",
            "203.0.113.9",
        ),
    )
    .await;
    assert_eq!(status, 404, "the api function has no trigger routes");
}

fn sqs_event(records: &[(&str, &str)]) -> SqsEvent {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "receiptHandle": format!("receipt-{id}"),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795341600000", "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795341600001"},
                "messageAttributes": {},
                "md5OfBody": "0",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:hookrun-runs",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("a valid SQS event")
}

#[tokio::test]
async fn runs_batch_reports_only_what_must_be_retried() {
    let f = fixture().await;
    let agent = agents::get(&f.app, &f.ws, &f.agent).await.unwrap();
    let ok = ingress::new_run(
        &f.app,
        &agent,
        TriggerType::Webhook,
        json!({"event": "x"}),
        None,
    );
    runs::enqueue(&f.app, &ok).await.unwrap();
    // A run another executor holds the lease of: deferred (a delayed copy
    // is queued, so waiting never counts toward the dead-letter queue).
    let mut held = ingress::new_run(&f.app, &agent, TriggerType::Webhook, json!({}), None);
    held.status = RunStatus::Running;
    held.attempt = 1;
    held.lease_expires_at = Some(chrono::Utc::now() + chrono::Duration::minutes(5));
    f.app.repo.create(&held).await.unwrap();

    let ok_body = json!({"run_id": ok.id}).to_string();
    let held_body = json!({"run_id": held.id}).to_string();
    let event = sqs_event(&[
        ("m-ok", &ok_body),
        ("m-held", &held_body),
        ("m-garbage", "not json"),
        ("m-unknown", r#"{"run_id":"run_doesnotexist"}"#),
    ]);
    let resp = lambda::handle_runs_batch(&f.app, event).await;
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let still = load_run(&f, &held.id).await;
    assert_eq!(
        (still.status, still.attempt),
        (RunStatus::Running, 1),
        "the holder's run is left alone"
    );

    let done = load_run(&f, &ok.id).await;
    assert_eq!(done.status, RunStatus::Succeeded);
    let dead = f
        .store
        .receive(QueueId::RunsDlq, 10, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let mut bodies: Vec<&str> = dead.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        vec!["not json", r#"{"run_id":"run_doesnotexist"}"#],
        "poison goes to the DLQ once"
    );

    // The answer serialises as Lambda expects it.
    let wire = serde_json::to_value(&resp).unwrap();
    assert_eq!(wire, json!({"batchItemFailures": []}));
}

#[tokio::test]
async fn deliveries_batch_dead_letters_what_it_cannot_process() {
    let f = fixture().await;
    let event = sqs_event(&[
        ("d-garbage", "{not json"),
        ("d-unknown", r#"{"delivery_id":"dlv_doesnotexist"}"#),
    ]);
    let resp = lambda::handle_deliveries_batch(&f.app, event).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "poison is handled, not retried"
    );
    let dead = f
        .store
        .receive(
            QueueId::DeliveriesDlq,
            10,
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 2, "both reached the deliveries DLQ");
    assert!(f
        .store
        .receive(QueueId::RunsDlq, 10, std::time::Duration::from_secs(30))
        .await
        .unwrap()
        .is_empty());
}

/// A `$connect` event of API Gateway's WebSocket API, as the realtime
/// function receives it.
fn websocket_connect(connection_id: &str, protocols: &str) -> String {
    json!({
        "headers": {
            "Host": "abc123.execute-api.us-east-1.amazonaws.com",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Protocol": protocols,
            "Sec-WebSocket-Version": "13"
        },
        "multiValueHeaders": {"Sec-WebSocket-Protocol": [protocols]},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "X1",
            "requestTime": "06/Dec/2026:04:00:00 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": 1796529600000u64,
            "requestTimeEpoch": 1796529600000u64,
            "identity": {"sourceIp": "198.51.100.9", "userAgent": "test"},
            "requestId": "X1",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123"
        },
        "isBase64Encoded": false
    })
    .to_string()
}

#[tokio::test]
async fn websocket_connect_checks_the_key_and_selects_the_protocol() {
    use hookrun_core::aws::websocket::ApiGatewayFanout;
    use hookrun_core::model::Connection;
    let f = fixture().await;
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .build();
    // $connect posts nothing: the fake endpoint is never called.
    let fanout = ApiGatewayFanout::new(&sdk, "http://127.0.0.1:9", f.app.repo.clone());
    let event = serde_json::from_str(&websocket_connect(
        "Abc=",
        &format!("hookrun.v1, hookrun.bearer.{ADMIN}"),
    ))
    .unwrap();
    let resp = lambda::handle_websocket_event(&f.app, &fanout, event).await;
    assert_eq!(resp.status_code, 200);
    assert_eq!(resp.headers["sec-websocket-protocol"], "hookrun.v1");
    let conn = f
        .app
        .repo
        .get::<Connection>(&Connection::id_for("Abc="))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(conn.workspace_id.as_ref(), Some(&f.ws));
    assert!(!conn.subscribed, "nothing is sent before it subscribes");

    let event = serde_json::from_str(&websocket_connect(
        "Bad=",
        "hookrun.v1, hookrun.bearer.hka_wrong",
    ))
    .unwrap();
    let resp = lambda::handle_websocket_event(&f.app, &fanout, event).await;
    assert_eq!(resp.status_code, 401);
    assert!(resp.headers.get("sec-websocket-protocol").is_none());
    let body = match resp.body {
        Some(aws_lambda_events::encodings::Body::Text(t)) => t,
        other => panic!("{other:?}"),
    };
    assert!(!body.contains("hka_wrong"), "{body}");
    assert!(f
        .app
        .repo
        .get::<Connection>("Bad=")
        .await
        .unwrap()
        .is_none());
}
