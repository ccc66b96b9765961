//! The `bedrock` runner: a model on Amazon Bedrock through ConverseStream.
//! Text deltas are handed on a completed line at a time as they arrive
//! (the SDK reads the event stream frame by frame: the HTTP client passes
//! event-stream bodies on unbuffered, `crate::aws::http`); the stream's
//! `metadata.usage` is the run's usage; the output is `{text, model,
//! finish_reason, usage}` as for the `openai` runner, `finish_reason`
//! being Bedrock's `stopReason`.
//!
//! Throttling and Bedrock's 5xx before the stream starts are retried
//! ([`super::retry`]); other errors, and any error inside the stream
//! (`modelStreamErrorException`, `throttlingException`, …), fail the run
//! with the service's own message.

use aws_sdk_bedrockruntime::types::{
    ContentBlock, ContentBlockDelta, ConversationRole, ConverseStreamOutput as Event,
    InferenceConfiguration, Message, SystemContentBlock,
};
use aws_sdk_bedrockruntime::Client;
use aws_smithy_runtime_api::client::result::SdkError;

use super::answer::ModelAnswer;
use super::aws::{describe, failed, AwsSdk, PerRegion};
use super::retry::{backoff, with_retries};
use super::{template, LineSender, RunOutput, RunRequest, RunnerError};
use crate::model::run::Usage;
use crate::model::runner::BedrockConfig;

pub struct BedrockRunner {
    clients: PerRegion<Client>,
    max_response_bytes: usize,
}

/// The call's answer: its `stream` is read event by event.
type Answer = aws_sdk_bedrockruntime::operation::converse_stream::ConverseStreamOutput;

impl BedrockRunner {
    pub fn new(sdk: AwsSdk, max_response_bytes: usize) -> Self {
        BedrockRunner {
            clients: PerRegion::new(sdk),
            max_response_bytes,
        }
    }

    pub async fn run(
        &self,
        cfg: &BedrockConfig,
        req: &RunRequest,
        lines: LineSender,
    ) -> Result<RunOutput, RunnerError> {
        let (system, prompt) =
            template::prompts(cfg.system.as_deref(), cfg.prompt.as_deref(), req)?;
        let client = self
            .clients
            .get(cfg.region.as_deref(), |sdk, region| {
                super::aws::runner_client!(aws_sdk_bedrockruntime, sdk, region, "BEDROCK_RUNTIME")
            })
            .await?;
        let message = Message::builder()
            .role(ConversationRole::User)
            .content(ContentBlock::Text(prompt))
            .build()
            .map_err(|e| RunnerError::Config(e.to_string()))?;
        let mut inference = InferenceConfiguration::builder();
        if let Some(max) = cfg.max_tokens {
            inference = inference.max_tokens(max.min(i32::MAX as u32) as i32);
        }
        if let Some(t) = cfg.temperature {
            inference = inference.temperature(t as f32);
        }
        let call = client
            .converse_stream()
            .model_id(&cfg.model_id)
            .set_system(system.map(|s| vec![SystemContentBlock::Text(s)]))
            .messages(message)
            .inference_config(inference.build());
        let started = with_retries("model call", &lines, |attempt| {
            let call = call.clone();
            async move { call.send().await.map_err(|e| failed(e, backoff(attempt))) }
        })
        .await?;
        let answer = self.read(started, &lines).await?;
        Ok(answer.finish(&cfg.model_id, &lines).await)
    }

    async fn read(
        &self,
        mut started: Answer,
        lines: &LineSender,
    ) -> Result<ModelAnswer, RunnerError> {
        let stream = &mut started.stream;
        let mut answer = ModelAnswer::default();
        let mut read = 0usize;
        loop {
            let event = match stream.recv().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                // The service's own error inside the stream.
                Err(e @ SdkError::ServiceError(_)) => {
                    return Err(RunnerError::Provider(describe(&e)))
                }
                // Cut: what came is the answer, if anything came.
                Err(e) if answer.got_any => {
                    answer.cut = Some(describe(&e));
                    break;
                }
                Err(e) => return Err(RunnerError::Transport(describe(&e))),
            };
            match event {
                Event::ContentBlockDelta(delta) => {
                    if let Some(ContentBlockDelta::Text(text)) = delta.delta {
                        read += text.len();
                        if read > self.max_response_bytes {
                            return Err(RunnerError::TooLarge(self.max_response_bytes));
                        }
                        answer.push_text(&text);
                        answer.send_lines(lines).await;
                    }
                }
                Event::MessageStop(stop) => {
                    answer.got_any = true;
                    answer.finish_reason = Some(stop.stop_reason.as_str().to_owned());
                }
                Event::Metadata(meta) => {
                    answer.done = true;
                    if let Some(u) = meta.usage {
                        answer.usage = Some(Usage {
                            model: None,
                            input_tokens: u64::try_from(u.input_tokens).ok(),
                            output_tokens: u64::try_from(u.output_tokens).ok(),
                        });
                    }
                }
                _ => answer.got_any = true,
            }
        }
        Ok(answer)
    }
}
