//! Ingestion: run a sync, list the runs and the alert deliveries with their attempts; build and
//! list training datasets.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::error::SportsError;
use crate::service::SportsService;
use crate::store::runs::IngestRun;

/// `POST /api/ingest/run`'s body.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RunRequest {
    /// The day, `YYYY-MM-DD`; default yesterday in the sync's zone.
    date: Option<String>,
    /// Fetch, audit and validate only; store nothing, alert nobody.
    #[serde(default)]
    dry_run: bool,
}

/// Queues a sync of a day's games (a day already queued is not queued twice); follow it in
/// `GET /api/ingest/runs`.
#[utoipa::path(post, path = "/api/ingest/run", tag = "sports", request_body = RunRequest,
    responses((status = 202, body = Object), (status = 422, body = ErrorBody)))]
async fn run_ingest(
    State(s): State<SportsService>,
    body: Option<ApiJson<RunRequest>>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    if let Some(date) = &body.date {
        let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .map_err(|_| SportsError::invalid("date", "must be YYYY-MM-DD"))?;
        if day >= chrono::Utc::now().date_naive() + chrono::Duration::days(1) {
            return Err(SportsError::invalid("date", "is in the future").into());
        }
    }
    let queued = s.queue_sync(body.date.clone(), body.dry_run).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued, "date": body.date, "dry_run": body.dry_run}))))
}

/// How many to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many, newest first (1–200; default 50).
    limit: Option<i64>,
}

fn limit(q: &ListQuery) -> Result<i64, SportsError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(SportsError::invalid("limit", "must be 1 to 200"));
    }
    Ok(limit)
}

/// The ingestion runs, newest first, each with its summary (the original's keys) or error.
#[utoipa::path(get, path = "/api/ingest/runs", tag = "sports", params(ListQuery),
    responses((status = 200, body = Object)))]
async fn list_runs(
    State(s): State<SportsService>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"runs": s.ingest_runs(limit(&q)?).await?})))
}

/// One ingestion run.
#[utoipa::path(get, path = "/api/ingest/runs/{id}", tag = "sports",
    params(("id" = String, Path, description = "Run id")),
    responses((status = 200, body = IngestRun), (status = 404, body = ErrorBody)))]
async fn get_run(State(s): State<SportsService>, Path(id): Path<String>) -> ApiResult<Json<IngestRun>> {
    Ok(Json(s.ingest_run(&id).await?))
}

/// The alert deliveries, newest first, each with every attempt (status or error, time taken).
#[utoipa::path(get, path = "/api/ingest/alerts", tag = "sports", params(ListQuery),
    responses((status = 200, body = Object)))]
async fn list_alerts(
    State(s): State<SportsService>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"deliveries": s.alert_deliveries(limit(&q)?).await?})))
}

/// `POST /api/datasets`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DatasetRequest {
    /// points, rebounds, assists, steals, blocks, threes, turnovers or minutes.
    stat: String,
    /// Players with fewer stored games are left out (default 50).
    min_games: Option<usize>,
}

/// Queues a training dataset of a stat from the stored games (per-player samples with the
/// original's features, split 70/15/15 by time; Parquet, CSV and metadata); follow it in
/// `GET /api/datasets`.
#[utoipa::path(post, path = "/api/datasets", tag = "sports", request_body = DatasetRequest,
    responses((status = 202, body = Object), (status = 422, body = ErrorBody)))]
async fn build_dataset(
    State(s): State<SportsService>,
    ApiJson(body): ApiJson<DatasetRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let min_games = body.min_games.unwrap_or(50);
    let queued = s.queue_dataset(&body.stat, min_games).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"queued": queued, "stat": body.stat, "min_games": min_games}))))
}

/// The datasets written, newest first: each one's metadata (`version_id`, `stat_type`, `path`,
/// `rows`, `created_at`, splits, features).
#[utoipa::path(get, path = "/api/datasets", tag = "sports", responses((status = 200, body = Object)))]
async fn list_datasets(State(s): State<SportsService>) -> Json<Value> {
    Json(json!({"datasets": crate::dataset::list(&s.ingest_settings().datasets_dir)}))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<SportsService>) -> SecureRouter<SportsService> {
    let manage = Access::Permission("sports:manage");
    router
        .route(manage, routes!(run_ingest))
        .route(manage, routes!(list_runs))
        .route(manage, routes!(get_run))
        .route(manage, routes!(list_alerts))
        .route(manage, routes!(build_dataset, list_datasets))
}
