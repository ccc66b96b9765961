//! Admin keys: created with a name and a role, listed (prefix, role,
//! created, last used; never a key), revoked; `viewer` keys only read;
//! the last admin key stays; a lost key is replaced from the store with
//! `hookrun workspace add-key`; a bootstrap key the store does not have
//! is named at start.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{Hookrun, ADMIN_KEY};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<none>")
}

async fn call(
    h: &Hookrun,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    h.call_as(key, method, path, body).await
}

async fn create_key(h: &Hookrun, key: &str, body: Value) -> (String, String) {
    let (s, v) = call(h, key, Method::POST, "/api/v1/admin-keys", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    (
        v["id"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn keys_are_created_listed_and_revoked_and_viewers_only_read() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "a"})).await;

    let (s, created) = call(
        &h,
        ADMIN_KEY,
        Method::POST,
        "/api/v1/admin-keys",
        Some(json!({"name": "dashboard", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let viewer = created["key"].as_str().unwrap().to_owned();
    let viewer_id = created["id"].as_str().unwrap().to_owned();
    assert!(
        viewer.starts_with("hka_") && viewer.len() >= 40,
        "{created}"
    );
    assert_eq!(created["role"], "viewer");
    assert_eq!(created["name"], "dashboard");
    assert!(viewer.starts_with(created["key_prefix"].as_str().unwrap()));
    assert_eq!(created["last_used_at"], Value::Null);

    // A viewer reads everything...
    for path in [
        "/api/v1/agents".to_owned(),
        format!("/api/v1/agents/{agent}"),
        format!("/api/v1/agents/{agent}/runs"),
        "/api/v1/subscriptions".to_owned(),
        "/api/v1/webhook-triggers".to_owned(),
        "/api/v1/admin-keys".to_owned(),
    ] {
        let (s, v) = call(&h, &viewer, Method::GET, &path, None).await;
        assert_eq!(s, StatusCode::OK, "GET {path}: {v}");
    }
    // ...follows the event streams, SSE and WebSocket...
    let stream = h
        .http
        .get(h.url(&format!("/api/v1/agents/{agent}/events")))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(stream);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("{}/api/v1/ws", h.base.replacen("http", "ws", 1)),
    )
    .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("hookrun.v1, hookrun.bearer.{viewer}")
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let ready = futures_util::StreamExt::next(&mut ws)
        .await
        .unwrap()
        .unwrap();
    assert!(ready.to_text().unwrap().contains("\"ready\""), "{ready:?}");
    drop(ws);
    // ...and changes nothing, its own role included.
    for (m, path, body) in [
        (
            Method::POST,
            "/api/v1/agents".to_owned(),
            json!({"name": "x"}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/agents/{agent}"),
            json!({"name": "y"}),
        ),
        (
            Method::POST,
            format!("/api/v1/agents/{agent}/rotate-secret"),
            json!({}),
        ),
        (Method::DELETE, format!("/api/v1/agents/{agent}"), json!({})),
        (
            Method::POST,
            "/api/v1/admin-keys".to_owned(),
            json!({"name": "mine", "role": "admin"}),
        ),
        (
            Method::DELETE,
            format!("/api/v1/admin-keys/{viewer_id}"),
            json!({}),
        ),
    ] {
        let (s, v) = call(&h, &viewer, m.clone(), &path, Some(body)).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{m} {path}: {v}"
        );
    }
    let (_, a) = h.get(&format!("/api/v1/agents/{agent}")).await;
    assert_eq!(a["name"], "a", "nothing changed");

    // The listing: the bootstrap key and the viewer, never a key or hash.
    let (s, list) = h.get("/api/v1/admin-keys").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{list}");
    let text = list.to_string();
    assert!(
        !text.contains(&viewer) && !text.contains(ADMIN_KEY),
        "{text}"
    );
    assert!(!text.contains("key_hash"), "{text}");
    let first = &data[0];
    assert_eq!(first["role"], "admin");
    assert_eq!(first["name"], "first start (hookrun serve)");
    assert!(
        first["last_used_at"].is_string(),
        "the bootstrap key was used: {first}"
    );
    let listed_viewer = data.iter().find(|k| k["id"] == viewer_id.as_str()).unwrap();
    assert!(listed_viewer["last_used_at"].is_string(), "{listed_viewer}");
    assert_eq!(listed_viewer["key_prefix"], created["key_prefix"]);
    let (s, one) = h.get(&format!("/api/v1/admin-keys/{viewer_id}")).await;
    assert_eq!(
        (s, one["name"].clone()),
        (StatusCode::OK, json!("dashboard"))
    );

    // Bad input: a clear 400, nothing created.
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "x", "role": "root"}),
        json!({"name": "x", "key": "hka_chosen_by_me_0123456789abcdef"}),
        json!({"name": "x".repeat(201)}),
        json!(["array-key", "viewer"]),
        json!("a string"),
    ] {
        let (s, v) = call(
            &h,
            ADMIN_KEY,
            Method::POST,
            "/api/v1/admin-keys",
            Some(bad.clone()),
        )
        .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{bad}: {v}"
        );
    }
    assert_eq!(
        h.get("/api/v1/admin-keys").await.1["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (s, _) = h.get("/api/v1/admin-keys/key_nope").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Another workspace sees none of these keys and cannot revoke them.
    let (_, other) = h.create_workspace("other");
    let (s, v) = call(&h, &other, Method::GET, "/api/v1/admin-keys", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "only its own: {v}");
    let (s, _) = call(
        &h,
        &other,
        Method::DELETE,
        &format!("/api/v1/admin-keys/{viewer_id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Revoked: the next call with it is refused.
    let (s, _) = call(
        &h,
        ADMIN_KEY,
        Method::DELETE,
        &format!("/api/v1/admin-keys/{viewer_id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = call(&h, &viewer, Method::GET, "/api/v1/agents", None).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "unauthorized"));
    let (s, _) = call(
        &h,
        ADMIN_KEY,
        Method::DELETE,
        &format!("/api/v1/admin-keys/{viewer_id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "revoked once");

    // The last admin key stays; with a second one, the first can go.
    let boot_id = first["id"].as_str().unwrap().to_owned();
    let (s, v) = call(
        &h,
        ADMIN_KEY,
        Method::DELETE,
        &format!("/api/v1/admin-keys/{boot_id}"),
        None,
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"), "{v}");
    let (_, second) = create_key(&h, ADMIN_KEY, json!({"name": "rotation"})).await;
    let (s, _) = call(
        &h,
        &second,
        Method::DELETE,
        &format!("/api/v1/admin-keys/{boot_id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = call(&h, ADMIN_KEY, Method::GET, "/api/v1/agents", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the rotated-out key");
    let (s, _) = call(&h, &second, Method::GET, "/api/v1/agents", None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_lost_key_is_replaced_from_the_store_and_a_stale_bootstrap_key_is_named() {
    let mut h = Hookrun::start();
    // While the service runs, with the store and no key.
    let out = h
        .command(&["workspace", "add-key", "--name", "recovered"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("workspace: {}", h.workspace)),
        "{stdout}"
    );
    let key = stdout
        .lines()
        .find_map(|l| l.split("keep it): ").nth(1))
        .expect("the key is printed")
        .to_owned();
    let (s, v) = call(&h, &key, Method::GET, "/api/v1/admin-keys", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["name"].as_str())
        .collect();
    assert!(names.contains(&"recovered"), "{v}");

    // A viewer key for another workspace, named by id; a bad id is refused.
    let (other_ws, _) = h.create_workspace("other");
    let out = h
        .command(&[
            "workspace",
            "add-key",
            "--workspace",
            &other_ws,
            "--role",
            "viewer",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("(viewer)"), "{stdout}");
    let out = h
        .command(&["workspace", "add-key", "--workspace", "ws_doesnotexist"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = h
        .command(&["workspace", "add-key", "--workspace", "../x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // A mistyped data directory gets no store of its own.
    let missing = h.data_dir.join("no-such-store");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookrun"))
        .args(["workspace", "add-key", "--backend", "sqlite", "--data-dir"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no hookrun store"));
    assert!(!missing.exists());

    // A bootstrap key this store never had: named at start, and 401.
    let stale = "hka_set_after_the_first_start_0123456789";
    h.restart_with(&[("HOOKRUN_BOOTSTRAP_ADMIN_KEY", stale)]);
    assert!(
        h.log()
            .contains("HOOKRUN_BOOTSTRAP_ADMIN_KEY is not a key of this store"),
        "{}",
        h.log()
    );
    let (s, _) = call(&h, stale, Method::GET, "/api/v1/agents", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
