//! The prediction model: ridge regression (smartcore) on a dataset's standardised features,
//! its regularisation chosen on the validation split, judged on the test split against two
//! baselines (the season average so far, the last-5 average) and kept only if it beats both.
//! A kept model is stored with its features, standardisation, coefficients and metrics, and a
//! checksum of all of it.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};
use utoipa::ToSchema;

use crate::dataset::{Sample, FEATURES};

/// The regularisation strengths tried.
const ALPHAS: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

/// How a model and its baselines did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Metrics {
    /// Samples per split.
    pub train_rows: usize,
    /// Validation samples.
    pub val_rows: usize,
    /// Test samples.
    pub test_rows: usize,
    /// The chosen strength's mean absolute error on validation.
    pub val_mae: f64,
    /// Mean absolute error on test.
    pub test_mae: f64,
    /// Root mean squared error on test.
    pub test_rmse: f64,
    /// The season-average-so-far baseline on test (MAE, RMSE).
    pub baseline_season_avg: (f64, f64),
    /// The last-5 baseline on test (MAE, RMSE).
    pub baseline_last_5: (f64, f64),
    /// Whether the model's test MAE beats both baselines'.
    pub beats_baselines: bool,
}

/// A trained model: everything prediction needs, and how it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TrainedModel {
    /// The stat it predicts.
    pub stat: String,
    /// The dataset it learned from.
    pub dataset_version: String,
    /// `ridge`.
    pub kind: String,
    /// The regularisation strength chosen.
    pub alpha: f64,
    /// Its input columns, in order.
    pub features: Vec<String>,
    /// Each feature's training mean (missing values take it).
    pub means: Vec<f64>,
    /// Each feature's training standard deviation (1 where it is 0).
    pub stds: Vec<f64>,
    /// A coefficient per standardised feature.
    pub coefficients: Vec<f64>,
    /// The intercept.
    pub intercept: f64,
    /// How it did.
    pub metrics: Metrics,
}

impl TrainedModel {
    /// The stat's expected value for `features` (in [`FEATURES`] order; `None` where unknown).
    pub fn predict(&self, features: &[Option<f64>]) -> f64 {
        self.intercept
            + features
                .iter()
                .zip(&self.means)
                .zip(&self.stds)
                .zip(&self.coefficients)
                .map(|(((x, m), s), c)| c * (x.unwrap_or(*m) - m) / s)
                .sum::<f64>()
    }

