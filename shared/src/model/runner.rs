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
            RunnerConfig::Echo => vec![],
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
    fn short_credentials_have_no_hint() {
        assert_eq!(last_four("12345678"), "");
        assert_eq!(last_four("sk-é123456789"), "6789");
    }
}
