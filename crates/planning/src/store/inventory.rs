//! Inventory positions. Days of supply and valuation are not stored: the service computes them
//! from demand history and unit costs when it answers.

use sightline_platform::db::{now_ms, Conditions, FilterValue};
use sqlx::{AnyConnection, Row as _};

use super::{dec, optional_date, time};
use crate::decimal::Dec2;
use crate::model::Inventory;
use crate::page::PageRequest;

const COLUMNS: &str = "i.id, i.product_id, i.location, i.on_hand_qty, i.allocated_qty, i.in_transit_qty, \
    i.safety_stock, i.reorder_point, i.max_stock, i.last_receipt_date, i.last_issue_date, i.status, i.updated_at, \
    p.unit_cost";

/// A position and its product's unit cost.
fn position(r: &sqlx::any::AnyRow) -> Result<(Inventory, Option<Dec2>), sqlx::Error> {
    Ok((
        Inventory {
            product_id: r.try_get("product_id")?,
            location: r.try_get("location")?,
            on_hand_qty: Dec2(r.try_get("on_hand_qty")?),
            allocated_qty: Dec2(r.try_get("allocated_qty")?),
            in_transit_qty: Dec2(r.try_get("in_transit_qty")?),
            safety_stock: Dec2(r.try_get("safety_stock")?),
            reorder_point: Dec2(r.try_get("reorder_point")?),
            max_stock: dec(r, "max_stock")?,
            days_of_supply: None,
            last_receipt_date: optional_date(r, "last_receipt_date")?,
            last_issue_date: optional_date(r, "last_issue_date")?,
            valuation: None,
            status: r.try_get("status")?,
            id: r.try_get("id")?,
            updated_at: time(r, "updated_at")?,
        },
        dec(r, "unit_cost")?,
    ))
}

const FROM: &str = "FROM planning_inventory i LEFT JOIN planning_products p ON p.id = i.product_id";

/// One position with its product's unit cost.
pub async fn get(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<(Inventory, Option<Dec2>)>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(position)
        .transpose()
}

/// The position of `product_id` at `location`, if there is one.
pub async fn find(
    conn: &mut AnyConnection,
    product_id: i64,
    location: &str,
) -> Result<Option<(Inventory, Option<Dec2>)>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} {FROM} WHERE i.product_id = $1 AND i.location = $2"))
        .bind(product_id)
        .bind(location)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(position)
        .transpose()
}

/// What an inventory list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct InventoryFilter {
    /// The product.
    pub product_id: Option<i64>,
    /// Exact location.
    pub location: Option<String>,
    /// Exact status (or any of several).
    pub statuses: Vec<String>,
}

fn conditions(f: &InventoryFilter) -> Conditions {
    let mut c = Conditions::default();
    if let Some(product) = f.product_id {
        c.bind(|n| format!("i.product_id = ${n}"), FilterValue::Int(product));
    }
    c.eq("i.location", f.location.as_deref()).any_of("i.status", &f.statuses);
    c
}

/// A page of positions (by id) with their unit costs, and how many match.
pub async fn list(
    conn: &mut AnyConnection,
    f: &InventoryFilter,
    page: PageRequest,
) -> Result<(Vec<(Inventory, Option<Dec2>)>, i64), sqlx::Error> {
    let c = conditions(f);
    // Filters name only the positions' columns: counted and paged without the join.
    let total: i64 = c
        .apply(sqlx::query(&format!("SELECT COUNT(*) FROM planning_inventory i{}", c.where_sql())))
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let n = c.next_placeholder();
    let sql = format!(
        "SELECT {COLUMNS} {FROM} WHERE i.id IN (SELECT i.id FROM planning_inventory i{} ORDER BY i.id \
         LIMIT ${n} OFFSET ${}) ORDER BY i.id",
        c.where_sql(),
        n + 1
    );
    let rows = c.apply(sqlx::query(&sql)).bind(page.page_size).bind(page.offset()).fetch_all(conn).await?;
    Ok((rows.iter().map(position).collect::<Result<_, _>>()?, total))
}

/// Every position matching `f` (by id), with unit costs.
pub async fn all(
    conn: &mut AnyConnection,
    f: &InventoryFilter,
) -> Result<Vec<(Inventory, Option<Dec2>)>, sqlx::Error> {
    let c = conditions(f);
    let sql = format!("SELECT {COLUMNS} {FROM}{} ORDER BY i.id", c.where_sql());
    c.apply(sqlx::query(&sql)).fetch_all(conn).await?.iter().map(position).collect()
}

/// Writes `p` (a new position when its id is 0, else the one with its id); answers its id.
pub async fn save(conn: &mut AnyConnection, p: &Inventory) -> Result<i64, sqlx::Error> {
    let sql = if p.id == 0 {
        "INSERT INTO planning_inventory (on_hand_qty, allocated_qty, in_transit_qty, safety_stock, \
         reorder_point, max_stock, last_receipt_date, last_issue_date, status, updated_at, product_id, location) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id"
    } else {
        "UPDATE planning_inventory SET on_hand_qty = $1, allocated_qty = $2, in_transit_qty = $3, \
         safety_stock = $4, reorder_point = $5, max_stock = $6, last_receipt_date = $7, last_issue_date = $8, \
         status = $9, updated_at = $10 WHERE id = $11"
    };
    let query = sqlx::query(sql)
        .bind(p.on_hand_qty.0)
        .bind(p.allocated_qty.0)
        .bind(p.in_transit_qty.0)
        .bind(p.safety_stock.0)
        .bind(p.reorder_point.0)
        .bind(p.max_stock.map(|d| d.0))
        .bind(p.last_receipt_date.map(|d| d.to_string()))
        .bind(p.last_issue_date.map(|d| d.to_string()))
        .bind(p.status.as_str())
        .bind(now_ms());
    if p.id == 0 {
        return query.bind(p.product_id).bind(p.location.as_str()).fetch_one(conn).await?.try_get(0);
    }
    query.bind(p.id).execute(conn).await?;
    Ok(p.id)
}

/// Positions per stored status.
pub async fn status_counts(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query("SELECT status, COUNT(*) AS n FROM planning_inventory GROUP BY status")
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
        .collect()
}

/// Positions low or critical with nothing in transit: a reorder is due and none is placed.
pub async fn reorders_due(conn: &mut AnyConnection) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "SELECT COUNT(*) FROM planning_inventory WHERE status IN ('low', 'critical') AND in_transit_qty = 0",
    )
    .fetch_one(conn)
    .await?
    .try_get(0)
}
