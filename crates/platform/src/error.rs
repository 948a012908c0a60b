//! The one JSON error body every 4xx/5xx carries:
//! `{"error":{"code","message","details","request_id"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::request_id::current_request_id;

/// One bad field in a request, as listed in `details` of a `validation_failed` error.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `context` or `deactivate_nba_ids.2`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The error body every 4xx/5xx carries (serialised as is).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inner error object.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"code": "not_found", "message": "nba not found", "details": null, "request_id": "req_3f9a1c2b7d"}))]
pub struct ErrorDetail {
    /// Stable machine-readable code (`validation_failed`, `not_found`, `conflict`, …).
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Extra data: for `validation_failed`, the list of bad fields.
    pub details: Option<Value>,
    /// The request id, to find the request in the logs.
    pub request_id: Option<String>,
}

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Value,
    /// For an internal error: its cause chain, logged once when it is answered.
    cause: Option<String>,
    /// Sent as `Retry-After` (seconds): when asking again may succeed.
    retry_after: Option<std::time::Duration>,
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: Value::Null, cause: None, retry_after: None }
    }

    /// Answers with `Retry-After` (whole seconds, at least 1).
    pub fn with_retry_after(mut self, after: std::time::Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Attaches machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 422 `validation_failed` listing each bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let message = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message).with_details(json!(errors))
    }

    /// 500 `internal`: the cause chain is logged once, with the request id, when the error is
    /// answered; the client sees only the request id.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let err = err.into();
        let mut error = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error");
        error.cause = Some(format!("{err:#}"));
        error
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The machine-readable details (`Null` when there are none; for `validation_failed`, the
    /// list of bad fields).
    pub fn details(&self) -> &Value {
        &self.details
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        // One bad field is already named in the message; several are listed after it.
        if let Value::Array(items) = &self.details {
            if items.len() < 2 {
                return Ok(());
            }
            for item in items {
                if let (Some(field), Some(message)) = (item["field"].as_str(), item["message"].as_str()) {
                    write!(f, "; {field}: {message}")?;
                }
            }
        }
        Ok(())
    }
}

/// A module's error: each variant names its HTTP status and a stable machine-readable code, so
/// the error becomes an [`ApiError`] in one place (`?` in a handler). Services return these
/// enums and know nothing of HTTP beyond this mapping.
pub trait ErrorCode: std::error::Error + Send + Sync + 'static {
    /// The HTTP status the error is answered with.
    fn status(&self) -> StatusCode;
    /// Stable machine-readable code (`not_found`, `upstream_timeout`, …).
    fn code(&self) -> &'static str;
    /// Machine-readable details (`Null` when there are none).
    fn details(&self) -> Value {
        Value::Null
    }
    /// When asking again may succeed, sent as `Retry-After` (`None`: no header).
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

impl<E: ErrorCode> From<E> for ApiError {
    fn from(err: E) -> Self {
        if err.status() == StatusCode::INTERNAL_SERVER_ERROR {
            return Self::internal(anyhow::Error::new(err));
        }
        let details = err.details();
        let mut error = Self::new(err.status(), err.code(), err.to_string()).with_details(details);
        error.retry_after = err.retry_after();
        error
    }
}

/// The JSON error body for `code`, with the current request id.
pub fn error_body(code: &str, message: &str, details: &Value) -> ErrorBody {
    ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.to_owned(),
            details: (!details.is_null()).then(|| details.clone()),
            request_id: current_request_id(),
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(cause) = &self.cause {
            // Logged here, once, inside the request's span (which carries its request id).
            tracing::error!(error = %cause, request_id = current_request_id().unwrap_or_default(), "http.internal_error");
        }
        let body = error_body(self.code, &self.message, &self.details);
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// The error code used for a bare status (fallbacks, layers that answer on their own).
pub fn code_for_status(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        408 => "timeout",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        431 => "headers_too_large",
        502 => "upstream_error",
        504 => "upstream_timeout",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        429 => "too_many_requests",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_of_a_validation_error_names_each_bad_field_once() {
        let one = ApiError::validation(vec![FieldError::new("permissions", "unknown permission foo:bar")]);
        assert_eq!(one.to_string(), "permissions: unknown permission foo:bar");
        let two = ApiError::validation(vec![FieldError::new("a", "bad"), FieldError::new("b", "worse")]);
        assert_eq!(two.to_string(), "2 fields are invalid; a: bad; b: worse");
    }
}
