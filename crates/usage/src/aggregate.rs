//! The daily tables, recomputed from `transactions` one day at a time, so they always equal what
//! the transactions say (an import recomputes every day it touched).
//!
//! Formulas (per day and region; the seed's SQL version, see `docs/usage.md`):
//! - `total_cost` = Σ cost; `total_conversations` = distinct conversations;
//!   `transaction_count` = rows; `avg_spending` = `total_cost / transaction_count`.
//! - `total_prompt_tokens` / `total_completion_tokens` = Σ tokens by type;
//!   `avg_token_consumption` = (prompt + completion) / `total_conversations`.
//! - `highest_model_used` / `least_used_model` = the model with the most / fewest distinct
//!   conversations; `costliest_model` = the highest Σ cost (ties go to the first name).
//! - `active_subscriber_utilization_rate` = active subscribers who transacted that day in the
//!   region / active subscribers in the region, a fraction 0..1 (0 when there are none).
//! - `daily_model_metrics` per model: Σ cost, distinct conversations, Σ tokens, rows.
//! - `daily_company_metrics` per company (`''` when the user has none): Σ cost, distinct
//!   conversations, and its most / least used model by distinct conversations.

use sightline_platform::db::Backend;
use sqlx::AnyConnection;

/// Recomputes the three daily tables for `date` on `conn` (inside the caller's transaction).
/// On PostgreSQL a per-day advisory lock keeps two imports from recomputing a day at once.
pub async fn recompute_day(
    conn: &mut AnyConnection,
    backend: Backend,
    date: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(day_lock_key(date)).execute(&mut *conn).await?;
    }
    for table in ["daily_model_metrics", "daily_company_metrics", "daily_metrics"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE date = $1")).bind(date).execute(&mut *conn).await?;
    }
    sqlx::query(
        "INSERT INTO daily_model_metrics (date, region, model_name, total_cost, conversation_count, \
         token_consumption, transaction_count, updated_at) \
         SELECT date, region, model_name, SUM(calculated_cost), COUNT(DISTINCT conversation_id), \
         SUM(token_count), COUNT(*), CAST($2 AS BIGINT) FROM transactions WHERE date = $1 \
         GROUP BY date, region, model_name",
    )
    .bind(date)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH per_model AS ( \
            SELECT region, company, model_name, COUNT(DISTINCT conversation_id) AS conversations \
            FROM transactions WHERE date = $1 GROUP BY region, company, model_name), \
         ranked AS ( \
            SELECT region, company, model_name, \
            ROW_NUMBER() OVER (PARTITION BY region, company ORDER BY conversations DESC, model_name) AS most, \
            ROW_NUMBER() OVER (PARTITION BY region, company ORDER BY conversations, model_name) AS least \
            FROM per_model), \
         totals AS ( \
            SELECT region, company, SUM(calculated_cost) AS cost, COUNT(DISTINCT conversation_id) AS conversations \
            FROM transactions WHERE date = $1 GROUP BY region, company) \
         INSERT INTO daily_company_metrics (date, region, company_name, highest_used_model, least_used_model, \
            total_cost, conversation_count, updated_at) \
         SELECT CAST($1 AS TEXT), t.region, t.company, h.model_name, l.model_name, t.cost, t.conversations, \
            CAST($2 AS BIGINT) \
         FROM totals t \
         JOIN ranked h ON h.region = t.region AND h.company = t.company AND h.most = 1 \
         JOIN ranked l ON l.region = t.region AND l.company = t.company AND l.least = 1",
    )
    .bind(date)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH totals AS ( \
            SELECT region, SUM(calculated_cost) AS cost, COUNT(*) AS n, \
            COUNT(DISTINCT conversation_id) AS conversations, \
            SUM(CASE WHEN token_type = 'prompt' THEN token_count ELSE 0 END) AS prompt, \
            SUM(CASE WHEN token_type = 'completion' THEN token_count ELSE 0 END) AS completion \
            FROM transactions WHERE date = $1 GROUP BY region), \
         ranked AS ( \
            SELECT region, model_name, \
            ROW_NUMBER() OVER (PARTITION BY region ORDER BY conversation_count DESC, model_name) AS most, \
            ROW_NUMBER() OVER (PARTITION BY region ORDER BY conversation_count, model_name) AS least, \
            ROW_NUMBER() OVER (PARTITION BY region ORDER BY total_cost DESC, model_name) AS costliest \
            FROM daily_model_metrics WHERE date = $1), \
         active AS ( \
            SELECT t.region, COUNT(DISTINCT t.user_id) AS users FROM transactions t \
            JOIN users u ON u.id = t.user_id WHERE t.date = $1 AND u.is_active_sub = 1 GROUP BY t.region), \
         subscribers AS ( \
            SELECT region, COUNT(*) AS users FROM users WHERE is_active_sub = 1 GROUP BY region) \
         INSERT INTO daily_metrics (date, region, highest_model_used, avg_spending, costliest_model, \
            least_used_model, avg_token_consumption, total_prompt_tokens, total_completion_tokens, \
            active_subscriber_utilization_rate, total_cost, total_conversations, transaction_count, \
            active_users, active_subscribers, updated_at) \
         SELECT CAST($1 AS TEXT), t.region, h.model_name, t.cost / t.n, c.model_name, l.model_name, \
            CAST(t.prompt + t.completion AS DOUBLE PRECISION) / t.conversations, t.prompt, t.completion, \
            CASE WHEN COALESCE(s.users, 0) = 0 THEN 0.0 \
                 ELSE CAST(COALESCE(a.users, 0) AS DOUBLE PRECISION) / s.users END, \
            t.cost, t.conversations, t.n, COALESCE(a.users, 0), COALESCE(s.users, 0), CAST($2 AS BIGINT) \
         FROM totals t \
         JOIN ranked h ON h.region = t.region AND h.most = 1 \
         JOIN ranked l ON l.region = t.region AND l.least = 1 \
         JOIN ranked c ON c.region = t.region AND c.costliest = 1 \
         LEFT JOIN active a ON a.region = t.region \
         LEFT JOIN subscribers s ON s.region = t.region",
    )
    .bind(date)
    .bind(now)
    .execute(&mut *conn)
    .await?;
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
