//! Forecasts of a product's monthly demand history: generated with a chosen or automatic
//! method (the engine in [`crate::forecast`]), stored with their intervals and backtest
//! accuracy, listed, scored per model; and anomalies in the history.

use chrono::{Datelike as _, NaiveDate};
use serde::Serialize;
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::PlanningService;
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::forecast::{self, Method};
use crate::model::ForecastRow;
use crate::store::forecasts::{self as store, ForecastFilter};

/// Interval level of stored forecasts.
pub const INTERVAL_LEVEL: f64 = 0.95;

/// A method clients may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelInfo {
    /// Its id (`model_type`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// History months it needs (fewer: a simpler method answers, and says so).
    pub min_data_months: usize,
}

/// One month of a generated forecast (the original's fields, numbers).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ForecastPoint {
    /// The month.
    pub period: NaiveDate,
    /// Expected demand.
    pub predicted_qty: f64,
    /// Lower bound (95 %).
    pub lower_bound: f64,
    /// Upper bound.
    pub upper_bound: f64,
    /// The interval's level, percent.
    pub confidence: f64,
}

/// Backtest accuracy (rolling origin).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, ToSchema)]
pub struct BacktestAccuracy {
    /// MAPE, percent (months with demand).
    pub mape: Option<f64>,
    /// RMSE.
    pub rmse: Option<f64>,
    /// MASE.
    pub mase: Option<f64>,
    /// sMAPE, percent (0–200).
    pub smape: Option<f64>,
}

/// `POST /forecasting/generate`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GeneratedForecast {
    /// The product.
    pub product_id: i64,
    /// The model asked for.
    pub model_type: String,
    /// Months ahead.
    pub horizon: usize,
    /// The months.
    pub forecasts: Vec<ForecastPoint>,
    /// The model that made it (`ETS(A,Ad,A)`, `decomposition`, `tsb`, …).
    pub model: String,
    /// The method that made it, when another than asked (too little history, or `auto`).
    pub method_used: String,
    /// Its rolling-origin backtest on this history.
    pub accuracy: BacktestAccuracy,
    /// History months it was fitted on.
    pub history_points: usize,
}

/// Accuracy of one model over stored forecasts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelAccuracy {
    /// The model asked for.
    pub model_type: String,
    /// Stored forecast months.
    pub forecasts: i64,
    /// Mean backtest MAPE.
    pub avg_mape: Option<f64>,
    /// Mean backtest RMSE.
    pub avg_rmse: Option<f64>,
    /// Mean backtest MASE.
    pub avg_mase: Option<f64>,
    /// Mean backtest sMAPE.
    pub avg_smape: Option<f64>,
}

/// A month whose demand stands out.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Anomaly {
    /// The month.
    pub period: NaiveDate,
    /// What sold.
    pub actual_qty: f64,
    /// What the neighbouring months (and the season) lead to expect.
    pub expected_qty: f64,
    /// Actual − expected.
    pub deviation: f64,
    /// Robust z-score of the deviation (0.6745 × (r − median) / MAD).
    pub z_score: f64,
    /// `spike` or `drop`.
    pub anomaly_type: String,
}

/// Robust z-score from which a month is an anomaly.
pub const ANOMALY_Z: f64 = 3.5;

fn month_after(month: NaiveDate, n: u32) -> NaiveDate {
    let total = month.year() * 12 + month.month0() as i32 + n as i32;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1).expect("a month")
}

/// The monthly series from `history` (months without a record are zero), with its first month.
pub fn monthly_series(history: &[(NaiveDate, Dec2)]) -> Option<(NaiveDate, Vec<f64>)> {
    let first = history.first()?.0.with_day(1)?;
    let last = history.last()?.0.with_day(1)?;
    let months =
        ((last.year() - first.year()) * 12 + last.month0() as i32 - first.month0() as i32 + 1) as usize;
    let mut y = vec![0.0; months];
    for (period, qty) in history {
        let i =
            ((period.year() - first.year()) * 12 + period.month0() as i32 - first.month0() as i32) as usize;
        y[i] += qty.to_f64();
    }
    Some((first, y))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    forecast::quantile(values, 0.5)
}

