//! The daily tables, recomputed from `transactions` for whole days, so they always equal what the
//! transactions say (an import recomputes every day it touched, a group of days at a time).
//!
//! A group is read once: its rows are summed per conversation (day, region, company, model,
//! conversation, user) into a scratch table about five times smaller than the rows, and the
//! three tables are derived from that. Distinct counts stay exact because a conversation's
//! figures are kept apart per model and company.
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

use sightline_platform::db::{placeholders, Backend};
use sqlx::AnyConnection;

/// How many days one recompute reads at once (and so the most an `IN` list binds).
pub const DAYS_PER_RECOMPUTE: usize = 31;

const SCRATCH_COLUMNS: &str = "date TEXT NOT NULL, region TEXT NOT NULL, company TEXT NOT NULL, \
     model_name TEXT NOT NULL, conversation_id TEXT NOT NULL, user_id TEXT NOT NULL, \
     cost DOUBLE PRECISION NOT NULL, n BIGINT NOT NULL, tokens BIGINT NOT NULL, \
     prompt BIGINT NOT NULL, completion BIGINT NOT NULL";

/// Recomputes the three daily tables for `dates` (at most [`DAYS_PER_RECOMPUTE`]) on `conn`,
/// inside the caller's transaction. On PostgreSQL a per-day advisory lock keeps two imports from
/// recomputing a day at once.
pub async fn recompute_days(
    conn: &mut AnyConnection,
    backend: Backend,
    dates: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    for group in dates.chunks(DAYS_PER_RECOMPUTE) {
        recompute_group(conn, backend, group, now).await?;
    }
    Ok(())
}

