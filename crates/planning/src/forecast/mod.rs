//! Demand forecasting: the ETS family chosen by AICc ([`ets`]), seasonal decomposition,
//! Croston/SBA/TSB for intermittent demand, seasonal naive as the baseline and the original's
//! moving average ([`methods`]); accuracy by rolling-origin backtest ([`backtest`]); `auto`
//! choosing per series by backtest sMAPE. Pure functions over a monthly series: no storage, no
//! HTTP.

pub mod ets;
pub mod methods;
pub mod optimize;

use statrs::distribution::{ContinuousCDF as _, Normal};

/// Months in a season.
pub const PERIOD: usize = 12;
/// Points a forecast needs at least (the original's rule).
pub const MIN_POINTS: usize = 3;
/// Share of zero months from which a series counts as intermittent.
pub const INTERMITTENT_SHARE: f64 = 0.3;

/// Point forecasts and their interval.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forecast {
    /// Expected values.
    pub mean: Vec<f64>,
    /// Lower bounds.
    pub lower: Vec<f64>,
    /// Upper bounds.
    pub upper: Vec<f64>,
}

impl Forecast {
    fn push(&mut self, mean: f64, lower: f64, upper: f64) {
        self.mean.push(mean);
        self.lower.push(lower.min(mean));
        self.upper.push(upper.max(mean));
    }

    /// The same, no value below zero (demand is not negative).
    pub fn clipped(mut self) -> Self {
        for v in self.mean.iter_mut().chain(&mut self.lower).chain(&mut self.upper) {
            *v = v.max(0.0);
        }
        self
    }
}

/// The `q` quantile of sorted `values` (linear between neighbours).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// z of a central interval at `level` (1.96 at 0.95).
pub fn z_of(level: f64) -> f64 {
    Normal::new(0.0, 1.0).expect("a normal").inverse_cdf(0.5 + level / 2.0)
}

/// A forecasting method, by the id clients ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Chosen per series by backtest sMAPE among the ones below that fit it.
    Auto,
    /// The ETS family, chosen by AICc.
    Ets,
    /// The original's `exp_smoothing` (Holt–Winters, additive damped trend, additive season
    /// from 24 points): ETS(A,Ad,A), or ETS(A,Ad,N) below 24 points.
    ExpSmoothing,
    /// The original's `prophet`, answered by seasonal decomposition.
    Prophet,
    /// Seasonal decomposition with damped-trend smoothing.
    Decomposition,
    /// The same month a season before.
    SeasonalNaive,
    /// The original's weighted moving average.
    MovingAverage,
    /// Croston.
    Croston,
    /// Syntetos–Boylan.
    Sba,
    /// Teunter–Syntetos–Babai.
    Tsb,
    /// The mean of ETS, decomposition and seasonal naive (those that fit).
    Combination,
}

/// Every method: id, display name, points it needs.
pub const METHODS: [(Method, &str, &str, usize); 11] = [
    (Method::Auto, "auto", "Automatic (chosen per product by backtest)", MIN_POINTS),
    (Method::Ets, "ets", "ETS (error, trend, season; chosen by AICc)", MIN_POINTS),
    (Method::ExpSmoothing, "exp_smoothing", "Exponential Smoothing (Holt-Winters)", 12),
    (Method::Prophet, "prophet", "Prophet (answered by seasonal decomposition)", 24),
    (Method::Decomposition, "decomposition", "Seasonal decomposition + damped trend", MIN_POINTS),
    (Method::SeasonalNaive, "seasonal_naive", "Seasonal naive", MIN_POINTS),
    (Method::MovingAverage, "moving_average", "Moving Average", MIN_POINTS),
    (Method::Croston, "croston", "Croston (intermittent demand)", MIN_POINTS),
    (Method::Sba, "sba", "Syntetos-Boylan (intermittent demand)", MIN_POINTS),
    (Method::Tsb, "tsb", "Teunter-Syntetos-Babai (intermittent demand)", MIN_POINTS),
    (Method::Combination, "combination", "Mean of ETS, decomposition and seasonal naive", MIN_POINTS),
];

impl Method {
    /// The method of `id`.
    pub fn from_id(id: &str) -> Option<Self> {
        METHODS.iter().find(|(_, i, _, _)| *i == id).map(|(m, ..)| *m)
    }

    /// Its id.
    pub fn id(self) -> &'static str {
        METHODS.iter().find(|(m, ..)| *m == self).map(|(_, i, ..)| *i).unwrap_or("auto")
    }
}

/// A forecast and what made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The method that made it (never `Auto`).
    pub method: Method,
    /// The model in detail (`ETS(M,Ad,M)`, `TSB`, …).
    pub model: String,
    /// The forecast.
    pub forecast: Forecast,
}

/// Whether `y` is intermittent (a third or more of its months without demand).
pub fn is_intermittent(y: &[f64]) -> bool {
    !y.is_empty() && y.iter().filter(|v| **v == 0.0).count() as f64 / y.len() as f64 >= INTERMITTENT_SHARE
}

