//! SQL of `calls_reports` (one stored daily report per organisation and day) and
//! `calls_report_runs` (every generation run, for the scheduler's status).

use serde::Serialize;
use serde_json::Value;
use sightline_platform::db::ms_to_rfc3339;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};
use utoipa::ToSchema;

/// A stored report as listed: its summary KPIs.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReportSummary {
    /// Row id.
    pub id: i64,
    /// Its day, `YYYY-MM-DD`.
    pub report_date: String,
    /// When it was (last) generated (RFC 3339).
    pub created_at: String,
    /// Calls that day.
    pub total_calls: i64,
    /// Success rate, percent.
    pub success_rate_percent: Option<f64>,
    /// Non-convertible share (carrier not qualified counted), percent.
    pub non_convertible_percent: Option<f64>,
}

/// A stored report, whole.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredReport {
    /// Row id.
    pub id: i64,
    /// Organisation.
    pub org_id: String,
    /// Its day.
    pub report_date: String,
    /// When it was generated.
    pub created_at: String,
    /// The report: `{date_range, kpis, breakdowns, metadata}`.
    pub data: Value,
}

fn summary(row: &AnyRow) -> Result<ReportSummary, sqlx::Error> {
    Ok(ReportSummary {
        id: row.try_get("id")?,
        report_date: row.try_get("report_date")?,
        created_at: ms_to_rfc3339(row.try_get("created_at")?),
        total_calls: row.try_get("total_calls")?,
        success_rate_percent: row.try_get("success_rate_percent")?,
        non_convertible_percent: row.try_get("non_convertible_percent")?,
    })
}

fn stored(row: &AnyRow) -> Result<StoredReport, sqlx::Error> {
    let data: String = row.try_get("report_data")?;
    Ok(StoredReport {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        report_date: row.try_get("report_date")?,
        created_at: ms_to_rfc3339(row.try_get("created_at")?),
        data: serde_json::from_str(&data).map_err(|e| sqlx::Error::Decode(e.into()))?,
    })
}

/// Stores (or replaces) the report of `org_id` for `date`; answers its id.
pub async fn save(
    conn: &mut AnyConnection,
    org_id: &str,
    date: &str,
    report: &Value,
    now: i64,
) -> Result<i64, sqlx::Error> {
    let kpis = &report["kpis"];
    let success = kpis["success_rate_percent"].as_f64();
    let non_convertible = kpis["non_convertible_calls_with_carrier_not_qualified"]["percentage"].as_f64();
    // The percentages are bound as numbers always (a NULL bind first would type the cached
    // statement's parameter otherwise on PostgreSQL), with a flag saying which are absent.
    let row = sqlx::query(
        "INSERT INTO calls_reports (org_id, report_date, report_data, total_calls, success_rate_percent, \
         non_convertible_percent, created_at) VALUES ($1, $2, $3, $4, \
         CASE WHEN $8 = 1 THEN CAST($5 AS DOUBLE PRECISION) END, \
         CASE WHEN $9 = 1 THEN CAST($6 AS DOUBLE PRECISION) END, $7) \
         ON CONFLICT (org_id, report_date) DO UPDATE SET report_data = excluded.report_data, \
         total_calls = excluded.total_calls, success_rate_percent = excluded.success_rate_percent, \
         non_convertible_percent = excluded.non_convertible_percent, created_at = excluded.created_at \
         RETURNING id",
    )
    .bind(org_id)
    .bind(date)
    .bind(report.to_string())
    .bind(kpis["total_calls"].as_i64().unwrap_or(0))
    .bind(success.unwrap_or(0.0))
    .bind(non_convertible.unwrap_or(0.0))
    .bind(now)
    .bind(i64::from(success.is_some()))
    .bind(i64::from(non_convertible.is_some()))
    .fetch_one(conn)
    .await?;
    row.try_get("id")
}

