//! `/api/v1/scenarios`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;
use sightline_platform::error::{ErrorBody, FieldError};
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, ApiError, ApiResult, RequestContext, SecureRouter};
use utoipa_axum::routes;

use super::{message, path_id};
use crate::model::{Scenario, ScenarioLine};
use crate::page::{Page, PageQuery, PageRequest};
use crate::service::scenarios::{Promotion, ScenarioCreate, ScenarioUpdate};
use crate::service::PlanningService;

/// Scenarios, newest first.
#[utoipa::path(get, path = "/api/v1/scenarios", tag = "planning", params(PageQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn list_scenarios(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<Scenario>>> {
    let page = PageRequest::parse(q)?;
    Ok(Json(s.scenarios(page).await?))
}

/// Creates a draft scenario (planners); its parameters are checked and its adjustments' products
/// must exist.
#[utoipa::path(post, path = "/api/v1/scenarios", tag = "planning", request_body = ScenarioCreate,
    responses((status = 201, body = Scenario), (status = 422, body = ErrorBody)))]
async fn create_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<ScenarioCreate>,
) -> ApiResult<(StatusCode, Json<Scenario>)> {
    Ok((StatusCode::CREATED, Json(s.create_scenario(&context, body).await?)))
}

/// One scenario.
#[utoipa::path(get, path = "/api/v1/scenarios/{scenario_id}", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody)))]
async fn get_scenario(State(s): State<PlanningService>, Path(id): Path<String>) -> ApiResult<Json<Scenario>> {
    Ok(Json(s.scenario(path_id(&id, "scenario_id")?).await?))
}

/// Changes the fields given (planners).
#[utoipa::path(put, path = "/api/v1/scenarios/{scenario_id}", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")), request_body = ScenarioUpdate,
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ScenarioUpdate>,
) -> ApiResult<Json<Scenario>> {
    Ok(Json(s.update_scenario(&context, path_id(&id, "scenario_id")?, body).await?))
}

/// Deletes a scenario, whatever its status (planners).
#[utoipa::path(delete, path = "/api/v1/scenarios/{scenario_id}", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn delete_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.delete_scenario(&context, path_id(&id, "scenario_id")?).await?;
    Ok(message("Scenario deleted successfully"))
}

/// Computes the scenario over its month's plans and stock (planners); status `completed`.
#[utoipa::path(post, path = "/api/v1/scenarios/{scenario_id}/run", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody)))]
async fn run_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Scenario>> {
    Ok(Json(s.run_scenario(&context, path_id(&id, "scenario_id")?).await?))
}

/// Submits for approval (planners).
#[utoipa::path(post, path = "/api/v1/scenarios/{scenario_id}/submit", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody)))]
async fn submit_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Scenario>> {
    Ok(Json(s.set_scenario_status(&context, path_id(&id, "scenario_id")?, "submitted").await?))
}

/// Approves (executives); a body is ignored.
#[utoipa::path(post, path = "/api/v1/scenarios/{scenario_id}/approve", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody)))]
async fn approve_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Scenario>> {
    Ok(Json(s.set_scenario_status(&context, path_id(&id, "scenario_id")?, "approved").await?))
}

/// Rejects (executives); a body is ignored.
#[utoipa::path(post, path = "/api/v1/scenarios/{scenario_id}/reject", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Scenario), (status = 404, body = ErrorBody)))]
async fn reject_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Scenario>> {
    Ok(Json(s.set_scenario_status(&context, path_id(&id, "scenario_id")?, "rejected").await?))
}

/// Takes an approved, run scenario into new draft demand and supply plan versions, once
/// (planners): 400 when it is not approved or not run, 409 when already promoted.
#[utoipa::path(post, path = "/api/v1/scenarios/{scenario_id}/promote", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Promotion), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn promote_scenario(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Promotion>> {
    Ok(Json(s.promote_scenario(&context, path_id(&id, "scenario_id")?).await?))
}

/// The ids to compare: a bare array (the original) or `{"scenario_ids": […]}` (its frontend).
fn compare_ids(body: &[u8]) -> Result<Vec<i64>, ApiError> {
    let refused = |m: &str| ApiError::validation(vec![FieldError::new("scenario_ids", m)]);
    let value: Value =
        serde_json::from_slice(body).map_err(|_| refused("must be a JSON list of scenario ids"))?;
    let list = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("scenario_ids") {
            Some(Value::Array(items)) => items,
            _ => return Err(refused("must be a list of scenario ids")),
        },
        _ => return Err(refused("must be a list of scenario ids")),
    };
    if list.len() > 100 {
        return Err(refused("at most 100 scenarios"));
    }
    list.iter().map(|v| v.as_i64().ok_or_else(|| refused("every id must be an integer"))).collect()
}

/// Scenarios side by side: their impacts as numbers (0 when not run), by id; unknown ids are
/// left out.
#[utoipa::path(post, path = "/api/v1/scenarios/compare", tag = "planning",
    request_body(content = Vec<i64>, description = "`[1, 2]` or `{\"scenario_ids\": [1, 2]}`"),
    responses((status = 200, body = Vec<Object>), (status = 422, body = ErrorBody)))]
async fn compare_scenarios(State(s): State<PlanningService>, body: Bytes) -> ApiResult<Json<Vec<Value>>> {
    Ok(Json(s.compare_scenarios(&compare_ids(&body)?).await?))
}

/// The last run's trade-off (carrying and stock-out costs, working capital, composite score)
/// and service levels.
#[utoipa::path(get, path = "/api/v1/scenarios/{scenario_id}/tradeoff-summary", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn tradeoff_summary(
    State(s): State<PlanningService>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.scenario_tradeoff(path_id(&id, "scenario_id")?).await?))
}

/// The last run's figures per product, before and after.
#[utoipa::path(get, path = "/api/v1/scenarios/{scenario_id}/products", tag = "planning",
    params(("scenario_id" = i64, Path, description = "Scenario id")),
    responses((status = 200, body = Vec<ScenarioLine>), (status = 404, body = ErrorBody)))]
async fn scenario_products(
    State(s): State<PlanningService>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ScenarioLine>>> {
    Ok(Json(s.scenario_lines(path_id(&id, "scenario_id")?).await?))
}

/// Adds the scenario routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let plan = Access::Permission("scenarios:plan");
    let approve = Access::Permission("scenarios:approve");
    router
        .route(Access::Authenticated, routes!(list_scenarios))
        .route(plan, routes!(create_scenario))
        .route(Access::Authenticated, routes!(compare_scenarios))
        .route(Access::Authenticated, routes!(get_scenario))
        .route(plan, routes!(update_scenario))
        .route(plan, routes!(delete_scenario))
        .route(plan, routes!(run_scenario))
        .route(plan, routes!(submit_scenario))
        .route(approve, routes!(approve_scenario))
        .route(approve, routes!(reject_scenario))
        .route(plan, routes!(promote_scenario))
        .route(Access::Authenticated, routes!(tradeoff_summary))
        .route(Access::Authenticated, routes!(scenario_products))
}
