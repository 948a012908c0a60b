//! Exponential smoothing in state-space form, ETS(error, trend, season) (Hyndman, Koehler, Ord
//! & Snyder, *Forecasting with Exponential Smoothing*, 2008): additive or multiplicative errors,
//! no, additive or damped trend, no, additive or multiplicative season. Smoothing parameters and
//! the initial level and trend are fitted by maximum likelihood (Nelder–Mead); the model is
//! chosen by AICc among the admissible ones ([`auto`]). Intervals come from simulated paths.

use rand::SeedableRng as _;
use rand_distr::Distribution as _;

use super::optimize::nelder_mead;

/// The error component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Additive.
    Additive,
    /// Multiplicative.
    Multiplicative,
}

/// The trend component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendKind {
    /// None.
    None,
    /// Additive.
    Additive,
    /// Additive, damped.
    Damped,
}

/// The seasonal component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeasonKind {
    /// None.
    None,
    /// Additive.
    Additive,
    /// Multiplicative.
    Multiplicative,
}

/// A model's components and its season length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Errors.
    pub error: ErrorKind,
    /// Trend.
    pub trend: TrendKind,
    /// Season.
    pub season: SeasonKind,
    /// Season length (12 for months).
    pub period: usize,
}

impl Spec {
    /// `ETS(A,Ad,M)` and the like.
    pub fn name(&self) -> String {
        let e = match self.error {
            ErrorKind::Additive => "A",
            ErrorKind::Multiplicative => "M",
        };
        let t = match self.trend {
            TrendKind::None => "N",
            TrendKind::Additive => "A",
            TrendKind::Damped => "Ad",
        };
        let s = match self.season {
            SeasonKind::None => "N",
            SeasonKind::Additive => "A",
            SeasonKind::Multiplicative => "M",
        };
        format!("ETS({e},{t},{s})")
    }

    fn seasonal(&self) -> bool {
        self.season != SeasonKind::None
    }

    fn has_trend(&self) -> bool {
        self.trend != TrendKind::None
    }
}

/// Smoothing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Level.
    pub alpha: f64,
    /// Trend.
    pub beta: f64,
    /// Season.
    pub gamma: f64,
    /// Damping.
    pub phi: f64,
}

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// Its components.
    pub spec: Spec,
    /// Its parameters.
    pub params: Params,
    /// Level after the last observation.
    pub level: f64,
    /// Trend after it.
    pub trend: f64,
    /// Seasonal states, `seasonal[t % period]` for time `t`.
    pub seasonal: Vec<f64>,
    /// Observations fitted.
    pub n: usize,
    /// Standard deviation of the errors (relative errors for multiplicative ones).
    pub sigma: f64,
    /// Corrected Akaike information criterion.
    pub aicc: f64,
}

/// The state after a pass and what the likelihood needs.
struct Pass {
    level: f64,
    trend: f64,
    seasonal: Vec<f64>,
    sum_sq: f64,
    sum_log_mu: f64,
}

/// Runs the recursions over `y` from `level`, `trend`, `seasonal`; `None` when a forecast
/// goes non-positive where the model cannot have it.
fn pass(
    spec: &Spec,
    p: &Params,
    y: &[f64],
    mut level: f64,
    mut trend: f64,
    mut seasonal: Vec<f64>,
) -> Option<Pass> {
    let m = spec.period.max(1);
    let (mut sum_sq, mut sum_log_mu) = (0.0, 0.0);
    for (t, &obs) in y.iter().enumerate() {
        let lb = match spec.trend {
            TrendKind::None => level,
            TrendKind::Additive => level + trend,
            TrendKind::Damped => level + p.phi * trend,
        };
        let s = if spec.seasonal() { seasonal[t % m] } else { 0.0 };
        let mu = match spec.season {
            SeasonKind::None => lb,
            SeasonKind::Additive => lb + s,
            SeasonKind::Multiplicative => lb * s,
        };
        let multiplicative =
            spec.error == ErrorKind::Multiplicative || spec.season == SeasonKind::Multiplicative;
        if multiplicative
            && (mu <= 0.0 || !mu.is_finite() || (spec.season == SeasonKind::Multiplicative && lb <= 0.0))
        {
            return None;
        }
        let e = obs - mu;
        match spec.error {
            ErrorKind::Additive => sum_sq += e * e,
            ErrorKind::Multiplicative => {
                sum_sq += (e / mu).powi(2);
                sum_log_mu += mu.abs().ln();
            }
        }
        let (level_e, trend_e) = match spec.season {
            SeasonKind::Multiplicative => (e / s, e / s),
            _ => (e, e),
        };
        let new_level = lb + p.alpha * level_e;
        trend = match spec.trend {
            TrendKind::None => 0.0,
            TrendKind::Additive => trend + p.beta * trend_e,
            TrendKind::Damped => p.phi * trend + p.beta * trend_e,
        };
        match spec.season {
            SeasonKind::None => {}
            SeasonKind::Additive => seasonal[t % m] = s + p.gamma * e,
            SeasonKind::Multiplicative => seasonal[t % m] = s + p.gamma * e / lb,
        }
        level = new_level;
    }
    Some(Pass { level, trend, seasonal, sum_sq, sum_log_mu })
}

