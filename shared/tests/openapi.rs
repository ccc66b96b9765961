//! The OpenAPI document: generated from the handlers' annotations, served
//! at `/openapi.json`, and committed as `docs/openapi.json`, which must be
//! the generated document byte for byte. After changing a route, a body or
//! an answer, regenerate the committed copy with
//! `HOOKRUN_WRITE_OPENAPI=1 cargo test -p hookrun-core --test openapi`.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request};
use hookrun_core::http::openapi;
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{http, App, Settings};
use serde_json::Value;
use tower::ServiceExt;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let generated = openapi::generated_json();
    let path = committed_path();
    if std::env::var_os("HOOKRUN_WRITE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json differs from the document the code generates; \
         regenerate it with HOOKRUN_WRITE_OPENAPI=1 cargo test -p hookrun-core --test openapi"
    );
}

fn doc() -> Value {
    serde_json::from_str(&openapi::generated_json()).unwrap()
}

/// Each operation with its method, path and body.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn every_operation_is_described_secured_and_answers_json_errors() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    // 5 trigger routes, 48 management routes, /healthz and /openapi.json.
    assert_eq!(
        ops.len(),
        60,
        "{:?}",
        ops.iter().map(|o| (&o.0, &o.1)).collect::<Vec<_>>()
    );
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ops.len(), "operation ids are unique");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (method, path, op) in &ops {
        let what = format!("{method} {path}");
        assert!(op["summary"].is_string(), "{what} has a summary");
        assert!(op["tags"][0].is_string(), "{what} has a tag");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{what} documents its success"
        );
        if path != "/healthz" && path != "/openapi.json" {
            assert_eq!(
                responses["default"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{what} documents its errors"
            );
            for requirement in op["security"].as_array().unwrap() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{what} names scheme {name}");
                }
            }
        }
        if path.starts_with("/api/v1/") && !path.contains("/webhook") {
            assert_eq!(
                op["security"],
                serde_json::json!([{ "admin_key": [] }]),
                "{what} takes the admin key"
            );
        }
    }
}

/// Every `$ref` names a schema of the document.
#[test]
fn every_reference_resolves() {
    fn walk(v: &Value, schemas: &serde_json::Map<String, Value>, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(Value::as_str) {
                    let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
                    assert!(schemas.contains_key(name), "dangling {r}");
                    *seen += 1;
                }
                map.values().for_each(|v| walk(v, schemas, seen));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, schemas, seen)),
            _ => {}
        }
    }
    let doc = doc();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut seen = 0;
    walk(&doc, schemas, &mut seen);
    assert!(seen > 100, "{seen} references");
}

/// Every documented operation reaches a handler: no documented path or
/// method is answered by the router's fallbacks (404 "no such route",
/// 405). The routers are built from the same annotations; this checks
/// the path templates mean the same to axum and to OpenAPI.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    // The internal route exists only with an internal token.
    let settings = Settings {
        internal_token: Some("openapi-test-internal-token".into()),
        ..Settings::default()
    };
    let app = App::embedded(SqliteStore::in_memory().unwrap(), settings);
    let router = http::router(app);
    for (method, path, _) in operations(&doc()) {
        let uri = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x1" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        let req = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_ne!(status, 405, "{method} {path}: {body}");
        let fallback = http::ApiError::no_route().message();
        assert!(
            !(status == 404 && body["error"]["message"] == fallback.as_str()),
            "{method} {path} is not routed: {body}"
        );
    }
}

#[tokio::test]
async fn the_document_is_served() {
    let app = App::embedded(SqliteStore::in_memory().unwrap(), Settings::default());
    let req = Request::get("/openapi.json").body(Body::empty()).unwrap();
    let resp = http::router(app).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = axum::body::to_bytes(resp.into_body(), 1 << 22)
        .await
        .unwrap();
    // The committed copy, which the first test keeps equal to the
    // generated document.
    assert_eq!(body, openapi::SERVED_JSON.as_bytes());
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served["openapi"], "3.1.0");
}

