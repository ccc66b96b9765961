//! Concurrency keys at the call and at a run's end (docs/ARCHITECTURE.md,
//! "Concurrency keys").
//!
//! That runs of one key value never overlap is the executor's key slot
//! (one per value, taken in order: `queue`). `skip` and `replace` decide
//! here, when the run is written: the run and its key's hold are one
//! write, conditional on the hold as it was read, so of concurrent calls
//! exactly one takes a free key (`skip`: the others answer with its run),
//! and the hold only ever moves to a newer run (`replace`: the run it
//! named is cancelled as replaced; a call older than the holder is
//! replaced before it starts).

use crate::app::App;
use crate::error::Error;
use crate::ids::RunId;
use crate::model::concurrency::{KeySource, MAX_KEY_EXPRESSION_BYTES};
use crate::model::{Concurrency, KeyHold, OnConflict, Run, RunStatus};
use crate::repo::runs::{Claim, DedupKey};
use crate::runners::template;
use crate::services::runs::{self, Enqueued};
use crate::work::Message;

/// Reads of the hold a call makes at most: every round some concurrent
/// call's write lands, so only a burst this large can exhaust them.
const TRIES: usize = 64;

/// What a key template may name.
pub const TEMPLATE_NAMES: [&str; 3] = ["input", "message", "trigger"];

/// Checks a concurrency key when an agent or trigger is saved.
pub fn validate(c: &Concurrency) -> Result<(), Error> {
    const FIELD: &str = "concurrency.key";
    let invalid = |why: String| Err(Error::invalid(FIELD, why));
    if c.key.trim().is_empty() || c.key.len() > MAX_KEY_EXPRESSION_BYTES {
        return invalid(format!(
            "concurrency.key must be 1 to {MAX_KEY_EXPRESSION_BYTES} bytes"
        ));
    }
    match c.source() {
        None => invalid(format!(
            "concurrency.key {:?} is none of a JSON pointer into the payload \
             (\"/pull_request/number\"), a header (\"header:X-GitHub-Delivery\") or a \
             template (\"{{{{ input.repo }}}}\")",
            c.key
        )),
        Some(KeySource::Pointer(p)) => {
            // `~` escapes only `~0` and `~1` (RFC 6901).
            let mut chars = p.chars().peekable();
            while let Some(ch) = chars.next() {
                if ch == '~' && !matches!(chars.next(), Some('0' | '1')) {
                    return invalid(format!(
                        "concurrency.key {p:?} is not a JSON pointer: `~` must be followed by 0 or 1"
                    ));
                }
            }
            Ok(())
        }
        Some(KeySource::Header(name)) => {
            if name.is_empty() || axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return invalid(format!(
                    "concurrency.key names no valid header after `header:` ({name:?})"
                ));
            }
            Ok(())
        }
        Some(KeySource::Template(source)) => template::check_names(FIELD, source, &TEMPLATE_NAMES),
    }
}

/// Writes and queues a run under its concurrency key
/// (`run.control.concurrency_key`) by the key's policy; a run without a
/// key value is written as any other.
pub async fn admit(
    app: &App,
    run: &Run,
    dedup: Option<DedupKey>,
    on_conflict: OnConflict,
) -> Result<Enqueued, Error> {
    let Some(value) = run.control.concurrency_key.as_deref() else {
        return runs::enqueue_once(app, run, dedup).await;
    };
    match on_conflict {
        OnConflict::Queue => runs::enqueue_once(app, run, dedup).await,
        OnConflict::Skip => skip(app, run, value, dedup.as_ref()).await,
        OnConflict::Replace => replace(app, run, value, dedup).await,
    }
}

fn claim(run: &Run, value: &str, read: Option<u64>) -> Claim {
    let hold = KeyHold {
        workspace_id: run.workspace_id.clone(),
        agent_id: run.agent_id.clone(),
        key: value.to_owned(),
        run_id: run.id.clone(),
    };
    Claim::hold(&hold, read, run.expires_at)
}

fn contended() -> Error {
    Error::Conflict("calls with this concurrency key kept racing each other; retry".into())
}

/// `skip`: the run is written only if no run of its key is going.
async fn skip(
    app: &App,
    run: &Run,
    value: &str,
    dedup: Option<&DedupKey>,
) -> Result<Enqueued, Error> {
    for _ in 0..TRIES {
        let hold = app
            .repo
            .key_hold(&run.workspace_id, &run.agent_id, value)
            .await?;
        if let Some(h) = &hold {
            if going(app, &h.run_id).await? {
                // A repeat of an earlier call answers as a repeat.
                if let Some(seen) = match dedup {
                    Some(d) => runs::seen(app, d).await?,
                    None => None,
                } {
                    return Ok(seen);
                }
                return Ok(Enqueued::Skipped(h.run_id.clone()));
            }
        }
        let claim = claim(run, value, hold.map(|h| h.version));
        if let Some(done) = runs::enqueue_claiming(app, run, dedup, Some(&claim), None).await? {
            return Ok(done);
        }
    }
    Err(contended())
}

/// `replace`: the run is written holding its key, with the cancel of the
/// run that held it (a runs-queue message the executor acts on: the
/// trigger function itself cancels nothing).
async fn replace(
    app: &App,
    run: &Run,
    value: &str,
    dedup: Option<DedupKey>,
) -> Result<Enqueued, Error> {
    for _ in 0..TRIES {
        let hold = app
            .repo
            .key_hold(&run.workspace_id, &run.agent_id, value)
            .await?;
        if let Some(h) = hold
            .as_ref()
            .filter(|h| h.run_id.as_str() > run.id.as_str())
        {
            // A newer call's run holds the key already: this one is
            // replaced before it starts.
            let cancel = Message::Replace {
                run_id: run.id.clone(),
                by: h.run_id.clone(),
            };
            if let Some(done) =
                runs::enqueue_claiming(app, run, dedup.as_ref(), None, Some(cancel)).await?
            {
                return Ok(done);
            }
            continue;
        }
        let claim = claim(run, value, hold.as_ref().map(|h| h.version));
        let cancel = hold
            .as_ref()
            .filter(|h| h.run_id != run.id)
            .map(|h| Message::Replace {
                run_id: h.run_id.clone(),
                by: run.id.clone(),
            });
        if let Some(done) =
            runs::enqueue_claiming(app, run, dedup.as_ref(), Some(&claim), cancel).await?
        {
            return Ok(done);
        }
    }
    Err(contended())
}

/// Whether a run is queued or running (a missing one is not).
async fn going(app: &App, run_id: &RunId) -> Result<bool, Error> {
    Ok(app
        .repo
        .get::<Run>(run_id)
        .await?
        .is_some_and(|r| matches!(r.status, RunStatus::Queued | RunStatus::Running)))
}

/// A run has ended (finished or cancelled): its key's hold, if it still
/// names it, is removed (best effort: a hold whose run has ended is free
/// to the next call anyway).
pub async fn ended(app: &App, run: &Run) {
    let Some(value) = run.control.concurrency_key.as_deref() else {
        return;
    };
    let result = async {
        match app
            .repo
            .key_hold(&run.workspace_id, &run.agent_id, value)
            .await?
        {
            Some(h) if h.run_id == run.id => app.repo.release_key_hold(&h).await,
            _ => Ok(()),
        }
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(run_id = %run.id, error = %e, "could not release a concurrency key's hold; the next call finds its run ended");
    }
}
