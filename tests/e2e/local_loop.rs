//! The local development loop: `hookrun trigger` sends each provider
//! fixture, signed for the target, to a trigger of the matching scheme
//! (accepted) and with a wrong secret (refused), to an agent's own route,
//! and follows the run's log; on both backends.

use serde_json::{json, Value};

use crate::cli::{client, run};
use crate::harness::{Hookrun, ADMIN_KEY};

/// The trigger body for a fixture's scheme, and the secret it signs with.
fn trigger_for(scheme: &str) -> (Value, String) {
    let secret = match scheme {
        // Standard Webhooks secrets are base64 keys.
        "standard-webhooks" => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        other => format!("{other}-signing-secret-0123456789"),
    };
    let body = json!({"signature": {"scheme": scheme}, "secret": secret});
    (body, secret)
}

#[tokio::test]
async fn each_fixture_is_accepted_by_a_trigger_of_its_scheme_and_refused_with_a_wrong_secret() {
    let h = Hookrun::start();
    let (agent, _) = h
        .create_agent(json!({"name": "fixtures", "runner": {"type": "echo"}}))
        .await;
    let listed = run(client(&h.base, None), &["trigger", "--list-fixtures"]).ok();
    let names: Vec<&str> = listed
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names.len(), 9, "{}", listed.stdout);
    for name in names {
        let scheme = match name.split(':').next().unwrap() {
            "grafana" | "generic" => "hmac",
            s => s,
        };
        let (mut body, secret) = trigger_for(scheme);
        body["agent_id"] = json!(agent);
        body["name"] = json!(name);
        let (s, t) = h
            .admin(
                reqwest::Method::POST,
                "/api/v1/webhook-triggers",
                Some(body),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        let id = t["id"].as_str().unwrap();

        let sent = run(
            client(&h.base, Some(ADMIN_KEY)),
            &["trigger", id, "--fixture", name, "--secret", &secret],
        )
        .ok();
        assert!(
            sent.stdout.starts_with("accepted: run run_"),
            "{name}: {}",
            sent.stdout
        );
        // Sent again: a new delivery id, so a new run (not a duplicate).
        let again = run(
            client(&h.base, Some(ADMIN_KEY)),
            &[
                "trigger",
                id,
                "--fixture",
                name,
                "--secret",
                &secret,
                "--json",
            ],
        )
        .ok();
        assert_eq!(again.json()["status"], "accepted", "{name}");
        assert_ne!(
            again.json()["run_id"].as_str(),
            sent.stdout.trim().strip_prefix("accepted: run "),
            "{name}: each call is new"
        );

        let wrong = run(
            client(&h.base, Some(ADMIN_KEY)),
            &[
                "trigger",
                id,
                "--fixture",
                name,
                "--secret",
                "whsec_d3Jvbmcgc2VjcmV0",
            ],
        );
        assert_eq!(wrong.code, 1, "{name}: {} {}", wrong.stdout, wrong.stderr);
        assert!(wrong.stderr.contains("401"), "{name}: {}", wrong.stderr);
    }
}

#[tokio::test]
async fn a_fixture_reaches_an_agent_route_with_overrides_and_its_log_is_followed() {
    let h = Hookrun::start();
    let (agent, secret) = h
        .create_agent(json!({"name": "direct", "runner": {"type": "echo"}}))
        .await;
    let out = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &agent,
            "--fixture",
            "github:pull_request.opened",
            "--secret",
            &secret,
            "--set",
            "/pull_request/title=Ship the console",
            "--follow",
        ],
    )
    .ok();
    assert!(
        out.stdout.starts_with("accepted: run run_"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("run succeeded"), "{}", out.stdout);
    let run_id = out
        .stdout
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("accepted: run ");
    let (_, r) = h.get(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(
        r["input"]["pull_request"]["title"], "Ship the console",
        "{r}"
    );

    // --dry-run prints the signed request and sends nothing.
    let dry = run(
        client(&h.base, Some(ADMIN_KEY)),
        &[
            "trigger",
            &agent,
            "--fixture",
            "generic",
            "--secret",
            &secret,
            "--dry-run",
        ],
    )
    .ok();
    assert!(dry.stdout.starts_with("POST http"), "{}", dry.stdout);
    assert!(dry.stdout.contains("\nX-Signature: "), "{}", dry.stdout);
    let (_, runs) = h.get(&format!("/api/v1/agents/{agent}/runs")).await;
    assert_eq!(
        runs["data"].as_array().unwrap().len(),
        1,
        "a dry run sends nothing"
    );

    // A signed target without a secret, an unknown fixture, a bad --set.
    for (args, code, says) in [
        (
            vec!["trigger", agent.as_str(), "--fixture", "generic"],
            2,
            "--secret",
        ),
        (
            vec![
                "trigger",
                agent.as_str(),
                "--fixture",
                "github:nope",
                "--secret",
                "x",
            ],
            2,
            "github:push",
        ),
        (
            vec![
                "trigger",
                agent.as_str(),
                "--fixture",
                "generic",
                "--secret",
                "x",
                "--set",
                "/no/such=1",
            ],
            2,
            "/no",
        ),
    ] {
        let out = run(client(&h.base, Some(ADMIN_KEY)), &args);
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
    }
}
