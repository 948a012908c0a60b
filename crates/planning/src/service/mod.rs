//! The planning logic, over the store: products ([`products`]), demand and supply plans
//! ([`demand`], [`supply`]). Every write publishes a domain event in its transaction (the audit
//! log's entry, with the state before and after). Knows no HTTP.

pub mod analytics;
pub mod bulk;
pub mod dashboard;
pub mod demand;
pub mod forecast_runs;
pub mod forecasting;
pub mod inventory;
pub mod kpis;
pub mod products;
pub mod promotion;
pub mod scenarios;
pub mod scorecard;
pub mod sop;
pub mod supply;

use serde::{Deserialize, Deserializer, Serialize};
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::{Db, RequestContext};

use crate::error::PlanningError;

/// The module's service.
#[derive(Clone)]
pub struct PlanningService {
    db: Db,
    bus: EventBus,
    queue: sightline_platform::queue::Queue,
}

impl PlanningService {
    /// The service over the database, the event bus and the job queue.
    pub fn new(db: Db, bus: EventBus, queue: sightline_platform::queue::Queue) -> Self {
        Self { db, bus, queue }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The job queue.
    pub fn queue(&self) -> &sightline_platform::queue::Queue {
        &self.queue
    }

    /// Publishes `action` on `entity` `id` (the state before and after, as JSON) within `tx`.
    async fn publish<T: Serialize>(
        &self,
        tx: &mut sqlx::AnyConnection,
        context: &RequestContext,
        action: &str,
        (entity, id): (&str, impl std::fmt::Display),
        (before, after): (Option<&T>, Option<&T>),
    ) -> Result<(), PlanningError> {
        let mut event =
            DomainEvent::new(format!("planning.{action}"), entity, id.to_string()).within(context);
        if let Some(before) = before {
            event = event.before(serde_json::to_value(before).map_err(anyhow::Error::from)?);
        }
        if let Some(after) = after {
            event = event.after(serde_json::to_value(after).map_err(anyhow::Error::from)?);
        }
        self.bus.publish(tx, vec![event]).await?;
        Ok(())
    }
}

/// For `Option<Option<T>>` fields of a partial update: absent is `None`, `null` is
/// `Some(None)`, a value is `Some(Some(v))`.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// The user id of the request's actor, when a user acts.
pub fn actor_id(context: &RequestContext) -> Option<String> {
    context.actor.id.clone()
}

/// 422s for negative quantities among `fields` (name, value).
pub fn not_negative(
    fields: &[(&str, Option<crate::decimal::Dec2>)],
) -> Vec<sightline_platform::error::FieldError> {
    fields
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| v.0 < 0))
        .map(|(name, _)| sightline_platform::error::FieldError::new(*name, "must not be negative"))
        .collect()
}
