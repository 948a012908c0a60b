//! SQL of `calls_backfills`: one row per backfill, with the day it goes on from, so a backfill
//! resumes where it stopped.

use serde::Serialize;
use sightline_platform::db::ms_to_rfc3339;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};
use utoipa::ToSchema;

/// A backfill and its progress.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Backfill {
    /// Its id.
    pub id: String,
    /// Organisation.
    pub org_id: String,
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, inclusive.
    pub end_date: String,
    /// Stored reports are made again.
    pub force: bool,
    /// The next day to make.
    pub next_date: String,
    /// Days in the range.
    pub days_total: i64,
    /// Days done (made, kept or failed).
    pub days_done: i64,
    /// Reports written.
    pub generated: i64,
    /// Days that failed.
    pub failed: i64,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// The last failure.
    pub error: Option<String>,
    /// Who asked.
    pub created_by: Option<String>,
    /// Asked at (RFC 3339).
    pub created_at: String,
    /// Last progress (RFC 3339).
    pub updated_at: String,
}

fn backfill(row: &AnyRow) -> Result<Backfill, sqlx::Error> {
    Ok(Backfill {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        start_date: row.try_get("start_date")?,
        end_date: row.try_get("end_date")?,
        force: row.try_get::<i64, _>("force_regenerate")? != 0,
        next_date: row.try_get("next_date")?,
        days_total: row.try_get("days_total")?,
        days_done: row.try_get("days_done")?,
        generated: row.try_get("generated")?,
        failed: row.try_get("failed")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        created_by: row.try_get("created_by")?,
        created_at: ms_to_rfc3339(row.try_get("created_at")?),
        updated_at: ms_to_rfc3339(row.try_get("updated_at")?),
    })
}

/// Records a new backfill.
pub async fn insert(conn: &mut AnyConnection, b: &Backfill, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO calls_backfills (id, org_id, start_date, end_date, force_regenerate, next_date, days_total, \
         days_done, generated, failed, status, error, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, 0, 'queued', NULL, $8, $9, $9)",
    )
    .bind(&b.id)
    .bind(&b.org_id)
    .bind(&b.start_date)
    .bind(&b.end_date)
    .bind(i64::from(b.force))
    .bind(&b.next_date)
    .bind(b.days_total)
    .bind(&b.created_by)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// One backfill.
pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Backfill>, sqlx::Error> {
    let row =
        sqlx::query("SELECT * FROM calls_backfills WHERE id = $1").bind(id).fetch_optional(conn).await?;
    row.as_ref().map(backfill).transpose()
}

/// Day `done` finished: the next day, the counts, `running`; `false` when the backfill was not
/// at `done` (another worker moved it on).
#[allow(clippy::too_many_arguments)]
pub async fn advance(
    conn: &mut AnyConnection,
    id: &str,
    done: &str,
    next_date: &str,
    generated: bool,
    error: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE calls_backfills SET next_date = $1, days_done = days_done + 1, generated = generated + $2, \
         failed = failed + $3, error = COALESCE($4, error), status = 'running', updated_at = $5 \
         WHERE id = $6 AND next_date = $7",
    )
    .bind(next_date)
    .bind(i64::from(generated))
    .bind(i64::from(error.is_some()))
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(done)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// The backfill's end: `succeeded` or `failed`.
pub async fn finish(conn: &mut AnyConnection, id: &str, status: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE calls_backfills SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
