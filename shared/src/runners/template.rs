//! Prompt templates of the model runners: `system` and `prompt` are
//! MiniJinja templates over the run (`message`, `input`, `trigger`,
//! `run_id`, `agent_id`: what the `http` runner POSTs). Strict: a name
//! outside those is refused when the agent is saved, and an undefined
//! value at run time (`input.missing`) fails the run, never renders as
//! nothing. Rendering is bounded in work (fuel) and in size.

use minijinja::{Environment, UndefinedBehavior};

use super::RunRequest;
use crate::error::Error;

/// What a template may name.
pub const NAMES: [&str; 5] = ["message", "input", "trigger", "run_id", "agent_id"];
/// Longest template source.
pub const MAX_SOURCE_BYTES: usize = 32 * 1024;
/// Longest rendered text.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// Instructions a render may run (loops cannot spin for long).
const FUEL: u64 = 1_000_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env
}

/// Checks a template when an agent is saved: it parses and names only
/// what a run gives. The error names `field`.
pub fn check(field: &str, source: &str) -> Result<(), Error> {
    check_names(field, source, &NAMES)
}

/// [`check`] for a template over other names.
pub fn check_names(field: &str, source: &str, names: &[&str]) -> Result<(), Error> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(Error::invalid(
            field,
            format!("{field} is longer than {MAX_SOURCE_BYTES} bytes"),
        ));
    }
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| Error::invalid(field, format!("{field} is not a valid template: {e}")))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|n| !names.contains(&n.as_str()))
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        return Err(Error::invalid(
            field,
            format!(
                "{field} names {}: a template may use {}",
                unknown.join(", "),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A model runner's system prompt and user message for a run: each
/// template rendered, the message the run's own when there is no
/// `prompt`. A template that fails fails the run, naming its field.
pub fn prompts(
    system: Option<&str>,
    prompt: Option<&str>,
    req: &RunRequest,
) -> Result<(Option<String>, String), super::RunnerError> {
    let render = |field: &str, source: &str| {
        render(source, req)
            .map_err(|e| super::RunnerError::Template(format!("runner.{field}: {e}")))
    };
    let system = system.map(|s| render("system", s)).transpose()?;
    let prompt = match prompt {
        Some(p) => render("prompt", p)?,
        None => req.message.clone(),
    };
    Ok((system, prompt))
}

/// Renders `source` for a run; the error says what went wrong.
pub fn render(source: &str, req: &RunRequest) -> Result<String, String> {
    render_with(source, req)
}

/// Renders `source` over any context.
pub fn render_with(source: &str, context: &impl serde::Serialize) -> Result<String, String> {
    let env = environment();
    let template = env.template_from_str(source).map_err(|e| e.to_string())?;
    let text = template
        .render(minijinja::Value::from_serialize(context))
        .map_err(|e| e.to_string())?;
    if text.len() > MAX_RENDERED_BYTES {
        return Err(format!(
            "it rendered {} bytes, more than {MAX_RENDERED_BYTES}",
            text.len()
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req() -> RunRequest {
        RunRequest {
            run_id: crate::ids::RunId::generate(),
            agent_id: crate::ids::AgentId::generate(),
            message: "hello".into(),
            input: json!({"pull_request": {"title": "Fix it", "number": 7}}),
            trigger: super::super::TriggerInfo {
                kind: crate::model::TriggerType::Webhook,
                id: None,
            },
        }
    }

    #[test]
    fn templates_render_the_run() {
        let out = render(
            "PR #{{ input.pull_request.number }}: {{ input.pull_request.title }} ({{ trigger.type }}) {{ message }}",
            &req(),
        )
        .unwrap();
        assert_eq!(out, "PR #7: Fix it (WEBHOOK) hello");
    }

    #[test]
    fn unknown_names_and_bad_syntax_are_refused_when_saved() {
        check("runner.prompt", "{{ message }} {{ input.x }}").unwrap();
        let e = check("runner.prompt", "{{ secrets }} {{ env }}").unwrap_err();
        assert!(e.to_string().contains("env, secrets"), "{e}");
        let e = check("runner.system", "{{ message").unwrap_err();
        assert!(
            e.to_string()
                .contains("runner.system is not a valid template"),
            "{e}"
        );
        assert!(check("runner.prompt", &"x".repeat(MAX_SOURCE_BYTES + 1)).is_err());
    }

    #[test]
    fn undefined_values_and_runaway_loops_fail_at_run_time() {
        let e = render("{{ input.missing.deeper }}", &req()).unwrap_err();
        assert!(e.contains("undefined"), "{e}");
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &req(),
        )
        .unwrap_err();
        assert!(!e.is_empty());
    }
}
