//! What the calls module refuses or fails at, each mapped to its status and code in one place.

use sightline_platform::error::FieldError;

/// A refusal or failure of the calls module.
#[derive(Debug, thiserror::Error)]
pub enum CallsError {
    /// No such organisation, report or data.
    #[error("{0}")]
    NotFound(String),
    /// The organisation exists already.
    #[error("{0}")]
    Conflict(String),
    /// Bad fields or lines, each named.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// The call source (ClickHouse) failed or could not be reached.
    #[error(transparent)]
    Source(sightline_platform::outbound::OutboundError),
    /// The call source answered with an error of its own (ClickHouse's `Code: …` text).
    #[error("the call source failed: {0}")]
    SourceFailed(String),
    /// A database failure.
    #[error("call store failed")]
    Database(#[from] sqlx::Error),
    /// Anything else on our side.
    #[error("calls module failed")]
    Internal(#[from] anyhow::Error),
}

fn describe(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{}: {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

impl CallsError {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}
