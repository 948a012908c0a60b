//! The ingested league: players, games, each player's line of each game, and team seasons.

use sightline_platform::db::{backend_of, now_ms, rows_per_statement};
use sqlx::AnyConnection;

/// A game as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct GameRow {
    /// stats.nba.com game id.
    pub id: String,
    /// `YYYY-MM-DD`.
    pub game_date: String,
    /// `2024-25`.
    pub season: String,
    /// Home team abbreviation.
    pub home_team: String,
    /// Visitors' abbreviation.
    pub away_team: String,
    /// Home points.
    pub home_score: Option<i64>,
    /// Visitors' points.
    pub away_score: Option<i64>,
}

/// One player's line of one game.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerLineRow {
    /// stats.nba.com person id.
    pub player_id: i64,
    /// His name.
    pub player_name: String,
    /// The game.
    pub game_id: String,
    /// His team's abbreviation.
    pub team: String,
    /// Minutes, points, rebounds, assists, steals, blocks, turnovers, threes made, plus-minus.
    pub stats: [Option<f64>; 9],
}

/// Stands for a missing stat in a statement's values (no real stat comes near it).
const MISSING: f64 = -9e300;

/// The stat columns of `sports_player_stats`, in [`PlayerLineRow::stats`] order.
pub const STAT_COLUMNS: [&str; 9] =
    ["minutes", "points", "rebounds", "assists", "steals", "blocks", "turnovers", "threes", "plus_minus"];

/// Writes `games`, the players of `lines` and the lines (a game or line written again replaces
/// the old one), and recomputes the season figures of every team playing in `games`.
pub async fn upsert(
    conn: &mut AnyConnection,
    games: &[GameRow],
    lines: &[PlayerLineRow],
) -> Result<(), sqlx::Error> {
    let backend = backend_of(conn);
    let now = now_ms();
    for chunk in games.chunks(rows_per_statement(8)) {
        let sql = format!(
            "INSERT INTO sports_games (id, game_date, season, home_team, away_team, home_score, away_score, updated_at) \
             SELECT v.* FROM (VALUES {}) AS v WHERE true ON CONFLICT (id) DO UPDATE SET game_date = excluded.game_date, \
             season = excluded.season, home_team = excluded.home_team, away_team = excluded.away_team, \
             home_score = excluded.home_score, away_score = excluded.away_score, updated_at = excluded.updated_at",
            backend.sequential_rows(chunk.len(), 8)
        );
        let mut q = sqlx::query(&sql);
        for g in chunk {
            q = q
                .bind(&g.id)
                .bind(&g.game_date)
                .bind(&g.season)
                .bind(&g.home_team)
                .bind(&g.away_team)
                .bind(g.home_score.unwrap_or(0))
                .bind(g.away_score.unwrap_or(0))
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    let mut players: Vec<&PlayerLineRow> = lines.iter().collect();
    players.sort_by_key(|l| l.player_id);
    players.dedup_by_key(|l| l.player_id);
    for chunk in players.chunks(rows_per_statement(4)) {
        let sql = format!(
            "INSERT INTO sports_players (id, name, team, updated_at) SELECT v.* FROM (VALUES {}) AS v WHERE true \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, team = excluded.team, updated_at = excluded.updated_at",
            backend.sequential_rows(chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q.bind(l.player_id).bind(&l.player_name).bind(&l.team).bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    let cols = 4 + STAT_COLUMNS.len();
    let stat_list = STAT_COLUMNS.join(", ");
    let updates = STAT_COLUMNS.iter().map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ");
    for chunk in lines.chunks(rows_per_statement(cols)) {
        // Stats are bound as numbers always (a NULL bound first would fix the type of a cached
        // statement's parameter on PostgreSQL): a missing one is the sentinel, stored as NULL.
        let select: Vec<String> = (1..=cols)
            .map(|i| {
                if i > 3 && i < cols {
                    format!("NULLIF(v.column{i}, {MISSING:e})")
                } else {
                    format!("v.column{i}")
                }
            })
            .collect();
        let sql = format!(
            "INSERT INTO sports_player_stats (player_id, game_id, team, {stat_list}, updated_at) \
             SELECT {} FROM (VALUES {}) AS v WHERE true ON CONFLICT (player_id, game_id) DO UPDATE SET \
             team = excluded.team, {updates}, updated_at = excluded.updated_at",
            select.join(", "),
            backend.sequential_rows(chunk.len(), cols)
        );
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q.bind(l.player_id).bind(&l.game_id).bind(&l.team);
            for v in l.stats {
                q = q.bind(v.unwrap_or(MISSING));
            }
            q = q.bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    let mut teams: Vec<(&str, &str)> = games
        .iter()
        .flat_map(|g| [(g.home_team.as_str(), g.season.as_str()), (g.away_team.as_str(), g.season.as_str())])
        .collect();
    teams.sort_unstable();
    teams.dedup();
    for (team, season) in teams {
        sqlx::query(
            "INSERT INTO sports_team_stats (team, season, games_count, pts_for_avg, pts_against_avg, updated_at) \
             SELECT $1, $2, COUNT(*), AVG(CASE WHEN home_team = $1 THEN home_score ELSE away_score END * 1.0), \
             AVG(CASE WHEN home_team = $1 THEN away_score ELSE home_score END * 1.0), $3 \
             FROM sports_games WHERE season = $2 AND (home_team = $1 OR away_team = $1) \
             ON CONFLICT (team, season) DO UPDATE SET games_count = excluded.games_count, \
             pts_for_avg = excluded.pts_for_avg, pts_against_avg = excluded.pts_against_avg, updated_at = excluded.updated_at",
        )
        .bind(team)
        .bind(season)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Every stored line of `stat` (a column of [`STAT_COLUMNS`]) with its game, in no order.
pub async fn history(
    conn: &mut AnyConnection,
    stat: &str,
) -> Result<Vec<crate::dataset::HistoryLine>, sqlx::Error> {
    use sqlx::Row as _;
    debug_assert!(STAT_COLUMNS.contains(&stat), "a known column");
    // The column name comes from the fixed list, never from the request.
    let column = STAT_COLUMNS.iter().find(|c| **c == stat).copied().unwrap_or("points");
    let rows = sqlx::query(&format!(
        "SELECT ps.player_id, p.name, ps.game_id, g.game_date, g.season, ps.team, g.home_team, g.away_team, \
         CAST(g.home_score AS DOUBLE PRECISION) AS home_score, CAST(g.away_score AS DOUBLE PRECISION) AS away_score, \
         ps.{column} AS value FROM sports_player_stats ps JOIN sports_games g ON g.id = ps.game_id \
         JOIN sports_players p ON p.id = ps.player_id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let date: String = r.try_get("game_date")?;
            Ok(crate::dataset::HistoryLine {
                player_id: r.try_get("player_id")?,
                player_name: r.try_get("name")?,
                game_id: r.try_get("game_id")?,
                game_date: chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                season: r.try_get("season")?,
                team: r.try_get("team")?,
                home_team: r.try_get("home_team")?,
                away_team: r.try_get("away_team")?,
                home_score: r.try_get("home_score")?,
                away_score: r.try_get("away_score")?,
                value: r.try_get("value")?,
            })
        })
        .collect()
}
