//! KPI metrics (`planning_kpi_metrics`): one value per metric and month; values are
//! ten-thousandths ([`Dec4`]).

use chrono::NaiveDate;
use sightline_platform::db::{now_ms, Conditions, FilterValue};
use sqlx::{AnyConnection, Row as _};

use super::{date, time};
use crate::decimal::Dec4;
use crate::model::KpiMetric;

const COLUMNS: &str =
    "id, metric_name, metric_category, period, value, target, previous_value, unit, variance, \
    variance_pct, trend, created_at";

fn dec4(r: &sqlx::any::AnyRow, column: &str) -> Result<Option<Dec4>, sqlx::Error> {
    Ok(r.try_get::<Option<i64>, _>(column)?.map(Dec4))
}

fn metric(r: &sqlx::any::AnyRow) -> Result<KpiMetric, sqlx::Error> {
    Ok(KpiMetric {
        metric_name: r.try_get("metric_name")?,
        metric_category: r.try_get("metric_category")?,
        period: date(r, "period")?,
        value: dec4(r, "value")?.unwrap_or_default(),
        target: dec4(r, "target")?,
        previous_value: dec4(r, "previous_value")?,
        unit: r.try_get("unit")?,
        id: r.try_get("id")?,
        variance: dec4(r, "variance")?,
        variance_pct: dec4(r, "variance_pct")?,
        trend: r.try_get("trend")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
    })
}

/// Writes `m`: a new metric when its id is 0, else the one with its id; answers it as stored. A
/// second value for a metric's month is a unique violation.
pub async fn save(conn: &mut AnyConnection, m: &KpiMetric) -> Result<KpiMetric, sqlx::Error> {
    let sql = if m.id == 0 {
        format!(
            "INSERT INTO planning_kpi_metrics (metric_name, metric_category, period, value, target, previous_value, \
             unit, variance, variance_pct, trend, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             RETURNING {COLUMNS}"
        )
    } else {
        format!(
            "UPDATE planning_kpi_metrics SET metric_name = $1, metric_category = $2, period = $3, value = $4, \
             target = $5, previous_value = $6, unit = $7, variance = $8, variance_pct = $9, trend = $10 \
             WHERE id = $11 RETURNING {COLUMNS}"
        )
    };
    let query = sqlx::query(&sql)
        .bind(&m.metric_name)
        .bind(&m.metric_category)
        .bind(m.period.to_string())
        .bind(m.value.0)
        .bind(m.target.map(|d| d.0))
        .bind(m.previous_value.map(|d| d.0))
        .bind(m.unit.as_deref())
        .bind(m.variance.map(|d| d.0))
        .bind(m.variance_pct.map(|d| d.0))
        .bind(m.trend.as_deref());
    let query = if m.id == 0 { query.bind(now_ms()) } else { query.bind(m.id) };
    metric(&query.fetch_one(conn).await?)
}

/// One metric.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<KpiMetric>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_kpi_metrics WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(metric)
        .transpose()
}

/// Deletes a metric.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM planning_kpi_metrics WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// Which metrics to list.
#[derive(Debug, Clone, Default)]
pub struct KpiFilter {
    /// Of this category.
    pub category: Option<String>,
    /// From this month.
    pub period_from: Option<NaiveDate>,
    /// To this month.
    pub period_to: Option<NaiveDate>,
}

/// The metrics matching `f`, latest month first, then by name.
pub async fn list(conn: &mut AnyConnection, f: &KpiFilter) -> Result<Vec<KpiMetric>, sqlx::Error> {
    let mut c = Conditions::default();
    c.eq("metric_category", f.category.as_deref());
    if let Some(from) = f.period_from {
        c.bind(|n| format!("period >= ${n}"), FilterValue::Text(from.to_string()));
    }
    if let Some(to) = f.period_to {
        c.bind(|n| format!("period <= ${n}"), FilterValue::Text(to.to_string()));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM planning_kpi_metrics{} ORDER BY period DESC, metric_name, id",
        c.where_sql()
    );
    c.apply(sqlx::query(&sql)).fetch_all(conn).await?.iter().map(metric).collect()
}

/// Every metric, by id.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<KpiMetric>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_kpi_metrics ORDER BY id"))
        .fetch_all(conn)
        .await?
        .iter()
        .map(metric)
        .collect()
}

/// Each metric's latest month, by category and name.
pub async fn latest_of_each(conn: &mut AnyConnection) -> Result<Vec<KpiMetric>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_kpi_metrics m WHERE period = (SELECT MAX(period) FROM planning_kpi_metrics x \
         WHERE x.metric_name = m.metric_name) ORDER BY metric_category, metric_name"
    ))
    .fetch_all(conn)
    .await?
    .iter()
    .map(metric)
    .collect()
}

/// The metric `name`'s latest month before `before` (or at all, with none).
pub async fn latest_named(
    conn: &mut AnyConnection,
    name: &str,
    before: Option<NaiveDate>,
) -> Result<Option<KpiMetric>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_kpi_metrics WHERE metric_name = $1 AND period < $2 ORDER BY period DESC LIMIT 1"
    ))
    .bind(name)
    .bind(before.map_or_else(|| "9999-12-31".to_owned(), |d| d.to_string()))
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(metric)
    .transpose()
}

/// The metric `name` of `period`.
pub async fn named_at(
    conn: &mut AnyConnection,
    name: &str,
    period: NaiveDate,
) -> Result<Option<KpiMetric>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_kpi_metrics WHERE metric_name = $1 AND period = $2"))
        .bind(name)
        .bind(period.to_string())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(metric)
        .transpose()
}

/// Demand plans of `period` (the newest version of each) against what sold: Σ planned, Σ |planned −
/// sold| and Σ sold, over the plans with a sale (a plan's own actual, else the loaded one).
pub async fn forecast_error(
    conn: &mut AnyConnection,
    period: NaiveDate,
) -> Result<(f64, f64, f64), sqlx::Error> {
    let rows = sqlx::query(
        "SELECT COALESCE(d.consensus_qty, d.adjusted_qty, d.forecast_qty) AS planned, \
         COALESCE(d.actual_qty, a.actual_qty) AS sold FROM planning_demand_plans d \
         LEFT JOIN planning_demand_actuals a ON a.product_id = d.product_id AND a.period = d.period \
         AND a.region = d.region AND a.channel = d.channel \
         WHERE d.period = $1 AND d.version = (SELECT MAX(version) FROM planning_demand_plans x \
         WHERE x.product_id = d.product_id AND x.period = d.period AND x.region = d.region AND x.channel = d.channel)",
    )
    .bind(period.to_string())
    .fetch_all(conn)
    .await?;
    let mut sums = (0.0, 0.0, 0.0);
    for r in rows {
        let Some(sold) = r.try_get::<Option<i64>, _>("sold")? else { continue };
        let planned: i64 = r.try_get("planned")?;
        sums.0 += planned as f64 / 100.0;
        sums.1 += (planned - sold).abs() as f64 / 100.0;
        sums.2 += sold as f64 / 100.0;
    }
    Ok(sums)
}
