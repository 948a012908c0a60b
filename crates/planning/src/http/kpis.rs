//! `/api/v1/kpi` and `/api/v1/dashboard/{summary,alerts}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;
use sightline_platform::error::ErrorBody;
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, ApiResult, RequestContext, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::{message, path_id};
use crate::model::KpiMetric;
use crate::service::kpis::{KpiAlert, KpiCreate, KpiDashboard, KpiTarget, KpiUpdate};
use crate::service::PlanningService;
use crate::store::kpis::KpiFilter;

/// Which metrics.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// `demand`, `supply`, `inventory`, `service` or `financial`.
    category: Option<String>,
    /// From this month (YYYY-MM-DD).
    period_from: Option<NaiveDate>,
    /// To this month.
    period_to: Option<NaiveDate>,
}

/// The metrics, latest month first.
#[utoipa::path(get, path = "/api/v1/kpi/metrics", tag = "planning", params(KpiQuery),
    responses((status = 200, body = Vec<KpiMetric>), (status = 422, body = ErrorBody)))]
async fn list_kpis(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<KpiQuery>,
) -> ApiResult<Json<Vec<KpiMetric>>> {
    let filter = KpiFilter {
        category: q.category.filter(|c| !c.is_empty()),
        period_from: q.period_from,
        period_to: q.period_to,
    };
    Ok(Json(s.kpis(&filter).await?))
}

/// Records a metric's value for a month (executives); variance and trend are computed; 409 when
/// the month has one.
#[utoipa::path(post, path = "/api/v1/kpi/metrics", tag = "planning", request_body = KpiCreate,
    responses((status = 201, body = KpiMetric), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_kpi(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<KpiCreate>,
) -> ApiResult<(StatusCode, Json<KpiMetric>)> {
    Ok((StatusCode::CREATED, Json(s.create_kpi(&context, body).await?)))
}

/// One metric.
#[utoipa::path(get, path = "/api/v1/kpi/metrics/{metric_id}", tag = "planning",
    params(("metric_id" = i64, Path, description = "Metric id")),
    responses((status = 200, body = KpiMetric), (status = 404, body = ErrorBody)))]
async fn get_kpi(State(s): State<PlanningService>, Path(id): Path<String>) -> ApiResult<Json<KpiMetric>> {
    Ok(Json(s.kpi(path_id(&id, "metric_id")?).await?))
}

/// Changes the fields given (executives).
#[utoipa::path(put, path = "/api/v1/kpi/metrics/{metric_id}", tag = "planning",
    params(("metric_id" = i64, Path, description = "Metric id")), request_body = KpiUpdate,
    responses((status = 200, body = KpiMetric), (status = 404, body = ErrorBody)))]
async fn update_kpi(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<KpiUpdate>,
) -> ApiResult<Json<KpiMetric>> {
    Ok(Json(s.update_kpi(&context, path_id(&id, "metric_id")?, body).await?))
}

/// Deletes a metric (executives).
#[utoipa::path(delete, path = "/api/v1/kpi/metrics/{metric_id}", tag = "planning",
    params(("metric_id" = i64, Path, description = "Metric id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn delete_kpi(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.delete_kpi(&context, path_id(&id, "metric_id")?).await?;
    Ok(message("KPI metric deleted successfully"))
}

/// Each metric's latest month, by category.
#[utoipa::path(get, path = "/api/v1/kpi/dashboard", tag = "planning", responses((status = 200, body = KpiDashboard)))]
async fn kpi_dashboard(State(s): State<PlanningService>) -> ApiResult<Json<KpiDashboard>> {
    Ok(Json(s.kpi_dashboard().await?))
}

/// Each metric's latest month more than 10 % off target (critical past 20 %).
#[utoipa::path(get, path = "/api/v1/kpi/alerts", tag = "planning", responses((status = 200, body = Vec<KpiAlert>)))]
async fn kpi_alerts(State(s): State<PlanningService>) -> ApiResult<Json<Vec<KpiAlert>>> {
    Ok(Json(s.kpi_alerts().await?))
}

/// Sets the target of a metric's latest month (executives).
#[utoipa::path(post, path = "/api/v1/kpi/targets", tag = "planning", request_body = KpiTarget,
    responses((status = 200, body = KpiMetric), (status = 404, body = ErrorBody)))]
async fn set_kpi_target(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<KpiTarget>,
) -> ApiResult<Json<KpiMetric>> {
    Ok(Json(s.set_kpi_target(&context, body).await?))
}

/// The month to compute.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ComputeQuery {
    /// The month (YYYY-MM-DD); the latest planned month when left out.
    period: Option<NaiveDate>,
}

/// Computes the month's KPIs from the plans, actuals and stock and records them (executives).
#[utoipa::path(post, path = "/api/v1/kpi/compute", tag = "planning", params(ComputeQuery),
    responses((status = 200, body = Vec<KpiMetric>), (status = 422, body = ErrorBody)))]
async fn compute_kpis(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiQuery(q): ApiQuery<ComputeQuery>,
) -> ApiResult<Json<Vec<KpiMetric>>> {
    let period = match q.period {
        Some(p) => p,
        None => s.latest_planned_period().await?,
    };
    Ok(Json(s.compute_kpis(&context, period).await?))
}

/// Demand plans by status, inventory health, the Forecast Accuracy and OTIF KPIs, the active cycle.
#[utoipa::path(get, path = "/api/v1/dashboard/summary", tag = "planning", responses((status = 200, body = Object)))]
async fn dashboard_summary(State(s): State<PlanningService>) -> ApiResult<Json<Value>> {
    Ok(Json(s.dashboard_summary().await?))
}

/// Critical and low positions and KPIs more than 15 % off target (critical past 25 %).
#[utoipa::path(get, path = "/api/v1/dashboard/alerts", tag = "planning", responses((status = 200, body = Object)))]
async fn dashboard_alerts(State(s): State<PlanningService>) -> ApiResult<Json<Value>> {
    Ok(Json(s.dashboard_alerts().await?))
}

/// Adds the KPI and dashboard routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let manage = Access::Permission("kpis:manage");
    router
        .route(Access::Authenticated, routes!(list_kpis))
        .route(manage, routes!(create_kpi))
        .route(Access::Authenticated, routes!(get_kpi))
        .route(manage, routes!(update_kpi))
        .route(manage, routes!(delete_kpi))
        .route(Access::Authenticated, routes!(kpi_dashboard))
        .route(Access::Authenticated, routes!(kpi_alerts))
        .route(manage, routes!(set_kpi_target))
        .route(manage, routes!(compute_kpis))
        .route(Access::Authenticated, routes!(dashboard_summary))
        .route(Access::Authenticated, routes!(dashboard_alerts))
}
