//! The daily ingestion (the original's `run_daily_sync`): a day's games and player lines from
//! stats.nba.com's league game log, written raw to the audit directory (JSON Lines per day),
//! normalised and validated ([`validate`]), records missing a required field dropped, the rest
//! stored (players, games, player lines, team seasons; the same day again changes nothing); an
//! alert webhook when validation found missing fields or type errors; every run recorded.

pub mod validate;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use chrono::NaiveDate;
use serde_json::{json, Map, Value};
use sightline_platform::queue::NewJob;
use sightline_platform::webhooks::{self, WebhookEndpoint};
use sightline_platform::Job as _;

use crate::error::SportsError;
use crate::jobs::DeliverAlert;
use crate::nba::season_of;
use crate::service::SportsService;
use crate::store::league::{GameRow, PlayerLineRow};
use crate::store::{self};

/// Where and how ingestion writes and alerts.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// `INGEST_AUDIT_DIR`: raw records, a JSON Lines file a day.
    pub audit_dir: PathBuf,
    /// `INGEST_CRITICAL_FIELDS`.
    pub critical_fields: Vec<String>,
    /// `INGEST_ALERT_WEBHOOK` and its secrets, when configured.
    pub alert: Option<WebhookEndpoint>,
    /// Attempts of an alert (`INGEST_ALERT_RETRIES` + 1).
    pub alert_attempts: i64,
    /// Where datasets are written (`<data_dir>/sports/datasets`).
    pub datasets_dir: PathBuf,
}

/// One day's rows of the league log.
#[derive(Debug, Default)]
struct DayRows {
    teams: Vec<Map<String, Value>>,
    players: Vec<Map<String, Value>>,
}

