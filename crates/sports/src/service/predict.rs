//! Over/under predictions for a player's stat line: the kept model of the stat, else the
//! original's heuristic, over the player's recent games (given in the request, or fetched from
//! stats.nba.com when the request has none; the original fell back to 0). Every prediction is
//! stored, and ingestion fills in the actual value: the live accuracy `/api/models` reports.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::SportsService;
use crate::error::SportsError;

/// Decimal odds of a −110 line.
const DECIMAL_ODDS: f64 = 1.0 + 100.0 / 110.0;
/// Time one batch item may take.
pub const BATCH_ITEM_TIMEOUT: Duration = Duration::from_secs(10);

/// A prediction's question.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PredictionRequest {
    /// The player's name.
    pub player: String,
    /// The stat (default `points`).
    #[serde(default = "points")]
    pub stat: String,
    /// The line to beat.
    pub line: f64,
    /// The caller's own data: `recentGames[].statValue` (newest first) and `seasonAvg`.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub player_data: Option<Value>,
    /// The opponent (`defensiveRating`, `pace`, `teamId`); kept for the model.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub opponent_data: Option<Value>,
}

fn points() -> String {
    "points".into()
}

/// A prediction, in the original's shape (and `method`, `games_used` beside it).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PredictionResponse {
    /// The player.
    pub player: String,
    /// The stat.
    pub stat: String,
    /// The line.
    pub line: f64,
    /// The expected value of the stat.
    pub predicted_value: Option<f64>,
    /// Chance of going over the line.
    pub over_probability: Option<f64>,
    /// Chance of staying under.
    pub under_probability: Option<f64>,
    /// `OVER` above 0.55, `UNDER` below 0.45, else `null`.
    pub recommendation: Option<String>,
    /// The better side's expected return at −110.
    pub expected_value: Option<f64>,
    /// |p − 0.5| × 200, 0–100.
    pub confidence: Option<f64>,
    /// Why there is no prediction.
    pub error: Option<String>,
    /// `heuristic` (the recent games' mean) until a model exists.
    pub method: String,
    /// Games the prediction rests on.
    pub games_used: usize,
}

impl PredictionResponse {
    fn failed(request: &PredictionRequest, error: impl Into<String>) -> Self {
        Self {
            player: request.player.clone(),
            stat: request.stat.clone(),
            line: request.line,
            predicted_value: None,
            over_probability: None,
            under_probability: None,
            recommendation: None,
            expected_value: None,
            confidence: None,
            error: Some(error.into()),
            method: "heuristic".into(),
            games_used: 0,
        }
    }
}

/// The heuristic: over-probability 0.5 + 0.05 per unit the mean clears the line, kept within
/// 0.05–0.95.
pub fn heuristic(player: &str, stat: &str, line: f64, mean: f64, games_used: usize) -> PredictionResponse {
    let p = (0.5 + 0.05 * (mean - line)).clamp(0.05, 0.95);
    let recommendation = if p > 0.55 {
        Some("OVER".to_owned())
    } else if p < 0.45 {
        Some("UNDER".to_owned())
    } else {
        None
    };
    PredictionResponse {
        player: player.to_owned(),
        stat: stat.to_owned(),
        line,
        predicted_value: Some(mean),
        over_probability: Some(p),
        under_probability: Some(1.0 - p),
        recommendation,
        expected_value: Some((p * DECIMAL_ODDS - 1.0).max((1.0 - p) * DECIMAL_ODDS - 1.0)),
        confidence: Some((p - 0.5).abs() * 200.0),
        error: None,
        method: "heuristic".into(),
        games_used,
    }
}

/// What a training did.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Training {
    /// The stored model's id.
    pub id: String,
    /// Whether it beat both baselines and is now the one predictions use.
    pub kept: bool,
    /// The model and its metrics.
    pub model: crate::model::TrainedModel,
}

