//! NBA logic: accepting calculation events, processing them, listing NBAs and deciding on them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::batch::Batcher;
use sightline_platform::db::{ms_to_rfc3339, now_ms};
use sightline_platform::{Backend, Db, NewJob, Queue, RequestContext};
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::jobs::ProcessEvent;
use crate::mockdb::ReferenceData;
use crate::model::{short_id, ActionRecord, CalculationEvent, Decision, EventLogEntry, NbaDetail, NbaItem};
use crate::store::{self, EventRow, NbaFilter, NewEvent};

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
    /// The intake writer could not store the event.
    #[error("could not store the event: {0}")]
    Storage(String),
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
            nba_id: row.nba_id.or_else(|| row.processed_at.map(|_| "n/a".to_string())),
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
    /// Created inactive: the scope already had a later calculation.
    pub superseded: bool,
}

/// An event on its way into the intake batch.
struct Intake {
    event: CalculationEvent,
    payload: String,
    occurred_at_ms: i64,
    context: RequestContext,
}

/// A decision on its way into the decisions batch.
struct DecisionRequest {
    nba_id: String,
    decision: Decision,
    action_at_ms: i64,
    comment: Option<String>,
    context: RequestContext,
}

/// The module's service.
#[derive(Clone)]
pub struct ActionsService {
    db: Db,
    reference: Arc<ReferenceData>,
    intake: Batcher<Intake, Result<EventStatus, String>>,
    decisions: Batcher<DecisionRequest, Result<ActionRecord, ActionsError>>,
    queue: Queue,
    max_wait: Duration,
    event_limits: crate::model::EventLimits,
}

/// Events written per intake transaction at most.
const INTAKE_BATCH: usize = 256;

/// Decisions written per transaction at most.
const DECISION_BATCH: usize = 128;

impl ActionsService {
    /// A service over the platform's database and queue; waits for results last at most
    /// `max_wait` (kept below the request timeout). Starts the intake writer.
    pub fn new(
        db: Db,
        queue: Queue,
        bus: EventBus,
        reference: Arc<ReferenceData>,
        max_wait: Duration,
    ) -> Self {
        let (writer_db, writer_queue, writer_bus) = (db.clone(), queue.clone(), bus.clone());
        let intake = Batcher::spawn(INTAKE_BATCH, move |batch: Vec<Intake>| {
            let (db, queue, bus) = (writer_db.clone(), writer_queue.clone(), writer_bus.clone());
            async move {
                let n = batch.len();
                match write_intake(&db, &queue, &bus, batch).await {
                    Ok(statuses) => statuses.into_iter().map(Ok).collect(),
                    Err(e) => {
                        tracing::error!(error = %e, events = n, "api.intake_failed");
                        vec![Err(e.to_string()); n]
                    }
                }
            }
        });
        let (writer_db, writer_bus) = (db.clone(), bus.clone());
        let decisions = Batcher::spawn(DECISION_BATCH, move |batch: Vec<DecisionRequest>| {
            let (db, bus) = (writer_db.clone(), writer_bus.clone());
            async move {
                let n = batch.len();
                match write_decisions(&db, &bus, &batch).await {
                    Ok(outcomes) => outcomes,
                    Err(e) => {
                        tracing::error!(error = %e, decisions = n, "nba.decisions_failed");
                        (0..n).map(|_| Err(ActionsError::Storage(e.to_string()))).collect()
                    }
                }
            }
        });
        Self { db, reference, intake, decisions, queue, max_wait, event_limits: Default::default() }
    }

    /// The same service, refusing events beyond `limits`.
    pub fn with_event_limits(mut self, limits: crate::model::EventLimits) -> Self {
        self.event_limits = limits;
        self
    }

    /// What an accepted event may carry at most.
    pub fn event_limits(&self) -> crate::model::EventLimits {
        self.event_limits
    }

    /// Reference data.
    pub fn reference(&self) -> &ReferenceData {
        &self.reference
    }

