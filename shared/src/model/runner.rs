//! How an agent is run ([`RunnerConfig`], stored on the agent), and the
//! write-only credentials a runner may hold ([`WriteOnly`]): sent in
//! plain text once, sealed under the master key before the agent is
//! stored, never shown again ([`RunnerView`] shows that one is set and
//! its last four characters).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where the `openai` runner sends requests unless told otherwise.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// How an agent is run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum RunnerConfig {
    /// Answers with the message it was given; for demos and tests.
    Echo,
    /// POSTs the run as JSON to `url`; the 2xx answer is the output.
    Http {
        url: String,
        /// Headers sent with every call (e.g. `Authorization`), values
        /// write-only: an update without `headers` keeps them, `{}`
        /// removes them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
        headers: Option<BTreeMap<String, WriteOnly>>,
    },
    /// A model behind an OpenAI-compatible chat completions endpoint
    /// (OpenAI, Azure OpenAI's compatible route, Ollama, vLLM, llama.cpp
    /// server, LiteLLM), streamed.
    Openai(OpenAiConfig),
    /// A model on Amazon Bedrock (ConverseStream), with the credentials of
    /// the process (the executor's role on AWS, the default chain for
    /// `hookrun serve`).
    Bedrock(BedrockConfig),
    /// A Lambda function, invoked with the run as the `http` runner POSTs
    /// it; its JSON result is the output.
    Lambda(LambdaConfig),
}

/// The `bedrock` runner's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BedrockConfig {
    /// A model id or inference profile (`anthropic.claude-3-5-haiku-…`,
    /// `us.anthropic.…`), or its ARN.
    pub model_id: String,
    /// Default: the region hookrun runs in (`AWS_REGION`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The system prompt: a template over `message`, `input`, `trigger`,
    /// `run_id`, `agent_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The user message: a template as `system`; default the run's
    /// message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
}

/// The `lambda` runner's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LambdaConfig {
    /// The function's name, ARN or partial ARN, with a version or alias
    /// after a colon if wanted (`arn:aws:lambda:…:function:review:live`).
    /// A full ARN names its region; otherwise the region hookrun runs in.
    pub function: String,
    /// Invoke with response streaming (`InvokeWithResponseStream`): each
    /// line (or server-sent event) the function writes is logged as it
    /// arrives, the last one is the output.
    #[serde(default)]
    pub stream: bool,
}

/// Longest `function` Lambda's Invoke takes.
const MAX_FUNCTION_CHARS: usize = 170;

/// Checks a Lambda function reference as Lambda's Invoke takes it: a name
/// (`review`), a partial ARN (`123456789012:function:review`) or an ARN
/// (`arn:aws:lambda:us-east-1:123456789012:function:review`), each with an
/// optional `:version` or `:alias`. The error says what is wrong.
pub fn check_function(function: &str) -> Result<(), String> {
    if function.is_empty() || function.len() > MAX_FUNCTION_CHARS {
        return Err(format!("must be 1 to {MAX_FUNCTION_CHARS} characters"));
    }
    let parts: Vec<&str> = function.split(':').collect();
    let word = |s: &str, max: usize| {
        !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let qualifier = |s: &str| s == "$LATEST" || word(s, 128);
    let account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    let ok = match parts.as_slice() {
        [name] => word(name, 64),
        [name, q] => word(name, 64) && qualifier(q),
        [acct, "function", name] => account(acct) && word(name, 64),
        [acct, "function", name, q] => account(acct) && word(name, 64) && qualifier(q),
        ["arn", partition, "lambda", region, acct, "function", name, rest @ ..] => {
            partition.starts_with("aws")
                && !region.is_empty()
                && account(acct)
                && word(name, 64)
                && match rest {
                    [] => true,
                    [q] => qualifier(q),
                    _ => false,
                }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{function:?} is not a Lambda function name, partial ARN or ARN \
             (like review-agent, or arn:aws:lambda:us-east-1:123456789012:function:review-agent:live)"
        ))
    }
}

/// The region a function ARN names (none for a name or partial ARN).
pub fn function_region(function: &str) -> Option<&str> {
    let mut parts = function.split(':');
    (parts.next() == Some("arn")).then_some(())?;
    parts.nth(2).filter(|r| !r.is_empty())
}

