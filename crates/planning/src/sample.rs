//! A realistic planning data set for demos, tests and the benchmark: products in families with
//! costs and lead times, monthly demand with level, trend, yearly seasonality, promotions and
//! intermittent items, and stock at several locations. Deterministic for a seed.

use chrono::{Datelike as _, NaiveDate};
use rand::{Rng as _, SeedableRng as _};
use rand_distr::Distribution as _;

use crate::decimal::Dec2;
use crate::service::bulk::{ActualItem, InventoryItem, ProductItem};

/// Families, their categories and price ranges.
const FAMILIES: [(&str, &str, f64); 6] = [
    ("Beverages", "Drinks", 1.2),
    ("Snacks", "Food", 2.5),
    ("Dairy", "Food", 3.0),
    ("Household", "Home", 6.0),
    ("Personal Care", "Home", 8.0),
    ("Seasonal Gifts", "Gifts", 25.0),
];

/// Locations stock is held at.
pub const LOCATIONS: [&str; 3] = ["Main", "East", "West"];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    /// Products.
    pub products: usize,
    /// Months of history, ending with the month before `until`.
    pub months: usize,
    /// The first month not in the history.
    pub until: NaiveDate,
    /// Random seed.
    pub seed: u64,
}

/// A generated data set.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Products.
    pub products: Vec<ProductItem>,
    /// Demand history (Global/All).
    pub actuals: Vec<ActualItem>,
    /// Stock, a row per product and location.
    pub inventory: Vec<InventoryItem>,
}

fn month_add(month: NaiveDate, n: i32) -> NaiveDate {
    let total = month.year() * 12 + month.month0() as i32 + n;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1).expect("a month")
}

/// Generates the data set of `spec`.
pub fn generate(spec: SampleSpec) -> Sample {
    let mut rng = rand::rngs::StdRng::seed_from_u64(spec.seed);
    let first = month_add(spec.until, -(spec.months as i32));
    let mut products = Vec::with_capacity(spec.products);
    let mut actuals = Vec::with_capacity(spec.products * spec.months);
    let mut inventory = Vec::with_capacity(spec.products * LOCATIONS.len());
    for p in 0..spec.products {
        let (family, category, price) = FAMILIES[p % FAMILIES.len()];
        let sku = format!("{}-{:04}", &family[..3].to_uppercase(), p + 1);
        let cost = price * rng.gen_range(0.8..1.6);
        let lead = [7, 10, 14, 21, 30, 45][rng.gen_range(0..6)];
        products.push(ProductItem {
            sku: sku.clone(),
            name: format!("{family} item {}", p + 1),
            category_name: Some(category.to_owned()),
            product_family: Some(family.to_owned()),
            lead_time_days: Some(lead),
            unit_cost: Some(Dec2::from_f64(cost)),
            selling_price: Some(Dec2::from_f64(cost * rng.gen_range(1.25..1.9))),
        });
        // One item in six is intermittent (mostly zero months); the rest are smooth.
        let intermittent = p % 6 == 5;
        let level = if intermittent { rng.gen_range(2.0..12.0) } else { rng.gen_range(40.0..2_000.0) };
        let trend: f64 = rng.gen_range(-0.008..0.015);
        let season_amplitude = if family == "Seasonal Gifts" { 0.8 } else { rng.gen_range(0.0..0.35) };
        let peak = rng.gen_range(0..12) as f64;
        let noise = rand_distr::Normal::new(0.0, rng.gen_range(0.05..0.2)).expect("a normal");
        let mut last = 0.0;
        for m in 0..spec.months {
            let period = month_add(first, m as i32);
            let seasonal = 1.0
                + season_amplitude
                    * (2.0 * std::f64::consts::PI * (period.month0() as f64 - peak) / 12.0).cos();
            let mut qty = level * (1.0 + trend).powi(m as i32) * seasonal * (1.0 + noise.sample(&mut rng));
            if intermittent {
                qty = if rng.gen_bool(0.3) { (qty * rng.gen_range(0.5..2.5)).round() } else { 0.0 };
            } else if rng.gen_bool(0.06) {
                qty *= rng.gen_range(1.4..2.4); // a promotion
            }
            last = qty.max(0.0).round();
            actuals.push(ActualItem {
                sku: sku.clone(),
                period,
                actual_qty: Dec2::from_f64(last),
                region: None,
                channel: None,
            });
        }
        for (l, location) in LOCATIONS.iter().enumerate() {
            let share = [0.5, 0.3, 0.2][l];
            let daily = last.max(1.0) * share / 30.0;
            let safety = (daily * lead as f64 * 0.5).round();
            let reorder = (daily * lead as f64 + safety).round();
            let on_hand = (daily * rng.gen_range(5.0..70.0)).round();
            inventory.push(InventoryItem {
                sku: sku.clone(),
                location: (*location).to_owned(),
                on_hand_qty: Dec2::from_f64(on_hand),
                allocated_qty: Some(Dec2::from_f64((on_hand * rng.gen_range(0.0..0.2)).round())),
                in_transit_qty: Some(Dec2::from_f64(if rng.gen_bool(0.3) {
                    (daily * 10.0).round()
                } else {
                    0.0
                })),
                safety_stock: Some(Dec2::from_f64(safety)),
                reorder_point: Some(Dec2::from_f64(reorder)),
                max_stock: Some(Dec2::from_f64((reorder * 2.5).round())),
            });
        }
    }
    Sample { products, actuals, inventory }
}

