//! The module's entities as the original's clients read them: fields in the original's order,
//! quantities and money as two-decimal strings ([`Dec2`]), dates `YYYY-MM-DD`, times naive ISO.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::decimal::Dec2;

/// A time as the original shows it: naive ISO in UTC, no fraction (`2026-03-01T12:00:00`).
pub fn naive_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A product category.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Category {
    /// Its name.
    pub name: String,
    /// The parent category.
    pub parent_id: Option<i64>,
    /// Depth in the tree.
    pub level: i64,
    /// Free text.
    pub description: Option<String>,
    /// Its id.
    pub id: i64,
    /// Created (naive ISO, UTC).
    pub created_at: String,
}

/// A product.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Product {
    /// Stock-keeping unit, unique.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Its category.
    pub category_id: Option<i64>,
    /// Its family (scenarios change demand by family).
    pub product_family: Option<String>,
    /// Unit (`units`).
    pub unit_of_measure: String,
    /// Cost of one unit.
    #[schema(value_type = Option<String>)]
    pub unit_cost: Option<Dec2>,
    /// Price of one unit.
    #[schema(value_type = Option<String>)]
    pub selling_price: Option<Dec2>,
    /// Days from order to receipt.
    pub lead_time_days: i64,
    /// Smallest order.
    pub min_order_qty: i64,
    /// `active`, `discontinued`, `new`, …
    pub status: String,
    /// Its id.
    pub id: i64,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: Option<String>,
}

/// A demand plan: a product's demand in a period, region and channel, in versions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DemandPlan {
    /// The product.
    pub product_id: i64,
    /// The period (first of the month by convention).
    pub period: NaiveDate,
    /// Region (`Global`).
    pub region: String,
    /// Channel (`All`).
    pub channel: String,
    /// The statistical forecast.
    #[schema(value_type = String)]
    pub forecast_qty: Dec2,
    /// The planner's adjustment.
    #[schema(value_type = Option<String>)]
    pub adjusted_qty: Option<Dec2>,
    /// What was sold.
    #[schema(value_type = Option<String>)]
    pub actual_qty: Option<Dec2>,
    /// The agreed figure.
    #[schema(value_type = Option<String>)]
    pub consensus_qty: Option<Dec2>,
    /// Confidence, 0–100.
    #[schema(value_type = Option<String>)]
    pub confidence: Option<Dec2>,
    /// Free text; approvals and rejections append to it.
    pub notes: Option<String>,
    /// Its id.
    pub id: i64,
    /// `draft`, `submitted`, `approved` (or `locked`).
    pub status: String,
    /// Who created it (user id).
    pub created_by: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Version, from 1; every edit adds one.
    pub version: i64,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: Option<String>,
}

impl DemandPlan {
    /// The demand the plan stands for: consensus, else adjusted, else forecast (a zero falls
    /// through, as in the original).
    pub fn demand(&self) -> Dec2 {
        [self.consensus_qty, self.adjusted_qty]
            .into_iter()
            .flatten()
            .find(|q| *q != Dec2::ZERO)
            .unwrap_or(self.forecast_qty)
    }
}

/// A supply plan: a product's production at a location in a period.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SupplyPlan {
    /// The product.
    pub product_id: i64,
    /// The period.
    pub period: NaiveDate,
    /// Location (`Main`).
    pub location: String,
    /// Planned production.
    #[schema(value_type = Option<String>)]
    pub planned_prod_qty: Option<Dec2>,
    /// Actual production.
    #[schema(value_type = Option<String>)]
    pub actual_prod_qty: Option<Dec2>,
    /// Capacity.
    #[schema(value_type = Option<String>)]
    pub capacity_max: Option<Dec2>,
    /// Capacity used, percent.
    #[schema(value_type = Option<String>)]
    pub capacity_used: Option<Dec2>,
    /// Supplier.
    pub supplier_name: Option<String>,
    /// Lead time, days.
    pub lead_time_days: Option<i64>,
    /// Cost of a unit.
    #[schema(value_type = Option<String>)]
    pub cost_per_unit: Option<Dec2>,
    /// Free text.
    pub constraints: Option<String>,
    /// Its id.
    pub id: i64,
    /// `draft`, `submitted`, `approved`, `rejected`.
    pub status: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Version; every edit adds one.
    pub version: i64,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: Option<String>,
}

