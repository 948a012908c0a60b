//! The original's game features (FACTS-002 section 3.2), written once: rolling means, spreads
//! and extremes over the last 3, 5 and 10 games, exponential and weighted averages, the trend
//! slope and momentum. Values are newest first, as game logs list them. The player context, the
//! prediction and the datasets read them from here.

use std::collections::BTreeMap;

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Population standard deviation.
fn std(v: &[f64]) -> Option<f64> {
    let m = mean(v)?;
    Some((v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 })
}

/// Weights w, w−1, …, 1 on the newest … older of the first `w` values.
fn weighted(v: &[f64], w: usize) -> Option<f64> {
    let head = &v[..w.min(v.len())];
    if head.is_empty() {
        return None;
    }
    let n = head.len();
    let weights: Vec<f64> = (0..n).map(|i| (w - i) as f64).collect();
    Some(head.iter().zip(&weights).map(|(x, k)| x * k).sum::<f64>() / weights.iter().sum::<f64>())
}

/// Least-squares slope of the first ≤ 10 values against 0, 1, 2, … (0 the newest: a rising
/// player has a negative slope, as in the original); 0 with one value.
fn slope(v: &[f64]) -> Option<f64> {
    let head = &v[..10.min(v.len())];
    match head.len() {
        0 => None,
        1 => Some(0.0),
        n => {
            let xs: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let (mx, my) = (mean(&xs)?, mean(head)?);
            let cov: f64 = xs.iter().zip(head).map(|(x, y)| (x - mx) * (y - my)).sum();
            let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
            Some(cov / var)
        }
    }
}

/// EMA with α = 0.3, seeded with the newest value and run toward the oldest (the original's
/// order, which weighs the oldest game 0.3).
fn ema(v: &[f64]) -> Option<f64> {
    let (first, rest) = v.split_first()?;
    Some(rest.iter().fold(*first, |acc, x| 0.3 * x + 0.7 * acc))
}

/// The rolling features of `values` (newest first; `None` entries are skipped), by the
/// original's names; `None` where there are no values.
pub fn rolling(values: &[Option<f64>]) -> BTreeMap<&'static str, Option<f64>> {
    let v: Vec<f64> = values.iter().flatten().copied().collect();
    let head = |w: usize| &v[..w.min(v.len())];
    let mut out = BTreeMap::new();
    out.insert("last_3_avg", mean(head(3)));
    out.insert("last_5_avg", mean(head(5)));
    out.insert("last_10_avg", mean(head(10)));
    out.insert("exponential_moving_avg", ema(&v));
    out.insert("wma_3", weighted(&v, 3));
    out.insert("wma_5", weighted(&v, 5));
    for (w, std_key, min_key, max_key, median_key) in [
        (3, "last_3_std", "last_3_min", "last_3_max", "last_3_median"),
        (5, "last_5_std", "last_5_min", "last_5_max", "last_5_median"),
        (10, "last_10_std", "last_10_min", "last_10_max", "last_10_median"),
    ] {
        let h = head(w);
        out.insert(std_key, std(h));
        out.insert(min_key, h.iter().copied().reduce(f64::min));
        out.insert(max_key, h.iter().copied().reduce(f64::max));
        out.insert(median_key, median(h));
    }
    out.insert("slope_10", slope(&v));
    out.insert("momentum_vs_5_avg", v.first().zip(mean(head(5))).map(|(latest, m)| latest - m));
    out
}

/// The mean of the values, and their population standard deviation.
pub fn mean_and_std(values: &[Option<f64>]) -> (Option<f64>, Option<f64>) {
    let v: Vec<f64> = values.iter().flatten().copied().collect();
    (mean(&v), std(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_features_match_hand_computed_values() {
        // Newest first: 30, 20, 10, 40, 50.
        let f = rolling(&[Some(30.0), Some(20.0), None, Some(10.0), Some(40.0), Some(50.0)]);
        assert_eq!(f["last_3_avg"], Some(20.0));
        assert_eq!(f["last_5_avg"], Some(30.0));
        assert_eq!(f["last_10_avg"], Some(30.0), "fewer than 10: all of them");
        // wma_3 = (3·30 + 2·20 + 1·10) / 6
        assert_eq!(f["wma_3"], Some(140.0 / 6.0));
        // EMA from the newest: 30 → 27 → 21.9 → 27.33 → 34.131
        assert!((f["exponential_moving_avg"].unwrap() - 34.131).abs() < 1e-9);
        assert_eq!(f["last_3_std"], Some((200.0f64 / 3.0).sqrt()));
        assert_eq!(
            (f["last_5_min"], f["last_5_max"], f["last_5_median"]),
            (Some(10.0), Some(50.0), Some(30.0))
        );
        // Against x = 0..4: y = 30, 20, 10, 40, 50 → slope 6.
        assert!((f["slope_10"].unwrap() - 6.0).abs() < 1e-9);
        assert_eq!(f["momentum_vs_5_avg"], Some(0.0));
        let empty = rolling(&[]);
        assert!(empty.values().all(Option::is_none));
        assert_eq!(rolling(&[Some(7.0)])["slope_10"], Some(0.0));
    }
}
