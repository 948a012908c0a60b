//! Routes of the calls module, on the original's paths: the live `/…-stats` endpoints,
//! `/all-stats` and `/daily-report` ([`stats`]); organisations and ingest ([`orgs`]); stored
//! reports, backfill and the scheduler ([`reports`]); the debug routes ([`debug`]).

mod debug;
mod orgs;
mod reports;
mod stats;

use axum::http::StatusCode;
use serde_json::{json, Value};
use sightline_platform::error::ErrorCode;
use sightline_platform::SecureRouter;

use crate::error::CallsError;
use crate::service::CallsService;

/// Each failure's status and stable code.
impl ErrorCode for CallsError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Source(e) => e.status(),
            // ClickHouse's own timeout (code 159) is a gateway timeout; anything else a bad gateway.
            Self::SourceFailed(m) if m.starts_with("Code: 159") => StatusCode::GATEWAY_TIMEOUT,
            Self::SourceFailed(_) => StatusCode::BAD_GATEWAY,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "validation_failed",
            Self::Source(e) => e.code(),
            Self::SourceFailed(m) if m.starts_with("Code: 159") => "upstream_timeout",
            Self::SourceFailed(_) => "upstream_error",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Invalid(errors) => json!(errors),
            Self::Source(e) => e.details(),
            _ => Value::Null,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Source(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// The module's routes.
pub fn router(service: CallsService) -> SecureRouter {
    let router = SecureRouter::new();
    let router = stats::routes(router);
    let router = orgs::routes(router);
    let router = reports::routes(router);
    debug::routes(router).with_state(service)
}
