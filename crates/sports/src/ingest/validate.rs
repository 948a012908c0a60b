//! The original's ingestion rules (FACTS.md, section 002): game records normalised from the
//! key spellings feeds use, team names as abbreviations, dates from any accepted form; then
//! validated: required fields, types, and outliers of `value` by modified z-score.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The fields a record must have, unless `INGEST_CRITICAL_FIELDS` says otherwise.
pub const DEFAULT_CRITICAL: [&str; 3] = ["game_date", "home_team", "away_team"];

const ALIASES: [(&str, &[&str]); 7] = [
    ("game_id", &["id", "gid"]),
    ("home_team", &["homeTeam", "homeTeamName", "home_team_name", "h_team", "home"]),
    ("away_team", &["awayTeam", "awayTeamName", "away_team_name", "a_team", "away"]),
    (
        "home_score",
        &[
            "homeScore",
            "home_pts",
            "homePoints",
            "hScore",
            "h_score",
            "h_pts",
            "home_points",
            "home-team-score",
        ],
    ),
    (
        "away_score",
        &[
            "awayScore",
            "away_pts",
            "awayPoints",
            "aScore",
            "a_score",
            "a_pts",
            "away_points",
            "away-team-score",
        ],
    ),
    ("timestamp", &["time", "utc_time", "start_time", "game_time"]),
    ("date", &["game_date_str", "date_str"]),
];

const TEAM_NAMES: [(&str, &str); 10] = [
    ("lakers", "LAL"),
    ("clippers", "LAC"),
    ("warriors", "GSW"),
    ("celtics", "BOS"),
    ("knicks", "NYK"),
    ("bulls", "CHI"),
    ("heat", "MIA"),
    ("nets", "BKN"),
    ("rockets", "HOU"),
    ("mavericks", "DAL"),
];

/// A team name as its abbreviation: already three capitals, a known name (full or last word),
/// else its first three letters upper-cased.
pub fn team_abbreviation(name: &str) -> String {
    let trimmed = name.trim();
    if trimmed.len() == 3 && trimmed.chars().all(|c| c.is_ascii_uppercase()) {
        return trimmed.to_owned();
    }
    let lower = trimmed.to_lowercase();
    let last = lower.split_whitespace().next_back().unwrap_or_default();
    TEAM_NAMES
        .iter()
        .find(|(n, _)| lower == *n || last == *n)
        .map(|(_, a)| (*a).to_owned())
        .unwrap_or_else(|| trimmed.chars().take(3).collect::<String>().to_uppercase())
}

/// A date from a datetime text, a date, epoch seconds or milliseconds (above 10¹²).
pub fn parse_date(value: &Value) -> Option<NaiveDate> {
    match value {
        Value::Number(n) => {
            let n = n.as_f64()?;
            let secs = if n > 1e12 { n / 1000.0 } else { n };
            DateTime::from_timestamp(secs as i64, 0).map(|t| t.date_naive())
        }
        Value::String(s) => {
            let s = s.trim();
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.date_naive())
                .ok()
                .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok().map(|t| t.date()))
                .or_else(|| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").ok().map(|t| t.date()))
                .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                .or_else(|| NaiveDate::parse_from_str(s, "%m/%d/%Y").ok())
                .or_else(|| crate::service::parse_game_date(s))
        }
        _ => None,
    }
}

/// A record with the canonical keys: aliases renamed, scores as integers (commas stripped),
/// teams as abbreviations, `game_date` from `game_date`, `date`, `timestamp`, or the
/// `YYYYMMDD`/`YYYY-MM-DD` in the game id.
pub fn normalise(raw: &Map<String, Value>) -> Map<String, Value> {
    let mut out = raw.clone();
    for (canonical, aliases) in ALIASES {
        if out.get(canonical).is_none_or(Value::is_null) {
            if let Some(v) = aliases.iter().find_map(|a| raw.get(*a).filter(|v| !v.is_null())) {
                out.insert(canonical.to_owned(), v.clone());
            }
        }
    }
    for key in ["home_score", "away_score"] {
        if let Some(Value::String(s)) = out.get(key) {
            if let Ok(n) = s.replace(',', "").trim().parse::<i64>() {
                out.insert(key.to_owned(), Value::from(n));
            }
        }
    }
    for key in ["home_team", "away_team"] {
        if let Some(Value::String(s)) = out.get(key) {
            if !s.trim().is_empty() {
                let abbreviation = team_abbreviation(s);
                out.insert(key.to_owned(), Value::from(abbreviation));
            }
        }
    }
    let date = ["game_date", "date", "timestamp"]
        .iter()
        .find_map(|k| out.get(*k).and_then(parse_date))
        .or_else(|| out.get("game_id").and_then(Value::as_str).and_then(date_in_id));
    if let Some(date) = date {
        out.insert("game_date".into(), Value::from(date.format("%Y-%m-%d").to_string()));
    }
    out
}

fn date_in_id(id: &str) -> Option<NaiveDate> {
    let digits: Vec<char> = id.chars().collect();
    digits
        .windows(10)
        .find_map(|w| NaiveDate::parse_from_str(&w.iter().collect::<String>(), "%Y-%m-%d").ok())
        .or_else(|| {
            digits
                .windows(8)
                .find_map(|w| NaiveDate::parse_from_str(&w.iter().collect::<String>(), "%Y%m%d").ok())
        })
}

