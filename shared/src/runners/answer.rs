//! A model's answer as it streams in, whichever runner reads it (`openai`,
//! `bedrock`): its text is handed on a completed line at a time (logged
//! and broadcast as `agent.log`), and at the end it becomes the run's
//! output `{text, model, finish_reason, usage}` with a warning line for
//! what the run should know (a cut stream, an answer cut at `max_tokens`,
//! usage unknown).

use serde_json::json;

use super::stream::Streamed;
use super::{LineSender, RunOutput};
use crate::model::run::Usage;

#[derive(Default)]
pub struct ModelAnswer {
    text: String,
    /// Text after the last complete line, not handed on yet.
    pending: String,
    /// Complete lines not handed on yet.
    ready: Vec<String>,
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    /// Something (text or metadata) came.
    pub got_any: bool,
    /// The provider said the answer is complete.
    pub done: bool,
    /// Why the stream ended early.
    pub cut: Option<String>,
}

impl ModelAnswer {
    pub fn push_text(&mut self, text: &str) {
        self.got_any = true;
        self.text.push_str(text);
        self.pending.push_str(text);
        while let Some(end) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=end).collect();
            let line = line.trim_end_matches(['\n', '\r']);
            if !line.trim().is_empty() {
                self.ready.push(line.to_owned());
            }
        }
    }

    /// Hands on the lines completed so far.
    pub async fn send_lines(&mut self, lines: &LineSender) {
        for line in self.ready.drain(..) {
            // The executor may have stopped listening (a lost lease).
            let _ = lines
                .send(Streamed {
                    level: "info".into(),
                    line: line.clone(),
                    raw: line,
                })
                .await;
        }
    }

    /// The run's output; `model` names the model when the provider did not.
    pub async fn finish(mut self, model: &str, lines: &LineSender) -> RunOutput {
        let rest = std::mem::take(&mut self.pending);
        if !rest.trim().is_empty() {
            self.ready.push(rest);
        }
        self.send_lines(lines).await;
        let mut notes = Vec::new();
        if let Some(why) = &self.cut {
            notes.push(format!(
                "the model's stream was cut ({why}); the run keeps the text it got"
            ));
        } else if !self.done && self.finish_reason.is_none() {
            notes.push(
                "the model's stream ended before it finished; the run keeps the text it got"
                    .to_owned(),
            );
        }
        // OpenAI's name for it, then Bedrock's.
        if let Some(reason @ ("length" | "max_tokens")) = self.finish_reason.as_deref() {
            notes.push(format!(
                "the answer was cut at max_tokens (finish_reason: {reason})"
            ));
        }
        if self.usage.is_none() {
            notes.push("the model reported no token usage: usage unknown".to_owned());
        }
        for note in notes {
            let _ = lines.send(Streamed::warning(note)).await;
        }
        let model = self.model.take().unwrap_or_else(|| model.to_owned());
        let usage = self.usage.take().map(|mut u| {
            // A usage report without a model: the answer's.
            u.model.get_or_insert_with(|| model.clone());
            u
        });
        let output = json!({
            "text": self.text,
            "model": model,
            "finish_reason": self.finish_reason,
            "usage": usage.as_ref().map(|u| json!({
                "input_tokens": u.input_tokens,
                "output_tokens": u.output_tokens,
            })),
        });
        RunOutput { output, usage }
    }
}
