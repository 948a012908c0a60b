//! Service-level analytics of a position (the later original's `/inventory/analytics/
//! service-level`): demand over the lead time from the product's monthly history, the safety
//! stock and reorder point a target service level needs (analytical: normal lead-time demand;
//! Monte Carlo: simulated lead times and demand), and what the current reorder point gives.

use rand::SeedableRng as _;
use rand_distr::Distribution as _;
use serde::{Deserialize, Serialize};
use sightline_platform::error::FieldError;
use statrs::distribution::{Continuous as _, ContinuousCDF as _, Normal};
use utoipa::ToSchema;

use super::PlanningService;
use crate::decimal::Dec2;
use crate::error::PlanningError;

/// Days in a month of demand history.
const DAYS_A_MONTH: f64 = 30.0;
/// Lead time when neither the product nor a supply plan has one.
const DEFAULT_LEAD_TIME_DAYS: f64 = 14.0;
/// Service levels the curve shows.
const CURVE: [f64; 4] = [0.90, 0.95, 0.97, 0.99];

/// `POST /inventory/analytics/service-level`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ServiceLevelRequest {
    /// The position; or `product_id` and `location`.
    #[serde(default)]
    pub inventory_id: Option<i64>,
    /// The product.
    #[serde(default)]
    pub product_id: Option<i64>,
    /// The location.
    #[serde(default)]
    pub location: Option<String>,
    /// Wanted chance of no stock-out in a replenishment cycle, 0.5–0.999 (0.95).
    #[serde(default = "default_target")]
    pub target_service_level: f64,
    /// `analytical` (default) or `monte_carlo`.
    #[serde(default = "analytical")]
    pub method: String,
    /// Simulated cycles, 100–50,000 (5,000).
    #[serde(default = "default_runs")]
    pub simulation_runs: u32,
    /// Daily demand standard deviation to use instead of the history's.
    #[serde(default)]
    pub demand_std_override: Option<f64>,
    /// Lead-time standard deviation in days (default 0).
    #[serde(default)]
    pub lead_time_std_override: Option<f64>,
    /// Bars of the lead-time demand distribution, 5–50 (20).
    #[serde(default = "default_buckets")]
    pub bucket_count: usize,
    /// Seed of the simulation (the same seed, the same answer; default 1).
    #[serde(default)]
    pub seed: Option<u64>,
}

fn default_target() -> f64 {
    0.95
}
fn analytical() -> String {
    "analytical".into()
}
fn default_runs() -> u32 {
    5_000
}
fn default_buckets() -> usize {
    20
}

/// A point of the service-level curve.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CurvePoint {
    /// Service level.
    pub service_level: f64,
    /// Its z.
    pub z: f64,
    /// Safety stock it needs.
    pub safety_stock: f64,
    /// Reorder point it needs.
    pub reorder_point: f64,
}

/// A bar of the lead-time demand distribution.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    /// From (inclusive).
    pub from: f64,
    /// To.
    pub to: f64,
    /// Share of cycles with lead-time demand in it.
    pub probability: f64,
}

/// What the analysis found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ServiceLevelAnalysis {
    /// The position.
    pub inventory_id: i64,
    /// The product.
    pub product_id: i64,
    /// The location.
    pub location: String,
    /// `analytical` or `monte_carlo`.
    pub method: String,
    /// The target.
    pub target_service_level: f64,
    /// Months of history used.
    pub history_months: usize,
    /// Mean daily demand.
    pub demand_mean_daily: f64,
    /// Daily demand standard deviation.
    pub demand_std_daily: f64,
    /// Lead time, days (product, else the newest supply plan, else 14).
    pub lead_time_days: f64,
    /// Lead-time standard deviation, days.
    pub lead_time_std_days: f64,
    /// Mean demand over a lead time.
    pub lead_time_demand_mean: f64,
    /// Its standard deviation.
    pub lead_time_demand_std: f64,
    /// The position's safety stock.
    #[schema(value_type = String)]
    pub current_safety_stock: Dec2,
    /// The position's reorder point.
    #[schema(value_type = String)]
    pub current_reorder_point: Dec2,
    /// Chance of no stock-out in a cycle at the current reorder point.
    pub cycle_service_level: f64,
    /// 1 − the cycle service level.
    pub stockout_probability: f64,
    /// Mean units short per cycle at the current reorder point.
    pub expected_shortage_units: f64,
    /// Share of demand served from stock, a month's demand ordered a cycle.
    pub fill_rate: f64,
    /// Safety stock the target needs.
    pub recommended_safety_stock: f64,
    /// Reorder point the target needs.
    pub recommended_reorder_point: f64,
    /// Safety stock and reorder point at 90, 95, 97 and 99 %.
    pub service_level_curve: Vec<CurvePoint>,
    /// Lead-time demand, in bars.
    pub distribution: Vec<Bucket>,
}

