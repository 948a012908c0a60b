//! Categories and products.

use sightline_platform::db::{now_ms, Conditions, FilterValue};
use sqlx::{AnyConnection, Row as _};

use super::{dec, time};
use crate::model::{Category, Product};
use crate::page::PageRequest;

/// A category to create.
#[derive(Debug, Clone)]
pub struct NewCategory {
    /// Name.
    pub name: String,
    /// Parent.
    pub parent_id: Option<i64>,
    /// Depth.
    pub level: i64,
    /// Free text.
    pub description: Option<String>,
}

/// Creates a category.
pub async fn insert_category(conn: &mut AnyConnection, c: &NewCategory) -> Result<Category, sqlx::Error> {
    let now = now_ms();
    let id: i64 = sqlx::query(
        "INSERT INTO planning_categories (name, parent_id, level, description, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&c.name)
    .bind(c.parent_id)
    .bind(c.level)
    .bind(c.description.as_deref())
    .bind(now)
    .fetch_one(conn)
    .await?
    .try_get(0)?;
    Ok(Category {
        name: c.name.clone(),
        parent_id: c.parent_id,
        level: c.level,
        description: c.description.clone(),
        id,
        created_at: crate::model::naive_time(now),
    })
}

/// Every category, by id.
pub async fn categories(conn: &mut AnyConnection) -> Result<Vec<Category>, sqlx::Error> {
    sqlx::query(
        "SELECT id, name, parent_id, level, description, created_at FROM planning_categories ORDER BY id",
    )
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(Category {
            name: r.try_get("name")?,
            parent_id: r.try_get("parent_id")?,
            level: r.try_get("level")?,
            description: r.try_get("description")?,
            id: r.try_get("id")?,
            created_at: time(r, "created_at")?.unwrap_or_default(),
        })
    })
    .collect()
}

/// A category's id by name, if there is one.
pub async fn category_by_name(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query("SELECT id FROM planning_categories WHERE name = $1 ORDER BY id LIMIT 1")
        .bind(name)
        .fetch_optional(conn)
        .await?
        .map(|r| r.try_get(0))
        .transpose()
}

const PRODUCT_COLUMNS: &str = "id, sku, name, description, category_id, product_family, unit_of_measure, \
    unit_cost, selling_price, lead_time_days, min_order_qty, status, created_at, updated_at";

fn product(r: &sqlx::any::AnyRow) -> Result<Product, sqlx::Error> {
    Ok(Product {
        sku: r.try_get("sku")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        category_id: r.try_get("category_id")?,
        product_family: r.try_get("product_family")?,
        unit_of_measure: r.try_get("unit_of_measure")?,
        unit_cost: dec(r, "unit_cost")?,
        selling_price: dec(r, "selling_price")?,
        lead_time_days: r.try_get("lead_time_days")?,
        min_order_qty: r.try_get("min_order_qty")?,
        status: r.try_get("status")?,
        id: r.try_get("id")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
        updated_at: time(r, "updated_at")?,
    })
}

/// Creates `p` (its `id` and times are set here); a taken SKU is a unique violation.
pub async fn insert_product(conn: &mut AnyConnection, p: &Product) -> Result<Product, sqlx::Error> {
    let now = now_ms();
    let row = sqlx::query(&format!(
        "INSERT INTO planning_products (sku, name, description, category_id, product_family, unit_of_measure, \
         unit_cost, selling_price, lead_time_days, min_order_qty, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(&p.sku)
    .bind(&p.name)
    .bind(p.description.as_deref())
    .bind(p.category_id)
    .bind(p.product_family.as_deref())
    .bind(&p.unit_of_measure)
    .bind(p.unit_cost.map(|d| d.0))
    .bind(p.selling_price.map(|d| d.0))
    .bind(p.lead_time_days)
    .bind(p.min_order_qty)
    .bind(&p.status)
    .bind(now)
    .fetch_one(conn)
    .await?;
    product(&row)
}

/// Writes every field of `p` but its SKU, id and creation time.
pub async fn update_product(conn: &mut AnyConnection, p: &Product) -> Result<Product, sqlx::Error> {
    let row = sqlx::query(&format!(
        "UPDATE planning_products SET name = $1, description = $2, category_id = $3, product_family = $4, \
         unit_of_measure = $5, unit_cost = $6, selling_price = $7, lead_time_days = $8, min_order_qty = $9, \
         status = $10, updated_at = $11 WHERE id = $12 RETURNING {PRODUCT_COLUMNS}"
    ))
    .bind(&p.name)
    .bind(p.description.as_deref())
    .bind(p.category_id)
    .bind(p.product_family.as_deref())
    .bind(&p.unit_of_measure)
    .bind(p.unit_cost.map(|d| d.0))
    .bind(p.selling_price.map(|d| d.0))
    .bind(p.lead_time_days)
    .bind(p.min_order_qty)
    .bind(&p.status)
    .bind(now_ms())
    .bind(p.id)
    .fetch_one(conn)
    .await?;
    product(&row)
}

/// One product.
pub async fn product_by_id(conn: &mut AnyConnection, id: i64) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM planning_products WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(product)
        .transpose()
}

/// One product by SKU.
pub async fn product_by_sku(conn: &mut AnyConnection, sku: &str) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query(&format!("SELECT {PRODUCT_COLUMNS} FROM planning_products WHERE sku = $1"))
        .bind(sku)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(product)
        .transpose()
}

/// What a product list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct ProductFilter {
    /// Exact status.
    pub status: Option<String>,
    /// Exact category.
    pub category_id: Option<i64>,
    /// Part of the name or SKU, any case.
    pub search: Option<String>,
}

/// A page of products (by id) and how many match.
pub async fn list_products(
    conn: &mut AnyConnection,
    filter: &ProductFilter,
    page: PageRequest,
) -> Result<(Vec<Product>, i64), sqlx::Error> {
    let mut c = Conditions::default();
    c.eq("status", filter.status.as_deref());
    if let Some(category) = filter.category_id {
        c.bind(|n| format!("category_id = ${n}"), FilterValue::Int(category));
    }
    if let Some(search) = &filter.search {
        let pattern = format!(
            "%{}%",
            search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        c.bind(
            |n| format!("(LOWER(name) LIKE ${n} ESCAPE '\\' OR LOWER(sku) LIKE ${n} ESCAPE '\\')"),
            FilterValue::Text(pattern),
        );
    }
    let total: i64 = c
        .apply(sqlx::query(&format!("SELECT COUNT(*) FROM planning_products{}", c.where_sql())))
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    let n = c.next_placeholder();
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM planning_products{} ORDER BY id LIMIT ${n} OFFSET ${}",
        c.where_sql(),
        n + 1
    );
    let rows = c.apply(sqlx::query(&sql)).bind(page.page_size).bind(page.offset()).fetch_all(conn).await?;
    Ok((rows.iter().map(product).collect::<Result<_, _>>()?, total))
}
