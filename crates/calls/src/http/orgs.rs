//! Organisations (`/api/orgs`) and the embedded store's ingest (`POST /api/calls/ingest`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_platform::error::{ApiResult, ErrorBody, FieldError};
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, RequestContext, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::error::CallsError;
use crate::model::{IngestSummary, Org};
use crate::service::{parse_timezone, CallsService, NewOrg, OrgChange};

/// Whether to list only active organisations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgsQuery {
    /// Only active ones (default true).
    active_only: Option<bool>,
}

/// Organisations, by name: `{"organizations": [...]}`.
#[utoipa::path(get, path = "/api/orgs", tag = "calls", params(OrgsQuery), responses((status = 200, body = Object)))]
async fn list_orgs(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<OrgsQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"organizations": s.list_orgs(q.active_only.unwrap_or(true)).await?})))
}

/// One organisation.
#[utoipa::path(get, path = "/api/orgs/{org_id}", tag = "calls", params(("org_id" = String, Path, description = "Organisation id")),
    responses((status = 200, body = Org), (status = 404, body = ErrorBody)))]
async fn get_org(State(s): State<CallsService>, Path(org_id): Path<String>) -> ApiResult<Json<Org>> {
    Ok(Json(s.org(&org_id).await?))
}

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// Its id in the call data.
    org_id: String,
    /// Display name.
    name: String,
    /// Its broker node's persistent id.
    node_persistent_id: String,
    /// IANA time zone (default `UTC`).
    #[serde(default)]
    timezone: Option<String>,
    /// Caller numbers to leave out (test calls).
    #[serde(default)]
    excluded_numbers: Vec<String>,
}

fn check_id(field: &str, value: &str, errors: &mut Vec<FieldError>) -> String {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "1 to 200 characters, no control characters"));
    }
    value.to_owned()
}

fn check_numbers(numbers: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if numbers.len() > 1000 || numbers.iter().any(|n| n.trim().is_empty() || n.len() > 64) {
        errors.push(FieldError::new("excluded_numbers", "at most 1000 numbers of 1 to 64 characters"));
    }
    numbers.iter().map(|n| n.trim().to_owned()).collect()
}

/// Add an organisation (409 when its `org_id` exists).
#[utoipa::path(post, path = "/api/orgs", tag = "calls", request_body = CreateOrg,
    responses((status = 201, body = Org), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_org(
    context: RequestContext,
    State(s): State<CallsService>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, Json<Org>)> {
    let mut errors = Vec::new();
    let org_id = check_id("org_id", &body.org_id, &mut errors);
    let name = check_id("name", &body.name, &mut errors);
    let node_persistent_id = check_id("node_persistent_id", &body.node_persistent_id, &mut errors);
    let excluded_numbers = check_numbers(&body.excluded_numbers, &mut errors);
    let timezone = match parse_timezone(body.timezone.as_deref().unwrap_or("UTC")) {
        Ok(tz) => Some(tz),
        Err(CallsError::Invalid(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let Some(timezone) = timezone.filter(|_| errors.is_empty()) else {
        return Err(CallsError::Invalid(errors).into());
    };
    let new = NewOrg { org_id, name, node_persistent_id, timezone, excluded_numbers };
    Ok((StatusCode::CREATED, Json(s.create_org(&context, new).await?)))
}

/// A change to an organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    /// New name.
    name: Option<String>,
    /// New broker node.
    node_persistent_id: Option<String>,
    /// New IANA time zone.
    timezone: Option<String>,
    /// Active (reports generated) or not.
    is_active: Option<bool>,
    /// New test numbers.
    excluded_numbers: Option<Vec<String>>,
}

/// Change an organisation.
#[utoipa::path(patch, path = "/api/orgs/{org_id}", tag = "calls", request_body = UpdateOrg,
    params(("org_id" = String, Path, description = "Organisation id")),
    responses((status = 200, body = Org), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_org(
    context: RequestContext,
    State(s): State<CallsService>,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> ApiResult<Json<Org>> {
    let mut errors = Vec::new();
    let change = OrgChange {
        name: body.name.map(|n| check_id("name", &n, &mut errors)),
        node_persistent_id: body.node_persistent_id.map(|n| check_id("node_persistent_id", &n, &mut errors)),
        timezone: match body.timezone.map(|t| parse_timezone(&t)).transpose() {
            Ok(tz) => tz,
            Err(CallsError::Invalid(mut e)) => {
                errors.append(&mut e);
                None
            }
            Err(e) => return Err(e.into()),
        },
        is_active: body.is_active,
        excluded_numbers: body.excluded_numbers.map(|n| check_numbers(&n, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(CallsError::Invalid(errors).into());
    }
    Ok(Json(s.update_org(&context, &org_id, change).await?))
}

/// Feed the embedded call store: newline-delimited JSON, one record per line with a `type`
/// (`run`, `session`, `node_output`, `node`) and the original's columns. Idempotent on the
/// records' ids. A bad line refuses the whole batch (422 naming each bad line); nothing of it is
/// applied.
#[utoipa::path(post, path = "/api/calls/ingest", tag = "calls",
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = IngestSummary), (status = 422, body = ErrorBody)))]
async fn ingest(
    context: RequestContext,
    State(s): State<CallsService>,
    body: String,
) -> ApiResult<Json<IngestSummary>> {
    Ok(Json(s.ingest(&context, &body).await?))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<CallsService>) -> SecureRouter<CallsService> {
    let read = Access::Permission("calls:read");
    router
        .route(read, routes!(list_orgs))
        .route(read, routes!(get_org))
        .route(Access::Permission("calls:manage"), routes!(create_org))
        .route(Access::Permission("calls:manage"), routes!(update_org))
        .route(Access::Permission("calls:ingest"), routes!(ingest))
}
