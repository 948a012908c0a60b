//! NBA logic: accepting calculation events, processing them, listing NBAs and deciding on them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sightline_platform::db::{ms_to_rfc3339, now_ms};
use sightline_platform::{Backend, Db, NewJob, Queue};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::mockdb::ReferenceData;
use crate::model::{
    short_id, ActionRecord, CalculationEvent, Decision, EventLogEntry, NbaDetail, NbaItem,
};
use crate::store::{self, EventRow, NbaFilter, NewEvent, NewNba};

/// Job type that processes one calculation event.
pub const PROCESS_EVENT_JOB: &str = "actions.process_event";

/// Business failures of the module.
#[derive(Debug, thiserror::Error)]
pub enum ActionsError {
    /// Unknown NBA.
    #[error("nba not found")]
    NbaNotFound,
    /// Unknown event.
    #[error("event not found")]
    EventNotFound,
    /// Already decided differently.
    #[error("state transition is not allowed: nba is already {0}")]
    TransitionNotAllowed(String),
    /// Deactivated before a decision.
    #[error("nba is inactive and can no longer be decided")]
    Inactive,
    /// Database failure.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// An event's state, as the POST and GET event endpoints answer it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "status": "accepted", "event_id": "9f6849e6-6110-4bd8-8397-a8f9a6ec7d5a", "state": "processed",
    "duplicate": false, "action": "created", "nba_id": "nba_3fa2c81d0e", "deactivated": 0,
    "request_id": "demo-trace-001", "received_at": "2026-02-09T13:59:01.120Z",
    "processed_at": "2026-02-09T13:59:01.131Z"
}))]
pub struct EventStatus {
    /// Always `accepted` (the original's field).
    pub status: &'static str,
    /// Event id.
    pub event_id: String,
    /// `queued`, `processed`, or `failed` (out of retries; see `error`).
    pub state: String,
    /// Whether this event id had been received before (no second effect).
    pub duplicate: bool,
    /// Outcome once processed: `created` or `deactivated_only`.
    pub action: Option<String>,
    /// NBA created, once processed (`n/a` for delete events, as the original).
    pub nba_id: Option<String>,
    /// NBAs deactivated by it (scope recalculation plus `deactivate_nba_ids`).
    pub deactivated: Option<i64>,
    /// Request that first sent it.
    pub request_id: Option<String>,
    /// Why processing failed (state `failed`, after every retry).
    pub error: Option<String>,
    /// When it was accepted.
    pub received_at: String,
    /// When it was processed.
    pub processed_at: Option<String>,
}

impl EventStatus {
    fn from_row(row: EventRow, duplicate: bool) -> Self {
        Self {
            status: "accepted",
            event_id: row.event_id,
            state: row.state,
            duplicate,
            action: row.action,
            nba_id: row
                .nba_id
                .or_else(|| row.processed_at.map(|_| "n/a".to_string())),
            deactivated: row.deactivated,
            request_id: row.request_id,
            error: row.error,
            received_at: ms_to_rfc3339(row.received_at),
            processed_at: row.processed_at.map(ms_to_rfc3339),
        }
    }
}

/// What processing an event did.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    /// `created` or `deactivated_only`.
    pub action: &'static str,
    /// The NBA, for `created`.
    pub nba_id: Option<String>,
    /// NBAs deactivated.
    pub deactivated: i64,
}

/// The module's service.
#[derive(Clone)]
pub struct ActionsService {
    db: Db,
    queue: Queue,
    reference: Arc<ReferenceData>,
    max_wait: Duration,
}

impl ActionsService {
    /// A service over the platform's database and queue; waits for results last at most
    /// `max_wait` (kept below the request timeout).
    pub fn new(db: Db, queue: Queue, reference: Arc<ReferenceData>, max_wait: Duration) -> Self {
        Self {
            db,
            queue,
            reference,
            max_wait,
        }
    }

    /// Reference data.
    pub fn reference(&self) -> &ReferenceData {
        &self.reference
    }

