//! The AWS SDK's HTTP client: reqwest, the client hookrun already ships for
//! its outgoing calls, instead of the SDK's default hyper/rustls stack.
//!
//! Why: the SDK's default client trusts the platform's root certificates,
//! and loading them (every file of `/etc/ssl/certs` read and decoded) was
//! more than half of a Lambda bootstrap's init; it also links a second TLS
//! stack (aws-lc) beside reqwest's. reqwest with `rustls-tls` trusts the
//! Mozilla roots compiled into the binary (webpki-roots): nothing to read
//! at start, one TLS stack, smaller bootstraps (docs/cost.md, "Cold
//! starts").
//!
//! Requests are small (DynamoDB, SQS, Secrets Manager, a runner's call),
//! so they are passed whole; so are answers of a known length, but an
//! event stream (`application/vnd.amazon.eventstream`: Bedrock's
//! ConverseStream, Lambda's InvokeWithResponseStream), or any answer sent
//! without a length, is passed on as it arrives and the SDK reads it frame
//! by frame: a model's text must reach the run's log while it is written.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use http_body_util::BodyExt;

/// The SDK's own default for connecting (`BehaviorVersion::latest()`),
/// used when the settings name none.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// An SDK HTTP client on reqwest. Its connectors (one reqwest client per
/// distinct pair of timeouts the SDK asks for, each with its own pool)
/// are made on first use and kept.
pub fn client() -> SharedHttpClient {
    SharedHttpClient::new(ReqwestClient::default())
}

/// The connect and read timeouts a connector was made for.
type Timeouts = (Option<Duration>, Option<Duration>);

#[derive(Debug, Default)]
struct ReqwestClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

impl HttpClient for ReqwestClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| {
                let mut builder = reqwest::Client::builder()
                    // AWS endpoints never redirect; the SDK sees answers as sent.
                    .redirect(reqwest::redirect::Policy::none())
                    // No proxy, as with the SDK's default client: the
                    // `*_PROXY` variables are never picked up implicitly.
                    .no_proxy()
                    .connect_timeout(key.0.unwrap_or(DEFAULT_CONNECT_TIMEOUT));
                if let Some(read) = key.1 {
                    builder = builder.read_timeout(read);
                }
                let client = builder
                    .build()
                    .expect("an HTTP client with static settings builds");
                SharedHttpConnector::new(ReqwestConnector(client))
            })
            .clone()
    }
}

#[derive(Debug)]
struct ReqwestConnector(reqwest::Client);

impl HttpConnector for ReqwestConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.0.clone();
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(&client, request).await?;
            let response = client.execute(request).await.map_err(connector_error)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = if is_streamed(&headers) {
                let (_, body) = http::Response::<reqwest::Body>::from(response).into_parts();
                SdkBody::from_body_1_x(body)
            } else {
                SdkBody::from(response.bytes().await.map_err(connector_error)?)
            };
            from_parts(status, headers, body)
        })
    }
}

/// The SDK's request as reqwest's: method, URI, headers and the whole body.
/// The body is read through (not just looked at): the SDK watches it for
/// stalled uploads and would cancel a long poll whose body it never saw
/// finish.
async fn to_reqwest(
    client: &reqwest::Client,
    request: HttpRequest,
) -> Result<reqwest::Request, ConnectorError> {
    let (parts, body) = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?
        .into_parts();
    let body = body.collect().await.map_err(ConnectorError::io)?.to_bytes();
    let mut request = client
        .request(parts.method, parts.uri.to_string())
        .body(body)
        .build()
        .map_err(|e| ConnectorError::user(e.into()))?;
    *request.headers_mut() = parts.headers;
    Ok(request)
}

/// Whether an answer is passed on as it arrives: an AWS event stream, or
/// one sent without a length (chunked).
fn is_streamed(headers: &reqwest::header::HeaderMap) -> bool {
    let event_stream = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/vnd.amazon.eventstream"));
    event_stream || !headers.contains_key(reqwest::header::CONTENT_LENGTH)
}

/// reqwest's answer as the SDK's.
fn from_parts(
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: SdkBody,
) -> Result<HttpResponse, ConnectorError> {
    let mut response = http::Response::builder()
        .status(status.as_u16())
        .body(body)
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    *response.headers_mut() = headers;
    HttpResponse::try_from(response).map_err(|e| ConnectorError::other(e.into(), None))
}

/// Timeouts and connection failures are transient for the SDK's retries;
/// anything else is reported as it is.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_connect() || e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, body: &'static str) -> HttpRequest {
        HttpRequest::try_from(
            http::Request::builder()
                .method("POST")
                .uri(uri)
                .header("x-amz-target", "DynamoDB_20120810.GetItem")
                .body(SdkBody::from(body))
                .unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn passes_the_request_and_the_answer_through_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.ends_with(b"{\"Key\":1}") {
                let n = s.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 400 Bad Request\r\nx-amzn-requestid: r1\r\ncontent-length: 7\r\n\r\n{\"a\":1}")
                .await
                .unwrap();
            String::from_utf8(seen).unwrap()
        });
        let connector = ReqwestConnector(reqwest::Client::new());
        let answer = connector
            .call(request(&format!("http://{addr}/"), "{\"Key\":1}"))
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 400);
        assert_eq!(answer.headers().get("x-amzn-requestid"), Some("r1"));
        assert_eq!(answer.body().bytes(), Some(&b"{\"a\":1}"[..]));
        let seen = server.await.unwrap().to_ascii_lowercase();
        assert!(seen.starts_with("post / http/1.1\r\n"), "{seen}");
        assert!(
            seen.contains("x-amz-target: dynamodb_20120810.getitem\r\n"),
            "{seen}"
        );
        assert!(seen.contains("content-length: 9\r\n"), "{seen}");
    }

    #[tokio::test]
    async fn an_event_stream_answer_is_read_as_it_arrives() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (more_tx, more_rx) = tokio::sync::oneshot::channel::<()>();
        let _server = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
                .await
                .unwrap();
            // The rest only once the first part was read by the client.
            let _ = more_rx.await;
            s.write_all(b"4\r\nlast\r\n0\r\n\r\n").await.unwrap();
        });
        let connector = ReqwestConnector(reqwest::Client::new());
        let answer = connector
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .unwrap();
        assert_eq!(answer.body().bytes(), None, "the body is a stream");
        let mut body = answer.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"first");
        more_tx.send(()).unwrap();
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(&rest[..], b"last");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        // A port nobody listens on (bound, then closed).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let connector = ReqwestConnector(reqwest::Client::new());
        let e = connector
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .unwrap_err();
        assert!(e.is_io(), "{e:?}");
    }

    #[tokio::test]
    async fn a_slow_answer_past_the_read_timeout_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(s);
        });
        let settings = HttpConnectorSettings::builder()
            .read_timeout(Duration::from_millis(200))
            .build();
        let components = aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder::for_tests()
            .build()
            .unwrap();
        let connector = ReqwestClient::default().http_connector(&settings, &components);
        let e = connector
            .call(request(&format!("http://{addr}/"), "{}"))
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
    }
}
