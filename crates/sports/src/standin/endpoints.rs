//! The stand-in's answers, in stats.nba.com's envelope (`resource`, `parameters`, `resultSets`
//! of `name`, `headers`, `rowSet`), column for column as FACTS-002 section 1.4 records them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::league::{
    season_name, season_of, season_start_year, BoxScore, Game, League, PlayerLine, FIRST_SEASON,
};

/// A request stats.nba.com would refuse: 400 with this plain text.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRequest(pub String);

/// A season's games with their box scores.
struct Season {
    games: Vec<Game>,
    boxes: Vec<BoxScore>,
}

/// The league, the day the stand-in lives on (games before it have been played), and the
/// seasons computed so far.
pub struct Answers {
    league: League,
    today: NaiveDate,
    seasons: Mutex<HashMap<i32, Arc<Season>>>,
}

mod scoreboard;

type Params = HashMap<String, String>;

fn param<'a>(q: &'a Params, key: &str) -> Option<&'a str> {
    q.get(key).map(String::as_str).filter(|v| !v.is_empty())
}

fn required<'a>(q: &'a Params, key: &str) -> Result<&'a str, BadRequest> {
    param(q, key).ok_or_else(|| BadRequest(format!("{key} is required")))
}

fn id(q: &Params, key: &str) -> Result<i64, BadRequest> {
    required(q, key)?
        .parse::<i64>()
        .ok()
        .filter(|v| (1..=2_147_483_647).contains(v))
        .ok_or_else(|| BadRequest(format!("The field {key} must be between 1 and 2147483647.")))
}

/// `MM/DD/YYYY` (stats.nba.com's date filters) or ISO.
fn date_param(q: &Params, key: &str) -> Result<Option<NaiveDate>, BadRequest> {
    param(q, key)
        .map(|v| {
            NaiveDate::parse_from_str(v, "%m/%d/%Y")
                .or_else(|_| NaiveDate::parse_from_str(v, "%Y-%m-%d"))
                .map_err(|_| BadRequest(format!("The field {key} must be a date (MM/DD/YYYY).")))
        })
        .transpose()
}

/// The `parameters` echo of a player's or team's game log.
fn log_parameters(q: &Params, id_key: &str, id: i64, start: i32) -> Value {
    json!({id_key: id, "LeagueID": "00", "Season": season_name(start),
        "SeasonType": param(q, "SeasonType").unwrap_or("Regular Season"),
        "DateFrom": param(q, "DateFrom"), "DateTo": param(q, "DateTo")})
}

fn set(name: &str, headers: &[&str], rows: Vec<Vec<Value>>) -> Value {
    json!({"name": name, "headers": headers, "rowSet": rows})
}

fn envelope(resource: &str, parameters: Value, sets: Vec<Value>) -> Value {
    json!({"resource": resource, "parameters": parameters, "resultSets": sets})
}

fn pct(made: i64, attempted: i64) -> Value {
    if attempted == 0 {
        json!(0.0)
    } else {
        json!(((made as f64 / attempted as f64) * 1000.0).round() / 1000.0)
    }
}

/// `APR 10, 2024`, as the game logs write dates.
fn log_date(date: NaiveDate) -> String {
    date.format("%b %d, %Y").to_string().to_uppercase()
}

/// The counting columns `FGM … PTS` of summed lines.
#[derive(Default, Clone, Copy)]
struct Totals {
    fgm: i64,
    fga: i64,
    fg3m: i64,
    fg3a: i64,
    ftm: i64,
    fta: i64,
    oreb: i64,
    dreb: i64,
    ast: i64,
    stl: i64,
    blk: i64,
    tov: i64,
    pf: i64,
    pts: i64,
    min: i64,
}

impl Totals {
    fn add(&mut self, l: &PlayerLine) {
        self.fgm += l.fg2.0 + l.fg3.0;
        self.fga += l.fg2.1 + l.fg3.1;
        self.fg3m += l.fg3.0;
        self.fg3a += l.fg3.1;
        self.ftm += l.ft.0;
        self.fta += l.ft.1;
        self.oreb += l.reb.0;
        self.dreb += l.reb.1;
        self.ast += l.ast;
        self.stl += l.stl;
        self.blk += l.blk;
        self.tov += l.tov;
        self.pf += l.pf;
        self.pts += l.points();
        self.min += l.minutes;
    }

