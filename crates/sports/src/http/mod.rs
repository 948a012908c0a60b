//! Routes of the sports module, on the original's paths: players and teams ([`players`]),
//! status ([`status`]), ingestion ([`ingest`]).

mod ingest;
mod players;
mod status;

use axum::http::StatusCode;
use serde_json::{json, Value};
use sightline_platform::error::ErrorCode;
use sightline_platform::SecureRouter;

use crate::error::SportsError;
use crate::service::SportsService;

/// Each failure's status and stable code.
impl ErrorCode for SportsError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BatchTooLarge(_) => StatusCode::BAD_REQUEST,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream(e) => e.status(),
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "validation_failed",
            Self::BatchTooLarge(_) => "batch_too_large",
            Self::RateLimited(_) => "rate_limited",
            Self::Upstream(e) => e.code(),
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Invalid(errors) => json!(errors),
            Self::Upstream(e) => e.details(),
            _ => Value::Null,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Upstream(e) => e.retry_after(),
            Self::RateLimited(wait) => Some(*wait),
            _ => None,
        }
    }
}

/// The module's routes.
pub fn router(service: SportsService) -> SecureRouter {
    ingest::routes(status::routes(players::routes(SecureRouter::new()))).with_state(service)
}
