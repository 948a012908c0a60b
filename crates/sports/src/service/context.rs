//! Player contexts (the summary with rolling features, rest, home or away and the opponent's
//! ratings), batches of summaries, and per-season advanced figures of players and teams.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

use super::{PlayerSummary, SportsService};
use crate::error::SportsError;
use crate::features;
use crate::nba::valid_season;

/// Rest and venue of the latest game, as integers (the original's shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ContextFactors {
    /// 1 when the latest game was at home.
    pub is_home: i64,
    /// Days between the two latest games, less one (0 without two games).
    pub days_rest: i64,
    /// 1 when they were on consecutive days.
    pub is_back_to_back: i64,
}

/// The latest opponent and its season ratings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpponentInfo {
    /// Its stats.nba.com team id.
    pub team_id: i64,
    /// Its abbreviation (an addition).
    pub team: String,
    /// Points it allows per 100 possessions this season.
    pub defensive_rating: f64,
    /// Possessions a game in its games this season.
    pub pace: f64,
}

/// `/api/player_context`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerContext {
    /// The name asked for.
    pub player: String,
    /// stats.nba.com id.
    #[serde(rename = "player_id")]
    pub player_id: i64,
    /// The latest games, newest first (as in the summary).
    #[schema(value_type = Vec<Object>)]
    pub recent_games: Vec<Value>,
    /// Mean of the recent games' values.
    pub season_avg: Option<f64>,
    /// The original's rolling features over the recent games (`last_3_avg` … `slope_10`).
    pub rolling_averages: BTreeMap<String, Option<f64>>,
    /// Rest and venue of the latest game.
    pub contextual_factors: ContextFactors,
    /// The latest opponent and its ratings.
    pub opponent_info: Option<OpponentInfo>,
    /// When stats.nba.com was asked (epoch seconds).
    pub fetched_at: i64,
    /// Served from the cache.
    pub cached: bool,
}

/// One item of a batch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct BatchItem {
    /// The player's name (may be empty: that item fails alone).
    #[serde(alias = "player_name")]
    pub player: String,
    /// The stat (default `points`).
    pub stat: Option<String>,
    /// Recent games (default 8).
    pub limit: Option<i64>,
}

/// Per-season figures, and their mean over the seasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Advanced {
    /// Season → figures.
    #[schema(value_type = Object)]
    pub per_season: BTreeMap<String, Map<String, Value>>,
    /// Each figure's mean over the seasons that have it.
    #[schema(value_type = Object)]
    pub aggregated: Map<String, Value>,
}

fn aggregate(per_season: &BTreeMap<String, Map<String, Value>>) -> Map<String, Value> {
    let mut sums: BTreeMap<&str, (f64, u32)> = BTreeMap::new();
    for stats in per_season.values() {
        for (k, v) in stats {
            if let Some(x) = v.as_f64() {
                let e = sums.entry(k).or_default();
                e.0 += x;
                e.1 += 1;
            }
        }
    }
    sums.into_iter().map(|(k, (sum, n))| (k.to_owned(), json!(sum / f64::from(n)))).collect()
}

fn seasons_or(seasons: Option<Vec<String>>, default: String) -> Result<Vec<String>, SportsError> {
    let seasons = seasons.filter(|s| !s.is_empty()).unwrap_or_else(|| vec![default]);
    if let Some(bad) = seasons.iter().find(|s| !valid_season(s)) {
        return Err(SportsError::invalid("seasons", format!("{bad:?} is not a season such as 2024-25")));
    }
    if seasons.len() > 10 {
        return Err(SportsError::invalid("seasons", "at most 10"));
    }
    Ok(seasons)
}

