//! The module's failures, with the original's codes (`NOT_FOUND`, `BUSINESS_RULE_VIOLATION`,
//! `INVALID_STATE_TRANSITION`, …) in the platform's error body.

use sightline_platform::error::FieldError;

/// What can go wrong in planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    /// No such entity (`DemandPlan with id '99' not found.`).
    #[error("{entity} with id '{id}' not found.")]
    NotFound {
        /// The original's entity name: Product, DemandPlan, SupplyPlan, Inventory, Scenario, SOPCycle.
        entity: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// No such thing (by a text id).
    #[error("{0}")]
    NotFoundText(String),
    /// A rule of the domain refuses the change.
    #[error("{0}")]
    BusinessRule(String),
    /// The entity's status does not allow the step.
    #[error("Cannot transition {entity} from '{from}' to '{to}'.")]
    InvalidTransition {
        /// The entity name.
        entity: &'static str,
        /// Its status.
        from: String,
        /// The status asked for.
        to: String,
    },
    /// A field is wrong (422, naming it).
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The SKU is taken (400, as the original).
    #[error("SKU already exists")]
    DuplicateSku,
    /// Too little history for the calculation (422 `INSUFFICIENT_DATA`).
    #[error("{0}")]
    InsufficientData(String),
    /// Another row already has this key (a SKU, a plan's period and version).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Something else failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl PlanningError {
    /// A 422 naming `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }

    /// The store's unique-constraint failure as a conflict saying `what`; other errors as they are.
    pub fn unique_or(e: sqlx::Error, what: &str) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(what.to_owned()),
            _ => Self::Database(e),
        }
    }
}
