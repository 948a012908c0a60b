//! What the routes call: player lookup and summaries over stats.nba.com, through the shared
//! cache (a fresh copy for the original's time to live, and a stale one kept longer, served
//! marked `stale` when stats.nba.com fails). Knows no HTTP.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sightline_platform::cache::Cache;
use utoipa::ToSchema;

use crate::error::SportsError;
use crate::nba::{season_of, valid_season, NbaStats, ResultSet};
use crate::players::{Directory, PlayerEntry};

/// How long the player list is kept (the original's 24 h).
const PLAYERS_TTL: Duration = Duration::from_secs(24 * 3600);
/// How long a summary is kept (the original's 10 min).
const SUMMARY_TTL: Duration = Duration::from_secs(600);
/// How long a stale copy stays to answer with while stats.nba.com is failing.
const STALE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Most recent games a summary lists.
pub const MAX_LIMIT: i64 = 100;

/// The column of a stat name: `points`/`pts` → `PTS`, `assists`/`ast`, `rebounds`/`reb`,
/// `steals`/`stl`, `blocks`/`blk`; anything else upper-cased (the original's mapping).
pub fn stat_column(stat: &str) -> String {
    match stat.trim().to_lowercase().as_str() {
        "points" | "pts" => "PTS".into(),
        "assists" | "ast" => "AST".into(),
        "rebounds" | "reb" => "REB".into(),
        "steals" | "stl" => "STL".into(),
        "blocks" | "blk" => "BLK".into(),
        other => other.to_uppercase(),
    }
}

/// A game log date: `APR 10, 2024` (any case), or ISO.
pub fn parse_game_date(text: &str) -> Option<NaiveDate> {
    let title: String = text
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
        .collect();
    NaiveDate::parse_from_str(&title, "%b %d, %Y")
        .or_else(|_| NaiveDate::parse_from_str(text, "%Y-%m-%d"))
        .or_else(|_| NaiveDate::parse_from_str(text.get(..10).unwrap_or(text), "%Y-%m-%d"))
        .or_else(|_| NaiveDate::parse_from_str(text, "%m/%d/%Y"))
        .ok()
}

/// One recent game of a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentGame {
    /// `GAME_DATE` as stats.nba.com writes it.
    pub game_date: Value,
    /// `MATCHUP` (`LAL vs. BOS` at home, `LAL @ BOS` away).
    pub matchup: Value,
    /// The stat's value in that game.
    pub stat_value: Value,
    /// The whole game-log row, keyed by stats.nba.com's column names.
    #[schema(value_type = Object)]
    pub raw: Map<String, Value>,
}

/// Rest before the latest game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContextualFactors {
    /// Days between the two latest games, less one (`null` with fewer than two games).
    pub days_rest: Option<i64>,
    /// Whether they were on consecutive days.
    pub is_back_to_back: bool,
}

/// `/player_summary`'s answer, in the original's shape plus a few fields beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerSummary {
    /// The name asked for.
    pub player: String,
    /// The stat asked for.
    pub stat: String,
    /// Always `nba`.
    pub league: String,
    /// `Last N games <stat>: v1, v2, …` (`null` without games).
    pub recent: Option<String>,
    /// The latest games, newest first.
    pub recent_games: Vec<RecentGame>,
    /// The original's figure: the mean over the **recent** games listed, 2 decimals.
    pub season_avg: Option<f64>,
    /// The mean over every game of the season so far, 2 decimals (what `seasonAvg` is named for).
    pub full_season_avg: Option<f64>,
    /// Games of the season so far.
    pub season_games: i64,
    /// The season the games are from (`2024-25`).
    pub season: String,
    /// The player's stats.nba.com id.
    pub player_id: i64,
    /// The latest game's date.
    pub last_game_date: Option<Value>,
    /// Without games this season: the first season of his career (the original's figure).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_season: Option<String>,
    /// Without games this season: his latest season.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_season: Option<String>,
    /// Rest before the latest game.
    pub contextual_factors: ContextualFactors,
    /// When stats.nba.com was asked (`YYYY-MM-DDTHH:MM:SSZ`).
    pub fetched_at: String,
    /// `true` when the player has no games this season.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_games_this_season: Option<bool>,
    /// Why there are no games.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Served from the cache.
    pub cached: bool,
    /// Served from an older copy because stats.nba.com is failing now.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub stale: bool,
}

/// The module's service.
#[derive(Clone)]
pub struct SportsService {
    nba: NbaStats,
    cache: Cache,
}

impl SportsService {
    /// The service over stats.nba.com and the shared cache.
    pub fn new(nba: NbaStats, cache: Cache) -> Self {
        Self { nba, cache }
    }

    /// The stats.nba.com client.
    pub fn nba(&self) -> &NbaStats {
        &self.nba
    }

