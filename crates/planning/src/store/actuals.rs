//! Demand history: what each product sold in each period, region and channel.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sightline_platform::db::now_ms;
use sqlx::{AnyConnection, Row as _};

use crate::decimal::Dec2;

/// Sets what `product_id` sold in `period`, `region`, `channel` (again: replaced).
pub async fn upsert(
    conn: &mut AnyConnection,
    product_id: i64,
    period: NaiveDate,
    region: &str,
    channel: &str,
    qty: Dec2,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO planning_demand_actuals (product_id, period, region, channel, actual_qty, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (product_id, period, region, channel) \
         DO UPDATE SET actual_qty = excluded.actual_qty, updated_at = excluded.updated_at",
    )
    .bind(product_id)
    .bind(period.to_string())
    .bind(region)
    .bind(channel)
    .bind(qty.0)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

/// Each product's demand per period (all regions and channels), periods in order; only
/// `products` when given.
pub async fn monthly(
    conn: &mut AnyConnection,
    products: Option<&[i64]>,
) -> Result<BTreeMap<i64, Vec<(NaiveDate, Dec2)>>, sqlx::Error> {
    let mut sql = String::from(
        "SELECT product_id, period, CAST(SUM(actual_qty) AS BIGINT) AS qty FROM planning_demand_actuals",
    );
    if let Some(ids) = products {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        sql.push_str(&format!(
            " WHERE product_id IN ({})",
            sightline_platform::db::placeholders(ids.len(), 1)
        ));
    }
    sql.push_str(" GROUP BY product_id, period ORDER BY product_id, period");
    let mut query = sqlx::query(&sql);
    for id in products.unwrap_or_default() {
        query = query.bind(*id);
    }
    let mut out: BTreeMap<i64, Vec<(NaiveDate, Dec2)>> = BTreeMap::new();
    for row in query.fetch_all(conn).await? {
        let period = super::date(&row, "period")?;
        out.entry(row.try_get("product_id")?).or_default().push((period, Dec2(row.try_get("qty")?)));
    }
    Ok(out)
}

/// What `product_id` sold in `period`, `region`, `channel`, if recorded.
pub async fn get(
    conn: &mut AnyConnection,
    product_id: i64,
    period: NaiveDate,
    region: &str,
    channel: &str,
) -> Result<Option<Dec2>, sqlx::Error> {
    sqlx::query(
        "SELECT actual_qty FROM planning_demand_actuals WHERE product_id = $1 AND period = $2 AND region = $3 \
         AND channel = $4",
    )
    .bind(product_id)
    .bind(period.to_string())
    .bind(region)
    .bind(channel)
    .fetch_optional(conn)
    .await?
    .map(|r| r.try_get(0).map(Dec2))
    .transpose()
}
