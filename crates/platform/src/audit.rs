//! The event bus and the audit trail. Modules publish domain events inside the transaction of
//! the change they describe; subscribers run in that same transaction, so an audit entry
//! commits with its change or not at all. Two standard subscribers: a log writer and the
//! `audit_log` writer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

use crate::context::RequestContext;
use crate::db::{backend_of, ms_to_rfc3339, now_ms, rows_per_statement, Conditions, FilterValue};
use crate::request_id::current_request_id;
use crate::validate::loggable;

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Actor {
    /// `user`, `api_key`, `system` or `anonymous`.
    pub kind: String,
    /// User or key id.
    pub id: Option<String>,
    /// Username or key name.
    pub name: String,
}

impl Actor {
    /// The process itself (jobs, schedules, bootstrap).
    pub fn system() -> Self {
        Self { kind: "system".into(), id: None, name: "system".into() }
    }

    /// Someone not signed in (failed logins name what they tried).
    pub fn anonymous(name: impl Into<String>) -> Self {
        Self {
            kind: "anonymous".into(),
            id: None,
            name: crate::validate::capped(name.into(), MAX_FIELD_CHARS),
        }
    }
}

/// Longest entity id or actor name stored or logged, in characters; longer ones (only ever
/// user-supplied) are cut.
pub const MAX_FIELD_CHARS: usize = 256;

tokio::task_local! {
    static ACTOR: Actor;
    static AUDITED: Arc<AtomicBool>;
}

/// The actor of the request being handled on this task, if any.
pub fn current_actor() -> Option<Actor> {
    ACTOR.try_with(Clone::clone).ok()
}

/// Runs `fut` with `actor` as the current actor.
pub async fn with_actor<F: std::future::Future>(actor: Actor, fut: F) -> F::Output {
    ACTOR.scope(actor, fut).await
}

/// Runs `fut` noting whether it published an audit entry; returns that with its output.
pub async fn tracking<F: std::future::Future>(fut: F) -> (F::Output, bool) {
    let flag = Arc::new(AtomicBool::new(false));
    let out = AUDITED.scope(flag.clone(), fut).await;
    (out, flag.load(Ordering::Relaxed))
}

/// Notes that the current request has its audit entry (for work published on another task,
/// such as a group-commit writer).
pub(crate) fn mark_audited() {
    let _ = AUDITED.try_with(|f| f.store(true, Ordering::Relaxed));
}

/// Something that happened to an entity.
#[derive(Debug, Clone)]
pub struct DomainEvent {
    /// Dotted verb, e.g. `nba.accepted`, `auth.login_failed`.
    pub action: String,
    /// Kind of entity, e.g. `nba`, `user`, `api_key`.
    pub entity_type: String,
    /// Its id.
    pub entity_id: String,
    /// State before, when it changed.
    pub before: Option<Value>,
    /// State after, or the payload.
    pub after: Option<Value>,
    /// Who; the current actor when `None`.
    pub actor: Option<Actor>,
    /// Request; the current request id when `None`.
    pub request_id: Option<String>,
    /// The request it was done within, told when its audit entry is written.
    context: Option<RequestContext>,
}

impl DomainEvent {
    /// An event with no before/after.
    pub fn new(
        action: impl Into<String>,
        entity_type: impl Into<String>,
        entity_id: impl Into<String>,
    ) -> Self {
        Self {
            action: action.into(),
            entity_type: entity_type.into(),
            entity_id: crate::validate::capped(entity_id.into(), MAX_FIELD_CHARS),
            before: None,
            after: None,
            actor: None,
            request_id: None,
            context: None,
        }
    }

    /// With the state before.
    pub fn before(mut self, v: Value) -> Self {
        self.before = Some(v);
        self
    }

    /// With the state after (or payload).
    pub fn after(mut self, v: Value) -> Self {
        self.after = Some(v);
        self
    }

    /// With an explicit actor and request id (events published off the request's task).
    pub fn by(mut self, actor: Option<Actor>, request_id: Option<String>) -> Self {
        self.actor = actor;
        self.request_id = request_id;
        self
    }

    /// Done within `context`: its actor and request id, and publishing it counts as the
    /// request's audit entry, on whatever task it is published.
    pub fn within(mut self, context: &RequestContext) -> Self {
        self.actor = Some(context.actor.clone());
        self.request_id = context.request_id.clone();
        self.context = Some(context.clone());
        self
    }
}

/// A published event, stamped with its actor, request id and time.
#[derive(Debug, Clone)]
pub struct Stamped {
    /// The event.
    pub event: DomainEvent,
    /// Who.
    pub actor: Actor,
    /// Request id.
    pub request_id: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// Receives published events inside the publisher's transaction.
#[async_trait::async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Handles a batch of events; an error aborts the publisher's transaction.
    async fn on_events(&self, events: &[Stamped], conn: &mut AnyConnection) -> anyhow::Result<()>;
}

/// In-process publish/subscribe. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    subscribers: Arc<Vec<Arc<dyn Subscriber>>>,
}

impl EventBus {
    /// A bus with the standard subscribers: the log writer and the audit writer.
    pub fn standard() -> Self {
        Self::new(vec![Arc::new(LogWriter), Arc::new(AuditWriter)])
    }

    /// A bus with these subscribers.
    pub fn new(subscribers: Vec<Arc<dyn Subscriber>>) -> Self {
        Self { subscribers: Arc::new(subscribers) }
    }

