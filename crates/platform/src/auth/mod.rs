//! Identity and access control: users (argon2id), JWT access tokens with rotating refresh
//! tokens, API keys for services, named permissions granted by roles, a route table where
//! every route declares its access, and login throttling. Auth events go to the audit trail.

pub mod access;
pub mod error;
pub mod http;
pub mod password;
pub mod policy;
pub mod service;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::collections::BTreeSet;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use crate::audit::{self, Actor};
use crate::error::ApiError;

pub use access::{Access, RouteAccess, SecureRouter};
pub use policy::{AccessPolicy, PermissionSpec};
pub use service::AuthService;

/// A signed-in user or an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `user` or `api_key`.
    pub kind: PrincipalKind,
    /// User or key id.
    pub id: String,
    /// Username or key name.
    pub name: String,
    /// Roles (users only).
    pub roles: Vec<String>,
    /// Effective permissions.
    pub permissions: BTreeSet<String>,
    /// The session (refresh-token family) a user's access token was issued in.
    pub session: Option<String>,
}

/// What kind of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A person with a password.
    User,
    /// A service with a key.
    ApiKey,
}

impl Principal {
    /// Whether it holds `permission`.
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// As an audit actor.
    pub fn actor(&self) -> Actor {
        let kind = match self.kind {
            PrincipalKind::User => "user",
            PrincipalKind::ApiKey => "api_key",
        };
        Actor { kind: kind.into(), id: Some(self.id.clone()), name: self.name.clone() }
    }
}

/// The outcome of reading a request's credentials.
#[derive(Debug, Clone)]
pub enum Authn {
    /// No credentials given.
    Anonymous,
    /// Valid credentials.
    Principal(Principal),
    /// Credentials given but refused, with the reason.
    Invalid(String),
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Authn>() {
            Some(Authn::Principal(p)) => Ok(p.clone()),
            Some(Authn::Invalid(reason)) => Err(access::unauthorized(reason)),
            _ => Err(access::unauthorized("authentication required")),
        }
    }
}

fn credentials(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned());
    }
    // Browsers cannot set headers on a WebSocket handshake, so it may carry the token in the
    // query instead (only there: tokens in URLs of ordinary requests end up in histories).
    let websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !websocket {
        return None;
    }
    form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned())
}

/// Reads `Authorization: Bearer …` or `X-API-Key` (or, on a WebSocket handshake, the
/// `access_token` query parameter), resolves the principal (checking at once
/// that the user is active or the key unrevoked), and runs the request as that actor.
pub async fn authenticate(State(auth): State<AuthService>, mut req: Request, next: Next) -> Response {
    let authn = match credentials(req.headers(), req.uri().query()) {
        None => Authn::Anonymous,
        Some(token) => match auth.resolve(&token).await {
            Ok(principal) => Authn::Principal(principal),
            Err(AuthFailure::Refused(reason)) => Authn::Invalid(reason),
            Err(AuthFailure::Internal(e)) => {
                return axum::response::IntoResponse::into_response(ApiError::internal(e))
            }
        },
    };
    let actor = match &authn {
        Authn::Principal(p) => p.actor(),
        _ => Actor::anonymous("anonymous"),
    };
    req.extensions_mut().insert(authn);
    audit::with_actor(actor, next.run(req)).await
}

/// Why credentials were not accepted.
#[derive(Debug)]
pub enum AuthFailure {
    /// Refused, with a reason safe to show.
    Refused(String),
    /// The check itself failed.
    Internal(anyhow::Error),
}

impl From<sqlx::Error> for AuthFailure {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}