/// The standard normal.
fn standard() -> Normal {
    Normal::new(0.0, 1.0).expect("a valid normal")
}

/// Expected units short per cycle when lead-time demand is normal(`mean`, `std`) and the
/// reorder point is `rop`: `std · L(z)`, `L` the standard normal loss function.
pub fn expected_shortage(mean: f64, std: f64, rop: f64) -> f64 {
    if std <= 0.0 {
        return (mean - rop).max(0.0);
    }
    let z = (rop - mean) / std;
    let n = standard();
    std * (n.pdf(z) - z * (1.0 - n.cdf(z)))
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// Lead-time demand, the figures at `rop`, and what `target` needs; `draws` are simulated
/// lead-time demands (Monte Carlo) or empty (analytical).
struct LeadTimeDemand {
    mean: f64,
    std: f64,
    draws: Vec<f64>,
}

impl LeadTimeDemand {
    fn service_level(&self, rop: f64) -> f64 {
        if !self.draws.is_empty() {
            return self.draws.iter().filter(|d| **d <= rop).count() as f64 / self.draws.len() as f64;
        }
        if self.std <= 0.0 {
            return if rop >= self.mean { 1.0 } else { 0.0 };
        }
        standard().cdf((rop - self.mean) / self.std)
    }

    fn shortage(&self, rop: f64) -> f64 {
        if !self.draws.is_empty() {
            return self.draws.iter().map(|d| (d - rop).max(0.0)).sum::<f64>() / self.draws.len() as f64;
        }
        expected_shortage(self.mean, self.std, rop)
    }

    /// The reorder point giving `level`.
    fn reorder_point(&self, level: f64) -> f64 {
        if !self.draws.is_empty() {
            let mut sorted = self.draws.clone();
            sorted.sort_by(f64::total_cmp);
            let i = ((sorted.len() as f64 * level).ceil() as usize).clamp(1, sorted.len()) - 1;
            return sorted[i];
        }
        self.mean + standard().inverse_cdf(level) * self.std
    }

    fn buckets(&self, count: usize) -> Vec<Bucket> {
        let (lo, hi) = if self.draws.is_empty() {
            ((self.mean - 4.0 * self.std).max(0.0), self.mean + 4.0 * self.std)
        } else {
            let lo = self.draws.iter().copied().fold(f64::INFINITY, f64::min);
            (lo, self.draws.iter().copied().fold(f64::NEG_INFINITY, f64::max))
        };
        let width = ((hi - lo) / count as f64).max(1e-9);
        (0..count)
            .map(|b| {
                let (from, to) = (lo + width * b as f64, lo + width * (b + 1) as f64);
                let probability = if self.draws.is_empty() {
                    if self.std > 0.0 {
                        let n = standard();
                        n.cdf((to - self.mean) / self.std) - n.cdf((from - self.mean) / self.std)
                    } else {
                        f64::from(u8::from(from <= self.mean && self.mean < to))
                    }
                } else {
                    let last = b + 1 == count;
                    self.draws.iter().filter(|d| **d >= from && (**d < to || (last && **d <= to))).count()
                        as f64
                        / self.draws.len() as f64
                };
                Bucket { from: round(from, 2), to: round(to, 2), probability: round(probability, 4) }
            })
            .collect()
    }
}

fn check(r: &ServiceLevelRequest) -> Result<(), PlanningError> {
    let mut errors = Vec::new();
    if !(0.5..=0.999).contains(&r.target_service_level) {
        errors.push(FieldError::new("target_service_level", "must be 0.5 to 0.999"));
    }
    if r.method != "analytical" && r.method != "monte_carlo" {
        errors.push(FieldError::new("method", "must be analytical or monte_carlo"));
    }
    if !(100..=50_000).contains(&r.simulation_runs) {
        errors.push(FieldError::new("simulation_runs", "must be 100 to 50000"));
    }
    if !(5..=50).contains(&r.bucket_count) {
        errors.push(FieldError::new("bucket_count", "must be 5 to 50"));
    }
    for (field, v) in
        [("demand_std_override", r.demand_std_override), ("lead_time_std_override", r.lead_time_std_override)]
    {
        if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
            errors.push(FieldError::new(field, "must be a number, 0 or more"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlanningError::Invalid(errors))
    }
}

impl PlanningService {
    /// The service-level analysis of one position.
    pub async fn service_level(
        &self,
        request: ServiceLevelRequest,
    ) -> Result<ServiceLevelAnalysis, PlanningError> {
        check(&request)?;
        let mut conn = self.db().reader().acquire().await?;
        let position = match (request.inventory_id, request.product_id, request.location.as_deref()) {
            (Some(id), _, _) => crate::store::inventory::get(&mut conn, id).await?,
            (None, Some(product), Some(location)) => {
                crate::store::inventory::find(&mut conn, product, location).await?
            }
            _ => {
                return Err(PlanningError::invalid(
                    "inventory_id",
                    "give inventory_id, or product_id and location",
                ))
            }
        };
        let (position, _) = position.ok_or(PlanningError::NotFound {
            entity: "Inventory",
            id: request.inventory_id.or(request.product_id).unwrap_or_default(),
        })?;
        let history = crate::store::actuals::monthly(&mut conn, Some(&[position.product_id])).await?;
        let months: Vec<f64> = history
            .get(&position.product_id)
            .map(|h| h.iter().rev().take(24).map(|(_, q)| q.to_f64()).collect())
            .unwrap_or_default();
        if months.len() < 3 {
            return Err(PlanningError::InsufficientData(format!(
                "Insufficient data for service-level analytics: requires 3 months of demand history, found {}.",
                months.len()
            )));
        }
        let (monthly_mean, monthly_std) = mean_std(&months);
        let daily_mean = monthly_mean / DAYS_A_MONTH;
        let daily_std = request.demand_std_override.unwrap_or(monthly_std / DAYS_A_MONTH.sqrt());
        let product = crate::store::products::product_by_id(&mut conn, position.product_id).await?;
        let lead_time = match product.as_ref().map(|p| p.lead_time_days).filter(|d| *d > 0) {
            Some(days) => days as f64,
            None => crate::store::supply::newest_lead_time(&mut conn, position.product_id)
                .await?
                .filter(|d| *d > 0)
                .map_or(DEFAULT_LEAD_TIME_DAYS, |d| d as f64),
        };
        let lead_time_std = request.lead_time_std_override.unwrap_or(0.0);
        let mean = daily_mean * lead_time;
        let std = (lead_time * daily_std.powi(2) + daily_mean.powi(2) * lead_time_std.powi(2)).sqrt();
        let draws = if request.method == "monte_carlo" {
            let mut rng = rand::rngs::StdRng::seed_from_u64(request.seed.unwrap_or(1));
            let lead = rand_distr::Normal::new(lead_time, lead_time_std).map_err(anyhow::Error::from)?;
            (0..request.simulation_runs)
                .map(|_| {
                    let days = lead.sample(&mut rng).max(1.0);
                    let demand = rand_distr::Normal::new(daily_mean * days, daily_std * days.sqrt())
                        .map(|d| d.sample(&mut rng))
                        .unwrap_or(daily_mean * days);
                    demand.max(0.0)
                })
                .collect()
        } else {
            Vec::new()
        };
        let ltd = LeadTimeDemand { mean, std, draws };
        let rop_now = position.reorder_point.to_f64();
        let level = ltd.service_level(rop_now);
        let shortage = ltd.shortage(rop_now);
        let order_qty = monthly_mean.max(1.0);
        let curve = CURVE
            .iter()
            .map(|&l| {
                let rop = ltd.reorder_point(l);
                CurvePoint {
                    service_level: l,
                    z: round(standard().inverse_cdf(l), 4),
                    safety_stock: round((rop - mean).max(0.0), 2),
                    reorder_point: round(rop, 2),
                }
            })
            .collect();
        let recommended_rop = ltd.reorder_point(request.target_service_level);
        Ok(ServiceLevelAnalysis {
            inventory_id: position.id,
            product_id: position.product_id,
            location: position.location.clone(),
            method: request.method.clone(),
            target_service_level: request.target_service_level,
            history_months: months.len(),
            demand_mean_daily: round(daily_mean, 4),
            demand_std_daily: round(daily_std, 4),
            lead_time_days: lead_time,
            lead_time_std_days: lead_time_std,
            lead_time_demand_mean: round(mean, 2),
            lead_time_demand_std: round(std, 2),
            current_safety_stock: position.safety_stock,
            current_reorder_point: position.reorder_point,
            cycle_service_level: round(level, 4),
            stockout_probability: round(1.0 - level, 4),
            expected_shortage_units: round(shortage, 2),
            fill_rate: round((1.0 - shortage / order_qty).clamp(0.0, 1.0), 4),
            recommended_safety_stock: round((recommended_rop - mean).max(0.0), 2),
            recommended_reorder_point: round(recommended_rop, 2),
            service_level_curve: curve,
            distribution: ltd.buckets(request.bucket_count),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normal_loss_function_matches_published_tables() {
        // Standard normal loss L(z) (Silver, Pyke & Peterson, table B.1): L(0) = 0.3989,
        // L(1) = 0.0833, L(1.645) = 0.0209, L(-1) = 1.0833.
        for (z, loss) in [(0.0, 0.3989), (1.0, 0.0833), (1.645, 0.0209), (-1.0, 1.0833)] {
            assert!((expected_shortage(0.0, 1.0, z) - loss).abs() < 5e-4, "L({z})");
        }
        assert!((expected_shortage(100.0, 20.0, 100.0) - 20.0 * 0.3989).abs() < 0.01);
        assert_eq!(expected_shortage(100.0, 0.0, 90.0), 10.0);
    }

    #[test]
    fn analytical_and_simulated_lead_time_demand_agree() {
        let analytical = LeadTimeDemand { mean: 100.0, std: 20.0, draws: Vec::new() };
        assert!((analytical.reorder_point(0.95) - (100.0 + 1.6449 * 20.0)).abs() < 0.01);
        assert!((analytical.service_level(100.0) - 0.5).abs() < 1e-9);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let normal = rand_distr::Normal::new(100.0, 20.0).unwrap();
        let draws: Vec<f64> = (0..50_000).map(|_| normal.sample(&mut rng)).collect();
        let simulated = LeadTimeDemand { mean: 100.0, std: 20.0, draws };
        assert!((simulated.reorder_point(0.95) - analytical.reorder_point(0.95)).abs() < 1.0);
        assert!((simulated.service_level(132.9) - 0.95).abs() < 0.01);
        assert!((simulated.shortage(100.0) - analytical.shortage(100.0)).abs() < 0.3);
        let bars = simulated.buckets(10);
        assert_eq!(bars.len(), 10);
        assert!((bars.iter().map(|b| b.probability).sum::<f64>() - 1.0).abs() < 1e-3);
    }
}
