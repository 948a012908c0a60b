//! KPI metrics by the original's rules (variance against the target, its percent, the trend
//! against the previous value; alerts past 10 % off target, critical past 20 %), one value per
//! metric and month, and the KPIs computed from the stored plans, actuals and stock.

use chrono::{Datelike as _, NaiveDate};
use serde::{Deserialize, Serialize};
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{present, PlanningService};
use crate::decimal::Dec4;
use crate::error::PlanningError;
use crate::model::KpiMetric;
use crate::store::kpis::{self as store, KpiFilter};

/// The categories a KPI may have.
pub const KPI_CATEGORIES: [&str; 5] = ["demand", "supply", "inventory", "service", "financial"];

/// `POST /kpi/metrics`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct KpiCreate {
    /// Its name.
    pub metric_name: String,
    /// `demand`, `supply`, `inventory`, `service` or `financial`.
    pub metric_category: String,
    /// The month.
    pub period: NaiveDate,
    /// The value.
    #[schema(value_type = String)]
    pub value: Dec4,
    /// The target; the metric's last one when left out.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub target: Option<Dec4>,
    /// The value the month before; the stored one when left out.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub previous_value: Option<Dec4>,
    /// `%`, `units`, `currency`, ….
    #[serde(default)]
    pub unit: Option<String>,
}

/// `PUT /kpi/metrics/{id}`: the fields given change; variance and trend follow.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct KpiUpdate {
    /// The value.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub value: Option<Dec4>,
    /// The target (null clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub target: Option<Option<Dec4>>,
    /// The previous value (null clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub previous_value: Option<Option<Dec4>>,
    /// The unit (null clears it).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub unit: Option<Option<String>>,
}

/// `POST /kpi/targets`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct KpiTarget {
    /// The metric.
    pub metric_name: String,
    /// Its new target (set on its latest month).
    #[schema(value_type = String)]
    pub target: Dec4,
}

/// A metric off its target (`GET /kpi/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KpiAlert {
    /// The metric.
    pub metric_name: String,
    /// Its category.
    pub category: String,
    /// Its value.
    pub value: f64,
    /// Its target.
    pub target: f64,
    /// Off target, percent, two decimals.
    pub variance_pct: f64,
    /// `critical` past 20 %, else `warning`.
    pub severity: String,
    /// The month.
    pub period: NaiveDate,
}

/// `GET /kpi/dashboard`: each metric's latest month, by category.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct KpiDashboard {
    /// Demand.
    pub demand_kpis: Vec<KpiMetric>,
    /// Supply.
    pub supply_kpis: Vec<KpiMetric>,
    /// Inventory.
    pub inventory_kpis: Vec<KpiMetric>,
    /// Service.
    pub service_kpis: Vec<KpiMetric>,
    /// Financial.
    pub financial_kpis: Vec<KpiMetric>,
}

/// Sets the variance, its percent (none with a zero target) and the trend (only against a
/// non-zero previous value), as the original.
pub fn derive(m: &mut KpiMetric) {
    m.variance = m.target.map(|t| Dec4(m.value.0 - t.0));
    m.variance_pct = match (m.variance, m.target) {
        (Some(v), Some(t)) if t.0 != 0 => Some(Dec4::from_f64(v.0 as f64 / t.0 as f64 * 100.0)),
        _ => None,
    };
    m.trend = m.previous_value.filter(|p| p.0 != 0).map(|p| {
        match m.value.cmp(&p) {
            std::cmp::Ordering::Greater => "improving",
            std::cmp::Ordering::Less => "declining",
            std::cmp::Ordering::Equal => "stable",
        }
        .to_owned()
    });
}

/// `critical` past `critical` %, `warning` past `warning` %, else none.
pub fn severity(variance_pct: f64, warning: f64, critical: f64) -> Option<&'static str> {
    let off = variance_pct.abs();
    (off > warning).then_some(if off > critical { "critical" } else { "warning" })
}