/// Found by schemathesis: the optional bodies of the rotation actions are
/// documented as an object or `null`, and `null` was refused with a 400.
/// It means "no options", as an empty body does.
#[tokio::test]
async fn null_is_an_absent_optional_body() {
    const KEY: &str = "openapi-test-admin-key-0123456789";
    let app = App::embedded(SqliteStore::in_memory().unwrap(), Settings::default());
    hookrun_core::services::admin::bootstrap(&app, Some(KEY))
        .await
        .unwrap();
    let router = http::router(app);
    let call = |method: &str, uri: String, body: &str| {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let router = router.clone();
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        }
    };
    let (status, agent) = call("POST", "/api/v1/agents".into(), r#"{"name":"a"}"#).await;
    assert_eq!(status, 201, "{agent}");
    let agent_id = agent["id"].as_str().unwrap();
    let (status, trigger) = call(
        "POST",
        "/api/v1/webhook-triggers".into(),
        &format!(r#"{{"agent_id":"{agent_id}","name":"t","generate_secret":true}}"#),
    )
    .await;
    assert_eq!(status, 201, "{trigger}");
    let trigger_id = trigger["id"].as_str().unwrap();

    let (status, rotated) = call(
        "POST",
        format!("/api/v1/agents/{agent_id}/rotate-secret"),
        "null",
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["webhook_secret"], agent["webhook_secret"]);
    let (status, regenerated) = call(
        "POST",
        format!("/api/v1/webhook-triggers/{trigger_id}/regenerate-secret"),
        "null",
    )
    .await;
    assert_eq!(status, 200, "{regenerated}");
    assert_ne!(regenerated["secret"], trigger["secret"]);
    // Anything else that is not an object is still refused.
    let (status, err) = call(
        "POST",
        format!("/api/v1/agents/{agent_id}/rotate-secret"),
        "[]",
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["code"], "invalid_request");
}

/// API Gateway routes of `template.yaml`: (function, method, path).
fn template_routes() -> Vec<(String, String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let (mut resource, mut method, mut out) = (String::new(), String::new(), Vec::new());
    let value = |line: &str, key: &str| -> Option<String> {
        let at = line.find(key)? + key.len();
        let rest = line[at..].trim();
        let value = match rest.strip_prefix('"') {
            Some(quoted) => &quoted[..quoted.find('"')?],
            None => rest.split([',', ' ']).next()?,
        };
        Some(value.to_owned())
    };
    for line in text.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            resource = line.trim().trim_end_matches(':').to_owned();
        }
        if let Some(m) = value(line, "Method: ") {
            method = m;
        }
        if let Some(p) = value(line, "Path: ") {
            out.push((resource.clone(), method.clone(), p));
        }
    }
    out
}

/// Whether an API Gateway route (`{name}`, greedy `{proxy+}`) takes `path`.
fn gateway_matches(route: &str, path: &str) -> bool {
    let (mut r, mut p) = (route.split('/'), path.split('/'));
    loop {
        match (r.next(), p.next()) {
            (None, None) => return true,
            (Some(seg), Some(_)) if seg.ends_with("+}") => return true,
            (Some(a), Some(b)) if a == b || (a.starts_with('{') && b.starts_with('{')) => {}
            _ => return false,
        }
    }
}

/// Every documented operation reaches the right function through the
/// deployed API: trigger routes the ingress function, the rest the api
/// function.
#[test]
fn the_template_routes_every_documented_operation() {
    let routes = template_routes();
    assert!(routes.len() > 10, "{routes:?}");
    for (method, path, op) in operations(&doc()) {
        let function = if op["tags"][0] == "triggers" {
            "IngressFunction"
        } else {
            "ApiFunction"
        };
        let routed = routes.iter().any(|(f, m, p)| {
            f == function
                && (m == "ANY" || m.eq_ignore_ascii_case(&method))
                && gateway_matches(p, &path)
        });
        assert!(
            routed,
            "template.yaml sends no {method} {path} to {function}"
        );
    }
}

