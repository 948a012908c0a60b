//! `usage_users`: the users of the users file, and what the transactions and the daily figures
//! need of them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sightline_platform::db::{backend_of, rows_per_statement, rows_where_in};
use sqlx::{AnyConnection, Row};

use crate::aggregate::Subscribers;
use crate::model::UserRow;

/// What is known of a user when storing its transactions.
#[derive(Debug, Clone)]
pub struct UserFacts {
    /// Region.
    pub region: String,
    /// Company (`''` when none).
    pub company: String,
}

/// Looks up the users among `ids` not yet in `cache`.
pub async fn load_users(
    conn: &mut AnyConnection,
    ids: &[&str],
    cache: &mut HashMap<String, Arc<UserFacts>>,
) -> Result<(), sqlx::Error> {
    let missing: Vec<&str> = {
        let mut seen = HashSet::new();
        ids.iter().copied().filter(|id| !cache.contains_key(*id) && seen.insert(*id)).collect()
    };
    for row in
        rows_where_in(conn, "SELECT id, region, company_name FROM usage_users WHERE id IN ({})", &missing)
            .await?
    {
        let company: Option<String> = row.get("company_name");
        cache.insert(
            row.get("id"),
            Arc::new(UserFacts { region: row.get("region"), company: company.unwrap_or_default() }),
        );
    }
    Ok(())
}

/// The stored users among `ids` and the owners of `usernames`.
pub async fn existing_users(
    conn: &mut AnyConnection,
    ids: &[&str],
    usernames: &[&str],
) -> Result<(HashMap<String, UserRow>, HashMap<String, String>), sqlx::Error> {
    let mut by_id = HashMap::new();
    let sql =
        "SELECT id, username, region, is_active_sub, department, company_name, signup_date FROM usage_users \
               WHERE id IN ({})";
    for r in rows_where_in(conn, sql, ids).await? {
        let active: i64 = r.get("is_active_sub");
        by_id.insert(
            r.get("id"),
            UserRow {
                id: r.get("id"),
                username: r.get("username"),
                region: r.get("region"),
                is_active_sub: active != 0,
                department: r.get("department"),
                company_name: r.get("company_name"),
                signup_ms: r.get("signup_date"),
            },
        );
    }
    let mut owners = HashMap::new();
    for r in
        rows_where_in(conn, "SELECT id, username FROM usage_users WHERE username IN ({})", usernames).await?
    {
        owners.insert(r.get("username"), r.get("id"));
    }
    Ok((by_id, owners))
}

/// Inserts or overwrites users (ids must be distinct).
pub async fn upsert_users(conn: &mut AnyConnection, users: &[&UserRow], now: i64) -> Result<(), sqlx::Error> {
    const COLS: usize = 8;
    for chunk in users.chunks(rows_per_statement(COLS)) {
        let sql = format!(
            "INSERT INTO usage_users (id, username, region, is_active_sub, department, company_name, signup_date, \
             updated_at) VALUES {} ON CONFLICT (id) DO UPDATE SET username = excluded.username, \
             region = excluded.region, is_active_sub = excluded.is_active_sub, department = excluded.department, \
             company_name = excluded.company_name, signup_date = excluded.signup_date, \
             updated_at = excluded.updated_at",
            backend_of(conn).sequential_rows(chunk.len(), COLS)
        );
        let mut q = sqlx::query(&sql);
        for u in chunk {
            q = q
                .bind(u.id.as_str())
                .bind(u.username.as_str())
                .bind(u.region.as_str())
                .bind(i64::from(u.is_active_sub))
                .bind(u.department.as_deref())
                .bind(u.company_name.as_deref())
                .bind(u.signup_ms)
                .bind(now);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Which of `users` are active subscribers, and how many active subscribers each region has.
pub async fn subscribers<'a>(
    conn: &mut AnyConnection,
    users: impl Iterator<Item = &'a str>,
) -> Result<Subscribers, sqlx::Error> {
    let mut out = Subscribers::default();
    let users: Vec<&str> = users.collect::<HashSet<_>>().into_iter().collect();
    for row in
        rows_where_in(conn, "SELECT id FROM usage_users WHERE is_active_sub = 1 AND id IN ({})", &users)
            .await?
    {
        out.active.insert(row.try_get(0)?);
    }
    let rows =
        sqlx::query("SELECT region, COUNT(*) FROM usage_users WHERE is_active_sub = 1 GROUP BY region")
            .fetch_all(&mut *conn)
            .await?;
    for row in rows {
        out.per_region.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(out)
}
