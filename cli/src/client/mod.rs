//! The management API over HTTP: one place that knows the base URL, sends
//! the admin key, and turns answers into values or [`CliError`]s (and so
//! into exit codes).

mod error;

use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

pub use error::{exit, CliError, Result, EXIT_CODES_HELP};

/// The header every hookrun answer carries.
const API_VERSION_HEADER: &str = hookrun_core::http::API_VERSION_HEADER;

/// Where the service is and how to authenticate; global flags of every
/// client command.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// Base URL of a running hookrun service (client commands).
    // Not `--url`: that belongs to the resources that have one (a
    // subscription's destination), so the admin key never goes where a
    // resource points.
    #[arg(
        long,
        global = true,
        env = "HOOKRUN_URL",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    pub server: String,
    /// Admin API key of the workspace (client commands); sent as
    /// `Authorization: Bearer`, never printed.
    #[arg(
        long,
        global = true,
        env = "HOOKRUN_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub api_key: Option<String>,
}

/// How long a request may take in all. The API answers at once (runs are
/// asynchronous), so a slow answer means a service in trouble.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A successful answer: its raw body (printed as is by `--json`) and that
/// body parsed (`Null` when empty, e.g. a 204).
#[derive(Debug)]
pub struct Answer {
    pub raw: String,
    pub json: Value,
}

/// The client. Not `Debug`: it holds the key. A clone shares the
/// connection pool.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: HeaderValue,
}

impl Client {
    /// Checks the connection settings before anything is sent, so a typo
    /// is a usage error rather than a network one.
    pub fn new(conn: &Connection) -> Result<Client> {
        let base = Url::parse(&conn.server)
            .map_err(|e| CliError::usage(format!("--server {:?}: {e}", conn.server)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(CliError::usage(format!(
                "--server {:?}: expected an http:// or https:// URL",
                conn.server
            )));
        }
        let key = conn
            .api_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| CliError::usage("give --api-key or set HOOKRUN_API_KEY"))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| CliError::usage("the API key has characters a header cannot carry"))?;
        // Keeps the key out of reqwest's debug output.
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .user_agent(concat!("hookrun-cli/", env!("CARGO_PKG_VERSION")))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // An admin key is not for whatever a redirect points at.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CliError::usage(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client { http, base, auth })
    }

    /// The URL of `segments` under the base; each segment is
    /// percent-encoded, so an id typed by a user cannot change the route
    /// (`url` drops `.` and `..` segments, so those are refused).
    pub fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Url> {
        if let Some(bad) = segments
            .iter()
            .find(|s| matches!(s.trim(), "" | "." | ".."))
        {
            return Err(CliError::usage(format!("{bad:?} is not an id")));
        }
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    /// The real-time channel's URL: `ws_url` when given (on AWS, the
    /// stack's WebSocket API), else `/api/v1/ws` under the base, as
    /// `hookrun serve` has it.
    pub fn websocket_url(&self, ws_url: Option<&str>) -> Result<Url> {
        if let Some(raw) = ws_url.map(str::trim).filter(|u| !u.is_empty()) {
            let url =
                Url::parse(raw).map_err(|e| CliError::usage(format!("--ws-url {raw:?}: {e}")))?;
            if !matches!(url.scheme(), "ws" | "wss") {
                return Err(CliError::usage(format!(
                    "--ws-url {raw:?}: expected a ws:// or wss:// URL"
                )));
            }
            return Ok(url);
        }
        let mut url = self.url(&["api", "v1", "ws"], &[])?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| CliError::usage(format!("cannot make a WebSocket URL of {url}")))?;
        Ok(url)
    }

    /// The opening request of a WebSocket to `url`, carrying the admin
    /// key in `Authorization` (checked before the upgrade) and offering
    /// the channel's subprotocol.
    pub fn websocket_request(
        &self,
        url: &Url,
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| CliError::usage(format!("{url}: {e}")))?;
        let headers = req.headers_mut();
        headers.insert(AUTHORIZATION, self.auth.clone());
        headers.insert(
            reqwest::header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(hookrun_core::live::protocol::PROTOCOL),
        );
        Ok(req)
    }

    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Answer> {
        self.send(Method::GET, self.url(segments, query)?, None)
            .await
    }

    pub async fn post(&self, segments: &[&str], body: Option<&Value>) -> Result<Answer> {
        self.send(Method::POST, self.url(segments, &[])?, body)
            .await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Answer> {
        self.send(Method::PATCH, self.url(segments, &[])?, Some(body))
            .await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Answer> {
        self.send(Method::DELETE, self.url(segments, &[])?, None)
            .await
    }

    async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Answer> {
        let mut req = self
            .http
            .request(method, url.clone())
            .header(AUTHORIZATION, self.auth.clone());
        if let Some(b) = body {
            req = req.json(b);
        }
        self.answer(req, &url).await
    }

    /// POSTs `body` with `headers` to a trigger route under the base, as an
    /// outside system would: without the admin key (a trigger route takes
    /// its own credentials). The answer is handled as every other.
    pub async fn call_trigger_route(
        &self,
        segments: &[&str],
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<Answer> {
        let url = self.url(segments, &[])?;
        let mut req = self.http.post(url.clone()).body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        self.answer(req, &url).await
    }

    async fn answer(&self, req: reqwest::RequestBuilder, url: &Url) -> Result<Answer> {
        let shown = without_query(url);
        let resp = req.send().await.map_err(|e| unreachable(&shown, &e))?;
        let status = resp.status();
        // Every hookrun answer names the API.
        let hookrun_answer = resp.headers().contains_key(API_VERSION_HEADER);
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("no content type")
            .to_owned();
        let raw = resp.text().await.map_err(|e| unreachable(&shown, &e))?;
        let not_hookrun = |what: &str| CliError::NotHookrun {
            url: shown.clone(),
            detail: format!("{status}, {what}"),
        };
        if status.is_redirection() {
            // Never followed: the key is for the service, not for wherever
            // a redirect points.
            return Err(not_hookrun("a redirect (not followed)"));
        }
        if status.is_success() {
            if !hookrun_answer {
                return Err(not_hookrun(&format!(
                    "{content_type} without the {API_VERSION_HEADER} header every hookrun answer has"
                )));
            }
            let json = if raw.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&raw)
                    .map_err(|_| not_hookrun(&format!("{content_type} that is not JSON")))?
            };
            return Ok(Answer { raw, json });
        }
        Err(api_error(status, &raw).unwrap_or_else(|| {
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                // A proxy or load balancer in front of the service, most
                // likely: retrying later may help.
                let reason = status.canonical_reason().unwrap_or("error");
                let mut text: String = raw.trim().chars().take(200).collect();
                if text.is_empty() || content_type.contains("html") {
                    text =
                        format!("{reason} ({content_type} from {shown}, not from hookrun itself)");
                }
                CliError::Api {
                    status: status.as_u16(),
                    code: "http_error".to_owned(),
                    message: text,
                }
            } else {
                not_hookrun(&format!("{content_type} without hookrun's error body"))
            }
        }))
    }
}