/// Least-squares line through `y` at times 0, 1, …: (intercept, slope).
fn line(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    if y.len() < 2 {
        return (y.first().copied().unwrap_or(0.0), 0.0);
    }
    let tm = (n - 1.0) / 2.0;
    let ym = y.iter().sum::<f64>() / n;
    let sxy: f64 = y.iter().enumerate().map(|(t, v)| (t as f64 - tm) * (v - ym)).sum();
    let sxx: f64 = (0..y.len()).map(|t| (t as f64 - tm).powi(2)).sum();
    let slope = sxy / sxx;
    (ym - slope * tm, slope)
}

/// Starting level, trend and seasonal states (classical decomposition of the first seasons,
/// then a line through the first deseasonalised values).
fn initial_states(spec: &Spec, y: &[f64]) -> (f64, f64, Vec<f64>) {
    let m = spec.period.max(1);
    let mut seasonal = vec![if spec.season == SeasonKind::Multiplicative { 1.0 } else { 0.0 }; m];
    let mut adjusted = y.to_vec();
    if spec.seasonal() {
        let span = (y.len() / m).min(4) * m;
        // 2×m centred moving average over the first seasons.
        let half = m / 2;
        let mut sums = vec![0.0; m];
        let mut counts = vec![0usize; m];
        for t in half..span.saturating_sub(half) {
            let window: f64 = (t - half..=t + half)
                .map(|i| if i == t - half || i == t + half { y[i] / 2.0 } else { y[i] })
                .sum();
            let ma = window / m as f64;
            let ratio = if spec.season == SeasonKind::Multiplicative { y[t] / ma } else { y[t] - ma };
            if ratio.is_finite() {
                sums[t % m] += ratio;
                counts[t % m] += 1;
            }
        }
        for j in 0..m {
            if counts[j] > 0 {
                seasonal[j] = sums[j] / counts[j] as f64;
            }
        }
        if spec.season == SeasonKind::Multiplicative {
            let mean = seasonal.iter().sum::<f64>() / m as f64;
            seasonal.iter_mut().for_each(|s| *s /= mean);
        } else {
            let mean = seasonal.iter().sum::<f64>() / m as f64;
            seasonal.iter_mut().for_each(|s| *s -= mean);
        }
        for (t, v) in adjusted.iter_mut().enumerate() {
            *v = if spec.season == SeasonKind::Multiplicative {
                *v / seasonal[t % m]
            } else {
                *v - seasonal[t % m]
            };
        }
    }
    let head = &adjusted[..adjusted.len().min(if spec.seasonal() { 2 * m } else { 10 })];
    let (intercept, slope) = line(head);
    if spec.has_trend() {
        (intercept - slope, slope, seasonal)
    } else {
        (head.iter().take(5).sum::<f64>() / head.len().min(5) as f64, 0.0, seasonal)
    }
}

