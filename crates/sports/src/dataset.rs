//! Training datasets from the stored game history: one sample per player and game, the target
//! the stat in that game, the features what was known before it (the original's rolling means
//! and deviations over 3/5/10 games, exponential and weighted averages, slope, momentum; the
//! season average so far, days of rest, home or away, and the opponent's points allowed so far).
//! Split per player by time, 70/15/15 (players with fewer than 4 samples all train), written as
//! Parquet and CSV with a metadata JSON whose `version_id` is the content's digest: the same data
//! gives the same version.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::features;

/// The stats a dataset may predict, and their columns in `sports_player_stats`.
pub const STATS: [(&str, &str); 8] = [
    ("points", "points"),
    ("rebounds", "rebounds"),
    ("assists", "assists"),
    ("steals", "steals"),
    ("blocks", "blocks"),
    ("threes", "threes"),
    ("turnovers", "turnovers"),
    ("minutes", "minutes"),
];

/// The feature columns, in order.
pub const FEATURES: [&str; 15] = [
    "last_3_avg",
    "last_5_avg",
    "last_10_avg",
    "last_3_std",
    "last_5_std",
    "last_10_std",
    "exponential_moving_avg",
    "wma_3",
    "wma_5",
    "slope_10",
    "momentum_vs_5_avg",
    "season_avg_to_date",
    "days_rest",
    "is_home",
    "opp_pts_allowed_avg",
];

/// One stored player line with its game.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryLine {
    /// The player.
    pub player_id: i64,
    /// His name.
    pub player_name: String,
    /// The game.
    pub game_id: String,
    /// Its date.
    pub game_date: NaiveDate,
    /// Its season.
    pub season: String,
    /// His team.
    pub team: String,
    /// Home team.
    pub home_team: String,
    /// Visitors.
    pub away_team: String,
    /// Home points.
    pub home_score: Option<f64>,
    /// Visitors' points.
    pub away_score: Option<f64>,
    /// The stat's value.
    pub value: Option<f64>,
}

/// One sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// The player.
    pub player_id: i64,
    /// His name.
    pub player_name: String,
    /// The game.
    pub game_id: String,
    /// `YYYY-MM-DD`.
    pub game_date: String,
    /// The season.
    pub season: String,
    /// The opponent's abbreviation.
    pub opponent: String,
    /// The stat in this game.
    pub target: f64,
    /// [`FEATURES`]' values.
    pub features: Vec<Option<f64>>,
    /// `train`, `val` or `test`.
    pub split: &'static str,
}

/// Each team's points allowed before each of its games, per season: (team, season, date) → mean.
fn allowed_before(history: &[HistoryLine]) -> HashMap<(String, String, NaiveDate), f64> {
    let mut games: BTreeMap<(String, String), BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for l in history {
        if !seen.insert(l.game_id.clone()) {
            continue;
        }
        if let (Some(h), Some(a)) = (l.home_score, l.away_score) {
            games.entry((l.home_team.clone(), l.season.clone())).or_default().insert(l.game_date, a);
            games.entry((l.away_team.clone(), l.season.clone())).or_default().insert(l.game_date, h);
        }
    }
    let mut out = HashMap::new();
    for ((team, season), by_date) in games {
        let (mut sum, mut n) = (0.0, 0.0);
        for (date, allowed) in by_date {
            if n > 0.0 {
                out.insert((team.clone(), season.clone(), date), sum / n);
            }
            sum += allowed;
            n += 1.0;
        }
    }
    out
}