/// The features of a coming game from the player's recent values (newest first), his season so
/// far, and what the request says of rest, venue and opponent.
fn features_for(
    values: &[Option<f64>],
    season_avg: Option<f64>,
    days_rest: Option<f64>,
    is_home: Option<f64>,
    opp_allowed: Option<f64>,
) -> Vec<Option<f64>> {
    let rolling = crate::features::rolling(values);
    let mut out: Vec<Option<f64>> =
        crate::dataset::FEATURES[..11].iter().map(|f| rolling.get(f).copied().flatten()).collect();
    out.extend([season_avg, days_rest, is_home, opp_allowed]);
    out
}

impl SportsService {
    /// Trains a model of `stat` on its newest dataset; keeps it for predictions only if it
    /// beats both baselines on the test split.
    pub async fn train_model(&self, stat: &str) -> Result<Training, SportsError> {
        let datasets = crate::dataset::list(&self.ingest_settings().datasets_dir);
        let meta = datasets
            .into_iter()
            .find(|d| d.stat_type == stat)
            .ok_or_else(|| SportsError::NotFound(format!("no {stat} dataset yet: build one first")))?;
        let (stat_owned, version, csv) = (stat.to_owned(), meta.version_id.clone(), meta.csv_path.clone());
        let model = tokio::task::spawn_blocking(move || {
            let samples = crate::dataset::read_csv(std::path::Path::new(&csv))?;
            crate::model::train(&stat_owned, &version, &samples)
        })
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|e| SportsError::invalid("stat", e.to_string()))?;
        let kept = model.metrics.beats_baselines;
        let mut conn = self.db().writer().acquire().await?;
        let id = crate::store::models::insert(&mut conn, &model, kept).await?;
        tracing::info!(model = %id, stat, kept, test_mae = model.metrics.test_mae, "sports.model_trained");
        Ok(Training { id, kept, model })
    }

    /// Every stored model, newest first.
    pub async fn models(&self) -> Result<Vec<crate::store::models::StoredModel>, SportsError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(crate::store::models::list(&mut conn).await?)
    }

    /// A prediction for `request`; a player nobody has, or stats.nba.com failing, is the
    /// answer's `error`.
    pub async fn predict(&self, request: &PredictionRequest) -> Result<PredictionResponse, SportsError> {
        if request.player.trim().is_empty() {
            return Err(SportsError::invalid("player", "is required"));
        }
        if !request.line.is_finite() {
            return Err(SportsError::invalid("line", "must be a number"));
        }
        let given: Vec<f64> = request
            .player_data
            .as_ref()
            .and_then(|d| d.get("recentGames"))
            .and_then(Value::as_array)
            .map(|games| games.iter().filter_map(|g| g.get("statValue").and_then(Value::as_f64)).collect())
            .unwrap_or_default();
        let season_avg =
            request.player_data.as_ref().and_then(|d| d.get("seasonAvg")).and_then(Value::as_f64);
        let (values, fallback) = if !given.is_empty() {
            (given, None)
        } else if let Some(avg) = season_avg {
            (Vec::new(), Some(avg))
        } else {
            match self.player_summary(&request.player, &request.stat, 10, None).await {
                Ok(summary) => {
                    (summary.recent_games.iter().filter_map(|g| g.stat_value.as_f64()).collect(), None)
                }
                Err(SportsError::NotFound(m)) => return Ok(PredictionResponse::failed(request, m)),
                Err(e) => return Err(e),
            }
        };
        let mean = if values.is_empty() {
            fallback.unwrap_or(0.0)
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        };
        let model = {
            let mut conn = self.db().reader().acquire().await?;
            crate::store::models::active(&mut conn, &request.stat).await?
        };
        let Some(model) = model.filter(|_| !values.is_empty()) else {
            let answer = heuristic(&request.player, &request.stat, request.line, mean, values.len());
            self.remember(&answer).await;
            return Ok(answer);
        };
        let context = request.player_data.as_ref().and_then(|d| d.get("contextualFactors"));
        let days_rest = context.and_then(|c| c.get("daysRest")).and_then(Value::as_f64);
        let is_home = context.and_then(|c| c.get("homeAway")).and_then(Value::as_str).map(|h| {
            if h.eq_ignore_ascii_case("home") {
                1.0
            } else {
                0.0
            }
        });
        let opp_allowed =
            request.opponent_data.as_ref().and_then(|o| o.get("pointsAllowed")).and_then(Value::as_f64);
        let wrapped: Vec<Option<f64>> = values.iter().map(|v| Some(*v)).collect();
        let features = features_for(&wrapped, season_avg.or(Some(mean)), days_rest, is_home, opp_allowed);
        let raw = model.model.predict(&features);
        // The original's model answer: over-probability from the distance to the line.
        let p = (1.0 / (1.0 + (-(raw - request.line)).exp())).clamp(0.0, 1.0);
        let mut answer = heuristic(&request.player, &request.stat, request.line, raw, values.len());
        answer.over_probability = Some(p);
        answer.under_probability = Some(1.0 - p);
        answer.recommendation = if p > 0.55 {
            Some("OVER".into())
        } else if p < 0.45 {
            Some("UNDER".into())
        } else {
            None
        };
        answer.expected_value = Some((p * DECIMAL_ODDS - 1.0).max((1.0 - p) * DECIMAL_ODDS - 1.0));
        answer.confidence = Some((p - 0.5).abs() * 200.0);
        answer.method = format!("model:{}", model.id);
        self.remember(&answer).await;
        Ok(answer)
    }

    /// Stores `answer` so ingestion can fill in what the player did in his next game (the
    /// first on or after today in US Eastern time, the zone of stats.nba.com's game dates). A
    /// failure to store is logged: the caller still gets the prediction.
    async fn remember(&self, answer: &PredictionResponse) {
        let Some(predicted) = answer.predicted_value else { return };
        let prediction = crate::store::predictions::NewPrediction {
            method: answer.method.clone(),
            player_key: crate::players::normalise(&answer.player),
            stat: answer.stat.clone(),
            line: answer.line,
            predicted,
            recommendation: answer.recommendation.clone(),
            made_on: Utc::now().with_timezone(&chrono_tz::America::New_York).date_naive().to_string(),
        };
        let stored = async {
            let mut conn = self.db().writer().acquire().await?;
            crate::store::predictions::insert(&mut conn, &prediction).await
        };
        if let Err(e) = stored.await {
            tracing::error!(error = %e, "sports.prediction_not_recorded");
        }
    }

    /// How each method's predictions turned out, per stat.
    pub async fn live_accuracy(&self) -> Result<Vec<crate::store::predictions::LiveAccuracy>, SportsError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(crate::store::predictions::accuracy(&mut conn).await?)
    }

    /// Predictions for `requests` in order, 8 at a time, each within 10 s; a failing item says
    /// why in its `error`.
    pub async fn batch_predict(
        &self,
        requests: Vec<PredictionRequest>,
        concurrency: usize,
    ) -> Vec<PredictionResponse> {
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.clamp(1, 32)));
        let tasks: Vec<_> = requests
            .into_iter()
            .map(|request| {
                let (service, permits) = (self.clone(), permits.clone());
                tokio::spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    match tokio::time::timeout(BATCH_ITEM_TIMEOUT, service.predict(&request)).await {
                        Ok(Ok(answer)) => answer,
                        Ok(Err(e)) => PredictionResponse::failed(&request, e.to_string()),
                        Err(_) => PredictionResponse::failed(&request, "prediction timeout"),
                    }
                })
            })
            .collect();
        let mut out = Vec::with_capacity(tasks.len());
        for task in tasks {
            if let Ok(answer) = task.await {
                out.push(answer);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heuristic_is_the_originals() {
        let p = heuristic("x", "points", 20.0, 25.0, 5);
        assert_eq!(p.over_probability, Some(0.75));
        assert!((p.under_probability.unwrap() - 0.25).abs() < 1e-12);
        assert_eq!(p.recommendation.as_deref(), Some("OVER"));
        assert!((p.confidence.unwrap() - 50.0).abs() < 1e-9);
        assert!((p.expected_value.unwrap() - (0.75 * DECIMAL_ODDS - 1.0)).abs() < 1e-12);
        assert_eq!(heuristic("x", "points", 20.0, 100.0, 5).over_probability, Some(0.95));
        assert_eq!(heuristic("x", "points", 20.0, 20.5, 5).recommendation, None);
        assert_eq!(heuristic("x", "points", 20.0, 0.0, 5).recommendation.as_deref(), Some("UNDER"));
    }
}
