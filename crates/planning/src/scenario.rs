//! The what-if model of a scenario, computed per product from the stored plans, inventory and
//! costs of one month (the later original's data-driven model, product by product).
//!
//! Per product: demand is the newest plan version's quantity (consensus, else adjusted, else
//! forecast) summed over regions and channels; supply the newest supply plans' planned
//! production; available stock `max(0, on hand − allocated + in transit)` over its locations.
//! The scenario changes them by the global percentages, then by each adjustment in order
//! (a percentage, or an amount: units for quantities, money a unit for price; an amount over a
//! family, category or every product is shared in proportion to their quantities so far). Each
//! product's figures: revenue `demand·price`, margin `demand·(price − cost)`, inventory value at
//! the month's end `(supply + available − demand)·cost` (the stock left: on hand − allocated + in
//! transit + production − demand; never below 0), fill rate
//! `min(demand, supply + available)/demand`. The service level is the demand-weighted fill rate;
//! shortages and excesses are per product, so one product's surplus does not hide another's
//! shortage.

use chrono::{Datelike as _, NaiveDate};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sightline_platform::error::FieldError;

/// What a scenario changes, read from its stored parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameters {
    /// Demand change, % (every product).
    pub demand_change_pct: f64,
    /// Supply (production) change, %.
    pub supply_capacity_pct: f64,
    /// Price change, %.
    pub price_change_pct: f64,
    /// Available stock released (or withheld, negative), %.
    pub inventory_release_pct: f64,
    /// The month; the latest planned month when absent.
    pub period: Option<NaiveDate>,
    /// Yearly carrying cost of excess stock, % of its cost (18).
    pub inventory_carry_rate_pct: f64,
    /// Cost of a unit short; a quarter of the average price when absent.
    pub stockout_penalty_per_unit: Option<f64>,
    /// Weight of the service score (0.45).
    pub service_weight: f64,
    /// Weight of the cost score (0.30).
    pub cost_weight: f64,
    /// Weight of the cash score (0.25).
    pub cash_weight: f64,
    /// Changes to some products, applied in order after the percentages above.
    pub adjustments: Vec<Adjustment>,
}

/// A quantity a scenario changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Lever {
    /// Demand.
    Demand,
    /// Planned production.
    Supply,
    /// Available stock.
    Inventory,
    /// Selling price.
    Price,
}

/// Which products an adjustment applies to (every product when none is given).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// One product by id.
    pub product_id: Option<i64>,
    /// One product by SKU.
    pub sku: Option<String>,
    /// A product family.
    pub product_family: Option<String>,
    /// A category.
    pub category_id: Option<i64>,
}

/// One change: a percentage or an amount, over a scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Adjustment {
    /// What changes.
    pub lever: Lever,
    /// By a percentage…
    pub change_pct: Option<f64>,
    /// …or by an amount (units; money a unit for price).
    pub change_amount: Option<f64>,
    /// Which products.
    pub scope: Scope,
}

/// A number given as a JSON number or numeric string; `Ok(None)` when absent or null.
fn number(map: &Map<String, Value>, key: &str, field: &str) -> Result<Option<f64>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| FieldError::new(field, format!("{s:?} is not a number"))),
        Some(_) => Err(FieldError::new(field, "must be a number")),
    }
}

/// [`number`] within `min..=max`.
fn bounded(
    map: &Map<String, Value>,
    key: &str,
    field: &str,
    (min, max): (f64, f64),
) -> Result<Option<f64>, FieldError> {
    match number(map, key, field)? {
        Some(v) if !(min..=max).contains(&v) => {
            Err(FieldError::new(field, format!("must be {min} to {max}")))
        }
        v => Ok(v),
    }
}

/// The range of a percentage change.
const PCT: (f64, f64) = (-100.0, 10_000.0);
/// The range of an amount (units, or money a unit).
const AMOUNT: (f64, f64) = (-1e12, 1e12);

/// A whole number given as a JSON integer or an integer string; `Ok(None)` when absent or null.
fn whole(map: &Map<String, Value>, key: &str, field: &str) -> Result<Option<i64>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| FieldError::new(field, "must be a whole number"))
        }
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| FieldError::new(field, "must be a whole number"))
        }
        Some(_) => Err(FieldError::new(field, "must be a whole number")),
    }
}

/// A text; `Ok(None)` when absent or null.
fn text(map: &Map<String, Value>, key: &str, field: &str) -> Result<Option<String>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