/// The `openai` runner's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenAiConfig {
    /// Default `https://api.openai.com/v1`; requests go to
    /// `{base_url}/chat/completions`.
    #[serde(default = "openai_base_url")]
    pub base_url: String,
    /// The model name, as the endpoint knows it.
    pub model: String,
    /// Sent as `Authorization: Bearer …`; write-only (an update without it
    /// keeps the current one). Optional: a local server may need none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub api_key: Option<WriteOnly>,
    /// The system message: a template over `message`, `input`, `trigger`,
    /// `run_id`, `agent_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The user message: a template as `system`; default the run's
    /// message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2)]
    pub temperature: Option<f64>,
}

fn openai_base_url() -> String {
    OPENAI_BASE_URL.to_owned()
}

impl RunnerConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            RunnerConfig::Echo => "echo",
            RunnerConfig::Http { .. } => "http",
            RunnerConfig::Openai(_) => "openai",
            RunnerConfig::Bedrock(_) => "bedrock",
            RunnerConfig::Lambda(_) => "lambda",
        }
    }

    /// Its write-only values, with the field each is named by in errors.
    pub fn secrets_mut(&mut self) -> Vec<(String, &mut WriteOnly)> {
        match self {
            RunnerConfig::Openai(o) => o
                .api_key
                .iter_mut()
                .map(|k| ("runner.api_key".to_owned(), k))
                .collect(),
            RunnerConfig::Http { headers, .. } => headers
                .iter_mut()
                .flatten()
                .map(|(name, v)| (format!("runner.headers.{name}"), v))
                .collect(),
            RunnerConfig::Echo | RunnerConfig::Bedrock(_) | RunnerConfig::Lambda(_) => vec![],
        }
    }

    /// For an update: the write-only values the new configuration leaves
    /// out are kept from `old` (the same runner type only).
    pub fn keep_secrets_of(&mut self, old: &RunnerConfig) {
        match (self, old) {
            (RunnerConfig::Openai(new), RunnerConfig::Openai(old)) if new.api_key.is_none() => {
                new.api_key = old.api_key.clone();
            }
            (RunnerConfig::Http { headers, .. }, RunnerConfig::Http { headers: old, .. })
                if headers.is_none() =>
            {
                headers.clone_from(old);
            }
            _ => {}
        }
    }

    /// As the API shows it: write-only values as whether they are set.
    pub fn view(&self) -> RunnerView {
        match self {
            RunnerConfig::Echo => RunnerView::Echo,
            RunnerConfig::Http { url, headers } => RunnerView::Http {
                url: url.clone(),
                headers: headers
                    .iter()
                    .flatten()
                    .map(|(name, v)| {
                        (
                            name.clone(),
                            SetValue {
                                set: true,
                                hint: v.hint(),
                            },
                        )
                    })
                    .collect(),
            },
            RunnerConfig::Openai(o) => RunnerView::Openai(OpenAiView {
                base_url: o.base_url.clone(),
                model: o.model.clone(),
                has_api_key: o.api_key.is_some(),
                api_key_hint: o.api_key.as_ref().map(WriteOnly::hint),
                system: o.system.clone(),
                prompt: o.prompt.clone(),
                max_tokens: o.max_tokens,
                temperature: o.temperature,
            }),
            RunnerConfig::Bedrock(b) => RunnerView::Bedrock(b.clone()),
            RunnerConfig::Lambda(l) => RunnerView::Lambda(l.clone()),
        }
    }
}

/// A runner as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunnerView {
    Echo,
    Http {
        url: String,
        /// The headers it sends: their names, never their values.
        headers: BTreeMap<String, SetValue>,
    },
    Openai(OpenAiView),
    Bedrock(BedrockConfig),
    Lambda(LambdaConfig),
}

/// A write-only value as answers show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetValue {
    pub set: bool,
    /// Its last four characters (none for a value of eight or fewer).
    pub hint: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenAiView {
    pub base_url: String,
    pub model: String,
    /// Whether an API key is set (it is never shown).
    pub has_api_key: bool,
    /// Its last four characters.
    pub api_key_hint: Option<String>,
    pub system: Option<String>,
    pub prompt: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
}