/// A player's per-game figures of one season's game log (the original's fallback figures, its
/// PER and win-share proxies included).
fn player_season_figures(rows: &[Map<String, Value>]) -> Map<String, Value> {
    let sum = |k: &str| rows.iter().filter_map(|r| r.get(k).and_then(Value::as_f64)).sum::<f64>();
    let games = rows.len() as f64;
    let mut out = Map::new();
    out.insert("games".into(), json!(rows.len()));
    if rows.is_empty() {
        return out;
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { json!(a / b) } else { Value::Null };
    out.insert("PTS_per_game".into(), json!(sum("PTS") / games));
    out.insert("AST_per_game".into(), json!(sum("AST") / games));
    out.insert("REB_per_game".into(), json!(sum("REB") / games));
    out.insert("FG_pct".into(), ratio(sum("FGM"), sum("FGA")));
    out.insert("FG3_pct".into(), ratio(sum("FG3M"), sum("FG3A")));
    out.insert("FT_pct".into(), ratio(sum("FTM"), sum("FTA")));
    out.insert("TS_PCT".into(), ratio(sum("PTS"), 2.0 * (sum("FGA") + 0.44 * sum("FTA"))));
    // Efficiency a game: PTS + REB + AST + STL + BLK − missed FG − missed FT − TOV.
    let eff = (sum("PTS") + sum("REB") + sum("AST") + sum("STL") + sum("BLK")
        - (sum("FGA") - sum("FGM")).max(0.0)
        - (sum("FTA") - sum("FTM")).max(0.0)
        - sum("TOV"))
        / games;
    let minutes = sum("MIN") / games;
    let ws_per_game = eff.max(0.0) * 0.018 * if minutes > 0.0 { minutes / 30.0 } else { 1.0 } * 0.31;
    out.insert("PER_proxy".into(), if eff == 0.0 { Value::Null } else { json!(eff * 2.5) });
    out.insert("PER".into(), json!(eff * 2.5 * 0.34));
    out.insert("WS_proxy_per_game".into(), json!(ws_per_game));
    out.insert("WS".into(), json!(ws_per_game * games));
    out.insert("_per_ws_agg_games".into(), json!(rows.len()));
    out
}

impl SportsService {
    /// A player's context: the summary, the rolling features of its recent games, rest and
    /// venue of the latest game, and the latest opponent's ratings.
    pub async fn player_context(
        &self,
        name: &str,
        limit: i64,
        season: Option<&str>,
    ) -> Result<PlayerContext, SportsError> {
        let summary = self.player_summary(name, "points", limit, season).await?;
        let values: Vec<Option<f64>> = summary.recent_games.iter().map(|g| g.stat_value.as_f64()).collect();
        let rolling = features::rolling(&values).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let latest = summary.recent_games.first();
        let matchup = latest.and_then(|g| g.matchup.as_str()).unwrap_or_default();
        let is_home = i64::from(matchup.contains(" vs. "));
        let opponent_abbreviation = matchup.split([' ']).next_back().unwrap_or_default().to_owned();
        let opponent_info = if opponent_abbreviation.is_empty() {
            None
        } else {
            let teams = self.team_seasons(&summary.season).await?;
            teams.values().find(|t| t.abbreviation == opponent_abbreviation).map(|t| OpponentInfo {
                team_id: t.team_id,
                team: t.abbreviation.clone(),
                defensive_rating: t.defensive_rating,
                pace: t.pace,
            })
        };
        let days_rest = summary.contextual_factors.days_rest.unwrap_or(0);
        Ok(PlayerContext {
            player: summary.player.clone(),
            player_id: summary.player_id,
            recent_games: summary.recent_games.iter().map(|g| json!(g)).collect(),
            season_avg: summary.season_avg,
            rolling_averages: rolling,
            contextual_factors: ContextFactors {
                is_home,
                days_rest,
                is_back_to_back: i64::from(summary.contextual_factors.is_back_to_back),
            },
            opponent_info,
            fetched_at: Utc::now().timestamp(),
            cached: summary.cached,
        })
    }

    /// Summaries of `items`, at most `concurrency` at once, in the items' order; an item that
    /// fails is `{player, error}` and the others go on.
    pub async fn batch_summaries(&self, items: Vec<BatchItem>, concurrency: usize) -> Vec<Value> {
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.clamp(1, 16)));
        let tasks: Vec<_> = items
            .into_iter()
            .map(|item| {
                let (service, permits) = (self.clone(), permits.clone());
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    if item.player.trim().is_empty() {
                        return json!({"player": item.player, "error": "player name required"});
                    }
                    let stat = item.stat.unwrap_or_else(|| "points".into());
                    match service.player_summary(&item.player, &stat, item.limit.unwrap_or(8), None).await {
                        Ok(summary) => with_debug(&summary),
                        Err(e) => json!({"player": item.player, "error": e.to_string()}),
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            out.push(task.await.unwrap_or_else(|e| json!({"error": e.to_string()})));
        }
        out
    }

    /// A player's per-season figures from each season's game log. An unknown player is the
    /// same shape with `player_id: null` and no figures (the original's answer).
    pub async fn player_advanced(
        &self,
        name: &str,
        seasons: Option<Vec<String>>,
    ) -> Result<Value, SportsError> {
        let seasons = seasons_or(seasons, self.default_season())?;
        let player = match self.find_player(name).await {
            Ok(p) => p,
            Err(SportsError::NotFound(_)) => {
                return Ok(json!({"player": name, "player_id": null, "seasons": seasons,
                    "advanced": {"per_season": {}, "aggregated": {}}}))
            }
            Err(e) => return Err(e),
        };
        let mut per_season = BTreeMap::new();
        for season in &seasons {
            let key = format!("player_advanced:{}:{season}", player.id);
            let (figures, _, _) = self
                .cached(&key, std::time::Duration::from_secs(24 * 3600), || async {
                    let log = self.nba().player_game_log(player.id, season).await?;
                    Ok(player_season_figures(&log.records()))
                })
                .await?;
            per_season.insert(season.clone(), figures);
        }
        let advanced = Advanced { aggregated: aggregate(&per_season), per_season };
        Ok(json!({"player": name, "player_id": player.id, "seasons": seasons, "advanced": advanced}))
    }

    /// A team's per-season figures (points for and against, shooting, ratings, pace).
    pub async fn team_advanced(
        &self,
        team_id: i64,
        seasons: Option<Vec<String>>,
    ) -> Result<Value, SportsError> {
        if team_id <= 0 {
            return Err(SportsError::invalid("team_id", "team_id is required"));
        }
        let seasons = seasons_or(seasons, self.default_season())?;
        let mut per_season = BTreeMap::new();
        for season in &seasons {
            let teams = self.team_seasons(season).await?;
            let mut figures = Map::new();
            match teams.get(&team_id) {
                Some(t) => {
                    figures.insert("games".into(), json!(t.games));
                    figures.insert("PTS_avg".into(), json!(t.pts_avg));
                    figures.insert("OPP_PTS_avg".into(), json!(t.opp_pts_avg));
                    figures.insert(
                        "PTS_diff".into(),
                        json!(((t.pts_avg - t.opp_pts_avg) * 100.0).round() / 100.0),
                    );
                    figures.insert("FG_pct".into(), json!(t.fg_pct));
                    figures.insert("FT_pct".into(), json!(t.ft_pct));
                    figures.insert("OFF_RATING".into(), json!(t.offensive_rating));
                    figures.insert("DEF_RATING".into(), json!(t.defensive_rating));
                    figures.insert("PACE".into(), json!(t.pace));
                }
                None => {
                    figures.insert("games".into(), json!(0));
                }
            }
            per_season.insert(season.clone(), figures);
        }
        let advanced = Advanced { aggregated: aggregate(&per_season), per_season };
        Ok(json!({"team_id": team_id, "seasons": seasons, "advanced": advanced}))
    }
}

/// A summary with the original's `debug` block, as its batch and POST context answered.
pub fn with_debug(summary: &PlayerSummary) -> Value {
    let mut value = json!(summary);
    value["debug"] = super::debug_block(summary);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seasons_figures_follow_the_originals_formulas() {
        let game = |pts: i64| {
            json!({"PTS": pts, "REB": 5, "AST": 4, "STL": 1, "BLK": 1, "FGM": 8, "FGA": 16, "FG3M": 2, "FG3A": 5,
                "FTM": 4, "FTA": 5, "TOV": 2, "MIN": 30})
            .as_object()
            .unwrap()
            .clone()
        };
        let f = player_season_figures(&[game(22), game(18)]);
        assert_eq!(f["games"], 2);
        assert_eq!(f["PTS_per_game"], 20.0);
        assert_eq!(f["FG_pct"], 0.5);
        // TS% = 40 / (2 · (32 + 0.44 · 10))
        assert_eq!(f["TS_PCT"].as_f64().unwrap(), 40.0 / (2.0 * (32.0 + 4.4)));
        // eff = (40 + 10 + 8 + 2 + 2 − 16 − 2 − 4) / 2 = 20
        assert_eq!(f["PER_proxy"], 50.0);
        let per_season: BTreeMap<String, Map<String, Value>> =
            [("a".to_owned(), f.clone()), ("b".to_owned(), player_season_figures(&[game(30)]))].into();
        assert_eq!(aggregate(&per_season)["PTS_per_game"], 25.0);
        assert_eq!(player_season_figures(&[])["games"], 0);
    }
}
