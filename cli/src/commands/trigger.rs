//! `hookrun trigger TRIGGER_ID|AGENT_ID --fixture NAME`: sends a realistic
//! provider call (`crate::fixtures`), signed as the target expects, to the
//! target's own route, and with `--follow` prints the run's log until it
//! ends. The admin key only reads the target's configuration; the call
//! itself carries the target's credentials, as an outside system's would.

use serde_json::Value;

use super::{logs, read_secret, Ctx};
use crate::client::{CliError, Result};
use crate::fixtures::{self, Fixture, Prepared};
use hookrun_core::model::{SignatureConfig, SignatureScheme};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The trigger (trg_…) or agent (agt_…) to call: a trigger through its
    /// id URL (signed with the trigger's scheme when it has a secret), an
    /// agent through its webhook URL (X-Signature with its webhook secret).
    #[arg(
        value_name = "TRIGGER_ID|AGENT_ID",
        required_unless_present = "list_fixtures"
    )]
    target: Option<String>,
    /// The call to send (`hookrun trigger --list-fixtures`).
    #[arg(long, value_name = "NAME", required_unless_present = "list_fixtures")]
    fixture: Option<String>,
    /// List the fixtures and exit (needs no service).
    #[arg(long, conflicts_with_all = ["target", "fixture"])]
    pub list_fixtures: bool,
    /// The secret to sign with: the trigger's signing secret, or the
    /// agent's webhook secret; @FILE or - reads it (default:
    /// HOOKRUN_TRIGGER_SECRET).
    #[arg(long, value_name = "SECRET|@FILE|-", hide_env_values = true)]
    secret: Option<String>,
    /// Change the payload before it is signed: a JSON pointer and a value
    /// (JSON, else the text), e.g. --set /pull_request/title="Fix it";
    /// repeatable.
    #[arg(long = "set", value_name = "POINTER=VALUE")]
    sets: Vec<String>,
    /// Print the run's log until it ends: exit 0 if it succeeded, 1 if it
    /// failed or was cancelled (as logs --follow).
    #[arg(long, short = 'f')]
    follow: bool,
    /// Print the signed request instead of sending it.
    #[arg(long, conflicts_with = "follow")]
    dry_run: bool,
}

/// `--list-fixtures`: one line each, name and what it is.
pub fn list_fixtures() {
    for f in fixtures::all() {
        println!("{:<36} {}", f.name, f.description);
    }
}

/// Where the call goes and how it is signed.
struct Target {
    route: Vec<String>,
    agent_id: String,
    /// None: the target takes unsigned calls.
    signature: Option<SignatureConfig>,
}

async fn target(ctx: &Ctx, id: &str) -> Result<Target> {
    if id.starts_with("agt_") {
        let agent = ctx
            .client
            .get(&["api", "v1", "agents", id], &[])
            .await?
            .json;
        let ws = text(&agent, "workspace_id")?;
        return Ok(Target {
            route: ["api", "v1", "webhooks", &ws, id, "trigger"]
                .map(str::to_owned)
                .to_vec(),
            agent_id: id.to_owned(),
            // The agent route's scheme: hex HMAC-SHA256 in X-Signature.
            signature: Some(SignatureConfig {
                scheme: SignatureScheme::Hmac,
                header: Some("X-Signature".into()),
                prefix: Some(String::new()),
                ..Default::default()
            }),
        });
    }
    if !id.starts_with("trg_") {
        return Err(CliError::usage(format!(
            "{id:?} is neither a trigger id (trg_…) nor an agent id (agt_…)"
        )));
    }
    let trigger = ctx
        .client
        .get(&["api", "v1", "webhook-triggers", id], &[])
        .await?
        .json;
    let signature =
        if trigger.get("has_secret").and_then(Value::as_bool) == Some(true) {
            let cfg = trigger.get("signature").cloned().unwrap_or(Value::Null);
            Some(serde_json::from_value(cfg).map_err(|e| {
                CliError::BadAnswer(format!("the trigger's signature settings: {e}"))
            })?)
        } else {
            None
        };
    Ok(Target {
        route: ["api", "webhooks", id].map(str::to_owned).to_vec(),
        agent_id: text(&trigger, "agent_id")?,
        signature,
    })
}

fn text(v: &Value, field: &str) -> Result<String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| CliError::BadAnswer(format!("the answer has no {field}")))
}