    /// The shared cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// `key`'s value: cached, or loaded and cached for `ttl`; when loading fails, a stale copy
    /// (marked by the `true` in the answer's second place) if one is kept.
    async fn cached<T, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        load: F,
    ) -> Result<(T, bool, bool), SportsError>
    where
        T: Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, SportsError>>,
    {
        let stale_key = format!("stale:{key}");
        let loaded = self
            .cache
            .get_or_load(key, ttl, || async {
                let value = load().await?;
                self.cache.set(&stale_key, &value, STALE_TTL).await;
                Ok::<_, SportsError>(value)
            })
            .await;
        match loaded {
            Ok((value, hit)) => Ok((value, hit, false)),
            Err(SportsError::Upstream(e)) => match self.cache.get::<T>(&stale_key).await {
                Some(value) => {
                    tracing::warn!(key, error = %e, "sports.serving_stale");
                    Ok((value, true, true))
                }
                None => Err(SportsError::Upstream(e)),
            },
            Err(e) => Err(e),
        }
    }

    /// The league's players (cached a day).
    pub async fn directory(&self) -> Result<Directory, SportsError> {
        let season = season_of(Utc::now().date_naive());
        let (directory, _, _) = self
            .cached("nba_all_players", PLAYERS_TTL, || async {
                Ok(Directory::from_result_set(&self.nba.all_players(&season).await?))
            })
            .await?;
        Ok(directory)
    }

    /// The player `name` names.
    pub async fn find_player(&self, name: &str) -> Result<PlayerEntry, SportsError> {
        let directory = self.directory().await?;
        directory.find(name).cloned().ok_or_else(|| SportsError::NotFound("player not found".into()))
    }

    /// A player's latest `limit` games of `season` (default: the current one) and what they say
    /// of `stat`.
    pub async fn player_summary(
        &self,
        name: &str,
        stat: &str,
        limit: i64,
        season: Option<&str>,
    ) -> Result<PlayerSummary, SportsError> {
        if name.trim().is_empty() {
            return Err(SportsError::invalid("player", "is required"));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(SportsError::invalid("limit", format!("must be 1 to {MAX_LIMIT}")));
        }
        if let Some(s) = season.filter(|s| !valid_season(s)) {
            return Err(SportsError::invalid("season", format!("{s:?} is not a season such as 2024-25")));
        }
        let season = season.map_or_else(|| season_of(Utc::now().date_naive()), str::to_owned);
        let key = format!("player_summary:{name}:{stat}:{limit}:{season}");
        let (mut summary, cached, stale) = self
            .cached(&key, SUMMARY_TTL, || async {
                let player = self.find_player(name).await?;
                let log = self.nba.player_game_log(player.id, &season).await?;
                let mut summary = summarise(name, stat, limit, &season, &player, &log);
                if summary.recent_games.is_empty() {
                    let career = self.nba.player_career_stats(player.id).await?;
                    let seasons: Vec<String> = career
                        .first()
                        .map(|set| {
                            set.records()
                                .iter()
                                .filter_map(|r| r.get("SEASON_ID").and_then(Value::as_str).map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    summary.last_season = seasons.first().cloned();
                    summary.latest_season = seasons.last().cloned();
                }
                Ok(summary)
            })
            .await?;
        summary.cached = cached;
        summary.stale = stale;
        Ok(summary)
    }
}

/// The summary of a season's game `log` (newest first).
fn summarise(
    name: &str,
    stat: &str,
    limit: i64,
    season: &str,
    player: &PlayerEntry,
    log: &ResultSet,
) -> PlayerSummary {
    let column = stat_column(stat);
    let rows = log.records();
    let value_of = |r: &Map<String, Value>| r.get(&column).cloned().unwrap_or(Value::Null);
    let mean = |values: Vec<f64>| {
        (!values.is_empty())
            .then(|| (values.iter().sum::<f64>() / values.len() as f64 * 100.0).round() / 100.0)
    };
    let recent: Vec<RecentGame> = rows
        .iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|r| RecentGame {
            game_date: r.get("GAME_DATE").cloned().unwrap_or(Value::Null),
            matchup: r.get("MATCHUP").cloned().unwrap_or(Value::Null),
            stat_value: value_of(r),
            raw: r.clone(),
        })
        .collect();
    let dates: Vec<NaiveDate> =
        recent.iter().take(2).filter_map(|g| g.game_date.as_str().and_then(parse_game_date)).collect();
    let days_rest = match dates.as_slice() {
        [latest, before] => Some(((*latest - *before).num_days() - 1).max(0)),
        _ => None,
    };
    let shown: Vec<String> = recent
        .iter()
        .map(|g| if g.stat_value.is_null() { "null".to_owned() } else { g.stat_value.to_string() })
        .collect();
    let no_games = recent.is_empty();
    PlayerSummary {
        player: name.to_owned(),
        stat: stat.to_owned(),
        league: "nba".into(),
        recent: (!no_games).then(|| format!("Last {} games {stat}: {}", recent.len(), shown.join(", "))),
        season_avg: mean(recent.iter().filter_map(|g| g.stat_value.as_f64()).collect()),
        full_season_avg: mean(rows.iter().filter_map(|r| value_of(r).as_f64()).collect()),
        season_games: rows.len() as i64,
        season: season.to_owned(),
        player_id: player.id,
        last_game_date: recent.first().map(|g| g.game_date.clone()),
        last_season: None,
        latest_season: None,
        contextual_factors: ContextualFactors { days_rest, is_back_to_back: days_rest == Some(0) },
        fetched_at: Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        no_games_this_season: no_games.then_some(true),
        note: no_games.then(|| format!("No {season} games found for this player")),
        recent_games: recent,
        cached: false,
        stale: false,
    }
}

/// The debug block of a summary (`debug=1`).
pub fn debug_block(summary: &PlayerSummary) -> Value {
    json!({"player_query": summary.player, "found_player_id": summary.player_id,
        "recent_count": summary.recent_games.len()})
}
