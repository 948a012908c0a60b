//! Player and team routes: summaries, contexts (one or a batch), advanced figures, predictions.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use sightline_platform::client_address::ClientAddress;
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::error::SportsError;
use crate::service::context::{with_debug, BatchItem, PlayerContext};
use crate::service::predict::{PredictionRequest, PredictionResponse};
use crate::service::{debug_block, PlayerSummary, SportsService};

/// A player summary's question.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The player's name (accents, case, punctuation and Jr/Sr/II/III/IV do not matter).
    player: String,
    /// `points` (default), `assists`, `rebounds`, `steals`, `blocks`, or a game-log column.
    stat: Option<String>,
    /// Recent games listed (1–100; default 8).
    limit: Option<i64>,
    /// `1` adds the original's `debug` block.
    debug: Option<i64>,
    /// Season, such as `2024-25`; default the current one (an addition: the original had none).
    season: Option<String>,
}

/// A player's latest games of a stat, with the original's figures and a few beside them
/// (`fullSeasonAvg`: the real season average). Cached 10 minutes (`cached: true`); while
/// stats.nba.com fails, an older copy marked `stale: true`, else 503/504 with `Retry-After`.
#[utoipa::path(get, path = "/player_summary", tag = "sports", params(SummaryQuery),
    responses((status = 200, body = PlayerSummary), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn player_summary(
    State(s): State<SportsService>,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> ApiResult<Json<Value>> {
    let summary = s
        .player_summary(
            &q.player,
            q.stat.as_deref().unwrap_or("points"),
            q.limit.unwrap_or(8),
            q.season.as_deref(),
        )
        .await?;
    let mut answer = serde_json::json!(summary);
    if q.debug.unwrap_or(0) != 0 {
        answer["debug"] = debug_block(&summary);
    }
    Ok(Json(answer))
}

/// A player context's question.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContextQuery {
    /// The player's name.
    player_name: Option<String>,
    /// The same, under the other name the original took.
    player: Option<String>,
    /// Recent games (1–100; default 8).
    limit: Option<i64>,
    /// Season (an addition); default the current one.
    season: Option<String>,
}

/// A player's context: recent games, the original's rolling features (`last_3_avg` …
/// `slope_10`), rest and venue of the latest game, and the latest opponent's defensive rating
/// and pace this season.
#[utoipa::path(get, path = "/api/player_context", tag = "sports", params(ContextQuery),
    responses((status = 200, body = PlayerContext), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn get_player_context(
    State(s): State<SportsService>,
    ApiQuery(q): ApiQuery<ContextQuery>,
) -> ApiResult<Json<PlayerContext>> {
    let name = q.player_name.or(q.player).unwrap_or_default();
    if name.trim().is_empty() {
        return Err(SportsError::invalid("player_name", "player_name is required").into());
    }
    Ok(Json(s.player_context(&name, q.limit.unwrap_or(8), q.season.as_deref()).await?))
}

/// `POST /api/player_context`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContextRequest {
    /// The player's name.
    player: String,
    /// The stat (default `points`).
    stat: Option<String>,
    /// Recent games (default 8).
    limit: Option<i64>,
    /// Season, such as `2024-25`.
    season: Option<String>,
}

/// A player's summary with the original's `debug` block, the season honoured.
#[utoipa::path(post, path = "/api/player_context", tag = "sports", request_body = ContextRequest,
    responses((status = 200, body = PlayerSummary), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn post_player_context(
    State(s): State<SportsService>,
    ApiJson(body): ApiJson<ContextRequest>,
) -> ApiResult<Json<Value>> {
    let summary = s
        .player_summary(
            &body.player,
            body.stat.as_deref().unwrap_or("points"),
            body.limit.unwrap_or(8),
            body.season.as_deref(),
        )
        .await?;
    Ok(Json(with_debug(&summary)))
}

/// A batch's options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BatchQuery {
    /// Summaries made at once (1–16; default 6).
    max_concurrency: Option<usize>,
}

/// Summaries of many players at once, in the request's order; an item that fails is
/// `{player, error}`. At most `MAX_BATCH_SIZE` (50) items (400); each client may ask for
/// `BATCH_MAX_RPM` (120) items a minute (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/batch_player_context", tag = "sports", params(BatchQuery),
    request_body = Vec<BatchItem>,
    responses((status = 200, body = Vec<Object>), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn batch_player_context(
    State(s): State<SportsService>,
    address: ClientAddress,
    ApiQuery(q): ApiQuery<BatchQuery>,
    ApiJson(items): ApiJson<Vec<BatchItem>>,
) -> ApiResult<Json<Vec<Value>>> {
    s.admit_batch(&address.0.to_string(), items.len()).await?;
    Ok(Json(s.batch_summaries(items, q.max_concurrency.unwrap_or(6)).await))
}

/// `POST /api/player_advanced`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PlayerAdvancedRequest {
    /// The player's name.
    player: String,
    /// Seasons (default the current one).
    seasons: Option<Vec<String>>,
}

/// A player's per-season figures (per game, shooting, true shooting, the original's PER and
/// win-share proxies) and their means, each season's own games (the original read the current
/// season whatever it was asked).
#[utoipa::path(post, path = "/api/player_advanced", tag = "sports", request_body = PlayerAdvancedRequest,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn player_advanced(
    State(s): State<SportsService>,
    ApiJson(body): ApiJson<PlayerAdvancedRequest>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.player_advanced(&body.player, body.seasons).await?))
}

