//! SQL for the tables this module owns: `nba_events`, `nbas`, `nba_event_log`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sightline_platform::db::{
    backend_of, ms_to_rfc3339, placeholders, row_placeholders, rows_per_statement, Conditions,
};
use sightline_platform::migrate::Migration;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::model::{ActionRecord, EventLogEntry, NbaDetail, NbaItem};

/// This module's schema.
pub const MIGRATIONS: &[Migration] = &[Migration::portable(
    1,
    "events, nbas, event log",
    "CREATE TABLE nba_events (
        event_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        nba_definition_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        occurred_at BIGINT NOT NULL,
        state TEXT NOT NULL,
        action TEXT,
        nba_id TEXT,
        deactivated BIGINT,
        request_id TEXT,
        error TEXT,
        received_at BIGINT NOT NULL,
        processed_at BIGINT
    );
    CREATE TABLE nbas (
        id TEXT PRIMARY KEY,
        nba_definition_id TEXT NOT NULL,
        enterprise_number TEXT,
        account_id TEXT,
        contact_id TEXT,
        scope_key TEXT NOT NULL,
        active BIGINT NOT NULL, -- 1 current, 0 deactivated (portable boolean)
        status TEXT NOT NULL,
        priority BIGINT NOT NULL,
        context TEXT NOT NULL,
        source_event_id TEXT NOT NULL UNIQUE,
        occurred_at BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX nbas_scope_current ON nbas (scope_key, occurred_at) WHERE active = 1 AND status = 'new';
    CREATE INDEX nbas_account ON nbas (account_id, created_at);
    CREATE INDEX nbas_enterprise ON nbas (enterprise_number, created_at);
    CREATE INDEX nbas_listing ON nbas (created_at);
    CREATE TABLE nba_event_log (
        id TEXT PRIMARY KEY,
        nba_id TEXT NOT NULL,
        status TEXT NOT NULL,
        context TEXT NOT NULL,
        acted_by TEXT,
        action_at BIGINT NOT NULL,
        request_id TEXT,
        event_id TEXT,
        seq BIGINT NOT NULL
    );
    CREATE INDEX nba_event_log_nba ON nba_event_log (nba_id, seq);",
)];

/// A stored calculation event and its processing outcome.
#[derive(Debug, Clone)]
pub struct EventRow {
    /// Event id.
    pub event_id: String,
    /// Checked, enriched payload (JSON).
    pub payload: String,
    /// `queued`, `processed` or `failed`.
    pub state: String,
    /// `created`, `deactivated_only`.
    pub action: Option<String>,
    /// NBA created, if any.
    pub nba_id: Option<String>,
    /// NBAs deactivated by it.
    pub deactivated: Option<i64>,
    /// Request that sent it.
    pub request_id: Option<String>,
    /// Why processing failed, once out of attempts.
    pub error: Option<String>,
    /// When it was accepted (ms).
    pub received_at: i64,
    /// When it was processed (ms).
    pub processed_at: Option<i64>,
}

/// New event row.
pub struct NewEvent {
    /// Event id.
    pub event_id: String,
    /// Source.
    pub source: String,
    /// Definition.
    pub nba_definition_id: String,
    /// Payload JSON.
    pub payload: String,
    /// Occurred at (ms).
    pub occurred_at: i64,
    /// Request id.
    pub request_id: Option<String>,
    /// Now (ms).
    pub now: i64,
}

/// Inserts the events whose ids are new; returns the ids inserted.
pub async fn insert_events(
    conn: &mut AnyConnection,
    events: &[NewEvent],
) -> Result<HashSet<String>, sqlx::Error> {
    const COLS: usize = 7;
    let mut inserted = HashSet::with_capacity(events.len());
    for chunk in events.chunks(rows_per_statement(COLS)) {
        let sql = format!(
            "INSERT INTO nba_events (event_id, source, nba_definition_id, payload, occurred_at, request_id, \
             received_at, state) SELECT v.*, 'queued' FROM (VALUES {}) AS v \
             WHERE true ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            backend_of(conn).sequential_rows(chunk.len(), COLS)
        );
        let mut query = sqlx::query(&sql);
        for e in chunk {
            query = query
                .bind(&e.event_id)
                .bind(&e.source)
                .bind(&e.nba_definition_id)
                .bind(&e.payload)
                .bind(e.occurred_at)
                .bind(&e.request_id)
                .bind(e.now);
        }
        for row in query.fetch_all(&mut *conn).await? {
            inserted.insert(row.get::<String, _>(0));
        }
    }
    Ok(inserted)
}

