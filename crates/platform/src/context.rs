//! The request context: who asks and under which request id. Handlers extract it and pass it
//! to services, which stamp it on the domain events they publish and carry it across tasks
//! (a group-commit writer publishes on its own task, for the request it serves).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::audit::Actor;
use crate::error::ApiError;

/// Who is asking and under which request id, passed explicitly into services.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (`X-Request-Id`, or the one the job carries).
    pub request_id: Option<String>,
    /// Who acts: a user, an API key, the system.
    pub actor: Actor,
    /// Set once an audit entry is published for the request, so the platform writes no generic
    /// one besides.
    audited: Arc<AtomicBool>,
}

impl RequestContext {
    /// A context for `actor` under `request_id`.
    pub fn new(request_id: Option<String>, actor: Actor) -> Self {
        Self { request_id, actor, audited: Arc::default() }
    }

    /// The process itself acting (jobs, schedules, the CLI).
    pub fn system() -> Self {
        Self::new(None, Actor::system())
    }

    /// Notes that the request needs no generic audit entry: one was published for it (the bus
    /// does this), or it changed nothing on purpose (a repeated event id).
    pub fn mark_audited(&self) {
        self.audited.store(true, Ordering::Relaxed);
    }

    /// Whether an audit entry was published for this request.
    pub(crate) fn audited(&self) -> bool {
        self.audited.load(Ordering::Relaxed)
    }
}

/// The context the platform's middleware put on the request (every routed request has one).
impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<RequestContext>().cloned().ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("the request has no context (middleware missing)"))
        })
    }
}