    /// Enriches and stores a checked event with its processing job. Events arriving together are
    /// written in one transaction (group commit); each is answered only once it is durable. A
    /// repeat of a known event id changes nothing and is reported as a duplicate.
    pub async fn accept_event(
        &self,
        context: &RequestContext,
        mut event: CalculationEvent,
        occurred_at_ms: i64,
    ) -> Result<EventStatus, ActionsError> {
        self.reference.enrich(&mut event.enterprise_number, &mut event.account_id);
        let payload = serde_json::to_string(&event).expect("events serialise");
        let intake = Intake { event, payload, occurred_at_ms, context: context.clone() };
        match self.intake.submit(intake).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(message)) => Err(ActionsError::Storage(message)),
            Err(stopped) => Err(ActionsError::Storage(stopped.to_string())),
        }
    }

    /// An event's current state.
    pub async fn event_status(&self, event_id: &str) -> Result<EventStatus, ActionsError> {
        let mut conn = self.db.reader().acquire().await?;
        let row = store::get_event(&mut conn, event_id).await?.ok_or(ActionsError::EventNotFound)?;
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
        store::get_nba(&mut conn, id).await?.ok_or(ActionsError::NbaNotFound)
    }

    /// An NBA's history.
    pub async fn history(&self, id: &str) -> Result<Vec<EventLogEntry>, ActionsError> {
        let mut conn = self.db.reader().acquire().await?;
        store::get_nba(&mut conn, id).await?.ok_or(ActionsError::NbaNotFound)?;
        Ok(store::list_log(&mut conn, id).await?)
    }

    /// Records a decision: `new` → `accepted` | `rejected`. The same decision again returns the
    /// recorded one; a different one is refused; an inactive NBA can't be decided. Decisions
    /// arriving together are written in one transaction (group commit); each is answered once it
    /// is durable.
    pub async fn decide(
        &self,
        context: &RequestContext,
        nba_id: &str,
        decision: Decision,
        action_at_ms: i64,
        comment: Option<String>,
    ) -> Result<ActionRecord, ActionsError> {
        let request = DecisionRequest {
            nba_id: nba_id.to_owned(),
            decision,
            action_at_ms,
            comment,
            context: context.clone(),
        };
        self.decisions.submit(request).await.map_err(|stopped| ActionsError::Storage(stopped.to_string()))?
    }
}

/// Writes a batch of decisions in one transaction: each is checked against the NBA as the batch
/// has left it; refused ones write nothing; a storage failure fails them all.
async fn write_decisions(
    db: &Db,
    bus: &EventBus,
    batch: &[DecisionRequest],
) -> Result<Vec<Result<ActionRecord, ActionsError>>, ActionsError> {
    let mut tx = db.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    for request in batch {
        match decide_in(&mut tx, request).await {
            Ok(Decided::New(record, event)) => {
                outcomes.push(Ok(record));
                events.push(*event);
            }
            Ok(Decided::Repeated(record)) => {
                // The same decision again changes nothing: no audit entry of its own.
                request.context.mark_audited();
                outcomes.push(Ok(record));
            }
            Err(e @ (ActionsError::Database(_) | ActionsError::Storage(_))) => return Err(e),
            Err(refused) => outcomes.push(Err(refused)),
        }
    }
    bus.publish(&mut tx, events).await.map_err(|e| ActionsError::Storage(format!("{e:#}")))?;
    tx.commit().await?;
    for (request, outcome) in batch.iter().zip(&outcomes) {
        if outcome.is_ok() {
            let (id, status) = (&request.nba_id, request.decision.as_str());
            tracing::info!(nba.id = %id, status, acted_by = %request.context.actor.name, "nba.decided");
        }
    }
    Ok(outcomes)
}

/// A decision's effect.
enum Decided {
    /// Recorded now, with its domain event.
    New(ActionRecord, Box<DomainEvent>),
    /// The same decision was already recorded.
    Repeated(ActionRecord),
}