const EVENT_COLUMNS: &str =
    "event_id, payload, state, action, nba_id, deactivated, request_id, error, received_at, processed_at";

fn event_row(r: &AnyRow) -> EventRow {
    EventRow {
        event_id: r.get("event_id"),
        payload: r.get("payload"),
        state: r.get("state"),
        action: r.get("action"),
        nba_id: r.get("nba_id"),
        deactivated: r.get("deactivated"),
        request_id: r.get("request_id"),
        error: r.get("error"),
        received_at: r.get("received_at"),
        processed_at: r.get("processed_at"),
    }
}

/// One event.
pub async fn get_event(conn: &mut AnyConnection, event_id: &str) -> Result<Option<EventRow>, sqlx::Error> {
    Ok(get_events(conn, &[event_id]).await?.into_iter().next())
}

/// The events with these ids (in no particular order; unknown ids are left out).
pub async fn get_events(conn: &mut AnyConnection, ids: &[&str]) -> Result<Vec<EventRow>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(rows_per_statement(1)) {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM nba_events WHERE event_id IN ({})",
            backend_of(conn).sequential_placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        out.extend(query.fetch_all(&mut *conn).await?.iter().map(event_row));
    }
    Ok(out)
}

/// An event's outcome.
pub struct EventOutcome<'a> {
    /// Event id.
    pub event_id: &'a str,
    /// `created` or `deactivated_only`.
    pub action: &'a str,
    /// The NBA created.
    pub nba_id: Option<&'a str>,
    /// NBAs it deactivated.
    pub deactivated: i64,
}

