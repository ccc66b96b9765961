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

/// `axum::Json` with JSON-error rejections.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

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
        serde_json::from_slice(&body)
            .map(OptionalJson)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}