/// The API's `{"error":{"code","message"}}`; None when the body is not
/// one (something other than hookrun answered).
fn api_error(status: StatusCode, raw: &str) -> Option<CliError> {
    let v = serde_json::from_str::<Value>(raw).ok()?;
    let e = v.get("error")?;
    Some(CliError::Api {
        status: status.as_u16(),
        code: e.get("code")?.as_str()?.to_owned(),
        message: e.get("message")?.as_str()?.to_owned(),
    })
}

/// A request that got no answer. Timeouts and refusals alike: nothing
/// says the service saw it. The message names the kind of failure and its
/// root cause (reqwest's own layers repeat the URL and add nothing).
fn unreachable(url: &str, e: &reqwest::Error) -> CliError {
    let mut root: &dyn std::error::Error = e;
    while let Some(s) = root.source() {
        root = s;
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    CliError::Unreachable {
        url: url.to_owned(),
        detail: format!("{kind}: {root}"),
    }
}

/// A URL as shown in messages: without its query (cursors are long and
/// say nothing).
fn without_query(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Result<Client> {
        Client::new(&Connection {
            server: url.into(),
            api_key: Some("k".into()),
        })
    }

    #[test]
    fn ids_are_path_segments_never_routes() {
        let c = client("http://h:1/base/").unwrap_or_else(|e| panic!("{e}"));
        let u = c
            .url(
                &["api", "v1", "agents", "../x?y#z"],
                &[("cursor", "a&b".into())],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            u.as_str(),
            "http://h:1/base/api/v1/agents/..%2Fx%3Fy%23z?cursor=a%26b"
        );
        for bad in ["..", ".", ""] {
            let e = c.url(&["api", "v1", "agents", bad], &[]).err();
            assert_eq!(e.map(|e| e.exit_code()), Some(exit::USAGE), "{bad:?}");
        }
    }

    #[test]
    fn the_channel_is_under_the_server_unless_named() {
        let c = client("https://h:1/base/").unwrap_or_else(|e| panic!("{e}"));
        let u = c.websocket_url(None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.as_str(), "wss://h:1/base/api/v1/ws");
        let plain = client("http://127.0.0.1:8080").unwrap_or_else(|e| panic!("{e}"));
        let u = plain
            .websocket_url(Some(" "))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.as_str(), "ws://127.0.0.1:8080/api/v1/ws");
        let named = "wss://abc.execute-api.eu-west-1.amazonaws.com/prod";
        let u = c
            .websocket_url(Some(named))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.as_str(), named);
        for bad in ["https://h/ws", "not a url"] {
            let e = c.websocket_url(Some(bad)).err().map(|e| e.exit_code());
            assert_eq!(e, Some(exit::USAGE), "{bad}");
        }
        // The key goes in a header, never in the URL.
        let req = c.websocket_request(&u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(req.headers()["authorization"], "Bearer k");
        assert_eq!(req.headers()["sec-websocket-protocol"], "hookrun.v1");
        assert_eq!(req.uri().to_string(), named);
    }

    #[test]
    fn bad_connection_settings_are_usage_errors() {
        for url in ["not a url", "ftp://h/", "mailto:x@y"] {
            let e = client(url).err().map(|e| e.exit_code());
            assert_eq!(e, Some(exit::USAGE), "{url}");
        }
        let no_key = Client::new(&Connection {
            server: "http://h/".into(),
            api_key: None,
        });
        assert_eq!(no_key.err().map(|e| e.exit_code()), Some(exit::USAGE));
    }

    #[test]
    fn error_bodies_are_hookruns_or_none() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            r#"{"error":{"code":"not_found","message":"agent not found"}}"#,
        )
        .expect("hookrun's error body");
        assert_eq!(e.to_string(), "404 not_found: agent not found");
        for other in ["<html>not found</html>", "", "{}", r#"{"error":"x"}"#] {
            assert!(api_error(StatusCode::NOT_FOUND, other).is_none(), "{other}");
        }
    }
}