/// `sample` as the three CSV files the import routes read.
pub fn to_csv(sample: &Sample) -> [(&'static str, String); 3] {
    let opt = |d: Option<Dec2>| d.map(|d| d.to_string()).unwrap_or_default();
    let mut products =
        String::from("sku,name,category_name,product_family,lead_time_days,unit_cost,selling_price\n");
    for p in &sample.products {
        products.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            p.sku,
            p.name,
            p.category_name.clone().unwrap_or_default(),
            p.product_family.clone().unwrap_or_default(),
            p.lead_time_days.unwrap_or(0),
            opt(p.unit_cost),
            opt(p.selling_price)
        ));
    }
    let mut actuals = String::from("sku,period,actual_qty,region,channel\n");
    for a in &sample.actuals {
        actuals.push_str(&format!("{},{},{},Global,All\n", a.sku, a.period, a.actual_qty));
    }
    let mut inventory = String::from(
        "sku,location,on_hand_qty,allocated_qty,in_transit_qty,safety_stock,reorder_point,max_stock\n",
    );
    for i in &sample.inventory {
        inventory.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            i.sku,
            i.location,
            i.on_hand_qty,
            opt(i.allocated_qty),
            opt(i.in_transit_qty),
            opt(i.safety_stock),
            opt(i.reorder_point),
            opt(i.max_stock)
        ));
    }
    [("products.csv", products), ("demand_actuals.csv", actuals), ("inventory.csv", inventory)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_has_families_seasons_intermittent_items_and_is_the_same_for_a_seed() {
        let spec = SampleSpec {
            products: 60,
            months: 36,
            until: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            seed: 9,
        };
        let sample = generate(spec);
        assert_eq!((sample.products.len(), sample.actuals.len(), sample.inventory.len()), (60, 2160, 180));
        assert_eq!(sample.actuals[0].period, NaiveDate::from_ymd_opt(2023, 1, 1).unwrap());
        assert_eq!(sample.actuals[35].period, NaiveDate::from_ymd_opt(2025, 12, 1).unwrap());
        let zeros =
            |sku: &str| sample.actuals.iter().filter(|a| a.sku == sku && a.actual_qty == Dec2::ZERO).count();
        assert!(zeros(&sample.products[5].sku) > 12, "an intermittent item is mostly zeros");
        assert_eq!(zeros(&sample.products[0].sku), 0);
        let again = generate(spec);
        assert_eq!(to_csv(&sample), to_csv(&again));
        assert!(to_csv(&sample)[0].1.starts_with("sku,name,category_name"));
    }
}
