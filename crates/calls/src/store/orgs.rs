//! SQL of `calls_orgs`.

use sightline_platform::db::ms_to_rfc3339;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row as _};

use crate::model::Org;

const COLUMNS: &str =
    "id, org_id, name, node_persistent_id, timezone, is_active, excluded_numbers, created_at";

fn org(row: &AnyRow) -> Result<Org, sqlx::Error> {
    let excluded: String = row.try_get("excluded_numbers")?;
    Ok(Org {
        id: row.try_get("id")?,
        org_id: row.try_get("org_id")?,
        name: row.try_get("name")?,
        node_persistent_id: row.try_get("node_persistent_id")?,
        timezone: row.try_get("timezone")?,
        is_active: row.try_get::<i64, _>("is_active")? != 0,
        excluded_numbers: serde_json::from_str(&excluded).map_err(|e| sqlx::Error::Decode(e.into()))?,
        created_at: ms_to_rfc3339(row.try_get("created_at")?),
    })
}

/// Organisations ordered by name, only active ones when asked.
pub async fn list(conn: &mut AnyConnection, active_only: bool) -> Result<Vec<Org>, sqlx::Error> {
    let filter = if active_only { " WHERE is_active = 1" } else { "" };
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM calls_orgs{filter} ORDER BY name, org_id"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(org).collect()
}

/// One organisation.
pub async fn get(conn: &mut AnyConnection, org_id: &str) -> Result<Option<Org>, sqlx::Error> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM calls_orgs WHERE org_id = $1"))
        .bind(org_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(org).transpose()
}

/// Adds an organisation; `None` when its `org_id` is taken.
pub async fn insert(conn: &mut AnyConnection, new: &Org, now: i64) -> Result<Option<Org>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO calls_orgs (org_id, name, node_persistent_id, timezone, is_active, excluded_numbers, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (org_id) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&new.org_id)
    .bind(&new.name)
    .bind(&new.node_persistent_id)
    .bind(&new.timezone)
    .bind(i64::from(new.is_active))
    .bind(serde_json::to_string(&new.excluded_numbers).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(org).transpose()
}

/// Writes an organisation's changeable fields.
pub async fn update(conn: &mut AnyConnection, org: &Org, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE calls_orgs SET name = $1, node_persistent_id = $2, timezone = $3, is_active = $4, \
         excluded_numbers = $5, updated_at = $6 WHERE org_id = $7",
    )
    .bind(&org.name)
    .bind(&org.node_persistent_id)
    .bind(&org.timezone)
    .bind(i64::from(org.is_active))
    .bind(serde_json::to_string(&org.excluded_numbers).unwrap_or_else(|_| "[]".into()))
    .bind(now)
    .bind(&org.org_id)
    .execute(conn)
    .await?;
    Ok(())
}
