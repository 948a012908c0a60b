//! What the routes call: player lookup and summaries over stats.nba.com, through the shared
//! cache (a fresh copy for the original's time to live, and a stale one kept longer, served
//! marked `stale` when stats.nba.com fails); contexts, batches and advanced figures
//! ([`context`]), team figures ([`teams`]), predictions ([`predict`]), and the status routes.
//! Knows no HTTP.

pub mod context;
pub mod predict;
pub mod teams;

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

/// The first and last day a season's games can be on (October to June).
pub fn season_bounds(season: &str) -> (NaiveDate, NaiveDate) {
    let start: i32 = season.get(..4).and_then(|y| y.parse().ok()).unwrap_or(2000);
    (
        NaiveDate::from_ymd_opt(start, 10, 1).expect("a date"),
        NaiveDate::from_ymd_opt(start + 1, 6, 30).expect("a date"),
    )
}

/// How big batches may be and how many items a client may ask for a minute.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Items in one batch at most (`MAX_BATCH_SIZE`).
    pub max_batch_size: usize,
    /// Items a client may ask for a minute (`BATCH_MAX_RPM`), refilled continuously.
    pub per_minute: u32,
}

type KeyedLimiter = governor::RateLimiter<
    String,
    governor::state::keyed::HashMapStateStore<String>,
    governor::clock::DefaultClock,
>;

/// What the service is built from.
pub struct ServiceParts {
    /// stats.nba.com.
    pub nba: NbaStats,
    /// The shared cache.
    pub cache: Cache,
    /// The database.
    pub db: sightline_platform::Db,
    /// The job queue.
    pub queue: sightline_platform::queue::Queue,
    /// The database URL without credentials, for `/debug/status`.
    pub database_shown: String,
    /// The Redis URL without credentials, when configured.
    pub redis_shown: Option<String>,
    /// Batch limits.
    pub limits: BatchLimits,
    /// The season when a request names none.
    pub default_season: Option<String>,
    /// Ingestion's settings.
    pub ingest: crate::ingest::IngestSettings,
}

/// The module's service.
#[derive(Clone)]
pub struct SportsService {
    limits: BatchLimits,
    batch_limiter: std::sync::Arc<KeyedLimiter>,
    nba: NbaStats,
    cache: Cache,
    db: sightline_platform::Db,
    /// The database URL without credentials, for `/debug/status`.
    database_shown: String,
    /// The Redis URL without credentials, when configured.
    redis_shown: Option<String>,
    /// The season when a request names none (`None`: the current one by date).
    default_season: Option<String>,
    queue: sightline_platform::queue::Queue,
    ingest: std::sync::Arc<crate::ingest::IngestSettings>,
}

impl SportsService {
    /// The service over its parts.
    pub fn new(parts: ServiceParts) -> Self {
        let per_minute = std::num::NonZeroU32::new(parts.limits.per_minute.max(1)).expect("at least 1");
        let batch_limiter =
            std::sync::Arc::new(governor::RateLimiter::hashmap(governor::Quota::per_minute(per_minute)));
        Self {
            limits: parts.limits,
            batch_limiter,
            nba: parts.nba,
            cache: parts.cache,
            db: parts.db,
            database_shown: parts.database_shown,
            redis_shown: parts.redis_shown,
            default_season: parts.default_season,
            queue: parts.queue,
            ingest: std::sync::Arc::new(parts.ingest),
        }
    }

    /// The database.
    pub fn db(&self) -> &sightline_platform::Db {
        &self.db
    }

    /// The job queue.
    pub fn queue(&self) -> &sightline_platform::queue::Queue {
        &self.queue
    }

    /// Ingestion's settings.
    pub fn ingest_settings(&self) -> &crate::ingest::IngestSettings {
        &self.ingest
    }

    /// The season when a request names none.
    pub fn default_season(&self) -> String {
        self.default_season.clone().unwrap_or_else(|| season_of(Utc::now().date_naive()))
    }

