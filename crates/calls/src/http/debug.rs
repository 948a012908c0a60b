//! The admins' debug routes: settings, source tables, node counts.

use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::ApiQuery;
use sightline_platform::{Access, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::error::CallsError;
use crate::service::CallsService;

/// The module's settings (no secret in them): the source, the default organisation, the
/// scheduler (admins only).
#[utoipa::path(get, path = "/debug-config", tag = "calls", responses((status = 200, body = Object)))]
async fn debug_config(State(s): State<CallsService>) -> Json<Value> {
    Json(s.debug_config())
}

/// The columns of one of the source's four tables (`public_node_outputs`, `public_runs`,
/// `public_sessions`, `public_nodes`; any other is a 422).
#[utoipa::path(get, path = "/debug-schema/{table_name}", tag = "calls",
    params(("table_name" = String, Path, description = "One of the four tables")),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn debug_schema(
    State(s): State<CallsService>,
    Path(table_name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.describe_table(&table_name).await?))
}

/// A node and a number of days back.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeQuery {
    /// The node; default the configured one.
    node_persistent_id: Option<String>,
    /// Days back (1 to 366).
    days: Option<i64>,
}

fn node_and_days(s: &CallsService, q: &NodeQuery, default_days: i64) -> Result<(String, i64), CallsError> {
    let days = q.days.unwrap_or(default_days);
    if !(1..=366).contains(&days) {
        return Err(CallsError::invalid("days", "1 to 366"));
    }
    let node =
        q.node_persistent_id.clone().or_else(|| s.default_node().map(str::to_owned)).ok_or_else(|| {
            CallsError::invalid("node_persistent_id", "required: no BROKER_NODE_PERSISTENT_ID is configured")
        })?;
    Ok((node, days))
}

/// Node outputs of a node in the last `days` (7) days (admins only).
#[utoipa::path(get, path = "/debug-node-count", tag = "calls", params(NodeQuery), responses((status = 200, body = Object)))]
async fn debug_node_count(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<NodeQuery>,
) -> ApiResult<Json<Value>> {
    let (node, days) = node_and_days(&s, &q, 7)?;
    Ok(Json(s.node_count(&node, days).await?))
}

/// The organisations of a node's calls in the last `days` (30) days (admins only).
#[utoipa::path(get, path = "/debug-node-orgs", tag = "calls", params(NodeQuery), responses((status = 200, body = Object)))]
async fn debug_node_orgs(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<NodeQuery>,
) -> ApiResult<Json<Value>> {
    let (node, days) = node_and_days(&s, &q, 30)?;
    Ok(Json(s.node_orgs(&node, days).await?))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<CallsService>) -> SecureRouter<CallsService> {
    router
        .route(Access::Permission("calls:debug"), routes!(debug_config))
        .route(Access::Permission("calls:debug"), routes!(debug_schema))
        .route(Access::Permission("calls:debug"), routes!(debug_node_count))
        .route(Access::Permission("calls:debug"), routes!(debug_node_orgs))
}