async fn recompute_group(
    conn: &mut AnyConnection,
    backend: Backend,
    dates: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    if dates.is_empty() {
        return Ok(());
    }
    if backend == Backend::Postgres {
        let mut keys: Vec<i64> = dates.iter().map(|d| day_lock_key(d)).collect();
        keys.sort_unstable();
        for key in keys {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *conn).await?;
        }
    }
    let scratch = match backend {
        Backend::Sqlite => format!("CREATE TEMP TABLE IF NOT EXISTS usage_day_conversations ({SCRATCH_COLUMNS})"),
        Backend::Postgres => format!(
            "CREATE TEMP TABLE IF NOT EXISTS usage_day_conversations ({SCRATCH_COLUMNS}) ON COMMIT DELETE ROWS"
        ),
    };
    sqlx::query(&scratch).execute(&mut *conn).await?;
    sqlx::query("DELETE FROM usage_day_conversations").execute(&mut *conn).await?;
    // Statements binding only the days number them from $1; those also binding the time use $1
    // for it and number the days from $2.
    let only_days = placeholders(dates.len(), 1);
    let days = placeholders(dates.len(), 2);
    let statements = [
        (false, format!(
            "INSERT INTO usage_day_conversations (date, region, company, model_name, conversation_id, user_id, \
             cost, n, tokens, prompt, completion) \
             SELECT date, region, company, model_name, conversation_id, user_id, SUM(calculated_cost), COUNT(*), \
             SUM(token_count), SUM(CASE WHEN token_type = 'prompt' THEN token_count ELSE 0 END), \
             SUM(CASE WHEN token_type = 'completion' THEN token_count ELSE 0 END) \
             FROM transactions WHERE date IN ({only_days}) \
             GROUP BY date, region, company, model_name, conversation_id, user_id"
        )),
        (false, format!("DELETE FROM daily_model_metrics WHERE date IN ({only_days})")),
        (false, format!("DELETE FROM daily_company_metrics WHERE date IN ({only_days})")),
        (false, format!("DELETE FROM daily_metrics WHERE date IN ({only_days})")),
        (true, format!(
            "INSERT INTO daily_model_metrics (date, region, model_name, total_cost, conversation_count, \
             token_consumption, transaction_count, updated_at) \
             SELECT date, region, model_name, SUM(cost), COUNT(DISTINCT conversation_id), SUM(tokens), SUM(n), \
             CAST($1 AS BIGINT) FROM usage_day_conversations \
             WHERE date IN ({days}) GROUP BY date, region, model_name"
        )),
        (true, format!(
            "WITH per_model AS ( \
                SELECT date, region, company, model_name, COUNT(DISTINCT conversation_id) AS conversations \
                FROM usage_day_conversations WHERE date IN ({days}) GROUP BY date, region, company, model_name), \
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
                FROM usage_day_conversations WHERE date IN ({days}) GROUP BY date, region, company) \
             INSERT INTO daily_company_metrics (date, region, company_name, highest_used_model, least_used_model, \
                total_cost, conversation_count, updated_at) \
             SELECT t.date, t.region, t.company, p.highest, p.least, t.cost, t.conversations, CAST($1 AS BIGINT) \
             FROM totals t JOIN picks p ON p.date = t.date AND p.region = t.region AND p.company = t.company"
        )),
        (true, format!(
            "WITH totals AS ( \
                SELECT date, region, SUM(cost) AS cost, SUM(n) AS n, \
                COUNT(DISTINCT conversation_id) AS conversations, SUM(prompt) AS prompt, \
                SUM(completion) AS completion \
                FROM usage_day_conversations WHERE date IN ({days}) GROUP BY date, region), \
             ranked AS ( \
                SELECT date, region, model_name, \
                ROW_NUMBER() OVER (PARTITION BY date, region ORDER BY conversation_count DESC, model_name) AS most, \
                ROW_NUMBER() OVER (PARTITION BY date, region ORDER BY conversation_count, model_name) AS least, \
                ROW_NUMBER() OVER (PARTITION BY date, region ORDER BY total_cost DESC, model_name) AS costliest \
                FROM daily_model_metrics WHERE date IN ({days})), \
             picks AS ( \
                SELECT date, region, MAX(CASE WHEN most = 1 THEN model_name END) AS highest, \
                MAX(CASE WHEN least = 1 THEN model_name END) AS least, \
                MAX(CASE WHEN costliest = 1 THEN model_name END) AS costliest \
                FROM ranked GROUP BY date, region), \
             active AS ( \
                SELECT c.date, c.region, COUNT(DISTINCT c.user_id) AS users FROM usage_day_conversations c \
                JOIN users u ON u.id = c.user_id WHERE c.date IN ({days}) AND u.is_active_sub = 1 \
                GROUP BY c.date, c.region), \
             subscribers AS ( \
                SELECT region, COUNT(*) AS users FROM users WHERE is_active_sub = 1 GROUP BY region) \
             INSERT INTO daily_metrics (date, region, highest_model_used, avg_spending, costliest_model, \
                least_used_model, avg_token_consumption, total_prompt_tokens, total_completion_tokens, \
                active_subscriber_utilization_rate, total_cost, total_conversations, transaction_count, \
                active_users, active_subscribers, updated_at) \
             SELECT t.date, t.region, p.highest, t.cost / t.n, p.costliest, p.least, \
                CAST(t.prompt + t.completion AS DOUBLE PRECISION) / t.conversations, t.prompt, t.completion, \
                CASE WHEN COALESCE(s.users, 0) = 0 THEN 0.0 \
                     ELSE CAST(COALESCE(a.users, 0) AS DOUBLE PRECISION) / s.users END, \
                t.cost, t.conversations, t.n, COALESCE(a.users, 0), COALESCE(s.users, 0), CAST($1 AS BIGINT) \
             FROM totals t \
             JOIN picks p ON p.date = t.date AND p.region = t.region \
             LEFT JOIN active a ON a.date = t.date AND a.region = t.region \
             LEFT JOIN subscribers s ON s.region = t.region"
        )),
    ];
    for (binds_time, sql) in &statements {
        let mut q = sqlx::query(sql);
        if *binds_time {
            q = q.bind(now);
        }
        for d in dates {
            q = q.bind(d.as_str());
        }
        q.execute(&mut *conn).await?;
    }
    // The scratch rows are not kept past the group (PostgreSQL also drops them at commit).
    sqlx::query("DELETE FROM usage_day_conversations").execute(&mut *conn).await?;
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
