//! What the invocation log keeps of a call.

use std::net::IpAddr;

use super::{Accepted, Disposition, PAYLOAD_EXCERPT_BYTES};
use crate::app::App;
use crate::error::Error;
use crate::message::truncate_utf8;
use crate::model::{Invocation, InvocationResult, Trigger};

/// Why a call was refused before it authenticated, as its tally names it.
pub(super) fn rejection_reason(e: &Error) -> &'static str {
    match e {
        Error::Unauthorized(_) | Error::SignatureRejected { .. } => "unauthorized",
        Error::RateLimited { .. } => "rate_limited",
        Error::PayloadTooLarge(_) => "too_large",
        _ => "bad_request",
    }
}

/// The invocation log entry of one authenticated call: never a secret, a
/// token or a signature; the first 2 KiB of the body when it made no run.
pub(super) fn invocation(
    app: &App,
    t: &Trigger,
    ip: Option<IpAddr>,
    result: &Result<Accepted, Error>,
    body: Option<&[u8]>,
) -> Invocation {
    let now = app.clock.now();
    let (result, run_id, error, note) = match result {
        Ok(a) => (
            match a.disposition {
                Disposition::Queued => InvocationResult::Accepted,
                Disposition::Duplicate => InvocationResult::Duplicate,
                Disposition::Ignored => InvocationResult::Ignored,
                Disposition::Skipped => InvocationResult::Skipped,
            },
            a.run_id.clone(),
            None,
            a.note.clone(),
        ),
        Err(e) => (InvocationResult::Rejected, None, Some(e), None),
    };
    Invocation {
        id: crate::ids::new_id("inv"),
        trigger_id: t.id.clone(),
        timestamp: now,
        source_ip: ip.map(|i| i.to_string()),
        result,
        // The status the caller was answered with.
        status: error.map_or(202, Error::status),
        run_id: run_id.clone(),
        error: error.map(|e| e.to_string()),
        // A call that made a run points to it, and the run holds the
        // payload: the excerpt is kept only for calls without one.
        payload_excerpt: body
            .filter(|_| run_id.is_none() || result == InvocationResult::Skipped)
            .map(|b| {
                let mut s = String::from_utf8_lossy(&b[..b.len().min(PAYLOAD_EXCERPT_BYTES + 4)])
                    .into_owned();
                truncate_utf8(&mut s, PAYLOAD_EXCERPT_BYTES);
                s
            }),
        expires_at: Some(app.expiry_after(app.settings.invocation_retention)),
        test: false,
        note,
    }
}
