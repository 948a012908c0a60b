//! How an outbound call fails, typed so a module answers 502, 503 or 504 without guessing.

use std::time::Duration;

use axum::http::StatusCode;

use crate::error::ErrorCode;

/// A failed outbound call. `client` is the configured name (`[outbound.<client>]`).
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// No answer within the time budget (an attempt's timeout, or the whole call's budget).
    #[error("{client} did not answer within {} ms", after.as_millis())]
    Timeout {
        /// The client.
        client: String,
        /// The budget that ran out.
        after: Duration,
    },
    /// The service could not be reached: refused or reset connection, DNS or TLS failure.
    #[error("{client} is unavailable: {reason}")]
    Unavailable {
        /// The client.
        client: String,
        /// What went wrong, without secrets.
        reason: String,
    },
    /// The circuit breaker is open after repeated failures: the call was not made.
    #[error("{client} is unavailable: too many recent failures, calls paused")]
    CircuitOpen {
        /// The client.
        client: String,
    },
    /// The service keeps answering 429, or asks us to wait longer than we may.
    #[error("{client} is rate limiting our calls")]
    RateLimited {
        /// The client.
        client: String,
        /// How long the service asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The service answered with a status that is not a success.
    #[error("{client} answered HTTP {status}")]
    Status {
        /// The client.
        client: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body, for logs.
        body: String,
    },
    /// The answer's body could not be read or decoded.
    #[error("{client} sent an answer we could not read: {reason}")]
    Undecodable {
        /// The client.
        client: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The client is misconfigured (bad base URL, unreadable CA file, …).
    #[error("outbound client `{client}`: {reason}")]
    Config {
        /// The client.
        client: String,
        /// What is wrong, naming the key.
        reason: String,
    },
}

impl OutboundError {
    /// The outcome label used in metrics.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::Unavailable { .. } => "unavailable",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::RateLimited { .. } => "rate_limited",
            Self::Status { .. } => "status",
            Self::Undecodable { .. } => "undecodable",
            Self::Config { .. } => "config",
        }
    }
}

impl ErrorCode for OutboundError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Unavailable { .. } | Self::CircuitOpen { .. } | Self::RateLimited { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Status { .. } | Self::Undecodable { .. } => StatusCode::BAD_GATEWAY,
            Self::Config { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "upstream_timeout",
            Self::Unavailable { .. } | Self::CircuitOpen { .. } => "upstream_unavailable",
            Self::RateLimited { .. } => "upstream_rate_limited",
            Self::Status { .. } => "upstream_error",
            Self::Undecodable { .. } => "upstream_bad_response",
            Self::Config { .. } => "internal",
        }
    }

    /// A service that is down, slow or pausing us may answer later: 503/504 say when to ask
    /// again (what the service asked for, else half a minute, a breaker's usual cool-down).
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => Some(retry_after.unwrap_or(Duration::from_secs(30))),
            Self::Timeout { .. } | Self::Unavailable { .. } | Self::CircuitOpen { .. } => {
                Some(Duration::from_secs(30))
            }
            Self::Status { .. } | Self::Undecodable { .. } | Self::Config { .. } => None,
        }
    }
}