/// Applies one decision inside the batch's transaction.
async fn decide_in(tx: &mut sqlx::AnyConnection, request: &DecisionRequest) -> Result<Decided, ActionsError> {
    let (id, decision) = (request.nba_id.as_str(), request.decision);
    // Twice at most: a concurrent decision or deactivation between our read and our update is
    // answered by the rules applied to the fresh state.
    for attempt in 0..2 {
        let nba = store::get_nba(tx, id).await?.ok_or(ActionsError::NbaNotFound)?;
        if nba.item.status == decision.as_str() {
            if let Some(existing) = store::find_decision(tx, id, decision.as_str()).await? {
                return Ok(Decided::Repeated(existing));
            }
        }
        if nba.item.status != "new" {
            return Err(ActionsError::TransitionNotAllowed(nba.item.status));
        }
        if !nba.item.active {
            return Err(ActionsError::Inactive);
        }
        if store::decide(tx, id, decision.as_str(), now_ms()).await? {
            break;
        }
        if attempt == 1 {
            return Err(ActionsError::TransitionNotAllowed("being decided".into()));
        }
    }
    let context = match &request.comment {
        Some(c) => json!({"comment": c}),
        None => json!({}),
    };
    let entry = EventLogEntry {
        id: short_id("evt_"),
        nba_id: id.to_string(),
        status: decision.as_str().to_string(),
        context,
        acted_by: Some(request.context.actor.name.clone()),
        action_at: ms_to_rfc3339(request.action_at_ms),
        request_id: request.context.request_id.clone(),
        event_id: None,
    };
    store::insert_logs(tx, &[(entry.clone(), request.action_at_ms)], log_seq()).await?;
    let event = DomainEvent::new(format!("nba.{}", decision.as_str()), "nba", id)
        .before(json!({"status": "new"}))
        .after(json!({"status": decision.as_str(), "comment": request.comment, "action_at": entry.action_at}))
        .within(&request.context);
    let record = ActionRecord {
        event_id: entry.id,
        nba_id: entry.nba_id,
        status: entry.status,
        acted_by: entry.acted_by,
        action_at: entry.action_at,
    };
    Ok(Decided::New(record, Box::new(event)))
}

/// Writes a batch of accepted events and their jobs in one transaction.
async fn write_intake(
    db: &Db,
    queue: &Queue,
    bus: &EventBus,
    batch: Vec<Intake>,
) -> anyhow::Result<Vec<EventStatus>> {
    let now = now_ms();
    let rows: Vec<NewEvent> = batch
        .iter()
        .map(|i| NewEvent {
            event_id: i.event.event_id.clone(),
            source: i.event.source.clone(),
            nba_definition_id: i.event.nba_definition_id.clone(),
            payload: i.payload.clone(),
            occurred_at: i.occurred_at_ms,
            request_id: i.context.request_id.clone(),
            now,
        })
        .collect();
    let mut tx = db.begin().await?;
    let inserted = store::insert_events(&mut tx, &rows).await?;
    // The first of several equal ids in one batch is the one inserted.
    let mut first = HashSet::new();
    let is_new: Vec<bool> = batch
        .iter()
        .map(|i| inserted.contains(&i.event.event_id) && first.insert(i.event.event_id.as_str()))
        .collect();
    let jobs = batch
        .iter()
        .zip(&is_new)
        .filter(|(_, new)| **new)
        .map(|(i, _)| {
            let job = NewJob::of(&ProcessEvent { event_id: i.event.event_id.clone() })?;
            Ok(job.with_request_id(i.context.request_id.clone()))
        })
        .collect::<anyhow::Result<Vec<NewJob>>>()?;
    queue.enqueue_many(&mut tx, jobs).await?;
    let accepted = batch
        .iter()
        .zip(&is_new)
        .filter(|(_, new)| **new)
        .map(|(i, _)| {
            DomainEvent::new("nba_event.accepted", "nba_event", &i.event.event_id)
                .after(json!({"source": i.event.source, "nba_definition_id": i.event.nba_definition_id}))
                .within(&i.context)
        })
        .collect();
    bus.publish(&mut tx, accepted).await?;
    let repeated: Vec<&str> =
        batch.iter().zip(&is_new).filter(|(_, new)| !**new).map(|(i, _)| i.event.event_id.as_str()).collect();
    for (intake, _) in batch.iter().zip(&is_new).filter(|(_, new)| !**new) {
        // A repeat changes nothing: no audit entry of its own.
        intake.context.mark_audited();
    }
    let existing: HashMap<String, EventRow> = if repeated.is_empty() {
        HashMap::new()
    } else {
        store::get_events(&mut tx, &repeated).await?.into_iter().map(|r| (r.event_id.clone(), r)).collect()
    };
    tx.commit().await?;
    queue.wake();
    Ok(batch
        .into_iter()
        .zip(is_new)
        .map(|(i, new)| match existing.get(&i.event.event_id) {
            Some(row) if !new => {
                if row.payload != i.payload {
                    // The original skips any repeat of an event id; keep that, but make it visible.
                    tracing::warn!(event_id = %row.event_id, "api.duplicate_event_differs");
                }
                EventStatus::from_row(row.clone(), true)
            }
            _ => EventStatus::from_row(
                EventRow {
                    event_id: i.event.event_id,
                    payload: String::new(),
                    state: "queued".into(),
                    action: None,
                    nba_id: None,
                    deactivated: None,
                    request_id: i.context.request_id,
                    error: None,
                    received_at: now,
                    processed_at: None,
                },
                false,
            ),
        })
        .collect())
}

