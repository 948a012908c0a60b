//! Access declared where each route is defined. A [`SecureRouter`] takes every route together
//! with its [`Access`], enforces it, records it in the route table and marks the OpenAPI
//! operation with its security requirement. At start-up every documented route must appear in
//! the table (default deny) and name only declared permissions.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::auth::Authn;
use crate::error::ApiError;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, docs, login, static page shells).
    Public,
    /// Any signed-in user or API key.
    Authenticated,
    /// Principals holding this permission.
    Permission(&'static str),
}

/// One row of the route table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteAccess {
    /// HTTP method, upper case.
    pub method: String,
    /// OpenAPI path template, e.g. `/api/v1/nba/{nba_id}`.
    pub path: String,
    /// Who may call it.
    pub access: Access,
}

/// An `OpenApiRouter` whose routes each carry their [`Access`].
pub struct SecureRouter<S = ()> {
    router: OpenApiRouter<S>,
    table: Vec<RouteAccess>,
}

impl<S> Default for SecureRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self { router: OpenApiRouter::new(), table: Vec::new() }
    }
}

pub(crate) fn operations(item: &mut utoipa::openapi::PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("GET", item.get.as_mut()),
        ("PUT", item.put.as_mut()),
        ("POST", item.post.as_mut()),
        ("DELETE", item.delete.as_mut()),
        ("OPTIONS", item.options.as_mut()),
        ("HEAD", item.head.as_mut()),
        ("PATCH", item.patch.as_mut()),
        ("TRACE", item.trace.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
    .collect()
}

/// Names of the security schemes a protected operation accepts (any one of them).
pub const SECURITY_SCHEMES: [&str; 3] = ["oauth2", "bearer", "api_key"];

impl<S> SecureRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the routes of `routes!(…)` with their access rule.
    pub fn route(mut self, access: Access, routes: UtoipaMethodRouter<S>) -> Self {
        let (schemas, mut paths, method_router) = routes;
        for (path, item) in paths.paths.iter_mut() {
            for (method, op) in operations(item) {
                self.table.push(RouteAccess { method: method.to_owned(), path: path.clone(), access });
                document(op, access);
            }
        }
        let method_router = match access {
            Access::Public => method_router,
            _ => method_router.route_layer(from_fn_with_state(access, require)),
        };
        self.router = self.router.routes((schemas, paths, method_router));
        self
    }

    /// Provides the routes' state.
    pub fn with_state<S2>(self, state: S) -> SecureRouter<S2>
    where
        S2: Clone + Send + Sync + 'static,
    {
        SecureRouter { router: self.router.with_state(state), table: self.table }
    }

    /// Adds another router's routes.
    pub fn merge(mut self, other: SecureRouter<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// The router and its route table.
    pub fn into_parts(self) -> (OpenApiRouter<S>, Vec<RouteAccess>) {
        (self.router, self.table)
    }
}

fn document(op: &mut Operation, access: Access) {
    let note = match access {
        Access::Public => return,
        Access::Authenticated => "Requires a signed-in user or an API key.".to_owned(),
        Access::Permission(p) => format!("Requires permission `{p}`."),
    };
    op.security =
        Some(SECURITY_SCHEMES.iter().map(|s| SecurityRequirement::new(*s, Vec::<String>::new())).collect());
    op.description = Some(match op.description.take() {
        Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
        _ => note,
    });
}

/// Enforces one route's [`Access`]: 401 without (valid) credentials, 403 without the permission.
async fn require(State(access): State<Access>, req: Request, next: Next) -> Response {
    let verdict = match (access, req.extensions().get::<Authn>()) {
        (Access::Public, _) => Ok(()),
        (_, None | Some(Authn::Anonymous)) => Err(unauthorized("authentication required")),
        (_, Some(Authn::Invalid(reason))) => Err(unauthorized(reason)),
        (Access::Authenticated, Some(Authn::Principal(_))) => Ok(()),
        (Access::Permission(p), Some(Authn::Principal(principal))) if principal.can(p) => Ok(()),
        (Access::Permission(p), Some(Authn::Principal(_))) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("missing permission {p}"))
                .into_response())
        }
    };
    match verdict {
        Ok(()) => next.run(req).await,
        Err(response) => response,
    }
}

/// 401 with a `WWW-Authenticate` challenge.
pub fn unauthorized(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"sightline\""));
    response
}
