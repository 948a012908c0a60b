//! The stand-in's league: the 30 real teams, 15 players each (a few real names among generated
//! ones, with the accents and suffixes name search must handle), and any season's schedule and
//! box scores, all derived from fixed seeds, so the same question always gets the same answer.

use chrono::{Datelike as _, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};

/// The first season the stand-in has games for (2021-22); earlier seasons are empty.
pub const FIRST_SEASON: i32 = 2021;

/// One NBA team as the static table has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    /// stats.nba.com team id (1610612737…1610612766).
    pub id: i64,
    /// Three-letter abbreviation.
    pub abbreviation: &'static str,
    /// City.
    pub city: &'static str,
    /// Nickname.
    pub nickname: &'static str,
}

impl Team {
    /// "City Nickname".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.city, self.nickname)
    }
}

const TEAMS: [(i64, &str, &str, &str); 30] = [
    (1610612737, "ATL", "Atlanta", "Hawks"),
    (1610612738, "BOS", "Boston", "Celtics"),
    (1610612739, "CLE", "Cleveland", "Cavaliers"),
    (1610612740, "NOP", "New Orleans", "Pelicans"),
    (1610612741, "CHI", "Chicago", "Bulls"),
    (1610612742, "DAL", "Dallas", "Mavericks"),
    (1610612743, "DEN", "Denver", "Nuggets"),
    (1610612744, "GSW", "Golden State", "Warriors"),
    (1610612745, "HOU", "Houston", "Rockets"),
    (1610612746, "LAC", "LA", "Clippers"),
    (1610612747, "LAL", "Los Angeles", "Lakers"),
    (1610612748, "MIA", "Miami", "Heat"),
    (1610612749, "MIL", "Milwaukee", "Bucks"),
    (1610612750, "MIN", "Minnesota", "Timberwolves"),
    (1610612751, "BKN", "Brooklyn", "Nets"),
    (1610612752, "NYK", "New York", "Knicks"),
    (1610612753, "ORL", "Orlando", "Magic"),
    (1610612754, "IND", "Indiana", "Pacers"),
    (1610612755, "PHI", "Philadelphia", "76ers"),
    (1610612756, "PHX", "Phoenix", "Suns"),
    (1610612757, "POR", "Portland", "Trail Blazers"),
    (1610612758, "SAC", "Sacramento", "Kings"),
    (1610612759, "SAS", "San Antonio", "Spurs"),
    (1610612760, "OKC", "Oklahoma City", "Thunder"),
    (1610612761, "TOR", "Toronto", "Raptors"),
    (1610612762, "UTA", "Utah", "Jazz"),
    (1610612763, "MEM", "Memphis", "Grizzlies"),
    (1610612764, "WAS", "Washington", "Wizards"),
    (1610612765, "DET", "Detroit", "Pistons"),
    (1610612766, "CHA", "Charlotte", "Hornets"),
];

/// Real players kept under their real ids (team abbreviation, id, first, last).
const KNOWN: [(&str, i64, &str, &str); 10] = [
    ("LAL", 2544, "LeBron", "James"),
    ("GSW", 201939, "Stephen", "Curry"),
    ("DEN", 203999, "Nikola", "Jokić"),
    ("DAL", 1629029, "Luka", "Dončić"),
    ("MEM", 1628991, "Jaren", "Jackson Jr."),
    ("MIL", 203507, "Giannis", "Antetokounmpo"),
    ("BOS", 1628369, "Jayson", "Tatum"),
    ("PHX", 1626164, "Devin", "Booker"),
    ("SAS", 1641705, "Victor", "Wembanyama"),
    ("NYK", 1628973, "Jalen", "Brunson"),
];

const FIRST: [&str; 24] = [
    "Marcus", "Tyrese", "Andre", "Jamal", "Kevin", "Darius", "Isaiah", "Malik", "Cole", "Ethan", "Noah",
    "Julian", "Trey", "Xavier", "Brandon", "Caleb", "Derrick", "Elijah", "Gabriel", "Jordan", "Keon", "Luis",
    "Mateo", "Oscar",
];
const LAST: [&str; 24] = [
    "Walker",
    "Harris",
    "Mitchell",
    "Brooks",
    "Coleman",
    "Porter",
    "Bridges",
    "Holiday",
    "Reed",
    "Vasquez",
    "O'Neal",
    "Sánchez",
    "Thompson",
    "Young",
    "Bailey",
    "Carter",
    "Dawson",
    "Ellis",
    "Fletcher",
    "Grant",
    "Hayes",
    "Ivey",
    "Jefferson",
    "Knox",
];
const SUFFIXES: [&str; 4] = ["Jr.", "Sr.", "II", "III"];