/// Ordering key for history entries written in the same millisecond.
fn log_seq() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// An event being processed.
struct Pending {
    /// Position in the input.
    at: usize,
    event: CalculationEvent,
    occurred_at: i64,
    request_id: Option<String>,
}

/// One new NBA to place: the event asking for it, its scope, when it was calculated.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// Position of the event in the batch.
    pub at: usize,
    /// Its scope key.
    pub scope: &'a str,
    /// When it was calculated (epoch ms).
    pub occurred_at: i64,
}

/// Where a batch's new NBAs land in their scopes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ScopePlan<'a> {
    /// Per candidate, in order: whether its NBA is created active (current).
    pub active: Vec<bool>,
    /// NBAs of this batch made inactive by a later one of the batch, counted on the later one's
    /// event (`at` → count).
    pub deactivated: HashMap<usize, i64>,
    /// Events whose NBA is stored inactive: the scope already had a later calculation.
    pub superseded: HashSet<usize>,
    /// Per scope that gets a new current NBA, the first event of the batch that became current:
    /// the scope's previously current NBAs give way to it (and are counted on it).
    pub first_winner: HashMap<&'a str, usize>,
}

/// Decides, in memory and in batch order, which new NBAs become current: a candidate older than
/// its scope's latest calculation (`current`: the latest `occurred_at` of each scope's current
/// NBAs, or one placed earlier in the batch) is stored inactive; otherwise it becomes current and
/// the batch's earlier NBAs of its scope give way to it.
pub(crate) fn plan_scopes<'a>(candidates: &[Candidate<'a>], current: &HashMap<&str, i64>) -> ScopePlan<'a> {
    let mut plan = ScopePlan { active: Vec::with_capacity(candidates.len()), ..Default::default() };
    // Per scope: the latest calculation, and the indexes of its candidates so far.
    let mut scopes: HashMap<&str, (Option<i64>, Vec<usize>)> = HashMap::new();
    for (i, c) in candidates.iter().enumerate() {
        let (latest, members) =
            scopes.entry(c.scope).or_insert_with(|| (current.get(c.scope).copied(), Vec::new()));
        if latest.is_some_and(|latest| latest > c.occurred_at) {
            plan.superseded.insert(c.at);
            plan.active.push(false);
        } else {
            for &m in members.iter() {
                if plan.active[m] {
                    plan.active[m] = false;
                    *plan.deactivated.entry(c.at).or_default() += 1;
                }
            }
            plan.first_winner.entry(c.scope).or_insert(c.at);
            *latest = Some(latest.map_or(c.occurred_at, |l| l.max(c.occurred_at)));
            plan.active.push(true);
        }
        members.push(i);
    }
    plan
}

