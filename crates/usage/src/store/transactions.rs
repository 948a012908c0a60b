//! `usage_transactions`, keyed by `id_key`, a 62-bit number taken from the SHA-256 of the `RowId`
//! ([`crate::model::transaction_key`]), not by the `RowId` text: random UUIDs make every insert
//! land on a random index page, and a compact integer index is several times cheaper to keep than
//! one of 36-byte strings. Two ids whose numbers clash (about one chance in ten million for a
//! million rows) are told apart by probing: an id lives at the first of `key, key + 1, …,
//! key + KEY_PROBES` that is free or holds it. Rows are never deleted, so a probe sequence never
//! has holes.

use std::collections::HashMap;

use sightline_platform::db::{backend_of, rows_per_statement, Backend};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::model::TransactionRow;
use crate::store::users::UserFacts;

/// How far past its home key an id may be placed when keys clash.
pub const KEY_PROBES: i64 = 32;

/// Makes the caller's (PostgreSQL) transaction give up on a lock it has waited a minute for,
/// failing instead of hanging when two open transactions wait on each other out of the server's
/// sight.
pub async fn limit_lock_wait(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL lock_timeout = '60s'").execute(conn).await?;
    Ok(())
}

/// A transaction ready to store, with its user's region and company.
#[derive(Clone, Copy)]
pub struct StoredTransaction<'a> {
    /// The key it is stored under (its home key unless that belongs to another id).
    pub key: i64,
    /// The row read.
    pub row: &'a TransactionRow,
    /// Its user's facts.
    pub user: &'a UserFacts,
}

const TX_COLUMNS: &str =
    "id_key, id, user_id, region, company, model_name, conversation_id, token_type, token_count, \
     rate_per_1k, calculated_cost, date, timestamp";
const TX_COLS: usize = 13;

fn bind_transactions<'q>(
    sql: &'q str,
    rows: &[StoredTransaction<'q>],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for t in rows {
        let r = t.row;
        q = q
            .bind(t.key)
            .bind(r.id.as_str())
            .bind(r.user_id.as_str())
            .bind(t.user.region.as_str())
            .bind(t.user.company.as_str())
            .bind(r.model_name.as_str())
            .bind(r.conversation_id.as_str())
            .bind(r.token_type)
            .bind(r.token_count)
            .bind(r.rate_per_1k)
            .bind(r.calculated_cost)
            .bind(r.date.as_str())
            .bind(r.timestamp_ms);
    }
    q
}

/// What an insert does with a row whose key is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Skips the row.
    Skip,
    /// Fails the statement (PostgreSQL): a plain `INSERT` searches the key index once a row,
    /// where `ON CONFLICT` searches it twice.
    Fail,
}