/// What validation found, by record index (the original's shape).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Validation {
    /// `[index, [fields]]` of records missing a required field.
    #[schema(value_type = Vec<Object>)]
    pub missing: Vec<(usize, Vec<String>)>,
    /// `[index, [messages]]` of records with a field of the wrong type.
    #[schema(value_type = Vec<Object>)]
    pub type_errors: Vec<(usize, Vec<String>)>,
    /// Indexes of records whose `value` is an outlier.
    pub outliers: Vec<usize>,
}

fn blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

fn numeric(v: &Value) -> bool {
    match v {
        Value::Number(_) => true,
        Value::String(s) => s.trim().parse::<f64>().is_ok(),
        _ => false,
    }
}

/// Validates `records`: required fields (`critical`), types (`game_date` a date; `home_score`,
/// `away_score`, `value` numbers where present), and outliers of `value`: |0.6745·(v − median) /
/// MAD| ≥ 3, or the plain z-score when the MAD is 0; none with fewer than two values.
pub fn validate(records: &[Map<String, Value>], critical: &[String]) -> Validation {
    let mut found = Validation::default();
    for (i, r) in records.iter().enumerate() {
        let missing: Vec<String> = critical.iter().filter(|f| blank(r.get(f.as_str()))).cloned().collect();
        if !missing.is_empty() {
            found.missing.push((i, missing));
        }
        let mut errors = Vec::new();
        match r.get("game_date") {
            None | Some(Value::Null) => errors.push("game_date missing".to_owned()),
            Some(v) if parse_date(v).is_none() => errors.push("game_date not parseable".to_owned()),
            _ => {}
        }
        for key in ["home_score", "away_score", "value"] {
            if let Some(v) = r.get(key).filter(|v| !v.is_null()) {
                if !numeric(v) {
                    errors.push(format!("{key} not numeric"));
                }
            }
        }
        if !errors.is_empty() {
            found.type_errors.push((i, errors));
        }
    }
    let values: Vec<(usize, f64)> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let v = r.get("value")?;
            v.as_f64().or_else(|| v.as_str()?.trim().parse().ok()).map(|x| (i, x))
        })
        .collect();
    if values.len() >= 2 {
        let median = |mut xs: Vec<f64>| {
            xs.sort_by(f64::total_cmp);
            let n = xs.len();
            if n % 2 == 1 {
                xs[n / 2]
            } else {
                (xs[n / 2 - 1] + xs[n / 2]) / 2.0
            }
        };
        let xs: Vec<f64> = values.iter().map(|(_, x)| *x).collect();
        let m = median(xs.clone());
        let mad = median(xs.iter().map(|x| (x - m).abs()).collect());
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        for (i, x) in values {
            let z = if mad > 0.0 {
                0.6745 * (x - m) / mad
            } else if sd > 0.0 {
                (x - mean) / sd
            } else {
                0.0
            };
            if z.abs() >= 3.0 {
                found.outliers.push(i);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn records_are_normalised_from_any_spelling() {
        let r =
            normalise(&map(json!({"gid": "g1", "homeTeam": "Los Angeles Lakers", "awayTeamName": "celtics",
            "homeScore": "1,024", "a_pts": 99, "time": 1_762_905_600_000_i64})));
        assert_eq!(r["game_id"], "g1");
        assert_eq!((r["home_team"].as_str(), r["away_team"].as_str()), (Some("LAL"), Some("BOS")));
        assert_eq!((r["home_score"].as_i64(), r["away_score"].as_i64()), (Some(1024), Some(99)));
        assert_eq!(r["game_date"], "2025-11-12", "epoch milliseconds");
        let from_id =
            normalise(&map(json!({"game_id": "nba-20251112-lal", "home_team": "Sacramento Kings"})));
        assert_eq!(
            (from_id["game_date"].as_str(), from_id["home_team"].as_str()),
            (Some("2025-11-12"), Some("SAC"))
        );
        assert_eq!(normalise(&map(json!({"date": "APR 10, 2024"})))["game_date"], "2024-04-10");
    }

    #[test]
    fn validation_finds_missing_fields_wrong_types_and_outliers() {
        let critical: Vec<String> = DEFAULT_CRITICAL.iter().map(|s| (*s).to_owned()).collect();
        let ok = |v: i64| {
            map(json!({"game_date": "2025-11-12", "home_team": "LAL", "away_team": "BOS", "value": v}))
        };
        let mut records: Vec<_> = [10, 12, 11, 13, 12, 11, 10, 12].into_iter().map(ok).collect();
        records.push(ok(90));
        records
            .push(map(json!({"game_date": "someday", "home_team": " ", "away_team": "BOS", "value": "x"})));
        let found = validate(&records, &critical);
        assert_eq!(found.missing, vec![(9, vec!["home_team".to_owned()])]);
        assert_eq!(
            found.type_errors,
            vec![(9, vec!["game_date not parseable".to_owned(), "value not numeric".to_owned()])]
        );
        assert_eq!(found.outliers, vec![8]);
        assert_eq!(validate(&records[..1], &critical).outliers, Vec::<usize>::new());
    }
}
