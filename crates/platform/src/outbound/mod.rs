//! Outbound HTTP: one named client per outside service, configured under `[outbound.<name>]`.
//!
//! Every call has a time budget (connect timeout, per-attempt timeout, whole-call budget), is
//! retried with exponential backoff and jitter on connect errors, timeouts, 429 and 5xx
//! (honouring `Retry-After`; only idempotent methods unless the caller says a repeat is
//! harmless), waits for the client's token bucket, and goes through its circuit breaker. It
//! sends `X-Request-Id`, runs in one `outbound.call` span and feeds the
//! `sightline_outbound_*` metrics. Failures come back as [`OutboundError`], which answers
//! 502/503/504 through [`crate::error::ErrorCode`].

mod breaker;
mod error;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use backon::BackoffBuilder as _;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;

pub use breaker::{Breaker, BreakerState};
pub use error::OutboundError;

use crate::config::Config;
use crate::request_id::{self, REQUEST_ID_HEADER};

/// Settings of one outbound client (`[outbound.<name>]`). A module passes its defaults; the
/// section overrides them key by key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Base URL the request paths are joined to, e.g. `https://stats.nba.com/stats`.
    pub base_url: String,
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout_ms: u64,
    /// Time one attempt may take, from sending to the last byte of the answer.
    pub timeout_ms: u64,
    /// Time the whole call may take, retries and waits included.
    pub budget_ms: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First retry delay; doubles per retry, with random jitter added.
    pub backoff_base_ms: u64,
    /// Upper bound of one retry delay.
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` honoured; a service asking for more fails the call at once.
    pub retry_after_max_ms: u64,
    /// Requests per second allowed (token bucket); 0 means no limit.
    pub rate_per_sec: f64,
    /// Requests that may go at once after an idle spell (bucket size).
    pub burst: u32,
    /// Consecutive failures that open the circuit breaker; 0 disables it.
    pub breaker_failures: u32,
    /// How long an open breaker fails calls fast before one probe goes through.
    pub breaker_cooldown_ms: u64,
    /// Largest answer body read, in bytes.
    pub max_body_bytes: usize,
    /// PEM file of an extra certificate authority to trust (a private CA).
    pub ca_file: Option<PathBuf>,
    /// `User-Agent` sent; default `sightline/<version>`.
    pub user_agent: Option<String>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            connect_timeout_ms: 3_000,
            timeout_ms: 10_000,
            budget_ms: 30_000,
            max_retries: 2,
            backoff_base_ms: 200,
            backoff_max_ms: 5_000,
            retry_after_max_ms: 30_000,
            rate_per_sec: 0.0,
            burst: 1,
            breaker_failures: 5,
            breaker_cooldown_ms: 30_000,
            max_body_bytes: 32 * 1024 * 1024,
            ca_file: None,
            user_agent: None,
        }
    }
}

/// The process's outbound clients, one per name, built on first use and shared after.
#[derive(Clone)]
pub struct Outbound {
    config: Arc<Config>,
    clients: Arc<Mutex<HashMap<String, OutboundClient>>>,
}

impl Outbound {
    /// The registry over the process configuration.
    pub fn new(config: Arc<Config>) -> Self {
        Self { config, clients: Arc::default() }
    }

    /// The client `name`: `[outbound.<name>]` over `defaults`. The first call builds it; later
    /// calls answer the same client (same breaker and rate limit), whatever their defaults.
    pub fn client(&self, name: &str, defaults: OutboundConfig) -> Result<OutboundClient, OutboundError> {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(name) {
            return Ok(client.clone());
        }
        let settings = self
            .config
            .section_over(&format!("outbound.{name}"), defaults)
            .map_err(|e| OutboundError::Config { client: name.to_owned(), reason: e.to_string() })?;
        let client = OutboundClient::new(name, settings)?;
        clients.insert(name.to_owned(), client.clone());
        Ok(client)
    }
}

/// A client of one outside service. Cheap to clone; clones share the breaker and rate limit.
#[derive(Clone)]
pub struct OutboundClient {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    settings: OutboundConfig,
    http: reqwest::Client,
    limiter: Option<DefaultDirectRateLimiter>,
    breaker: Breaker,
}

impl OutboundClient {
    /// A client named `name` (the metrics label and the error's `client`) with `settings`.
    pub fn new(name: &str, settings: OutboundConfig) -> Result<Self, OutboundError> {
        let config_error = |reason: String| OutboundError::Config { client: name.to_owned(), reason };
        if !settings.base_url.is_empty() {
            reqwest::Url::parse(&settings.base_url)
                .map_err(|e| config_error(format!("key `base_url`: {e}")))?;
        }
        if settings.timeout_ms == 0 || settings.connect_timeout_ms == 0 || settings.budget_ms == 0 {
            return Err(config_error("timeouts must be above 0 ms".into()));
        }
        let user_agent =
            settings.user_agent.clone().unwrap_or_else(|| format!("sightline/{}", env!("CARGO_PKG_VERSION")));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
            .timeout(Duration::from_millis(settings.timeout_ms))
            .user_agent(user_agent);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| config_error(format!("key `ca_file`: {}: {e}", path.display())))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| config_error(format!("key `ca_file`: {}: {e}", path.display())))?;
            builder = builder.add_root_certificate(certificate);
        }
        let http = builder.build().map_err(|e| config_error(format!("{e:#}")))?;
        let limiter = rate_limiter(settings.rate_per_sec, settings.burst)
            .map_err(|reason| config_error(format!("key `rate_per_sec`: {reason}")))?;
        let breaker =
            Breaker::new(settings.breaker_failures, Duration::from_millis(settings.breaker_cooldown_ms));
        metrics::gauge!("sightline_outbound_breaker_state", "client" => name.to_owned())
            .set(BreakerState::Closed.gauge());
        Ok(Self { inner: Arc::new(Inner { name: name.to_owned(), settings, http, limiter, breaker }) })
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The base URL requests are joined to.
    pub fn base_url(&self) -> &str {
        &self.inner.settings.base_url
    }

    /// Where the circuit breaker stands.
    pub fn breaker_state(&self) -> BreakerState {
        self.inner.breaker.state()
    }

    /// A `GET` of `path` (joined to the base URL; a full URL is used as is).
    pub fn get(&self, path: &str) -> OutboundRequest {
        self.request(Method::GET, path)
    }

    /// A `POST` to `path`.
    pub fn post(&self, path: &str) -> OutboundRequest {
        self.request(Method::POST, path)
    }

    /// A request with any method to `path`.
    pub fn request(&self, method: Method, path: &str) -> OutboundRequest {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}/{}", self.base_url().trim_end_matches('/'), path.trim_start_matches('/'))
        };
        OutboundRequest {
            client: self.clone(),
            builder: self.inner.http.request(method, url),
            retry_unsafe: false,
            require_json: false,
        }
    }
}

fn rate_limiter(rate_per_sec: f64, burst: u32) -> Result<Option<DefaultDirectRateLimiter>, String> {
    if rate_per_sec == 0.0 {
        return Ok(None);
    }
    if !rate_per_sec.is_finite() || rate_per_sec < 0.0 {
        return Err("must be 0 (no limit) or above".into());
    }
    let period = Duration::from_secs_f64(1.0 / rate_per_sec);
    let quota = Quota::with_period(period).ok_or("is too high")?;
    let burst = NonZeroU32::new(burst.max(1)).expect("at least 1");
    Ok(Some(RateLimiter::direct(quota.allow_burst(burst))))
}

/// One request being put together; [`OutboundRequest::send`] runs it.
pub struct OutboundRequest {
    client: OutboundClient,
    builder: reqwest::RequestBuilder,
    retry_unsafe: bool,
    require_json: bool,
}

impl OutboundRequest {
    /// Adds query parameters.
    pub fn query<T: Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.builder = self.builder.query(query);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// Adds headers.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        self.builder = self.builder.headers(headers);
        self
    }

    /// Sends `token` as `Authorization: Bearer` (marked sensitive: never logged).
    pub fn bearer_auth(mut self, token: &str) -> Self {
        self.builder = self.builder.bearer_auth(token);
        self
    }

    /// Sends `body` as JSON.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    /// Sends `body` as is, with `Content-Type: content_type`.
    pub fn body(mut self, body: impl Into<reqwest::Body>, content_type: &'static str) -> Self {
        self.builder = self.builder.header(reqwest::header::CONTENT_TYPE, content_type).body(body);
        self
    }

    /// Lets a non-idempotent request (`POST`, `PATCH`) be retried after it may have reached the
    /// service: the caller says a repeat has no second effect (an idempotency key, an event id).
    /// Connect errors are retried whatever the method, as nothing was sent.
    pub fn retry_non_idempotent(mut self) -> Self {
        self.retry_unsafe = true;
        self
    }

    /// Counts a 2xx answer whose body is not JSON as a failed attempt (retried, and against the
    /// breaker): services that answer an HTML block page with 200 when they throttle.
    pub fn require_json(mut self) -> Self {
        self.require_json = true;
        self
    }

    /// Sends the request; a 2xx answer comes back with its whole body, anything else as an
    /// [`OutboundError`].
    pub async fn send(self) -> Result<OutboundResponse, OutboundError> {
        let inner = &self.client.inner;
        let mut request = self.builder.build().map_err(|e| OutboundError::Config {
            client: inner.name.clone(),
            reason: format!("bad request: {e}"),
        })?;
        let id = request_id::current_request_id().unwrap_or_else(request_id::generate);
        if let Ok(value) = HeaderValue::from_str(&id) {
            request.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let idempotent = self.retry_unsafe || is_idempotent(request.method());
        let span = tracing::info_span!(
            "outbound.call",
            client = %inner.name,
            method = %request.method(),
            path = %request.url().path(),
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
        );
        let started = std::time::Instant::now();
        let budget = Duration::from_millis(inner.settings.budget_ms);
        let result = async {
            tokio::time::timeout(budget, inner.call(request, idempotent, self.require_json))
                .await
                .unwrap_or_else(|_| Err(OutboundError::Timeout { client: inner.name.clone(), after: budget }))
        }
        .instrument(span.clone())
        .await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(e) => e.outcome(),
        };
        let labels = [("client", inner.name.clone()), ("outcome", outcome.to_owned())];
        metrics::counter!("sightline_outbound_requests_total", &labels).increment(1);
        metrics::histogram!("sightline_outbound_request_duration_seconds", "client" => inner.name.clone())
            .record(started.elapsed().as_secs_f64());
        let _entered = span.enter();
        match &result {
            Ok(answer) => tracing::debug!(status = answer.status.as_u16(), "outbound.call_succeeded"),
            Err(e) => tracing::warn!(error = %e, outcome, "outbound.call_failed"),
        }
        result
    }

    /// Sends the request and decodes a 2xx answer's JSON body as `T`.
    pub async fn send_json<T: serde::de::DeserializeOwned>(self) -> Result<T, OutboundError> {
        let client = self.client.inner.name.clone();
        self.send().await?.json().map_err(|reason| OutboundError::Undecodable { client, reason })
    }
}

/// A successful (2xx) answer, body read in full.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl OutboundResponse {
    /// The body decoded as JSON `T`; the error says what did not fit.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| e.to_string())
    }
}

/// Why one attempt did not succeed, and whether another may be made.
struct Failure {
    error: OutboundError,
    /// Another attempt may follow (subject to idempotency: see `safe_to_repeat`).
    transient: bool,
    /// The request certainly never reached the service (connect error, breaker, limiter).
    not_sent: bool,
    retry_after: Option<Duration>,
}

impl Inner {
    async fn call(
        &self,
        request: reqwest::Request,
        idempotent: bool,
        require_json: bool,
    ) -> Result<OutboundResponse, OutboundError> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(self.settings.backoff_base_ms))
            .with_max_delay(Duration::from_millis(self.settings.backoff_max_ms))
            .with_max_times(self.settings.max_retries as usize)
            .with_jitter()
            .build();
        let mut attempts = 0u32;
        let mut next = Some(request);
        loop {
            let request = next.take().expect("a request for every attempt");
            let spare = request.try_clone();
            attempts += 1;
            tracing::Span::current().record("attempts", attempts);
            let failure = match self.attempt(request, require_json).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let may_repeat = failure.transient && (idempotent || failure.not_sent);
            let (Some(spare), true) = (spare, may_repeat) else { return Err(failure.error) };
            let Some(mut delay) = delays.next() else { return Err(failure.error) };
            if let Some(asked) = failure.retry_after {
                if asked > Duration::from_millis(self.settings.retry_after_max_ms) {
                    return Err(failure.error);
                }
                delay = delay.max(asked);
            }
            metrics::counter!("sightline_outbound_retries_total", "client" => self.name.clone()).increment(1);
            tracing::debug!(error = %failure.error, delay_ms = delay.as_millis() as u64, "outbound.retrying");
            tokio::time::sleep(delay).await;
            next = Some(spare);
        }
    }

    async fn attempt(
        &self,
        request: reqwest::Request,
        require_json: bool,
    ) -> Result<OutboundResponse, Failure> {
        let client = || self.name.clone();
        let Some(permit) = self.breaker.admit() else {
            let error = OutboundError::CircuitOpen { client: client() };
            return Err(Failure { error, transient: false, not_sent: true, retry_after: None });
        };
        self.publish_breaker_state();
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        let response = match self.http.execute(request).await {
            Ok(response) => response,
            Err(e) => {
                permit.record(false);
                self.publish_breaker_state();
                return Err(self.transport_failure(e));
            }
        };
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let headers = response.headers().clone();
        let retry_after = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = match self.read_body(response).await {
            Ok(body) => body,
            Err(failure) => {
                permit.record(false);
                self.publish_breaker_state();
                return Err(failure);
            }
        };
        let not_json = require_json
            && status.is_success()
            && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err();
        // A service answering 4xx is up; 5xx, or a block page where JSON was due, counts against it.
        permit.record(!status.is_server_error() && !not_json);
        self.publish_breaker_state();
        if not_json {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            let reason = format!("the answer is not JSON: {excerpt}");
            let error = OutboundError::Undecodable { client: client(), reason };
            return Err(Failure { error, transient: true, not_sent: false, retry_after: None });
        }
        if status.is_success() {
            return Ok(OutboundResponse { status, headers, body });
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let error = OutboundError::RateLimited { client: client(), retry_after };
            return Err(Failure { error, transient: true, not_sent: false, retry_after });
        }
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
        let error = OutboundError::Status { client: client(), status: status.as_u16(), body: excerpt };
        Err(Failure { error, transient: status.is_server_error(), not_sent: false, retry_after })
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, Failure> {
        let limit = self.settings.max_body_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            let reason = format!("answer larger than {limit} bytes");
            let error = OutboundError::Undecodable { client: self.name.clone(), reason };
            return Err(Failure { error, transient: false, not_sent: false, retry_after: None });
        }
        let mut body = bytes::BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() > limit => {
                    let reason = format!("answer larger than {limit} bytes");
                    let error = OutboundError::Undecodable { client: self.name.clone(), reason };
                    return Err(Failure { error, transient: false, not_sent: false, retry_after: None });
                }
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => return Ok(body.freeze()),
                Err(e) => return Err(self.transport_failure(e)),
            }
        }
    }

    fn transport_failure(&self, e: reqwest::Error) -> Failure {
        let client = self.name.clone();
        if e.is_timeout() {
            let after = Duration::from_millis(self.settings.timeout_ms);
            let error = OutboundError::Timeout { client, after };
            return Failure { error, transient: true, not_sent: false, retry_after: None };
        }
        if e.is_decode() {
            let error = OutboundError::Undecodable { client, reason: error_chain(e) };
            return Failure { error, transient: true, not_sent: false, retry_after: None };
        }
        let not_sent = e.is_connect();
        let error = OutboundError::Unavailable { client, reason: error_chain(e) };
        Failure { error, transient: true, not_sent, retry_after: None }
    }

    fn publish_breaker_state(&self) {
        metrics::gauge!("sightline_outbound_breaker_state", "client" => self.name.clone())
            .set(self.breaker.state().gauge());
    }
}

/// A reqwest error with its causes, the URL left out (its query may carry keys).
fn error_chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// `Retry-After` as delta-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let later = SystemTime::now() + Duration::from_secs(120);
        let parsed = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!((118..=120).contains(&parsed.as_secs()), "{parsed:?}");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn only_safe_methods_are_idempotent() {
        assert!(is_idempotent(&Method::GET) && is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST) && !is_idempotent(&Method::PATCH));
    }

    #[test]
    fn bad_settings_name_their_key() {
        let bad = OutboundConfig { base_url: "not a url".into(), ..Default::default() };
        let err = OutboundClient::new("feed", bad).err().unwrap().to_string();
        assert!(err.contains("feed") && err.contains("base_url"), "{err}");
        let bad = OutboundConfig { rate_per_sec: -1.0, ..Default::default() };
        let err = OutboundClient::new("feed", bad).err().unwrap().to_string();
        assert!(err.contains("rate_per_sec"), "{err}");
    }
}
