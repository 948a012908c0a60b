//! What the identity service refuses, and why: mapped to its HTTP status and code in one place.

use axum::http::StatusCode;
use serde_json::{json, Value};

use crate::error::{ErrorCode, FieldError};

/// A refusal or failure of the identity service.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong login or password, or a disabled user (one message for all: no user enumeration).
    #[error("Invalid email or password")]
    InvalidCredentials,
    /// A refresh token that is unknown, revoked, reused or expired; a disabled user.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Too many failed password checks (or registrations) from this address or for this account.
    #[error("{what}; try again later")]
    Throttled {
        /// What was too many, e.g. `too many failed logins`.
        what: &'static str,
        /// Seconds until another attempt is considered.
        retry_after_secs: u64,
    },
    /// No such user or key.
    #[error("{0}")]
    NotFound(&'static str),
    /// The username or email is taken.
    #[error("username or email already registered")]
    AlreadyRegistered,
    /// Bad fields, each named.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// A database failure.
    #[error("identity storage failed")]
    Database(#[from] sqlx::Error),
    /// Anything else that went wrong on our side (signing, hashing, publishing).
    #[error("identity service failed")]
    Internal(#[from] anyhow::Error),
}

impl AuthError {
    /// One bad field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// One bad field as `field: message`; several as a count then each.
fn describe(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{}: {}", one.field, one.message),
        many => {
            let each: Vec<String> = many.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            format!("{} fields are invalid; {}", many.len(), each.join("; "))
        }
    }
}

impl ErrorCode for AuthError {
    fn status(&self) -> StatusCode {
        match self {
            Self::InvalidCredentials | Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::AlreadyRegistered => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::InvalidCredentials | Self::Unauthorized(_) => "unauthorized",
            Self::Throttled { .. } => "too_many_requests",
            Self::NotFound(_) => "not_found",
            Self::AlreadyRegistered => "conflict",
            Self::Invalid(_) => "validation_failed",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Throttled { retry_after_secs, .. } => json!({"retry_after_secs": retry_after_secs}),
            Self::Invalid(errors) => json!(errors),
            _ => Value::Null,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Throttled { retry_after_secs, .. } => {
                Some(std::time::Duration::from_secs(*retry_after_secs))
            }
            _ => None,
        }
    }
}
