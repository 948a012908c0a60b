//! The three daily tables (`usage_daily_model_metrics`, `usage_daily_company_metrics`,
//! `usage_daily_metrics`), recomputed from `usage_transactions` for whole days by the formulas of
//! [`crate::aggregate`].
//!
//! A group of days is read once: its rows are summed per conversation (day, region, company,
//! model, conversation, user) into a connection-local scratch table about five times smaller than
//! the rows, and the three tables' rows are derived from that ([`compute`]). Distinct counts stay
//! exact because a conversation's figures are kept apart per model and company. Writing them
//! ([`store`]) is a separate step, so an import can compute two groups at once on two reading
//! connections while its write transaction holds the days (see [`crate::import`]).

use std::collections::HashMap;

use sightline_platform::db::{backend_of, placeholders, rows_per_statement, rows_where_in, Backend};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::aggregate::{Cell, DayFigures};

/// How many days one computation reads at once (and so the most an `IN` list binds).
pub const DAYS_PER_RECOMPUTE: usize = 31;

const SCRATCH_COLUMNS: &str = "date TEXT NOT NULL, region TEXT NOT NULL, company TEXT NOT NULL, \
     model_name TEXT NOT NULL, conversation_id TEXT NOT NULL, user_id TEXT NOT NULL, \
     cost DOUBLE PRECISION NOT NULL, n BIGINT NOT NULL, tokens BIGINT NOT NULL, \
     prompt BIGINT NOT NULL, completion BIGINT NOT NULL";

/// The SQL type of a computed column.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Real,
}

/// One daily table: its name, columns (without `updated_at`) and the query computing its rows
/// from the scratch table.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    query: &'static str,
}

use Kind::{Int, Real, Text};

const TABLES: [Table; 3] = [
    Table {
        name: "usage_daily_model_metrics",
        columns: &[
            ("date", Text),
            ("region", Text),
            ("model_name", Text),
            ("total_cost", Real),
            ("conversation_count", Int),
            ("token_consumption", Int),
            ("transaction_count", Int),
        ],
        query: "SELECT date, region, model_name, CAST(SUM(cost) AS DOUBLE PRECISION), \
            COUNT(DISTINCT conversation_id), CAST(SUM(tokens) AS BIGINT), CAST(SUM(n) AS BIGINT) \
            FROM usage_day_conversations GROUP BY date, region, model_name",
    },
    Table {
        name: "usage_daily_company_metrics",
        columns: &[
            ("date", Text),
            ("region", Text),
            ("company_name", Text),
            ("highest_used_model", Text),
            ("least_used_model", Text),
            ("total_cost", Real),
            ("conversation_count", Int),
        ],
        query: "WITH per_model AS ( \
                SELECT date, region, company, model_name, COUNT(DISTINCT conversation_id) AS conversations \
                FROM usage_day_conversations GROUP BY date, region, company, model_name), \
            ranked AS ( \
                SELECT date, region, company, model_name, \
                ROW_NUMBER() OVER (PARTITION BY date, region, company \
                    ORDER BY conversations DESC, model_name) AS most, \
                ROW_NUMBER() OVER (PARTITION BY date, region, company ORDER BY conversations, model_name) AS least \
                FROM per_model), \
            picks AS ( \
                SELECT date, region, company, MAX(CASE WHEN most = 1 THEN model_name END) AS highest, \
                MAX(CASE WHEN least = 1 THEN model_name END) AS least \
                FROM ranked GROUP BY date, region, company), \
            totals AS ( \
                SELECT date, region, company, SUM(cost) AS cost, COUNT(DISTINCT conversation_id) AS conversations \
                FROM usage_day_conversations GROUP BY date, region, company) \
            SELECT t.date, t.region, t.company, p.highest, p.least, CAST(t.cost AS DOUBLE PRECISION), \
                t.conversations \
            FROM totals t JOIN picks p ON p.date = t.date AND p.region = t.region AND p.company = t.company",
    },
    Table {
        name: "usage_daily_metrics",
        columns: &[
            ("date", Text),
            ("region", Text),
            ("highest_model_used", Text),
            ("avg_spending", Real),
            ("costliest_model", Text),
            ("least_used_model", Text),
            ("avg_token_consumption", Real),
            ("total_prompt_tokens", Int),
            ("total_completion_tokens", Int),
            ("active_subscriber_utilization_rate", Real),
            ("total_cost", Real),
            ("total_conversations", Int),
            ("transaction_count", Int),
            ("active_users", Int),
            ("active_subscribers", Int),
        ],
        query: "WITH totals AS ( \
                SELECT date, region, SUM(cost) AS cost, SUM(n) AS n, \
                COUNT(DISTINCT conversation_id) AS conversations, SUM(prompt) AS prompt, \
                SUM(completion) AS completion \
                FROM usage_day_conversations GROUP BY date, region), \
            per_model AS ( \
                SELECT date, region, model_name, SUM(cost) AS cost, \
                COUNT(DISTINCT conversation_id) AS conversations \
                FROM usage_day_conversations GROUP BY date, region, model_name), \
            ranked AS ( \
                SELECT date, region, model_name, \
                ROW_NUMBER() OVER (PARTITION BY date, region ORDER BY conversations DESC, model_name) AS most, \
                ROW_NUMBER() OVER (PARTITION BY date, region ORDER BY conversations, model_name) AS least, \
                ROW_NUMBER() OVER (PARTITION BY date, region ORDER BY cost DESC, model_name) AS costliest \
                FROM per_model), \
            picks AS ( \
                SELECT date, region, MAX(CASE WHEN most = 1 THEN model_name END) AS highest, \
                MAX(CASE WHEN least = 1 THEN model_name END) AS least, \
                MAX(CASE WHEN costliest = 1 THEN model_name END) AS costliest \
                FROM ranked GROUP BY date, region), \
            active AS ( \
                SELECT c.date, c.region, COUNT(DISTINCT c.user_id) AS users FROM usage_day_conversations c \
                JOIN usage_users u ON u.id = c.user_id WHERE u.is_active_sub = 1 GROUP BY c.date, c.region), \
            subscribers AS ( \
                SELECT region, COUNT(*) AS users FROM usage_users WHERE is_active_sub = 1 GROUP BY region) \
            SELECT t.date, t.region, p.highest, CAST(t.cost / t.n AS DOUBLE PRECISION), p.costliest, p.least, \
                CAST(t.prompt + t.completion AS DOUBLE PRECISION) / t.conversations, \
                CAST(t.prompt AS BIGINT), CAST(t.completion AS BIGINT), \
                CASE WHEN COALESCE(s.users, 0) = 0 THEN 0.0 \
                     ELSE CAST(COALESCE(a.users, 0) AS DOUBLE PRECISION) / s.users END, \
                CAST(t.cost AS DOUBLE PRECISION), t.conversations, CAST(t.n AS BIGINT), \
                CAST(COALESCE(a.users, 0) AS BIGINT), CAST(COALESCE(s.users, 0) AS BIGINT) \
            FROM totals t \
            JOIN picks p ON p.date = t.date AND p.region = t.region \
            LEFT JOIN active a ON a.date = t.date AND a.region = t.region \
            LEFT JOIN subscribers s ON s.region = t.region",
    },
];