/// The headers of the call: the fixture's, its content type, and the
/// signature the target checks.
fn signed_headers(
    fixture: &Fixture,
    prepared: &Prepared,
    signature: Option<&SignatureConfig>,
    secret: Option<&str>,
    now: i64,
) -> Result<Vec<(String, String)>> {
    let mut headers = prepared.headers.clone();
    headers.push(("Content-Type".into(), prepared.content_type.clone()));
    let Some(cfg) = signature else {
        return Ok(headers);
    };
    let secret = secret.ok_or_else(|| {
        CliError::usage(
            "the target checks signatures: give its secret with --secret (or @FILE, or \
             HOOKRUN_TRIGGER_SECRET)",
        )
    })?;
    if cfg.scheme.to_string() != fixture.scheme {
        eprintln!(
            "hookrun: note: the {} fixture is signed with the target's {} scheme",
            fixture.name, cfg.scheme
        );
    }
    let signed =
        hookrun_core::providers::sign(cfg, secret, &prepared.body, now, &prepared.message_id)
            .map_err(|e| CliError::usage(format!("--secret: {e}")))?;
    // The signature replaces any header of the same name the fixture has.
    headers.retain(|(k, _)| !signed.iter().any(|(s, _)| s.eq_ignore_ascii_case(k)));
    headers.extend(signed);
    Ok(headers)
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (Some(id), Some(name)) = (args.target.as_deref(), args.fixture.as_deref()) else {
        return Err(CliError::usage("give the target and --fixture NAME"));
    };
    let fixture = fixtures::find(name)?;
    let sets = args
        .sets
        .iter()
        .map(|s| fixtures::parse_set(s))
        .collect::<Result<Vec<_>>>()?;
    let secret = match &args.secret {
        Some(spec) => Some(read_secret(spec, "--secret")?),
        None => hookrun_core::config::trigger_secret_from_env(),
    };
    let target = target(ctx, id).await?;
    let now = chrono::Utc::now().timestamp();
    let prepared = fixture.prepare(&sets, now)?;
    let headers = signed_headers(
        &fixture,
        &prepared,
        target.signature.as_ref(),
        secret.as_deref(),
        now,
    )?;
    let route: Vec<&str> = target.route.iter().map(String::as_str).collect();
    if args.dry_run {
        println!("POST {}", ctx.client.url(&route, &[])?);
        for (k, v) in &headers {
            println!("{k}: {v}");
        }
        println!();
        println!("{}", String::from_utf8_lossy(&prepared.body));
        return Ok(());
    }
    let answer = ctx
        .client
        .call_trigger_route(&route, &headers, prepared.body)
        .await?;
    if ctx.out.json {
        ctx.out.print_json(Some(&answer.raw), &answer.json);
    } else {
        let status = answer
            .json
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("?");
        match answer.json.get("run_id").and_then(Value::as_str) {
            Some(run) => println!("{status}: run {run}"),
            None => println!("{status}: no run was started"),
        }
    }
    if args.follow {
        if let Some(run) = answer.json.get("run_id").and_then(Value::as_str) {
            return logs::follow(ctx, &target.agent_id, run).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(h: &[(String, String)], name: &str) -> Option<String> {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    /// Every fixture, signed for its own scheme, verifies with hookrun's
    /// own check of that scheme; signed for another (the target decides),
    /// it verifies there too.
    #[test]
    fn every_fixture_verifies_as_the_target_checks_it() {
        let now = chrono::Utc::now().timestamp();
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        for f in fixtures::all() {
            for scheme in [f.scheme.as_str(), "hmac"] {
                let cfg = SignatureConfig {
                    scheme: SignatureScheme::try_from(scheme.to_owned()).unwrap(),
                    ..Default::default()
                };
                let p = f.prepare(&[], now).unwrap();
                let h = signed_headers(&f, &p, Some(&cfg), Some(secret), now).unwrap();
                let mut map = axum::http::HeaderMap::new();
                for (k, v) in &h {
                    map.insert(
                        axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                        v.parse().unwrap(),
                    );
                }
                assert_eq!(
                    hookrun_core::providers::verify(&cfg, secret, &map, &p.body, now),
                    Ok(()),
                    "{} as {scheme}",
                    f.name
                );
                assert_eq!(header(&h, "content-type"), Some(f.content_type.clone()));
            }
        }
    }

    #[test]
    fn a_signed_target_without_a_secret_is_a_usage_error() {
        let f = fixtures::find("github:push").unwrap();
        let p = f.prepare(&[], 1).unwrap();
        let cfg = SignatureConfig {
            scheme: SignatureScheme::Github,
            ..Default::default()
        };
        assert!(matches!(
            signed_headers(&f, &p, Some(&cfg), None, 1),
            Err(CliError::Usage(m)) if m.contains("--secret")
        ));
        // An unsigned target needs none.
        assert!(signed_headers(&f, &p, None, None, 1).is_ok());
    }
}
