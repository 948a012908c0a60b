//! `/api/v1/sop-cycles` and `/api/v1/dashboard/sop-status`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use sightline_platform::error::ErrorBody;
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, ApiResult, RequestContext, SecureRouter};
use utoipa_axum::routes;

use super::path_id;
use crate::model::SopCycle;
use crate::page::{Page, PageQuery, PageRequest};
use crate::service::scorecard::ExecutiveScorecard;
use crate::service::sop::{steps_of, SopCycleCreate, SopCycleUpdate};
use crate::service::PlanningService;

/// S&OP cycles, latest period first.
#[utoipa::path(get, path = "/api/v1/sop-cycles", tag = "planning", params(PageQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn list_cycles(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<SopCycle>>> {
    let page = PageRequest::parse(q)?;
    Ok(Json(s.sop_cycles(page).await?))
}

/// Starts a cycle at step 1 (S&OP coordinators).
#[utoipa::path(post, path = "/api/v1/sop-cycles", tag = "planning", request_body = SopCycleCreate,
    responses((status = 201, body = SopCycle), (status = 422, body = ErrorBody)))]
async fn create_cycle(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<SopCycleCreate>,
) -> ApiResult<(StatusCode, Json<SopCycle>)> {
    Ok((StatusCode::CREATED, Json(s.create_sop_cycle(&context, body).await?)))
}

const NO_ACTIVE: &str = "No active S&OP cycle";

/// The active cycle of the latest period, or `{"active": false, "message": …}`.
#[utoipa::path(get, path = "/api/v1/sop-cycles/active", tag = "planning", responses((status = 200, body = Object)))]
async fn active_cycle(State(s): State<PlanningService>) -> ApiResult<Json<Value>> {
    Ok(Json(match s.active_sop_cycle().await? {
        Some(c) => {
            serde_json::to_value(c).map_err(anyhow::Error::from).map_err(crate::error::PlanningError::from)?
        }
        None => json!({"active": false, "message": NO_ACTIVE}),
    }))
}

/// One cycle.
#[utoipa::path(get, path = "/api/v1/sop-cycles/{cycle_id}", tag = "planning",
    params(("cycle_id" = i64, Path, description = "Cycle id")),
    responses((status = 200, body = SopCycle), (status = 404, body = ErrorBody)))]
async fn get_cycle(State(s): State<PlanningService>, Path(id): Path<String>) -> ApiResult<Json<SopCycle>> {
    Ok(Json(s.sop_cycle(path_id(&id, "cycle_id")?).await?))
}

/// Changes the fields given.
#[utoipa::path(put, path = "/api/v1/sop-cycles/{cycle_id}", tag = "planning",
    params(("cycle_id" = i64, Path, description = "Cycle id")), request_body = SopCycleUpdate,
    responses((status = 200, body = SopCycle), (status = 404, body = ErrorBody)))]
async fn update_cycle(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SopCycleUpdate>,
) -> ApiResult<Json<SopCycle>> {
    Ok(Json(s.update_sop_cycle(&context, path_id(&id, "cycle_id")?, body).await?))
}

/// Completes the current step and moves to the next (400 when not active or at step 5).
#[utoipa::path(post, path = "/api/v1/sop-cycles/{cycle_id}/advance", tag = "planning",
    params(("cycle_id" = i64, Path, description = "Cycle id")),
    responses((status = 200, body = SopCycle), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn advance_cycle(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<SopCycle>> {
    Ok(Json(s.advance_sop_cycle(&context, path_id(&id, "cycle_id")?).await?))
}

/// Closes the cycle from any step (executives).
#[utoipa::path(post, path = "/api/v1/sop-cycles/{cycle_id}/complete", tag = "planning",
    params(("cycle_id" = i64, Path, description = "Cycle id")),
    responses((status = 200, body = SopCycle), (status = 404, body = ErrorBody)))]
async fn complete_cycle(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<SopCycle>> {
    Ok(Json(s.complete_sop_cycle(&context, path_id(&id, "cycle_id")?).await?))
}

/// The cycle's executive scorecard: the scenario of its month (run, else approved), service,
/// cost, cash, inventory risk and a decision signal (executives).
#[utoipa::path(get, path = "/api/v1/sop-cycles/{cycle_id}/executive-scorecard", tag = "planning",
    params(("cycle_id" = i64, Path, description = "Cycle id")),
    responses((status = 200, body = ExecutiveScorecard), (status = 404, body = ErrorBody)))]
async fn executive_scorecard(
    State(s): State<PlanningService>,
    Path(id): Path<String>,
) -> ApiResult<Json<ExecutiveScorecard>> {
    Ok(Json(s.executive_scorecard(path_id(&id, "cycle_id")?).await?))
}

/// The active cycle's steps, or `{"active": false, "message": …}`.
#[utoipa::path(get, path = "/api/v1/dashboard/sop-status", tag = "planning", responses((status = 200, body = Object)))]
async fn sop_status(State(s): State<PlanningService>) -> ApiResult<Json<Value>> {
    Ok(Json(match s.active_sop_cycle().await? {
        Some(c) => json!({"active": true, "id": c.id, "name": c.cycle_name, "period": c.period,
            "current_step": c.current_step, "steps": steps_of(&c), "overall_status": c.overall_status}),
        None => json!({"active": false, "message": NO_ACTIVE}),
    }))
}

/// Adds the S&OP routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let coordinate = Access::Permission("sop:coordinate");
    router
        .route(Access::Authenticated, routes!(list_cycles))
        .route(coordinate, routes!(create_cycle))
        .route(Access::Authenticated, routes!(active_cycle))
        .route(Access::Authenticated, routes!(get_cycle))
        .route(coordinate, routes!(update_cycle))
        .route(coordinate, routes!(advance_cycle))
        .route(Access::Permission("sop:execute"), routes!(complete_cycle))
        .route(Access::Permission("sop:execute"), routes!(executive_scorecard))
        .route(Access::Authenticated, routes!(sop_status))
}