/// Computes the daily tables' rows for `dates` (at most [`DAYS_PER_RECOMPUTE`]) from
/// `transactions` and `users`, on `conn`. It writes only a connection-local scratch table, so
/// `conn` may be a reading connection.
pub async fn compute(conn: &mut AnyConnection, dates: &[String]) -> Result<DayFigures, sqlx::Error> {
    let mut figures = DayFigures::default();
    if dates.is_empty() {
        return Ok(figures);
    }
    // A transaction (a savepoint when `conn` is already in one) keeps the reads consistent.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    compute_in(&mut tx, dates, &mut figures).await?;
    tx.commit().await?;
    if backend_of(conn) == Backend::Sqlite {
        // Hand back the page cache the scan filled (the connection returns to a shared pool).
        sqlx::query("PRAGMA shrink_memory").execute(&mut *conn).await?;
    }
    Ok(figures)
}

async fn compute_in(
    conn: &mut AnyConnection,
    dates: &[String],
    figures: &mut DayFigures,
) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Postgres {
        // Enough memory to group a month of rows in memory rather than sort them on disk.
        sqlx::query("SET LOCAL work_mem = '64MB'").execute(&mut *conn).await?;
    }
    let scratch = format!("CREATE TEMP TABLE IF NOT EXISTS usage_day_conversations ({SCRATCH_COLUMNS})");
    sqlx::query(&scratch).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM usage_day_conversations").execute(&mut *conn).await?;
    let sql = format!(
        "INSERT INTO usage_day_conversations (date, region, company, model_name, conversation_id, user_id, \
         cost, n, tokens, prompt, completion) \
         SELECT date, region, company, model_name, conversation_id, user_id, SUM(calculated_cost), COUNT(*), \
         SUM(token_count), SUM(CASE WHEN token_type = 'prompt' THEN token_count ELSE 0 END), \
         SUM(CASE WHEN token_type = 'completion' THEN token_count ELSE 0 END) \
         FROM usage_transactions WHERE date IN ({}) \
         GROUP BY date, region, company, model_name, conversation_id, user_id",
        placeholders(dates.len(), 1)
    );
    let mut q = sqlx::query(&sql);
    for d in dates {
        q = q.bind(d.as_str());
    }
    q.execute(&mut *conn).await?;
    for (table, rows) in TABLES.iter().zip(figures.tables.iter_mut()) {
        let fetched = sqlx::query(table.query).fetch_all(&mut *conn).await?;
        *rows = fetched.iter().map(|r| cells(r, table.columns)).collect::<Result<_, _>>()?;
    }
    sqlx::query("DELETE FROM usage_day_conversations").execute(&mut *conn).await?;
    Ok(())
}

