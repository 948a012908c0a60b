//! S&OP cycles.

use sightline_platform::db::now_ms;
use sqlx::{AnyConnection, Row as _};

use super::{date, optional_date, time};
use crate::model::SopCycle;
use crate::page::PageRequest;

const COLUMNS: &str = "id, cycle_name, period, step_1_due_date, step_1_owner_id, step_1_status, step_2_due_date, step_2_owner_id, step_2_status, step_3_due_date, step_3_owner_id, step_3_status, step_4_due_date, step_4_owner_id, step_4_status, step_5_due_date, step_5_owner_id, step_5_status, current_step, notes, decisions, action_items, overall_status, created_at, updated_at";

fn cycle(r: &sqlx::any::AnyRow) -> Result<SopCycle, sqlx::Error> {
    Ok(SopCycle {
        id: r.try_get("id")?,
        cycle_name: r.try_get("cycle_name")?,
        period: date(r, "period")?,
        step_1_due_date: optional_date(r, "step_1_due_date")?,
        step_1_owner_id: r.try_get("step_1_owner_id")?,
        step_1_status: r.try_get("step_1_status")?,
        step_2_due_date: optional_date(r, "step_2_due_date")?,
        step_2_owner_id: r.try_get("step_2_owner_id")?,
        step_2_status: r.try_get("step_2_status")?,
        step_3_due_date: optional_date(r, "step_3_due_date")?,
        step_3_owner_id: r.try_get("step_3_owner_id")?,
        step_3_status: r.try_get("step_3_status")?,
        step_4_due_date: optional_date(r, "step_4_due_date")?,
        step_4_owner_id: r.try_get("step_4_owner_id")?,
        step_4_status: r.try_get("step_4_status")?,
        step_5_due_date: optional_date(r, "step_5_due_date")?,
        step_5_owner_id: r.try_get("step_5_owner_id")?,
        step_5_status: r.try_get("step_5_status")?,
        current_step: r.try_get("current_step")?,
        notes: r.try_get("notes")?,
        decisions: r.try_get("decisions")?,
        action_items: r.try_get("action_items")?,
        overall_status: r.try_get("overall_status")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
        updated_at: time(r, "updated_at")?,
    })
}

/// Writes `c`: a new cycle when its id is 0 (answers the new id), else the one with its id.
pub async fn save(conn: &mut AnyConnection, c: &SopCycle) -> Result<i64, sqlx::Error> {
    let sql = if c.id == 0 {
        "INSERT INTO planning_sop_cycles (cycle_name, period, step_1_due_date, step_1_owner_id, step_1_status, step_2_due_date, step_2_owner_id, step_2_status, step_3_due_date, step_3_owner_id, step_3_status, step_4_due_date, step_4_owner_id, step_4_status, step_5_due_date, step_5_owner_id, step_5_status, current_step, notes, decisions, action_items, overall_status, updated_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24) RETURNING id"
    } else {
        "UPDATE planning_sop_cycles SET cycle_name = $1, period = $2, step_1_due_date = $3, step_1_owner_id = $4, step_1_status = $5, step_2_due_date = $6, step_2_owner_id = $7, step_2_status = $8, step_3_due_date = $9, step_3_owner_id = $10, step_3_status = $11, step_4_due_date = $12, step_4_owner_id = $13, step_4_status = $14, step_5_due_date = $15, step_5_owner_id = $16, step_5_status = $17, current_step = $18, notes = $19, decisions = $20, action_items = $21, overall_status = $22, updated_at = $23 WHERE id = $24 RETURNING id"
    };
    let now = now_ms();
    let query = sqlx::query(sql)
        .bind(c.cycle_name.as_str())
        .bind(c.period.to_string())
        .bind(c.step_1_due_date.map(|d| d.to_string()))
        .bind(c.step_1_owner_id.as_deref())
        .bind(c.step_1_status.as_str())
        .bind(c.step_2_due_date.map(|d| d.to_string()))
        .bind(c.step_2_owner_id.as_deref())
        .bind(c.step_2_status.as_str())
        .bind(c.step_3_due_date.map(|d| d.to_string()))
        .bind(c.step_3_owner_id.as_deref())
        .bind(c.step_3_status.as_str())
        .bind(c.step_4_due_date.map(|d| d.to_string()))
        .bind(c.step_4_owner_id.as_deref())
        .bind(c.step_4_status.as_str())
        .bind(c.step_5_due_date.map(|d| d.to_string()))
        .bind(c.step_5_owner_id.as_deref())
        .bind(c.step_5_status.as_str())
        .bind(c.current_step)
        .bind(c.notes.as_deref())
        .bind(c.decisions.as_deref())
        .bind(c.action_items.as_deref())
        .bind(c.overall_status.as_str())
        .bind(if c.id == 0 { None } else { Some(now) });
    let query = if c.id == 0 { query.bind(now) } else { query.bind(c.id) };
    query.fetch_one(conn).await?.try_get(0)
}

/// One cycle.
pub async fn get(conn: &mut AnyConnection, id: i64) -> Result<Option<SopCycle>, sqlx::Error> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM planning_sop_cycles WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(cycle)
        .transpose()
}

/// The active cycle of the latest period, if any.
pub async fn active(conn: &mut AnyConnection) -> Result<Option<SopCycle>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_sop_cycles WHERE overall_status = 'active' ORDER BY period DESC, id DESC LIMIT 1"
    ))
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(cycle)
    .transpose()
}

/// A page of cycles, latest period first, and how many there are.
pub async fn list(conn: &mut AnyConnection, page: PageRequest) -> Result<(Vec<SopCycle>, i64), sqlx::Error> {
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM planning_sop_cycles").fetch_one(&mut *conn).await?.try_get(0)?;
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM planning_sop_cycles ORDER BY period DESC, id DESC LIMIT $1 OFFSET $2"
    ))
    .bind(page.page_size)
    .bind(page.offset())
    .fetch_all(conn)
    .await?;
    Ok((rows.iter().map(cycle).collect::<Result<_, _>>()?, total))
}
