//! `/dashboard/summary` and `/dashboard/alerts` as the original answers them (plain numbers;
//! KPI alerts past 15 % off target, critical past 25 %), and the KPIs computed from the data.

use chrono::{Datelike as _, NaiveDate};
use serde_json::{json, Value};
use sightline_platform::RequestContext;

use super::kpis::{severity, KpiCreate, KpiUpdate};
use super::PlanningService;
use crate::decimal::Dec4;
use crate::error::PlanningError;
use crate::model::KpiMetric;
use crate::scenario::{self, Exceptions, Parameters};
use crate::store::kpis as store;

/// A computed KPI: name, category, unit, value.
type Computed = (&'static str, &'static str, &'static str, f64);

/// The KPIs of `period` from the stored plans, actuals and stock (a KPI without data is left
/// out): forecast accuracy (100 − WAPE) and bias of the newest plans against what sold, the fill
/// rate and coverage of demand by planned production and stock, planned revenue and margin,
/// and, for this month only (the stock is today's), inventory value and the share of healthy
/// positions.
async fn computed(service: &PlanningService, period: NaiveDate) -> Result<Vec<Computed>, PlanningError> {
    let mut conn = service.db().reader().acquire().await?;
    let mut out: Vec<Computed> = Vec::new();
    let (planned, error, sold) = store::forecast_error(&mut conn, period).await?;
    if sold > 0.0 {
        out.push(("Forecast Accuracy", "demand", "%", (100.0 * (1.0 - error / sold)).max(0.0)));
        out.push(("Forecast Bias", "demand", "%", (planned - sold) / sold * 100.0));
    }
    let inputs = crate::store::scenarios::inputs(&mut conn, period).await?;
    let none = Parameters::parse(&json!({})).map_err(|_| anyhow::anyhow!("empty parameters parse"))?;
    let base = &scenario::run(&none, period, &inputs, Exceptions::default()).results["baseline"];
    let number = |key: &str| base[key].as_f64().unwrap_or(0.0);
    if number("demand_qty") > 0.0 {
        out.push(("Plan Fill Rate", "service", "%", number("service_level")));
        out.push((
            "Supply Plan Coverage",
            "supply",
            "%",
            number("supply_qty") / number("demand_qty") * 100.0,
        ));
        out.push(("Planned Revenue", "financial", "currency", number("revenue")));
    }
    if number("revenue") > 0.0 {
        out.push(("Planned Margin", "financial", "%", number("margin") / number("revenue") * 100.0));
    }
    // The stock is known as of now: its KPIs are this month's only.
    if period == super::inventory::this_month() {
        let counts = crate::store::inventory::status_counts(&mut conn).await?;
        let positions: i64 = counts.iter().map(|(_, n)| n).sum();
        if positions > 0 {
            let value: f64 = inputs.iter().map(|p| p.value).sum();
            out.push(("Inventory Value", "inventory", "currency", value));
            let normal: i64 = counts.iter().filter(|(s, _)| s == "normal").map(|(_, n)| n).sum();
            out.push(("Healthy Positions", "inventory", "%", normal as f64 / positions as f64 * 100.0));
        }
    }
    Ok(out)
}

/// The latest month with a demand plan, else this month.
pub(crate) async fn planned_month(conn: &mut sqlx::AnyConnection) -> Result<NaiveDate, PlanningError> {
    Ok(crate::store::scenarios::latest_planned_period(conn)
        .await?
        .unwrap_or_else(super::inventory::this_month))
}

impl PlanningService {
    /// The latest month with a demand plan, else this month.
    pub async fn latest_planned_period(&self) -> Result<NaiveDate, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        planned_month(&mut conn).await
    }

    /// Computes the KPIs of `period` (a month's first day) and records them in one transaction:
    /// a month's value is replaced (its target kept); a new month takes the last target and the
    /// last value as the previous one.
    pub async fn compute_kpis(
        &self,
        context: &RequestContext,
        period: NaiveDate,
    ) -> Result<Vec<KpiMetric>, PlanningError> {
        if period.day() != 1 {
            return Err(PlanningError::invalid("period", "must be the first of a month"));
        }
        let values = computed(self, period).await?;
        let mut tx = self.db().begin().await?;
        let mut recorded = Vec::with_capacity(values.len());
        for (name, category, unit, value) in values {
            let value = Dec4::from_f64(value);
            let metric = match store::named_at(&mut tx, name, period).await? {
                Some(m) => {
                    let update = KpiUpdate { value: Some(value), ..Default::default() };
                    self.update_kpi_in(&mut tx, context, m.id, update).await?
                }
                None => {
                    let create = KpiCreate {
                        metric_name: name.into(),
                        metric_category: category.into(),
                        period,
                        value,
                        target: None,
                        previous_value: None,
                        unit: Some(unit.into()),
                    };
                    self.create_kpi_in(&mut tx, context, create).await?
                }
            };
            recorded.push(metric);
        }
        tx.commit().await?;
        Ok(recorded)
    }

    /// Plans by status, inventory health, the two headline KPIs, the active cycle.
    pub async fn dashboard_summary(&self) -> Result<Value, PlanningError> {
        let health = self.inventory_health().await?;
        let mut conn = self.db().reader().acquire().await?;
        let plans = crate::store::demand::status_counts(&mut conn).await?;
        let count = |s: &str| plans.iter().filter(|(status, _)| status == s).map(|(_, n)| *n).sum::<i64>();
        let (draft, submitted, approved) = (count("draft"), count("submitted"), count("approved"));
        let mut kpis = Vec::new();
        for name in ["Forecast Accuracy", "OTIF"] {
            kpis.push(store::latest_named(&mut conn, name, None).await?.map(|m| m.value.to_f64()));
        }
        let cycle = crate::store::sop::active(&mut conn).await?;
        let total_value = health.total_value.as_str().and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        Ok(json!({
            "demand_plans": {"draft": draft, "submitted": submitted, "approved": approved, "total": draft + submitted + approved},
            "inventory_health": {
                "total_products": health.total_products,
                "normal": health.normal_count,
                "low": health.low_count,
                "critical": health.critical_count,
                "excess": health.excess_count,
                "total_value": total_value,
            },
            "kpis": {"forecast_accuracy": kpis[0], "otif": kpis[1]},
            "sop_cycle": cycle.map(|c| json!({"id": c.id, "name": c.cycle_name, "current_step": c.current_step, "status": c.overall_status})),
        }))
    }

    /// Critical and low positions, and every KPI row more than 15 % off its target.
    pub async fn dashboard_alerts(&self) -> Result<Value, PlanningError> {
        let alerts = self.inventory_alerts().await?;
        let position = |a: &super::inventory::InventoryAlert| json!({"product_id": a.product_id, "location": a.location, "on_hand": a.on_hand_qty});
        let mut conn = self.db().reader().acquire().await?;
        let kpi_alerts: Vec<Value> = store::all(&mut conn)
            .await?
            .into_iter()
            .filter_map(|m| {
                let (value, target) = (m.value.to_f64(), m.target?.to_f64());
                if value == 0.0 || target == 0.0 {
                    return None;
                }
                let variance = (value - target) / target * 100.0;
                let severity = severity(variance, 15.0, 25.0)?;
                Some(json!({
                    "type": "kpi",
                    "severity": severity,
                    "message": format!("{} is {:.1}% off target", m.metric_name, variance.abs()),
                    "metric": m.metric_name,
                    "value": value,
                    "target": target,
                }))
            })
            .collect();
        let total = alerts.critical.len() + alerts.low.len() + kpi_alerts.len();
        Ok(json!({
            "inventory_critical": alerts.critical.iter().map(position).collect::<Vec<_>>(),
            "inventory_low": alerts.low.iter().map(position).collect::<Vec<_>>(),
            "kpi_alerts": kpi_alerts,
            "total_alerts": total,
        }))
    }
}