/// The samples of `history` (any order), for players with at least `min_games` games with a
/// value; each game with at least one game before it is a sample.
pub fn build(mut history: Vec<HistoryLine>, min_games: usize) -> Vec<Sample> {
    history
        .sort_by(|a, b| (a.player_id, a.game_date, &a.game_id).cmp(&(b.player_id, b.game_date, &b.game_id)));
    let allowed = allowed_before(&history);
    let mut samples = Vec::new();
    for player in history.chunk_by(|a, b| a.player_id == b.player_id) {
        let played: Vec<&HistoryLine> = player.iter().filter(|l| l.value.is_some()).collect();
        if played.len() < min_games.max(2) {
            continue;
        }
        let mut mine = Vec::new();
        for i in 1..played.len() {
            let game = played[i];
            // Before this game, newest first.
            let before: Vec<Option<f64>> = played[..i].iter().rev().take(10).map(|l| l.value).collect();
            let rolling = features::rolling(&before);
            let season_so_far: Vec<Option<f64>> =
                played[..i].iter().filter(|l| l.season == game.season).map(|l| l.value).collect();
            let (season_avg, _) = features::mean_and_std(&season_so_far);
            let previous = played[i - 1];
            let days_rest = ((game.game_date - previous.game_date).num_days() - 1).max(0) as f64;
            let home = game.team == game.home_team;
            let opponent = if home { &game.away_team } else { &game.home_team };
            let opp_allowed = allowed.get(&(opponent.clone(), game.season.clone(), game.game_date)).copied();
            let mut values: Vec<Option<f64>> =
                FEATURES[..11].iter().map(|f| rolling.get(f).copied().flatten()).collect();
            values.extend([season_avg, Some(days_rest), Some(if home { 1.0 } else { 0.0 }), opp_allowed]);
            mine.push(Sample {
                player_id: game.player_id,
                player_name: game.player_name.clone(),
                game_id: game.game_id.clone(),
                game_date: game.game_date.format("%Y-%m-%d").to_string(),
                season: game.season.clone(),
                opponent: opponent.clone(),
                target: game.value.unwrap_or_default(),
                features: values,
                split: "train",
            });
        }
        split(&mut mine);
        samples.extend(mine);
    }
    samples
}

/// Splits one player's samples (oldest first) 70/15/15 by time, at least one train and one val;
/// fewer than 4: all train.
fn split(samples: &mut [Sample]) {
    let n = samples.len();
    if n < 4 {
        return;
    }
    let train = (n * 70 / 100).max(1);
    let val = (n * 15 / 100).max(1);
    for (i, s) in samples.iter_mut().enumerate() {
        s.split = if i < train {
            "train"
        } else if i < train + val {
            "val"
        } else {
            "test"
        };
    }
}

/// The CSV of `samples` (a header, then one line per sample; missing values empty).
pub fn csv(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::new();
    let header: Vec<&str> =
        ["player_id", "player_name", "game_id", "game_date", "season", "opponent", "target"]
            .into_iter()
            .chain(FEATURES)
            .chain(["split"])
            .collect();
    let mut w = ::csv::Writer::from_writer(&mut out);
    w.write_record(&header).expect("writes to memory");
    for s in samples {
        let mut record = vec![
            s.player_id.to_string(),
            s.player_name.clone(),
            s.game_id.clone(),
            s.game_date.clone(),
            s.season.clone(),
            s.opponent.clone(),
            s.target.to_string(),
        ];
        record.extend(s.features.iter().map(|v| v.map(|x| x.to_string()).unwrap_or_default()));
        record.push(s.split.to_owned());
        w.write_record(&record).expect("writes to memory");
    }
    drop(w);
    out
}