/// `method`'s forecast of `y`, `h` months ahead with a `level` interval; `None` when the method
/// cannot fit this series (the caller falls back).
pub fn run(method: Method, y: &[f64], h: usize, level: f64) -> Option<Outcome> {
    let outcome = |method, model: String, forecast| Some(Outcome { method, model, forecast });
    match method {
        Method::Auto => auto(y, h, level).map(|(o, _)| o),
        Method::Ets => {
            let fitted = ets::auto(y, PERIOD)?;
            let (lower, upper) = fitted.intervals(h, level, 500);
            outcome(method, fitted.spec.name(), Forecast { mean: fitted.forecast(h), lower, upper })
        }
        Method::ExpSmoothing => {
            let season =
                if y.len() >= 2 * PERIOD { ets::SeasonKind::Additive } else { ets::SeasonKind::None };
            let spec = ets::Spec {
                error: ets::ErrorKind::Additive,
                trend: ets::TrendKind::Damped,
                season,
                period: PERIOD,
            };
            let fitted = ets::fit(y, spec)
                .or_else(|| ets::fit(y, ets::Spec { trend: ets::TrendKind::None, ..spec }))?;
            let (lower, upper) = fitted.intervals(h, level, 500);
            outcome(method, fitted.spec.name(), Forecast { mean: fitted.forecast(h), lower, upper })
        }
        Method::Prophet | Method::Decomposition => {
            outcome(method, "decomposition".into(), methods::decomposition(y, h, PERIOD, level)?)
        }
        Method::SeasonalNaive => {
            outcome(method, "seasonal_naive".into(), methods::seasonal_naive(y, h, PERIOD, level))
        }
        Method::MovingAverage => outcome(method, "moving_average".into(), methods::moving_average(y, h)),
        Method::Croston => outcome(
            method,
            "croston".into(),
            methods::intermittent(y, h, methods::Intermittent::Croston, level),
        ),
        Method::Sba => {
            outcome(method, "sba".into(), methods::intermittent(y, h, methods::Intermittent::Sba, level))
        }
        Method::Tsb => {
            outcome(method, "tsb".into(), methods::intermittent(y, h, methods::Intermittent::Tsb, level))
        }
        Method::Combination => {
            let parts: Vec<Forecast> = [Method::Ets, Method::Decomposition, Method::SeasonalNaive]
                .into_iter()
                .filter_map(|m| run(m, y, h, level).map(|o| o.forecast))
                .collect();
            let k = parts.len() as f64;
            let mut combined = Forecast::default();
            for step in 0..h {
                let avg = |f: fn(&Forecast) -> &Vec<f64>| parts.iter().map(|p| f(p)[step]).sum::<f64>() / k;
                combined.push(avg(|p| &p.mean), avg(|p| &p.lower), avg(|p| &p.upper));
            }
            outcome(method, "combination".into(), combined)
        }
    }
}

/// Backtest accuracy of a method on a series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Accuracy {
    /// Symmetric MAPE, percent (0–200; M4's definition; a month with both zero counts 0).
    pub smape: f64,
    /// Mean absolute scaled error (scale: the in-sample seasonal naive's mean absolute error).
    pub mase: f64,
    /// MAPE, percent, over months with demand (`NaN` when there are none).
    pub mape: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Forecast months scored.
    pub points: usize,
}

/// sMAPE, MASE, MAPE and RMSE of `forecast` against `actual`, MASE scaled by `train`.
pub fn accuracy(train: &[f64], actual: &[f64], forecast: &[f64]) -> Accuracy {
    let m = if train.len() > PERIOD { PERIOD } else { 1 };
    let scale = {
        let diffs: Vec<f64> = (m..train.len()).map(|t| (train[t] - train[t - m]).abs()).collect();
        if diffs.is_empty() {
            f64::NAN
        } else {
            diffs.iter().sum::<f64>() / diffs.len() as f64
        }
    };
    let n = actual.len().min(forecast.len());
    let mut a = Accuracy { points: n, ..Accuracy::default() };
    if n == 0 {
        return a;
    }
    let (mut smape, mut abs, mut sq, mut ape, mut ape_n) = (0.0, 0.0, 0.0, 0.0, 0usize);
    for (y, f) in actual.iter().zip(forecast) {
        let denominator = y.abs() + f.abs();
        smape += if denominator == 0.0 { 0.0 } else { 200.0 * (y - f).abs() / denominator };
        abs += (y - f).abs();
        sq += (y - f).powi(2);
        if *y != 0.0 {
            ape += 100.0 * ((y - f) / y).abs();
            ape_n += 1;
        }
    }
    let nf = n as f64;
    a.smape = smape / nf;
    a.mase = if scale > 0.0 { abs / nf / scale } else { f64::NAN };
    a.mape = if ape_n > 0 { ape / ape_n as f64 } else { f64::NAN };
    a.rmse = (sq / nf).sqrt();
    a
}