impl PlanningService {
    /// Records a metric's value for a month (409 when it has one).
    pub async fn create_kpi(
        &self,
        context: &RequestContext,
        input: KpiCreate,
    ) -> Result<KpiMetric, PlanningError> {
        let mut errors = Vec::new();
        if input.metric_name.trim().is_empty() {
            errors.push(FieldError::new("metric_name", "must not be empty"));
        }
        if !KPI_CATEGORIES.contains(&input.metric_category.as_str()) {
            errors.push(FieldError::new(
                "metric_category",
                "must be one of demand, supply, inventory, service, financial",
            ));
        }
        if input.period.day() != 1 {
            errors.push(FieldError::new("period", "must be the first of a month"));
        }
        if !errors.is_empty() {
            return Err(PlanningError::Invalid(errors));
        }
        let mut tx = self.db().begin().await?;
        let created = self.create_kpi_in(&mut tx, context, input).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// [`Self::create_kpi`] within `tx` (the input checked).
    pub(crate) async fn create_kpi_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        context: &RequestContext,
        input: KpiCreate,
    ) -> Result<KpiMetric, PlanningError> {
        let earlier = store::latest_named(tx, &input.metric_name, Some(input.period)).await?;
        let mut m = KpiMetric {
            metric_name: input.metric_name,
            metric_category: input.metric_category,
            period: input.period,
            value: input.value,
            target: input.target.or(earlier.as_ref().and_then(|e| e.target)),
            previous_value: input.previous_value.or(earlier.as_ref().map(|e| e.value)),
            unit: input.unit,
            id: 0,
            variance: None,
            variance_pct: None,
            trend: None,
            created_at: String::new(),
        };
        derive(&mut m);
        let what = format!("{} already has a value for {}; change it with PUT", m.metric_name, m.period);
        let created = store::save(tx, &m).await.map_err(|e| PlanningError::unique_or(e, &what))?;
        self.publish(tx, context, "kpi.created", ("kpi_metric", created.id), (None, Some(&created))).await?;
        Ok(created)
    }

