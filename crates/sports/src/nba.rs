//! stats.nba.com, through the platform's outbound client `nba_stats`: browser-like headers
//! (FACTS-002 section 1.2), gzip, parameters sorted and always present as nba_api sends them,
//! pacing (`NBA_API_MAX_RPM`), retries with backoff on timeouts, 5xx, 429 and block pages that
//! are not JSON, a circuit breaker, and a whole-call budget. Answers are the `resultSets`.

use chrono::{Datelike as _, NaiveDate};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Map, Value};
use sightline_platform::outbound::{OutboundClient, OutboundError};

/// The headers nba_api 1.11.4 sends (its user agent is the client's `user_agent`).
const HEADERS: [(&str, &str); 8] = [
    ("accept", "application/json, text/plain, */*"),
    ("accept-language", "en-US,en;q=0.5"),
    ("referer", "https://www.nba.com/"),
    ("pragma", "no-cache"),
    ("cache-control", "no-cache"),
    ("sec-ch-ua", "\"Not:A-Brand\";v=\"99\", \"Google Chrome\";v=\"145\", \"Chromium\";v=\"145\""),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-fetch-dest", "empty"),
];

/// The user agent nba_api 1.11.4 sends.
pub const USER_AGENT: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/145.0.0.0 Safari/537.36";

/// One result set: its name, column names and positional rows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResultSet {
    /// `PlayerGameLog`, `SeasonTotalsRegularSeason`, …
    pub name: String,
    /// Column names, as stats.nba.com spells them.
    pub headers: Vec<String>,
    /// Rows, one cell per header.
    #[serde(rename = "rowSet")]
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// Each row as `header → cell`.
    pub fn records(&self) -> Vec<Map<String, Value>> {
        self.rows.iter().map(|row| self.headers.iter().cloned().zip(row.iter().cloned()).collect()).collect()
    }

    /// The position of `column`, if the set has it.
    pub fn column(&self, column: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == column)
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "resultSets")]
    result_sets: Option<Vec<ResultSet>>,
    #[serde(rename = "resultSet")]
    result_set: Option<ResultSet>,
}

/// The season a day falls in, as stats.nba.com names it: `2025-26` from October 2025.
pub fn season_of(day: NaiveDate) -> String {
    let start = if day.month() >= 10 { day.year() } else { day.year() - 1 };
    format!("{start}-{:02}", (start + 1) % 100)
}

/// Whether `season` is a season name (`2024-25`).
pub fn valid_season(season: &str) -> bool {
    season.split_once('-').is_some_and(|(a, b)| {
        a.len() == 4
            && b.len() == 2
            && a.parse::<i32>().is_ok_and(|a| b.parse::<i32>().is_ok_and(|b| (a + 1) % 100 == b))
    })
}

/// The stats.nba.com client.
#[derive(Clone)]
pub struct NbaStats {
    client: OutboundClient,
}

impl NbaStats {
    /// A client over `client` (its base URL is `…/stats`).
    pub fn new(client: OutboundClient) -> Self {
        Self { client }
    }

    /// The outbound client (its breaker state, its name).
    pub fn outbound(&self) -> &OutboundClient {
        &self.client
    }

    /// `GET /<endpoint>` with `params` (sorted, as nba_api sends them), answered as result sets.
    pub async fn call(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<Vec<ResultSet>, OutboundError> {
        let mut params = params.to_vec();
        params.sort_by(|a, b| a.0.cmp(b.0));
        let mut headers = HeaderMap::new();
        for (name, value) in HEADERS {
            headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        let answer = self.client.get(endpoint).query(&params).headers(headers).require_json().send().await?;
        let envelope: Envelope = answer.json().map_err(|reason| OutboundError::Undecodable {
            client: self.client.name().to_owned(),
            reason: format!("not a stats.nba.com answer: {reason}"),
        })?;
        match (envelope.result_sets, envelope.result_set) {
            (Some(sets), _) => Ok(sets),
            (None, Some(set)) => Ok(vec![set]),
            (None, None) => Err(OutboundError::Undecodable {
                client: self.client.name().to_owned(),
                reason: "no resultSets in the answer".into(),
            }),
        }
    }

    async fn first(&self, endpoint: &str, params: &[(&str, String)]) -> Result<ResultSet, OutboundError> {
        let client = self.client.name().to_owned();
        self.call(endpoint, params).await?.into_iter().next().ok_or_else(|| OutboundError::Undecodable {
            client,
            reason: format!("{endpoint} answered no result set"),
        })
    }

    /// A player's games of `season` (regular season), newest first.
    pub async fn player_game_log(&self, player_id: i64, season: &str) -> Result<ResultSet, OutboundError> {
        let params = [
            ("DateFrom", String::new()),
            ("DateTo", String::new()),
            ("LeagueID", String::new()),
            ("PlayerID", player_id.to_string()),
            ("Season", season.to_owned()),
            ("SeasonType", "Regular Season".to_owned()),
        ];
        self.first("playergamelog", &params).await
    }

    /// A player's career: every result set (`SeasonTotalsRegularSeason` first), season totals.
    pub async fn player_career_stats(&self, player_id: i64) -> Result<Vec<ResultSet>, OutboundError> {
        let params = [
            ("LeagueID", String::new()),
            ("PerMode", "Totals".to_owned()),
            ("PlayerID", player_id.to_string()),
        ];
        self.call("playercareerstats", &params).await
    }

    /// Every player of the league in `season`.
    pub async fn all_players(&self, season: &str) -> Result<ResultSet, OutboundError> {
        let params = [
            ("IsOnlyCurrentSeason", "0".to_owned()),
            ("LeagueID", "00".to_owned()),
            ("Season", season.to_owned()),
        ];
        self.first("commonallplayers", &params).await
    }

    /// A team's games of `season`, newest first.
    pub async fn team_game_log(&self, team_id: i64, season: &str) -> Result<ResultSet, OutboundError> {
        let params = [
            ("DateFrom", String::new()),
            ("DateTo", String::new()),
            ("LeagueID", "00".to_owned()),
            ("Season", season.to_owned()),
            ("SeasonType", "Regular Season".to_owned()),
            ("TeamID", team_id.to_string()),
        ];
        self.first("teamgamelog", &params).await
    }

    /// Every player's line (`players`) or every team's of the games between two days.
    pub async fn league_game_log(
        &self,
        season: &str,
        players: bool,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<ResultSet, OutboundError> {
        let params = [
            ("Counter", "0".to_owned()),
            ("DateFrom", from.format("%m/%d/%Y").to_string()),
            ("DateTo", to.format("%m/%d/%Y").to_string()),
            ("Direction", "ASC".to_owned()),
            ("LeagueID", "00".to_owned()),
            ("PlayerOrTeam", if players { "P" } else { "T" }.to_owned()),
            ("Season", season.to_owned()),
            ("SeasonType", "Regular Season".to_owned()),
            ("Sorter", "DATE".to_owned()),
        ];
        self.first("leaguegamelog", &params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasons_turn_in_october() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(season_of(day("2025-09-30")), "2024-25");
        assert_eq!(season_of(day("2025-10-01")), "2025-26");
        assert_eq!(season_of(day("2099-12-01")), "2099-00");
        assert!(
            valid_season("2024-25")
                && !valid_season("2024-26")
                && !valid_season("24-25")
                && !valid_season("x")
        );
    }
}
