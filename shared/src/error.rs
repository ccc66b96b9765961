//! Error types shared by the ports and the services above them.

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
    /// The backend failed (I/O, network, throttling). Worth retrying.
    #[error("backend error: {0}")]
    Backend(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Backend(format!("corrupt stored document: {e}"))
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

/// Every error an API route can answer with: a status and a stable code,
/// rendered as `{"error":{"code":…,"message":…}}` (DESIGN §8).
#[derive(Debug, Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    /// Unknown, deleted and other-workspace resources all look the same.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A rate limit was reached; `reset_secs` until the window ends.
    #[error("rate limit of {limit} requests per minute{scope} reached; retry in {reset_secs} s")]
    RateLimited {
        limit: u32,
        reset_secs: u64,
        scope: &'static str,
    },
    /// A backend (store, queue, secrets) failed: the client may retry.
    #[error("service temporarily unavailable, retry later")]
    Unavailable(String),
    /// A bug. The detail is logged, never sent.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized(_) => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed => 405,
            ApiError::Conflict(_) => 409,
            ApiError::PayloadTooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::RateLimited { .. } => 429,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ConditionFailed => {
                ApiError::Conflict("the resource was changed concurrently; retry".into())
            }
            StoreError::InvalidCursor => ApiError::BadRequest("invalid cursor".into()),
            StoreError::Invalid(m) => ApiError::Internal(m),
            StoreError::Backend(m) => ApiError::Unavailable(m),
        }
    }
}
