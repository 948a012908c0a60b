//! Routes of the NBA module: calculation events, NBAs, decisions, reference data, the page.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sightline_platform::error::{ApiError, ApiResult, ErrorBody, ErrorCode, FieldError};
use sightline_platform::validate::{has_control, ApiQuery, JsonObject, ObjectChecker};
use sightline_platform::{paging, Access, Page, RequestContext, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::mockdb::Overview;
use crate::model::{
    ActionRecord, ActionRequest, CalculationEvent, Decision, EventLogEntry, NbaDetail, NbaItem, NBA_STATUSES,
};
use crate::service::{ActionsError, ActionsService, EventStatus};
use crate::store::NbaFilter;

/// Each business failure's status and stable code: `?` in a handler turns it into the one error
/// body (storage failures into a logged 500).
impl ErrorCode for ActionsError {
    fn status(&self) -> StatusCode {
        match self {
            ActionsError::NbaNotFound | ActionsError::EventNotFound => StatusCode::NOT_FOUND,
            ActionsError::TransitionNotAllowed(_) | ActionsError::Inactive => StatusCode::CONFLICT,
            ActionsError::Database(_) | ActionsError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ActionsError::NbaNotFound | ActionsError::EventNotFound => "not_found",
            ActionsError::TransitionNotAllowed(_) | ActionsError::Inactive => "conflict",
            ActionsError::Database(_) | ActionsError::Storage(_) => "internal",
        }
    }
}

/// The module's routes.
pub fn router(service: ActionsService) -> SecureRouter {
    SecureRouter::new()
        .route(Access::Permission("events:write"), routes!(enqueue_calculation_event))
        .route(Access::Permission("nba:read"), routes!(get_calculation_event))
        .route(Access::Permission("nba:read"), routes!(list_nbas))
        .route(Access::Permission("nba:read"), routes!(get_nba))
        .route(Access::Permission("nba:read"), routes!(list_nba_events))
        .route(Access::Permission("nba:act"), routes!(create_nba_action))
        .route(Access::Permission("nba:read"), routes!(mock_db_overview))
        // The page is a static shell: it signs in and reads data through the API above.
        .route(Access::Public, routes!(active_nbas_page))
        .with_state(service)
}

/// An id from the path: one with control characters can't exist (PostgreSQL TEXT refuses them).
fn known_id(id: &str) -> ApiResult<&str> {
    if has_control(id) || id.len() > 128 {
        Err(ApiError::not_found("nba not found"))
    } else {
        Ok(id)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitQuery {
    /// Wait for the worker's result (`action`, `nba_id`) before answering.
    wait: Option<bool>,
    /// How long to wait, in ms (default 5000 with `wait=true`; capped below the request timeout).
    wait_ms: Option<u64>,
}

impl WaitQuery {
    fn timeout(&self) -> Option<Duration> {
        match (self.wait, self.wait_ms) {
            (_, Some(ms)) => Some(Duration::from_millis(ms)),
            (Some(true), None) => Some(Duration::from_millis(5_000)),
            _ => None,
        }
    }
}

/// Accept a calculation event.
///
/// Checks the event (unknown fields are refused), fills a missing account id or enterprise
/// number from the reference data, and stores it with its processing job before answering 202.
/// The same `event_id` again has no second effect: the answer has `duplicate: true` and the
/// first event's state. With `?wait=true` the answer comes once a worker has processed it and
/// carries `action` and `nba_id`.
#[utoipa::path(post, path = "/api/v1/internal/events/nba-calculation", tag = "actions",
    params(WaitQuery),
    request_body = CalculationEvent,
    responses(
        (status = 202, description = "stored and queued (or a duplicate)", body = EventStatus),
        (status = 422, description = "invalid fields, each named", body = ErrorBody),
    ))]
async fn enqueue_calculation_event(
    State(service): State<ActionsService>,
    context: RequestContext,
    ApiQuery(wait): ApiQuery<WaitQuery>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<EventStatus>)> {
    let (event, occurred_at) = CalculationEvent::parse(&body, &service.event_limits())?;
    tracing::info!(event_id = %event.event_id, nba_definition_id = %event.nba_definition_id, source = %event.source, "api.enqueue_event");
    let mut status = service.accept_event(&context, event, occurred_at.timestamp_millis()).await?;
    tracing::info!(event_id = %status.event_id, duplicate = status.duplicate, "api.enqueued_event");
    if let Some(timeout) = wait.timeout() {
        status = service.wait_processed(status, timeout).await?;
    }
    Ok((StatusCode::ACCEPTED, Json(status)))
}

/// A calculation event's state (optionally waiting up to `wait_ms` for it to be processed).
#[utoipa::path(get, path = "/api/v1/internal/events/{event_id}", tag = "actions",
    params(("event_id" = String, Path, description = "Event id"), WaitQuery),
    responses((status = 200, body = EventStatus), (status = 404, body = ErrorBody)))]
async fn get_calculation_event(
    State(service): State<ActionsService>,
    Path(event_id): Path<String>,
    ApiQuery(wait): ApiQuery<WaitQuery>,
) -> ApiResult<Json<EventStatus>> {
    let event_id = uuid::Uuid::parse_str(&event_id)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| ApiError::not_found("event not found"))?;
    let mut status = service.event_status(&event_id).await?;
    if let Some(timeout) = wait.timeout() {
        status = service.wait_processed(status, timeout).await?;
    }
    Ok(Json(status))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct NbaListQuery {
    /// Account id.
    account_id: Option<String>,
    /// Enterprise number.
    enterprise_number: Option<String>,
    /// `new`, `accepted` or `rejected` (alias `status_filter`).
    #[serde(alias = "status_filter")]
    status: Option<String>,
    /// NBA definition.
    nba_definition_id: Option<String>,
    /// `true` (default): current NBAs only; `false`: deactivated only; `all`: both.
    active: Option<String>,
    /// Page size 1..=200 (default 50).
    limit: Option<i64>,
    /// Rows to skip (default 0).
    offset: Option<i64>,
}