/// The HTTP API's own route list (`DefinitionBody`): each path with the
/// integration it names (`ingress` or `api`).
fn template_definition_routes() -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let (mut current, mut out) = (None::<String>, Vec::new());
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("\"/") && t.ends_with("\":") {
            current = Some(t.trim_end_matches(':').trim_matches('"').to_owned());
        } else if let (Some(p), Some(at)) = (&current, t.find("x-amazon-apigateway-integrations/"))
        {
            let name = t[at + "x-amazon-apigateway-integrations/".len()..]
                .split('"')
                .next()
                .unwrap_or_default();
            out.push((p.clone(), name.to_owned()));
        }
    }
    out
}

/// Every route a function's event declares is in the HTTP API's route list
/// with that function's integration: one missing there makes SAM add an
/// integration that references the function, and CloudFormation refuses
/// the stack (the function's HOOKRUN_PUBLIC_URL references the API), which
/// neither linter notices.
#[test]
fn the_http_api_route_list_has_every_function_route() {
    let defined = template_definition_routes();
    assert!(defined.len() > 10, "{defined:?}");
    let routes = template_routes();
    for (function, integration) in [("IngressFunction", "ingress"), ("ApiFunction", "api")] {
        let mine: Vec<_> = routes.iter().filter(|(f, _, _)| f == function).collect();
        assert!(!mine.is_empty(), "{function} has routes");
        for (_, method, path) in mine {
            assert!(
                defined.iter().any(|(p, i)| p == path && i == integration),
                "{method} {path} of {function} is not in HttpApi's DefinitionBody with the {integration} integration"
            );
        }
    }
    // And nothing there that no function's event grants the invoke
    // permission for.
    for (path, _) in &defined {
        assert!(
            routes.iter().any(|(_, _, p)| p == path),
            "{path} is in the DefinitionBody but no function's event"
        );
    }
}

/// Each resource of template.yaml as its block of lines.
fn template_resources() -> Vec<(String, String)> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let body = &text[text.find("\nResources:").unwrap()..text.find("\nOutputs:").unwrap()];
    let mut out: Vec<(String, String)> = Vec::new();
    for line in body.lines().skip(2) {
        if line.starts_with("  ") && !line.starts_with("   ") && line.trim_end().ends_with(':') {
            out.push((line.trim().trim_end_matches(':').to_owned(), String::new()));
        } else if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// The stack tells the functions that show URLs where they are reached
/// (the API's address, or the custom domain), gives every function a log
/// group that expires, and every alarm is in the README with what to do.
#[test]
fn the_stack_sets_its_public_url_bounds_its_logs_and_documents_its_alarms() {
    let resources = template_resources();
    let block = |name: &str| {
        resources
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("{name} in template.yaml"))
    };
    for f in ["IngressFunction", "ApiFunction"] {
        let b = block(f);
        assert!(b.contains("HOOKRUN_PUBLIC_URL: !If"), "{f}: {b}");
        assert!(
            b.contains("HasCustomDomain") && b.contains("https://${CustomDomain}"),
            "{f}"
        );
        assert!(b.contains("https://${HttpApi}.execute-api."), "{f}");
    }
    let functions: Vec<&(String, String)> = resources
        .iter()
        .filter(|(_, b)| b.contains("Type: AWS::Serverless::Function"))
        .collect();
    assert_eq!(functions.len(), 6);
    for (name, b) in functions {
        let group = b
            .lines()
            .find_map(|l| l.trim().strip_prefix("LogGroup: !Ref "))
            .unwrap_or_else(|| panic!("{name} names its log group"));
        assert!(
            block(group).contains("RetentionInDays: !Ref LogRetentionDays"),
            "{group} expires"
        );
    }
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let alarms: Vec<String> = resources
        .iter()
        .filter_map(|(_, b)| {
            let name = b
                .lines()
                .find_map(|l| l.trim().strip_prefix("AlarmName: !Sub hookrun-${Stage}-"))?;
            Some(format!("hookrun-{{Stage}}-{name}"))
        })
        .collect();
    assert_eq!(alarms.len(), 4, "{alarms:?}");
    for a in alarms {
        assert!(
            readme.contains(&format!("| `{a}` |")),
            "{a} in the README's alarm table"
        );
    }
}