    /// Enriches and stores a checked event with its processing job, in one transaction. A repeat
    /// of a known event id changes nothing and is reported as a duplicate.
    pub async fn accept_event(
        &self,
        mut event: CalculationEvent,
        occurred_at_ms: i64,
        request_id: Option<&str>,
    ) -> Result<EventStatus, ActionsError> {
        self.reference
            .enrich(&mut event.enterprise_number, &mut event.account_id);
        let payload = serde_json::to_string(&event).expect("events serialise");
        let mut tx = self.db.begin().await?;
        let new = NewEvent {
            event_id: &event.event_id,
            source: &event.source,
            nba_definition_id: &event.nba_definition_id,
            payload: &payload,
            occurred_at: occurred_at_ms,
            request_id,
            now: now_ms(),
        };
        if store::insert_event(&mut tx, &new).await? {
            let job = NewJob::new(
                "actions",
                PROCESS_EVENT_JOB,
                json!({"event_id": event.event_id}),
            );
            self.queue.enqueue(&mut tx, job).await?;
            tx.commit().await?;
            self.queue.wake();
            let received_at = new.now;
            let row = EventRow {
                event_id: event.event_id.clone(),
                payload: String::new(),
                state: "queued".into(),
                action: None,
                nba_id: None,
                deactivated: None,
                request_id: request_id.map(str::to_owned),
                error: None,
                received_at,
                processed_at: None,
            };
            return Ok(EventStatus::from_row(row, false));
        }
        let row = store::get_event(&mut tx, &event.event_id)
            .await?
            .ok_or(ActionsError::EventNotFound)?;
        tx.commit().await?;
        if row.payload != payload {
            // The original skips any repeat of an event id; keep that, but make it visible.
            tracing::warn!(event_id = %row.event_id, "api.duplicate_event_differs");
        }
        Ok(EventStatus::from_row(row, true))
    }

    /// An event's current state.
    pub async fn event_status(&self, event_id: &str) -> Result<EventStatus, ActionsError> {
        let mut conn = self.db.reader().acquire().await?;
        let row = store::get_event(&mut conn, event_id)
            .await?
            .ok_or(ActionsError::EventNotFound)?;
        Ok(EventStatus::from_row(row, false))
    }

