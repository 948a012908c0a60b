//! Stored reports, their generation and backfill, the scheduler's status, and the page.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, RequestContext, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::error::CallsError;
use crate::service::{CallsService, RunType};
use crate::store::backfills::Backfill;
use crate::store::reports::StoredReport;

/// An organisation, and for lists a range and a count.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Organisation; default the configured one.
    org_id: Option<String>,
    /// Newest reports listed (1 to 366, default 30), when no range is given.
    limit: Option<i64>,
    /// First day listed, `YYYY-MM-DD` (with `end_date`).
    start_date: Option<String>,
    /// Last day listed, inclusive.
    end_date: Option<String>,
}

fn parse_day(field: &str, text: &str) -> Result<NaiveDate, CallsError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CallsError::invalid(field, "must be YYYY-MM-DD"))
}

/// Stored reports with their summary KPIs, newest first: `{org_id, org_name, count, reports}`.
#[utoipa::path(get, path = "/api/reports", tag = "calls", params(ReportsQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_reports(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<Value>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let limit = q.limit.unwrap_or(30);
    if !(1..=366).contains(&limit) {
        return Err(CallsError::invalid("limit", "1 to 366").into());
    }
    let range = match (q.start_date.as_deref(), q.end_date.as_deref()) {
        (Some(a), Some(b)) => Some((parse_day("start_date", a)?, parse_day("end_date", b)?)),
        _ => None,
    };
    let reports = s.reports(&org, range, limit).await?;
    Ok(Json(json!({"org_id": org.org_id, "org_name": org.name, "count": reports.len(), "reports": reports})))
}

/// Whose reports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// Organisation; default the configured one.
    org_id: Option<String>,
}

/// The days with a stored report: `{org_id, count, date_range, dates}`.
#[utoipa::path(get, path = "/api/reports/dates", tag = "calls", params(OrgQuery), responses((status = 200, body = Object)))]
async fn report_dates(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<Value>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let dates = s.report_dates(&org).await?;
    let range = match (dates.first(), dates.last()) {
        (Some(first), Some(last)) => json!({"start": first, "end": last}),
        _ => Value::Null,
    };
    Ok(Json(json!({"org_id": org.org_id, "count": dates.len(), "date_range": range, "dates": dates})))
}

/// The newest stored report (404 "No reports found").
#[utoipa::path(get, path = "/api/reports/latest", tag = "calls", params(OrgQuery),
    responses((status = 200, body = StoredReport), (status = 404, body = ErrorBody)))]
async fn latest_report(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<StoredReport>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    Ok(Json(s.stored_report(&org, None).await?))
}

/// The stored report of a day (404 "No report found for …").
#[utoipa::path(get, path = "/api/reports/{report_date}", tag = "calls",
    params(("report_date" = String, Path, description = "YYYY-MM-DD"), OrgQuery),
    responses((status = 200, body = StoredReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report_of_day(
    State(s): State<CallsService>,
    Path(report_date): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<StoredReport>> {
    let date = parse_day("report_date", &report_date)?;
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    Ok(Json(s.stored_report(&org, Some(date)).await?))
}

/// What to generate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// One organisation; absent: every active one.
    #[serde(default)]
    org_id: Option<String>,
    /// `YYYY-MM-DD`; absent: yesterday in each organisation's zone.
    #[serde(default)]
    date: Option<String>,
}

/// Generate and store reports now (a stored one is kept): one organisation's
/// `{success, org_id, date, report_id}`, or every active one's `{success, results, date}`.
#[utoipa::path(post, path = "/api/reports/generate", tag = "calls", request_body = GenerateRequest,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn generate_reports(
    State(s): State<CallsService>,
    body: Option<ApiJson<GenerateRequest>>,
) -> ApiResult<Json<Value>> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let date = body.date.as_deref().map(|d| parse_day("date", d)).transpose()?;
    let shown = date.map_or_else(|| json!("yesterday"), |d| json!(d.format("%Y-%m-%d").to_string()));
    let started = sightline_platform::db::now_ms();
    if let Some(org_id) = body.org_id.as_deref() {
        let org = s.org(org_id).await?;
        let day = match date {
            Some(d) => d,
            None => s.day(&org, None, None)?.1.start.date_naive(),
        };
        s.check_days(&org, "date", day, day)?;
        let outcome = s.generate_report(&org, day, false).await;
        let (status, error) = match &outcome {
            Ok(_) => ("success", None),
            Err(e) => ("error", Some(e.to_string())),
        };
        s.record_run(
            RunType::Manual,
            status,
            Some(&org.org_id),
            started,
            i64::from(matches!(outcome, Ok((_, true)))),
            error.as_deref(),
        )
        .await?;
        return Ok(Json(match outcome {
            Ok((id, _)) => json!({"success": true, "org_id": org.org_id, "date": shown, "report_id": id}),
            Err(e) => json!({"success": false, "org_id": org.org_id, "date": shown, "error": e.to_string()}),
        }));
    }
    let mut results = Vec::new();
    let (mut generated, mut failed) = (0, 0);
    for org in s.list_orgs(true).await? {
        let day = match date {
            Some(d) => d,
            None => s.day(&org, None, None)?.1.start.date_naive(),
        };
        let outcome = match s.check_days(&org, "date", day, day) {
            Ok(()) => s.generate_report(&org, day, false).await,
            Err(e) => Err(e),
        };
        generated += i64::from(matches!(outcome, Ok((_, true))));
        failed += i64::from(outcome.is_err());
        results.push(json!({"org_id": org.org_id, "org_name": org.name, "success": outcome.is_ok()}));
    }
    let status = match (failed, results.len()) {
        (0, _) => "success",
        (f, n) if f as usize == n => "error",
        _ => "partial",
    };
    s.record_run(RunType::Manual, status, None, started, generated, None).await?;
    Ok(Json(json!({"success": failed == 0, "results": results, "date": shown})))
}

