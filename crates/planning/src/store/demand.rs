//! Demand plans.

use chrono::NaiveDate;
use sightline_platform::db::{now_ms, Conditions, FilterValue};
use sqlx::{AnyConnection, Row as _};

use super::{date, dec, time};
use crate::model::DemandPlan;
use crate::page::PageRequest;

const COLUMNS: &str = "id, product_id, period, region, channel, forecast_qty, adjusted_qty, actual_qty, \
    consensus_qty, confidence, notes, status, created_by, approved_by, version, created_at, updated_at";

fn plan(r: &sqlx::any::AnyRow) -> Result<DemandPlan, sqlx::Error> {
    Ok(DemandPlan {
        product_id: r.try_get("product_id")?,
        period: date(r, "period")?,
        region: r.try_get("region")?,
        channel: r.try_get("channel")?,
        forecast_qty: dec(r, "forecast_qty")?.unwrap_or_default(),
        adjusted_qty: dec(r, "adjusted_qty")?,
        actual_qty: dec(r, "actual_qty")?,
        consensus_qty: dec(r, "consensus_qty")?,
        confidence: dec(r, "confidence")?,
        notes: r.try_get("notes")?,
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        approved_by: r.try_get("approved_by")?,
        version: r.try_get("version")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
        updated_at: time(r, "updated_at")?,
    })
}

/// Creates `p` (id and times set here); a taken (product, period, region, channel, version) is
/// a unique violation.
pub async fn insert(conn: &mut AnyConnection, p: &DemandPlan) -> Result<DemandPlan, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO planning_demand_plans (product_id, period, region, channel, forecast_qty, adjusted_qty, \
         actual_qty, consensus_qty, confidence, notes, status, created_by, approved_by, version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}"
    ))
    .bind(p.product_id)
    .bind(p.period.to_string())
    .bind(&p.region)
    .bind(&p.channel)
    .bind(p.forecast_qty.0)
    .bind(p.adjusted_qty.map(|d| d.0))
    .bind(p.actual_qty.map(|d| d.0))
    .bind(p.consensus_qty.map(|d| d.0))
    .bind(p.confidence.map(|d| d.0))
    .bind(p.notes.as_deref())
    .bind(&p.status)
    .bind(p.created_by.as_deref())
    .bind(p.approved_by.as_deref())
    .bind(p.version)
    .bind(now_ms())
    .fetch_one(conn)
    .await?;
    plan(&row)
}

/// Writes the changeable fields of `p` (quantities, notes, status, approver, version).
pub async fn update(conn: &mut AnyConnection, p: &DemandPlan) -> Result<DemandPlan, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE planning_demand_plans SET forecast_qty = $1, adjusted_qty = $2, actual_qty = $3, \
         consensus_qty = $4, confidence = $5, notes = $6, status = $7, approved_by = $8, version = $9, \
         updated_at = $10 WHERE id = $11 RETURNING {COLUMNS}"
    ))
    .bind(p.forecast_qty.0)
    .bind(p.adjusted_qty.map(|d| d.0))
    .bind(p.actual_qty.map(|d| d.0))
    .bind(p.consensus_qty.map(|d| d.0))
    .bind(p.confidence.map(|d| d.0))
    .bind(p.notes.as_deref())
    .bind(&p.status)
    .bind(p.approved_by.as_deref())
    .bind(p.version)
    .bind(now_ms())
    .bind(p.id)
    .fetch_one(conn)
    .await?;
    plan(&row)
}

/// One plan.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<DemandPlan>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_demand_plans WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(plan)
        .transpose()
}

/// Deletes one plan.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM planning_demand_plans WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// What a plan list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct DemandFilter {
    /// The product.
    pub product_id: Option<i64>,
    /// Exact region.
    pub region: Option<String>,
    /// Exact channel.
    pub channel: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Periods from (inclusive).
    pub period_from: Option<NaiveDate>,
    /// Periods to (inclusive).
    pub period_to: Option<NaiveDate>,
}

/// A page of plans, newest period first, and how many match.
pub async fn list(
    conn: &mut AnyConnection,
    f: &DemandFilter,
    page: PageRequest,
) -> Result<(Vec<DemandPlan>, i64), sqlx::Error> {
    let mut c = Conditions::default();
    if let Some(product) = f.product_id {
        c.bind(|n| format!("product_id = ${n}"), FilterValue::Int(product));
    }
    c.eq("region", f.region.as_deref()).eq("channel", f.channel.as_deref()).eq("status", f.status.as_deref());
    if let Some(from) = f.period_from {
        c.bind(|n| format!("period >= ${n}"), FilterValue::Text(from.to_string()));
    }
    if let Some(to) = f.period_to {
        c.bind(|n| format!("period <= ${n}"), FilterValue::Text(to.to_string()));
    }
    let total: i64 = c
        .apply(sqlx::query(&format!("SELECT COUNT(*) FROM planning_demand_plans{}", c.where_sql())))
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let n = c.next_placeholder();
    // The page's ids first (an index-only walk past the offset), then their rows.
    let sql = format!(
        "SELECT {COLUMNS} FROM planning_demand_plans WHERE id IN (SELECT id FROM planning_demand_plans{} \
         ORDER BY period DESC, id DESC LIMIT ${n} OFFSET ${}) ORDER BY period DESC, id DESC",
        c.where_sql(),
        n + 1
    );
    let rows = c.apply(sqlx::query(&sql)).bind(page.page_size).bind(page.offset()).fetch_all(conn).await?;
    Ok((rows.iter().map(plan).collect::<Result<_, _>>()?, total))
}

/// The plans of `period`, by id.
pub async fn of_period(conn: &mut AnyConnection, period: NaiveDate) -> Result<Vec<DemandPlan>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_demand_plans WHERE period = $1 ORDER BY id"))
        .bind(period.to_string())
        .fetch_all(conn)
        .await?
        .iter()
        .map(plan)
        .collect()
}

/// The newest version of the plan of `product_id`, `period`, `region`, `channel`, if any.
pub async fn newest_version(
    conn: &mut AnyConnection,
    product_id: i64,
    period: NaiveDate,
    region: &str,
    channel: &str,
) -> Result<Option<DemandPlan>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_demand_plans WHERE product_id = $1 AND period = $2 AND region = $3 \
         AND channel = $4 ORDER BY version DESC LIMIT 1"
    ))
    .bind(product_id)
    .bind(period.to_string())
    .bind(region)
    .bind(channel)
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(plan)
    .transpose()
}

/// Plans (every version) per status.
pub async fn status_counts(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query("SELECT status, COUNT(*) AS n FROM planning_demand_plans GROUP BY status")
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect()
}
