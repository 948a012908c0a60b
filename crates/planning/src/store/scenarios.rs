//! Scenarios (`planning_scenarios`) and their last run's product lines
//! (`planning_scenario_lines`).

use sightline_platform::db::now_ms;
use sqlx::{AnyConnection, Row as _};

use super::{dec, time};
use crate::model::{Scenario, ScenarioLine};
use crate::page::PageRequest;
use crate::scenario::{Figures, ProductLine};

const COLUMNS: &str = "id, name, description, scenario_type, parameters, results, revenue_impact, margin_impact, \
    inventory_impact, service_level_impact, status, created_by, approved_by, promoted_at, created_at, updated_at";

fn scenario(r: &sqlx::any::AnyRow) -> Result<Scenario, sqlx::Error> {
    Ok(Scenario {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        scenario_type: r.try_get("scenario_type")?,
        parameters: r.try_get("parameters")?,
        results: r.try_get("results")?,
        revenue_impact: dec(r, "revenue_impact")?,
        margin_impact: dec(r, "margin_impact")?,
        inventory_impact: dec(r, "inventory_impact")?,
        service_level_impact: dec(r, "service_level_impact")?,
        status: r.try_get("status")?,
        created_by: r.try_get("created_by")?,
        approved_by: r.try_get("approved_by")?,
        promoted_at: time(r, "promoted_at")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
        updated_at: time(r, "updated_at")?,
    })
}

/// Creates `s` (id and times set here); answers the stored scenario.
pub async fn insert(conn: &mut AnyConnection, s: &Scenario) -> Result<Scenario, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO planning_scenarios (name, description, scenario_type, parameters, status, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(&s.name)
    .bind(s.description.as_deref())
    .bind(&s.scenario_type)
    .bind(&s.parameters)
    .bind(&s.status)
    .bind(s.created_by.as_deref())
    .bind(now_ms())
    .fetch_one(conn)
    .await?;
    scenario(&row)
}

/// Marks the scenario promoted, unless it already is; answers whether this call did.
pub async fn claim_promotion(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE planning_scenarios SET promoted_at = $1 WHERE id = $2 AND promoted_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Writes every field of `s` but its id, creation and promotion; answers the stored scenario.
pub async fn update(conn: &mut AnyConnection, s: &Scenario) -> Result<Scenario, sqlx::Error> {
    let now = now_ms();
    let row = sqlx::query(&format!(
        "UPDATE planning_scenarios SET name = $1, description = $2, parameters = $3, results = $4, \
         revenue_impact = $5, margin_impact = $6, inventory_impact = $7, service_level_impact = $8, status = $9, \
         approved_by = $10, updated_at = $11 WHERE id = $12 RETURNING {COLUMNS}"
    ))
    .bind(&s.name)
    .bind(s.description.as_deref())
    .bind(&s.parameters)
    .bind(s.results.as_deref())
    .bind(s.revenue_impact.map(|d| d.0))
    .bind(s.margin_impact.map(|d| d.0))
    .bind(s.inventory_impact.map(|d| d.0))
    .bind(s.service_level_impact.map(|d| d.0))
    .bind(&s.status)
    .bind(s.approved_by.as_deref())
    .bind(now)
    .bind(s.id)
    .fetch_one(conn)
    .await?;
    scenario(&row)
}

/// One scenario.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<Scenario>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_scenarios WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(scenario)
        .transpose()
}

/// The scenarios of `ids` (at most a statement's worth) that exist, by id.
pub async fn many(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<Scenario>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM planning_scenarios WHERE id IN ({}) ORDER BY id",
        sightline_platform::db::placeholders(ids.len(), 1)
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(conn).await?.iter().map(scenario).collect()
}

/// The scenarios of status `status`, by id.
pub async fn with_status(conn: &mut AnyConnection, status: &str) -> Result<Vec<Scenario>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_scenarios WHERE status = $1 ORDER BY id"))
        .bind(status)
        .fetch_all(conn)
        .await?
        .iter()
        .map(scenario)
        .collect()
}

/// Deletes a scenario and its lines.
pub async fn delete(conn: &mut AnyConnection, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM planning_scenario_lines WHERE scenario_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM planning_scenarios WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}

/// A page of scenarios, newest first, and how many there are.
pub async fn list(conn: &mut AnyConnection, page: PageRequest) -> Result<(Vec<Scenario>, i64), sqlx::Error> {
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM planning_scenarios").fetch_one(&mut *conn).await?.try_get(0)?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_scenarios ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(page.page_size)
    .bind(page.offset())
    .fetch_all(conn)
    .await?;
    Ok((rows.iter().map(scenario).collect::<Result<_, _>>()?, total))
}

fn figures(text: &str) -> Result<Figures, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn text(f: &Figures) -> String {
    serde_json::to_string(f).expect("figures serialise")
}

