//! Player summaries: `GET /player_summary`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::ApiQuery;
use sightline_platform::{Access, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

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
    let mut answer = serde_json::to_value(&summary)
        .map_err(anyhow::Error::from)
        .map_err(crate::error::SportsError::from)?;
    if q.debug.unwrap_or(0) != 0 {
        answer["debug"] = debug_block(&summary);
    }
    Ok(Json(answer))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<SportsService>) -> SecureRouter<SportsService> {
    router.route(Access::Permission("sports:read"), routes!(player_summary))
}
