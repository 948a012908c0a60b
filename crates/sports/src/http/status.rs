//! The status routes: stats.nba.com's reachability, the database, and (admins) everything.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use sightline_platform::{Access, SecureRouter};
use utoipa_axum::routes;

use crate::service::SportsService;

/// Whether stats.nba.com answers: the player list and LeBron James's latest games.
#[utoipa::path(get, path = "/api/nba_status", tag = "sports", responses((status = 200, body = Object)))]
async fn nba_status(State(s): State<SportsService>) -> Json<Value> {
    Json(s.nba_status().await)
}

/// Whether the database answers: `{ok, db: {ok, error?}}`.
#[utoipa::path(get, path = "/api/db_health", tag = "sports", responses((status = 200, body = Object)))]
async fn db_health(State(s): State<SportsService>) -> Json<Value> {
    Json(s.db_health().await)
}

/// The models trained for predictions (none yet: predictions use the heuristic).
#[utoipa::path(get, path = "/api/models", tag = "sports", responses((status = 200, body = Object)))]
async fn models() -> Json<Value> {
    Json(json!({"models": [], "model_dir": null}))
}

/// The database, Redis and the cache (which store answers, its counts), without secrets.
#[utoipa::path(get, path = "/debug/status", tag = "sports", responses((status = 200, body = Object)))]
async fn debug_status(State(s): State<SportsService>) -> Json<Value> {
    Json(s.debug_status().await)
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<SportsService>) -> SecureRouter<SportsService> {
    let read = Access::Permission("sports:read");
    router
        .route(read, routes!(nba_status))
        .route(read, routes!(db_health))
        .route(read, routes!(models))
        .route(Access::Permission("sports:debug"), routes!(debug_status))
}
