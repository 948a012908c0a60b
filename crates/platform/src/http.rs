//! HTTP plumbing shared by every module: request context (id, span, access log, metrics), the
//! JSON error normaliser, health, metrics, OpenAPI and Swagger UI; the queue API is in
//! [`crate::queue::http`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument as _;
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

use crate::audit::{self, DomainEvent};
use crate::auth::http::{router as auth_routes, AuthState};
use crate::auth::{authenticate, Access, AuthService, RouteAccess, SecureRouter};
use crate::client_address::{client_address, TrustedProxies};
use crate::config::HttpConfig;
use crate::context::RequestContext;
use crate::error::{code_for_status, error_body, ApiError, ApiResult, ErrorBody, FieldError};
use crate::module::ReadinessCheck;
use crate::request_id::{self, REQUEST_ID_HEADER};
use crate::Platform;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sightline",
        description = "One backend for next-best-actions, call analytics, sports stats, usage analytics and S&OP planning. \
            Sign in with `POST /api/v1/auth/login` (or Authorize here), then send `Authorization: Bearer <access_token>`; \
            services send an API key as `Authorization: Bearer <key>` or `X-API-Key`.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "platform", description = "Health, metrics and the job queue"),
        (name = "auth", description = "Sign-in, users, API keys and the audit trail"),
    )
)]
struct ApiDoc;

/// Declares the three ways to authenticate: OAuth2 password flow (Swagger's Authorize), a
/// bearer JWT, and an API key header.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/api/v1/auth/login",
                Scopes::new(),
            ))])),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// Assembles the full HTTP router: platform, identity and module routes, docs and middleware.
/// Refuses a documented route that declares no access, or a permission nobody declared.
pub fn build_router(
    platform: &Platform,
    auth: &AuthService,
    modules: Vec<SecureRouter>,
    pages: Vec<crate::module::PageLink>,
    checks: Vec<ReadinessCheck>,
) -> anyhow::Result<(Router, Vec<RouteAccess>)> {
    // Install the recorder before the first request records anything.
    crate::telemetry::prometheus();
    let state = AuthState { auth: auth.clone(), db: platform.db.clone() };
    let mut all = platform_routes(platform.clone(), auth.metrics_public(), checks)
        .merge(auth_routes(state))
        .merge(crate::home::routes(pages));
    for module in modules {
        all = all.merge(module);
    }
    let (api, table) = all.into_parts();
    let (router, mut spec) = OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(api).split_for_parts();
    check_route_table(&mut spec, &table, auth.policy())?;
    let http = &platform.config.http;
    let proxies = Arc::new(TrustedProxies::parse(&http.trusted_proxies).map_err(anyhow::Error::msg)?);
    let router = router.merge(SwaggerUi::new("/docs").url("/openapi.json", spec)).fallback(not_found).layer(
        ServiceBuilder::new()
            .layer(from_fn_with_state(proxies, client_address))
            .layer(from_fn(request_context))
            .layer(from_fn(crate::http_headers::security_headers))
            .layer(from_fn(json_errors))
            .layer(from_fn_with_state(auth.clone(), authenticate))
            .layer(from_fn_with_state(platform.clone(), audit_requests))
            .layer(CatchPanicLayer::new())
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                Duration::from_secs(http.request_timeout_secs),
            ))
            .option_layer(cors(http))
            .layer(DefaultBodyLimit::max(http.body_limit_bytes)),
    );
    Ok((router, table))
}

/// Default deny: every documented operation must be in the route table, and every permission
/// the table names must be declared.
fn check_route_table(
    spec: &mut utoipa::openapi::OpenApi,
    table: &[RouteAccess],
    policy: &crate::auth::AccessPolicy,
) -> anyhow::Result<()> {
    for (path, item) in spec.paths.paths.iter_mut() {
        for (method, _) in crate::auth::access::operations(item) {
            if !table.iter().any(|r| r.method == method && &r.path == path) {
                anyhow::bail!(
                    "route {method} {path} declares no access; declare Access::… where it is defined"
                );
            }
        }
    }
    for route in table {
        if let Access::Permission(p) = route.access {
            anyhow::ensure!(
                policy.is_known(p),
                "route {} {} needs undeclared permission {p}",
                route.method,
                route.path
            );
        }
    }
    Ok(())
}

/// Puts the request's [`RequestContext`] (request id, actor) on it for the handler, and records
/// one audit entry for a successful state-changing request that published none itself.
async fn audit_requests(State(p): State<Platform>, mut req: Request, next: Next) -> Response {
    let actor = audit::current_actor().unwrap_or_else(|| audit::Actor::anonymous("anonymous"));
    let context = RequestContext::new(request_id::current_request_id(), actor);
    req.extensions_mut().insert(context.clone());
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let action = format!("http.{}", method_label(req.method()).to_lowercase());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let (response, audited) = audit::tracking(next.run(req)).await;
    if response.status().is_success() && !audited && !context.audited() {
        let event = DomainEvent::new(action, "route", route)
            .after(json!({"status": response.status().as_u16()}))
            .within(&context);
        if let Err(e) = p.bus.publish_alone(&p.db, event).await {
            tracing::error!(error = format!("{e:#}"), "audit.write_failed");
        }
    }
    response
}