/// A product's stock at a location.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Inventory {
    /// The product.
    pub product_id: i64,
    /// Where.
    pub location: String,
    /// On hand.
    #[schema(value_type = String)]
    pub on_hand_qty: Dec2,
    /// Promised to orders.
    #[schema(value_type = String)]
    pub allocated_qty: Dec2,
    /// On the way in.
    #[schema(value_type = String)]
    pub in_transit_qty: Dec2,
    /// Safety stock.
    #[schema(value_type = String)]
    pub safety_stock: Dec2,
    /// Reorder point.
    #[schema(value_type = String)]
    pub reorder_point: Dec2,
    /// Most to hold.
    #[schema(value_type = Option<String>)]
    pub max_stock: Option<Dec2>,
    /// Days the stock on hand lasts at the product's recent demand (computed; `null` without
    /// demand history).
    #[schema(value_type = Option<String>)]
    pub days_of_supply: Option<Dec2>,
    /// Last receipt.
    pub last_receipt_date: Option<NaiveDate>,
    /// Last issue.
    pub last_issue_date: Option<NaiveDate>,
    /// On hand × the product's unit cost (computed; `null` without a cost).
    #[schema(value_type = Option<String>)]
    pub valuation: Option<Dec2>,
    /// `normal`, `low`, `critical`, `excess` (recomputed on every write).
    pub status: String,
    /// Its id.
    pub id: i64,
    /// Last changed.
    pub updated_at: Option<String>,
}

/// A stored forecast of one product, model and month.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ForecastRow {
    /// Its id.
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// The model asked for (`auto`, `ets`, `prophet`, …).
    pub model_type: String,
    /// The model that made it (`ETS(M,Ad,M)`, `tsb`, …).
    pub model: String,
    /// The month.
    pub period: NaiveDate,
    /// Expected demand.
    #[schema(value_type = String)]
    pub predicted_qty: Dec2,
    /// Lower bound of the interval.
    #[schema(value_type = String)]
    pub lower_bound: Dec2,
    /// Upper bound.
    #[schema(value_type = String)]
    pub upper_bound: Dec2,
    /// The interval's level, percent.
    #[schema(value_type = String)]
    pub confidence: Dec2,
    /// Backtest MAPE, percent.
    pub mape: Option<f64>,
    /// Backtest RMSE.
    pub rmse: Option<f64>,
    /// Backtest MASE.
    pub mase: Option<f64>,
    /// Backtest sMAPE, percent (0–200).
    pub smape: Option<f64>,
    /// History months it was fitted on.
    pub history_points: i64,
    /// Made (naive ISO, UTC).
    pub created_at: String,
}

/// The five steps' names.
pub const SOP_STEPS: [&str; 5] =
    ["Data Gathering", "Demand Review", "Supply Review", "Pre-S&OP", "Executive S&OP"];

/// An S&OP cycle: five steps with owners and due dates (the original's flat fields).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SopCycle {
    /// Its name.
    pub cycle_name: String,
    /// The month it plans.
    pub period: NaiveDate,
    /// Step 1's due date.
    pub step_1_due_date: Option<NaiveDate>,
    /// Step 1's owner (user id; informational).
    pub step_1_owner_id: Option<String>,
    /// Step 2's due date.
    pub step_2_due_date: Option<NaiveDate>,
    /// Step 2's owner (user id; informational).
    pub step_2_owner_id: Option<String>,
    /// Step 3's due date.
    pub step_3_due_date: Option<NaiveDate>,
    /// Step 3's owner (user id; informational).
    pub step_3_owner_id: Option<String>,
    /// Step 4's due date.
    pub step_4_due_date: Option<NaiveDate>,
    /// Step 4's owner (user id; informational).
    pub step_4_owner_id: Option<String>,
    /// Step 5's due date.
    pub step_5_due_date: Option<NaiveDate>,
    /// Step 5's owner (user id; informational).
    pub step_5_owner_id: Option<String>,
    /// Free text.
    pub notes: Option<String>,
    /// Its id.
    pub id: i64,
    /// The step it is at, 1–5.
    pub current_step: i64,
    /// Step 1: `pending` or `completed`.
    pub step_1_status: String,
    /// Step 2: `pending` or `completed`.
    pub step_2_status: String,
    /// Step 3: `pending` or `completed`.
    pub step_3_status: String,
    /// Step 4: `pending` or `completed`.
    pub step_4_status: String,
    /// Step 5: `pending` or `completed`.
    pub step_5_status: String,
    /// What was decided.
    pub decisions: Option<String>,
    /// What is to be done.
    pub action_items: Option<String>,
    /// `active` or `completed`.
    pub overall_status: String,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: Option<String>,
}

impl SopCycle {
    /// Step `n`'s (1–5) status slot.
    pub fn status_mut(&mut self, n: i64) -> Option<&mut String> {
        match n {
            1 => Some(&mut self.step_1_status),
            2 => Some(&mut self.step_2_status),
            3 => Some(&mut self.step_3_status),
            4 => Some(&mut self.step_4_status),
            5 => Some(&mut self.step_5_status),
            _ => None,
        }
    }

