//! Ingestion runs: each sync's day, trigger, outcome and summary.

use serde::Serialize;
use serde_json::Value;
use sightline_platform::db::{ms_to_rfc3339, now_ms};
use sqlx::{AnyConnection, Row as _};
use utoipa::ToSchema;

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IngestRun {
    /// Its id.
    pub id: String,
    /// The day synced (`YYYY-MM-DD`).
    pub run_date: String,
    /// `schedule`, `cli` or `api`.
    pub trigger: String,
    /// Validated and audited only, nothing stored.
    pub dry_run: bool,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// The original's summary (`audit_path`, `player_rows`, `team_rows`, `validation`,
    /// `filtered_out_count`, `dry_run`).
    #[schema(value_type = Object)]
    pub summary: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// The alert sent about it, if any.
    pub alert_delivery_id: Option<String>,
    /// Started (RFC 3339).
    pub started_at: String,
    /// Finished.
    pub finished_at: Option<String>,
}

/// Records a run as started.
pub async fn start(
    conn: &mut AnyConnection,
    id: &str,
    day: &str,
    trigger: &str,
    dry_run: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sports_ingest_runs (id, run_date, trigger, dry_run, status, started_at) VALUES ($1, $2, $3, $4, 'running', $5)",
    )
    .bind(id)
    .bind(day)
    .bind(trigger)
    .bind(i64::from(dry_run))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Records how a run ended.
pub async fn finish(
    conn: &mut AnyConnection,
    id: &str,
    summary: Option<&Value>,
    error: Option<&str>,
    alert: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sports_ingest_runs SET status = $1, summary = $2, error = $3, alert_delivery_id = $4, finished_at = $5 WHERE id = $6",
    )
    .bind(if error.is_some() { "failed" } else { "succeeded" })
    .bind(summary.map(Value::to_string))
    .bind(error)
    .bind(alert)
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

fn run(r: &sqlx::any::AnyRow) -> Result<IngestRun, sqlx::Error> {
    let summary: Option<String> = r.try_get("summary")?;
    let finished: Option<i64> = r.try_get("finished_at")?;
    Ok(IngestRun {
        id: r.try_get("id")?,
        run_date: r.try_get("run_date")?,
        trigger: r.try_get("trigger")?,
        dry_run: r.try_get::<i64, _>("dry_run")? != 0,
        status: r.try_get("status")?,
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.try_get("error")?,
        alert_delivery_id: r.try_get("alert_delivery_id")?,
        started_at: ms_to_rfc3339(r.try_get("started_at")?),
        finished_at: finished.map(ms_to_rfc3339),
    })
}

const COLUMNS: &str =
    "id, run_date, trigger, dry_run, status, summary, error, alert_delivery_id, started_at, finished_at";

/// The latest `limit` runs, newest first.
pub async fn list(conn: &mut AnyConnection, limit: i64) -> Result<Vec<IngestRun>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM sports_ingest_runs ORDER BY started_at DESC, id LIMIT $1"))
        .bind(limit)
        .fetch_all(conn)
        .await?
        .iter()
        .map(run)
        .collect()
}

/// One run.
pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<IngestRun>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM sports_ingest_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(run)
        .transpose()
}
