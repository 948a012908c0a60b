//! SQL for the tables this module owns: `nba_events`, `nbas`, `nba_event_log`.

use serde_json::Value;
use sightline_platform::db::ms_to_rfc3339;
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
    CREATE INDEX nbas_account ON nbas (account_id, active, created_at);
    CREATE INDEX nbas_enterprise ON nbas (enterprise_number, active, created_at);
    CREATE INDEX nbas_listing ON nbas (active, created_at);
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
    /// `queued`, `processed`.
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
pub struct NewEvent<'a> {
    /// Event id.
    pub event_id: &'a str,
    /// Source.
    pub source: &'a str,
    /// Definition.
    pub nba_definition_id: &'a str,
    /// Payload JSON.
    pub payload: &'a str,
    /// Occurred at (ms).
    pub occurred_at: i64,
    /// Request id.
    pub request_id: Option<&'a str>,
    /// Now (ms).
    pub now: i64,
}

/// Inserts the event unless its id exists; `true` when inserted.
pub async fn insert_event(conn: &mut AnyConnection, e: &NewEvent<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO nba_events (event_id, source, nba_definition_id, payload, occurred_at, state, \
         request_id, received_at) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7) \
         ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(e.event_id)
    .bind(e.source)
    .bind(e.nba_definition_id)
    .bind(e.payload)
    .bind(e.occurred_at)
    .bind(e.request_id)
    .bind(e.now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// One event.
pub async fn get_event(
    conn: &mut AnyConnection,
    event_id: &str,
) -> Result<Option<EventRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT event_id, payload, state, action, nba_id, deactivated, request_id, error, received_at, processed_at \
         FROM nba_events WHERE event_id = $1",
    )
    .bind(event_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| EventRow {
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
    }))
}

/// Records an event's outcome.
pub async fn mark_event_processed(
    conn: &mut AnyConnection,
    event_id: &str,
    action: &str,
    nba_id: Option<&str>,
    deactivated: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE nba_events SET state = 'processed', action = $1, nba_id = $2, deactivated = $3, error = NULL, \
         processed_at = $4 WHERE event_id = $5",
    )
    .bind(action)
    .bind(nba_id)
    .bind(deactivated)
    .bind(now)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that an event's processing ran out of attempts.
pub async fn mark_event_failed(
    conn: &mut AnyConnection,
    event_id: &str,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE nba_events SET state = 'failed', error = $1 WHERE event_id = $2 AND state = 'queued'")
        .bind(error)
        .bind(event_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Serialises the processing of one scope across PostgreSQL transactions (until commit), so
/// two workers can't each keep their own NBA current. SQLite has a single writer already.
pub async fn lock_scope(conn: &mut AnyConnection, scope_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked")
        .bind(scope_key)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the scope already has a current NBA from a later calculation.
pub async fn newer_in_scope(
    conn: &mut AnyConnection,
    scope_key: &str,
    occurred_at: i64,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id FROM nbas WHERE scope_key = $1 AND active = 1 AND status = 'new' AND occurred_at > $2 LIMIT 1",
    )
    .bind(scope_key)
    .bind(occurred_at)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// New NBA row.
pub struct NewNba<'a> {
    /// Id.
    pub id: &'a str,
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
    pub context: &'a str,
    /// Creating event.
    pub source_event_id: &'a str,
    /// Occurred at (ms).
    pub occurred_at: i64,
    /// Now (ms).
    pub now: i64,
}

/// Inserts an NBA; `false` when the id is taken.
pub async fn insert_nba(conn: &mut AnyConnection, n: &NewNba<'_>) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO nbas (id, nba_definition_id, enterprise_number, account_id, contact_id, scope_key, \
         active, status, priority, context, source_event_id, occurred_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'new', 0, $8, $9, $10, $11, $11) ON CONFLICT (id) DO NOTHING",
    )
    .bind(n.id)
    .bind(n.nba_definition_id)
    .bind(n.enterprise_number)
    .bind(n.account_id)
    .bind(n.contact_id)
    .bind(n.scope_key)
    .bind(i64::from(n.active))
    .bind(n.context)
    .bind(n.source_event_id)
    .bind(n.occurred_at)
    .bind(n.now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deactivates the scope's other current `new` NBAs calculated no later than `occurred_at`.
pub async fn deactivate_scope(
    conn: &mut AnyConnection,
    scope_key: &str,
    keep_id: &str,
    occurred_at: i64,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE nbas SET active = 0, updated_at = $1 WHERE scope_key = $2 AND active = 1 \
         AND status = 'new' AND id <> $3 AND occurred_at <= $4",
    )
    .bind(now)
    .bind(scope_key)
    .bind(keep_id)
    .bind(occurred_at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deactivates one NBA if active; `true` when it changed.
pub async fn deactivate(conn: &mut AnyConnection, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE nbas SET active = 0, updated_at = $1 WHERE id = $2 AND active = 1")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Appends to an NBA's history.
pub async fn insert_log(
    conn: &mut AnyConnection,
    e: &EventLogEntry,
    action_at: i64,
    seq: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO nba_event_log (id, nba_id, status, context, acted_by, action_at, request_id, event_id, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&e.id)
    .bind(&e.nba_id)
    .bind(&e.status)
    .bind(e.context.to_string())
    .bind(&e.acted_by)
    .bind(action_at)
    .bind(&e.request_id)
    .bind(&e.event_id)
    .bind(seq)
    .execute(conn)
    .await?;
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
    // Conditions are fixed strings with numbered placeholders; every value is bound.
    let mut conds: Vec<String> = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    for (column, value) in [
        ("account_id", &f.account_id),
        ("enterprise_number", &f.enterprise_number),
        ("status", &f.status),
        ("nba_definition_id", &f.nba_definition_id),
    ] {
        if let Some(v) = value {
            binds.push(v.clone());
            conds.push(format!("{column} = ${}", binds.len()));
        }
    }
    match f.active {
        Some(true) => conds.push("active = 1".into()),
        Some(false) => conds.push("active = 0".into()),
        None => {}
    }
    let where_sql = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    let count_sql = format!("SELECT COUNT(*) FROM nbas{where_sql}");
    let mut count = sqlx::query(&count_sql);
    for b in &binds {
        count = count.bind(b);
    }
    let total: i64 = count.fetch_one(&mut *conn).await?.get(0);
    let page_sql = format!(
        "SELECT {NBA_COLUMNS} FROM nbas{where_sql} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
        binds.len() + 1,
        binds.len() + 2
    );
    let mut page = sqlx::query(&page_sql);
    for b in &binds {
        page = page.bind(b);
    }
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
pub async fn decide(
    conn: &mut AnyConnection,
    id: &str,
    status: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
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
pub async fn list_log(
    conn: &mut AnyConnection,
    nba_id: &str,
) -> Result<Vec<EventLogEntry>, sqlx::Error> {
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
