//! Schedules through `hookrun serve` and the client: created, shown with
//! their next fires in their zone, paused, resumed, changed and deleted;
//! bad expressions and zones refused naming the field. (Fires themselves
//! are tested with an injected clock in `shared/tests/schedules.rs`.)

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::cli::cli;
use crate::harness::Hookrun;

#[tokio::test]
async fn a_schedule_is_managed_through_the_api_and_the_client() {
    let h = Hookrun::start();
    let (agent, _) = h.create_agent(json!({"name": "reporter"})).await;
    let made = cli(
        &h,
        &[
            "--json",
            "schedules",
            "create",
            "--name",
            "daily report",
            "--agent",
            &agent,
            "--cron",
            "0 9 * * MON-FRI",
            "--timezone",
            "Europe/Berlin",
            "--payload",
            r#"{"report":"daily"}"#,
            "--overlap",
            "queue-one",
        ],
    )
    .ok()
    .json();
    let id = made["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sch_"), "{made}");
    assert_eq!(made["overlap"], "queue_one");
    assert_eq!(made["catch_up"], "latest");
    let fires = made["next_fire_times"].as_array().unwrap();
    assert_eq!(fires.len(), 5);
    for f in fires {
        let local = f["local"].as_str().unwrap();
        assert!(
            local.contains("T09:00:00+01:00") || local.contains("T09:00:00+02:00"),
            "{f}"
        );
    }
    let table = cli(&h, &["schedules", "next", &id]).ok().stdout;
    assert!(table.contains("09:00:00+0"), "{table}");
    let listed = cli(&h, &["schedules", "list"]).ok().stdout;
    assert!(
        listed.contains(&id) && listed.contains("Europe/Berlin"),
        "{listed}"
    );

    let paused = cli(&h, &["--json", "schedules", "pause", &id]).ok().json();
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["next_fire_times"], json!([]));
    let resumed = cli(&h, &["--json", "schedules", "resume", &id]).ok().json();
    assert_eq!(resumed["enabled"], true);
    let changed = cli(
        &h,
        &[
            "--json",
            "schedules",
            "update",
            &id,
            "--cron",
            "rate(2 hours)",
        ],
    )
    .ok()
    .json();
    assert_eq!(changed["cron"], "rate(2 hours)");

    for (body, field) in [
        (
            json!({"name": "x", "agent_id": agent, "cron": "0 9 * *"}),
            "cron",
        ),
        (
            json!({"name": "x", "agent_id": agent, "cron": "0 9 * * *", "timezone": "Europe/Atlantis"}),
            "timezone",
        ),
        (
            json!({"name": "x", "agent_id": agent, "cron": "rate(30 seconds)"}),
            "cron",
        ),
    ] {
        let (s, e) = h.admin(Method::POST, "/api/v1/schedules", Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
        assert!(
            e["error"]["message"].as_str().unwrap().contains(field),
            "{e}"
        );
    }
    let (s, e) = h
        .admin(
            Method::POST,
            "/api/v1/schedules",
            Some(json!({"name": "x", "agent_id": "agt_01jx0000000000000000000000", "cron": "0 9 * * *"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, none) = h.get(&format!("/api/v1/runs?schedule_id={id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(none["data"], json!([]));

    cli(&h, &["schedules", "delete", &id]).ok();
    let (s, _) = h.get(&format!("/api/v1/schedules/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