    /// The SHA-256 of its JSON (features, standardisation, coefficients, metrics).
    pub fn checksum(&self) -> String {
        let json = serde_json::to_vec(self).expect("serialisable");
        Sha256::digest(&json).iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn mae_rmse(pairs: &[(f64, f64)]) -> (f64, f64) {
    if pairs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = pairs.len() as f64;
    let mae = pairs.iter().map(|(p, y)| (p - y).abs()).sum::<f64>() / n;
    let rmse = (pairs.iter().map(|(p, y)| (p - y).powi(2)).sum::<f64>() / n).sqrt();
    (mae, rmse)
}

fn feature(sample: &Sample, name: &str) -> Option<f64> {
    FEATURES.iter().position(|f| *f == name).and_then(|i| sample.features[i])
}

/// Trains on `samples`' train split, chooses the strength on val, judges on test.
pub fn train(stat: &str, dataset_version: &str, samples: &[Sample]) -> anyhow::Result<TrainedModel> {
    let of = |split: &str| samples.iter().filter(|s| s.split == split).collect::<Vec<_>>();
    let (train, val, test) = (of("train"), of("val"), of("test"));
    anyhow::ensure!(
        train.len() > FEATURES.len() * 3 && !val.is_empty() && !test.is_empty(),
        "too few samples to train on ({} train, {} val, {} test)",
        train.len(),
        val.len(),
        test.len()
    );
    let width = FEATURES.len();
    let mut means = vec![0.0; width];
    let mut stds = vec![1.0; width];
    for i in 0..width {
        let values: Vec<f64> = train.iter().filter_map(|s| s.features[i]).collect();
        if values.is_empty() {
            continue;
        }
        let m = values.iter().sum::<f64>() / values.len() as f64;
        let sd = (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
        means[i] = m;
        stds[i] = if sd > 1e-9 { sd } else { 1.0 };
    }
    let matrix = |rows: &[&Sample]| -> anyhow::Result<DenseMatrix<f64>> {
        let data: Vec<Vec<f64>> = rows
            .iter()
            .map(|s| (0..width).map(|i| (s.features[i].unwrap_or(means[i]) - means[i]) / stds[i]).collect())
            .collect();
        DenseMatrix::from_2d_vec(&data).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let x_train = matrix(&train)?;
    // The columns are centred, so the intercept is the mean target and the weights are fitted
    // to the centred target (smartcore's ridge fits no intercept of its own without `normalize`).
    let y_mean = train.iter().map(|s| s.target).sum::<f64>() / train.len() as f64;
    let y_train: Vec<f64> = train.iter().map(|s| s.target - y_mean).collect();
    let mut best: Option<(f64, TrainedModel)> = None;
    for alpha in ALPHAS {
        let parameters = RidgeRegressionParameters::default().with_alpha(alpha).with_normalize(false);
        let fitted: RidgeRegression<f64, f64, DenseMatrix<f64>, Vec<f64>> =
            RidgeRegression::fit(&x_train, &y_train, parameters).map_err(|e| anyhow::anyhow!("{e}"))?;
        let coefficients: Vec<f64> = (0..width).map(|i| *fitted.coefficients().get((i, 0))).collect();
        let model = TrainedModel {
            stat: stat.to_owned(),
            dataset_version: dataset_version.to_owned(),
            kind: "ridge".into(),
            alpha,
            features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            means: means.clone(),
            stds: stds.clone(),
            coefficients,
            intercept: y_mean + *fitted.intercept(),
            metrics: Metrics {
                train_rows: train.len(),
                val_rows: val.len(),
                test_rows: test.len(),
                val_mae: 0.0,
                test_mae: 0.0,
                test_rmse: 0.0,
                baseline_season_avg: (0.0, 0.0),
                baseline_last_5: (0.0, 0.0),
                beats_baselines: false,
            },
        };
        let pairs: Vec<(f64, f64)> = val.iter().map(|s| (model.predict(&s.features), s.target)).collect();
        let (val_mae, _) = mae_rmse(&pairs);
        if best.as_ref().is_none_or(|(m, _)| val_mae < *m) {
            best = Some((val_mae, model));
        }
    }
    let (val_mae, mut model) = best.expect("at least one strength");
    let on_test = |predict: &dyn Fn(&Sample) -> f64| {
        mae_rmse(&test.iter().map(|s| (predict(s), s.target)).collect::<Vec<_>>())
    };
    let (test_mae, test_rmse) = on_test(&|s| model.predict(&s.features));
    let season = on_test(&|s| feature(s, "season_avg_to_date").or(feature(s, "last_5_avg")).unwrap_or(0.0));
    let last_5 = on_test(&|s| feature(s, "last_5_avg").unwrap_or(0.0));
    model.metrics.val_mae = val_mae;
    model.metrics.test_mae = test_mae;
    model.metrics.test_rmse = test_rmse;
    model.metrics.baseline_season_avg = season;
    model.metrics.baseline_last_5 = last_5;
    model.metrics.beats_baselines = test_mae < season.0 && test_mae < last_5.0;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(split: &'static str, last_5: f64, noise: f64) -> Sample {
        let mut features = vec![Some(0.0); FEATURES.len()];
        let at = |name: &str| FEATURES.iter().position(|f| *f == name).unwrap();
        features[at("last_5_avg")] = Some(last_5);
        features[at("season_avg_to_date")] = Some(20.0);
        features[at("is_home")] = Some(f64::from(u8::from(noise > 0.0)));
        Sample {
            player_id: 1,
            player_name: "p".into(),
            game_id: "g".into(),
            game_date: "2025-01-01".into(),
            season: "2024-25".into(),
            opponent: "BOS".into(),
            // The truth: 2 more than the last-5 average at home, 2 less away.
            target: last_5 + if noise > 0.0 { 2.0 } else { -2.0 },
            features,
            split,
        }
    }

    #[test]
    fn a_model_that_learns_the_home_effect_beats_both_baselines() {
        let mut samples = Vec::new();
        for i in 0..300 {
            let split = match i % 10 {
                0..=6 => "train",
                7 => "val",
                _ => "test",
            };
            let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
            samples.push(sample(split, 10.0 + f64::from(i % 17), sign));
        }
        let model = train("points", "abc", &samples).unwrap();
        assert!(model.metrics.test_mae < 0.1, "{:?}", model.metrics);
        assert!(model.metrics.beats_baselines);
        assert!((model.metrics.baseline_last_5.0 - 2.0).abs() < 1e-9);
        assert_eq!(model.checksum(), model.clone().checksum());
        assert!(train("points", "abc", &samples[..20]).is_err(), "too few");
    }
}