/// Months of `y` whose deviation from a centred 5-month moving median (of the seasonally
/// adjusted series, from 24 months) has a robust z-score beyond [`ANOMALY_Z`].
pub fn anomalies(first: NaiveDate, y: &[f64]) -> Vec<Anomaly> {
    if y.len() < 6 {
        return Vec::new();
    }
    let m = forecast::PERIOD;
    let seasonal = y.len() >= 2 * m && y.iter().all(|v| *v > 0.0);
    let mut index = vec![1.0; m];
    if seasonal {
        let mean = y.iter().sum::<f64>() / y.len() as f64;
        for (j, slot) in index.iter_mut().enumerate() {
            let same: Vec<f64> = y.iter().skip(j).step_by(m).copied().collect();
            *slot = same.iter().sum::<f64>() / same.len() as f64 / mean;
        }
    }
    let adjusted: Vec<f64> = y.iter().enumerate().map(|(t, v)| v / index[t % m]).collect();
    let expected: Vec<f64> = (0..y.len())
        .map(|t| {
            let lo = t.saturating_sub(2);
            let hi = (t + 3).min(y.len());
            let mut around: Vec<f64> = (lo..hi).filter(|i| *i != t).map(|i| adjusted[i]).collect();
            median(&mut around) * index[t % m]
        })
        .collect();
    let residuals: Vec<f64> = y.iter().zip(&expected).map(|(a, e)| a - e).collect();
    let centre = median(&mut residuals.clone());
    let mad = median(&mut residuals.iter().map(|r| (r - centre).abs()).collect::<Vec<_>>());
    if mad == 0.0 {
        return Vec::new();
    }
    residuals
        .iter()
        .enumerate()
        .filter_map(|(t, r)| {
            let z = 0.6745 * (r - centre) / mad;
            (z.abs() > ANOMALY_Z).then(|| Anomaly {
                period: month_after(first, t as u32),
                actual_qty: y[t],
                expected_qty: (expected[t] * 100.0).round() / 100.0,
                deviation: (r * 100.0).round() / 100.0,
                z_score: (z * 100.0).round() / 100.0,
                anomaly_type: if z > 0.0 { "spike" } else { "drop" }.to_owned(),
            })
        })
        .collect()
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some((v * 10_000.0).round() / 10_000.0)
}

/// A month of demand history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryMonth {
    /// The month.
    pub period: NaiveDate,
    /// Sold, every region and channel.
    #[schema(value_type = String)]
    pub actual_qty: Dec2,
}

impl PlanningService {
    /// The methods clients may ask for.
    pub fn forecast_models(&self) -> Vec<ModelInfo> {
        forecast::METHODS
            .iter()
            .map(|(_, id, name, min)| ModelInfo {
                id: (*id).into(),
                name: (*name).into(),
                min_data_months: *min,
            })
            .collect()
    }

