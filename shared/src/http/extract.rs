//! Request extractors whose rejections are our JSON errors.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::Deserialize;

use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::ids::WorkspaceId;
use crate::services::admin;

/// A JSON request body: `Content-Type: application/json` (or `+json`),
/// within the route's size limit, nested at most `json::MAX_DEPTH` levels
/// (so whatever is accepted can be stored and read back), with JSON-error
/// rejections.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|t| t.trim().to_ascii_lowercase())
            .is_some_and(|t| {
                t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
            });
        if !json_type {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: application/json".into(),
            ));
        }
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(super::MAX_MANAGEMENT_BODY_BYTES)
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })?;
        crate::json::check_depth(&body).map_err(ApiError::BadRequest)?;
        serde_json::from_slice(&body).map(ApiJson).map_err(|e| {
            ApiError::BadRequest(match e.classify() {
                serde_json::error::Category::Data => {
                    format!("Failed to deserialize the JSON body into the target type: {e}")
                }
                _ => format!("Failed to parse the request body as JSON: {e}"),
            })
        })
    }
}

/// `axum::extract::Query` with JSON-error rejections.
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` with JSON-error rejections.
#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The caller's address as the transport saw it. `hookrun serve` has it
/// from the socket; the Lambda functions insert it from the API Gateway
/// request context as this extension.
#[derive(Debug, Clone, Copy)]
pub struct SourceIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for SourceIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(source_ip(parts).unwrap_or(SourceIp(IpAddr::from([0, 0, 0, 0]))))
    }
}

fn source_ip(parts: &Parts) -> Option<SourceIp> {
    if let Some(ip) = parts.extensions.get::<SourceIp>() {
        return Some(*ip);
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| SourceIp(addr.ip().to_canonical()))
}

/// A caller holding a valid admin key: the workspace it acts in.
pub struct Admin {
    pub workspace_id: WorkspaceId,
    /// The admin key's id (recorded as `created_by_id`).
    pub key_id: String,
}

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| Error::unauthorized("missing Authorization: Bearer <admin key>"))?;
        let key = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| Error::unauthorized("Authorization must be: Bearer <admin key>"))?;
        let key = admin::authenticate(app, key).await?;
        Ok(Admin {
            workspace_id: key.workspace_id,
            key_id: key.id,
        })
    }
}

/// `?limit=&cursor=` of every listing.
#[derive(Debug, Deserialize)]
pub struct Paging {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

impl Paging {
    pub fn limit(&self) -> Result<usize, Error> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            Some(_) => Err(Error::invalid(
                "limit",
                format!("limit must be between 1 and {MAX_PAGE}"),
            )),
        }
    }

    pub fn cursor(&self) -> Option<String> {
        self.cursor.clone().filter(|c| !c.is_empty())
    }
}

/// A JSON body that may be absent: no body (or only whitespace) is `T`'s
/// default. For actions such as rotations whose options all have defaults.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        crate::json::check_depth(&body).map_err(ApiError::BadRequest)?;
        serde_json::from_slice(&body)
            .map(OptionalJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}
