//! The job dashboard: the queue's JSON API under `/api/v1/queue` and its page at `/rq` (the path
//! of the RQ dashboard the usage seed mounted). It shows every module's jobs.

use axum::extract::{Path, State};
use axum::response::Html;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::auth::{Access, SecureRouter};
use crate::error::{ApiError, ApiResult, ErrorBody, FieldError};
use crate::queue::{JobFilter, JobView, QueueCounts, Removal, WorkerView};
use crate::validate::ApiQuery;
use crate::{Page, Platform};

/// The queue API's routes and the dashboard page.
pub fn routes(platform: Platform) -> SecureRouter {
    SecureRouter::new()
        .route(Access::Permission("queue:read"), routes!(queue_counts))
        .route(Access::Permission("queue:read"), routes!(list_jobs))
        .route(Access::Permission("queue:read"), routes!(get_job))
        .route(Access::Permission("queue:read"), routes!(list_workers))
        .route(Access::Permission("queue:manage"), routes!(retry_job))
        .route(Access::Permission("queue:manage"), routes!(remove_job))
        .route(Access::Permission("queue:manage"), routes!(retry_failed_jobs))
        .route(Access::Public, routes!(dashboard_page))
        .with_state(platform)
}

/// Job counts per queue and state.
#[derive(Serialize, ToSchema)]
struct QueueOverview {
    queues: Vec<QueueCounts>,
}

/// Job counts per queue and state.
#[utoipa::path(get, path = "/api/v1/queue", tag = "platform", responses((status = 200, body = QueueOverview)))]
async fn queue_counts(State(p): State<Platform>) -> ApiResult<Json<QueueOverview>> {
    Ok(Json(QueueOverview { queues: p.queue.counts().await? }))
}

const STATES: [&str; 6] = ["queued", "running", "succeeded", "failed", "stuck", "all"];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct JobListQuery {
    /// `queued`, `running`, `succeeded`, `failed`, `stuck` (running, lease expired) or `all`
    /// (default `failed`).
    state: Option<String>,
    /// Only this queue (a module name).
    queue: Option<String>,
    /// Only this job type.
    job_type: Option<String>,
    /// Page size, 1..=200 (default 50).
    limit: Option<i64>,
    /// Rows to skip (default 0).
    offset: Option<i64>,
}

/// Jobs by state (failed ones by default), queue and type, newest first, with their last error.
#[utoipa::path(get, path = "/api/v1/queue/jobs", tag = "platform", params(JobListQuery),
    responses((status = 200, body = Page<JobView>), (status = 422, body = ErrorBody)))]
async fn list_jobs(
    State(p): State<Platform>,
    ApiQuery(q): ApiQuery<JobListQuery>,
) -> ApiResult<Json<Page<JobView>>> {
    let state = q.state.unwrap_or_else(|| "failed".into());
    if !STATES.contains(&state.as_str()) {
        return Err(ApiError::validation(vec![FieldError::new(
            "state",
            format!("must be one of {}", STATES.join(", ")),
        )]));
    }
    let (limit, offset) = crate::paging(q.limit, q.offset)?;
    let filter = JobFilter { state: (state != "all").then_some(state), queue: q.queue, job_type: q.job_type };
    let (items, total) = p.queue.list(&filter, limit, offset).await?;
    Ok(Json(Page { items, total, limit, offset }))
}

/// One job.
#[utoipa::path(get, path = "/api/v1/queue/jobs/{id}", tag = "platform",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody)))]
async fn get_job(State(p): State<Platform>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    p.queue.get(id).await?.map(Json).ok_or_else(|| ApiError::not_found("job not found"))
}

/// Queues a failed job again with fresh attempts.
#[utoipa::path(post, path = "/api/v1/queue/jobs/{id}/retry", tag = "platform",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, description = "job is not failed", body = ErrorBody)))]
async fn retry_job(State(p): State<Platform>, Path(id): Path<i64>) -> ApiResult<Json<JobView>> {
    let Some(job) = p.queue.get(id).await? else {
        return Err(ApiError::not_found("job not found"));
    };
    if !p.queue.retry(id).await? {
        return Err(ApiError::conflict(format!(
            "job {id} is {}, only failed jobs can be retried",
            job.state
        )));
    }
    tracing::info!(job.id = id, "queue.retry_requested");
    p.queue.get(id).await?.map(Json).ok_or_else(|| ApiError::not_found("job not found"))
}

/// Deletes a job that no worker is running (queued, failed or succeeded).
#[utoipa::path(delete, path = "/api/v1/queue/jobs/{id}", tag = "platform",
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 204, description = "removed"), (status = 404, body = ErrorBody), (status = 409, description = "job is running", body = ErrorBody)))]
async fn remove_job(State(p): State<Platform>, Path(id): Path<i64>) -> ApiResult<axum::http::StatusCode> {
    match p.queue.remove(id).await? {
        Removal::Removed => {
            tracing::info!(job.id = id, "queue.job_removed");
            Ok(axum::http::StatusCode::NO_CONTENT)
        }
        Removal::Running => {
            Err(ApiError::conflict(format!("job {id} is running; it can be removed once it ends")))
        }
        Removal::NotFound => Err(ApiError::not_found("job not found")),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RetryAllQuery {
    /// Must be `true`: requeuing every failed job is confirmed explicitly.
    confirm: Option<bool>,
}

/// How many failed jobs were queued again.
#[derive(Serialize, ToSchema)]
struct Retried {
    retried: u64,
}

/// Queues every failed job again. Needs `confirm=true`; without it the answer is 422 with the
/// number of jobs it would requeue.
#[utoipa::path(post, path = "/api/v1/queue/failed/retry", tag = "platform", params(RetryAllQuery),
    responses((status = 200, body = Retried), (status = 422, description = "not confirmed", body = ErrorBody)))]
async fn retry_failed_jobs(
    State(p): State<Platform>,
    ApiQuery(q): ApiQuery<RetryAllQuery>,
) -> ApiResult<Json<Retried>> {
    if q.confirm != Some(true) {
        let failed: i64 = p.queue.counts().await?.iter().map(|c| c.failed).sum();
        return Err(ApiError::validation(vec![FieldError::new(
            "confirm",
            format!("this requeues {failed} failed job(s); repeat with confirm=true"),
        )]));
    }
    let retried = p.queue.retry_all_failed().await?;
    tracing::info!(retried, "queue.retry_all_requested");
    Ok(Json(Retried { retried }))
}

/// Worker processes and what they run.
#[derive(Serialize, ToSchema)]
struct Workers {
    workers: Vec<WorkerView>,
}

/// Worker processes seen in the last hour (alive or not) and the jobs each is running.
#[utoipa::path(get, path = "/api/v1/queue/workers", tag = "platform", responses((status = 200, body = Workers)))]
async fn list_workers(State(p): State<Platform>) -> ApiResult<Json<Workers>> {
    Ok(Json(Workers { workers: p.queue.workers().await? }))
}

/// The job dashboard page (it signs in through the API; the shell holds no data).
#[utoipa::path(get, path = "/rq", tag = "platform", responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn dashboard_page() -> Html<&'static str> {
    Html(include_str!("../../ui/rq.html"))
}
