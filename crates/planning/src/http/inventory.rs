//! `/api/v1/inventory` and the supply gap analysis.

use axum::extract::{Path, State};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use sightline_platform::error::ErrorBody;
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, ApiResult, RequestContext, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::path_id;
use crate::model::Inventory;
use crate::page::{Page, PageQuery, PageRequest};
use crate::service::analytics::{ServiceLevelAnalysis, ServiceLevelRequest};
use crate::service::inventory::{InventoryAlerts, InventoryHealth, InventoryUpdate, PolicyOverride};
use crate::service::supply::GapAnalysisItem;
use crate::service::PlanningService;
use crate::store::inventory::InventoryFilter;

/// Inventory filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InventoryQuery {
    /// The product (0: any).
    product_id: Option<i64>,
    /// Exact location.
    location: Option<String>,
    /// Exact status.
    status: Option<String>,
    /// Page, from 1.
    page: Option<i64>,
    /// Items a page, 1–100 (20).
    page_size: Option<i64>,
}

/// Inventory positions, a page at a time (by id), with days of supply and valuation.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "planning", params(InventoryQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn list_inventory(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<InventoryQuery>,
) -> ApiResult<Json<Page<Inventory>>> {
    let page = PageRequest::parse(PageQuery { page: q.page, page_size: q.page_size })?;
    let filter = InventoryFilter {
        product_id: q.product_id.filter(|v| *v != 0),
        location: q.location.filter(|v| !v.is_empty()),
        statuses: q.status.filter(|v| !v.is_empty()).into_iter().collect(),
    };
    Ok(Json(s.inventory(&filter, page).await?))
}

/// Positions by status, percents and the total value.
#[utoipa::path(get, path = "/api/v1/inventory/health", tag = "planning",
    responses((status = 200, body = InventoryHealth)))]
async fn inventory_health(State(s): State<PlanningService>) -> ApiResult<Json<InventoryHealth>> {
    Ok(Json(s.inventory_health().await?))
}

/// Positions that are critical, low or in excess.
#[utoipa::path(get, path = "/api/v1/inventory/alerts", tag = "planning",
    responses((status = 200, body = InventoryAlerts)))]
async fn inventory_alerts(State(s): State<PlanningService>) -> ApiResult<Json<InventoryAlerts>> {
    Ok(Json(s.inventory_alerts().await?))
}

/// One position.
#[utoipa::path(get, path = "/api/v1/inventory/{inventory_id}", tag = "planning",
    params(("inventory_id" = i64, Path, description = "Position id")),
    responses((status = 200, body = Inventory), (status = 404, body = ErrorBody)))]
async fn get_inventory(
    State(s): State<PlanningService>,
    Path(id): Path<String>,
) -> ApiResult<Json<Inventory>> {
    Ok(Json(s.inventory_item(path_id(&id, "inventory_id")?).await?))
}

/// Changes the fields given; the status follows the original's rule.
#[utoipa::path(put, path = "/api/v1/inventory/{inventory_id}", tag = "planning",
    params(("inventory_id" = i64, Path, description = "Position id")), request_body = InventoryUpdate,
    responses((status = 200, body = Inventory), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_inventory(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<InventoryUpdate>,
) -> ApiResult<Json<Inventory>> {
    Ok(Json(s.update_inventory(&context, path_id(&id, "inventory_id")?, body).await?))
}

/// Sets a position's safety stock, reorder point or maximum by hand, with a reason.
#[utoipa::path(put, path = "/api/v1/inventory/policies/{inventory_id}/override", tag = "planning",
    params(("inventory_id" = i64, Path, description = "Position id")), request_body = PolicyOverride,
    responses((status = 200, body = Inventory), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn override_policy(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PolicyOverride>,
) -> ApiResult<Json<Inventory>> {
    Ok(Json(s.override_policy(&context, path_id(&id, "inventory_id")?, body).await?))
}

/// Demand over the lead time of a position, the safety stock and reorder point a target
/// service level needs (analytical, or Monte Carlo), and what the current reorder point gives.
#[utoipa::path(post, path = "/api/v1/inventory/analytics/service-level", tag = "planning",
    request_body = ServiceLevelRequest,
    responses((status = 200, body = ServiceLevelAnalysis), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn service_level(
    State(s): State<PlanningService>,
    ApiJson(body): ApiJson<ServiceLevelRequest>,
) -> ApiResult<Json<ServiceLevelAnalysis>> {
    Ok(Json(s.service_level(body).await?))
}

/// Gap analysis query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GapQuery {
    /// The period (default: this month).
    period: Option<NaiveDate>,
    /// Only this product.
    product_id: Option<i64>,
}

/// Each demand plan of the period against its product's supply plan and available stock (a
/// bare array).
#[utoipa::path(get, path = "/api/v1/supply/gap-analysis", tag = "planning", params(GapQuery),
    responses((status = 200, body = Vec<GapAnalysisItem>), (status = 422, body = ErrorBody)))]
async fn gap_analysis(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<GapQuery>,
) -> ApiResult<Json<Vec<GapAnalysisItem>>> {
    Ok(Json(s.gap_analysis(q.period, q.product_id.filter(|v| *v != 0)).await?))
}

/// Adds the inventory routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let manage = Access::Permission("inventory:manage");
    router
        .route(Access::Authenticated, routes!(list_inventory))
        .route(Access::Authenticated, routes!(inventory_health))
        .route(Access::Authenticated, routes!(inventory_alerts))
        .route(Access::Authenticated, routes!(get_inventory))
        .route(manage, routes!(update_inventory))
        .route(manage, routes!(override_policy))
        .route(Access::Authenticated, routes!(service_level))
        .route(Access::Authenticated, routes!(gap_analysis))
}