fn cells(row: &AnyRow, columns: &[(&str, Kind)]) -> Result<Vec<Cell>, sqlx::Error> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            Ok(match kind {
                Text => Cell::Text(row.try_get(i)?),
                Int => Cell::Int(row.try_get(i)?),
                Real => Cell::Real(row.try_get(i)?),
            })
        })
        .collect()
}

/// Locks `dates` for this transaction and clears their rows from the daily tables: on
/// PostgreSQL a per-day advisory lock keeps two imports from recomputing a day at once; on SQLite
/// the first write takes the database's write lock. Either way no other recompute of these days
/// can commit until this transaction ends.
pub async fn lock_days(conn: &mut AnyConnection, dates: &[String]) -> Result<(), sqlx::Error> {
    hold_days(conn, dates).await?;
    clear_days(conn, dates).await
}

/// Takes the per-day locks of [`lock_days`] without clearing anything (a no-op on SQLite, whose
/// one writer already excludes every other).
pub async fn hold_days(conn: &mut AnyConnection, dates: &[String]) -> Result<(), sqlx::Error> {
    if backend_of(conn) == Backend::Postgres {
        let mut keys: Vec<i64> = dates.iter().map(|d| day_lock_key(d)).collect();
        keys.sort_unstable();
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// How many transactions each of `dates` holds (days without any are left out).
pub async fn rows_per_day(
    conn: &mut AnyConnection,
    dates: &[String],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let dates: Vec<&str> = dates.iter().map(String::as_str).collect();
    let sql = "SELECT date, COUNT(*) FROM usage_transactions WHERE date IN ({}) GROUP BY date";
    let mut counts = HashMap::with_capacity(dates.len());
    for row in rows_where_in(conn, sql, &dates).await? {
        counts.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(counts)
}

/// Deletes the daily tables' rows of `dates`.
pub async fn clear_days(conn: &mut AnyConnection, dates: &[String]) -> Result<(), sqlx::Error> {
    for group in dates.chunks(rows_per_statement(1)) {
        for table in &TABLES {
            let sql = format!("DELETE FROM {} WHERE date IN ({})", table.name, placeholders(group.len(), 1));
            let mut q = sqlx::query(&sql);
            for d in group {
                q = q.bind(d.as_str());
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Stores computed figures (after [`lock_days`] or [`clear_days`] cleared their days), stamped `now`.
pub async fn store(conn: &mut AnyConnection, figures: &DayFigures, now: i64) -> Result<(), sqlx::Error> {
    for (table, rows) in TABLES.iter().zip(&figures.tables) {
        let cols = table.columns.len() + 1;
        let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
        for chunk in rows.chunks(rows_per_statement(cols)) {
            let sql = format!(
                "INSERT INTO {} ({}, updated_at) VALUES {}",
                table.name,
                names.join(", "),
                backend_of(conn).sequential_rows(chunk.len(), cols)
            );
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for cell in row {
                    q = match cell {
                        Cell::Text(v) => q.bind(v.as_str()),
                        Cell::Int(v) => q.bind(*v),
                        Cell::Real(v) => q.bind(*v),
                    };
                }
                q = q.bind(now);
            }
            q.execute(&mut *conn).await?;
        }
    }
    Ok(())
}

/// Recomputes the three daily tables for `dates` on `conn`, inside the caller's transaction.
pub async fn recompute_days(conn: &mut AnyConnection, dates: &[String], now: i64) -> Result<(), sqlx::Error> {
    lock_days(conn, dates).await?;
    for group in dates.chunks(DAYS_PER_RECOMPUTE) {
        let figures = compute(conn, group).await?;
        store(conn, &figures, now).await?;
    }
    Ok(())
}

/// The advisory lock key of a day: a fixed prefix and the day's digits.
fn day_lock_key(date: &str) -> i64 {
    let digits: String = date.chars().filter(char::is_ascii_digit).collect();
    0x5553_4147_0000_0000 | digits.parse::<i64>().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn day_lock_keys_differ_per_day() {
        assert_ne!(super::day_lock_key("2025-01-01"), super::day_lock_key("2025-01-02"));
    }
}