impl Parameters {
    /// Reads and checks `value` (an object; unknown keys are kept and ignored). Every problem
    /// is named by its path under `parameters`.
    pub fn parse(value: &Value) -> Result<Self, Vec<FieldError>> {
        let Some(map) = value.as_object() else {
            return Err(vec![FieldError::new("parameters", "must be an object")]);
        };
        let mut errors = Vec::new();
        let mut get = |key: &str, default: f64, range: (f64, f64)| match bounded(
            map,
            key,
            &format!("parameters.{key}"),
            range,
        ) {
            Ok(v) => v.unwrap_or(default),
            Err(e) => {
                errors.push(e);
                default
            }
        };
        let mut p = Parameters {
            demand_change_pct: get("demand_change_pct", 0.0, PCT),
            supply_capacity_pct: get("supply_capacity_pct", 0.0, PCT),
            price_change_pct: get("price_change_pct", 0.0, PCT),
            inventory_release_pct: get("inventory_release_pct", 0.0, PCT),
            inventory_carry_rate_pct: get("inventory_carry_rate_pct", 18.0, (0.0, 1_000.0)),
            service_weight: get("service_weight", 0.45, (-1_000.0, 1_000.0)),
            cost_weight: get("cost_weight", 0.30, (-1_000.0, 1_000.0)),
            cash_weight: get("cash_weight", 0.25, (-1_000.0, 1_000.0)),
            stockout_penalty_per_unit: None,
            period: None,
            adjustments: Vec::new(),
        };
        match bounded(map, "stockout_penalty_per_unit", "parameters.stockout_penalty_per_unit", (0.0, 1e9)) {
            Ok(v) => p.stockout_penalty_per_unit = v,
            Err(e) => errors.push(e),
        }
        match map.get("period") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                Ok(d) if d.day() == 1 => p.period = Some(d),
                Ok(_) => errors.push(FieldError::new("parameters.period", "must be the first of a month")),
                Err(_) => errors.push(FieldError::new("parameters.period", "must be a date, YYYY-MM-DD")),
            },
            Some(_) => errors.push(FieldError::new("parameters.period", "must be a date, YYYY-MM-DD")),
        }
        match map.get("adjustments") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    match adjustment(item, &format!("parameters.adjustments[{i}]")) {
                        Ok(a) => p.adjustments.push(a),
                        Err(mut e) => errors.append(&mut e),
                    }
                }
            }
            Some(_) => errors.push(FieldError::new("parameters.adjustments", "must be a list")),
        }
        if errors.is_empty() {
            Ok(p)
        } else {
            Err(errors)
        }
    }
}

/// The value of `result`, or none with its error kept in `errors`.
fn kept<T>(errors: &mut Vec<FieldError>, result: Result<Option<T>, FieldError>) -> Option<T> {
    result.unwrap_or_else(|e| {
        errors.push(e);
        None
    })
}

fn adjustment(item: &Value, path: &str) -> Result<Adjustment, Vec<FieldError>> {
    let Some(map) = item.as_object() else {
        return Err(vec![FieldError::new(path, "must be an object")]);
    };
    let mut errors = Vec::new();
    let lever = match map.get("target").and_then(Value::as_str) {
        Some("demand") => Some(Lever::Demand),
        Some("supply") => Some(Lever::Supply),
        Some("inventory") => Some(Lever::Inventory),
        Some("price") => Some(Lever::Price),
        _ => {
            errors.push(FieldError::new(
                format!("{path}.target"),
                "must be one of demand, supply, inventory, price",
            ));
            None
        }
    };
    const KEYS: [&str; 7] =
        ["target", "change_pct", "change_amount", "product_id", "sku", "product_family", "category_id"];
    for key in map.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        errors.push(FieldError::new(format!("{path}.{key}"), format!("is not one of {}", KEYS.join(", "))));
    }
    let field = |key: &str| format!("{path}.{key}");
    let change_pct = kept(&mut errors, bounded(map, "change_pct", &field("change_pct"), PCT));
    let change_amount = kept(&mut errors, bounded(map, "change_amount", &field("change_amount"), AMOUNT));
    let scope = Scope {
        product_id: kept(&mut errors, whole(map, "product_id", &field("product_id"))),
        sku: kept(&mut errors, text(map, "sku", &field("sku"))),
        product_family: kept(&mut errors, text(map, "product_family", &field("product_family"))),
        category_id: kept(&mut errors, whole(map, "category_id", &field("category_id"))),
    };
    if change_pct.is_some() == change_amount.is_some() {
        errors.push(FieldError::new(path, "give one of change_pct and change_amount"));
    }
    let scopes = [
        scope.product_id.is_some(),
        scope.sku.is_some(),
        scope.product_family.is_some(),
        scope.category_id.is_some(),
    ];
    if scopes.iter().filter(|s| **s).count() > 1 {
        errors
            .push(FieldError::new(path, "give at most one of product_id, sku, product_family, category_id"));
    }
    match (lever, errors.is_empty()) {
        (Some(lever), true) => Ok(Adjustment { lever, change_pct, change_amount, scope }),
        _ => Err(errors),
    }
}

