//! Predictions as they were answered, and what the player then did: the live accuracy of each
//! model (and of the heuristic) that `/api/models` reports.

use serde::Serialize;
use sightline_platform::db::now_ms;
use sqlx::{AnyConnection, Row as _};
use utoipa::ToSchema;

/// A prediction to remember.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPrediction {
    /// `heuristic` or `model:<id>`.
    pub method: String,
    /// The player's name as compared ([`crate::players::normalise`]).
    pub player_key: String,
    /// The stat.
    pub stat: String,
    /// The line.
    pub line: f64,
    /// The predicted value.
    pub predicted: f64,
    /// `OVER`, `UNDER` or none.
    pub recommendation: Option<String>,
    /// The day it was made (`YYYY-MM-DD`): it is for the player's first game on or after it.
    pub made_on: String,
}

/// Stores `prediction`, waiting for its game.
pub async fn insert(conn: &mut AnyConnection, prediction: &NewPrediction) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sports_predictions (id, method, player_key, stat, line, predicted, recommendation, made_on, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(format!("pred_{}", uuid::Uuid::new_v4().simple()))
    .bind(&prediction.method)
    .bind(&prediction.player_key)
    .bind(&prediction.stat)
    .bind(prediction.line)
    .bind(prediction.predicted)
    .bind(prediction.recommendation.as_deref())
    .bind(&prediction.made_on)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// A prediction still waiting for its game.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenPrediction {
    /// Its id.
    pub id: String,
    /// The player's compared name.
    pub player_key: String,
    /// The stat.
    pub stat: String,
}

/// The predictions made on or before `day` that have no actual value yet.
pub async fn open_until(conn: &mut AnyConnection, day: &str) -> Result<Vec<OpenPrediction>, sqlx::Error> {
    sqlx::query("SELECT id, player_key, stat FROM sports_predictions WHERE actual IS NULL AND made_on <= $1")
        .bind(day)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok(OpenPrediction {
                id: r.try_get("id")?,
                player_key: r.try_get("player_key")?,
                stat: r.try_get("stat")?,
            })
        })
        .collect()
}

/// Fills in what the player did in `game_id` (played on `game_date`).
pub async fn settle(
    conn: &mut AnyConnection,
    id: &str,
    actual: f64,
    game_id: &str,
    game_date: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sports_predictions SET actual = $1, game_id = $2, game_date = $3, settled_at = $4 \
         WHERE id = $5 AND actual IS NULL",
    )
    .bind(actual)
    .bind(game_id)
    .bind(game_date)
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// How one method's predictions of one stat turned out.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LiveAccuracy {
    /// `heuristic` or `model:<id>`.
    pub method: String,
    /// The stat.
    pub stat: String,
    /// Predictions answered.
    pub predictions: i64,
    /// Of them, those whose game has been ingested.
    pub settled: i64,
    /// Mean absolute error of the settled ones.
    pub mae: Option<f64>,
    /// Root mean squared error of the settled ones.
    pub rmse: Option<f64>,
    /// Share of settled `OVER`/`UNDER` recommendations that came true (a push counts as wrong).
    pub hit_rate: Option<f64>,
}

/// Live accuracy per method and stat.
pub async fn accuracy(conn: &mut AnyConnection) -> Result<Vec<LiveAccuracy>, sqlx::Error> {
    sqlx::query(
        "SELECT method, stat, COUNT(*) AS predictions, COUNT(actual) AS settled, \
         AVG(ABS(predicted - actual)) AS mae, AVG((predicted - actual) * (predicted - actual)) AS mse, \
         SUM(CASE WHEN actual IS NOT NULL AND recommendation IS NOT NULL THEN 1 ELSE 0 END) AS called, \
         SUM(CASE WHEN (recommendation = 'OVER' AND actual > line) OR (recommendation = 'UNDER' AND actual < line) \
             THEN 1 ELSE 0 END) AS hits \
         FROM sports_predictions GROUP BY method, stat ORDER BY method, stat",
    )
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        let called: i64 = r.try_get("called")?;
        let hits: i64 = r.try_get("hits")?;
        Ok(LiveAccuracy {
            method: r.try_get("method")?,
            stat: r.try_get("stat")?,
            predictions: r.try_get("predictions")?,
            settled: r.try_get("settled")?,
            mae: r.try_get("mae")?,
            rmse: r.try_get::<Option<f64>, _>("mse")?.map(f64::sqrt),
            hit_rate: (called > 0).then(|| hits as f64 / called as f64),
        })
    })
    .collect()
}