/// Rolling-origin backtest of `method` on `y` for horizon `h`: up to 3 origins, 3 months apart,
/// each forecasting min(h, 6) months; the scores averaged over the origins. `None` when the
/// series is too short to hold any out (fewer than 6 training months) or the method fails.
pub fn backtest(method: Method, y: &[f64], h: usize) -> Option<Accuracy> {
    let horizon = h.clamp(1, 6);
    let mut folds = Vec::new();
    for k in (0..3).rev() {
        let end = y.len().checked_sub(horizon + 3 * k)?;
        if end < 6 {
            continue;
        }
        let train = &y[..end];
        let test = &y[end..end + horizon];
        let outcome = run(method, train, horizon, 0.8)?;
        folds.push(accuracy(train, test, &outcome.forecast.clipped().mean));
    }
    if folds.is_empty() {
        return None;
    }
    let mean = |f: fn(&Accuracy) -> f64| {
        let values: Vec<f64> = folds.iter().map(f).filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            f64::NAN
        } else {
            values.iter().sum::<f64>() / values.len() as f64
        }
    };
    Some(Accuracy {
        smape: mean(|a| a.smape),
        mase: mean(|a| a.mase),
        mape: mean(|a| a.mape),
        rmse: mean(|a| a.rmse),
        points: folds.iter().map(|a| a.points).sum(),
    })
}

/// The methods `auto` weighs for `y`.
pub fn auto_candidates(y: &[f64]) -> Vec<Method> {
    let mut out = vec![Method::Ets, Method::Decomposition, Method::SeasonalNaive, Method::Combination];
    if is_intermittent(y) {
        out.extend([Method::Croston, Method::Sba, Method::Tsb]);
    }
    out
}

/// The candidate with the lowest backtest sMAPE (ties: the earlier in [`auto_candidates`]),
/// refitted on the whole series; with its backtest. Too short to backtest: ETS.
pub fn auto(y: &[f64], h: usize, level: f64) -> Option<(Outcome, Option<Accuracy>)> {
    let scored: Vec<(Method, Accuracy)> =
        auto_candidates(y).into_iter().filter_map(|m| backtest(m, y, h).map(|a| (m, a))).collect();
    let best = scored
        .iter()
        .filter(|(_, a)| a.smape.is_finite())
        .min_by(|a, b| a.1.smape.total_cmp(&b.1.smape))
        .copied();
    match best {
        Some((method, accuracy)) => run(method, y, h, level).map(|o| (o, Some(accuracy))),
        None => run(Method::Ets, y, h, level)
            .or_else(|| run(Method::MovingAverage, y, h, level))
            .map(|o| (o, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_measures_are_the_textbook_ones() {
        let train = [10.0, 12.0, 14.0];
        let a = accuracy(&train, &[10.0, 20.0], &[12.0, 15.0]);
        // sMAPE: 200·2/22 and 200·5/35; MASE scale: mean |Δ| = 2; MAPE: 20 % and 25 %.
        assert!((a.smape - (200.0 * 2.0 / 22.0 + 200.0 * 5.0 / 35.0) / 2.0).abs() < 1e-9);
        assert!((a.mase - 3.5 / 2.0).abs() < 1e-9);
        assert!((a.mape - 22.5).abs() < 1e-9);
        assert!((a.rmse - (14.5f64).sqrt()).abs() < 1e-9);
        assert_eq!(accuracy(&train, &[0.0], &[0.0]).smape, 0.0);
        assert!((z_of(0.95) - 1.959964).abs() < 1e-5);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }

    #[test]
    fn auto_prefers_a_seasonal_model_on_seasonal_data_and_intermittent_methods_are_weighed() {
        let y: Vec<f64> = (0..36)
            .map(|t| {
                (200.0 + 3.0 * t as f64)
                    * (1.0 + 0.35 * (2.0 * std::f64::consts::PI * (t % 12) as f64 / 12.0).sin())
            })
            .collect();
        let (outcome, accuracy) = auto(&y, 6, 0.95).unwrap();
        assert!(outcome.method != Method::SeasonalNaive, "{outcome:?}");
        assert!(accuracy.unwrap().smape < 5.0);
        let naive = backtest(Method::SeasonalNaive, &y, 6).unwrap();
        assert!(accuracy.unwrap().smape < naive.smape);
        let sparse =
            [0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 2.0, 0.0];
        assert!(auto_candidates(&sparse).contains(&Method::Tsb));
        assert!(auto(&sparse, 3, 0.9).is_some());
        assert_eq!(Method::from_id("prophet"), Some(Method::Prophet));
        assert_eq!(Method::Prophet.id(), "prophet");
        assert!(backtest(Method::Ets, &[1.0, 2.0, 3.0], 6).is_none());
    }
}
