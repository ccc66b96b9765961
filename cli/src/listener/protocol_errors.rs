//! JSON bodies for the answers hyper gives on its own.
//!
//! hyper answers a request it cannot parse (400 for a malformed request
//! line, header or `Content-Length`; 414 for a URI over 64 KiB; 431 for a
//! header block over its buffer or more than 100 fields) before any route
//! runs, with an empty body, and then closes the connection. It has no hook
//! to change that answer, so the connection's writer does: a write that is
//! exactly one response head, with status 400, 414 or 431, `content-length:
//! 0` and no `content-type`, is replaced by the same status with the JSON
//! error shape every other error answer uses.
//!
//! That match can only be hyper's own answer: the router answers every
//! error with a JSON body (`hookrun_core::http::ApiError`), and a response body
//! never starts with a status line (the writer is not vectored, so hyper
//! hands it head and body together in one buffer).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::StatusCode;
use hyper::rt::{Read, ReadBufCursor, Write};

/// An HTTP/1 connection whose empty protocol-error answers get JSON bodies.
pub struct JsonProtocolErrors<S> {
    inner: S,
    /// A replacement being written, and how many bytes of hyper's write it
    /// stands for (reported once all of it is out).
    pending: Option<Pending>,
}

struct Pending {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<S> JsonProtocolErrors<S> {
    pub fn new(inner: S) -> Self {
        JsonProtocolErrors {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer replacing `head`, if `head` is hyper's empty answer to
/// a request it could not parse.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    if !head.starts_with(b"HTTP/1.") {
        return None;
    }
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(n)) if n == head.len() => {}
        _ => return None,
    }
    let status = StatusCode::from_u16(resp.code?).ok()?;
    if !matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::URI_TOO_LONG
            | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
    ) {
        return None;
    }
    let named = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
    };
    let empty = named("content-length").is_some_and(|h| h.value == b"0");
    if !empty || named("content-type").is_some() {
        return None;
    }
    let body = hookrun_core::http::protocol_error_body(status);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    if let Some(date) = named("date") {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(date.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

impl<S: Read + Unpin> Read for JsonProtocolErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: Write + Unpin> Write for JsonProtocolErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_none() {
            if let Some(bytes) = replacement(buf) {
                this.pending = Some(Pending {
                    bytes,
                    written: 0,
                    stands_for: buf.len(),
                });
            }
        }
        let Some(p) = this.pending.as_mut() else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        // hyper calls again with the same buffer until it is reported
        // written, so a replacement is finished before anything else.
        while p.written < p.bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &p.bytes[p.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            p.written += n;
        }
        let stands_for = p.stands_for;
        this.pending = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// Not vectored: hyper then writes a response's head and body from one
    /// buffer, which is what makes a lone head recognisable.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> String {
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn hypers_empty_parse_error_answers_become_json() {
        for (status, code) in [
            ("400 Bad Request", "invalid_request"),
            ("414 URI Too Long", "uri_too_long"),
            ("431 Request Header Fields Too Large", "headers_too_large"),
        ] {
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\ndate: Mon, 23 Nov 2026 10:00:00 GMT\r\n\r\n"
            );
            let out = text(&replacement(head.as_bytes()).expect("replaced"));
            let (head, body) = out.split_once("\r\n\r\n").unwrap();
            assert!(
                head.starts_with(&format!("HTTP/1.1 {status}\r\n")),
                "{head}"
            );
            assert!(head.contains("content-type: application/json"), "{head}");
            assert!(
                head.contains(&format!("content-length: {}", body.len())),
                "{head}"
            );
            assert!(
                head.contains("date: Mon, 23 Nov 2026 10:00:00 GMT"),
                "{head}"
            );
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["error"]["code"], code, "{body}");
            assert!(v["error"]["message"].as_str().unwrap().len() > 10);
        }
    }

    #[test]
    fn the_routers_answers_are_left_alone() {
        let untouched: [&[u8]; 6] = [
            // A JSON error with its body in the same buffer.
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
            // A head with a content type, body to follow.
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            // Other statuses.
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            // Not a head at all: body bytes, an incomplete head.
            b"{\"error\":{\"code\":\"invalid_request\"}}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        ];
        for bytes in untouched {
            assert!(replacement(bytes).is_none(), "{}", text(bytes));
        }
    }
}
