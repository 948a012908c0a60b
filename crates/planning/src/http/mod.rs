//! Routes of the planning module, on the original's paths under `/api/v1`: products and
//! categories ([`products`]), demand and supply plans ([`plans`]), inventory and the gap
//! analysis ([`inventory`]), bulk loads ([`bulk`]), forecasting ([`forecasting`]), scenarios
//! ([`scenarios`]), the S&OP cycle ([`sop`]), KPI metrics and the dashboard ([`kpis`]).

mod bulk;
mod forecasting;
mod inventory;
mod kpis;
mod plans;
mod products;
mod scenarios;
mod sop;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use sightline_platform::error::{ErrorCode, FieldError};
use sightline_platform::{ApiError, SecureRouter};

use crate::error::PlanningError;
use crate::service::PlanningService;

/// Each failure's status and the original's code.
impl ErrorCode for PlanningError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } | Self::NotFoundText(_) => StatusCode::NOT_FOUND,
            Self::BusinessRule(_) | Self::InvalidTransition { .. } | Self::DuplicateSku => {
                StatusCode::BAD_REQUEST
            }
            Self::Invalid(_) | Self::InsufficientData(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } | Self::NotFoundText(_) => "NOT_FOUND",
            Self::BusinessRule(_) => "BUSINESS_RULE_VIOLATION",
            Self::InvalidTransition { .. } => "INVALID_STATE_TRANSITION",
            Self::DuplicateSku => "DUPLICATE_SKU",
            Self::Invalid(_) => "VALIDATION_ERROR",
            Self::InsufficientData(_) => "INSUFFICIENT_DATA",
            Self::Conflict(_) => "CONFLICT",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Invalid(errors) => json!(errors),
            _ => Value::Null,
        }
    }
}

/// A path id: an integer, else a 422 naming `field`.
fn path_id(raw: &str, field: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::validation(vec![FieldError::new(field, "must be an integer")]))
}

/// A JSON body that may be left out (empty: `T::default()`); a bad one is a 422.
fn optional_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { "body".to_owned() } else { field };
        ApiError::validation(vec![FieldError::new(field, e.inner().to_string())])
    })
}

/// `{"message": …}`, the original's answer to a delete.
fn message(text: &str) -> axum::Json<Value> {
    axum::Json(json!({ "message": text }))
}

/// The planning dashboard: KPI tiles, history against forecast, inventory health, the active
/// cycle, scenarios.
#[utoipa::path(get, path = "/ui/planning", tag = "planning",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn planning_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../../ui/planning.html"))
}

/// The module's routes.
pub fn router(service: PlanningService) -> SecureRouter {
    let router = plans::routes(products::routes(SecureRouter::new()));
    let router = forecasting::routes(bulk::routes(inventory::routes(router)));
    kpis::routes(scenarios::routes(sop::routes(router)))
        .route(sightline_platform::Access::Public, utoipa_axum::routes!(planning_page))
        .with_state(service)
}
