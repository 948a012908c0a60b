//! A stand-in for an outside HTTP(S) service: a local server a test scripts to answer slowly,
//! hang, reset the connection, answer 429 or 503, or succeed, and which records every request
//! it received.
//!
//! ```ignore
//! let feed = StandIn::start().await;
//! feed.then(Reply::status(503)).then(Reply::json(200, &json!({"ok": true})));
//! // … the code under test calls feed.url("/stats") …
//! assert_eq!(feed.received().len(), 2);
//! ```

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify};
use tokio_rustls::rustls;

/// What the stand-in does with one request.
#[derive(Debug, Clone)]
pub struct Reply {
    action: Action,
    delay: Duration,
}

#[derive(Debug, Clone)]
enum Action {
    Answer { status: StatusCode, headers: Vec<(HeaderName, HeaderValue)>, body: Bytes },
    Hang,
    Reset,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self::bytes(status, "text/plain", Bytes::new())
    }

    /// A JSON answer.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::bytes(status, "application/json", Bytes::from(body.to_string()))
    }

    /// A body of `content_type`.
    pub fn bytes(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        let status = StatusCode::from_u16(status).expect("a valid status");
        let content_type = HeaderValue::from_str(content_type).expect("a valid content type");
        let headers = vec![(axum::http::header::CONTENT_TYPE, content_type)];
        Self { action: Action::Answer { status, headers, body: body.into() }, delay: Duration::ZERO }
    }

    /// Never answers (the connection stays open until the client gives up).
    pub fn hang() -> Self {
        Self { action: Action::Hang, delay: Duration::ZERO }
    }

    /// Resets the connection (TCP RST) without answering.
    pub fn reset() -> Self {
        Self { action: Action::Reset, delay: Duration::ZERO }
    }

    /// Adds a header to the answer.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Action::Answer { headers, .. } = &mut self.action {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            headers.push((name, HeaderValue::from_str(value).expect("a valid header value")));
        }
        self
    }

    /// Waits `delay` before acting (a slow service).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The method.
    pub method: String,
    /// Path and query, e.g. `/stats?PlayerID=1`.
    pub uri: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

#[derive(Default)]
struct Script {
    next: Mutex<VecDeque<Reply>>,
    otherwise: Mutex<Option<Reply>>,
    received: Mutex<Vec<Received>>,
    arrived: Notify,
}

/// A running stand-in; stops when dropped.
pub struct StandIn {
    address: SocketAddr,
    tls: Option<String>,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl StandIn {
    /// Starts a plain-HTTP stand-in on a free loopback port.
    pub async fn start() -> Self {
        Self::spawn(None).await
    }

    /// Starts an HTTPS stand-in with a certificate for `127.0.0.1` and `localhost` issued by a
    /// fresh test CA; [`StandIn::ca_pem`] gives the CA to trust.
    pub async fn start_tls() -> Self {
        let (ca_pem, server) = test_certificates();
        Self::spawn(Some((ca_pem, server))).await
    }

    async fn spawn(tls: Option<(String, rustls::ServerConfig)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().expect("local address");
        let script = Arc::new(Script::default());
        let (ca_pem, acceptor) = match tls {
            Some((pem, config)) => (Some(pem), Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))),
            None => (None, None),
        };
        let task = tokio::spawn(accept_loop(listener, acceptor, script.clone()));
        Self { address, tls: ca_pem, script, task }
    }

    /// `http(s)://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.address)
    }

    /// The PEM of the CA that issued the HTTPS certificate (`None` for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_deref()
    }

    /// Queues `reply` for the next request not yet scripted.
    pub fn then(&self, reply: Reply) -> &Self {
        self.script.next.lock().expect("script").push_back(reply);
        self
    }

    /// The reply once the queued ones are used up (default: 404).
    pub fn otherwise(&self, reply: Reply) -> &Self {
        *self.script.otherwise.lock().expect("script") = Some(reply);
        self
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.script.received.lock().expect("script").clone()
    }

    /// Waits until at least `n` requests have arrived (up to 10 s, then panics).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let wait = async {
            loop {
                let notified = self.script.arrived.notified();
                if self.received().len() >= n {
                    return self.received();
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait).await.expect("requests arrive at the stand-in")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, script: Arc<Script>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        // A dropped socket with zero linger sends RST: what `Reply::reset` needs.
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        let (reset, on_reset) = oneshot::channel::<()>();
        let router = axum::Router::new()
            .fallback(answer)
            .with_state(Connection { script: script.clone(), reset: Arc::new(Mutex::new(Some(reset))) });
        let service = TowerToHyperService::new(router);
        let tls = tls.clone();
        connections.spawn(async move {
            let http = hyper::server::conn::http1::Builder::new();
            match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    tokio::select! { _ = connection => {}, _ = on_reset => {} }
                }
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    tokio::select! { _ = connection => {}, _ = on_reset => {} }
                }
            }
        });
    }
}

#[derive(Clone)]
struct Connection {
    script: Arc<Script>,
    reset: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

async fn answer(State(connection): State<Connection>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let uri = parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default();
    let script = &connection.script;
    script.received.lock().expect("script").push(Received {
        method: parts.method.to_string(),
        uri,
        headers: parts.headers,
        body,
    });
    script.arrived.notify_waiters();
    let reply = script.next.lock().expect("script").pop_front();
    let reply = reply
        .or_else(|| script.otherwise.lock().expect("script").clone())
        .unwrap_or_else(|| Reply::bytes(404, "text/plain", "the stand-in has no reply scripted"));
    tokio::time::sleep(reply.delay).await;
    match reply.action {
        Action::Answer { status, headers, body } => {
            let mut response = (status, Body::from(body)).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value);
            }
            response
        }
        Action::Hang => std::future::pending().await,
        Action::Reset => {
            if let Some(reset) = connection.reset.lock().expect("reset").take() {
                let _ = reset.send(());
            }
            std::future::pending().await
        }
    }
}

/// A fresh CA (its PEM) and a server configuration with a certificate it issued for
/// `127.0.0.1` and `localhost`.
fn test_certificates() -> (String, rustls::ServerConfig) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Sightline test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let leaf_key = KeyPair::generate().expect("server key");
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).expect("server params");
    let leaf = leaf_params.signed_by(&leaf_key, &ca, &ca_key).expect("server certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .expect("server certificate fits its key");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca.pem(), config)
}