fn number(row: &Map<String, Value>, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// The games of a team-mode league log: home and visitors from `MATCHUP` (`vs.` at home).
fn games_of(rows: &[Map<String, Value>]) -> BTreeMap<String, Map<String, Value>> {
    let mut games: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for row in rows {
        let Some(id) = row.get("GAME_ID").and_then(Value::as_str) else { continue };
        let game = games.entry(id.to_owned()).or_default();
        game.insert("game_id".into(), json!(id));
        if let Some(date) = row.get("GAME_DATE") {
            game.insert("game_date".into(), date.clone());
        }
        let home = row.get("MATCHUP").and_then(Value::as_str).is_some_and(|m| m.contains(" vs. "));
        let side = if home { "home" } else { "away" };
        game.insert(format!("{side}_team"), row.get("TEAM_ABBREVIATION").cloned().unwrap_or(Value::Null));
        game.insert(format!("{side}_score"), row.get("PTS").cloned().unwrap_or(Value::Null));
    }
    games.into_iter().map(|(id, g)| (id, validate::normalise(&g))).collect()
}

impl SportsService {
    /// Builds and writes the dataset of `stat` from the stored games (players with at least
    /// `min_games`), under `dir` (default `<data_dir>/sports/datasets`).
    pub async fn build_dataset(
        &self,
        stat: &str,
        min_games: usize,
        dir: Option<&std::path::Path>,
    ) -> Result<crate::dataset::DatasetMeta, SportsError> {
        let column = crate::dataset::column_of(stat).ok_or_else(|| {
            SportsError::invalid(
                "stat",
                format!("must be one of {}", crate::dataset::STATS.map(|s| s.0).join(", ")),
            )
        })?;
        let mut conn = self.db().reader().acquire().await?;
        let history = store::league::history(&mut conn, column).await?;
        drop(conn);
        let dir =
            dir.map_or_else(|| self.ingest_settings().datasets_dir.clone(), std::path::Path::to_path_buf);
        let stat = stat.to_owned();
        // Sample building and the file writes are blocking work.
        let meta = tokio::task::spawn_blocking(move || {
            let samples = crate::dataset::build(history, min_games);
            crate::dataset::write(&dir, &stat, &samples)
        })
        .await
        .map_err(anyhow::Error::from)??;
        Ok(meta)
    }

    /// Queues a dataset build; `false` when one of that stat is queued already.
    pub async fn queue_dataset(&self, stat: &str, min_games: usize) -> Result<bool, SportsError> {
        crate::dataset::column_of(stat).ok_or_else(|| {
            SportsError::invalid(
                "stat",
                format!("must be one of {}", crate::dataset::STATS.map(|s| s.0).join(", ")),
            )
        })?;
        let mut tx = self.db().begin().await?;
        let job = crate::jobs::BuildDataset { stat: stat.to_owned(), min_games };
        let queued = self.queue().push(&mut tx, &job).await.map_err(SportsError::Internal)?.is_some();
        tx.commit().await?;
        self.queue().wake();
        Ok(queued)
    }

    /// Queues a sync of `date` (default yesterday); `false` when that day is queued already.
    pub async fn queue_sync(&self, date: Option<String>, dry_run: bool) -> Result<bool, SportsError> {
        let mut tx = self.db().begin().await?;
        let job = crate::jobs::Sync { date, dry_run, trigger: "api".into() };
        let queued = self.queue().push(&mut tx, &job).await.map_err(SportsError::Internal)?.is_some();
        tx.commit().await?;
        self.queue().wake();
        Ok(queued)
    }

    /// The latest `limit` runs.
    pub async fn ingest_runs(&self, limit: i64) -> Result<Vec<store::runs::IngestRun>, SportsError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::runs::list(&mut conn, limit).await?)
    }

    /// One run.
    pub async fn ingest_run(&self, id: &str) -> Result<store::runs::IngestRun, SportsError> {
        let mut conn = self.db().reader().acquire().await?;
        store::runs::get(&mut conn, id)
            .await?
            .ok_or_else(|| SportsError::NotFound(format!("no ingestion run {id}")))
    }

    /// The latest `limit` alert deliveries with their attempts.
    pub async fn alert_deliveries(&self, limit: i64) -> Result<Vec<webhooks::Delivery>, SportsError> {
        Ok(webhooks::list(self.db(), "sports", limit).await?)
    }

    /// Syncs `day`: fetch, audit, validate, store (unless `dry_run`), alert; answers the
    /// original's summary. The run is recorded whatever happens.
    pub async fn sync(&self, day: NaiveDate, dry_run: bool, trigger: &str) -> Result<Value, SportsError> {
        let fetched = self.fetch_days(day, day).await.map(|mut days| days.remove(&day).unwrap_or_default());
        self.sync_recorded(day, dry_run, trigger, fetched).await
    }

    /// Syncs every day from `from` to `to` as [`sync`](Self::sync) does, a run a day, fetching
    /// each season's stretch of the range in one league-log request per kind (a season is two
    /// requests, not two a day); `progress(done, total)` after each day. Stops at the first
    /// failing day.
    pub async fn sync_range(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        dry_run: bool,
        trigger: &str,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Value>, SportsError> {
        if to < from {
            return Err(SportsError::invalid("to", "must not be before from"));
        }
        let total = (to - from).num_days() as usize + 1;
        let mut summaries = Vec::with_capacity(total);
        let mut start = from;
        while start <= to {
            // The stretch of the range in `start`'s season (seasons turn on 1 October).
            let season = season_of(start);
            let mut end = start;
            while end < to && season_of(end + chrono::Duration::days(1)) == season {
                end += chrono::Duration::days(1);
            }
            let mut days = match self.fetch_days(start, end).await {
                Ok(days) => days,
                Err(e) => return Err(self.sync_recorded(start, dry_run, trigger, Err(e)).await.unwrap_err()),
            };
            for day in start.iter_days().take_while(|d| *d <= end) {
                let fetched = days.remove(&day).unwrap_or_default();
                summaries.push(self.sync_recorded(day, dry_run, trigger, Ok(fetched)).await?);
                progress(summaries.len(), total);
            }
            start = end + chrono::Duration::days(1);
        }
        Ok(summaries)
    }

    /// The team and player rows of the league log from `from` to `to` (one season), by day.
    async fn fetch_days(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<BTreeMap<NaiveDate, DayRows>, SportsError> {
        let season = season_of(from);
        let teams = self.nba().league_game_log(&season, false, from, to).await?.records();
        let players = self.nba().league_game_log(&season, true, from, to).await?.records();
        let mut days: BTreeMap<NaiveDate, DayRows> = BTreeMap::new();
        for (rows, players) in [(teams, false), (players, true)] {
            for row in rows {
                // A row without a readable date is kept on the range's first day, where
                // validation reports it.
                let day = row.get("GAME_DATE").and_then(validate::parse_date).unwrap_or(from);
                let entry = days.entry(day).or_default();
                if players {
                    entry.players.push(row)
                } else {
                    entry.teams.push(row)
                }
            }
        }
        Ok(days)
    }

    /// Records a run of `day` around processing what was fetched for it.
    async fn sync_recorded(
        &self,
        day: NaiveDate,
        dry_run: bool,
        trigger: &str,
        fetched: Result<DayRows, SportsError>,
    ) -> Result<Value, SportsError> {
        let settings = self.ingest_settings();
        let run_id = format!("run_{}", uuid::Uuid::new_v4().simple());
        let mut conn = self.db().writer().acquire().await?;
        store::runs::start(&mut conn, &run_id, &day.to_string(), trigger, dry_run).await?;
        drop(conn);
        let outcome = match fetched {
            Ok(rows) => self.sync_day(day, dry_run, settings, &run_id, rows).await,
            Err(e) => Err(e),
        };
        let mut tx = self.db().begin().await?;
        let result = match outcome {
            Ok((summary, alert)) => {
                let delivery = match (alert, &settings.alert) {
                    (Some(payload), Some(endpoint)) => {
                        let id = webhooks::create_in(
                            &mut tx,
                            "sports",
                            "sports.ingest_alert",
                            &endpoint.url,
                            &payload,
                        )
                        .await?;
                        let mut job =
                            NewJob::new(DeliverAlert::QUEUE, DeliverAlert::NAME, json!({"delivery_id": id}));
                        job.max_attempts = Some(settings.alert_attempts);
                        self.queue().enqueue(&mut tx, job).await?;
                        Some(id)
                    }
                    (Some(payload), None) => {
                        tracing::warn!(alert = %payload, "sports.alert_no_webhook_configured");
                        None
                    }
                    (None, _) => None,
                };
                store::runs::finish(&mut tx, &run_id, Some(&summary), None, delivery.as_deref()).await?;
                let mut summary = summary;
                summary["run_id"] = json!(run_id);
                Ok(summary)
            }
            Err(e) => {
                store::runs::finish(&mut tx, &run_id, None, Some(&e.to_string()), None).await?;
                Err(e)
            }
        };
        tx.commit().await?;
        self.queue().wake();
        result
    }

    async fn sync_day(
        &self,
        day: NaiveDate,
        dry_run: bool,
        settings: &IngestSettings,
        run_id: &str,
        rows: DayRows,
    ) -> Result<(Value, Option<Value>), SportsError> {
        let season = season_of(day);
        let DayRows { teams, players } = rows;
        let audit_path = self.write_audit(settings, day, run_id, &teams, &players)?;

        let games = games_of(&teams);
        let records: Vec<Map<String, Value>> = players
            .iter()
            .map(|p| {
                let game_id = p.get("GAME_ID").and_then(Value::as_str).unwrap_or_default();
                let mut record = games.get(game_id).cloned().unwrap_or_default();
                record.insert("game_id".into(), json!(game_id));
                if !record.contains_key("game_date") {
                    record.insert("game_date".into(), p.get("GAME_DATE").cloned().unwrap_or(Value::Null));
                }
                record.insert("player_id".into(), p.get("PLAYER_ID").cloned().unwrap_or(Value::Null));
                record.insert("player_name".into(), p.get("PLAYER_NAME").cloned().unwrap_or(Value::Null));
                record.insert("team".into(), p.get("TEAM_ABBREVIATION").cloned().unwrap_or(Value::Null));
                record.insert("value".into(), p.get("PTS").cloned().unwrap_or(Value::Null));
                validate::normalise(&record)
            })
            .collect();
        let found = validate::validate(&records, &settings.critical_fields);
        let dropped: std::collections::HashSet<usize> = found.missing.iter().map(|(i, _)| *i).collect();

        let mut lines = Vec::new();
        for (i, (record, raw)) in records.iter().zip(&players).enumerate() {
            let Some(player_id) = record.get("player_id").and_then(Value::as_i64) else { continue };
            if dropped.contains(&i) {
                continue;
            }
            lines.push(PlayerLineRow {
                player_id,
                player_name: record.get("player_name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                game_id: record.get("game_id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                team: record.get("team").and_then(Value::as_str).unwrap_or_default().to_owned(),
                stats: ["MIN", "PTS", "REB", "AST", "STL", "BLK", "TOV", "FG3M", "PLUS_MINUS"]
                    .map(|k| number(raw, k)),
            });
        }
        let game_rows: Vec<GameRow> = games
            .values()
            .filter_map(|g| {
                Some(GameRow {
                    id: g.get("game_id")?.as_str()?.to_owned(),
                    game_date: g.get("game_date")?.as_str()?.to_owned(),
                    season: season.clone(),
                    home_team: g.get("home_team")?.as_str()?.to_owned(),
                    away_team: g.get("away_team")?.as_str()?.to_owned(),
                    home_score: g.get("home_score").and_then(Value::as_i64),
                    away_score: g.get("away_score").and_then(Value::as_i64),
                })
            })
            .collect();
        let team_rows = game_rows.len() * 2;
        let mut settled = 0;
        if !dry_run {
            let mut tx = self.db().begin().await?;
            store::league::upsert(&mut tx, &game_rows, &lines).await?;
            settled = self.settle_predictions(&mut tx, day, &lines).await?;
            tx.commit().await?;
        }
        let mut summary = json!({
            "audit_path": audit_path,
            "player_rows": lines.len(),
            "team_rows": team_rows,
            "predictions_settled": settled,
            "validation": found,
            "filtered_out_count": dropped.len(),
        });
        if dry_run {
            summary["dry_run"] = json!(true);
        }
        let alert = (!dry_run && (!found.missing.is_empty() || !found.type_errors.is_empty())).then(|| {
            json!({"when": day.to_string(), "missing_count": found.missing.len(),
                "type_error_count": found.type_errors.len(), "outlier_count": found.outliers.len(), "run_id": run_id})
        });
        Ok((summary, alert))
    }

    /// Fills in the actual value of every open prediction made on or before `day` for a player
    /// with a line on `day` (his first game since the prediction); answers how many. The
    /// prediction's player is the one the player list finds for its name, as the prediction
    /// itself found him; without the list, the line of the same name.
    async fn settle_predictions(
        &self,
        conn: &mut sqlx::AnyConnection,
        day: NaiveDate,
        lines: &[PlayerLineRow],
    ) -> Result<usize, SportsError> {
        let day = day.to_string();
        let open = store::predictions::open_until(conn, &day).await?;
        if open.is_empty() || lines.is_empty() {
            return Ok(0);
        }
        let directory = match self.directory().await {
            Ok(directory) => Some(directory),
            Err(e) => {
                tracing::warn!(error = %e, "sports.settling_by_name");
                None
            }
        };
        let by_id: std::collections::HashMap<i64, &PlayerLineRow> =
            lines.iter().map(|l| (l.player_id, l)).collect();
        let by_name: std::collections::HashMap<String, &PlayerLineRow> =
            lines.iter().map(|l| (crate::players::normalise(&l.player_name), l)).collect();
        let mut settled = 0;
        for prediction in open {
            let line = match directory.as_ref() {
                Some(d) => d.find(&prediction.player_key).and_then(|p| by_id.get(&p.id)),
                None => by_name.get(&prediction.player_key),
            };
            let Some(line) = line else { continue };
            let Some(column) = crate::dataset::column_of(&prediction.stat) else { continue };
            let Some(index) = store::league::STAT_COLUMNS.iter().position(|c| *c == column) else { continue };
            let Some(actual) = line.stats[index] else { continue };
            store::predictions::settle(conn, &prediction.id, actual, &line.game_id, &day).await?;
            settled += 1;
        }
        Ok(settled)
    }

    /// Appends the day's raw rows to `games_raw_<day>.json` (JSON Lines) and syncs the file;
    /// answers its path, or `""` when there was nothing.
    fn write_audit(
        &self,
        settings: &IngestSettings,
        day: NaiveDate,
        run_id: &str,
        teams: &[Map<String, Value>],
        players: &[Map<String, Value>],
    ) -> Result<String, SportsError> {
        if teams.is_empty() && players.is_empty() {
            return Ok(String::new());
        }
        std::fs::create_dir_all(&settings.audit_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", settings.audit_dir.display()))?;
        let path = settings.audit_dir.join(format!("games_raw_{day}.json"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for (kind, rows) in [("team", teams), ("player", players)] {
            for row in rows {
                let line = json!({"run_id": run_id, "kind": kind, "record": row});
                serde_json::to_writer(&mut out, &line).map_err(anyhow::Error::from)?;
                out.write_all(b"\n").map_err(anyhow::Error::from)?;
            }
        }
        let file = out.into_inner().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        file.sync_all().map_err(anyhow::Error::from)?;
        Ok(path.display().to_string())
    }
}