fn cors(http: &HttpConfig) -> Option<CorsLayer> {
    if http.cors_origins.is_empty() {
        return None;
    }
    let origin = if http.cors_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(http.cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods(tower_http::cors::Any)
            .allow_headers(tower_http::cors::Any)
            .expose_headers([
                axum::http::HeaderName::from_static(REQUEST_ID_HEADER),
                axum::http::header::RETRY_AFTER,
            ]),
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Takes or makes the request id, runs the request in its span and scope, echoes the id, logs
/// the request and records its metrics.
async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| request_id::is_acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(request_id::generate);
    let header = HeaderValue::from_str(&id).expect("request ids are header-safe");
    req.headers_mut().insert(REQUEST_ID_HEADER, header.clone());
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("http", request_id = %id, method = %method, path = %req.uri().path());
    let started = Instant::now();
    let mut response = request_id::scope(id, next.run(req)).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    response.headers_mut().insert(REQUEST_ID_HEADER, header);
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1000.0, "http.request");
    });
    let labels = [("method", method.to_owned()), ("route", route), ("status", status.to_string())];
    metrics::counter!("sightline_http_requests_total", &labels).increment(1);
    metrics::histogram!("sightline_http_request_duration_seconds", &labels).record(elapsed.as_secs_f64());
    response
}

/// The method as a metric label and log field: one of the standard methods, else `other`, so a
/// client inventing methods cannot grow the label set (or the log) without bound.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN.iter().find(|known| *known == method).map_or("other", |known| known.as_str())
}

/// Rewrites any non-JSON error response (from a layer, the router or a panic) into the one
/// JSON error body.
async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_owned();
    let message = if text.is_empty() || status.is_server_error() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::error!("http.panic_or_unhandled_error");
    }
    let body = serde_json::to_string(&error_body(code_for_status(status), &message, &Value::Null))
        .unwrap_or_default();
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, Body::from(body))
}

fn platform_routes(platform: Platform, metrics_public: bool, checks: Vec<ReadinessCheck>) -> SecureRouter {
    let metrics_access = if metrics_public { Access::Public } else { Access::Permission("metrics:read") };
    let readiness = Readiness { platform: platform.clone(), checks: Arc::new(checks) };
    SecureRouter::new()
        .route(Access::Public, routes!(health))
        .route(metrics_access, routes!(metrics))
        .with_state(platform.clone())
        .merge(SecureRouter::new().route(Access::Public, routes!(ready)).with_state(readiness))
        .merge(crate::queue::http::routes(platform))
        .merge(crate::ui::routes())
}

/// Liveness answer, in both seed shapes.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "healthy", "ok": true}))]
struct Health {
    status: &'static str,
    ok: bool,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "platform", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "healthy", ok: true })
}

/// What `/health/ready` checks: the database, the queue, and the modules' own checks.
#[derive(Clone)]
struct Readiness {
    platform: Platform,
    checks: Arc<Vec<ReadinessCheck>>,
}

/// Time one readiness check may take before it counts as down.
const READINESS_BUDGET: Duration = Duration::from_secs(3);

/// Readiness: the database and the queue are reachable, and every module's check passes (Redis,
/// ClickHouse, an outside API). 503 names what is down; causes go to the log.
#[utoipa::path(get, path = "/health/ready", tag = "platform",
    responses((status = 200, description = "ready"), (status = 503, description = "a dependency is down", body = ErrorBody)))]
async fn ready(State(r): State<Readiness>) -> ApiResult<Json<Value>> {
    let p = &r.platform;
    let database = p.db.ping().await.map_err(|e| e.to_string());
    let queued = match &database {
        Ok(()) => {
            p.queue.counts().await.map(|c| c.iter().map(|c| c.queued).sum::<i64>()).map_err(|e| e.to_string())
        }
        Err(_) => Err("database is unreachable".to_owned()),
    };
    let modules = futures::future::join_all(r.checks.iter().map(|check| async move {
        let outcome = match tokio::time::timeout(READINESS_BUDGET, check.run()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("no answer within {} s", READINESS_BUDGET.as_secs())),
        };
        (check.name, outcome)
    }))
    .await;
    let mut down = Vec::new();
    let mut checks = serde_json::Map::new();
    let outcomes =
        [("database", database.clone()), ("queue", queued.clone().map(|_| ()))].into_iter().chain(modules);
    for (name, outcome) in outcomes {
        if let Err(cause) = &outcome {
            // The cause goes to the log, not to the (unauthenticated) client.
            tracing::warn!(error = %cause, dependency = name, "health.not_ready");
            down.push(FieldError::new(name, "unreachable"));
        }
        checks.insert(name.to_owned(), json!({"ok": outcome.is_ok()}));
    }
    if !down.is_empty() {
        let names: Vec<&str> = down.iter().map(|d| d.field.as_str()).collect();
        return Err(ApiError::unavailable(format!("not ready: {} unreachable", names.join(", ")))
            .with_details(json!(down)));
    }
    Ok(Json(json!({
        "status": "ready",
        "database": {"ok": true, "backend": p.db.backend().as_str()},
        "queue": {"ok": true, "queued": queued.unwrap_or_default()},
        "checks": checks,
    })))
}

/// Prometheus metrics: HTTP requests and latency by route and status; jobs by type and outcome;
/// queue depth by queue and state.
#[utoipa::path(get, path = "/metrics", tag = "platform",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
async fn metrics(State(p): State<Platform>) -> Response {
    if let Ok(counts) = p.queue.counts().await {
        for c in counts {
            for (state, n) in [
                ("queued", c.queued),
                ("running", c.running),
                ("succeeded", c.succeeded),
                ("failed", c.failed),
            ] {
                metrics::gauge!("sightline_queue_jobs", "queue" => c.queue.clone(), "state" => state)
                    .set(n as f64);
            }
        }
    }
    let handle = crate::telemetry::prometheus();
    handle.run_upkeep();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
}