    /// Step `n`'s status and due date.
    pub fn step(&self, n: i64) -> (&str, Option<NaiveDate>) {
        match n {
            1 => (&self.step_1_status, self.step_1_due_date),
            2 => (&self.step_2_status, self.step_2_due_date),
            3 => (&self.step_3_status, self.step_3_due_date),
            4 => (&self.step_4_status, self.step_4_due_date),
            _ => (&self.step_5_status, self.step_5_due_date),
        }
    }
}

/// The original's status rule, in its order: below the reorder point `critical`, else below
/// safety stock `low`, else above a non-zero maximum `excess`, else `normal`.
pub fn inventory_status(
    on_hand: Dec2,
    reorder_point: Dec2,
    safety_stock: Dec2,
    max_stock: Option<Dec2>,
) -> &'static str {
    if on_hand < reorder_point {
        "critical"
    } else if on_hand < safety_stock {
        "low"
    } else if max_stock.is_some_and(|m| m != Dec2::ZERO && on_hand > m) {
        "excess"
    } else {
        "normal"
    }
}

/// A what-if scenario, as the original answers it (`parameters` and `results` are JSON documents
/// in strings).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Scenario {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// `what_if`, `baseline` or `stress_test`.
    pub scenario_type: String,
    /// What it changes, a JSON object in a string.
    pub parameters: String,
    /// The last run's results, a JSON object in a string; null before the first run.
    pub results: Option<String>,
    /// Revenue, scenario minus baseline.
    #[schema(value_type = Option<String>)]
    pub revenue_impact: Option<Dec2>,
    /// Margin, scenario minus baseline.
    #[schema(value_type = Option<String>)]
    pub margin_impact: Option<Dec2>,
    /// Month-end inventory value, scenario minus baseline.
    #[schema(value_type = Option<String>)]
    pub inventory_impact: Option<Dec2>,
    /// Service level (fill rate), percentage points, scenario minus baseline.
    #[schema(value_type = Option<String>)]
    pub service_level_impact: Option<Dec2>,
    /// `draft`, `completed` (run), `submitted`, `approved` or `rejected`.
    pub status: String,
    /// Who created it.
    pub created_by: Option<String>,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// Created.
    pub created_at: String,
    /// Last changed.
    pub updated_at: Option<String>,
    /// When it was promoted into plans (not in the original's answer).
    #[serde(skip)]
    pub promoted_at: Option<String>,
}

/// One product's figures in a scenario's last run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ScenarioLine {
    /// The product.
    pub product_id: i64,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its family.
    pub product_family: Option<String>,
    /// Its unit cost.
    pub unit_cost: f64,
    /// Before the scenario.
    #[schema(value_type = Object)]
    pub baseline: crate::scenario::Figures,
    /// After.
    #[schema(value_type = Object)]
    pub scenario: crate::scenario::Figures,
}

/// A KPI's value for a month, against its target.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiMetric {
    /// Its name (`Forecast Accuracy`, `OTIF`, …).
    pub metric_name: String,
    /// `demand`, `supply`, `inventory`, `service` or `financial`.
    pub metric_category: String,
    /// The month.
    pub period: NaiveDate,
    /// Its value, four decimals.
    #[schema(value_type = String)]
    pub value: crate::decimal::Dec4,
    /// The target.
    #[schema(value_type = Option<String>)]
    pub target: Option<crate::decimal::Dec4>,
    /// The value the month before.
    #[schema(value_type = Option<String>)]
    pub previous_value: Option<crate::decimal::Dec4>,
    /// `%`, `units`, `currency`, `days`, ….
    pub unit: Option<String>,
    /// Its id.
    pub id: i64,
    /// Value minus target.
    #[schema(value_type = Option<String>)]
    pub variance: Option<crate::decimal::Dec4>,
    /// Variance as a percent of the target (none with a zero target).
    #[schema(value_type = Option<String>)]
    pub variance_pct: Option<crate::decimal::Dec4>,
    /// `improving`, `declining` or `stable` against the previous value.
    pub trend: Option<String>,
    /// Created.
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_status_follows_the_originals_order() {
        let d = Dec2::units;
        assert_eq!(inventory_status(d(70), d(80), d(50), None), "critical");
        assert_eq!(inventory_status(d(70), d(60), d(75), None), "low");
        assert_eq!(inventory_status(d(700), d(80), d(50), Some(d(600))), "excess");
        assert_eq!(inventory_status(d(700), d(80), d(50), Some(d(0))), "normal", "a zero maximum is none");
        assert_eq!(inventory_status(d(80), d(80), d(80), Some(d(80))), "normal", "comparisons are strict");
    }
}