/// Fits `spec` to `y`; `None` when it cannot be fitted (too short, or non-positive data for a
/// multiplicative model).
pub fn fit(y: &[f64], spec: Spec) -> Option<Fitted> {
    let n = y.len();
    let m = spec.period.max(1);
    let multiplicative = spec.error == ErrorKind::Multiplicative || spec.season == SeasonKind::Multiplicative;
    if n < 3 || (spec.seasonal() && (m < 2 || n < 2 * m)) || (multiplicative && y.iter().any(|v| *v <= 0.0)) {
        return None;
    }
    let (l0, b0, s0) = initial_states(&spec, y);
    // x = [alpha, beta, gamma, phi, l0, b0]; the unused ones stay put.
    let scale = y.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
    let objective_of = |x: &[f64]| -> f64 {
        let p = Params { alpha: x[0], beta: x[1], gamma: x[2], phi: x[3] };
        let eps = 1e-4;
        if p.alpha < eps || p.alpha > 1.0 - eps {
            return f64::INFINITY;
        }
        if spec.has_trend() && (p.beta < eps || p.beta > p.alpha) {
            return f64::INFINITY;
        }
        if spec.seasonal() && (p.gamma < eps || p.gamma > 1.0 - p.alpha) {
            return f64::INFINITY;
        }
        if spec.trend == TrendKind::Damped && !(0.8..=0.98).contains(&p.phi) {
            return f64::INFINITY;
        }
        let Some(run) = pass(&spec, &p, y, x[4], x[5], s0.clone()) else { return f64::INFINITY };
        let nf = n as f64;
        let lik = match spec.error {
            ErrorKind::Additive => nf * (run.sum_sq / nf).max(1e-300).ln(),
            ErrorKind::Multiplicative => nf * (run.sum_sq / nf).max(1e-300).ln() + 2.0 * run.sum_log_mu,
        };
        if lik.is_finite() {
            lik
        } else {
            f64::INFINITY
        }
    };
    let start = [
        0.3,
        if spec.has_trend() { 0.05 } else { 0.0 },
        if spec.seasonal() { 0.05 } else { 0.0 },
        if spec.trend == TrendKind::Damped { 0.95 } else { 1.0 },
        l0,
        if spec.has_trend() { b0 } else { 0.0 },
    ];
    let steps = [
        0.1,
        if spec.has_trend() { 0.02 } else { 0.0 },
        if spec.seasonal() { 0.05 } else { 0.0 },
        if spec.trend == TrendKind::Damped { 0.02 } else { 0.0 },
        0.1 * scale.max(1e-6),
        if spec.has_trend() { 0.01 * scale.max(1e-6) } else { 0.0 },
    ];
    // Only the free coordinates go to the optimiser.
    let free: Vec<usize> = (0..6).filter(|i| steps[*i] != 0.0).collect();
    let mut reduced = |z: &[f64]| {
        let mut x = start;
        for (k, &i) in free.iter().enumerate() {
            x[i] = z[k];
        }
        objective_of(&x)
    };
    let z0: Vec<f64> = free.iter().map(|&i| start[i]).collect();
    let dz: Vec<f64> = free.iter().map(|&i| steps[i]).collect();
    if !reduced(&z0).is_finite() {
        return None;
    }
    let (z, lik) = nelder_mead(&mut reduced, &z0, &dz, 400 * free.len(), 1e-10);
    if !lik.is_finite() {
        return None;
    }
    let mut x = start;
    for (k, &i) in free.iter().enumerate() {
        x[i] = z[k];
    }
    let params = Params { alpha: x[0], beta: x[1], gamma: x[2], phi: x[3] };
    let run = pass(&spec, &params, y, x[4], x[5], s0)?;
    // Parameters: the free ones, the seasonal states (m − 1 free), and the error variance.
    let k = free.len() + if spec.seasonal() { m - 1 } else { 0 } + 1;
    let nf = n as f64;
    let aic = lik + 2.0 * k as f64;
    let aicc =
        if n > k + 1 { aic + 2.0 * (k * (k + 1)) as f64 / (nf - k as f64 - 1.0) } else { f64::INFINITY };
    Some(Fitted {
        spec,
        params,
        level: run.level,
        trend: run.trend,
        seasonal: run.seasonal,
        n,
        sigma: (run.sum_sq / nf).sqrt(),
        aicc,
    })
}

