//! Supply plans.

use chrono::NaiveDate;
use sightline_platform::db::{now_ms, Conditions, FilterValue};
use sqlx::{AnyConnection, Row as _};

use super::{date, dec, time};
use crate::model::SupplyPlan;
use crate::page::PageRequest;

const COLUMNS: &str = "id, product_id, period, location, planned_prod_qty, actual_prod_qty, capacity_max, \
    capacity_used, supplier_name, lead_time_days, cost_per_unit, constraints, status, created_by, version, \
    created_at, updated_at";

fn plan(r: &sqlx::any::AnyRow) -> Result<SupplyPlan, sqlx::Error> {
    Ok(SupplyPlan {
        product_id: r.try_get("product_id")?,
        period: date(r, "period")?,
        location: r.try_get("location")?,
        planned_prod_qty: dec(r, "planned_prod_qty")?,
        actual_prod_qty: dec(r, "actual_prod_qty")?,
        capacity_max: dec(r, "capacity_max")?,
        capacity_used: dec(r, "capacity_used")?,
        supplier_name: r.try_get("supplier_name")?,
        lead_time_days: r.try_get("lead_time_days")?,
        cost_per_unit: dec(r, "cost_per_unit")?,
        constraints: r.try_get("constraints")?,
        id: r.try_get("id")?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        version: r.try_get("version")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
        updated_at: time(r, "updated_at")?,
    })
}

/// Creates `p` (id and times set here).
pub async fn insert(conn: &mut AnyConnection, p: &SupplyPlan) -> Result<SupplyPlan, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO planning_supply_plans (product_id, period, location, planned_prod_qty, actual_prod_qty, \
         capacity_max, capacity_used, supplier_name, lead_time_days, cost_per_unit, constraints, status, \
         created_by, version, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}"
    ))
    .bind(p.product_id)
    .bind(p.period.to_string())
    .bind(&p.location)
    .bind(p.planned_prod_qty.map(|d| d.0))
    .bind(p.actual_prod_qty.map(|d| d.0))
    .bind(p.capacity_max.map(|d| d.0))
    .bind(p.capacity_used.map(|d| d.0))
    .bind(p.supplier_name.as_deref())
    .bind(p.lead_time_days)
    .bind(p.cost_per_unit.map(|d| d.0))
    .bind(p.constraints.as_deref())
    .bind(&p.status)
    .bind(p.created_by.as_deref())
    .bind(p.version)
    .bind(now_ms())
    .fetch_one(conn)
    .await?;
    plan(&row)
}

/// Writes the changeable fields of `p`.
pub async fn update(conn: &mut AnyConnection, p: &SupplyPlan) -> Result<SupplyPlan, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE planning_supply_plans SET planned_prod_qty = $1, actual_prod_qty = $2, capacity_max = $3, \
         capacity_used = $4, supplier_name = $5, lead_time_days = $6, cost_per_unit = $7, constraints = $8, \
         status = $9, version = $10, updated_at = $11 WHERE id = $12 RETURNING {COLUMNS}"
    ))
    .bind(p.planned_prod_qty.map(|d| d.0))
    .bind(p.actual_prod_qty.map(|d| d.0))
    .bind(p.capacity_max.map(|d| d.0))
    .bind(p.capacity_used.map(|d| d.0))
    .bind(p.supplier_name.as_deref())
    .bind(p.lead_time_days)
    .bind(p.cost_per_unit.map(|d| d.0))
    .bind(p.constraints.as_deref())
    .bind(&p.status)
    .bind(p.version)
    .bind(now_ms())
    .bind(p.id)
    .fetch_one(conn)
    .await?;
    plan(&row)
}

/// One plan.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<SupplyPlan>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_supply_plans WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(plan)
        .transpose()
}

/// Deletes one plan.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM planning_supply_plans WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// What a plan list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct SupplyFilter {
    /// The product.
    pub product_id: Option<i64>,
    /// Exact location.
    pub location: Option<String>,
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
    f: &SupplyFilter,
    page: PageRequest,
) -> Result<(Vec<SupplyPlan>, i64), sqlx::Error> {
    let mut c = Conditions::default();
    if let Some(product) = f.product_id {
        c.bind(|n| format!("product_id = ${n}"), FilterValue::Int(product));
    }
    c.eq("location", f.location.as_deref()).eq("status", f.status.as_deref());
    if let Some(from) = f.period_from {
        c.bind(|n| format!("period >= ${n}"), FilterValue::Text(from.to_string()));
    }
    if let Some(to) = f.period_to {
        c.bind(|n| format!("period <= ${n}"), FilterValue::Text(to.to_string()));
    }
    let total: i64 = c
        .apply(sqlx::query(&format!("SELECT COUNT(*) FROM planning_supply_plans{}", c.where_sql())))
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let n = c.next_placeholder();
    // The page's ids first (an index-only walk past the offset), then their rows.
    let sql = format!(
        "SELECT {COLUMNS} FROM planning_supply_plans WHERE id IN (SELECT id FROM planning_supply_plans{} \
         ORDER BY period DESC, id DESC LIMIT ${n} OFFSET ${}) ORDER BY period DESC, id DESC",
        c.where_sql(),
        n + 1
    );
    let rows = c.apply(sqlx::query(&sql)).bind(page.page_size).bind(page.offset()).fetch_all(conn).await?;
    Ok((rows.iter().map(plan).collect::<Result<_, _>>()?, total))
}

/// The plans of `period`, by id.
pub async fn of_period(conn: &mut AnyConnection, period: NaiveDate) -> Result<Vec<SupplyPlan>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_supply_plans WHERE period = $1 ORDER BY id"))
        .bind(period.to_string())
        .fetch_all(conn)
        .await?
        .iter()
        .map(plan)
        .collect()
}

/// The lead time of the product's newest supply plan that has one.
pub async fn newest_lead_time(conn: &mut AnyConnection, product_id: i64) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query(
        "SELECT lead_time_days FROM planning_supply_plans WHERE product_id = $1 AND lead_time_days IS NOT NULL \
         ORDER BY period DESC, id DESC LIMIT 1",
    )
    .bind(product_id)
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get(0))
    .transpose()
}