    /// Waits up to `timeout` (at most the service's `max_wait`) for the event to be processed or
    /// to fail (by any worker, in any process), then answers its state.
    pub async fn wait_processed(
        &self,
        mut status: EventStatus,
        timeout: Duration,
    ) -> Result<EventStatus, ActionsError> {
        let deadline = tokio::time::Instant::now() + timeout.min(self.max_wait);
        while status.state == "queued" && tokio::time::Instant::now() < deadline {
            let finished = self.queue.batch_finished();
            tokio::select! {
                _ = finished => {}
                _ = tokio::time::sleep(Duration::from_millis(25)) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
            let duplicate = status.duplicate;
            status = self.event_status(&status.event_id).await?;
            status.duplicate = duplicate;
        }
        Ok(status)
    }

    /// Lists NBAs.
    pub async fn list(
        &self,
        filter: &NbaFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<NbaItem>, i64), ActionsError> {
        let mut conn = self.db.reader().acquire().await?;
        Ok(store::list_nbas(&mut conn, filter, limit, offset).await?)
    }

    /// One NBA.
    pub async fn get(&self, id: &str) -> Result<NbaDetail, ActionsError> {
        let mut conn = self.db.reader().acquire().await?;
        store::get_nba(&mut conn, id)
            .await?
            .ok_or(ActionsError::NbaNotFound)
    }

    /// An NBA's history.
    pub async fn history(&self, id: &str) -> Result<Vec<EventLogEntry>, ActionsError> {
        let mut conn = self.db.reader().acquire().await?;
        store::get_nba(&mut conn, id)
            .await?
            .ok_or(ActionsError::NbaNotFound)?;
        Ok(store::list_log(&mut conn, id).await?)
    }

    /// Records a decision: `new` → `accepted` | `rejected`. The same decision again returns the
    /// recorded one; a different one is refused; an inactive NBA can't be decided.
    pub async fn decide(
        &self,
        id: &str,
        decision: Decision,
        action_at_ms: i64,
        comment: Option<String>,
        actor: &str,
        request_id: Option<&str>,
    ) -> Result<ActionRecord, ActionsError> {
        let mut tx = self.db.begin().await?;
        // Twice at most: a concurrent decision or deactivation between our read and our update
        // is answered by the rules applied to the fresh state.
        for attempt in 0..2 {
            let nba = store::get_nba(&mut tx, id)
                .await?
                .ok_or(ActionsError::NbaNotFound)?;
            if nba.item.status == decision.as_str() {
                if let Some(existing) = store::find_decision(&mut tx, id, decision.as_str()).await?
                {
                    return Ok(existing);
                }
            }
            if nba.item.status != "new" {
                return Err(ActionsError::TransitionNotAllowed(nba.item.status));
            }
            if !nba.item.active {
                return Err(ActionsError::Inactive);
            }
            if store::decide(&mut tx, id, decision.as_str(), now_ms()).await? {
                break;
            }
            if attempt == 1 {
                return Err(ActionsError::TransitionNotAllowed("being decided".into()));
            }
        }
        let context = match &comment {
            Some(c) => json!({"comment": c}),
            None => json!({}),
        };
        let entry = EventLogEntry {
            id: short_id("evt_"),
            nba_id: id.to_string(),
            status: decision.as_str().to_string(),
            context,
            acted_by: Some(actor.to_string()),
            action_at: ms_to_rfc3339(action_at_ms),
            request_id: request_id.map(str::to_owned),
            event_id: None,
        };
        store::insert_log(&mut tx, &entry, action_at_ms, log_seq()).await?;
        tx.commit().await?;
        tracing::info!(
            nba.id = id,
            status = decision.as_str(),
            acted_by = actor,
            "nba.decided"
        );
        Ok(ActionRecord {
            event_id: entry.id,
            nba_id: entry.nba_id,
            status: entry.status,
            acted_by: entry.acted_by,
            action_at: entry.action_at,
        })
    }
}

/// Ordering key for history entries written in the same millisecond.
fn log_seq() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Processes one stored event inside the worker's transaction (see the module docs for the
/// rules). Already-processed events are skipped: the event's state changes in the same
/// transaction as its effects, so each event is applied once.
pub async fn process_event(
    conn: &mut AnyConnection,
    backend: Backend,
    event_id: &str,
) -> anyhow::Result<Processed> {
    let Some(row) = store::get_event(conn, event_id).await? else {
        anyhow::bail!("event {event_id} is not stored");
    };
    if row.state == "processed" {
        tracing::info!(event_id, "calc.skip_duplicate");
        return Ok(Processed {
            action: "duplicate_skipped",
            nba_id: row.nba_id,
            deactivated: row.deactivated.unwrap_or(0),
        });
    }
    let event: CalculationEvent = serde_json::from_str(&row.payload)?;
    let occurred_at = sightline_platform::validate::parse_datetime(&event.occurred_at)
        .map(|d| d.timestamp_millis())
        .unwrap_or(row.received_at);
    let now = now_ms();
    let mut deactivated = 0_i64;
    let mut seen = std::collections::HashSet::new();
    for id in event
        .deactivate_nba_ids
        .iter()
        .filter(|id| seen.insert(id.as_str()))
    {
        if store::deactivate(conn, id, now).await? {
            deactivated += 1;
        }
    }
    if !event.deactivate_nba_ids.is_empty() {
        tracing::info!(event_id, deactivated, "calc.nba_deactivated_by_ids");
    }
    if !event.create_nba {
        store::mark_event_processed(conn, event_id, "deactivated_only", None, deactivated, now)
            .await?;
        tracing::info!(
            event_id,
            action = "deactivated_only",
            "calc.event_processed"
        );
        return Ok(Processed {
            action: "deactivated_only",
            nba_id: None,
            deactivated,
        });
    }
    let scope_key = event.scope_key();
    if backend == Backend::Postgres {
        store::lock_scope(conn, &scope_key).await?;
    }
    // A later calculation for the same scope may already have been processed.
    let superseded = store::newer_in_scope(conn, &scope_key, occurred_at).await?;
    let context = serde_json::Value::Object(event.context.clone()).to_string();
    let mut nba_id = short_id("nba_");
    loop {
        let new = NewNba {
            id: &nba_id,
            nba_definition_id: &event.nba_definition_id,
            enterprise_number: event.enterprise_number.as_deref(),
            account_id: event.account_id.as_deref(),
            contact_id: event.contact_id.as_deref(),
            scope_key: &scope_key,
            active: !superseded,
            context: &context,
            source_event_id: event_id,
            occurred_at,
            now,
        };
        if store::insert_nba(conn, &new).await? {
            break;
        }
        nba_id = short_id("nba_"); // 40-bit ids can collide; draw again
    }
    tracing::info!(nba.id = %nba_id, event_id, superseded, "calc.nba_upserted");
    let scope_deactivated =
        store::deactivate_scope(conn, &scope_key, &nba_id, occurred_at, now).await?;
    if scope_deactivated > 0 {
        tracing::info!(nba.id = %nba_id, count = scope_deactivated, "calc.nba_deactivated");
    }
    deactivated += scope_deactivated as i64;
    let entry = EventLogEntry {
        id: short_id("evt_"),
        nba_id: nba_id.clone(),
        status: "new".into(),
        context: json!({"source": event.source, "occurred_at": event.occurred_at}),
        acted_by: None,
        action_at: ms_to_rfc3339(now),
        request_id: row.request_id.clone(),
        event_id: Some(event_id.to_string()),
    };
    store::insert_log(conn, &entry, now, log_seq()).await?;
    store::mark_event_processed(conn, event_id, "created", Some(&nba_id), deactivated, now).await?;
    tracing::info!(event_id, action = "created", nba.id = %nba_id, "calc.event_processed");
    Ok(Processed {
        action: "created",
        nba_id: Some(nba_id),
        deactivated,
    })
}