/// A credential a runner holds. It arrives in plain text in a request
/// ([`WriteOnly::Plain`], from a JSON string) and is sealed before the
/// agent is stored ([`WriteOnly::Sealed`], stored as an object); the
/// executor opens it for the run only. A plain value refuses to be
/// serialized, so it can never be written to the store or an answer.
#[derive(Clone, PartialEq)]
pub enum WriteOnly {
    Plain(String),
    Sealed { sealed: String, hint: String },
}

impl WriteOnly {
    /// The last four characters (of the plain value, kept when sealed).
    pub fn hint(&self) -> String {
        match self {
            WriteOnly::Plain(v) => last_four(v),
            WriteOnly::Sealed { hint, .. } => hint.clone(),
        }
    }
}

/// The last four characters of a credential: enough to tell two apart,
/// too few to matter (and none of a credential of eight or fewer).
pub fn last_four(v: &str) -> String {
    let chars: Vec<char> = v.chars().collect();
    if chars.len() <= 8 {
        return String::new();
    }
    chars[chars.len() - 4..].iter().collect()
}

impl std::fmt::Debug for WriteOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteOnly::Plain(_) => f.write_str("WriteOnly::Plain(…)"),
            WriteOnly::Sealed { hint, .. } => write!(f, "WriteOnly::Sealed(…{hint})"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct SealedForm {
    sealed: String,
    hint: String,
}

impl Serialize for WriteOnly {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WriteOnly::Plain(_) => Err(serde::ser::Error::custom(
                "a write-only value must be sealed before it is stored",
            )),
            WriteOnly::Sealed { sealed, hint } => SealedForm {
                sealed: sealed.clone(),
                hint: hint.clone(),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for WriteOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(v) => Ok(WriteOnly::Plain(v)),
            sealed @ serde_json::Value::Object(_) => {
                let s: SealedForm = serde_json::from_value(sealed).map_err(D::Error::custom)?;
                Ok(WriteOnly::Sealed {
                    sealed: s.sealed,
                    hint: s.hint,
                })
            }
            other => Err(D::Error::custom(format!(
                "a credential must be a string, not {}",
                json_kind(&other)
            ))),
        }
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_secret_is_never_serialized_and_a_sealed_one_round_trips() {
        let plain = RunnerConfig::Openai(OpenAiConfig {
            base_url: openai_base_url(),
            model: "m".into(),
            api_key: Some(WriteOnly::Plain("sk-0123456789abcd".into())),
            system: None,
            prompt: None,
            max_tokens: None,
            temperature: None,
        });
        assert!(serde_json::to_string(&plain).is_err());
        assert!(!format!("{plain:?}").contains("0123456789"));
        let mut sealed = plain.clone();
        for (_, s) in sealed.secrets_mut() {
            *s = WriteOnly::Sealed {
                sealed: "v1.x.y".into(),
                hint: s.hint(),
            };
        }
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("0123456789"), "{text}");
        let back: RunnerConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, sealed);
        let view = serde_json::to_value(back.view()).unwrap();
        assert_eq!(view["has_api_key"], true);
        assert_eq!(view["api_key_hint"], "abcd");
        assert!(view.get("api_key").is_none());
    }

    #[test]
    fn lambda_function_references_are_checked_as_invoke_takes_them() {
        for good in [
            "review",
            "review:live",
            "review:$LATEST",
            "123456789012:function:review",
            "123456789012:function:review:7",
            "arn:aws:lambda:us-east-1:123456789012:function:review-agent",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:review_agent:live",
        ] {
            assert_eq!(check_function(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a b",
            "review:",
            "review:live:extra",
            "12345:function:review",
            "arn:aws:s3:us-east-1:123456789012:function:review",
            "arn:aws:lambda:us-east-1:123456789012:layer:review",
            &"x".repeat(171),
        ] {
            assert!(check_function(bad).is_err(), "{bad}");
        }
        assert_eq!(
            function_region("arn:aws:lambda:eu-west-1:123456789012:function:r:live"),
            Some("eu-west-1")
        );
        assert_eq!(function_region("123456789012:function:r"), None);
        assert_eq!(function_region("review"), None);
    }

    #[test]
    fn short_credentials_have_no_hint() {
        assert_eq!(last_four("12345678"), "");
        assert_eq!(last_four("sk-é123456789"), "6789");
    }
}