impl Fitted {
    /// Point forecasts `h` steps ahead.
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let m = self.spec.period.max(1);
        let mut damp = 0.0;
        (1..=h)
            .map(|step| {
                let lb = match self.spec.trend {
                    TrendKind::None => self.level,
                    TrendKind::Additive => self.level + step as f64 * self.trend,
                    TrendKind::Damped => {
                        damp += self.params.phi.powi(step as i32);
                        self.level + damp * self.trend
                    }
                };
                let s = self.seasonal[(self.n + step - 1) % m];
                match self.spec.season {
                    SeasonKind::None => lb,
                    SeasonKind::Additive => lb + s,
                    SeasonKind::Multiplicative => lb * s,
                }
            })
            .collect()
    }

    /// The `level` (e.g. 0.95) prediction interval `h` steps ahead, from `paths` simulated
    /// futures (seeded: the same model, the same interval).
    pub fn intervals(&self, h: usize, level: f64, paths: usize) -> (Vec<f64>, Vec<f64>) {
        let m = self.spec.period.max(1);
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        let noise = rand_distr::Normal::new(0.0, self.sigma.max(1e-12)).expect("a normal");
        let mut draws = vec![Vec::with_capacity(paths); h];
        for _ in 0..paths {
            let (mut l, mut b, mut s) = (self.level, self.trend, self.seasonal.clone());
            for (step, column) in draws.iter_mut().enumerate() {
                let t = self.n + step;
                let lb = match self.spec.trend {
                    TrendKind::None => l,
                    TrendKind::Additive => l + b,
                    TrendKind::Damped => l + self.params.phi * b,
                };
                let season = s[t % m];
                let mu = match self.spec.season {
                    SeasonKind::None => lb,
                    SeasonKind::Additive => lb + season,
                    SeasonKind::Multiplicative => lb * season,
                };
                let e = match self.spec.error {
                    ErrorKind::Additive => noise.sample(&mut rng),
                    ErrorKind::Multiplicative => mu * noise.sample(&mut rng),
                };
                column.push(mu + e);
                let (level_e, trend_e) = match self.spec.season {
                    SeasonKind::Multiplicative if season != 0.0 => (e / season, e / season),
                    _ => (e, e),
                };
                let new_level = lb + self.params.alpha * level_e;
                b = match self.spec.trend {
                    TrendKind::None => 0.0,
                    TrendKind::Additive => b + self.params.beta * trend_e,
                    TrendKind::Damped => self.params.phi * b + self.params.beta * trend_e,
                };
                match self.spec.season {
                    SeasonKind::None => {}
                    SeasonKind::Additive => s[t % m] = season + self.params.gamma * e,
                    SeasonKind::Multiplicative if lb != 0.0 => s[t % m] = season + self.params.gamma * e / lb,
                    SeasonKind::Multiplicative => {}
                }
                l = new_level;
            }
        }
        let tail = (1.0 - level) / 2.0;
        draws
            .into_iter()
            .map(|mut column| {
                column.sort_by(f64::total_cmp);
                (super::quantile(&column, tail), super::quantile(&column, 1.0 - tail))
            })
            .unzip()
    }
}

/// The admissible models for `y` with season length `period`: additive errors with no or
/// additive season, multiplicative errors with any (multiplicative ones only for positive data;
/// seasonal ones only with two full seasons), each with no, additive or damped trend, as R's
/// `ets` and statsforecast's AutoETS restrict them.
pub fn candidates(y: &[f64], period: usize) -> Vec<Spec> {
    let positive = y.iter().all(|v| *v > 0.0);
    let seasonal = period >= 2 && y.len() >= 2 * period;
    let mut out = Vec::new();
    for error in [ErrorKind::Additive, ErrorKind::Multiplicative] {
        if error == ErrorKind::Multiplicative && !positive {
            continue;
        }
        for trend in [TrendKind::None, TrendKind::Additive, TrendKind::Damped] {
            for season in [SeasonKind::None, SeasonKind::Additive, SeasonKind::Multiplicative] {
                let needs_positive = season == SeasonKind::Multiplicative;
                if season != SeasonKind::None && !seasonal {
                    continue;
                }
                if needs_positive && (!positive || error == ErrorKind::Additive) {
                    continue;
                }
                out.push(Spec { error, trend, season, period });
            }
        }
    }
    out
}

