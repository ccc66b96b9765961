//! What the runner suites (`openai`, `aws_runners`) share: one run of an
//! agent through the executor, and its output lines.

use hookrun_core::model::{Agent, LogLine, Run, TriggerType};
use hookrun_core::ports::QueueId;
use hookrun_core::services::{ingress, runs};
use hookrun_core::{work, App};
use serde_json::json;

/// Runs `agent` once on a webhook of `{"title": "Fix the parser"}`,
/// through the executor; the run as recorded and its log lines.
pub async fn run_once(app: &App, agent: &Agent) -> (Run, Vec<LogLine>) {
    let run = ingress::new_run(
        app,
        agent,
        TriggerType::Webhook,
        json!({"title": "Fix the parser"}),
        None,
    );
    runs::enqueue(app, &run).await.unwrap();
    let body = json!({ "run_id": run.id }).to_string();
    assert_eq!(
        work::process(app, QueueId::Runs, &body, None).await,
        work::Outcome::Done
    );
    let run = app.repo.get::<Run>(&run.id).await.unwrap().unwrap().record;
    let logs = app
        .repo
        .logs(&agent.id, Some(&run.id), 100, None)
        .await
        .unwrap()
        .data;
    (run, logs)
}

/// The output lines logged at `level`.
pub fn lines_at<'a>(logs: &'a [LogLine], level: &str) -> Vec<&'a str> {
    logs.iter()
        .filter(|l| l.level == level && l.stream == "output")
        .map(|l| l.message.as_str())
        .collect()
}