    fn of(lines: &[PlayerLine]) -> Self {
        let mut t = Self::default();
        for l in lines {
            t.add(l);
        }
        t
    }

    /// `FGM, FGA, FG_PCT, FG3M, FG3A, FG3_PCT, FTM, FTA, FT_PCT, OREB, DREB, REB, AST, STL, BLK,
    /// TOV, PF, PTS`.
    fn cells(&self) -> Vec<Value> {
        vec![
            json!(self.fgm),
            json!(self.fga),
            pct(self.fgm, self.fga),
            json!(self.fg3m),
            json!(self.fg3a),
            pct(self.fg3m, self.fg3a),
            json!(self.ftm),
            json!(self.fta),
            pct(self.ftm, self.fta),
            json!(self.oreb),
            json!(self.dreb),
            json!(self.oreb + self.dreb),
            json!(self.ast),
            json!(self.stl),
            json!(self.blk),
            json!(self.tov),
            json!(self.pf),
            json!(self.pts),
        ]
    }
}

const BOX: [&str; 18] = [
    "FGM", "FGA", "FG_PCT", "FG3M", "FG3A", "FG3_PCT", "FTM", "FTA", "FT_PCT", "OREB", "DREB", "REB", "AST",
    "STL", "BLK", "TOV", "PF", "PTS",
];

fn with_box(before: &[&'static str], after: &[&'static str]) -> Vec<&'static str> {
    before.iter().chain(BOX.iter()).chain(after.iter()).copied().collect()
}

/// One team's side of a played game.
struct Side<'a> {
    game: &'a Game,
    team: usize,
    home: bool,
    lines: &'a [PlayerLine],
    points: i64,
    opponent_points: i64,
}

impl Side<'_> {
    fn opponent(&self) -> usize {
        if self.home {
            self.game.away
        } else {
            self.game.home
        }
    }

    fn matchup(&self, league: &League) -> String {
        let (us, them) = (league.teams[self.team].abbreviation, league.teams[self.opponent()].abbreviation);
        if self.home {
            format!("{us} vs. {them}")
        } else {
            format!("{us} @ {them}")
        }
    }

    fn won(&self) -> &'static str {
        if self.points > self.opponent_points {
            "W"
        } else {
            "L"
        }
    }
}

impl Answers {
    /// Answers over `league`, with games before `today` played.
    pub fn new(league: League, today: NaiveDate) -> Self {
        Self { league, today, seasons: Mutex::new(HashMap::new()) }
    }

    /// The league.
    pub fn league(&self) -> &League {
        &self.league
    }

    fn season(&self, start_year: i32) -> Arc<Season> {
        let mut seasons = self.seasons.lock().expect("seasons lock");
        seasons
            .entry(start_year)
            .or_insert_with(|| {
                let games = self.league.season(start_year);
                let boxes = games.iter().map(|g| self.league.box_score(g)).collect();
                Arc::new(Season { games, boxes })
            })
            .clone()
    }

