//! Forecast runs: forecasting every product as one durable job, with its progress and the last
//! product done (its checkpoint).

use serde::Serialize;
use sightline_platform::db::{ms_to_rfc3339, now_ms};
use sqlx::{AnyConnection, Row as _};
use utoipa::ToSchema;

/// A forecast run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ForecastRun {
    /// Its id.
    pub id: String,
    /// The model asked for.
    pub model_type: String,
    /// Months ahead.
    pub horizon: i64,
    /// `queued`, `running`, `succeeded`, `failed`.
    pub status: String,
    /// Products to forecast.
    pub total: i64,
    /// Products forecast.
    pub done: i64,
    /// Products that could not be (too little history).
    pub failed: i64,
    /// The last product done, by id: where a resumed run goes on.
    pub last_product_id: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Who asked.
    pub created_by: Option<String>,
    /// Asked (RFC 3339).
    pub created_at: String,
    /// Started.
    pub started_at: Option<String>,
    /// Ended.
    pub finished_at: Option<String>,
}

fn run(r: &sqlx::any::AnyRow) -> Result<ForecastRun, sqlx::Error> {
    Ok(ForecastRun {
        id: r.try_get("id")?,
        model_type: r.try_get("model_type")?,
        horizon: r.try_get("horizon")?,
        status: r.try_get("status")?,
        total: r.try_get("total")?,
        done: r.try_get("done")?,
        failed: r.try_get("failed")?,
        last_product_id: r.try_get("last_product_id")?,
        error: r.try_get("error")?,
        created_by: r.try_get("created_by")?,
        created_at: ms_to_rfc3339(r.try_get("created_at")?),
        started_at: r.try_get::<Option<i64>, _>("started_at")?.map(ms_to_rfc3339),
        finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(ms_to_rfc3339),
    })
}

const COLUMNS: &str =
    "id, model_type, horizon, status, total, done, failed, last_product_id, error, created_by, \
    created_at, started_at, finished_at";

/// Creates a queued run of every product there is now.
pub async fn create(
    conn: &mut AnyConnection,
    id: &str,
    model_type: &str,
    horizon: i64,
    created_by: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO planning_forecast_runs (id, model_type, horizon, status, total, done, failed, last_product_id, \
         created_by, created_at) SELECT $1, $2, $3, 'queued', COUNT(*), 0, 0, 0, $4, $5 FROM planning_products",
    )
    .bind(id)
    .bind(model_type)
    .bind(horizon)
    .bind(created_by)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// One run.
pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ForecastRun>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_forecast_runs WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(run)
        .transpose()
}

/// The latest `limit` runs.
pub async fn list(conn: &mut AnyConnection, limit: i64) -> Result<Vec<ForecastRun>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_forecast_runs ORDER BY created_at DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?
    .iter()
    .map(run)
    .collect()
}

/// The newest unfinished run of `model_type` and `horizon`, if any.
pub async fn unfinished(
    conn: &mut AnyConnection,
    model_type: &str,
    horizon: i64,
) -> Result<Option<ForecastRun>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_forecast_runs WHERE model_type = $1 AND horizon = $2 \
         AND status IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(model_type)
    .bind(horizon)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(run)
    .transpose()
}

/// Marks the run running (first start keeps its start time).
pub async fn start(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE planning_forecast_runs SET status = 'running', started_at = COALESCE(started_at, $1) WHERE id = $2",
    )
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records `product_id` as done (or failed), in the transaction that stored its forecast.
pub async fn checkpoint(
    conn: &mut AnyConnection,
    id: &str,
    product_id: i64,
    ok: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE planning_forecast_runs SET last_product_id = $1, done = done + $2, failed = failed + $3 \
         WHERE id = $4 AND last_product_id < $1",
    )
    .bind(product_id)
    .bind(i64::from(ok))
    .bind(i64::from(!ok))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Ends the run: `succeeded`, or `failed` with `error`.
pub async fn finish(conn: &mut AnyConnection, id: &str, error: Option<&str>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE planning_forecast_runs SET status = $1, error = $2, finished_at = $3 WHERE id = $4")
        .bind(if error.is_some() { "failed" } else { "succeeded" })
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Product ids after `after`, in order, at most `limit`.
pub async fn products_after(
    conn: &mut AnyConnection,
    after: i64,
    limit: i64,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query("SELECT id FROM planning_products WHERE id > $1 ORDER BY id LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect()
}
