//! Error types: what the ports answer ([`StoreError`]) and what the services
//! answer ([`Error`]). Neither knows HTTP: `http::error` is the one place
//! that turns an [`Error`] into a status and a JSON body.

use thiserror::Error;

/// What a port (item table, queue, secrets) can answer besides success.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A conditional write's condition did not hold (DynamoDB's
    /// `ConditionalCheckFailedException`): somebody else changed the item.
    #[error("condition failed")]
    ConditionFailed,
    /// A paging cursor that this store did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The request is one the store refuses as malformed (too many items in a
    /// transaction, an empty key, ...): a bug in the caller, not a client error.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A stored document that does not decode as its record type.
    #[error("corrupt stored document: {0}")]
    Corrupt(String),
    /// The backend failed (I/O, network, throttling). Worth retrying.
    #[error("backend error: {0}")]
    Backend(String),
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An error and all its sources, ": "-separated: many client errors only
/// say what failed at the top ("error sending request") and why below.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The kinds of record a "not found" can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Agent,
    Run,
    Trigger,
    Subscription,
    Schedule,
    Delivery,
    Workspace,
    AdminKey,
    /// A WebSocket connection (API Gateway).
    Connection,
    /// No route answers this method and path.
    Route,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Agent => "agent",
            Entity::Run => "run",
            Entity::Trigger => "trigger",
            Entity::Subscription => "subscription",
            Entity::Schedule => "schedule",
            Entity::Delivery => "delivery",
            Entity::Workspace => "workspace",
            Entity::AdminKey => "admin key",
            Entity::Connection => "connection",
            Entity::Route => "route",
        }
    }
}

/// Which rate limit refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitScope {
    /// One source address to one target, counted before authentication.
    Ip,
    /// One trigger.
    Trigger,
    /// One agent (its signed route has no trigger).
    Agent,
    /// One workspace, all targets together.
    Workspace,
    /// Failed authentications (admin keys, trigger tokens, the internal
    /// token) from one address, checked before any lookup.
    AuthFailures,
}

impl LimitScope {
    /// The counter's name in its storage key.
    pub fn key_name(self) -> &'static str {
        match self {
            LimitScope::Ip => "ip",
            LimitScope::Trigger => "trigger",
            LimitScope::Agent => "agent",
            LimitScope::Workspace => "workspace",
            LimitScope::AuthFailures => "authfail",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            LimitScope::Ip => " per source IP",
            LimitScope::Trigger => " for this trigger",
            LimitScope::Agent => " for this agent",
            LimitScope::Workspace => " for this workspace",
            LimitScope::AuthFailures => " of failed authentications from this address",
        }
    }
}

/// A limit's state after a call was counted (or refused): what the
/// `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateState {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

/// Everything a service can answer besides success. Messages are written
/// for the API's caller; [`Error::Internal`] and [`Error::Unavailable`]
/// details are logged, never sent.
#[derive(Debug, Error)]
pub enum Error {
    /// Unknown, deleted and other-workspace records all look the same.
    #[error("{} not found", .0.as_str())]
    NotFound(Entity),
    /// The request is well formed but contradicts the stored state.
    #[error("{0}")]
    Conflict(String),
    /// A value the caller sent is unusable; `field` names it (a JSON path
    /// such as `input_mapping.title`, or `body` for the request body).
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// Well formed, but it cannot be honoured as sent (an idempotency key
    /// reused with another body).
    #[error("{0}")]
    Unprocessable(String),
    /// The request or a stored value exceeds a size limit (bytes).
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// No or a wrong credential where an `Authorization: Bearer` one is
    /// expected (admin key, trigger token, internal token).
    #[error("{0}")]
    Unauthorized(String),
    /// No or a wrong signature (or secret) on a route authenticated by one:
    /// `header` is where the caller must put it, and the 401 names it
    /// instead of a Bearer challenge.
    #[error("{message}")]
    SignatureRejected { header: String, message: String },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error(
        "rate limit of {} requests per minute{} reached; retry in {} s",
        .state.limit, .scope.describe(), .state.reset_secs
    )]
    RateLimited { scope: LimitScope, state: RateState },
    /// Too many event streams open at once (`scope`: in all, of the
    /// workspace, of the key).
    #[error("too many event streams open {scope} (at most {limit}); close one, or retry later")]
    TooManyStreams { scope: &'static str, limit: usize },
    /// A dependency outside the store (the master key, a secret) is not
    /// available now: the caller may retry.
    #[error("service temporarily unavailable, retry later")]
    Unavailable(String),
    /// A port failed; how it failed decides the answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug or a broken invariant. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::Unauthorized(message.into())
    }

    pub fn signature_rejected(header: impl Into<String>, message: impl Into<String>) -> Self {
        Error::SignatureRejected {
            header: header.into(),
            message: message.into(),
        }
    }

    /// A conditional write lost: somebody changed the record meanwhile.
    pub fn concurrent_change() -> Self {
        Error::Conflict("the resource was changed concurrently; retry".into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status a caller is answered with for this error: the
    /// router answers with it (`http::status_of`), and the invocation log
    /// records it as what the caller got, without asking the router.
    pub fn status(&self) -> u16 {
        match self {
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::Invalid { .. } => 400,
            Self::PayloadTooLarge(_) => 413,
            Self::Unprocessable(_) => 422,
            Self::Unauthorized(_) | Self::SignatureRejected { .. } => 401,
            Self::Forbidden(_) => 403,
            Self::RateLimited { .. } | Self::TooManyStreams { .. } => 429,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
            Self::Store(s) => match s {
                StoreError::ConditionFailed => 409,
                StoreError::InvalidCursor => 400,
                // A record that does not decode will not decode on a retry.
                StoreError::Invalid(_) | StoreError::Corrupt(_) => 500,
                StoreError::Backend(_) => 503,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_what_failed() {
        assert_eq!(
            Error::NotFound(Entity::Agent).to_string(),
            "agent not found"
        );
        let e = Error::RateLimited {
            scope: LimitScope::Ip,
            state: RateState {
                limit: 30,
                remaining: 0,
                reset_secs: 12,
            },
        };
        assert_eq!(
            e.to_string(),
            "rate limit of 30 requests per minute per source IP reached; retry in 12 s"
        );
        let e = Error::invalid("name", "name must be 1 to 200 characters");
        assert!(matches!(&e, Error::Invalid { field, .. } if field == "name"));
        assert_eq!(e.to_string(), "name must be 1 to 200 characters");
    }
}
