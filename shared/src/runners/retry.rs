//! Retries inside a run, one rule for every runner that calls a model or
//! a function: a call that fails with 429, 5xx, throttling or a
//! connection error before its answer starts is tried again, at most
//! [`ATTEMPTS`] times in all, after `Retry-After` when the provider gives
//! one, else after a backoff of 1, 2, 4… seconds; anything else fails the
//! run at once with the provider's message. The executor's timeout bounds
//! the whole, waits included. Each retry is noted in the run's log.

use std::future::Future;
use std::time::Duration;

use super::stream::Streamed;
use super::{LineSender, RunnerError};

/// Attempts of one call at most.
pub const ATTEMPTS: u32 = 3;
/// Longest wait between attempts (a longer `Retry-After` is cut to it).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);

/// How one attempt ended, when it did not give an answer.
pub enum Failed {
    /// Worth another attempt after the wait.
    Retry(Duration, RunnerError),
    Fail(RunnerError),
}

/// The wait before attempt `attempt + 1` when the provider names none.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << (attempt.saturating_sub(1)).min(4))
}

/// Calls `attempt` (with its number, from 1) until it answers, fails for
/// good, or [`ATTEMPTS`] are spent. `what` names the call in log notes.
pub async fn with_retries<T, F, Fut>(
    what: &str,
    lines: &LineSender,
    mut attempt: F,
) -> Result<T, RunnerError>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    let mut n = 1;
    loop {
        match attempt(n).await {
            Ok(answer) => return Ok(answer),
            Err(Failed::Retry(wait, e)) if n < ATTEMPTS => {
                let wait = wait.min(MAX_RETRY_WAIT);
                let note = format!(
                    "{what} failed ({e}); attempt {} of {ATTEMPTS} in {} s",
                    n + 1,
                    wait.as_secs_f32()
                );
                // The executor may have stopped listening (a lost lease).
                let _ = lines.send(Streamed::warning(note)).await;
                tokio::time::sleep(wait).await;
                n += 1;
            }
            Err(Failed::Retry(_, e) | Failed::Fail(e)) => return Err(e),
        }
    }
}