/// `POST /api/team_advanced`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TeamAdvancedRequest {
    /// stats.nba.com team id.
    #[serde(default)]
    team_id: i64,
    /// Seasons (default the current one).
    seasons: Option<Vec<String>>,
}

/// A team's per-season figures: points for and against (the opponent's points from the league
/// log), shooting, offensive and defensive ratings, pace.
#[utoipa::path(post, path = "/api/team_advanced", tag = "sports", request_body = TeamAdvancedRequest,
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn team_advanced(
    State(s): State<SportsService>,
    ApiJson(body): ApiJson<TeamAdvancedRequest>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.team_advanced(body.team_id, body.seasons).await?))
}

/// An over/under prediction for a player's stat line.
#[utoipa::path(post, path = "/api/predict", tag = "sports", request_body = PredictionRequest,
    responses((status = 200, body = PredictionResponse), (status = 422, body = ErrorBody)))]
async fn predict(
    State(s): State<SportsService>,
    ApiJson(body): ApiJson<PredictionRequest>,
) -> ApiResult<Json<PredictionResponse>> {
    Ok(Json(s.predict(&body).await?))
}

/// Predictions for many lines, in order (8 at a time, each within 10 s):
/// `{predictions: [...]}`.
#[utoipa::path(post, path = "/api/batch_predict", tag = "sports", request_body = Vec<PredictionRequest>,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
async fn batch_predict(
    State(s): State<SportsService>,
    ApiJson(requests): ApiJson<Vec<PredictionRequest>>,
) -> ApiResult<Json<Value>> {
    if requests.len() > s.max_batch_size() {
        return Err(SportsError::BatchTooLarge(s.max_batch_size()).into());
    }
    Ok(Json(serde_json::json!({"predictions": s.batch_predict(requests, 8).await})))
}

/// A name search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlayersQuery {
    /// Part of a name (accents, case and punctuation do not matter).
    search: String,
    /// Most names answered (1–50; default 10).
    limit: Option<usize>,
}

/// Players whose name contains the text, those it starts first: `{players: [{id, full_name,
/// team_id, team}]}` (for a search box).
#[utoipa::path(get, path = "/api/players", tag = "sports", params(PlayersQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn search_players(
    State(s): State<SportsService>,
    ApiQuery(q): ApiQuery<PlayersQuery>,
) -> ApiResult<Json<Value>> {
    let limit = q.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(SportsError::invalid("limit", "must be 1 to 50").into());
    }
    let directory = s.directory().await?;
    Ok(Json(serde_json::json!({"players": directory.search(&q.search, limit)})))
}

/// The player page: search, recent games of a stat with its rolling average, the context.
#[utoipa::path(get, path = "/ui/sports", tag = "sports",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn player_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../../ui/player.html"))
}

/// The ingestion page: runs, validation findings, alert deliveries; queue a day.
#[utoipa::path(get, path = "/ui/sports/ingest", tag = "sports",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn ingest_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../../ui/ingest.html"))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<SportsService>) -> SecureRouter<SportsService> {
    let read = Access::Permission("sports:read");
    router
        .route(read, routes!(player_summary))
        .route(read, routes!(get_player_context, post_player_context))
        .route(read, routes!(batch_player_context))
        .route(read, routes!(player_advanced))
        .route(read, routes!(team_advanced))
        .route(read, routes!(predict))
        .route(read, routes!(batch_predict))
        .route(read, routes!(search_players))
        .route(Access::Public, routes!(player_page))
        .route(Access::Public, routes!(ingest_page))
}