/// One product's stored figures for the month.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductInputs {
    /// The product.
    pub product_id: i64,
    /// Its SKU.
    pub sku: String,
    /// Its family.
    pub product_family: Option<String>,
    /// Its category.
    pub category_id: Option<i64>,
    /// Selling price (0 when unknown).
    pub price: f64,
    /// Unit cost (0 when unknown).
    pub cost: f64,
    /// Planned demand.
    pub demand: f64,
    /// Planned production.
    pub supply: f64,
    /// Available stock.
    pub available: f64,
    /// Stock value today (on hand × unit cost), for the KPIs.
    pub value: f64,
}

impl ProductInputs {
    fn matches(&self, scope: &Scope) -> bool {
        scope.product_id.is_none_or(|id| id == self.product_id)
            && scope.sku.as_deref().is_none_or(|s| s == self.sku)
            && scope.product_family.as_ref().is_none_or(|f| self.product_family.as_ref() == Some(f))
            && scope.category_id.is_none_or(|c| self.category_id == Some(c))
    }
}

/// A product's figures, before or after the scenario.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, serde::Deserialize)]
pub struct Figures {
    /// Demand.
    pub demand_qty: f64,
    /// Planned production.
    pub supply_qty: f64,
    /// Available stock.
    pub inventory_available_qty: f64,
    /// Production plus available stock.
    pub effective_supply_qty: f64,
    /// Selling price.
    pub price: f64,
    /// Demand × price.
    pub revenue: f64,
    /// Demand × (price − cost).
    pub margin: f64,
    /// Stock value at the month's end.
    pub inventory_value: f64,
    /// Demand met, % (0 with no demand).
    pub fill_rate: f64,
}

impl Figures {
    fn of(demand: f64, supply: f64, available: f64, price: f64, cost: f64) -> Self {
        let effective = supply + available;
        Figures {
            demand_qty: demand,
            supply_qty: supply,
            inventory_available_qty: available,
            effective_supply_qty: effective,
            price,
            revenue: demand * price,
            margin: demand * (price - cost),
            inventory_value: (effective - demand).max(0.0) * cost,
            fill_rate: if demand > 0.0 { demand.min(effective) / demand * 100.0 } else { 0.0 },
        }
    }

    fn shortage(&self) -> f64 {
        (self.demand_qty - self.effective_supply_qty).max(0.0)
    }

    fn excess(&self) -> f64 {
        (self.effective_supply_qty - self.demand_qty).max(0.0)
    }
}

/// One product's line of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductLine {
    /// The product.
    pub product_id: i64,
    /// Its unit cost.
    pub unit_cost: f64,
    /// Before.
    pub baseline: Figures,
    /// After.
    pub scenario: Figures,
}

/// Inventory exceptions open when the scenario ran.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Exceptions {
    /// Positions below their reorder point or safety stock.
    pub open: i64,
    /// Of those, critical (at or below safety stock).
    pub high: i64,
    /// Of those, low.
    pub medium: i64,
}

impl Exceptions {
    /// From the positions per status (`critical` are high, `low` medium).
    pub fn from_status_counts(counts: &[(String, i64)]) -> Self {
        counts.iter().fold(Exceptions::default(), |mut e, (status, n)| {
            match status.as_str() {
                "critical" => e.high += n,
                "low" => e.medium += n,
                _ => return e,
            }
            e.open += n;
            e
        })
    }
}

