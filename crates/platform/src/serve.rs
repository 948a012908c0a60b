//! The HTTP/1.1 server loop: hyper with a header-read timeout (which also bounds how long an
//! idle keep-alive connection is kept), a cap on open connections, and a graceful drain.
//!
//! `axum::serve` has neither the timeout nor the cap, so a client that opens connections and
//! sends nothing, or sends headers a byte at a time, could hold them until the process runs out
//! of file descriptors.
//!
//! hyper answers a request it cannot parse by itself (400, 414 for a URI over 64 KiB, 431 for
//! oversized headers), with no body; [`JsonParseErrors`] gives those answers the JSON error body
//! every other error carries.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::HttpConfig;

/// Serves `router` on `listener` until `shutdown`, then lets open requests finish for up to
/// `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    http: &HttpConfig,
    shutdown: CancellationToken,
    grace: Duration,
) -> anyhow::Result<()> {
    raise_open_files_limit();
    let max_connections = http.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(http.header_read_timeout_secs.max(1)))
        // hyper checks its buffer against this before each read, and one read may still add up
        // to about as much again: request heads over ~320 KiB are always refused (431), while a
        // URI up to hyper's 64 KiB limit still fits (its own 414 above it).
        .max_buf_size(MAX_BUF_BYTES);
    let draining = CancellationToken::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::error!(error = %e, "server.accept_failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap: close at once, so the descriptor is free again.
            metrics::counter!("sightline_http_connections_refused_total").increment(1);
            tracing::warn!(max_connections, "server.connection_refused_at_cap");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = per_connection(router.clone(), peer);
        let io = TokioIo::new(JsonParseErrors { inner: stream, pending: None, answered: false });
        let connection = builder.serve_connection(io, service).with_upgrades();
        let draining = draining.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = draining.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    draining.cancel();
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("server.drain_timed_out");
    }
    Ok(())
}

/// Raises the soft limit on open files to the hard one, so the connection cap (not the
/// default soft limit, often 1024) is what bounds connections.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!(error = %e, "server.open_files_limit_unchanged");
        }
    }
}

/// The router as a hyper service for one connection, with the peer address where
/// `ConnectInfo<SocketAddr>` finds it.
fn per_connection(
    router: Router,
    peer: SocketAddr,
) -> TowerToHyperService<
    impl tower::Service<
            hyper::Request<Incoming>,
            Response = axum::response::Response,
            Error = Infallible,
            Future = impl Send,
        > + Clone,
> {
    TowerToHyperService::new(router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        without_trailing_slash(&mut req);
        req
    }))
}

/// Serves `/api/…/x/` as `/api/…/x`: every API path works with and without a trailing slash
/// (clients of the original systems use both). Only API paths, none of which is declared with
/// one; pages and `/docs/` keep theirs.
fn without_trailing_slash<B>(req: &mut hyper::Request<B>) {
    let path = req.uri().path();
    if !(path.starts_with("/api/") && path.len() > "/api/".len() && path.ends_with('/')) {
        return;
    }
    let trimmed = path.trim_end_matches('/');
    let rebuilt = match req.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_owned(),
    };
    if let Ok(uri) = rebuilt.parse::<hyper::Uri>() {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = uri.into_parts().path_and_query;
        if let Ok(uri) = hyper::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// hyper's connection read buffer limit (its default is ~400 KiB).
const MAX_BUF_BYTES: usize = 160 * 1024;

/// A connection's byte stream that rewrites the bodiless answer hyper writes on its own for a
/// first request it cannot parse into the same answer with the JSON error body. Only the first
/// write of a connection is looked at: later writes may be bodies, whose bytes are the client's
/// business and must pass untouched (so a parse error on a later keep-alive request keeps
/// hyper's bare answer).
struct JsonParseErrors<S> {
    inner: S,
    /// A rewritten answer being written: its bytes, how many are written, and how many bytes of
    /// hyper's buffer it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
    /// Whether anything was written yet.
    answered: bool,
}

/// hyper's own answers: its status line, and our code and message for it.
const PARSE_ERRORS: [(&[u8], &str, &str); 3] = [
    (b"HTTP/1.1 400 Bad Request\r\n", "bad_request", "the request is not valid HTTP/1.1"),
    (b"HTTP/1.1 414 URI Too Long\r\n", "uri_too_long", "the request's URI is longer than 65534 bytes"),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        "headers_too_large",
        "the request's headers are larger than the server reads",
    ),
];

/// `head` with a JSON error body, when it is one of hyper's bodiless parse-error answers.
fn with_json_body(head: &[u8]) -> Option<Vec<u8>> {
    const EMPTY: &[u8] = b"\r\ncontent-length: 0\r\n";
    let (_, code, message) = PARSE_ERRORS.iter().find(|(line, _, _)| head.starts_with(line))?;
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let at = head.windows(EMPTY.len()).position(|w| w.eq_ignore_ascii_case(EMPTY))?;
    let body = serde_json::to_vec(&crate::error::error_body(code, message, &serde_json::Value::Null)).ok()?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(&head[..at]);
    answer.extend_from_slice(
        format!("\r\ncontent-type: application/json\r\ncontent-length: {}\r\n", body.len()).as_bytes(),
    );
    answer.extend_from_slice(&head[at + EMPTY.len()..]);
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if !this.answered {
            this.answered = true;
            if let Some(answer) = with_json_body(buf) {
                this.pending = Some((answer, 0, buf.len()));
            }
        }
        let Some((answer, written, stands_for)) = &mut this.pending else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *written < answer.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        let stands_for = *stands_for;
        this.pending = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.answered || self.pending.is_some() {
            // The first answer goes through `poll_write`, where it is looked at.
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &**b);
            return self.poll_write(cx, first);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodiless_error_answers_get_the_json_body_and_nothing_else_changes() {
        let head =
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 12:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(with_json_body(head).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        assert!(head.contains("date: Fri"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "uri_too_long");
        let ours =
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n";
        assert!(with_json_body(ours).is_none(), "an answer with a body is ours: left alone");
        assert!(with_json_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
    }
}
