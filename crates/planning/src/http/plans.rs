//! `/api/v1/demand/plans` and `/api/v1/supply/plans`.

use axum::body::Bytes;
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

use super::{message, optional_body, path_id};
use crate::model::{DemandPlan, SupplyPlan};
use crate::page::{Page, PageQuery, PageRequest};
use crate::service::demand::{
    AdjustmentRequest, ApprovalRequest, DemandPlanCreate, DemandPlanUpdate, FromForecast,
};
use crate::service::supply::{SupplyPlanCreate, SupplyPlanUpdate};
use crate::service::PlanningService;
use crate::store::demand::DemandFilter;
use crate::store::supply::SupplyFilter;

fn text(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty())
}

/// Demand plan filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DemandQuery {
    /// The product (0: any).
    product_id: Option<i64>,
    /// Exact region.
    region: Option<String>,
    /// Exact channel.
    channel: Option<String>,
    /// Exact status.
    status: Option<String>,
    /// Periods from (inclusive).
    period_from: Option<NaiveDate>,
    /// Periods to (inclusive).
    period_to: Option<NaiveDate>,
    /// Page, from 1.
    page: Option<i64>,
    /// Items a page, 1–100 (20).
    page_size: Option<i64>,
}

/// Demand plans, newest period first.
#[utoipa::path(get, path = "/api/v1/demand/plans", tag = "planning", params(DemandQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn list_demand_plans(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<DemandQuery>,
) -> ApiResult<Json<Page<DemandPlan>>> {
    let page = PageRequest::parse(PageQuery { page: q.page, page_size: q.page_size })?;
    let filter = DemandFilter {
        product_id: q.product_id.filter(|v| *v != 0),
        region: text(q.region),
        channel: text(q.channel),
        status: text(q.status),
        period_from: q.period_from,
        period_to: q.period_to,
    };
    Ok(Json(s.demand_plans(&filter, page).await?))
}

/// Creates a draft demand plan, version 1 (demand planners).
#[utoipa::path(post, path = "/api/v1/demand/plans", tag = "planning", request_body = DemandPlanCreate,
    responses((status = 201, body = DemandPlan), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<DemandPlanCreate>,
) -> ApiResult<(StatusCode, Json<DemandPlan>)> {
    Ok((StatusCode::CREATED, Json(s.create_demand_plan(&context, body).await?)))
}

/// One demand plan.
#[utoipa::path(get, path = "/api/v1/demand/plans/{plan_id}", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = DemandPlan), (status = 404, body = ErrorBody)))]
async fn get_demand_plan(
    State(s): State<PlanningService>,
    Path(id): Path<String>,
) -> ApiResult<Json<DemandPlan>> {
    Ok(Json(s.demand_plan(path_id(&id, "plan_id")?).await?))
}

/// Changes the fields given: a new version (not on a locked plan).
#[utoipa::path(put, path = "/api/v1/demand/plans/{plan_id}", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")), request_body = DemandPlanUpdate,
    responses((status = 200, body = DemandPlan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DemandPlanUpdate>,
) -> ApiResult<Json<DemandPlan>> {
    Ok(Json(s.update_demand_plan(&context, path_id(&id, "plan_id")?, body).await?))
}

/// Sets the adjusted quantity: a new version.
#[utoipa::path(post, path = "/api/v1/demand/plans/{plan_id}/adjust", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")), request_body = AdjustmentRequest,
    responses((status = 200, body = DemandPlan), (status = 404, body = ErrorBody)))]
async fn adjust_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AdjustmentRequest>,
) -> ApiResult<Json<DemandPlan>> {
    Ok(Json(s.adjust_demand_plan(&context, path_id(&id, "plan_id")?, body).await?))
}

/// Submits a draft (400 `INVALID_STATE_TRANSITION` from any other state).
#[utoipa::path(post, path = "/api/v1/demand/plans/{plan_id}/submit", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = DemandPlan), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn submit_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<DemandPlan>> {
    Ok(Json(s.submit_demand_plan(&context, path_id(&id, "plan_id")?).await?))
}

/// Approves (approvers); `{comments}` is appended to the notes. The body may be left out.
#[utoipa::path(post, path = "/api/v1/demand/plans/{plan_id}/approve", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")), request_body = ApprovalRequest,
    responses((status = 200, body = DemandPlan), (status = 404, body = ErrorBody)))]
async fn approve_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<DemandPlan>> {
    let id = path_id(&id, "plan_id")?;
    Ok(Json(s.approve_demand_plan(&context, id, optional_body(&body)?).await?))
}

/// Sends back to draft (approvers); `{comments}` is appended to the notes.
#[utoipa::path(post, path = "/api/v1/demand/plans/{plan_id}/reject", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")), request_body = ApprovalRequest,
    responses((status = 200, body = DemandPlan), (status = 404, body = ErrorBody)))]
async fn reject_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<DemandPlan>> {
    let id = path_id(&id, "plan_id")?;
    Ok(Json(s.reject_demand_plan(&context, id, optional_body(&body)?).await?))
}

/// Takes the product's stored forecast into demand plans: a new draft version per forecast
/// month, its forecast quantity netted against what already sold (demand planners).
#[utoipa::path(post, path = "/api/v1/demand/plans/from-forecast", tag = "planning", request_body = FromForecast,
    responses((status = 201, body = Vec<DemandPlan>), (status = 422, body = ErrorBody)))]
async fn plans_from_forecast(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<FromForecast>,
) -> ApiResult<(StatusCode, Json<Vec<DemandPlan>>)> {
    Ok((StatusCode::CREATED, Json(s.plans_from_forecast(&context, body).await?)))
}

