//! Team figures of a season from stats.nba.com's league game log (two rows a game, one per
//! team): points for and against, possessions, offensive and defensive ratings and pace. The
//! original had no opponent points (TeamGameLog has none), so its `OPP_PTS_avg` was always
//! missing; the league log has both sides.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::SportsService;
use crate::error::SportsError;

/// How long a season's team figures are kept (the original's 12 h for league logs).
const TEAMS_TTL: Duration = Duration::from_secs(12 * 3600);

/// One team's season so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TeamSeason {
    /// stats.nba.com team id.
    pub team_id: i64,
    /// Abbreviation.
    pub abbreviation: String,
    /// Games played.
    pub games: i64,
    /// Points scored a game.
    pub pts_avg: f64,
    /// Points allowed a game.
    pub opp_pts_avg: f64,
    /// Field goals made over attempted.
    pub fg_pct: Option<f64>,
    /// Free throws made over attempted.
    pub ft_pct: Option<f64>,
    /// Points per 100 possessions.
    pub offensive_rating: f64,
    /// Points allowed per 100 opponent possessions.
    pub defensive_rating: f64,
    /// Possessions a game (both teams' mean).
    pub pace: f64,
}

/// Possessions of one team's game line: FGA + 0.44·FTA − OREB + TOV.
fn possessions(row: &Map<String, Value>) -> f64 {
    let n = |k: &str| row.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    n("FGA") + 0.44 * n("FTA") - n("OREB") + n("TOV")
}

#[derive(Default)]
struct Sums {
    abbreviation: String,
    games: i64,
    pts: f64,
    opp_pts: f64,
    fgm: f64,
    fga: f64,
    ftm: f64,
    fta: f64,
    poss: f64,
    opp_poss: f64,
}

/// Each team's figures from a team-mode league game log.
pub fn team_seasons(rows: &[Map<String, Value>]) -> BTreeMap<i64, TeamSeason> {
    let mut games: BTreeMap<String, Vec<&Map<String, Value>>> = BTreeMap::new();
    for row in rows {
        if let Some(id) = row.get("GAME_ID").and_then(Value::as_str) {
            games.entry(id.to_owned()).or_default().push(row);
        }
    }
    let mut sums: BTreeMap<i64, Sums> = BTreeMap::new();
    for sides in games.values() {
        let [a, b] = sides.as_slice() else { continue };
        for (us, them) in [(a, b), (b, a)] {
            let Some(team) = us.get("TEAM_ID").and_then(Value::as_i64) else { continue };
            let n = |row: &Map<String, Value>, k: &str| row.get(k).and_then(Value::as_f64).unwrap_or(0.0);
            let s = sums.entry(team).or_default();
            s.abbreviation =
                us.get("TEAM_ABBREVIATION").and_then(Value::as_str).unwrap_or_default().to_owned();
            s.games += 1;
            s.pts += n(us, "PTS");
            s.opp_pts += n(them, "PTS");
            s.fgm += n(us, "FGM");
            s.fga += n(us, "FGA");
            s.ftm += n(us, "FTM");
            s.fta += n(us, "FTA");
            s.poss += possessions(us);
            s.opp_poss += possessions(them);
        }
    }
    let round = |x: f64| (x * 100.0).round() / 100.0;
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| (a / b * 1000.0).round() / 1000.0);
    sums.into_iter()
        .map(|(team_id, s)| {
            let g = s.games as f64;
            let season = TeamSeason {
                team_id,
                abbreviation: s.abbreviation,
                games: s.games,
                pts_avg: round(s.pts / g),
                opp_pts_avg: round(s.opp_pts / g),
                fg_pct: ratio(s.fgm, s.fga),
                ft_pct: ratio(s.ftm, s.fta),
                offensive_rating: round(100.0 * s.pts / s.poss.max(1.0)),
                defensive_rating: round(100.0 * s.opp_pts / s.opp_poss.max(1.0)),
                pace: round((s.poss + s.opp_poss) / 2.0 / g),
            };
            (team_id, season)
        })
        .collect()
}

impl SportsService {
    /// Every team's figures of `season` so far (cached 12 h).
    pub async fn team_seasons(&self, season: &str) -> Result<BTreeMap<i64, TeamSeason>, SportsError> {
        let key = format!("team_seasons:{season}");
        let (start, end) = super::season_bounds(season);
        let (teams, _, _) = self
            .cached(&key, TEAMS_TTL, || async {
                let log = self.nba().league_game_log(season, false, start, end).await?;
                Ok(team_seasons(&log.records()))
            })
            .await?;
        Ok(teams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_sides_of_each_game_make_the_figures() {
        let row = |game: &str, team: i64, pts: i64| {
            json!({"GAME_ID": game, "TEAM_ID": team, "TEAM_ABBREVIATION": format!("T{team}"), "PTS": pts,
                "FGM": 40, "FGA": 80, "FTM": 15, "FTA": 20, "OREB": 10, "TOV": 12})
            .as_object()
            .unwrap()
            .clone()
        };
        let rows =
            vec![row("g1", 1, 110), row("g1", 2, 100), row("g2", 1, 90), row("g2", 3, 95), row("g3", 9, 1)];
        let teams = team_seasons(&rows);
        let one = &teams[&1];
        assert_eq!((one.games, one.pts_avg, one.opp_pts_avg), (2, 100.0, 97.5));
        // 80 + 0.44·20 − 10 + 12 = 90.8 possessions a side.
        assert_eq!(one.pace, 90.8);
        assert_eq!(one.offensive_rating, ((100.0 * 200.0 / 181.6_f64) * 100.0).round() / 100.0);
        assert_eq!(one.fg_pct, Some(0.5));
        assert!(!teams.contains_key(&9), "a game with one side is left out");
    }
}
