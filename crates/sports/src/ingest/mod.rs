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
        let settings = self.ingest_settings();
        let run_id = format!("run_{}", uuid::Uuid::new_v4().simple());
        let mut conn = self.db().writer().acquire().await?;
        store::runs::start(&mut conn, &run_id, &day.to_string(), trigger, dry_run).await?;
        drop(conn);
        let outcome = self.sync_day(day, dry_run, settings, &run_id).await;
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
    ) -> Result<(Value, Option<Value>), SportsError> {
        let season = season_of(day);
        let teams = self.nba().league_game_log(&season, false, day, day).await?.records();
        let players = self.nba().league_game_log(&season, true, day, day).await?.records();
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
        if !dry_run {
            let mut tx = self.db().begin().await?;
            store::league::upsert(&mut tx, &game_rows, &lines).await?;
            tx.commit().await?;
        }
        let mut summary = json!({
            "audit_path": audit_path,
            "player_rows": lines.len(),
            "team_rows": team_rows,
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
