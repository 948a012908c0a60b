//! The simpler methods: seasonal naive (the baseline), the original's weighted moving average,
//! Croston, SBA and TSB for intermittent demand, and seasonal decomposition with damped-trend
//! smoothing of the adjusted series (what `prophet` maps to).

use super::ets::{self, ErrorKind, SeasonKind, Spec, TrendKind};
use super::{quantile, z_of, Forecast};

/// Seasonal naive: each month as the same month a season before (the last value when the
/// history is shorter than a season); intervals from the seasonal differences, widening with
/// the square root of the seasons ahead.
pub fn seasonal_naive(y: &[f64], h: usize, period: usize, level: f64) -> Forecast {
    let m = if y.len() >= period && period > 1 { period } else { 1 };
    let diffs: Vec<f64> = (m..y.len()).map(|t| y[t] - y[t - m]).collect();
    let sigma = if diffs.is_empty() {
        0.0
    } else {
        (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt()
    };
    let z = z_of(level);
    let mut f = Forecast::default();
    for step in 1..=h {
        let seasons = step.div_ceil(m);
        let value = y[y.len() - m + (step - 1) % m];
        let half = z * sigma * (seasons as f64).sqrt();
        f.push(value, value - half, value + half);
    }
    f
}

/// The original's moving average: weights 1…w over the last w = min(6, n) values, plus
/// 0.3 × (last − previous) × i × 0.5 at step i, ±1.96 standard deviations of the history.
pub fn moving_average(y: &[f64], h: usize) -> Forecast {
    let w = y.len().min(6);
    let recent = &y[y.len() - w..];
    let weights: f64 = (1..=w).map(|i| i as f64).sum();
    let base = recent.iter().enumerate().map(|(i, v)| v * (i + 1) as f64).sum::<f64>() / weights;
    let trend = if y.len() >= 2 { 0.3 * (y[y.len() - 1] - y[y.len() - 2]) } else { 0.0 };
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let std = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    let mut f = Forecast::default();
    for i in 1..=h {
        let value = base + trend * i as f64 * 0.5;
        f.push(value, value - 1.96 * std, value + 1.96 * std);
    }
    f
}

/// Which intermittent-demand method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intermittent {
    /// Croston (1972): sizes and intervals smoothed separately, forecast size ÷ interval.
    Croston,
    /// Syntetos–Boylan: Croston × (1 − α/2), removing its bias.
    Sba,
    /// Teunter–Syntetos–Babai (2011): the chance of demand smoothed every period.
    Tsb,
}

/// Smoothing constants of the intermittent methods (the usual 0.1, and 0.1 for TSB's
/// probability).
pub const INTERMITTENT_ALPHA: f64 = 0.1;
/// TSB's probability smoothing.
pub const TSB_BETA: f64 = 0.1;

/// The flat forecast of `method` over `y` and its interval: the mixture of "no demand" (with
/// the chance the method implies) and the demand sizes seen.
pub fn intermittent(y: &[f64], h: usize, method: Intermittent, level: f64) -> Forecast {
    let sizes: Vec<f64> = y.iter().copied().filter(|v| *v > 0.0).collect();
    let mut f = Forecast::default();
    if sizes.is_empty() {
        for _ in 0..h {
            f.push(0.0, 0.0, 0.0);
        }
        return f;
    }
    let a = INTERMITTENT_ALPHA;
    let first = y.iter().position(|v| *v > 0.0).unwrap_or(0);
    let (mut size, mut interval, mut probability) = (y[first], (first + 1) as f64, 1.0 / (first + 1) as f64);
    let mut since = 0usize;
    for &v in &y[first + 1..] {
        since += 1;
        if method == Intermittent::Tsb {
            probability += TSB_BETA * (f64::from(u8::from(v > 0.0)) - probability);
        }
        if v > 0.0 {
            size += a * (v - size);
            interval += a * (since as f64 - interval);
            since = 0;
        }
    }
    let (value, chance) = match method {
        Intermittent::Croston => (size / interval, 1.0 / interval),
        Intermittent::Sba => ((1.0 - a / 2.0) * size / interval, 1.0 / interval),
        Intermittent::Tsb => (probability * size, probability),
    };
    let mut sorted = sizes;
    sorted.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let bound = |q: f64| {
        let zero = 1.0 - chance.clamp(0.0, 1.0);
        if q <= zero {
            0.0
        } else {
            quantile(&sorted, ((q - zero) / chance.max(1e-9)).clamp(0.0, 1.0))
        }
    };
    let (lower, upper) = (bound(tail), bound(1.0 - tail));
    for _ in 0..h {
        f.push(value, lower, upper.max(value));
    }
    f
}

