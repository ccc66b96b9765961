//! The web console (`console/app`: plain ES modules and a vendored
//! Preact, nothing to build), carried in the binary. `hookrun serve`
//! serves it at `/` next to the API; `hookrun console export` writes the
//! same files for a static host (the stack's S3 bucket behind CloudFront).
//!
//! The files are served under `/assets/{version}/`, where the version is
//! a hash of all of them: a browser may keep them forever (a new build has
//! a new path), and the modules' relative imports stay within one build.
//! Only `/` (the page that names the version) and `/config.json` are
//! revalidated on every load. The console routes with the URL's fragment
//! (`/#/runs/…`), so no console path can shadow an API or trigger route
//! and a static host needs no rewrite rules.

use std::path::Path;
use std::sync::OnceLock;

use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rust_embed::Embed;
use sha2::{Digest, Sha256};

#[derive(Embed)]
#[folder = "../console/app"]
struct Files;

/// Where the page finds the API and the WebSocket channel; `None` is the
/// page's own origin (`hookrun serve`).
#[derive(Debug, Default, serde::Serialize)]
pub struct Config {
    pub api_url: Option<String>,
    pub ws_url: Option<String>,
}

/// The placeholder in `index.html` for the assets' path.
const ASSETS_PLACEHOLDER: &str = "%ASSETS%";

/// No inline script or style, nothing from elsewhere, never framed. The
/// API and the channel are same-origin under `hookrun serve` (`'self'`
/// covers `ws:`/`wss:` of the same host); on AWS, CloudFront sends its
/// own policy naming the stack's API and WebSocket hosts (template.yaml).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The hash of every file (name and content), as the assets' path segment.
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<_> = Files::iter().collect();
        names.sort();
        let mut hash = Sha256::new();
        for name in names {
            let file = Files::get(&name).expect("an embedded file");
            hash.update(name.as_bytes());
            hash.update([0]);
            hash.update(file.metadata.sha256_hash());
        }
        hex::encode(&hash.finalize()[..6])
    })
}

fn assets_path() -> String {
    format!("/assets/{}", version())
}

/// The page, naming this build's assets.
pub fn index_html() -> String {
    let page = Files::get("index.html").expect("console/app/index.html");
    String::from_utf8_lossy(&page.data).replace(ASSETS_PLACEHOLDER, &assets_path())
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The console's routes (`/`, `/config.json`, `/assets/…`), each answer
/// with the page's security headers; gzip when the browser takes it.
pub fn routes() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/config.json", get(config))
        .route("/assets/{version}/{*path}", get(asset))
        .layer(tower_http::compression::CompressionLayer::new().gzip(true))
        .layer(axum::middleware::map_response(security_headers))
}

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        index_html(),
    )
        .into_response()
}

async fn config() -> Response {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        axum::Json(Config::default()),
    )
        .into_response()
}

async fn asset(UrlPath((wanted, path)): UrlPath<(String, String)>) -> Response {
    let Some(file) = (wanted == version()).then(|| Files::get(&path)).flatten() else {
        return not_found();
    };
    (
        [
            (header::CONTENT_TYPE, content_type(&path)),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        file.data,
    )
        .into_response()
}

/// An old build's asset, or none: the API's error shape, never cached.
fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "error": {"code": "not_found", "message": "no such console file in this version of hookrun"}
        })),
    )
        .into_response()
}

async fn security_headers(mut resp: Response) -> Response {
    let h: &mut HeaderMap = resp.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    resp
}

/// Writes the console for a static host into `out`: `index.html`,
/// `config.json` and `assets/{version}/…`. Returns the files written.
pub fn export(out: &Path, config: &Config) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    let mut write = |name: String, bytes: &[u8]| -> std::io::Result<()> {
        let path = out.join(&name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, bytes)?;
        written.push(name);
        Ok(())
    };
    write("index.html".into(), index_html().as_bytes())?;
    let config = serde_json::to_vec_pretty(config).expect("config serialises");
    write("config.json".into(), &config)?;
    let mut names: Vec<_> = Files::iter().collect();
    names.sort();
    for name in names {
        let file = Files::get(&name).expect("an embedded file");
        write(format!("assets/{}/{name}", version()), file.data.as_ref())?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        routes()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_page_names_this_builds_assets_with_a_strict_policy() {
        let resp = get("/").await;
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["cache-control"], "no-cache");
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(page.contains(&format!("/assets/{}/main.js", version())));
        assert!(!page.contains(ASSETS_PLACEHOLDER));
        // No inline script: every script has a src.
        assert!(!page.contains("<script>") && !page.contains("<script type=\"module\">"));
    }

    #[tokio::test]
    async fn assets_are_immutable_under_their_version_and_absent_under_another() {
        let resp = get(&format!("/assets/{}/main.js", version())).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            resp.headers()["content-type"],
            "text/javascript; charset=utf-8"
        );
        let stale = get("/assets/000000000000/main.js").await;
        assert_eq!(stale.status(), StatusCode::NOT_FOUND);
        let missing = get(&format!("/assets/{}/nope.js", version())).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()["x-frame-options"], "DENY");
    }

    #[tokio::test]
    async fn files_are_gzipped_for_a_browser_that_takes_it() {
        let resp = routes()
            .oneshot(
                Request::get(format!("/assets/{}/main.js", version()))
                    .header("accept-encoding", "gzip")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-encoding"], "gzip");
    }

    #[test]
    fn an_export_writes_the_page_its_config_and_every_asset() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            api_url: Some("https://api.example".into()),
            ws_url: Some("wss://ws.example/live".into()),
        };
        let written = export(dir.path(), &config).unwrap();
        assert!(written.contains(&"index.html".to_string()));
        let conf: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(conf["api_url"], "https://api.example");
        assert_eq!(conf["ws_url"], "wss://ws.example/live");
        let main = dir.path().join(format!("assets/{}/main.js", version()));
        assert!(main.is_file());
        assert_eq!(Files::iter().count() + 2, written.len());
    }
}
