//! Errors as HTTP answers: `{"error":{"code":…,"message":…}}`. This is the
//! one place that maps a service [`Error`] to a status and a code.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::{Entity, Error, StoreError};

/// Every error answer: `{"error":{"code":…,"message":…}}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, one per status: `invalid_request` (400), `unauthorized`
    /// (401), `forbidden` (403), `not_found` (404), `method_not_allowed`
    /// (405), `conflict` (409), `payload_too_large` (413),
    /// `unsupported_media_type` (415), `uri_too_long` (414),
    /// `unprocessable` (422), `headers_too_large` (431), `rate_limited`
    /// (429), `internal` (500), `unavailable` (503).
    #[schema(example = "not_found")]
    pub code: &'static str,
    /// For people: what was wrong, naming the field or header.
    pub message: String,
    /// For programs: the request field at fault (`cron`, `runner.url`,
    /// …) when one is; a form shows the message next to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "cron")]
    pub field: Option<String>,
}

/// Everything a route can answer with besides success: a service error, or
/// a request the router could not even hand to a service.
#[derive(Debug)]
pub enum ApiError {
    Service(Error),
    /// Malformed JSON, query or path parameters.
    BadRequest(String),
    MethodNotAllowed,
    UnsupportedMediaType(String),
    /// A management request body over its limit.
    PayloadTooLarge(usize),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError::Service(e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Service(Error::Store(e))
    }
}

/// The status a service error is answered with ([`Error::status`]).
pub fn status_of(e: &Error) -> StatusCode {
    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// When a stream refused for its cap may try again: streams end on their
/// own (runs finish, clients leave), so soon.
const STREAM_RETRY_SECS: u64 = 5;

/// The stable code of an answer's status.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "unprocessable",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal",
    }
}

/// What the caller is told; details of failures on our side are logged,
/// never sent.
fn message_of(e: &Error) -> String {
    match e {
        Error::Store(StoreError::ConditionFailed) => {
            "the resource was changed concurrently; retry".into()
        }
        Error::Store(StoreError::InvalidCursor) => "invalid cursor".into(),
        Error::Store(StoreError::Invalid(_)) | Error::Internal(_) => "internal error".into(),
        Error::Store(StoreError::Corrupt(_)) => "a stored record could not be read".into(),
        Error::Store(StoreError::Backend(_)) | Error::Unavailable(_) => {
            "service temporarily unavailable, retry later".into()
        }
        other => other.to_string(),
    }
}

/// The JSON body of an answer given before any route runs, to a request
/// the HTTP server could not parse (400 malformed, 414 URI too long, 431
/// header fields too large): the same shape as every other error answer.
pub fn protocol_error_body(status: StatusCode) -> Vec<u8> {
    let message = match status {
        StatusCode::URI_TOO_LONG => "the request URI is too long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request's header fields are too large or too many"
        }
        _ => "malformed HTTP request (request line, header or Content-Length)",
    };
    let body = json!({ "error": { "code": code_of(status), "message": message } });
    serde_json::to_vec(&body).expect("a JSON value serialises")
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Service(e) => status_of(e),
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    pub fn message(&self) -> String {
        match self {
            ApiError::Service(e) => message_of(e),
            ApiError::BadRequest(m) | ApiError::UnsupportedMediaType(m) => m.clone(),
            ApiError::MethodNotAllowed => "method not allowed".into(),
            ApiError::PayloadTooLarge(limit) => Error::PayloadTooLarge(*limit).to_string(),
        }
    }

    /// The stable code of this answer (`not_found`, …), for channels that
    /// carry errors without an HTTP status (the WebSocket).
    pub fn code(&self) -> &'static str {
        code_of(self.status())
    }

    /// The request field at fault, when the error names one.
    pub fn field(&self) -> Option<&str> {
        match self {
            ApiError::Service(Error::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    /// "No route here", as the router's fallback answers it.
    pub fn no_route() -> Self {
        ApiError::Service(Error::NotFound(Entity::Route))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Service(e) = &self {
            match e {
                Error::Internal(detail) => tracing::error!(%detail, "internal error"),
                Error::Store(StoreError::Invalid(detail)) => {
                    tracing::error!(%detail, "invalid store request")
                }
                Error::Store(StoreError::Corrupt(detail)) => {
                    tracing::error!(%detail, "a stored record does not decode")
                }
                Error::Unavailable(detail) => tracing::warn!(%detail, "backend unavailable"),
                Error::Store(e @ StoreError::Backend(_)) => {
                    tracing::warn!(detail = %e, "backend unavailable")
                }
                _ => {}
            }
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code_of(status),
                message: self.message(),
                field: self.field().map(str::to_owned),
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if let ApiError::Service(Error::RateLimited { state, .. }) = &self {
            super::ratelimit_headers(resp.headers_mut(), state.limit, 0, state.reset_secs);
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(state.reset_secs.max(1)),
            );
        }
        if let ApiError::Service(Error::TooManyStreams { .. }) = &self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(STREAM_RETRY_SECS));
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 9110: a 401 names the scheme the client should use. A
            // signed route's is its signature header (the `Signature`
            // scheme of HTTP message signatures has no registered
            // parameters for a plain HMAC header, so it is named as such).
            let challenge = match &self {
                ApiError::Service(Error::SignatureRejected { header, .. }) => {
                    HeaderValue::from_str(&format!(
                        "Signature realm=\"hookrun\", header=\"{header}\""
                    ))
                    .unwrap_or_else(|_| HeaderValue::from_static("Signature realm=\"hookrun\""))
                }
                _ => HeaderValue::from_static("Bearer realm=\"hookrun\""),
            };
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected Content-Type: application/json".into())
            }
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(super::MAX_MANAGEMENT_BODY_BYTES)
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{LimitScope, RateState};

    #[test]
    fn each_error_has_its_status_and_code() {
        let cases = [
            (
                Error::NotFound(Entity::Run),
                404,
                "not_found",
                "run not found",
            ),
            (
                Error::invalid("name", "bad name"),
                400,
                "invalid_request",
                "bad name",
            ),
            (Error::unauthorized("no"), 401, "unauthorized", "no"),
            (
                Error::signature_rejected("X-Signature", "bad"),
                401,
                "unauthorized",
                "bad",
            ),
            (Error::Forbidden("off"), 403, "forbidden", "off"),
            (Error::Conflict("c".into()), 409, "conflict", "c"),
            (
                Error::Store(StoreError::ConditionFailed),
                409,
                "conflict",
                "the resource was changed concurrently; retry",
            ),
            (
                Error::Store(StoreError::InvalidCursor),
                400,
                "invalid_request",
                "invalid cursor",
            ),
            (
                Error::Store(StoreError::Backend("secret detail".into())),
                503,
                "unavailable",
                "service temporarily unavailable, retry later",
            ),
            (
                Error::Internal("secret detail".into()),
                500,
                "internal",
                "internal error",
            ),
            (
                Error::RateLimited {
                    scope: LimitScope::Trigger,
                    state: RateState {
                        limit: 5,
                        remaining: 0,
                        reset_secs: 3,
                    },
                },
                429,
                "rate_limited",
                "rate limit of 5 requests per minute for this trigger reached; retry in 3 s",
            ),
        ];
        for (e, status, code, message) in cases {
            let api = ApiError::from(e);
            assert_eq!(api.status().as_u16(), status, "{api:?}");
            assert_eq!(code_of(api.status()), code);
            assert_eq!(api.message(), message);
        }
    }
}