/// Whether the report of `org_id` for `date` is stored.
pub async fn exists(conn: &mut AnyConnection, org_id: &str, date: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 AS one FROM calls_reports WHERE org_id = $1 AND report_date = $2")
        .bind(org_id)
        .bind(date)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

/// The stored report of a day, or the newest.
pub async fn get(
    conn: &mut AnyConnection,
    org_id: &str,
    date: Option<&str>,
) -> Result<Option<StoredReport>, sqlx::Error> {
    let row = match date {
        Some(date) => {
            sqlx::query("SELECT * FROM calls_reports WHERE org_id = $1 AND report_date = $2")
                .bind(org_id)
                .bind(date)
                .fetch_optional(conn)
                .await?
        }
        None => {
            sqlx::query("SELECT * FROM calls_reports WHERE org_id = $1 ORDER BY report_date DESC LIMIT 1")
                .bind(org_id)
                .fetch_optional(conn)
                .await?
        }
    };
    row.as_ref().map(stored).transpose()
}

/// Report summaries, newest first: the `limit` newest, or every one in `[from, to]`.
pub async fn list(
    conn: &mut AnyConnection,
    org_id: &str,
    range: Option<(&str, &str)>,
    limit: i64,
) -> Result<Vec<ReportSummary>, sqlx::Error> {
    const COLUMNS: &str =
        "id, report_date, created_at, total_calls, success_rate_percent, non_convertible_percent";
    let rows = match range {
        Some((from, to)) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM calls_reports WHERE org_id = $1 AND report_date >= $2 AND report_date <= $3 \
                 ORDER BY report_date DESC"
            ))
            .bind(org_id)
            .bind(from)
            .bind(to)
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM calls_reports WHERE org_id = $1 ORDER BY report_date DESC LIMIT $2"
            ))
            .bind(org_id)
            .bind(limit)
            .fetch_all(conn)
            .await?
        }
    };
    rows.iter().map(summary).collect()
}

/// Every stored day of an organisation, oldest first.
pub async fn dates(conn: &mut AnyConnection, org_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT report_date FROM calls_reports WHERE org_id = $1 ORDER BY report_date")
        .bind(org_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(|r| r.try_get("report_date")).collect()
}

/// One generation run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ReportRun {
    /// Row id.
    pub id: i64,
    /// `daily`, `catchup`, `manual` or `backfill`.
    pub run_type: String,
    /// `success`, `partial` or `error`.
    pub status: String,
    /// Organisation, when the run was for one.
    pub org_id: Option<String>,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub completed_at: String,
    /// Reports written.
    pub reports_generated: i64,
    /// Why it failed.
    pub error_message: Option<String>,
}

/// A generation run to record.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    /// `daily`, `catchup`, `manual` or `backfill`.
    pub run_type: &'a str,
    /// `success`, `partial` or `error`.
    pub status: &'a str,
    /// Organisation, when the run was for one.
    pub org_id: Option<&'a str>,
    /// Start (ms).
    pub started_at: i64,
    /// End (ms).
    pub completed_at: i64,
    /// Reports written.
    pub reports_generated: i64,
    /// Why it failed.
    pub error: Option<&'a str>,
}

/// Records a generation run.
pub async fn record_run(conn: &mut AnyConnection, run: &NewRun<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO calls_report_runs (run_type, status, org_id, started_at, completed_at, reports_generated, error_message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run.run_type)
    .bind(run.status)
    .bind(run.org_id)
    .bind(run.started_at)
    .bind(run.completed_at)
    .bind(run.reports_generated)
    .bind(run.error)
    .execute(conn)
    .await?;
    Ok(())
}

/// The newest runs, newest first.
pub async fn recent_runs(conn: &mut AnyConnection, limit: i64) -> Result<Vec<ReportRun>, sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM calls_report_runs ORDER BY started_at DESC, id DESC LIMIT $1")
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ReportRun {
                id: r.try_get("id")?,
                run_type: r.try_get("run_type")?,
                status: r.try_get("status")?,
                org_id: r.try_get("org_id")?,
                started_at: ms_to_rfc3339(r.try_get("started_at")?),
                completed_at: ms_to_rfc3339(r.try_get("completed_at")?),
                reports_generated: r.try_get("reports_generated")?,
                error_message: r.try_get("error_message")?,
            })
        })
        .collect()
}