/// List NBAs, newest first: current ones unless `active` says otherwise, filtered by account,
/// enterprise number, status and definition (all optional, AND-ed).
#[utoipa::path(get, path = "/api/v1/nba", tag = "actions", params(NbaListQuery),
    responses((status = 200, body = Page<NbaItem>), (status = 400, description = "invalid status filter", body = ErrorBody),
        (status = 422, description = "invalid paging", body = ErrorBody)))]
async fn list_nbas(
    State(service): State<ActionsService>,
    ApiQuery(q): ApiQuery<NbaListQuery>,
) -> ApiResult<Json<Page<NbaItem>>> {
    if let Some(s) = &q.status {
        if !NBA_STATUSES.contains(&s.as_str()) {
            return Err(ApiError::bad_request("invalid status filter")
                .with_details(json!([FieldError::new("status", "must be one of new, accepted, rejected")])));
        }
    }
    let active = match q.active.as_deref() {
        None | Some("true") => Some(true),
        Some("false") => Some(false),
        Some("all") => None,
        Some(_) => {
            return Err(ApiError::validation(vec![FieldError::new("active", "must be true, false or all")]));
        }
    };
    let (limit, offset) = paging(q.limit, q.offset)?;
    let filter = NbaFilter {
        account_id: q.account_id,
        enterprise_number: q.enterprise_number,
        status: q.status,
        nba_definition_id: q.nba_definition_id,
        active,
    };
    let (items, total) = service.list(&filter, limit, offset).await?;
    Ok(Json(Page { items, total, limit, offset }))
}

/// One NBA with its timestamps.
#[utoipa::path(get, path = "/api/v1/nba/{nba_id}", tag = "actions",
    params(("nba_id" = String, Path, description = "NBA id")),
    responses((status = 200, body = NbaDetail), (status = 404, body = ErrorBody)))]
async fn get_nba(
    State(service): State<ActionsService>,
    Path(nba_id): Path<String>,
) -> ApiResult<Json<NbaDetail>> {
    Ok(Json(service.get(known_id(&nba_id)?).await?))
}

/// An NBA's history.
#[derive(Debug, Serialize, ToSchema)]
struct NbaHistory {
    items: Vec<EventLogEntry>,
    total: usize,
}

/// An NBA's history: its calculation and every decision, oldest first.
#[utoipa::path(get, path = "/api/v1/nba/{nba_id}/events", tag = "actions",
    params(("nba_id" = String, Path, description = "NBA id")),
    responses((status = 200, body = NbaHistory), (status = 404, body = ErrorBody)))]
async fn list_nba_events(
    State(service): State<ActionsService>,
    Path(nba_id): Path<String>,
) -> ApiResult<Json<NbaHistory>> {
    let items = service.history(known_id(&nba_id)?).await?;
    Ok(Json(NbaHistory { total: items.len(), items }))
}

/// Accept or reject an NBA.
///
/// Lifecycle: `new` → `accepted` | `rejected`. The same decision again returns the recorded
/// action; a different one is a 409; an NBA that is no longer active can't be decided (409).
#[utoipa::path(post, path = "/api/v1/nba/{nba_id}/actions", tag = "actions",
    params(("nba_id" = String, Path, description = "NBA id")),
    request_body = ActionRequest,
    responses(
        (status = 201, body = ActionRecord),
        (status = 404, body = ErrorBody),
        (status = 409, description = "already decided otherwise, or inactive", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
async fn create_nba_action(
    State(service): State<ActionsService>,
    context: RequestContext,
    Path(nba_id): Path<String>,
    JsonObject(body): JsonObject,
) -> ApiResult<(StatusCode, Json<ActionRecord>)> {
    let mut c = ObjectChecker::new(&body);
    c.deny_unknown(&["status", "action_at", "comment"]);
    let status = match c.required_str("status", 16).as_deref() {
        Some("accepted") => Some(Decision::Accepted),
        Some("rejected") => Some(Decision::Rejected),
        Some(_) => {
            c.error("status", "must be accepted or rejected");
            None
        }
        None => None,
    };
    let action_at = c.datetime("action_at", false);
    let comment = c.optional_str("comment", 1000);
    c.finish()?;
    let decision = status.expect("checked above");
    let action_at_ms = action_at.unwrap_or_else(chrono::Utc::now).timestamp_millis();
    let record = service.decide(&context, known_id(&nba_id)?, decision, action_at_ms, comment).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

/// Row counts of the loaded reference data (the original's keys).
#[utoipa::path(get, path = "/api/v1/mock-db/overview", tag = "actions", responses((status = 200, body = Overview)))]
async fn mock_db_overview(State(service): State<ActionsService>) -> Json<Overview> {
    Json(service.reference().overview())
}

/// Page listing a client's active NBAs with accept/reject buttons (`?client=<enterprise_number>`).
#[utoipa::path(get, path = "/ui/active-nbas", tag = "actions",
    params(("client" = Option<String>, Query, description = "Enterprise number (default 0123456789)")),
    responses((status = 200, description = "HTML page", content_type = "text/html", body = String)))]
async fn active_nbas_page() -> Html<&'static str> {
    Html(include_str!("ui/active_nbas.html"))
}