    /// One metric.
    pub async fn kpi(&self, id: i64) -> Result<KpiMetric, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        store::get(&mut conn, id).await?.ok_or(PlanningError::NotFound { entity: "KPIMetric", id })
    }

    /// The metrics matching `filter`, latest month first.
    pub async fn kpis(&self, filter: &KpiFilter) -> Result<Vec<KpiMetric>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::list(&mut conn, filter).await?)
    }

    /// Changes the fields given.
    pub async fn update_kpi(
        &self,
        context: &RequestContext,
        id: i64,
        input: KpiUpdate,
    ) -> Result<KpiMetric, PlanningError> {
        let mut tx = self.db().begin().await?;
        let after = self.update_kpi_in(&mut tx, context, id, input).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// [`Self::update_kpi`] within `tx`.
    pub(crate) async fn update_kpi_in(
        &self,
        tx: &mut sqlx::AnyConnection,
        context: &RequestContext,
        id: i64,
        input: KpiUpdate,
    ) -> Result<KpiMetric, PlanningError> {
        let before = store::get(tx, id).await?.ok_or(PlanningError::NotFound { entity: "KPIMetric", id })?;
        let mut m = before.clone();
        if let Some(v) = input.value {
            m.value = v;
        }
        if let Some(v) = input.target {
            m.target = v;
        }
        if let Some(v) = input.previous_value {
            m.previous_value = v;
        }
        if let Some(v) = input.unit {
            m.unit = v;
        }
        derive(&mut m);
        let after = store::save(tx, &m).await?;
        self.publish(tx, context, "kpi.updated", ("kpi_metric", id), (Some(&before), Some(&after))).await?;
        Ok(after)
    }

    /// Deletes a metric.
    pub async fn delete_kpi(&self, context: &RequestContext, id: i64) -> Result<(), PlanningError> {
        let mut tx = self.db().begin().await?;
        let before =
            store::get(&mut tx, id).await?.ok_or(PlanningError::NotFound { entity: "KPIMetric", id })?;
        store::delete(&mut tx, id).await?;
        self.publish::<KpiMetric>(&mut tx, context, "kpi.deleted", ("kpi_metric", id), (Some(&before), None))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the target of the metric's latest month.
    pub async fn set_kpi_target(
        &self,
        context: &RequestContext,
        input: KpiTarget,
    ) -> Result<KpiMetric, PlanningError> {
        let latest = {
            let mut conn = self.db().reader().acquire().await?;
            store::latest_named(&mut conn, &input.metric_name, None).await?
        };
        let latest = latest.ok_or_else(|| {
            PlanningError::NotFoundText(format!("No KPI metric named '{}'.", input.metric_name))
        })?;
        let update = KpiUpdate { target: Some(Some(input.target)), ..KpiUpdate::default() };
        self.update_kpi(context, latest.id, update).await
    }

    /// Each metric's latest month, by category.
    pub async fn kpi_dashboard(&self) -> Result<KpiDashboard, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let mut board = KpiDashboard::default();
        for m in store::latest_of_each(&mut conn).await? {
            match m.metric_category.as_str() {
                "demand" => board.demand_kpis.push(m),
                "supply" => board.supply_kpis.push(m),
                "inventory" => board.inventory_kpis.push(m),
                "service" => board.service_kpis.push(m),
                _ => board.financial_kpis.push(m),
            }
        }
        Ok(board)
    }

    /// Each metric's latest month that is more than 10 % off target.
    pub async fn kpi_alerts(&self) -> Result<Vec<KpiAlert>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::latest_of_each(&mut conn)
            .await?
            .into_iter()
            .filter_map(|m| {
                let pct = m.variance_pct?.to_f64();
                let severity = severity(pct, 10.0, 20.0)?;
                Some(KpiAlert {
                    metric_name: m.metric_name,
                    category: m.metric_category,
                    value: m.value.to_f64(),
                    target: m.target?.to_f64(),
                    variance_pct: (pct * 100.0).round() / 100.0,
                    severity: severity.into(),
                    period: m.period,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(value: f64, target: Option<f64>, previous: Option<f64>) -> KpiMetric {
        let mut m = KpiMetric {
            metric_name: "Forecast Accuracy".into(),
            metric_category: "demand".into(),
            period: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            value: Dec4::from_f64(value),
            target: target.map(Dec4::from_f64),
            previous_value: previous.map(Dec4::from_f64),
            unit: None,
            id: 0,
            variance: None,
            variance_pct: None,
            trend: None,
            created_at: String::new(),
        };
        derive(&mut m);
        m
    }

    #[test]
    fn variance_and_trend_follow_the_originals_rules() {
        let m = metric(70.0, Some(90.0), Some(65.0));
        assert_eq!(m.variance.map(|v| v.to_string()).as_deref(), Some("-20.0000"));
        assert_eq!(m.variance_pct.map(|v| v.to_string()).as_deref(), Some("-22.2222"));
        assert_eq!(m.trend.as_deref(), Some("improving"));
        assert_eq!(metric(70.0, Some(0.0), Some(80.0)).variance_pct, None);
        assert_eq!(metric(70.0, Some(0.0), Some(80.0)).trend.as_deref(), Some("declining"));
        assert_eq!(metric(70.0, None, Some(0.0)).trend, None, "no trend against zero");
        assert_eq!(metric(70.0, None, Some(70.0)).trend.as_deref(), Some("stable"));
        assert_eq!(severity(-22.2, 10.0, 20.0), Some("critical"));
        assert_eq!(severity(-22.2, 15.0, 25.0), Some("warning"));
        assert_eq!(severity(10.0, 10.0, 20.0), None, "strictly past the threshold");
    }
}