/// Deletes a plan that is neither approved nor locked.
#[utoipa::path(delete, path = "/api/v1/demand/plans/{plan_id}", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = Object), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_demand_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.delete_demand_plan(&context, path_id(&id, "plan_id")?).await?;
    Ok(message("Demand plan deleted successfully"))
}

/// Supply plan filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SupplyQuery {
    /// The product (0: any).
    product_id: Option<i64>,
    /// Exact location.
    location: Option<String>,
    /// Exact status.
    status: Option<String>,
    /// Periods from (inclusive).
    period_from: Option<NaiveDate>,
    /// Periods to (inclusive).
    period_to: Option<NaiveDate>,
    /// Page, from 1.
    page: Option<i64>,
    /// Items a page, 1–100 (20).
    page_size: Option<i64>,
}

/// Supply plans, newest period first.
#[utoipa::path(get, path = "/api/v1/supply/plans", tag = "planning", params(SupplyQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn list_supply_plans(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<SupplyQuery>,
) -> ApiResult<Json<Page<SupplyPlan>>> {
    let page = PageRequest::parse(PageQuery { page: q.page, page_size: q.page_size })?;
    let filter = SupplyFilter {
        product_id: q.product_id.filter(|v| *v != 0),
        location: text(q.location),
        status: text(q.status),
        period_from: q.period_from,
        period_to: q.period_to,
    };
    Ok(Json(s.supply_plans(&filter, page).await?))
}

/// Creates a draft supply plan, version 1 (supply planners).
#[utoipa::path(post, path = "/api/v1/supply/plans", tag = "planning", request_body = SupplyPlanCreate,
    responses((status = 201, body = SupplyPlan), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_supply_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<SupplyPlanCreate>,
) -> ApiResult<(StatusCode, Json<SupplyPlan>)> {
    Ok((StatusCode::CREATED, Json(s.create_supply_plan(&context, body).await?)))
}

/// One supply plan.
#[utoipa::path(get, path = "/api/v1/supply/plans/{plan_id}", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = SupplyPlan), (status = 404, body = ErrorBody)))]
async fn get_supply_plan(
    State(s): State<PlanningService>,
    Path(id): Path<String>,
) -> ApiResult<Json<SupplyPlan>> {
    Ok(Json(s.supply_plan(path_id(&id, "plan_id")?).await?))
}

/// Changes the fields given: a new version.
#[utoipa::path(put, path = "/api/v1/supply/plans/{plan_id}", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")), request_body = SupplyPlanUpdate,
    responses((status = 200, body = SupplyPlan), (status = 404, body = ErrorBody)))]
async fn update_supply_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SupplyPlanUpdate>,
) -> ApiResult<Json<SupplyPlan>> {
    Ok(Json(s.update_supply_plan(&context, path_id(&id, "plan_id")?, body).await?))
}

/// Submits for approval.
#[utoipa::path(post, path = "/api/v1/supply/plans/{plan_id}/submit", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = SupplyPlan), (status = 404, body = ErrorBody)))]
async fn submit_supply_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<SupplyPlan>> {
    Ok(Json(s.set_supply_status(&context, path_id(&id, "plan_id")?, "submitted").await?))
}

/// Approves (approvers); a body is ignored.
#[utoipa::path(post, path = "/api/v1/supply/plans/{plan_id}/approve", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = SupplyPlan), (status = 404, body = ErrorBody)))]
async fn approve_supply_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<SupplyPlan>> {
    Ok(Json(s.set_supply_status(&context, path_id(&id, "plan_id")?, "approved").await?))
}

/// Sends back to draft (approvers; the original's frontend calls it, the original lacks it).
#[utoipa::path(post, path = "/api/v1/supply/plans/{plan_id}/reject", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = SupplyPlan), (status = 404, body = ErrorBody)))]
async fn reject_supply_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<SupplyPlan>> {
    Ok(Json(s.set_supply_status(&context, path_id(&id, "plan_id")?, "draft").await?))
}

/// Deletes a plan.
#[utoipa::path(delete, path = "/api/v1/supply/plans/{plan_id}", tag = "planning",
    params(("plan_id" = i64, Path, description = "Plan id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn delete_supply_plan(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.delete_supply_plan(&context, path_id(&id, "plan_id")?).await?;
    Ok(message("Supply plan deleted successfully"))
}

/// Adds the plan routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let (demand, demand_approve) = (Access::Permission("demand:plan"), Access::Permission("demand:approve"));
    let (supply, supply_approve) = (Access::Permission("supply:plan"), Access::Permission("supply:approve"));
    router
        .route(Access::Authenticated, routes!(list_demand_plans))
        .route(demand, routes!(create_demand_plan))
        .route(demand, routes!(plans_from_forecast))
        .route(Access::Authenticated, routes!(get_demand_plan))
        .route(demand, routes!(update_demand_plan))
        .route(demand, routes!(adjust_demand_plan))
        .route(demand, routes!(submit_demand_plan))
        .route(demand_approve, routes!(approve_demand_plan))
        .route(demand_approve, routes!(reject_demand_plan))
        .route(demand, routes!(delete_demand_plan))
        .route(Access::Authenticated, routes!(list_supply_plans))
        .route(supply, routes!(create_supply_plan))
        .route(Access::Authenticated, routes!(get_supply_plan))
        .route(supply, routes!(update_supply_plan))
        .route(supply, routes!(submit_supply_plan))
        .route(supply_approve, routes!(approve_supply_plan))
        .route(supply_approve, routes!(reject_supply_plan))
        .route(supply, routes!(delete_supply_plan))
}