/// One player: identity and the rates his games are drawn around.
#[derive(Debug, Clone, PartialEq)]
pub struct Player {
    /// stats.nba.com person id.
    pub id: i64,
    /// First name.
    pub first_name: String,
    /// Last name (with a suffix such as `Jr.` where he has one).
    pub last_name: String,
    /// His team (index into [`League::teams`]).
    pub team: usize,
    /// Minutes a game when he plays.
    pub minutes: f64,
    /// Points per 36 minutes.
    pub points_per_36: f64,
    /// Rebounds per 36 minutes.
    pub rebounds_per_36: f64,
    /// Assists per 36 minutes.
    pub assists_per_36: f64,
    /// Share of his shots that are threes.
    pub three_share: f64,
}

impl Player {
    /// "First Last".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }
}

/// The whole league: teams and players. Seasons are computed on demand ([`League::season`]).
#[derive(Debug, Clone)]
pub struct League {
    /// The 30 teams, by id.
    pub teams: Vec<Team>,
    /// 15 players a team.
    pub players: Vec<Player>,
}

/// A seeded generator for `parts` (a season, a game and a player…): the same parts, the same
/// numbers, whatever was generated before.
pub fn rng(parts: &[i64]) -> StdRng {
    let mut h: u64 = 0x5EED_0002_BA5C_E7BA;
    for p in parts {
        h ^= *p as u64;
        h = h.wrapping_add(0x9E37_79B9_7F4A_7C15);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    StdRng::seed_from_u64(h)
}

/// A scheduled game of a season.
#[derive(Debug, Clone, PartialEq)]
pub struct Game {
    /// `00` + `2` (regular season) + two-digit season year + five-digit number.
    pub id: String,
    /// Its date (US Eastern).
    pub date: NaiveDate,
    /// Home team index.
    pub home: usize,
    /// Visiting team index.
    pub away: usize,
}

/// One player's line in one game.
#[derive(Debug, Clone, PartialEq)]
pub struct PlayerLine {
    /// The player (index into [`League::players`]).
    pub player: usize,
    /// Whole minutes.
    pub minutes: i64,
    /// Two-point field goals made and attempted.
    pub fg2: (i64, i64),
    /// Threes made and attempted.
    pub fg3: (i64, i64),
    /// Free throws made and attempted.
    pub ft: (i64, i64),
    /// Offensive and defensive rebounds.
    pub reb: (i64, i64),
    /// Assists.
    pub ast: i64,
    /// Steals.
    pub stl: i64,
    /// Blocks.
    pub blk: i64,
    /// Turnovers.
    pub tov: i64,
    /// Personal fouls.
    pub pf: i64,
}

impl PlayerLine {
    /// Points scored.
    pub fn points(&self) -> i64 {
        2 * self.fg2.0 + 3 * self.fg3.0 + self.ft.0
    }
}

/// Both teams' lines in one game; the home team's first.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxScore {
    /// The home team's players who played.
    pub home: Vec<PlayerLine>,
    /// The visitors'.
    pub away: Vec<PlayerLine>,
}

impl BoxScore {
    /// Home points, visitors' points.
    pub fn score(&self) -> (i64, i64) {
        (self.home.iter().map(PlayerLine::points).sum(), self.away.iter().map(PlayerLine::points).sum())
    }
}

/// `"2024-25"` → 2024.
pub fn season_start_year(season: &str) -> Option<i32> {
    let (start, end) = season.split_once('-')?;
    let start: i32 = start.parse().ok()?;
    let end: i32 = end.parse().ok()?;
    ((start + 1) % 100 == end).then_some(start)
}

/// 2024 → `"2024-25"`.
pub fn season_name(start_year: i32) -> String {
    format!("{start_year}-{:02}", (start_year + 1) % 100)
}

/// The season a date falls in (a new one from October).
pub fn season_of(date: NaiveDate) -> i32 {
    if date.month() >= 10 {
        date.year()
    } else {
        date.year() - 1
    }
}