/// The report scheduler: enabled, each organisation's schedule and next run, recent runs.
#[utoipa::path(get, path = "/api/scheduler/status", tag = "calls", responses((status = 200, body = Object)))]
async fn scheduler_status(State(s): State<CallsService>) -> ApiResult<Json<Value>> {
    Ok(Json(s.scheduler_status().await?))
}

/// Whether report generation is healthy: `{healthy, issues, scheduler, database, recent_runs}`.
#[utoipa::path(get, path = "/api/scheduler/health", tag = "calls", responses((status = 200, body = Object)))]
async fn scheduler_health(State(s): State<CallsService>) -> ApiResult<Json<Value>> {
    Ok(Json(s.scheduler_health().await?))
}

/// Days a backfill makes within the request (well inside its time limit on ClickHouse too); a
/// longer one runs as a job to follow.
const BACKFILL_NOW_MAX_DAYS: i64 = 7;

/// A backfill.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// Organisation; default the configured one.
    #[serde(default)]
    org_id: Option<String>,
    /// First day, `YYYY-MM-DD`.
    start_date: String,
    /// Last day, inclusive.
    end_date: String,
    /// Make stored reports again.
    #[serde(default)]
    force: bool,
}

/// Make the reports of a range of days that are over (stored ones kept unless `force`). Up to 7
/// days: made now, answered in the original's shape `{success, org_id, start_date, end_date, total_days,
/// successful, failed, results}`. Longer: `202` with the backfill job to follow at
/// `/api/reports/backfills/{id}`; it resumes where it stopped after a crash.
#[utoipa::path(post, path = "/api/reports/backfill", tag = "calls", request_body = BackfillRequest,
    responses((status = 200, body = Object), (status = 202, body = Backfill), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn backfill_reports(
    context: RequestContext,
    State(s): State<CallsService>,
    ApiJson(body): ApiJson<BackfillRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let start = parse_day("start_date", &body.start_date)?;
    let end = parse_day("end_date", &body.end_date)?;
    let org = s.org_or_default(body.org_id.as_deref()).await?;
    if start > end {
        let answer = json!({"success": false, "error": "start_date must be before end_date"});
        return Ok(Json(answer).into_response());
    }
    s.check_days(&org, "end_date", start, end)?;
    if (end - start).num_days() < BACKFILL_NOW_MAX_DAYS {
        return Ok(Json(s.backfill_now(&org, start, end, body.force).await?).into_response());
    }
    let backfill = s.start_backfill(&context, &org, start, end, body.force).await?;
    Ok((StatusCode::ACCEPTED, Json(backfill)).into_response())
}

/// A backfill and its progress (days done of days total).
#[utoipa::path(get, path = "/api/reports/backfills/{id}", tag = "calls",
    params(("id" = String, Path, description = "Backfill id")),
    responses((status = 200, body = Backfill), (status = 404, body = ErrorBody)))]
async fn get_backfill(State(s): State<CallsService>, Path(id): Path<String>) -> ApiResult<Json<Backfill>> {
    Ok(Json(s.backfill(&id).await?))
}

/// The reports dashboard: KPI tiles, breakdowns and trends per organisation and day.
#[utoipa::path(get, path = "/ui/calls", tag = "calls",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn reports_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../../ui/reports.html"))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<CallsService>) -> SecureRouter<CallsService> {
    let read = Access::Permission("calls:read");
    router
        .route(read, routes!(list_reports))
        .route(read, routes!(report_dates))
        .route(read, routes!(latest_report))
        .route(read, routes!(report_of_day))
        .route(Access::Permission("calls:manage"), routes!(generate_reports))
        .route(Access::Permission("calls:manage"), routes!(backfill_reports))
        .route(read, routes!(get_backfill))
        .route(Access::Public, routes!(reports_page))
        .route(read, routes!(scheduler_status))
        .route(read, routes!(scheduler_health))
}