    /// Items one batch may have.
    pub fn max_batch_size(&self) -> usize {
        self.limits.max_batch_size
    }

    /// Admits a batch of `items` from `client` against its share of the minute (an empty batch
    /// counts as one), or says why not: too big (400) or too many lately (429, with the wait).
    /// With Redis the share is counted there, across every process; else in this process.
    pub async fn admit_batch(&self, client: &str, items: usize) -> Result<(), SportsError> {
        use governor::clock::Clock as _;
        if items > self.limits.max_batch_size {
            return Err(SportsError::BatchTooLarge(self.limits.max_batch_size));
        }
        let cost =
            std::num::NonZeroU32::new(u32::try_from(items.max(1)).unwrap_or(u32::MAX)).expect("at least 1");
        let shared = self
            .cache
            .take_tokens(&format!("sports_batch:{client}"), cost.get(), self.limits.per_minute.max(1))
            .await;
        match shared {
            Some(Ok(())) => return Ok(()),
            Some(Err(wait)) => return Err(SportsError::RateLimited(wait.max(Duration::from_secs(1)))),
            None => {}
        }
        if self.batch_limiter.len() > 10_000 {
            self.batch_limiter.retain_recent();
        }
        match self.batch_limiter.check_key_n(&client.to_owned(), cost) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
                Err(SportsError::RateLimited(wait.max(Duration::from_secs(1))))
            }
            Err(_) => Err(SportsError::RateLimited(Duration::from_secs(60))),
        }
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

    /// `/api/db_health`: `{ok, db: {ok, error?}}`.
    pub async fn db_health(&self) -> Value {
        match sqlx::query("SELECT 1").execute(self.db.reader()).await {
            Ok(_) => json!({"ok": true, "db": {"ok": true}}),
            Err(e) => {
                tracing::warn!(error = %e, "sports.db_health_failed");
                json!({"ok": false, "db": {"ok": false, "error": "the database did not answer"}})
            }
        }
    }

    /// `/api/nba_status`: whether stats.nba.com answers (the player list and LeBron James's
    /// three latest games), and the client's breaker.
    pub async fn nba_status(&self) -> Value {
        let directory = self.directory().await;
        let sample = match &directory {
            Ok(d) => {
                let found = d.find("LeBron James").cloned();
                let recent = match &found {
                    Some(p) => self
                        .nba
                        .player_game_log(p.id, &self.default_season())
                        .await
                        .map(|log| log.rows.len().min(3))
                        .ok(),
                    None => None,
                };
                json!({"name": "LeBron James", "player_id": found.map(|p| p.id), "recent_count": recent})
            }
            Err(_) => Value::Null,
        };
        json!({
            "nba_api_installed": true,
            "can_fetch_players": directory.is_ok(),
            "sample_player": sample,
            "cached_logs_exist": false,
            "base_url": self.nba.outbound().base_url(),
            "breaker": format!("{:?}", self.nba.outbound().breaker_state()).to_lowercase(),
        })
    }

    /// `/debug/status`: the database, Redis and the cache, without secrets.
    pub async fn debug_status(&self) -> Value {
        let db = self.db_health().await;
        let cache = self.cache.status().await;
        let counters = self.cache.counters();
        json!({
            "db": {"url": self.database_shown, "ok": db["ok"], "error": db["db"]["error"]},
            "redis": {"installed": true, "env": self.redis_shown, "can_connect": cache.redis_connected,
                "error": cache.redis_error},
            "cache_metrics": {"hits": counters.hits, "misses": counters.misses, "sets": counters.sets,
                "deletes": counters.deletes, "expirations": 0},
            "cache": cache,
        })
    }

    /// The league's players (cached a day).
    pub async fn directory(&self) -> Result<Directory, SportsError> {
        let season = self.default_season();
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
        let season = season.map_or_else(|| self.default_season(), str::to_owned);
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