    /// The product's monthly demand series and its first month.
    async fn demand_series(&self, product_id: i64) -> Result<Option<(NaiveDate, Vec<f64>)>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        if crate::store::products::product_by_id(&mut conn, product_id).await?.is_none() {
            return Err(PlanningError::NotFound { entity: "Product", id: product_id });
        }
        let history = crate::store::actuals::monthly(&mut conn, Some(&[product_id])).await?;
        Ok(history.get(&product_id).and_then(|h| monthly_series(h)))
    }

    /// The product's monthly demand, every month from its first (months without sales are 0):
    /// the history its forecasts are fitted on.
    pub async fn demand_history(&self, product_id: i64) -> Result<Vec<HistoryMonth>, PlanningError> {
        let Some((first, y)) = self.demand_series(product_id).await? else { return Ok(Vec::new()) };
        Ok(y.iter()
            .enumerate()
            .map(|(i, v)| HistoryMonth {
                period: first.checked_add_months(chrono::Months::new(i as u32)).unwrap_or(first),
                actual_qty: Dec2::from_f64(*v),
            })
            .collect())
    }

    /// Forecasts `product_id` `horizon` months past its history with `model_type` (default
    /// `auto`), stores the months (replacing that model's earlier ones) and answers them.
    pub async fn generate_forecast(
        &self,
        context: &RequestContext,
        product_id: i64,
        horizon: usize,
        model_type: Option<&str>,
    ) -> Result<GeneratedForecast, PlanningError> {
        let (generated, rows) = self.compute_forecast(product_id, horizon, model_type).await?;
        let mut tx = self.db().begin().await?;
        store::replace(&mut tx, &rows).await?;
        self.publish(
            &mut tx,
            context,
            "forecast.generated",
            ("product", product_id),
            (None, Some(&generated)),
        )
        .await?;
        tx.commit().await?;
        Ok(generated)
    }

    /// The forecast of `product_id` and the rows that store it (nothing stored yet).
    pub async fn compute_forecast(
        &self,
        product_id: i64,
        horizon: usize,
        model_type: Option<&str>,
    ) -> Result<(GeneratedForecast, Vec<ForecastRow>), PlanningError> {
        if !(1..=24).contains(&horizon) {
            return Err(PlanningError::invalid("horizon", "must be 1 to 24"));
        }
        let model_type = model_type.filter(|m| !m.is_empty()).unwrap_or("auto");
        let method = Method::from_id(model_type).ok_or_else(|| {
            let ids: Vec<&str> = forecast::METHODS.iter().map(|(_, id, ..)| *id).collect();
            PlanningError::Invalid(vec![FieldError::new(
                "model_type",
                format!("Unknown forecast model '{model_type}'. Available models: {}", ids.join(", ")),
            )])
        })?;
        let (first, y) = self.demand_series(product_id).await?.unwrap_or((NaiveDate::MIN, Vec::new()));
        if y.len() < forecast::MIN_POINTS {
            return Err(PlanningError::InsufficientData(format!(
                "Insufficient data for forecast generation: requires {} records, found {}.",
                forecast::MIN_POINTS,
                y.len()
            )));
        }
        let history_points = y.len();
        // The engine is CPU work: off the async threads.
        let (outcome, accuracy) = tokio::task::spawn_blocking(move || match method {
            Method::Auto => forecast::auto(&y, horizon, INTERVAL_LEVEL),
            _ => forecast::run(method, &y, horizon, INTERVAL_LEVEL)
                .or_else(|| forecast::auto(&y, horizon, INTERVAL_LEVEL).map(|(o, _)| o))
                .map(|o| {
                    let accuracy = forecast::backtest(o.method, &y, horizon);
                    (o, accuracy)
                }),
        })
        .await
        .map_err(anyhow::Error::from)?
        .ok_or_else(|| PlanningError::Internal(anyhow::anyhow!("no method could forecast this history")))?;
        let accuracy = BacktestAccuracy {
            mape: accuracy.and_then(|a| finite(a.mape)),
            rmse: accuracy.and_then(|a| finite(a.rmse)),
            mase: accuracy.and_then(|a| finite(a.mase)),
            smape: accuracy.and_then(|a| finite(a.smape)),
        };
        let f = outcome.forecast.clipped();
        let last = month_after(first, history_points as u32 - 1);
        let round = |v: f64| (v * 100.0).round() / 100.0;
        let points: Vec<ForecastPoint> = (0..horizon)
            .map(|k| ForecastPoint {
                period: month_after(last, k as u32 + 1),
                predicted_qty: round(f.mean[k]),
                lower_bound: round(f.lower[k]),
                upper_bound: round(f.upper[k]),
                confidence: INTERVAL_LEVEL * 100.0,
            })
            .collect();
        let rows: Vec<ForecastRow> = points
            .iter()
            .map(|p| ForecastRow {
                id: 0,
                product_id,
                model_type: model_type.to_owned(),
                model: outcome.model.clone(),
                period: p.period,
                predicted_qty: Dec2::from_f64(p.predicted_qty),
                lower_bound: Dec2::from_f64(p.lower_bound),
                upper_bound: Dec2::from_f64(p.upper_bound),
                confidence: Dec2::from_f64(p.confidence),
                mape: accuracy.mape,
                rmse: accuracy.rmse,
                mase: accuracy.mase,
                smape: accuracy.smape,
                history_points: history_points as i64,
                created_at: String::new(),
            })
            .collect();
        let generated = GeneratedForecast {
            product_id,
            model_type: model_type.to_owned(),
            horizon,
            forecasts: points,
            model: outcome.model.clone(),
            method_used: outcome.method.id().to_owned(),
            accuracy,
            history_points,
        };
        Ok((generated, rows))
    }

    /// Stored forecasts matching `filter` (at most 5,000 months).
    pub async fn forecast_results(&self, filter: &ForecastFilter) -> Result<Vec<ForecastRow>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::list(&mut conn, filter, 5_000).await?)
    }

    /// Mean backtest accuracy per model over stored forecasts.
    pub async fn forecast_accuracy(
        &self,
        product_id: Option<i64>,
    ) -> Result<Vec<ModelAccuracy>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::accuracy(&mut conn, product_id)
            .await?
            .into_iter()
            .map(|(model_type, forecasts, mape, rmse, mase, smape)| ModelAccuracy {
                model_type,
                forecasts,
                avg_mape: mape.and_then(finite),
                avg_rmse: rmse.and_then(finite),
                avg_mase: mase.and_then(finite),
                avg_smape: smape.and_then(finite),
            })
            .collect())
    }

    /// Anomalies in the product's demand history (none below 6 months).
    pub async fn detect_anomalies(&self, product_id: i64) -> Result<Vec<Anomaly>, PlanningError> {
        Ok(match self.demand_series(product_id).await? {
            Some((first, y)) => anomalies(first, &y),
            None => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_zero_months_and_a_spike_and_a_drop_are_found() {
        let d = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        let (first, y) =
            monthly_series(&[(d(2025, 11), Dec2::units(5)), (d(2026, 2), Dec2::units(7))]).unwrap();
        assert_eq!((first, y), (d(2025, 11), vec![5.0, 0.0, 0.0, 7.0]));
        let mut y: Vec<f64> = (0..18).map(|t| 100.0 + if t % 2 == 0 { 4.0 } else { -4.0 }).collect();
        y[7] = 400.0;
        y[12] = 5.0;
        let found = anomalies(d(2025, 1), &y);
        let months: Vec<(NaiveDate, &str)> =
            found.iter().map(|a| (a.period, a.anomaly_type.as_str())).collect();
        assert_eq!(months, [(d(2025, 8), "spike"), (d(2026, 1), "drop")]);
        assert!(anomalies(d(2025, 1), &y[..5]).is_empty());
    }
}