/// Writes `samples` as Parquet (snappy) to `path`.
pub fn write_parquet(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;

    let mut schema = String::from(
        "message sample { REQUIRED INT64 player_id; REQUIRED BYTE_ARRAY player_name (UTF8); \
         REQUIRED BYTE_ARRAY game_id (UTF8); REQUIRED BYTE_ARRAY game_date (UTF8); REQUIRED BYTE_ARRAY season (UTF8); \
         REQUIRED BYTE_ARRAY opponent (UTF8); REQUIRED DOUBLE target;",
    );
    for f in FEATURES {
        schema.push_str(&format!(" OPTIONAL DOUBLE {f};"));
    }
    schema.push_str(" REQUIRED BYTE_ARRAY split (UTF8); }");
    let schema = Arc::new(parquet::schema::parser::parse_message_type(&schema)?);
    let props =
        Arc::new(WriterProperties::builder().set_compression(parquet::basic::Compression::SNAPPY).build());
    let file = std::fs::File::create(path)?;
    let mut writer = SerializedFileWriter::new(file, schema, props)?;
    let mut group = writer.next_row_group()?;
    let strings = |f: &dyn Fn(&Sample) -> &str| -> Vec<ByteArray> {
        samples.iter().map(|s| ByteArray::from(f(s))).collect()
    };
    let mut column = 0;
    while let Some(mut col) = group.next_column()? {
        match column {
            0 => {
                let ids: Vec<i64> = samples.iter().map(|s| s.player_id).collect();
                col.typed::<Int64Type>().write_batch(&ids, None, None)?;
            }
            1..=5 => {
                let values = match column {
                    1 => strings(&|s| &s.player_name),
                    2 => strings(&|s| &s.game_id),
                    3 => strings(&|s| &s.game_date),
                    4 => strings(&|s| &s.season),
                    _ => strings(&|s| &s.opponent),
                };
                col.typed::<ByteArrayType>().write_batch(&values, None, None)?;
            }
            6 => {
                let targets: Vec<f64> = samples.iter().map(|s| s.target).collect();
                col.typed::<DoubleType>().write_batch(&targets, None, None)?;
            }
            c if c < 7 + FEATURES.len() => {
                let i = c - 7;
                let present: Vec<f64> = samples.iter().filter_map(|s| s.features[i]).collect();
                let levels: Vec<i16> = samples.iter().map(|s| i16::from(s.features[i].is_some())).collect();
                col.typed::<DoubleType>().write_batch(&present, Some(&levels), None)?;
            }
            _ => {
                let values = strings(&|s| s.split);
                col.typed::<ByteArrayType>().write_batch(&values, None, None)?;
            }
        }
        col.close()?;
        column += 1;
    }
    group.close()?;
    writer.close()?;
    Ok(())
}

/// What a written dataset is.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DatasetMeta {
    /// The first 12 hex digits of the CSV's SHA-256: the same data, the same version.
    pub version_id: String,
    /// The stat predicted.
    pub stat_type: String,
    /// The Parquet file.
    pub path: String,
    /// The CSV file.
    pub csv_path: String,
    /// Samples.
    pub rows: usize,
    /// Players.
    pub players: usize,
    /// Samples per split.
    pub splits: BTreeMap<String, usize>,
    /// The feature columns.
    pub features: Vec<String>,
    /// Written (RFC 3339).
    pub created_at: String,
}

