//! The embedded store's secrets at rest: a private data directory, the
//! master key in its own file, every secret in the database sealed under
//! it; a store from before is moved over on its first open.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hookrun_core::model::RunnerConfig;
use hookrun_core::ports::SecretStore;
use hookrun_core::services::{admin, agents};
use hookrun_core::sqlite::SqliteStore;
use hookrun_core::{App, Settings};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Every byte of the database files, as text.
fn database_bytes(dir: &Path) -> String {
    let mut out = Vec::new();
    for name in ["hookrun.sqlite3", "hookrun.sqlite3-wal"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            out.extend(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A new agent with `runner` (as JSON), and the secrets shown once.
async fn agent_with(
    app: &App,
    ws: &hookrun_core::ids::WorkspaceId,
    runner: serde_json::Value,
) -> agents::Created {
    let req = agents::CreateAgent {
        name: "agent".into(),
        runner: serde_json::from_value(runner).unwrap(),
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    agents::create_agent(app, ws, req).await.unwrap()
}

#[tokio::test]
async fn the_database_alone_holds_no_usable_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let store = SqliteStore::open_dir(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("hookrun.sqlite3")), 0o600);
    let app = App::embedded(store.clone(), Settings::default());
    let ws = admin::bootstrap(&app, None).await.unwrap();
    let admin_key = ws.generated_key.unwrap();
    let req = agents::CreateAgent {
        name: "a".into(),
        runner: RunnerConfig::Echo,
        timeout_seconds: None,
        enabled: None,
        max_concurrent_runs: None,
        concurrency: None,
    };
    let (_, secret) = agents::create(&app, &ws.workspace.id, req).await.unwrap();
    // A model key, an http agent's header value, agents' signing secrets.
    let model = agent_with(
        &app,
        &ws.workspace.id,
        serde_json::json!({"type": "openai", "model": "m", "api_key": "sk-at-rest-0123456789"}),
    )
    .await;
    let gated = agent_with(
        &app,
        &ws.workspace.id,
        serde_json::json!({"type": "http", "url": "https://agent.example.com/run",
            "headers": {"Authorization": "Bearer header-at-rest-0123456789"}}),
    )
    .await;
    let master = std::fs::read_to_string(dir.join("master.key")).unwrap();
    assert_eq!(mode(&dir.join("master.key")), 0o600);

    let db = database_bytes(&dir);
    assert!(!db.contains(&secret), "the agent secret is sealed");
    assert!(
        !db.contains(master.trim()),
        "the master key is not in the database"
    );
    assert!(!db.contains(&admin_key), "admin keys are stored as hashes");
    for (what, value) in [
        ("a model's API key", "sk-at-rest-0123456789"),
        ("an http agent's header value", "header-at-rest-0123456789"),
        ("a signing secret", model.signing_secret.as_str()),
        ("a signing secret", gated.signing_secret.as_str()),
    ] {
        assert!(!db.contains(value), "{what} is sealed");
    }
}

#[tokio::test]
async fn a_store_from_before_moves_its_key_out_and_seals_its_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    drop(SqliteStore::open_dir(&dir).unwrap());
    std::fs::remove_file(dir.join("master.key")).unwrap();
    {
        // As an earlier version left it: the key and a secret in plaintext.
        let c = rusqlite::Connection::open(dir.join("hookrun.sqlite3")).unwrap();
        c.execute(
            "INSERT INTO secrets (name, value) VALUES ('hookrun/master-key', ?1)",
            [r#"{"current":"the-old-master-key"}"#],
        )
        .unwrap();
        c.execute(
            "INSERT INTO secrets (name, value) VALUES ('hookrun/ws_1/agents/agt_1', ?1)",
            [r#"{"current":"whk_plaintext_secret"}"#],
        )
        .unwrap();
    }
    let store = SqliteStore::open_dir(&dir).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("master.key"))
            .unwrap()
            .trim(),
        "the-old-master-key",
        "values sealed under the old key still open"
    );
    assert_eq!(
        store.master_keys().await.unwrap(),
        vec!["the-old-master-key"]
    );
    let secret = store
        .get("hookrun/ws_1/agents/agt_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(secret.current, "whk_plaintext_secret");
    drop(store);
    let db = database_bytes(&dir);
    assert!(!db.contains("whk_plaintext_secret"));
    assert!(!db.contains("the-old-master-key"));
}

#[tokio::test]
async fn a_data_dir_that_is_a_file_is_named_so() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = SqliteStore::open_dir(&file).err().unwrap();
    assert!(err.to_string().contains("not a directory"), "{err}");
}
