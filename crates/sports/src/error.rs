//! What the sports module refuses or fails at, each mapped to its status and code in `http`.

use sightline_platform::error::FieldError;
use sightline_platform::outbound::OutboundError;

/// A refusal or failure of the sports module.
#[derive(Debug, thiserror::Error)]
pub enum SportsError {
    /// No such player, team or record.
    #[error("{0}")]
    NotFound(String),
    /// Bad fields, each named.
    #[error("{}", describe(.0))]
    Invalid(Vec<FieldError>),
    /// More items than a batch may have.
    #[error("max batch size exceeded (max {0})")]
    BatchTooLarge(usize),
    /// The client asked for more items than its share of the minute; try after this long.
    #[error("rate limit exceeded, try later")]
    RateLimited(std::time::Duration),
    /// stats.nba.com failed, was too slow, or could not be reached.
    #[error(transparent)]
    Upstream(#[from] OutboundError),
    /// A database failure.
    #[error("sports store failed")]
    Database(#[from] sqlx::Error),
    /// Anything else on our side.
    #[error("sports module failed")]
    Internal(#[from] anyhow::Error),
}

fn describe(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{}: {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

impl SportsError {
    /// One bad field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}