/// A run's outcome: the results document and the product lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The `results` document.
    pub results: Value,
    /// Per product.
    pub lines: Vec<ProductLine>,
    /// Revenue, margin, inventory value and service level, scenario minus baseline.
    pub impacts: [f64; 4],
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Applies `adjustment`'s percentage or amount to the `matched` products' `values` (an amount
/// over several products is shared in proportion to their values; a price amount applies to each).
fn apply(values: &mut [f64], matched: &[usize], adjustment: &Adjustment) {
    if let Some(pct) = adjustment.change_pct {
        matched.iter().for_each(|&i| values[i] *= 1.0 + pct / 100.0);
    } else if let Some(amount) = adjustment.change_amount {
        if adjustment.lever == Lever::Price || matched.len() == 1 {
            matched.iter().for_each(|&i| values[i] += amount);
            return;
        }
        let total: f64 = matched.iter().map(|&i| values[i].max(0.0)).sum();
        for &i in matched {
            let share = if total > 0.0 { values[i].max(0.0) / total } else { 1.0 / matched.len() as f64 };
            values[i] += amount * share;
        }
    }
}

/// Runs `p` over `products` for `period`.
pub fn run(p: &Parameters, period: NaiveDate, products: &[ProductInputs], exceptions: Exceptions) -> Outcome {
    let grow = |v: f64, pct: f64| v * (1.0 + pct / 100.0);
    let mut demand: Vec<f64> = products.iter().map(|x| grow(x.demand, p.demand_change_pct)).collect();
    let mut supply: Vec<f64> = products.iter().map(|x| grow(x.supply, p.supply_capacity_pct)).collect();
    let mut available: Vec<f64> =
        products.iter().map(|x| grow(x.available, p.inventory_release_pct)).collect();
    let mut price: Vec<f64> = products.iter().map(|x| grow(x.price, p.price_change_pct)).collect();
    for a in &p.adjustments {
        let matched: Vec<usize> = (0..products.len()).filter(|&i| products[i].matches(&a.scope)).collect();
        let values = match a.lever {
            Lever::Demand => &mut demand,
            Lever::Supply => &mut supply,
            Lever::Inventory => &mut available,
            Lever::Price => &mut price,
        };
        apply(values, &matched, a);
    }
    let lines: Vec<ProductLine> = products
        .iter()
        .enumerate()
        .map(|(i, x)| ProductLine {
            product_id: x.product_id,
            unit_cost: x.cost,
            baseline: Figures::of(x.demand, x.supply, x.available, x.price, x.cost),
            scenario: Figures::of(
                demand[i].max(0.0),
                supply[i].max(0.0),
                available[i].max(0.0),
                price[i].max(0.0),
                x.cost,
            ),
        })
        .collect();
    outcome(p, period, &lines, exceptions)
}

/// Totals of `lines`' figures.
#[derive(Debug, Default)]
struct Totals {
    demand: f64,
    supply: f64,
    available: f64,
    revenue: f64,
    margin: f64,
    value: f64,
    met: f64,
    shortage: f64,
    excess_cost: f64,
}

impl Totals {
    fn of(lines: &[ProductLine], side: impl Fn(&ProductLine) -> Figures) -> Self {
        lines.iter().fold(Totals::default(), |mut t, line| {
            let f = side(line);
            t.demand += f.demand_qty;
            t.supply += f.supply_qty;
            t.available += f.inventory_available_qty;
            t.revenue += f.revenue;
            t.margin += f.margin;
            t.value += f.inventory_value;
            t.met += f.demand_qty.min(f.effective_supply_qty);
            t.shortage += f.shortage();
            t.excess_cost += f.excess() * line.unit_cost;
            t
        })
    }

    fn service_level(&self) -> f64 {
        if self.demand > 0.0 {
            self.met / self.demand * 100.0
        } else {
            0.0
        }
    }

    fn document(&self) -> Value {
        json!({
            "demand_qty": round2(self.demand),
            "supply_qty": round2(self.supply),
            "inventory_available_qty": round2(self.available),
            "effective_supply_qty": round2(self.supply + self.available),
            "revenue": round2(self.revenue),
            "margin": round2(self.margin),
            "inventory_value": round2(self.value),
            "service_level": round2(self.service_level()),
        })
    }
}

fn outcome(p: &Parameters, period: NaiveDate, lines: &[ProductLine], exceptions: Exceptions) -> Outcome {
    let base = Totals::of(lines, |l| l.baseline);
    let new = Totals::of(lines, |l| l.scenario);
    let average_price = if base.demand > 0.0 { base.revenue / base.demand } else { 0.0 };
    let penalty_per_unit =
        p.stockout_penalty_per_unit.unwrap_or(if average_price > 0.0 { 0.25 * average_price } else { 1.0 });
    let carrying = round2(new.excess_cost * p.inventory_carry_rate_pct / 100.0);
    let penalty = round2(new.shortage * penalty_per_unit);
    let working_capital = round2(new.value - base.value);
    let service_delta = new.service_level() - base.service_level();
    let (service_score, cost_score, cash_score) =
        (service_delta, -(carrying + penalty) / 1000.0, -working_capital / 1000.0);
    let composite =
        round2(p.service_weight * service_score + p.cost_weight * cost_score + p.cash_weight * cash_score);
    let impacts =
        [new.revenue - base.revenue, new.margin - base.margin, new.value - base.value, service_delta];
    let count = |f: fn(&ProductLine) -> bool| lines.iter().filter(|l| f(l)).count();
    let results = json!({
        "period": period.to_string(),
        "inputs": {
            "demand_change_pct": p.demand_change_pct,
            "supply_capacity_pct": p.supply_capacity_pct,
            "price_change_pct": p.price_change_pct,
            "inventory_release_pct": p.inventory_release_pct,
            "adjustments": p.adjustments.len(),
        },
        "baseline": base.document(),
        "scenario": new.document(),
        "data_points": {
            "product_count": lines.len(),
            "demand_plan_count": count(|l| l.baseline.demand_qty > 0.0),
            "supply_plan_count": count(|l| l.baseline.supply_qty > 0.0),
            "inventory_record_count": count(|l| l.baseline.inventory_available_qty > 0.0),
        },
        "revenue_impact": round2(impacts[0]),
        "margin_impact": round2(impacts[1]),
        "inventory_impact": round2(impacts[2]),
        "service_level_impact": round2(impacts[3]),
        "capacity_utilization_change": p.supply_capacity_pct,
        "tradeoff": {
            "inventory_carrying_cost": carrying,
            "stockout_penalty_cost": penalty,
            "working_capital_delta": working_capital,
            "service_score": round2(service_score),
            "cost_score": round2(cost_score),
            "cash_score": round2(cash_score),
            "composite_score": composite,
            "open_inventory_exceptions": exceptions.open,
            "high_risk_exception_count": exceptions.high,
            "medium_risk_exception_count": exceptions.medium,
        },
    });
    Outcome { results, lines: lines.to_vec(), impacts: impacts.map(round2) }
}

/// `value` as Python's `json.dumps` writes it (`", "` and `": "` separators), the spacing the
/// original's clients saw in `parameters` and `results`.
pub fn python_json(value: &Value) -> String {
    struct Spaced;
    /// `", "` before every item but the first.
    fn comma<W: ?Sized + std::io::Write>(w: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }
    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            comma(w, first)
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            comma(w, first)
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Spaced);
    value.serialize(&mut serializer).expect("a JSON value serialises");
    String::from_utf8(out).expect("JSON is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_product() -> ProductInputs {
        ProductInputs {
            product_id: 1,
            sku: "A".into(),
            product_family: Some("F".into()),
            price: 15.0,
            cost: 10.0,
            demand: 500.0,
            supply: 480.0,
            available: 190.0,
            value: 2000.0,
            ..Default::default()
        }
    }

    fn parameters(value: Value) -> Parameters {
        Parameters::parse(&value).unwrap()
    }

    fn period() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    #[test]
    fn the_originals_example_gives_its_revenue_margin_and_carrying_cost() {
        // FACTS-004 §5: demand 500 @ 15, cost 10, supply 480, available 190, value 2000,
        // d = 10, p = 5, s = 2.
        let p =
            parameters(json!({"demand_change_pct": 10, "price_change_pct": 5, "supply_capacity_pct": "2"}));
        let out = run(&p, period(), &[one_product()], Exceptions::default());
        let r = &out.results;
        assert_eq!(r["baseline"]["revenue"], 7500.0);
        assert_eq!(r["scenario"]["revenue"], 8662.5);
        assert_eq!(r["baseline"]["margin"], 2500.0);
        assert_eq!(r["scenario"]["margin"], 3162.5);
        assert_eq!(r["baseline"]["service_level"], 100.0);
        assert_eq!(r["scenario"]["service_level"], 100.0);
        assert_eq!(r["tradeoff"]["inventory_carrying_cost"], 233.28);
        // The stock left at the month's end on both sides: (670 − 500)·10 and (679.6 − 550)·10
        // (the original added today's stock value, 2000, to the second and compared it with
        // today's: +1296).
        assert_eq!(r["baseline"]["inventory_value"], 1700.0);
        assert_eq!(r["scenario"]["inventory_value"], 1296.0);
        assert_eq!(r["inventory_impact"], -404.0);
        assert_eq!(r["revenue_impact"], 1162.5);
        // 0.45·0 + 0.30·(−0.23328) + 0.25·0.404
        assert_eq!(r["tradeoff"]["composite_score"], 0.03);
        assert_eq!(out.impacts, [1162.5, 662.5, -404.0, 0.0]);
    }

    #[test]
    fn no_change_has_no_impact() {
        let out = run(&parameters(json!({})), period(), &[one_product()], Exceptions::default());
        assert_eq!(out.impacts, [0.0; 4]);
        assert_eq!(out.results["tradeoff"]["working_capital_delta"], 0.0);
    }

    #[test]
    fn one_products_surplus_does_not_hide_anothers_shortage() {
        let short = ProductInputs {
            product_id: 2,
            sku: "B".into(),
            demand: 100.0,
            supply: 50.0,
            available: 0.0,
            price: 10.0,
            ..one_product()
        };
        let long = ProductInputs {
            product_id: 3,
            sku: "C".into(),
            demand: 100.0,
            supply: 500.0,
            available: 0.0,
            ..one_product()
        };
        let out = run(&parameters(json!({})), period(), &[short, long], Exceptions::default());
        // B meets 50 of 100 and C 100 of 100: 75 %, though the pooled supply (550) is above the
        // demand (200).
        assert_eq!(out.results["baseline"]["service_level"], 75.0);
        // 50 short at a quarter of the average price, (100·10 + 100·15)/200 = 12.5.
        assert_eq!(out.results["tradeoff"]["stockout_penalty_cost"], 156.25);
    }

    fn in_family(product_id: i64, sku: &str, family: &str, demand: f64) -> ProductInputs {
        ProductInputs {
            product_id,
            sku: sku.into(),
            product_family: Some(family.into()),
            demand,
            ..one_product()
        }
    }

    #[test]
    fn adjustments_apply_to_their_scope_and_amounts_are_shared_by_base_quantity() {
        let (a, b, c) =
            (in_family(1, "A", "F", 300.0), in_family(2, "B", "F", 100.0), in_family(3, "C", "G", 100.0));
        let p = parameters(json!({"adjustments": [
            {"target": "demand", "change_amount": 200, "product_family": "F"},
            {"target": "demand", "change_pct": -50, "sku": "C"},
            {"target": "price", "change_amount": "1.5", "product_id": 2},
        ]}));
        let out = run(&p, period(), &[a, b, c], Exceptions::default());
        let demand: Vec<f64> = out.lines.iter().map(|l| l.scenario.demand_qty).collect();
        assert_eq!(demand, vec![450.0, 150.0, 50.0]);
        let price: Vec<f64> = out.lines.iter().map(|l| l.scenario.price).collect();
        assert_eq!(price, vec![15.0, 16.5, 15.0]);
    }

    #[test]
    fn bad_parameters_are_named_by_their_path() {
        let errors = Parameters::parse(&json!({
            "demand_change_pct": "ten",
            "period": "March",
            "adjustments": [{"target": "mood", "change_pct": 1}, {"target": "demand"}],
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "parameters.demand_change_pct",
                "parameters.period",
                "parameters.adjustments[0].target",
                "parameters.adjustments[1]",
            ]
        );
        let errors = Parameters::parse(&json!({
            "demand_change_pct": 1e308,
            "period": "2026-03-15",
            "adjustments": [{"target": "demand", "change_pct": 50, "product_id": 7.5, "sku": 12, "product": 7}],
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "parameters.demand_change_pct",
                "parameters.period",
                "parameters.adjustments[0].product",
                "parameters.adjustments[0].product_id",
                "parameters.adjustments[0].sku",
            ],
            "a scope that is not read is never taken for every product"
        );
        let p = Parameters::parse(
            &json!({"adjustments": [{"target": "demand", "change_pct": 5, "product_id": "7"}]}),
        );
        assert_eq!(p.unwrap().adjustments[0].scope.product_id, Some(7));
        assert!(Parameters::parse(&json!("x")).is_err());
        assert!(Parameters::parse(&json!({"demand_change_pct": "10"})).is_ok());
    }

    #[test]
    fn documents_are_written_with_pythons_spacing() {
        assert_eq!(python_json(&json!({"a": 10, "b": [1, 2.5]})), r#"{"a": 10, "b": [1, 2.5]}"#);
    }
}