/// Classical decomposition (multiplicative for positive data, else additive) into seasonal
/// indices from a centred moving average, the adjusted series forecast by the better of
/// ETS(A,N,N) and ETS(A,Ad,N) by AICc, the season put back. Without two full seasons, the
/// adjusted series is the series.
pub fn decomposition(y: &[f64], h: usize, period: usize, level: f64) -> Option<Forecast> {
    let m = period;
    let seasonal = m >= 2 && y.len() >= 2 * m;
    let multiplicative = y.iter().all(|v| *v > 0.0);
    let mut index = vec![if multiplicative { 1.0 } else { 0.0 }; m.max(1)];
    if seasonal {
        let half = m / 2;
        let (mut sums, mut counts) = (vec![0.0; m], vec![0usize; m]);
        for t in half..y.len() - half {
            let ma = (t - half..=t + half)
                .map(|i| if i == t - half || i == t + half { y[i] / 2.0 } else { y[i] })
                .sum::<f64>()
                / m as f64;
            let r = if multiplicative { y[t] / ma } else { y[t] - ma };
            if r.is_finite() {
                sums[t % m] += r;
                counts[t % m] += 1;
            }
        }
        for j in 0..m {
            if counts[j] > 0 {
                index[j] = sums[j] / counts[j] as f64;
            }
        }
        let mean = index.iter().sum::<f64>() / m as f64;
        for s in &mut index {
            *s = if multiplicative { *s / mean } else { *s - mean };
        }
    }
    let season_of = |t: usize| {
        if seasonal {
            index[t % m]
        } else if multiplicative {
            1.0
        } else {
            0.0
        }
    };
    let adjusted: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(t, v)| if multiplicative { v / season_of(t) } else { v - season_of(t) })
        .collect();
    let specs = [TrendKind::None, TrendKind::Damped].map(|trend| Spec {
        error: ErrorKind::Additive,
        trend,
        season: SeasonKind::None,
        period: 1,
    });
    let model =
        specs.iter().filter_map(|s| ets::fit(&adjusted, *s)).min_by(|a, b| a.aicc.total_cmp(&b.aicc))?;
    let mean = model.forecast(h);
    let (lower, upper) = model.intervals(h, level, 300);
    let mut f = Forecast::default();
    for step in 0..h {
        let s = season_of(y.len() + step);
        let put = |v: f64| if multiplicative { v * s } else { v + s };
        f.push(put(mean[step]), put(lower[step]), put(upper[step]));
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn croston_sba_and_tsb_follow_their_recursions() {
        // Demand 0,0,4,0,6 (hand-computed with α = β = 0.1):
        // Croston starts at size 4, interval 3; the 6 two periods later gives size 4.2,
        // interval 2.9, forecast 4.2 / 2.9.
        let y = [0.0, 0.0, 4.0, 0.0, 6.0];
        let croston = intermittent(&y, 2, Intermittent::Croston, 0.9);
        assert!((croston.mean[0] - 4.2 / 2.9).abs() < 1e-12);
        let sba = intermittent(&y, 1, Intermittent::Sba, 0.9);
        assert!((sba.mean[0] - 0.95 * 4.2 / 2.9).abs() < 1e-12);
        // TSB: p starts 1/3, then 1/3 + 0.1(0 − 1/3) = 0.3, then 0.3 + 0.1(1 − 0.3) = 0.37.
        let tsb = intermittent(&y, 1, Intermittent::Tsb, 0.9);
        assert!((tsb.mean[0] - 0.37 * 4.2).abs() < 1e-12);
        assert_eq!(croston.lower[0], 0.0, "no demand is likely");
        assert_eq!(intermittent(&[0.0, 0.0], 1, Intermittent::Tsb, 0.9).mean, vec![0.0]);
    }

    #[test]
    fn seasonal_naive_repeats_last_season_and_the_moving_average_is_the_originals() {
        let y: Vec<f64> = (1..=24).map(f64::from).collect();
        let f = seasonal_naive(&y, 13, 12, 0.95);
        assert_eq!(f.mean[0], 13.0);
        assert_eq!(f.mean[12], 13.0);
        assert!(f.upper[12] - f.mean[12] > f.upper[0] - f.mean[0], "wider a season later");
        let ma = moving_average(&[10.0, 20.0, 30.0], 2);
        // (10·1 + 20·2 + 30·3) / 6 = 23.33…, trend 0.3 × 10 = 3, step i adds 3 × i × 0.5.
        assert!((ma.mean[0] - (140.0 / 6.0 + 1.5)).abs() < 1e-9);
        assert!((ma.mean[1] - (140.0 / 6.0 + 3.0)).abs() < 1e-9);
    }

    #[test]
    fn decomposition_puts_the_season_back() {
        let y: Vec<f64> = (0..36)
            .map(|t| 100.0 * (1.0 + 0.4 * (2.0 * std::f64::consts::PI * (t % 12) as f64 / 12.0).cos()))
            .collect();
        let f = decomposition(&y, 12, 12, 0.95).unwrap();
        for (k, v) in f.mean.iter().enumerate() {
            assert!((v - y[24 + k]).abs() / y[24 + k] < 0.02, "{k}: {v} vs {}", y[24 + k]);
        }
    }
}