impl Default for League {
    fn default() -> Self {
        Self::new()
    }
}

impl League {
    /// The league (always the same one).
    pub fn new() -> Self {
        let teams: Vec<Team> = TEAMS
            .iter()
            .map(|(id, abbreviation, city, nickname)| Team { id: *id, abbreviation, city, nickname })
            .collect();
        let mut players = Vec::new();
        let mut next_id = 1_631_000;
        for (t, team) in teams.iter().enumerate() {
            let mut r = rng(&[1, team.id]);
            let known: Vec<_> = KNOWN.iter().filter(|k| k.0 == team.abbreviation).collect();
            for slot in 0..15 {
                let (id, first, last) = match known.get(slot) {
                    Some((_, id, first, last)) => (*id, (*first).to_owned(), (*last).to_owned()),
                    None => {
                        next_id += 1;
                        let mut last = LAST[r.gen_range(0..LAST.len())].to_owned();
                        if r.gen_bool(0.08) {
                            last = format!("{last} {}", SUFFIXES[r.gen_range(0..SUFFIXES.len())]);
                        }
                        (next_id, FIRST[r.gen_range(0..FIRST.len())].to_owned(), last)
                    }
                };
                // Starters first, then the bench, then players who rarely play.
                let minutes = match slot {
                    0..=4 => r.gen_range(29.0..37.0),
                    5..=9 => r.gen_range(14.0..26.0),
                    _ => r.gen_range(4.0..12.0),
                };
                let star = slot < known.len();
                players.push(Player {
                    id,
                    first_name: first,
                    last_name: last,
                    team: t,
                    minutes: if star { r.gen_range(33.0..37.0) } else { minutes },
                    points_per_36: if star { r.gen_range(26.0..32.0) } else { r.gen_range(9.0..22.0) },
                    rebounds_per_36: r.gen_range(3.0..12.0),
                    assists_per_36: r.gen_range(1.5..9.0),
                    three_share: r.gen_range(0.15..0.55),
                });
            }
        }
        Self { teams, players }
    }

    /// The team with `id`.
    pub fn team_index(&self, id: i64) -> Option<usize> {
        self.teams.iter().position(|t| t.id == id)
    }

    /// The player with `id`.
    pub fn player_index(&self, id: i64) -> Option<usize> {
        self.players.iter().position(|p| p.id == id)
    }

    /// The regular season starting in `start_year`: 82 games a team from late October to mid
    /// April, at most one a day per team.
    pub fn season(&self, start_year: i32) -> Vec<Game> {
        let mut r = rng(&[2, i64::from(start_year)]);
        let first = NaiveDate::from_ymd_opt(start_year, 10, 22).expect("a date");
        let mut left = [82u32; 30];
        let mut games = Vec::new();
        let mut day = first;
        while left.iter().any(|l| *l > 0) {
            let mut ready: Vec<usize> = (0..30).filter(|t| left[*t] > 0).collect();
            ready.shuffle(&mut r);
            // About a third of the league plays on a given day, more once the season runs late.
            let late = (day - first).num_days() > 170;
            let take = if late { ready.len() } else { (ready.len() * 2 / 5).max(2) };
            for pair in ready[..take.min(ready.len())].chunks(2) {
                if let [a, b] = pair {
                    left[*a] -= 1;
                    left[*b] -= 1;
                    let (home, away) = if r.gen_bool(0.5) { (*a, *b) } else { (*b, *a) };
                    games.push(Game {
                        id: format!("002{:02}{:05}", start_year % 100, games.len() + 1),
                        date: day,
                        home,
                        away,
                    });
                }
            }
            // A lone team left with games plays a team that has finished (an extra game for it).
            let lone: Vec<usize> = (0..30).filter(|t| left[*t] > 0).collect();
            let today: Vec<usize> =
                games.iter().filter(|g| g.date == day).flat_map(|g| [g.home, g.away]).collect();
            let free = |t: usize| (0..30).find(|o| *o != t && !today.contains(o));
            if let [t] = lone[..] {
                let Some(other) = free(t).filter(|_| !today.contains(&t)) else {
                    day += Duration::days(1);
                    continue;
                };
                left[t] -= 1;
                games.push(Game {
                    id: format!("002{:02}{:05}", start_year % 100, games.len() + 1),
                    date: day,
                    home: t,
                    away: other,
                });
            }
            day += Duration::days(1);
        }
        games
    }