/// Writes `samples` of `stat` under `dir`: `<stat>_dataset_<version>.parquet`, `.csv` and
/// `.json` (the metadata, answered).
pub fn write(dir: &Path, stat: &str, samples: &[Sample]) -> anyhow::Result<DatasetMeta> {
    std::fs::create_dir_all(dir)?;
    let csv_bytes = csv(samples);
    let version: String = Sha256::digest(&csv_bytes).iter().take(6).map(|b| format!("{b:02x}")).collect();
    let stem = format!("{stat}_dataset_{version}");
    let parquet_path: PathBuf = dir.join(format!("{stem}.parquet"));
    let csv_path: PathBuf = dir.join(format!("{stem}.csv"));
    write_parquet(&parquet_path, samples)?;
    let mut file = std::fs::File::create(&csv_path)?;
    file.write_all(&csv_bytes)?;
    file.sync_all()?;
    let mut splits = BTreeMap::new();
    for s in samples {
        *splits.entry(s.split.to_owned()).or_insert(0) += 1;
    }
    let players = samples.iter().map(|s| s.player_id).collect::<std::collections::BTreeSet<_>>().len();
    let meta = DatasetMeta {
        version_id: version,
        stat_type: stat.to_owned(),
        path: parquet_path.display().to_string(),
        csv_path: csv_path.display().to_string(),
        rows: samples.len(),
        players,
        splits,
        features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    std::fs::write(dir.join(format!("{stem}.json")), serde_json::to_vec_pretty(&meta)?)?;
    Ok(meta)
}

/// The samples of a dataset's CSV.
pub fn read_csv(path: &Path) -> anyhow::Result<Vec<Sample>> {
    let mut reader = ::csv::Reader::from_path(path)?;
    let mut samples = Vec::new();
    for record in reader.records() {
        let r = record?;
        let text = |i: usize| r.get(i).unwrap_or_default().to_owned();
        let number = |i: usize| r.get(i).filter(|v| !v.is_empty()).and_then(|v| v.parse::<f64>().ok());
        let split = match r.get(7 + FEATURES.len()) {
            Some("val") => "val",
            Some("test") => "test",
            _ => "train",
        };
        samples.push(Sample {
            player_id: text(0).parse()?,
            player_name: text(1),
            game_id: text(2),
            game_date: text(3),
            season: text(4),
            opponent: text(5),
            target: number(6)
                .ok_or_else(|| anyhow::anyhow!("a sample without a target in {}", path.display()))?,
            features: (0..FEATURES.len()).map(|i| number(7 + i)).collect(),
            split,
        });
    }
    Ok(samples)
}

/// The metadata of every dataset under `dir`, newest first.
pub fn list(dir: &Path) -> Vec<DatasetMeta> {
    let mut metas: Vec<DatasetMeta> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default();
    metas.sort_by(|a: &DatasetMeta, b| {
        b.created_at.cmp(&a.created_at).then_with(|| a.version_id.cmp(&b.version_id))
    });
    metas
}

/// The column of `stat` in `sports_player_stats`, if it is one a dataset may predict.
pub fn column_of(stat: &str) -> Option<&'static str> {
    STATS.iter().find(|(name, _)| *name == stat).map(|(_, column)| *column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(player: i64, day: u32, team: &str, home: &str, away: &str, value: f64) -> HistoryLine {
        HistoryLine {
            player_id: player,
            player_name: format!("P{player}"),
            game_id: format!("g{day}-{home}"),
            game_date: NaiveDate::from_ymd_opt(2025, 1, day).unwrap(),
            season: "2024-25".into(),
            team: team.into(),
            home_team: home.into(),
            away_team: away.into(),
            home_score: Some(100.0 + f64::from(day)),
            away_score: Some(90.0),
            value: Some(value),
        }
    }

    #[test]
    fn samples_use_only_what_was_known_before_each_game() {
        let history: Vec<HistoryLine> =
            (1..=10).map(|d| line(7, d * 2, "LAL", "LAL", "BOS", f64::from(d))).collect();
        let samples = build(history.clone(), 5);
        assert_eq!(samples.len(), 9, "the first game has nothing before it");
        let fifth = &samples[3];
        // Values 1..4 before game 5: last 3 (newest first 4, 3, 2) = 3.
        assert_eq!(fifth.target, 5.0);
        let at = |name: &str| fifth.features[FEATURES.iter().position(|f| *f == name).unwrap()];
        assert_eq!(at("last_3_avg"), Some(3.0));
        assert_eq!(at("season_avg_to_date"), Some(2.5));
        assert_eq!(at("days_rest"), Some(1.0));
        assert_eq!(at("is_home"), Some(1.0));
        // BOS allowed 102, 104, 106, 108 in the four games before.
        assert_eq!(at("opp_pts_allowed_avg"), Some(105.0));
        let splits: Vec<&str> = samples.iter().map(|s| s.split).collect();
        assert_eq!(splits, ["train", "train", "train", "train", "train", "train", "val", "test", "test"]);
        assert!(build(history, 11).is_empty(), "too few games");
        let two = build(vec![line(1, 1, "LAL", "LAL", "BOS", 1.0), line(1, 3, "LAL", "LAL", "BOS", 2.0)], 2);
        assert_eq!(two[0].split, "train");
        assert_eq!(csv(&samples), csv(&samples), "deterministic");
    }
}
