//! The Sightline platform: configuration, storage, durable queue, scheduler, HTTP plumbing,
//! outbound HTTP, telemetry and the module contract. It knows no module; the server composes them.

pub mod app;
pub mod audit;
pub mod auth;
pub mod background;
pub mod batch;
pub mod cache;
pub mod client_address;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod home;
pub mod http;
mod http_headers;
pub mod migrate;
pub mod module;
pub mod outbound;
pub mod queue;
pub mod request_id;
pub mod scheduler;
mod serve;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod ui;
pub mod validate;
pub mod webhooks;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use app::Application;
pub use auth::{Access, PermissionSpec, Principal, SecureRouter};
pub use config::Config;
pub use context::RequestContext;
pub use db::{Backend, Db};
pub use error::{ApiError, ApiResult, FieldError};
pub use module::{CommandContext, Module, ModuleParts, ReadinessCheck};
pub use queue::{Job, JobContext, NewJob, Queue, RetryPolicy, RunInTransaction, RunStandalone};

/// What every module gets: configuration, database, queue and the shutdown signal.
#[derive(Clone)]
pub struct Platform {
    /// Loaded configuration.
    pub config: Arc<Config>,
    /// Database pools.
    pub db: Db,
    /// The job queue.
    pub queue: Queue,
    /// Outbound HTTP clients, one per outside service (`[outbound.<name>]`).
    pub outbound: outbound::Outbound,
    /// Domain events: publish inside the transaction of the change (audit trail, log).
    pub bus: audit::EventBus,
    /// The shared cache (memory, or Redis with `REDIS_URL`).
    pub cache: cache::Cache,
    /// Fires when the process is asked to stop.
    pub shutdown: CancellationToken,
}

/// One page of a listing: `{items, total, limit, offset}` (the NBA seed's shape, used by every
/// paged listing).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Rows matching, before paging.
    pub total: i64,
    /// Page size asked for.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// Checks `limit` (1..=200, default 50) and `offset` (>= 0, default 0) query parameters.
pub fn paging(limit: Option<i64>, offset: Option<i64>) -> ApiResult<(i64, i64)> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    let mut errors = Vec::new();
    if !(1..=200).contains(&limit) {
        errors.push(FieldError::new("limit", "must be between 1 and 200"));
    }
    if offset < 0 {
        errors.push(FieldError::new("offset", "must be 0 or more"));
    }
    if errors.is_empty() {
        Ok((limit, offset))
    } else {
        Err(ApiError::validation(errors))
    }
}