    /// The box score of `game` (played or not: the caller decides what has been played).
    pub fn box_score(&self, game: &Game) -> BoxScore {
        let number: i64 = game.id.parse().unwrap_or_default();
        let lines = |team: usize, home: bool| -> Vec<PlayerLine> {
            self.players
                .iter()
                .enumerate()
                .filter(|(_, p)| p.team == team)
                .filter_map(|(i, p)| {
                    let mut r = rng(&[3, number, p.id]);
                    // Rest days and injuries: some players sit some games out.
                    if r.gen_bool(if p.minutes < 12.0 { 0.45 } else { 0.06 }) {
                        return None;
                    }
                    let minutes =
                        (p.minutes + r.gen_range(-6.0..6.0) + if home { 0.5 } else { 0.0 }).clamp(1.0, 46.0);
                    let share = minutes / 36.0;
                    let points = (p.points_per_36 * share * r.gen_range(0.55..1.45)).max(0.0);
                    let ft_made = (points * r.gen_range(0.1..0.25)).round() as i64;
                    let field = (points - ft_made as f64).max(0.0);
                    let fg3_made = ((field * p.three_share) / 3.0).round() as i64;
                    let fg2_made = (((field - 3.0 * fg3_made as f64) / 2.0).round() as i64).max(0);
                    let miss = |made: i64, r: &mut StdRng, pct: f64| {
                        made + ((made as f64 / pct - made as f64) * r.gen_range(0.7..1.3)).round() as i64
                    };
                    let reb = (p.rebounds_per_36 * share * r.gen_range(0.5..1.5)).round() as i64;
                    let oreb = (reb as f64 * r.gen_range(0.1..0.35)).round() as i64;
                    Some(PlayerLine {
                        player: i,
                        minutes: minutes.round() as i64,
                        fg2: (fg2_made, miss(fg2_made, &mut r, 0.52)),
                        fg3: (fg3_made, miss(fg3_made, &mut r, 0.36)),
                        ft: (ft_made, miss(ft_made, &mut r, 0.78)),
                        reb: (oreb, reb - oreb),
                        ast: (p.assists_per_36 * share * r.gen_range(0.4..1.6)).round() as i64,
                        stl: r.gen_range(0..=(2.0 * share).ceil() as i64),
                        blk: r.gen_range(0..=(1.5 * share).ceil() as i64),
                        tov: r.gen_range(0..=(3.5 * share).ceil() as i64),
                        pf: r.gen_range(0..=5),
                    })
                })
                .collect()
        };
        let mut score = BoxScore { home: lines(game.home, true), away: lines(game.away, false) };
        // No ties: the home team's best scorer makes one more free throw in overtime.
        if score.score().0 == score.score().1 {
            if let Some(best) = score.home.iter_mut().max_by_key(|l| l.points()) {
                best.ft.0 += 1;
                best.ft.1 += 1;
            }
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_league_is_the_same_every_time_and_seasons_are_whole() {
        let league = League::new();
        assert_eq!((league.teams.len(), league.players.len()), (30, 450));
        assert_eq!(League::new().players, league.players);
        let lebron = &league.players[league.player_index(2544).unwrap()];
        assert_eq!(
            (lebron.full_name().as_str(), league.teams[lebron.team].abbreviation),
            ("LeBron James", "LAL")
        );
        let season = league.season(2024);
        assert_eq!(season, league.season(2024));
        for t in 0..30 {
            let played = season.iter().filter(|g| g.home == t || g.away == t).count();
            assert!((82..=83).contains(&played), "team {t}: {played} games");
            let mut days: Vec<_> =
                season.iter().filter(|g| g.home == t || g.away == t).map(|g| g.date).collect();
            let n = days.len();
            days.dedup();
            assert_eq!(days.len(), n, "one game a day at most");
        }
        let game = &season[0];
        let box_score = league.box_score(game);
        assert_eq!(box_score, league.box_score(game));
        let (home, away) = box_score.score();
        assert!(home != away && home > 60 && away > 60, "{home}-{away}");
        assert_eq!(season_start_year("2024-25"), Some(2024));
        assert_eq!(season_start_year("2024-26"), None);
        assert_eq!(season_name(2099), "2099-00");
    }
}