    /// The played games of a season between the dates, oldest first, with both sides.
    fn played(
        &self,
        start_year: i32,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        mut each: impl FnMut(&Game, [Side<'_>; 2]),
    ) {
        if start_year < FIRST_SEASON {
            return;
        }
        let season = self.season(start_year);
        for (game, score) in season.games.iter().zip(&season.boxes) {
            if game.date >= self.today
                || from.is_some_and(|f| game.date < f)
                || to.is_some_and(|t| game.date > t)
            {
                continue;
            }
            let (home_pts, away_pts) = score.score();
            let home = Side {
                game,
                team: game.home,
                home: true,
                lines: &score.home,
                points: home_pts,
                opponent_points: away_pts,
            };
            let away = Side {
                game,
                team: game.away,
                home: false,
                lines: &score.away,
                points: away_pts,
                opponent_points: home_pts,
            };
            each(game, [home, away]);
        }
    }

    fn season_param(&self, q: &Params) -> Result<i32, BadRequest> {
        match param(q, "Season") {
            None => Ok(season_of(self.today)),
            Some(s) => season_start_year(s).ok_or_else(|| {
                BadRequest(format!(
                    "The field Season must match the regular expression '^(\\d{{4}}-\\d{{2}})$'. ({s})"
                ))
            }),
        }
    }

    fn regular_season(q: &Params) -> bool {
        param(q, "SeasonType").is_none_or(|t| t == "Regular Season")
    }

    /// `playergamelog`: one row per game the player played in the season, newest first.
    pub fn player_game_log(&self, q: &Params) -> Result<Value, BadRequest> {
        let player_id = id(q, "PlayerID")?;
        let start = self.season_param(q)?;
        let (from, to) = (date_param(q, "DateFrom")?, date_param(q, "DateTo")?);
        let mut rows = Vec::new();
        if let (Some(p), true) = (self.league.player_index(player_id), Self::regular_season(q)) {
            self.played(start, from, to, |game, sides| {
                for side in sides {
                    if let Some(line) = side.lines.iter().find(|l| l.player == p) {
                        let mut row = vec![
                            json!(format!("2{start}")),
                            json!(player_id),
                            json!(game.id),
                            json!(log_date(game.date)),
                            json!(side.matchup(&self.league)),
                            json!(side.won()),
                            json!(line.minutes),
                        ];
                        row.extend(Totals::of(std::slice::from_ref(line)).cells());
                        let margin = side.points - side.opponent_points;
                        row.push(json!((margin as f64 * line.minutes as f64 / 48.0).round() as i64));
                        row.push(json!(1));
                        rows.push(row);
                    }
                }
            });
        }
        rows.reverse();
        let headers = with_box(
            &["SEASON_ID", "Player_ID", "Game_ID", "GAME_DATE", "MATCHUP", "WL", "MIN"],
            &["PLUS_MINUS", "VIDEO_AVAILABLE"],
        );
        Ok(envelope(
            "playergamelog",
            log_parameters(q, "PlayerID", player_id, start),
            vec![set("PlayerGameLog", &headers, rows)],
        ))
    }

    /// `playercareerstats`: the player's regular seasons (oldest first) and career totals; the
    /// other result sets are there, empty.
    pub fn player_career_stats(&self, q: &Params) -> Result<Value, BadRequest> {
        let player_id = id(q, "PlayerID")?;
        let per_game = param(q, "PerMode") == Some("PerGame");
        let mut seasons = Vec::new();
        let mut career = Totals::default();
        let (mut career_gp, mut career_gs) = (0, 0);
        if let Some(p) = self.league.player_index(player_id) {
            let player = &self.league.players[p];
            for start in FIRST_SEASON..=season_of(self.today) {
                let mut totals = Totals::default();
                let mut gp = 0;
                self.played(start, None, None, |_, sides| {
                    for side in sides {
                        if let Some(line) = side.lines.iter().find(|l| l.player == p) {
                            totals.add(line);
                            gp += 1;
                        }
                    }
                });
                if gp == 0 {
                    continue;
                }
                let gs = if player.minutes >= 28.0 { gp } else { 0 };
                career_gp += gp;
                career_gs += gs;
                for (field, v) in [
                    (&mut career.fgm, totals.fgm),
                    (&mut career.fga, totals.fga),
                    (&mut career.fg3m, totals.fg3m),
                    (&mut career.fg3a, totals.fg3a),
                    (&mut career.ftm, totals.ftm),
                    (&mut career.fta, totals.fta),
                    (&mut career.oreb, totals.oreb),
                    (&mut career.dreb, totals.dreb),
                    (&mut career.ast, totals.ast),
                    (&mut career.stl, totals.stl),
                    (&mut career.blk, totals.blk),
                    (&mut career.tov, totals.tov),
                    (&mut career.pf, totals.pf),
                    (&mut career.pts, totals.pts),
                    (&mut career.min, totals.min),
                ] {
                    *field += v;
                }
                let team = &self.league.teams[player.team];
                let age = 20.0 + (player.id % 15) as f64 + f64::from(start - 2021);
                let mut row = vec![
                    json!(player_id),
                    json!(season_name(start)),
                    json!("00"),
                    json!(team.id),
                    json!(team.abbreviation),
                    json!(age),
                    json!(gp),
                    json!(gs),
                ];
                row.extend(counting_row(&totals, gp, per_game));
                seasons.push(row);
            }
        }
        let season_headers = with_box(
            &[
                "PLAYER_ID",
                "SEASON_ID",
                "LEAGUE_ID",
                "TEAM_ID",
                "TEAM_ABBREVIATION",
                "PLAYER_AGE",
                "GP",
                "GS",
                "MIN",
            ],
            &[],
        );
        let career_headers = with_box(&["PLAYER_ID", "LEAGUE_ID", "TEAM_ID", "GP", "GS", "MIN"], &[]);
        let mut career_rows = Vec::new();
        if career_gp > 0 {
            let mut row = vec![json!(player_id), json!("00"), json!(0), json!(career_gp), json!(career_gs)];
            row.extend(counting_row(&career, career_gp, per_game));
            career_rows.push(row);
        }
        let college: Vec<&str> = season_headers
            .iter()
            .map(|h| match *h {
                "TEAM_ID" => "ORGANIZATION_ID",
                "TEAM_ABBREVIATION" => "SCHOOL_NAME",
                other => other,
            })
            .collect();
        let highs = [
            "PLAYER_ID",
            "GAME_ID",
            "GAME_DATE",
            "VS_TEAM_ID",
            "VS_TEAM_CITY",
            "VS_TEAM_NAME",
            "VS_TEAM_ABBREVIATION",
            "STAT",
            "STAT_VALUE",
            "STAT_ORDER",
            "DATE_EST",
        ];
        let rankings: Vec<&str> = [
            "PLAYER_ID",
            "SEASON_ID",
            "LEAGUE_ID",
            "TEAM_ID",
            "TEAM_ABBREVIATION",
            "PLAYER_AGE",
            "GP",
            "GS",
            "RANK_MIN",
            "RANK_FGM",
            "RANK_FGA",
            "RANK_FG_PCT",
            "RANK_FG3M",
            "RANK_FG3A",
            "RANK_FG3_PCT",
            "RANK_FTM",
            "RANK_FTA",
            "RANK_FT_PCT",
            "RANK_OREB",
            "RANK_DREB",
            "RANK_REB",
            "RANK_AST",
            "RANK_STL",
            "RANK_BLK",
            "RANK_TOV",
            "RANK_PTS",
            "RANK_EFF",
        ]
        .to_vec();
        let college_career: Vec<&str> =
            career_headers.iter().map(|h| if *h == "TEAM_ID" { "ORGANIZATION_ID" } else { *h }).collect();
        Ok(envelope(
            "playercareerstats",
            json!({"PerMode": param(q, "PerMode").unwrap_or("Totals"), "PlayerID": player_id, "LeagueID": "00"}),
            vec![
                set("SeasonTotalsRegularSeason", &season_headers, seasons),
                set("CareerTotalsRegularSeason", &career_headers, career_rows),
                set("SeasonTotalsPostSeason", &season_headers, vec![]),
                set("CareerTotalsPostSeason", &career_headers, vec![]),
                set("SeasonTotalsAllStarSeason", &season_headers, vec![]),
                set("CareerTotalsAllStarSeason", &career_headers, vec![]),
                set("SeasonTotalsCollegeSeason", &college, vec![]),
                set("CareerTotalsCollegeSeason", &college_career, vec![]),
                set("SeasonTotalsShowcaseSeason", &season_headers, vec![]),
                set("CareerTotalsShowcaseSeason", &career_headers, vec![]),
                set("SeasonRankingsRegularSeason", &rankings, vec![]),
                set("SeasonRankingsPostSeason", &rankings, vec![]),
                set("SeasonHighs", &highs, vec![]),
                set("CareerHighs", &highs, vec![]),
            ],
        ))
    }

    /// `commonallplayers`: every player of the league, all on a roster this season.
    pub fn common_all_players(&self, q: &Params) -> Result<Value, BadRequest> {
        let start = self.season_param(q)?;
        let headers = [
            "PERSON_ID",
            "DISPLAY_LAST_COMMA_FIRST",
            "DISPLAY_FIRST_LAST",
            "ROSTERSTATUS",
            "FROM_YEAR",
            "TO_YEAR",
            "PLAYERCODE",
            "PLAYER_SLUG",
            "TEAM_ID",
            "TEAM_CITY",
            "TEAM_NAME",
            "TEAM_ABBREVIATION",
            "TEAM_CODE",
            "TEAM_SLUG",
            "GAMES_PLAYED_FLAG",
            "OTHERLEAGUE_EXPERIENCE_CH",
        ];
        let mut players: Vec<_> = self.league.players.iter().collect();
        players.sort_by(|a, b| (&a.last_name, &a.first_name).cmp(&(&b.last_name, &b.first_name)));
        let rows = players
            .iter()
            .map(|p| {
                let team = &self.league.teams[p.team];
                let slug = p.full_name().to_lowercase().replace(' ', "-");
                json!([
                    p.id,
                    format!("{}, {}", p.last_name, p.first_name),
                    p.full_name(),
                    1,
                    FIRST_SEASON.to_string(),
                    start.to_string(),
                    slug.replace('-', "_"),
                    slug,
                    team.id,
                    team.city,
                    team.nickname,
                    team.abbreviation,
                    team.nickname.to_lowercase(),
                    team.nickname.to_lowercase(),
                    "Y",
                    "00"
                ])
                .as_array()
                .cloned()
                .unwrap_or_default()
            })
            .collect();
        Ok(envelope(
            "commonallplayers",
            json!({"LeagueID": "00", "Season": season_name(start),
                "IsOnlyCurrentSeason": param(q, "IsOnlyCurrentSeason").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)}),
            vec![set("CommonAllPlayers", &headers, rows)],
        ))
    }

    /// `teamgamelog`: the team's games, newest first, with the running record.
    pub fn team_game_log(&self, q: &Params) -> Result<Value, BadRequest> {
        let team_id = id(q, "TeamID")?;
        let start = self.season_param(q)?;
        let (from, to) = (date_param(q, "DateFrom")?, date_param(q, "DateTo")?);
        let mut rows = Vec::new();
        if let (Some(t), true) = (self.league.team_index(team_id), Self::regular_season(q)) {
            let (mut w, mut l) = (0, 0);
            self.played(start, from, to, |game, sides| {
                for side in sides.into_iter().filter(|s| s.team == t) {
                    if side.won() == "W" {
                        w += 1;
                    } else {
                        l += 1;
                    }
                    let totals = Totals::of(side.lines);
                    let mut row = vec![
                        json!(team_id),
                        json!(game.id),
                        json!(log_date(game.date)),
                        json!(side.matchup(&self.league)),
                        json!(side.won()),
                        json!(w),
                        json!(l),
                        json!(((w as f64 / (w + l) as f64) * 1000.0).round() / 1000.0),
                        json!(240),
                    ];
                    row.extend(totals.cells());
                    rows.push(row);
                }
            });
        }
        rows.reverse();
        let headers =
            with_box(&["Team_ID", "Game_ID", "GAME_DATE", "MATCHUP", "WL", "W", "L", "W_PCT", "MIN"], &[]);
        Ok(envelope(
            "teamgamelog",
            log_parameters(q, "TeamID", team_id, start),
            vec![set("TeamGameLog", &headers, rows)],
        ))
    }

    /// `leaguegamelog`: every team's (`PlayerOrTeam=T`, the default) or every player's (`P`)
    /// line of each game in the range, by date (`Direction`).
    pub fn league_game_log(&self, q: &Params) -> Result<Value, BadRequest> {
        let start = self.season_param(q)?;
        let players = match param(q, "PlayerOrTeam").unwrap_or("T") {
            "P" => true,
            "T" => false,
            other => {
                return Err(BadRequest(format!(
                    "The field PlayerOrTeam must match the regular expression '^(P)|(T)$'. ({other})"
                )))
            }
        };
        let (from, to) = (date_param(q, "DateFrom")?, date_param(q, "DateTo")?);
        let mut rows = Vec::new();
        if Self::regular_season(q) {
            self.played(start, from, to, |game, sides| {
                for side in sides {
                    let team = &self.league.teams[side.team];
                    let lead = |extra: Vec<Value>| {
                        let mut row = vec![json!(format!("2{start}"))];
                        row.extend(extra);
                        row.extend([
                            json!(team.id),
                            json!(team.abbreviation),
                            json!(team.full_name()),
                            json!(game.id),
                            json!(game.date.format("%Y-%m-%d").to_string()),
                            json!(side.matchup(&self.league)),
                            json!(side.won()),
                        ]);
                        row
                    };
                    if players {
                        for line in side.lines {
                            let p = &self.league.players[line.player];
                            let mut row = vec![json!(format!("2{start}")), json!(p.id), json!(p.full_name())];
                            row.extend(lead(vec![]).into_iter().skip(1));
                            row.push(json!(line.minutes));
                            let totals = Totals::of(std::slice::from_ref(line));
                            row.extend(totals.cells());
                            let margin = side.points - side.opponent_points;
                            row.push(json!((margin as f64 * line.minutes as f64 / 48.0).round() as i64));
                            let fantasy = totals.pts as f64
                                + 1.2 * (totals.oreb + totals.dreb) as f64
                                + 1.5 * totals.ast as f64
                                + 3.0 * (totals.stl + totals.blk) as f64
                                - totals.tov as f64;
                            row.push(json!((fantasy * 10.0).round() / 10.0));
                            row.push(json!(1));
                            rows.push(row);
                        }
                    } else {
                        let mut row = lead(vec![]);
                        row.push(json!(240));
                        row.extend(Totals::of(side.lines).cells());
                        row.push(json!(side.points - side.opponent_points));
                        row.push(json!(1));
                        rows.push(row);
                    }
                }
            });
        }
        if param(q, "Direction") == Some("DESC") {
            rows.reverse();
        }
        let headers = if players {
            with_box(
                &[
                    "SEASON_ID",
                    "PLAYER_ID",
                    "PLAYER_NAME",
                    "TEAM_ID",
                    "TEAM_ABBREVIATION",
                    "TEAM_NAME",
                    "GAME_ID",
                    "GAME_DATE",
                    "MATCHUP",
                    "WL",
                    "MIN",
                ],
                &["PLUS_MINUS", "FANTASY_PTS", "VIDEO_AVAILABLE"],
            )
        } else {
            with_box(
                &[
                    "SEASON_ID",
                    "TEAM_ID",
                    "TEAM_ABBREVIATION",
                    "TEAM_NAME",
                    "GAME_ID",
                    "GAME_DATE",
                    "MATCHUP",
                    "WL",
                    "MIN",
                ],
                &["PLUS_MINUS", "VIDEO_AVAILABLE"],
            )
        };
        Ok(envelope(
            "leaguegamelog",
            json!({"LeagueID": "00", "Season": season_name(start),
                "SeasonType": param(q, "SeasonType").unwrap_or("Regular Season"),
                "PlayerOrTeam": if players { "P" } else { "T" }, "Counter": 0,
                "Sorter": param(q, "Sorter").unwrap_or("DATE"), "Direction": param(q, "Direction").unwrap_or("ASC"),
                "DateFrom": param(q, "DateFrom"), "DateTo": param(q, "DateTo")}),
            vec![set("LeagueGameLog", &headers, rows)],
        ))
    }
}

/// `MIN`, then the counting columns: season totals, or per game (1 decimal) with `PerGame`.
fn counting_row(t: &Totals, gp: i64, per_game: bool) -> Vec<Value> {
    let mut cells = vec![json!(t.min)];
    cells.extend(t.cells());
    if per_game {
        for (i, cell) in cells.iter_mut().enumerate() {
            // The percentages (positions 3, 6, 9 after MIN) stay as they are.
            if ![3, 6, 9].contains(&i) {
                if let Some(v) = cell.as_f64() {
                    *cell = json!((v / gp as f64 * 10.0).round() / 10.0);
                }
            }
        }
    }
    cells
}