/// Inserts the rows whose key is free; returns how many were.
pub async fn insert_new_transactions(
    conn: &mut AnyConnection,
    rows: &[StoredTransaction<'_>],
) -> Result<u64, sqlx::Error> {
    insert_transactions(conn, rows, Taken::Skip).await
}

/// Inserts rows whose keys are expected to be free, as [`insert_new_transactions`] does; returns
/// how many were. On PostgreSQL it first tries a plain `INSERT` under a savepoint and, should a
/// key be taken after all, rolls back to it and skips the taken keys instead.
pub async fn insert_expected_new_transactions(
    conn: &mut AnyConnection,
    rows: &[StoredTransaction<'_>],
) -> Result<u64, sqlx::Error> {
    if backend_of(conn) == Backend::Sqlite || rows.is_empty() {
        return insert_new_transactions(conn, rows).await;
    }
    sqlx::query("SAVEPOINT usage_new_rows").execute(&mut *conn).await?;
    match insert_transactions(conn, rows, Taken::Fail).await {
        Ok(inserted) => {
            sqlx::query("RELEASE SAVEPOINT usage_new_rows").execute(&mut *conn).await?;
            Ok(inserted)
        }
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            sqlx::query("ROLLBACK TO SAVEPOINT usage_new_rows").execute(&mut *conn).await?;
            sqlx::query("RELEASE SAVEPOINT usage_new_rows").execute(&mut *conn).await?;
            insert_new_transactions(conn, rows).await
        }
        Err(e) => Err(e),
    }
}

/// Inserts `rows`, doing with each taken key what `taken` says; returns how many were inserted.
async fn insert_transactions(
    conn: &mut AnyConnection,
    rows: &[StoredTransaction<'_>],
    taken: Taken,
) -> Result<u64, sqlx::Error> {
    let backend = backend_of(conn);
    let batches: Vec<&[StoredTransaction<'_>]> = rows.chunks(rows_per_statement(TX_COLS)).collect();
    // Every batch but the last has the same length: two statement texts at most.
    let sql_for = |len: usize| {
        let values = backend.sequential_rows(len, TX_COLS);
        match (backend, taken) {
            // `OR IGNORE` (unlike `ON CONFLICT DO NOTHING`) lets no constraint abort the
            // statement, so SQLite keeps no statement journal (a copy of every page the
            // statement changes) for it.
            (Backend::Sqlite, _) => {
                format!("INSERT OR IGNORE INTO usage_transactions ({TX_COLUMNS}) VALUES {values}")
            }
            (Backend::Postgres, Taken::Skip) => {
                format!(
                    "INSERT INTO usage_transactions ({TX_COLUMNS}) VALUES {values} ON CONFLICT (id_key) DO NOTHING"
                )
            }
            (Backend::Postgres, Taken::Fail) => {
                format!("INSERT INTO usage_transactions ({TX_COLUMNS}) VALUES {values}")
            }
        }
    };
    let full = batches.first().map(|b| sql_for(b.len())).unwrap_or_default();
    let last = batches.last().filter(|b| b.len() != batches[0].len()).map(|b| sql_for(b.len()));
    let sqls: Vec<&str> = batches
        .iter()
        .map(|b| match &last {
            Some(sql) if b.len() != batches[0].len() => sql.as_str(),
            _ => full.as_str(),
        })
        .collect();
    let mut inserted = 0;
    let mut next = sqls.first().map(|sql| bind_transactions(sql, batches[0]));
    for i in 0..sqls.len() {
        let Some(query) = next.take() else { break };
        // The next statement's values are bound while the database runs this one.
        let bind_next = async { sqls.get(i + 1).map(|sql| bind_transactions(sql, batches[i + 1])) };
        let (done, bound) = tokio::join!(query.execute(&mut *conn), bind_next);
        inserted += done?.rows_affected();
        next = bound;
    }
    Ok(inserted)
}

/// Overwrites the rows at the given keys (keys must be distinct).
pub async fn update_transactions(
    conn: &mut AnyConnection,
    rows: &[StoredTransaction<'_>],
) -> Result<(), sqlx::Error> {
    let set: Vec<String> = TX_COLUMNS.split(", ").skip(1).map(|c| format!("{c} = excluded.{c}")).collect();
    for chunk in rows.chunks(rows_per_statement(TX_COLS)) {
        let sql = format!(
            "INSERT INTO usage_transactions ({TX_COLUMNS}) VALUES {} ON CONFLICT (id_key) DO UPDATE SET {}",
            backend_of(conn).sequential_rows(chunk.len(), TX_COLS),
            set.join(", ")
        );
        bind_transactions(&sql, chunk).execute(&mut *conn).await?;
    }
    Ok(())
}

/// A stored transaction's values, to compare with an incoming row.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingTransaction {
    /// `RowId`.
    pub id: String,
    /// User.
    pub user_id: String,
    /// Region.
    pub region: String,
    /// Company.
    pub company: String,
    /// Model.
    pub model_name: String,
    /// Conversation.
    pub conversation_id: String,
    /// Token type.
    pub token_type: String,
    /// Tokens.
    pub token_count: i64,
    /// Rate.
    pub rate_per_1k: f64,
    /// Cost.
    pub calculated_cost: f64,
    /// Day.
    pub date: String,
    /// Time (ms).
    pub timestamp_ms: i64,
}

impl ExistingTransaction {
    /// True when storing `t` would change nothing.
    pub fn same_as(&self, t: &StoredTransaction<'_>) -> bool {
        let r = t.row;
        self.id == r.id
            && self.user_id == r.user_id
            && self.region == t.user.region
            && self.company == t.user.company
            && self.model_name == r.model_name
            && self.conversation_id == r.conversation_id
            && self.token_type == r.token_type
            && self.token_count == r.token_count
            && self.rate_per_1k == r.rate_per_1k
            && self.calculated_cost == r.calculated_cost
            && self.timestamp_ms == r.timestamp_ms
    }
}

fn existing_transaction(r: &AnyRow) -> (i64, ExistingTransaction) {
    (
        r.get("id_key"),
        ExistingTransaction {
            id: r.get("id"),
            user_id: r.get("user_id"),
            region: r.get("region"),
            company: r.get("company"),
            model_name: r.get("model_name"),
            conversation_id: r.get("conversation_id"),
            token_type: r.get("token_type"),
            token_count: r.get("token_count"),
            rate_per_1k: r.get("rate_per_1k"),
            calculated_cost: r.get("calculated_cost"),
            date: r.get("date"),
            timestamp_ms: r.get("timestamp"),
        },
    )
}

/// The stored rows at `keys`.
pub async fn existing_transactions(
    conn: &mut AnyConnection,
    keys: &[i64],
) -> Result<HashMap<i64, ExistingTransaction>, sqlx::Error> {
    let mut out = HashMap::with_capacity(keys.len());
    for chunk in keys.chunks(rows_per_statement(1)) {
        let sql = format!(
            "SELECT {TX_COLUMNS} FROM usage_transactions WHERE id_key IN ({})",
            backend_of(conn).sequential_placeholders(chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for key in chunk {
            q = q.bind(*key);
        }
        out.extend(q.fetch_all(&mut *conn).await?.iter().map(existing_transaction));
    }
    Ok(out)
}

/// The stored rows on the probe sequence past `home` (`home + 1 ..= home + KEY_PROBES`).
pub async fn probed_transactions(
    conn: &mut AnyConnection,
    home: i64,
) -> Result<HashMap<i64, ExistingTransaction>, sqlx::Error> {
    let sql = format!("SELECT {TX_COLUMNS} FROM usage_transactions WHERE id_key > $1 AND id_key <= $2");
    let rows = sqlx::query(&sql).bind(home).bind(home + KEY_PROBES).fetch_all(conn).await?;
    Ok(rows.iter().map(existing_transaction).collect())
}
