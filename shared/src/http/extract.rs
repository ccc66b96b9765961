//! Request extractors whose rejections are our JSON errors.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::Method;
use serde::Deserialize;

use super::ApiError;
use crate::app::App;
use crate::error::Error;
use crate::ids::WorkspaceId;
use crate::model::Role;
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
        let ApiBytes(body) = ApiBytes::from_request(req, state).await?;
        crate::json::check_depth(&body).map_err(ApiError::BadRequest)?;
        must_be_object(&body, false)?;
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

/// Every request body is a JSON object (`null` too where it may be
/// absent): serde would also read a struct from an array of its fields in
/// order, which no client means.
fn must_be_object(body: &[u8], null_allowed: bool) -> Result<(), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let object = first == Some(&b'{');
    let null = null_allowed && first == Some(&b'n');
    if object || null {
        Ok(())
    } else {
        Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        ))
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

/// The caller's address. The Lambda functions insert it from the API
/// Gateway request context (the truth there). `hookrun serve` takes the
/// socket's peer, unless that peer is one of `HOOKRUN_TRUSTED_PROXIES`:
/// then the rightmost address of `X-Forwarded-For` (or `Forwarded: for=`)
/// that is not itself a trusted proxy, since every hop appends the address
/// it saw and only the hops we trust are honest.
#[derive(Debug, Clone, Copy)]
pub struct SourceIp(pub IpAddr);

impl FromRequestParts<App> for SourceIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        if let Some(ip) = parts.extensions.get::<SourceIp>() {
            return Ok(*ip);
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_canonical())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(SourceIp(client_address(
            peer,
            &parts.headers,
            &app.settings.trusted_proxies,
        )))
    }
}

/// The client behind `peer`, by the forwarding headers when `peer` is trusted.
pub fn client_address(
    peer: IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("forwarded") {
        for element in v.to_str().unwrap_or("").split(',') {
            for pair in element.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    if k.trim().eq_ignore_ascii_case("for") {
                        if let Some(ip) = parse_forwarded_node(v) {
                            hops.push(ip);
                        }
                    }
                }
            }
        }
    }
    if hops.is_empty() {
        for v in headers.get_all("x-forwarded-for") {
            hops.extend(
                v.to_str()
                    .unwrap_or("")
                    .split(',')
                    .filter_map(|h| h.trim().parse::<IpAddr>().ok()),
            );
        }
    }
    hops.into_iter()
        .rev()
        .map(|ip| ip.to_canonical())
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// A `Forwarded` node: `192.0.2.1`, `"[2001:db8::1]:443"`, `192.0.2.1:80`.
fn parse_forwarded_node(raw: &str) -> Option<IpAddr> {
    let v = raw.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse()
        .ok()
        .or_else(|| v.rsplit_once(':').and_then(|(ip, _)| ip.parse().ok()))
}

#[cfg(test)]
mod client_address_tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> axum::http::HeaderMap {
        let mut m = axum::http::HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = crate::outbound::parse_allowlist("10.0.0.0/8").unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let xff = h(&[("x-forwarded-for", "6.6.6.6, 192.0.2.1, 10.0.0.9")]);
        assert_eq!(
            client_address(proxy, &xff, &trusted),
            "192.0.2.1".parse::<IpAddr>().unwrap(),
            "a spoofed leftmost entry is ignored"
        );
        let fwd = h(&[(
            "forwarded",
            r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:443""#,
        )]);
        assert_eq!(
            client_address(proxy, &fwd, &trusted),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(client_address(stranger, &xff, &trusted), stranger);
        assert_eq!(client_address(proxy, &h(&[]), &trusted), proxy);
    }
}

/// A caller holding a valid admin key: the workspace it acts in. A
/// `viewer` key gets only through reads (`GET`, `HEAD`): every other
/// method is a change, refused `403` here, for every route at once.
pub struct Admin {
    pub workspace_id: WorkspaceId,
    /// The admin key's id (recorded as `created_by_id`).
    pub key_id: String,
    pub role: Role,
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
        let key = key.to_owned();
        let client = SourceIp::from_request_parts(parts, app)
            .await
            .unwrap_or(SourceIp(IpAddr::from([0, 0, 0, 0])));
        let key = admin::authenticate(app, &key, client.0).await?;
        let reads = matches!(parts.method, Method::GET | Method::HEAD);
        if key.role == Role::Viewer && !reads {
            return Err(
                Error::Forbidden("this admin key has the viewer role: it may only read").into(),
            );
        }
        admin::touch(app, &key).await;
        Ok(Admin {
            workspace_id: key.workspace_id,
            key_id: key.id,
            role: key.role,
        })
    }
}

/// `?limit=&cursor=` of every listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
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

/// The raw request body, within the route's size limit, with JSON-error
/// rejections (413 over the limit).
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(super::MAX_MANAGEMENT_BODY_BYTES)
                } else {
                    ApiError::BadRequest(e.body_text())
                }
            })
    }
}

/// A JSON body that may be absent: no body (or only whitespace) and
/// `null` are `T`'s default. For actions such as rotations whose options all have defaults.
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let ApiBytes(body) = ApiBytes::from_request(req, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        crate::json::check_depth(&body).map_err(ApiError::BadRequest)?;
        must_be_object(&body, true)?;
        // `null` is "no options" too, as the document says (the body is
        // an optional object).
        serde_json::from_slice::<Option<T>>(&body)
            .map(|t| OptionalJson(t.unwrap_or_default()))
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}
