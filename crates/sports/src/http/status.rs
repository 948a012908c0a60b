//! The status routes: stats.nba.com's reachability, the database, and (admins) everything.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::ApiJson;
use sightline_platform::{Access, SecureRouter};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::service::predict::Training;
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

/// The stats that have a model predictions use (`models`, the original's key), and every
/// trained model with its metrics against the baselines (`trained`), and how each method's
/// stored predictions turned out once ingestion brought the games (`live`).
#[utoipa::path(get, path = "/api/models", tag = "sports", responses((status = 200, body = Object)))]
async fn models(State(s): State<SportsService>) -> ApiResult<Json<Value>> {
    let trained = s.models().await?;
    let mut active: Vec<&str> = trained.iter().filter(|m| m.kept).map(|m| m.model.stat.as_str()).collect();
    active.sort_unstable();
    active.dedup();
    let live = s.live_accuracy().await?;
    Ok(Json(json!({"models": active, "model_dir": null, "trained": trained, "live": live})))
}

/// `POST /api/models/train`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TrainRequest {
    /// The stat whose newest dataset to learn from.
    stat: String,
}

/// Trains a model on the stat's newest dataset; it is kept (and used by `/api/predict`) only if
/// its test error beats both baselines (the season average so far, the last-5 average).
#[utoipa::path(post, path = "/api/models/train", tag = "sports", request_body = TrainRequest,
    responses((status = 200, body = Training), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn train(
    State(s): State<SportsService>,
    ApiJson(body): ApiJson<TrainRequest>,
) -> ApiResult<Json<Training>> {
    Ok(Json(s.train_model(&body.stat).await?))
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
        .route(Access::Permission("sports:manage"), routes!(train))
        .route(Access::Permission("sports:debug"), routes!(debug_status))
}