    /// Publishes `events` through `conn` (the caller's transaction).
    pub async fn publish(&self, conn: &mut AnyConnection, events: Vec<DomainEvent>) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let at = now_ms();
        let stamped: Vec<Stamped> = events
            .into_iter()
            .map(|event| Stamped {
                actor: event.actor.clone().or_else(current_actor).unwrap_or_else(Actor::system),
                request_id: event.request_id.clone().or_else(current_request_id),
                event,
                at,
            })
            .collect();
        for subscriber in self.subscribers.iter() {
            subscriber.on_events(&stamped, conn).await?;
        }
        for event in &stamped {
            if let Some(context) = &event.event.context {
                context.mark_audited();
            }
        }
        mark_audited();
        Ok(())
    }

    /// Publishes one event in a transaction of its own (for events without a change to join,
    /// such as a failed login).
    pub async fn publish_alone(&self, db: &crate::Db, event: DomainEvent) -> anyhow::Result<()> {
        let mut tx = db.begin().await?;
        self.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Writes one log line per event.
pub struct LogWriter;

#[async_trait::async_trait]
impl Subscriber for LogWriter {
    async fn on_events(&self, events: &[Stamped], _conn: &mut AnyConnection) -> anyhow::Result<()> {
        for e in events {
            tracing::info!(
                action = %e.event.action,
                entity = %loggable(&format!("{}:{}", e.event.entity_type, e.event.entity_id)),
                actor = %loggable(&format!("{}:{}", e.actor.kind, e.actor.name)),
                request_id = e.request_id.as_deref().unwrap_or(""),
                "audit.event"
            );
        }
        Ok(())
    }
}

/// Appends events to `audit_log`.
pub struct AuditWriter;

#[async_trait::async_trait]
impl Subscriber for AuditWriter {
    async fn on_events(&self, events: &[Stamped], conn: &mut AnyConnection) -> anyhow::Result<()> {
        const COLS: usize = 11;
        for chunk in events.chunks(rows_per_statement(COLS)) {
            let sql = format!(
                "INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, action, entity_type, entity_id, \
                 before_state, after_state, request_id, seq) VALUES {}",
                backend_of(conn).sequential_rows(chunk.len(), COLS)
            );
            let mut query = sqlx::query(&sql);
            for (i, e) in chunk.iter().enumerate() {
                query = query
                    .bind(e.at)
                    .bind(&e.actor.kind)
                    .bind(&e.actor.id)
                    .bind(&e.actor.name)
                    .bind(&e.event.action)
                    .bind(&e.event.entity_type)
                    .bind(&e.event.entity_id)
                    .bind(e.event.before.as_ref().map(Value::to_string))
                    .bind(e.event.after.as_ref().map(Value::to_string))
                    .bind(&e.request_id)
                    .bind(i as i64);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

/// One audit entry as `GET /api/v1/audit` lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Entry id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: Actor,
    /// What, e.g. `nba.accepted`.
    pub action: String,
    /// Kind of entity.
    pub entity_type: String,
    /// Its id.
    pub entity_id: String,
    /// State before.
    pub before: Option<Value>,
    /// State after, or the payload.
    pub after: Option<Value>,
    /// Request that caused it.
    pub request_id: Option<String>,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// Actor name or id.
    pub actor: Option<String>,
    /// Entity type, e.g. `nba`.
    pub entity_type: Option<String>,
    /// Entity id.
    pub entity_id: Option<String>,
    /// Action, e.g. `auth.login_failed`.
    pub action: Option<String>,
    /// From this time (RFC 3339), inclusive.
    pub since: Option<String>,
    /// Until this time (RFC 3339), exclusive.
    pub until: Option<String>,
    /// Page size 1..=200 (default 50).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

/// A page of audit entries, newest first, and the total matching.
pub async fn list(
    conn: &mut AnyConnection,
    f: &AuditFilter,
    since_ms: Option<i64>,
    until_ms: Option<i64>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditEntry>, i64), sqlx::Error> {
    let mut c = Conditions::default();
    if let Some(actor) = &f.actor {
        c.bind(|n| format!("(actor_name = ${n} OR actor_id = ${n})"), FilterValue::Text(actor.clone()));
    }
    c.eq("entity_type", f.entity_type.as_deref())
        .eq("entity_id", f.entity_id.as_deref())
        .eq("action", f.action.as_deref());
    if let Some(ms) = since_ms {
        c.bind(|n| format!("at >= ${n}"), FilterValue::Int(ms));
    }
    if let Some(ms) = until_ms {
        c.bind(|n| format!("at < ${n}"), FilterValue::Int(ms));
    }
    let where_sql = c.where_sql();
    let count_sql = format!("SELECT COUNT(*) FROM audit_log{where_sql}");
    let n = c.next_placeholder();
    let page_sql = format!(
        "SELECT id, at, actor_kind, actor_id, actor_name, action, entity_type, entity_id, before_state, \
         after_state, request_id FROM audit_log{where_sql} ORDER BY id DESC LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let count = c.apply(sqlx::query(&count_sql));
    let page = c.apply(sqlx::query(&page_sql));
    let total: i64 = count.fetch_one(&mut *conn).await?.get(0);
    let rows = page.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let items = rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get("id"),
            at: ms_to_rfc3339(r.get("at")),
            actor: Actor { kind: r.get("actor_kind"), id: r.get("actor_id"), name: r.get("actor_name") },
            action: r.get("action"),
            entity_type: r.get("entity_type"),
            entity_id: r.get("entity_id"),
            before: json(r.get("before_state")),
            after: json(r.get("after_state")),
            request_id: r.get("request_id"),
        })
        .collect();
    Ok((items, total))
}