/// Replaces the scenario's product lines with `lines`.
pub async fn replace_lines(
    conn: &mut AnyConnection,
    id: i64,
    lines: &[ProductLine],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM planning_scenario_lines WHERE scenario_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    for line in lines {
        sqlx::query(
            "INSERT INTO planning_scenario_lines (scenario_id, product_id, unit_cost, baseline, scenario) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(line.product_id)
        .bind(line.unit_cost)
        .bind(text(&line.baseline))
        .bind(text(&line.scenario))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The scenario's product lines, by product id, with the products' SKU, name and family.
pub async fn lines(conn: &mut AnyConnection, id: i64) -> Result<Vec<ScenarioLine>, sqlx::Error> {
    sqlx::query(
        "SELECT l.product_id, p.sku, p.name, p.product_family, l.unit_cost, l.baseline, l.scenario \
         FROM planning_scenario_lines l JOIN planning_products p ON p.id = l.product_id \
         WHERE l.scenario_id = $1 ORDER BY l.product_id",
    )
    .bind(id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ScenarioLine {
            product_id: r.try_get("product_id")?,
            sku: r.try_get("sku")?,
            name: r.try_get("name")?,
            product_family: r.try_get("product_family")?,
            unit_cost: r.try_get("unit_cost")?,
            baseline: figures(&r.try_get::<String, _>("baseline")?)?,
            scenario: figures(&r.try_get::<String, _>("scenario")?)?,
        })
    })
    .collect()
}

/// The latest month with a demand plan.
pub async fn latest_planned_period(
    conn: &mut AnyConnection,
) -> Result<Option<chrono::NaiveDate>, sqlx::Error> {
    let latest: Option<String> =
        sqlx::query("SELECT MAX(period) FROM planning_demand_plans").fetch_one(conn).await?.try_get(0)?;
    Ok(latest.and_then(|t| chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok()))
}

/// Each product's figures for `period` (see [`crate::scenario`]): the newest version of each
/// demand plan (per region and channel) and supply plan (per location), and the stock at every
/// location. Products with none of them are left out.
pub async fn inputs(
    conn: &mut AnyConnection,
    period: chrono::NaiveDate,
) -> Result<Vec<crate::scenario::ProductInputs>, sqlx::Error> {
    use std::collections::BTreeMap;
    let period = period.to_string();
    let sums = |sql: &'static str| sqlx::query(sql).bind(period.clone());
    let mut by_product: BTreeMap<i64, [i64; 4]> = BTreeMap::new();
    let demand = sums(
        "SELECT product_id, CAST(SUM(COALESCE(consensus_qty, adjusted_qty, forecast_qty)) AS BIGINT) AS q \
         FROM planning_demand_plans d WHERE period = $1 AND version = (SELECT MAX(version) FROM \
         planning_demand_plans x WHERE x.product_id = d.product_id AND x.period = d.period \
         AND x.region = d.region AND x.channel = d.channel) GROUP BY product_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let supply = sums(
        "SELECT product_id, CAST(SUM(COALESCE(planned_prod_qty, 0)) AS BIGINT) AS q FROM planning_supply_plans s \
         WHERE period = $1 AND version = (SELECT MAX(version) FROM planning_supply_plans x \
         WHERE x.product_id = s.product_id AND x.period = s.period AND x.location = s.location) GROUP BY product_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for (slot, rows) in [(0, demand), (1, supply)] {
        for r in rows {
            by_product.entry(r.try_get("product_id")?).or_default()[slot] =
                r.try_get::<Option<i64>, _>("q")?.unwrap_or(0);
        }
    }
    let stock = sqlx::query(
        "SELECT product_id, CAST(SUM(CASE WHEN on_hand_qty - allocated_qty + in_transit_qty > 0 \
         THEN on_hand_qty - allocated_qty + in_transit_qty ELSE 0 END) AS BIGINT) AS available, \
         CAST(SUM(on_hand_qty) AS BIGINT) AS on_hand FROM planning_inventory GROUP BY product_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    for r in stock {
        let entry = by_product.entry(r.try_get("product_id")?).or_default();
        entry[2] = r.try_get::<Option<i64>, _>("available")?.unwrap_or(0);
        entry[3] = r.try_get::<Option<i64>, _>("on_hand")?.unwrap_or(0);
    }
    let products = sqlx::query(
        "SELECT id, sku, product_family, category_id, selling_price, unit_cost FROM planning_products ORDER BY id",
    )
    .fetch_all(conn)
    .await?;
    let hundredths = |v: i64| v as f64 / 100.0;
    let mut inputs = Vec::with_capacity(by_product.len());
    for r in products {
        let id: i64 = r.try_get("id")?;
        let Some([demand, supply, available, on_hand]) = by_product.get(&id).copied() else { continue };
        let cost = dec(&r, "unit_cost")?.map_or(0.0, |d| d.to_f64());
        inputs.push(crate::scenario::ProductInputs {
            product_id: id,
            sku: r.try_get("sku")?,
            product_family: r.try_get("product_family")?,
            category_id: r.try_get("category_id")?,
            price: dec(&r, "selling_price")?.map_or(0.0, |d| d.to_f64()),
            cost,
            demand: hundredths(demand),
            supply: hundredths(supply),
            available: hundredths(available),
            value: hundredths(on_hand) * cost,
        });
    }
    Ok(inputs)
}

/// Whether some product is in `family`.
pub async fn family_exists(conn: &mut AnyConnection, family: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM planning_products WHERE product_family = $1 LIMIT 1")
        .bind(family)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Whether category `id` exists.
pub async fn category_exists(conn: &mut AnyConnection, id: i64) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM planning_categories WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .is_some())
}