/// The candidate with the lowest AICc.
pub fn auto(y: &[f64], period: usize) -> Option<Fitted> {
    candidates(y, period)
        .into_iter()
        .filter_map(|spec| fit(y, spec))
        .filter(|f| f.aicc.is_finite())
        .min_by(|a, b| a.aicc.total_cmp(&b.aicc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seasonal_series(n: usize) -> Vec<f64> {
        (0..n)
            .map(|t| {
                let season = 1.0 + 0.3 * (2.0 * std::f64::consts::PI * (t % 12) as f64 / 12.0).sin();
                (100.0 + 2.0 * t as f64) * season
            })
            .collect()
    }

    #[test]
    fn simple_exponential_smoothing_follows_its_recursion() {
        // ETS(A,N,N) with α fixed is SES: l_t = l_{t-1} + α (y_t − l_{t-1}).
        let y = [10.0, 12.0, 11.0, 13.0, 12.0];
        let spec =
            Spec { error: ErrorKind::Additive, trend: TrendKind::None, season: SeasonKind::None, period: 1 };
        let p = Params { alpha: 0.5, beta: 0.0, gamma: 0.0, phi: 1.0 };
        let run = pass(&spec, &p, &y, 10.0, 0.0, vec![0.0]).unwrap();
        // 10 → 10 → 11 → 11 → 12 → 12
        assert!((run.level - 12.0).abs() < 1e-12);
        assert!((run.sum_sq - (0.0 + 4.0 + 0.0 + 4.0 + 0.0)).abs() < 1e-12);
    }

    /// Saudi Arabian oil production 1996–2013 (Hyndman & Athanasopoulos, *Forecasting:
    /// Principles and Practice*, 2nd ed., §7.1, Table 7.1): SES with α = 0.8339 and ℓ₀ = 446.59
    /// (the values `ets()` estimates) forecasts 542.7.
    const OIL: [f64; 18] = [
        445.36, 453.20, 454.41, 422.38, 456.04, 440.39, 425.19, 486.21, 500.43, 521.28, 508.95, 488.89,
        509.87, 456.72, 473.82, 525.95, 549.83, 542.34,
    ];

    #[test]
    fn the_published_ses_example_is_reproduced_and_refitted() {
        let spec =
            Spec { error: ErrorKind::Additive, trend: TrendKind::None, season: SeasonKind::None, period: 1 };
        let p = Params { alpha: 0.8339, beta: 0.0, gamma: 0.0, phi: 1.0 };
        let run = pass(&spec, &p, &OIL, 446.59, 0.0, vec![0.0]).unwrap();
        assert!((run.level - 542.68).abs() < 0.01, "{}", run.level);
        let fitted = fit(&OIL, spec).unwrap();
        assert!((fitted.params.alpha - 0.8339).abs() < 0.02, "α = {}", fitted.params.alpha);
        assert!((fitted.forecast(1)[0] - 542.7).abs() < 1.0, "{:?}", fitted.forecast(1));
    }

    #[test]
    fn a_clean_seasonal_trend_is_recovered_and_chosen() {
        let y = seasonal_series(48);
        let best = auto(&y[..36], 12).expect("a model");
        assert!(best.spec.season != SeasonKind::None, "{}", best.spec.name());
        let ahead = best.forecast(12);
        let mape: f64 = ahead.iter().zip(&y[36..]).map(|(f, a)| ((f - a) / a).abs()).sum::<f64>() / 12.0;
        assert!(mape < 0.03, "{} mape {mape}", best.spec.name());
        let (lo, hi) = best.intervals(12, 0.95, 300);
        assert!(lo.iter().zip(&ahead).zip(&hi).all(|((l, f), h)| l <= f && f <= h));
    }

    #[test]
    fn flat_noise_gets_a_flat_model_and_damped_trends_flatten() {
        let y: Vec<f64> = (0..30).map(|t| 50.0 + if t % 2 == 0 { 3.0 } else { -3.0 }).collect();
        let best = auto(&y, 12).unwrap();
        let f = best.forecast(6);
        assert!(f.iter().all(|v| (v - 50.0).abs() < 3.5), "{} {f:?}", best.spec.name());
        let damped = Spec {
            error: ErrorKind::Additive,
            trend: TrendKind::Damped,
            season: SeasonKind::None,
            period: 12,
        };
        let rising: Vec<f64> = (0..30).map(|t| 10.0 + t as f64).collect();
        let fitted = fit(&rising, damped).unwrap();
        let far = fitted.forecast(200);
        assert!(
            far[1] > far[0] && far[199] - far[198] < 0.05 * (far[1] - far[0]),
            "damping flattens the trend"
        );
        assert!(candidates(&[1.0, 0.0, 2.0], 12).iter().all(|s| s.error == ErrorKind::Additive));
    }
}