/// Processes stored events, in order, inside the worker's transaction (see the module docs for
/// the rules). A batch shares its statements: one read of the events, one of the scopes'
/// current NBAs, one deactivation, one insert each of NBAs and history entries, one update of
/// the events. Already-processed events are skipped: an event's state changes in the same
/// transaction as its effects, so each event is applied once.
pub async fn process_events(
    conn: &mut AnyConnection,
    backend: Backend,
    event_ids: &[&str],
) -> anyhow::Result<Vec<Processed>> {
    let now = now_ms();
    let rows: HashMap<String, EventRow> =
        store::get_events(conn, event_ids).await?.into_iter().map(|r| (r.event_id.clone(), r)).collect();
    let mut results: Vec<Option<Processed>> = vec![None; event_ids.len()];
    let mut pending = Vec::with_capacity(event_ids.len());
    let mut seen = HashSet::new();
    for (at, id) in event_ids.iter().enumerate() {
        let row = rows.get(*id).ok_or_else(|| anyhow::anyhow!("event {id} is not stored"))?;
        if row.state == "processed" || !seen.insert(*id) {
            results[at] = Some(Processed {
                action: "duplicate_skipped",
                nba_id: row.nba_id.clone(),
                deactivated: row.deactivated.unwrap_or(0),
                superseded: false,
            });
            continue;
        }
        let event: CalculationEvent = serde_json::from_str(&row.payload)?;
        let occurred_at = sightline_platform::validate::parse_datetime(&event.occurred_at)
            .map(|d| d.timestamp_millis())
            .unwrap_or(row.received_at);
        pending.push(Pending { at, event, occurred_at, request_id: row.request_id.clone() });
    }
    let mut deactivated = vec![0_i64; event_ids.len()];

    // Explicit deactivations (delete events), in order.
    for p in &pending {
        let mut listed = HashSet::new();
        for id in p.event.deactivate_nba_ids.iter().filter(|id| listed.insert(id.as_str())) {
            if store::deactivate(conn, id, now).await? {
                deactivated[p.at] += 1;
            }
        }
    }

    // New NBAs: decide in memory which become current, against the scopes' current NBAs.
    let creates: Vec<(&Pending, String)> =
        pending.iter().filter(|p| p.event.create_nba).map(|p| (p, p.event.scope_key())).collect();
    let mut keys: Vec<&str> = creates.iter().map(|(_, k)| k.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    if backend == Backend::Postgres && !keys.is_empty() {
        store::lock_scopes(conn, &keys).await?;
    }
    let current = if keys.is_empty() { HashMap::new() } else { store::current_by_scope(conn, &keys).await? };
    let current: HashMap<&str, i64> = current.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let candidates: Vec<Candidate<'_>> = creates
        .iter()
        .map(|(p, key)| Candidate { at: p.at, scope: key.as_str(), occurred_at: p.occurred_at })
        .collect();
    let plan = plan_scopes(&candidates, &current);
    for (at, count) in &plan.deactivated {
        deactivated[*at] += count;
    }
    let superseded_at = &plan.superseded;
    let new_nbas: Vec<store::NewNba<'_>> = creates
        .iter()
        .zip(&plan.active)
        .map(|((p, key), active)| store::NewNba {
            id: short_id("nba_"),
            nba_definition_id: &p.event.nba_definition_id,
            enterprise_number: p.event.enterprise_number.as_deref(),
            account_id: p.event.account_id.as_deref(),
            contact_id: p.event.contact_id.as_deref(),
            scope_key: key,
            active: *active,
            context: serde_json::Value::Object(p.event.context.clone()).to_string(),
            source_event_id: event_ids[p.at],
            occurred_at: p.occurred_at,
        })
        .collect();
    // The scopes' previously current NBAs give way to this batch's (counted on its first).
    let winning: Vec<&str> = keys.iter().copied().filter(|k| plan.first_winner.contains_key(k)).collect();
    if !winning.is_empty() {
        for (key, count) in store::deactivate_scopes(conn, &winning, now).await? {
            if let Some(at) = plan.first_winner.get(key.as_str()) {
                deactivated[*at] += count;
            }
        }
    }
    if store::insert_nbas(conn, &new_nbas, now).await? != new_nbas.len() {
        // 40-bit ids can collide; the job runs again and draws new ones.
        anyhow::bail!("an NBA id was already taken");
    }

    let nba_of: HashMap<usize, &str> =
        creates.iter().zip(&new_nbas).map(|((p, _), n)| (p.at, n.id.as_str())).collect();
    let history: Vec<(EventLogEntry, i64)> = creates
        .iter()
        .map(|(p, _)| {
            let entry = EventLogEntry {
                id: short_id("evt_"),
                nba_id: nba_of[&p.at].to_owned(),
                status: "new".into(),
                context: json!({"source": p.event.source, "occurred_at": p.event.occurred_at}),
                acted_by: None,
                action_at: ms_to_rfc3339(now),
                request_id: p.request_id.clone(),
                event_id: Some(event_ids[p.at].to_owned()),
            };
            (entry, now)
        })
        .collect();
    if !history.is_empty() {
        store::insert_logs(conn, &history, log_seq()).await?;
    }
    let outcomes: Vec<store::EventOutcome<'_>> = pending
        .iter()
        .map(|p| store::EventOutcome {
            event_id: event_ids[p.at],
            action: if p.event.create_nba { "created" } else { "deactivated_only" },
            nba_id: nba_of.get(&p.at).copied(),
            deactivated: deactivated[p.at],
        })
        .collect();
    if !outcomes.is_empty() {
        store::mark_events_processed(conn, &outcomes, now).await?;
    }
    for p in &pending {
        results[p.at] = Some(Processed {
            action: if p.event.create_nba { "created" } else { "deactivated_only" },
            nba_id: nba_of.get(&p.at).map(|id| (*id).to_owned()),
            deactivated: deactivated[p.at],
            superseded: superseded_at.contains(&p.at),
        });
    }
    Ok(results.into_iter().map(|r| r.expect("every event has an outcome")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(
        candidates: &[(usize, &'static str, i64)],
        current: &[(&'static str, i64)],
    ) -> ScopePlan<'static> {
        let candidates: Vec<Candidate<'static>> =
            candidates.iter().map(|&(at, scope, occurred_at)| Candidate { at, scope, occurred_at }).collect();
        plan_scopes(&candidates, &current.iter().copied().collect())
    }

    #[test]
    fn scope_planning_follows_the_lifecycle_rules() {
        struct Case {
            name: &'static str,
            candidates: &'static [(usize, &'static str, i64)],
            current: &'static [(&'static str, i64)],
            active: &'static [bool],
            deactivated: &'static [(usize, i64)],
            superseded: &'static [usize],
            first_winner: &'static [(&'static str, usize)],
        }
        let cases = [
            Case {
                name: "a first NBA in an empty scope becomes current",
                candidates: &[(0, "a", 10)],
                current: &[],
                active: &[true],
                deactivated: &[],
                superseded: &[],
                first_winner: &[("a", 0)],
            },
            Case {
                name: "a later calculation replaces the current NBA",
                candidates: &[(0, "a", 20)],
                current: &[("a", 10)],
                active: &[true],
                deactivated: &[],
                superseded: &[],
                first_winner: &[("a", 0)],
            },
            Case {
                name: "one as old as the current one still replaces it",
                candidates: &[(0, "a", 10)],
                current: &[("a", 10)],
                active: &[true],
                deactivated: &[],
                superseded: &[],
                first_winner: &[("a", 0)],
            },
            Case {
                name: "an older calculation is stored inactive and replaces nothing",
                candidates: &[(0, "a", 5)],
                current: &[("a", 10)],
                active: &[false],
                deactivated: &[],
                superseded: &[0],
                first_winner: &[],
            },
            Case {
                name: "within a batch the later one wins and is credited with the earlier",
                candidates: &[(0, "a", 10), (1, "a", 20)],
                current: &[],
                active: &[false, true],
                deactivated: &[(1, 1)],
                superseded: &[],
                first_winner: &[("a", 0)],
            },
            Case {
                name: "within a batch an older one after a newer one is superseded",
                candidates: &[(0, "a", 20), (1, "a", 10)],
                current: &[],
                active: &[true, false],
                deactivated: &[],
                superseded: &[1],
                first_winner: &[("a", 0)],
            },
            Case {
                name: "scopes do not touch each other",
                candidates: &[(0, "a", 10), (2, "b", 5), (3, "a", 30)],
                current: &[("b", 7)],
                active: &[false, false, true],
                deactivated: &[(3, 1)],
                superseded: &[2],
                first_winner: &[("a", 0)],
            },
        ];
        for case in cases {
            let got = plan(case.candidates, case.current);
            let want = ScopePlan {
                active: case.active.to_vec(),
                deactivated: case.deactivated.iter().copied().collect(),
                superseded: case.superseded.iter().copied().collect(),
                first_winner: case.first_winner.iter().copied().collect(),
            };
            assert_eq!(got, want, "{}", case.name);
        }
    }
}