/// Records events' outcomes, one statement per chunk.
pub async fn mark_events_processed(
    conn: &mut AnyConnection,
    outcomes: &[EventOutcome<'_>],
    now: i64,
) -> Result<(), sqlx::Error> {
    const COLS: usize = 4;
    for chunk in outcomes.chunks(rows_per_statement(COLS)) {
        let sql = format!(
            "UPDATE nba_events SET state = 'processed', error = NULL, processed_at = $1, \
             action = v.column2, nba_id = v.column3, deactivated = v.column4 \
             FROM (VALUES {}) AS v WHERE nba_events.event_id = v.column1",
            row_placeholders(chunk.len(), COLS, 2),
        );
        let mut query = sqlx::query(&sql).bind(now);
        for o in chunk {
            query = query.bind(o.event_id).bind(o.action).bind(o.nba_id).bind(o.deactivated);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records that an event's processing ran out of attempts.
pub async fn mark_event_failed(
    conn: &mut AnyConnection,
    event_id: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE nba_events SET state = 'failed', error = $1 WHERE event_id = $2 AND state = 'queued'",
    )
    .bind(error)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Serialises the processing of these scopes across PostgreSQL transactions (until commit), so
/// two workers can't each keep their own NBA current. Locks are taken in hash order, so two
/// batches can't deadlock on them. SQLite has a single writer already.
pub async fn lock_scopes(conn: &mut AnyConnection, scope_keys: &[&str]) -> Result<(), sqlx::Error> {
    for chunk in scope_keys.chunks(rows_per_statement(1)) {
        let rows: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i})")).collect();
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(h) FROM \
             (SELECT DISTINCT hashtext(v.column1) AS h FROM (VALUES {}) AS v ORDER BY h) AS ordered) AS locked",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(*key);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The latest `occurred_at` among each scope's current `new` NBAs.
pub async fn current_by_scope(
    conn: &mut AnyConnection,
    scope_keys: &[&str],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut out = HashMap::new();
    for chunk in scope_keys.chunks(rows_per_statement(1)) {
        let sql = format!(
            "SELECT scope_key, MAX(occurred_at) AS latest FROM nbas \
             WHERE active = 1 AND status = 'new' AND scope_key IN ({}) GROUP BY scope_key",
            backend_of(conn).sequential_placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for key in chunk {
            query = query.bind(*key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            out.insert(row.get::<String, _>("scope_key"), row.get::<i64, _>("latest"));
        }
    }
    Ok(out)
}

/// Deactivates every current `new` NBA of these scopes; returns how many per scope.
pub async fn deactivate_scopes(
    conn: &mut AnyConnection,
    scope_keys: &[&str],
    now: i64,
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut out: HashMap<String, i64> = HashMap::new();
    for chunk in scope_keys.chunks(rows_per_statement(1)) {
        let sql = format!(
            "UPDATE nbas SET active = 0, updated_at = $1 \
             WHERE active = 1 AND status = 'new' AND scope_key IN ({}) RETURNING scope_key",
            placeholders(chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql).bind(now);
        for key in chunk {
            query = query.bind(*key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            *out.entry(row.get::<String, _>(0)).or_default() += 1;
        }
    }
    Ok(out)
}

/// Deactivates one NBA if active; `true` when it changed.
pub async fn deactivate(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE nbas SET active = 0, updated_at = $1 WHERE id = $2 AND active = 1")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// New NBA row.
pub struct NewNba<'a> {
    /// Id.
    pub id: String,
    /// Definition.
    pub nba_definition_id: &'a str,
    /// Enterprise number.
    pub enterprise_number: Option<&'a str>,
    /// Account.
    pub account_id: Option<&'a str>,
    /// Contact.
    pub contact_id: Option<&'a str>,
    /// Scope key.
    pub scope_key: &'a str,
    /// Active at creation.
    pub active: bool,
    /// Context JSON.
    pub context: String,
    /// Creating event.
    pub source_event_id: &'a str,
    /// Occurred at (ms).
    pub occurred_at: i64,
}

/// Inserts NBAs; returns how many were inserted (fewer when an id was taken).
pub async fn insert_nbas(
    conn: &mut AnyConnection,
    nbas: &[NewNba<'_>],
    now: i64,
) -> Result<usize, sqlx::Error> {
    const COLS: usize = 11;
    let mut inserted = 0;
    for chunk in nbas.chunks(rows_per_statement(COLS)) {
        let sql = format!(
            "INSERT INTO nbas (id, nba_definition_id, enterprise_number, account_id, contact_id, scope_key, \
             active, context, source_event_id, occurred_at, created_at, updated_at, status, priority) \
             SELECT v.*, v.column11, 'new', 0 FROM (VALUES {}) AS v \
             WHERE true ON CONFLICT (id) DO NOTHING RETURNING id",
            backend_of(conn).sequential_rows(chunk.len(), COLS)
        );
        let mut query = sqlx::query(&sql);
        for n in chunk {
            query = query
                .bind(&n.id)
                .bind(n.nba_definition_id)
                .bind(n.enterprise_number)
                .bind(n.account_id)
                .bind(n.contact_id)
                .bind(n.scope_key)
                .bind(i64::from(n.active))
                .bind(&n.context)
                .bind(n.source_event_id)
                .bind(n.occurred_at)
                .bind(now);
        }
        inserted += query.fetch_all(&mut *conn).await?.len();
    }
    Ok(inserted)
}

/// Appends entries to NBAs' histories; `seq` orders entries written in the same millisecond.
pub async fn insert_logs(
    conn: &mut AnyConnection,
    entries: &[(EventLogEntry, i64)],
    seq: i64,
) -> Result<(), sqlx::Error> {
    const COLS: usize = 9;
    for (c, chunk) in entries.chunks(rows_per_statement(COLS)).enumerate() {
        let sql = format!(
            "INSERT INTO nba_event_log (id, nba_id, status, context, acted_by, action_at, request_id, event_id, seq) \
             VALUES {}",
            backend_of(conn).sequential_rows(chunk.len(), COLS)
        );
        let mut query = sqlx::query(&sql);
        for (i, (e, action_at)) in chunk.iter().enumerate() {
            query = query
                .bind(&e.id)
                .bind(&e.nba_id)
                .bind(&e.status)
                .bind(e.context.to_string())
                .bind(&e.acted_by)
                .bind(*action_at)
                .bind(&e.request_id)
                .bind(&e.event_id)
                .bind(seq + (c * rows_per_statement(COLS) + i) as i64);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

const NBA_COLUMNS: &str =
    "id, nba_definition_id, enterprise_number, account_id, contact_id, active, status, \
     priority, context, source_event_id, occurred_at, created_at, updated_at";

fn nba_item(r: &AnyRow) -> NbaItem {
    let context: String = r.get("context");
    NbaItem {
        id: r.get("id"),
        nba_definition_id: r.get("nba_definition_id"),
        enterprise_number: r.get("enterprise_number"),
        account_id: r.get("account_id"),
        contact_id: r.get("contact_id"),
        active: r.get::<i64, _>("active") != 0,
        status: r.get("status"),
        priority: r.get("priority"),
        context: serde_json::from_str(&context).unwrap_or(Value::Null),
    }
}

/// Filters of `GET /api/v1/nba`.
#[derive(Debug, Default)]
pub struct NbaFilter {
    /// Account.
    pub account_id: Option<String>,
    /// Enterprise number.
    pub enterprise_number: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Definition.
    pub nba_definition_id: Option<String>,
    /// `Some(true)` active only, `Some(false)` inactive only, `None` both.
    pub active: Option<bool>,
}

/// A page of NBAs (newest first) and the total matching.
pub async fn list_nbas(
    conn: &mut AnyConnection,
    f: &NbaFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<NbaItem>, i64), sqlx::Error> {
    let mut c = Conditions::default();
    c.eq("account_id", f.account_id.as_deref())
        .eq("enterprise_number", f.enterprise_number.as_deref())
        .eq("status", f.status.as_deref())
        .eq("nba_definition_id", f.nba_definition_id.as_deref());
    match f.active {
        Some(true) => c.fixed("active = 1"),
        Some(false) => c.fixed("active = 0"),
        None => &mut c,
    };
    let where_sql = c.where_sql();
    let count_sql = format!("SELECT COUNT(*) FROM nbas{where_sql}");
    let total: i64 = c.apply(sqlx::query(&count_sql)).fetch_one(&mut *conn).await?.get(0);
    let n = c.next_placeholder();
    let page_sql = format!(
        "SELECT {NBA_COLUMNS} FROM nbas{where_sql} ORDER BY created_at DESC, id DESC LIMIT ${n} OFFSET ${}",
        n + 1
    );
    let page = c.apply(sqlx::query(&page_sql));
    let rows = page.bind(limit).bind(offset).fetch_all(&mut *conn).await?;
    Ok((rows.iter().map(nba_item).collect(), total))
}

/// One NBA with its timestamps.
pub async fn get_nba(conn: &mut AnyConnection, id: &str) -> Result<Option<NbaDetail>, sqlx::Error> {
    let sql = format!("SELECT {NBA_COLUMNS} FROM nbas WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(conn).await?;
    Ok(row.map(|r| NbaDetail {
        item: nba_item(&r),
        source_event_id: r.get("source_event_id"),
        occurred_at: ms_to_rfc3339(r.get("occurred_at")),
        created_at: ms_to_rfc3339(r.get("created_at")),
        updated_at: ms_to_rfc3339(r.get("updated_at")),
    }))
}

/// Moves a current `new` NBA to `status`; `false` when it was no longer current and `new`.
pub async fn decide(conn: &mut AnyConnection, id: &str, status: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE nbas SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'new' AND active = 1",
    )
    .bind(status)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The recorded decision with `status` on an NBA, if any.
pub async fn find_decision(
    conn: &mut AnyConnection,
    nba_id: &str,
    status: &str,
) -> Result<Option<ActionRecord>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, nba_id, status, acted_by, action_at FROM nba_event_log \
         WHERE nba_id = $1 AND status = $2 ORDER BY seq DESC LIMIT 1",
    )
    .bind(nba_id)
    .bind(status)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| ActionRecord {
        event_id: r.get("id"),
        nba_id: r.get("nba_id"),
        status: r.get("status"),
        acted_by: r.get("acted_by"),
        action_at: ms_to_rfc3339(r.get("action_at")),
    }))
}

/// An NBA's history, oldest first.
pub async fn list_log(conn: &mut AnyConnection, nba_id: &str) -> Result<Vec<EventLogEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, nba_id, status, context, acted_by, action_at, request_id, event_id FROM nba_event_log \
         WHERE nba_id = $1 ORDER BY seq, action_at",
    )
    .bind(nba_id)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let context: String = r.get("context");
            EventLogEntry {
                id: r.get("id"),
                nba_id: r.get("nba_id"),
                status: r.get("status"),
                context: serde_json::from_str(&context).unwrap_or(Value::Null),
                acted_by: r.get("acted_by"),
                action_at: ms_to_rfc3339(r.get("action_at")),
                request_id: r.get("request_id"),
                event_id: r.get("event_id"),
            }
        })
        .collect())
}
