//! `usage_job_days`: the days an import touched, whose daily figures it still has to recompute.

use std::collections::HashSet;

use sightline_platform::db::{backend_of, placeholders, rows_per_statement};
use sqlx::{AnyConnection, Row};

/// Notes that the import touched `dates` (their aggregates are recomputed at the end).
pub async fn add_days(
    conn: &mut AnyConnection,
    job_id: &str,
    dates: &HashSet<&str>,
) -> Result<(), sqlx::Error> {
    let dates: Vec<&&str> = dates.iter().collect();
    for chunk in dates.chunks(rows_per_statement(2)) {
        let sql = format!(
            "INSERT INTO usage_job_days (job_id, date) VALUES {} ON CONFLICT DO NOTHING",
            backend_of(conn).sequential_rows(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for d in chunk {
            q = q.bind(job_id).bind(**d);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Notes every day that has aggregates in `regions` (their utilisation changes with the users).
pub async fn add_region_days(
    conn: &mut AnyConnection,
    job_id: &str,
    regions: &HashSet<String>,
) -> Result<(), sqlx::Error> {
    let regions: Vec<&String> = regions.iter().collect();
    for chunk in regions.chunks(rows_per_statement(1)) {
        let sql = format!(
            "INSERT INTO usage_job_days (job_id, date) SELECT DISTINCT CAST($1 AS TEXT), date FROM usage_daily_metrics \
             WHERE region IN ({}) ON CONFLICT DO NOTHING",
            placeholders(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(job_id);
        for r in chunk {
            q = q.bind(r.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Days still to recompute for a job, in order.
pub async fn pending_days(conn: &mut AnyConnection, job_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT date FROM usage_job_days WHERE job_id = $1 ORDER BY date")
        .bind(job_id)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Records that `dates` were recomputed.
pub async fn finish_days(
    conn: &mut AnyConnection,
    job_id: &str,
    dates: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    for chunk in dates.chunks(rows_per_statement(1)) {
        let sql = format!(
            "DELETE FROM usage_job_days WHERE job_id = $1 AND date IN ({})",
            placeholders(chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql).bind(job_id);
        for d in chunk {
            q = q.bind(d.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    sqlx::query("UPDATE usage_jobs SET days_done = days_done + $1, updated_at = $2 WHERE id = $3")
        .bind(dates.len() as i64)
        .bind(now)
        .bind(job_id)
        .execute(conn)
        .await?;
    Ok(())
}
