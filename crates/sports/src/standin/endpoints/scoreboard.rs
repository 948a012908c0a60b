//! The scoreboards: `scoreboardv2`'s result sets and `scoreboardv3`'s nested shape.

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::super::league::{season_of, Game};
use super::{envelope, required, set, Answers, BadRequest, Params};

impl Answers {
    /// The games of `date` with their final scores (`None` before they are played).
    fn games_on(&self, date: NaiveDate) -> Vec<(Game, Option<(i64, i64)>)> {
        let season = self.season(season_of(date));
        season
            .games
            .iter()
            .zip(&season.boxes)
            .filter(|(g, _)| g.date == date)
            .map(|(g, b)| (g.clone(), (g.date < self.today).then(|| b.score())))
            .collect()
    }

    /// `scoreboardv2`: `GameHeader` and `LineScore` of the day's games (other sets empty).
    pub fn scoreboard_v2(&self, q: &Params) -> Result<Value, BadRequest> {
        let given = required(q, "GameDate")?;
        let date = NaiveDate::parse_from_str(given, "%Y-%m-%d")
            .or_else(|_| NaiveDate::parse_from_str(given, "%m/%d/%Y"))
            .map_err(|_| BadRequest("The field GameDate must be a date.".into()))?;
        let est = format!("{}T00:00:00", date.format("%Y-%m-%d"));
        let mut header_rows = Vec::new();
        let mut line_rows = Vec::new();
        for (i, (game, score)) in self.games_on(date).into_iter().enumerate() {
            let (home, away) = (&self.league.teams[game.home], &self.league.teams[game.away]);
            let status = if score.is_some() { (3, "Final") } else { (1, "7:30 pm ET") };
            header_rows.push(vec![
                json!(est),
                json!(i + 1),
                json!(game.id),
                json!(status.0),
                json!(status.1),
                json!(format!("{}/{}{}", date.format("%Y%m%d"), away.abbreviation, home.abbreviation)),
                json!(home.id),
                json!(away.id),
                json!(season_of(date).to_string()),
                json!(4),
                json!(""),
                Value::Null,
                Value::Null,
                Value::Null,
                json!("Q4 - "),
                json!(format!("{} Arena", home.city)),
                json!(0),
            ]);
            for (team, pts) in [(away, score.map(|s| s.1)), (home, score.map(|s| s.0))] {
                line_rows.push(vec![
                    json!(est),
                    json!(i + 1),
                    json!(game.id),
                    json!(team.id),
                    json!(team.abbreviation),
                    json!(team.city),
                    json!(team.nickname),
                    json!(""),
                    json!(pts),
                ]);
            }
        }
        let header = [
            "GAME_DATE_EST",
            "GAME_SEQUENCE",
            "GAME_ID",
            "GAME_STATUS_ID",
            "GAME_STATUS_TEXT",
            "GAMECODE",
            "HOME_TEAM_ID",
            "VISITOR_TEAM_ID",
            "SEASON",
            "LIVE_PERIOD",
            "LIVE_PC_TIME",
            "NATL_TV_BROADCASTER_ABBREVIATION",
            "HOME_TV_BROADCASTER_ABBREVIATION",
            "AWAY_TV_BROADCASTER_ABBREVIATION",
            "LIVE_PERIOD_TIME_BCAST",
            "ARENA_NAME",
            "WH_STATUS",
        ];
        let line = [
            "GAME_DATE_EST",
            "GAME_SEQUENCE",
            "GAME_ID",
            "TEAM_ID",
            "TEAM_ABBREVIATION",
            "TEAM_CITY_NAME",
            "TEAM_NAME",
            "TEAM_WINS_LOSSES",
            "PTS",
        ];
        Ok(envelope(
            "scoreboardV2",
            json!({"GameDate": date.format("%m/%d/%Y").to_string(), "LeagueID": "00", "DayOffset": "0"}),
            vec![
                set("GameHeader", &header, header_rows),
                set("LineScore", &line, line_rows),
                set("SeriesStandings", &["GAME_ID"], vec![]),
                set("LastMeeting", &["GAME_ID"], vec![]),
                set("EastConfStandingsByDay", &["TEAM_ID"], vec![]),
                set("WestConfStandingsByDay", &["TEAM_ID"], vec![]),
                set("Available", &["GAME_ID", "PT_AVAILABLE"], vec![]),
                set("TeamLeaders", &["GAME_ID"], vec![]),
                set("TicketLinks", &["GAME_ID"], vec![]),
                set("WinProbability", &[], vec![]),
            ],
        ))
    }

    /// `scoreboardv3`: the nested camelCase shape.
    pub fn scoreboard_v3(&self, q: &Params) -> Result<Value, BadRequest> {
        let date = NaiveDate::parse_from_str(required(q, "GameDate")?, "%Y-%m-%d")
            .map_err(|_| BadRequest("The field GameDate must be a date (YYYY-MM-DD).".into()))?;
        let games: Vec<Value> = self
            .games_on(date)
            .into_iter()
            .map(|(game, score)| {
                let team = |t: usize, pts: Option<i64>| {
                    let t = &self.league.teams[t];
                    json!({"teamId": t.id, "teamName": t.nickname, "teamCity": t.city, "teamTricode": t.abbreviation,
                        "teamSlug": t.nickname.to_lowercase(), "score": pts.unwrap_or(0), "periods": []})
                };
                let (home, away) = (&self.league.teams[game.home], &self.league.teams[game.away]);
                json!({
                    "gameId": game.id,
                    "gameCode": format!("{}/{}{}", date.format("%Y%m%d"), away.abbreviation, home.abbreviation),
                    "gameStatus": if score.is_some() { 3 } else { 1 },
                    "gameStatusText": if score.is_some() { "Final" } else { "7:30 pm ET" },
                    "period": if score.is_some() { 4 } else { 0 },
                    "gameTimeUTC": format!("{}T23:30:00Z", date.format("%Y-%m-%d")),
                    "homeTeam": team(game.home, score.map(|s| s.0)),
                    "awayTeam": team(game.away, score.map(|s| s.1)),
                })
            })
            .collect();
        Ok(json!({
            "meta": {"version": 1, "request": format!("scoreboardv3?GameDate={date}&LeagueID=00")},
            "scoreboard": {"gameDate": date.format("%Y-%m-%d").to_string(), "leagueId": "00",
                "leagueName": "National Basketball Association", "games": games},
        }))
    }
}
