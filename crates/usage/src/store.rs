//! The module's tables and the SQL that writes them during an import: `jobs` (one per upload,
//! with its checkpoints and counts), `users`, `transactions`, `usage_rejects` (the bad-row
//! report) and `usage_job_days` (the days an import touched, whose aggregates it must
//! recompute). The daily tables' SQL is in [`crate::aggregate`].
//!
//! A transaction is keyed by `id_key`, a 62-bit number taken from the SHA-256 of its `RowId`,
//! not by the `RowId` text: random UUIDs make every insert land on a random index page, and a
//! compact integer index is several times cheaper to keep than one of 36-byte strings. Two ids
//! whose numbers clash (about one chance in ten million for a million rows) are told apart by probing: an
//! id lives at the first of `key, key + 1, …, key + KEY_PROBES` that is free or holds it. Rows
//! are never deleted, so a probe sequence never has holes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use sightline_platform::db::{backend_of, placeholders, rows_per_statement, Backend, Db};
use sightline_platform::migrate::Migration;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::format::{Checkpoint, Reject, TransactionRow, UserRow};
use crate::tally::Subscribers;

/// The module's migrations.
/// Migration 2's renames: every table of the module carries its `usage_` prefix (rows kept), and
/// the two original file names get columns of their own.
macro_rules! USAGE_PREFIXES {
    () => {
        "ALTER TABLE users RENAME TO usage_users;
        ALTER TABLE transactions RENAME TO usage_transactions;
        ALTER TABLE jobs RENAME TO usage_jobs;
        ALTER TABLE daily_metrics RENAME TO usage_daily_metrics;
        ALTER TABLE daily_company_metrics RENAME TO usage_daily_company_metrics;
        ALTER TABLE daily_model_metrics RENAME TO usage_daily_model_metrics;
        ALTER TABLE usage_jobs ADD COLUMN transactions_filename TEXT;
        ALTER TABLE usage_jobs ADD COLUMN users_filename TEXT;
        "
    };
}

pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        1,
        "usage tables",
        "CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        region TEXT NOT NULL,
        is_active_sub BIGINT NOT NULL DEFAULT 0,
        department TEXT,
        company_name TEXT,
        signup_date BIGINT,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX users_active_region ON users (region, is_active_sub);
    CREATE TABLE transactions (
        id_key BIGINT PRIMARY KEY,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        region TEXT NOT NULL,
        company TEXT NOT NULL,
        model_name TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        token_type TEXT NOT NULL,
        token_count BIGINT NOT NULL,
        rate_per_1k DOUBLE PRECISION NOT NULL,
        calculated_cost DOUBLE PRECISION NOT NULL,
        date TEXT NOT NULL,
        timestamp BIGINT NOT NULL
    );
    CREATE INDEX transactions_day ON transactions (date, region);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        file_location TEXT NOT NULL,
        filename TEXT NOT NULL,
        total_rows BIGINT NOT NULL,
        processed_rows BIGINT NOT NULL DEFAULT 0,
        error TEXT,
        job_metadata TEXT NOT NULL,
        processed_at BIGINT,
        created_at BIGINT NOT NULL,
        created_by TEXT,
        status TEXT NOT NULL,
        stage TEXT NOT NULL,
        started_at BIGINT,
        updated_at BIGINT NOT NULL,
        users_bytes BIGINT NOT NULL,
        users_sha256 TEXT NOT NULL,
        users_total BIGINT NOT NULL,
        users_offset BIGINT NOT NULL DEFAULT 0,
        users_line BIGINT NOT NULL DEFAULT 0,
        users_read BIGINT NOT NULL DEFAULT 0,
        users_inserted BIGINT NOT NULL DEFAULT 0,
        users_updated BIGINT NOT NULL DEFAULT 0,
        users_unchanged BIGINT NOT NULL DEFAULT 0,
        users_rejected BIGINT NOT NULL DEFAULT 0,
        tx_bytes BIGINT NOT NULL,
        tx_sha256 TEXT NOT NULL,
        tx_offset BIGINT NOT NULL DEFAULT 0,
        tx_line BIGINT NOT NULL DEFAULT 0,
        tx_read BIGINT NOT NULL DEFAULT 0,
        tx_inserted BIGINT NOT NULL DEFAULT 0,
        tx_updated BIGINT NOT NULL DEFAULT 0,
        tx_unchanged BIGINT NOT NULL DEFAULT 0,
        tx_rejected BIGINT NOT NULL DEFAULT 0,
        tx_started_at BIGINT,
        days_total BIGINT NOT NULL DEFAULT 0,
        days_done BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE TABLE usage_rejects (
        job_id TEXT NOT NULL,
        file TEXT NOT NULL,
        line BIGINT NOT NULL,
        field TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (job_id, file, line)
    );
    CREATE TABLE usage_job_days (
        job_id TEXT NOT NULL,
        date TEXT NOT NULL,
        PRIMARY KEY (job_id, date)
    );
    CREATE TABLE daily_metrics (
        date TEXT NOT NULL,
        region TEXT NOT NULL,
        highest_model_used TEXT NOT NULL,
        avg_spending DOUBLE PRECISION NOT NULL,
        costliest_model TEXT NOT NULL,
        least_used_model TEXT NOT NULL,
        avg_token_consumption DOUBLE PRECISION NOT NULL,
        total_prompt_tokens BIGINT NOT NULL,
        total_completion_tokens BIGINT NOT NULL,
        active_subscriber_utilization_rate DOUBLE PRECISION NOT NULL,
        total_cost DOUBLE PRECISION NOT NULL,
        total_conversations BIGINT NOT NULL,
        transaction_count BIGINT NOT NULL,
        active_users BIGINT NOT NULL,
        active_subscribers BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (date, region)
    );
    CREATE TABLE daily_company_metrics (
        date TEXT NOT NULL,
        region TEXT NOT NULL,
        company_name TEXT NOT NULL,
        highest_used_model TEXT NOT NULL,
        least_used_model TEXT NOT NULL,
        total_cost DOUBLE PRECISION NOT NULL,
        conversation_count BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (date, region, company_name)
    );
    CREATE TABLE daily_model_metrics (
        date TEXT NOT NULL,
        region TEXT NOT NULL,
        model_name TEXT NOT NULL,
        total_cost DOUBLE PRECISION NOT NULL,
        conversation_count BIGINT NOT NULL,
        token_consumption BIGINT NOT NULL,
        transaction_count BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (date, region, model_name)
    );",
    ),
    Migration {
        version: 2,
        name: "usage table prefixes and separate file names",
        sqlite: concat!(
            USAGE_PREFIXES!(),
            "UPDATE usage_jobs SET transactions_filename = substr(filename, 1, instr(filename, ',') - 1),
                users_filename = substr(filename, instr(filename, ',') + 1) WHERE instr(filename, ',') > 0;"
        ),
        postgres: concat!(
            USAGE_PREFIXES!(),
            "UPDATE usage_jobs SET transactions_filename = split_part(filename, ',', 1),
                users_filename = substr(filename, strpos(filename, ',') + 1) WHERE strpos(filename, ',') > 0;"
        ),
    },
];

/// The two files of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The `users` file.
    Users,
    /// The `transactions` file.
    Transactions,
}

impl FileKind {
    /// Form field and report name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Users => "users",
            FileKind::Transactions => "transactions",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            FileKind::Users => "users",
            FileKind::Transactions => "tx",
        }
    }
}

/// One received file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Name the client gave it.
    pub original_name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Data rows (newlines minus the header).
    pub rows: u64,
}

/// A new import job.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// Job id (UUID).
    pub id: String,
    /// Directory holding `users.csv` and `transactions.csv`.
    pub dir: String,
    /// The users file.
    pub users: StoredFile,
    /// The transactions file.
    pub transactions: StoredFile,
    /// Who uploaded it.
    pub created_by: Option<String>,
    /// Platform queue job id.
    pub queue_job_id: i64,
}

/// Progress through one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileProgress {
    /// Where the next chunk starts.
    pub checkpoint: Checkpoint,
    /// Rows read.
    pub read: i64,
    /// New rows stored.
    pub inserted: i64,
    /// Existing rows changed.
    pub updated: i64,
    /// Rows identical to what was stored.
    pub unchanged: i64,
    /// Rows rejected.
    pub rejected: i64,
    /// File size.
    pub bytes: i64,
    /// File checksum.
    pub sha256: String,
}

/// Counts of one committed chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkCounts {
    /// Rows read.
    pub read: i64,
    /// New rows.
    pub inserted: i64,
    /// Changed rows.
    pub updated: i64,
    /// Identical rows.
    pub unchanged: i64,
    /// Rejected rows.
    pub rejected: i64,
}

/// A job row.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// `queued`, `users`, `transactions`, `aggregates` or `done`.
    pub stage: String,
    /// Upload directory.
    pub file_location: String,
    /// `<transactions name>,<users name>` as the original stored it.
    pub filename: String,
    /// The transactions file's original name.
    pub transactions_filename: String,
    /// The users file's original name.
    pub users_filename: String,
    /// Transactions rows in the file.
    pub total_rows: i64,
    /// Transactions rows read so far.
    pub processed_rows: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Queue job id and stage timings.
    pub metadata: Value,
    /// Users rows in the file.
    pub users_total: i64,
    /// Users file progress.
    pub users: FileProgress,
    /// Transactions file progress.
    pub transactions: FileProgress,
    /// Days whose aggregates are being recomputed.
    pub days_total: i64,
    /// Days recomputed.
    pub days_done: i64,
    /// Upload time (ms).
    pub created_at: i64,
    /// Uploader.
    pub created_by: Option<String>,
    /// First run start (ms).
    pub started_at: Option<i64>,
    /// Transactions stage start (ms), for the rate.
    pub tx_started_at: Option<i64>,
    /// Last change (ms).
    pub updated_at: i64,
    /// Completion (ms).
    pub processed_at: Option<i64>,
}

fn progress(row: &AnyRow, prefix: &str) -> FileProgress {
    let col = |name: &str| format!("{prefix}_{name}");
    FileProgress {
        checkpoint: Checkpoint {
            offset: row.get::<i64, _>(col("offset").as_str()) as u64,
            line: row.get::<i64, _>(col("line").as_str()) as u64,
        },
        read: row.get(col("read").as_str()),
        inserted: row.get(col("inserted").as_str()),
        updated: row.get(col("updated").as_str()),
        unchanged: row.get(col("unchanged").as_str()),
        rejected: row.get(col("rejected").as_str()),
        bytes: row.get(col("bytes").as_str()),
        sha256: row.get(col("sha256").as_str()),
    }
}

fn job_record(row: &AnyRow) -> JobRecord {
    let metadata: String = row.get("job_metadata");
    JobRecord {
        id: row.get("id"),
        status: row.get("status"),
        stage: row.get("stage"),
        file_location: row.get("file_location"),
        filename: row.get("filename"),
        transactions_filename: row.get::<Option<String>, _>("transactions_filename").unwrap_or_default(),
        users_filename: row.get::<Option<String>, _>("users_filename").unwrap_or_default(),
        total_rows: row.get("total_rows"),
        processed_rows: row.get("processed_rows"),
        error: row.get("error"),
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
        users_total: row.get("users_total"),
        users: progress(row, "users"),
        transactions: progress(row, "tx"),
        days_total: row.get("days_total"),
        days_done: row.get("days_done"),
        created_at: row.get("created_at"),
        created_by: row.get("created_by"),
        started_at: row.get("started_at"),
        tx_started_at: row.get("tx_started_at"),
        updated_at: row.get("updated_at"),
        processed_at: row.get("processed_at"),
    }
}

/// Records a new job (in the caller's transaction, with its queue job).
pub async fn insert_job(conn: &mut AnyConnection, job: &NewImport, now: i64) -> Result<(), sqlx::Error> {
    let metadata = serde_json::json!({"queue_job_id": job.queue_job_id, "stage_ms": {}});
    sqlx::query(
        "INSERT INTO usage_jobs (id, file_location, filename, total_rows, processed_rows, job_metadata, created_at, \
         created_by, status, stage, updated_at, users_bytes, users_sha256, users_total, tx_bytes, tx_sha256, \
         transactions_filename, users_filename) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, 'queued', 'queued', $6, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&job.id)
    .bind(&job.dir)
    .bind(format!("{},{}", job.transactions.original_name, job.users.original_name))
    .bind(job.transactions.rows as i64)
    .bind(metadata.to_string())
    .bind(now)
    .bind(&job.created_by)
    .bind(job.users.bytes as i64)
    .bind(&job.users.sha256)
    .bind(job.users.rows as i64)
    .bind(job.transactions.bytes as i64)
    .bind(&job.transactions.sha256)
    .bind(&job.transactions.original_name)
    .bind(&job.users.original_name)
    .execute(conn)
    .await?;
    Ok(())
}

/// One job.
pub async fn load_job<'e, E>(exec: E, id: &str) -> Result<Option<JobRecord>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query("SELECT * FROM usage_jobs WHERE id = $1").bind(id).fetch_optional(exec).await?;
    Ok(row.as_ref().map(job_record))
}

/// Jobs, newest first, and their total.
pub async fn list_jobs(db: &Db, limit: i64, offset: i64) -> Result<(Vec<JobRecord>, i64), sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM usage_jobs ORDER BY created_at DESC, id LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(db.reader())
        .await?;
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM usage_jobs").fetch_one(db.reader()).await?.get(0);
    Ok((rows.iter().map(job_record).collect(), total))
}

/// Moves a job to `stage` with `status`, recording stage timings in its metadata.
pub async fn set_stage(
    conn: &mut AnyConnection,
    job: &JobRecord,
    status: &str,
    stage: &str,
    metadata: &Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    let finished = matches!(status, "succeeded" | "failed").then_some(now);
    sqlx::query(
        "UPDATE usage_jobs SET status = $1, stage = $2, job_metadata = $3, updated_at = $4, \
         started_at = COALESCE(started_at, $4), \
         tx_started_at = CASE WHEN $2 = 'transactions' THEN COALESCE(tx_started_at, $4) ELSE tx_started_at END, \
         processed_at = COALESCE($5, processed_at) WHERE id = $6",
    )
    .bind(status)
    .bind(stage)
    .bind(metadata.to_string())
    .bind(now)
    .bind(finished)
    .bind(&job.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks a job failed with `error`.
pub async fn mark_failed(
    conn: &mut AnyConnection,
    id: &str,
    error: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE usage_jobs SET status = 'failed', error = $1, updated_at = $2, processed_at = $2 \
         WHERE id = $3 AND status <> 'succeeded'",
    )
    .bind(error)
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes a failed job runnable again (it resumes from its checkpoint).
pub async fn reopen(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE usage_jobs SET status = 'running', error = NULL, processed_at = NULL, updated_at = $1 \
         WHERE id = $2 AND status = 'failed'",
    )
    .bind(now)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a committed chunk of `kind`: its checkpoint and counts.
pub async fn advance(
    conn: &mut AnyConnection,
    id: &str,
    kind: FileKind,
    end: Checkpoint,
    counts: ChunkCounts,
    now: i64,
) -> Result<(), sqlx::Error> {
    let p = kind.prefix();
    let processed =
        if kind == FileKind::Transactions { ", processed_rows = processed_rows + $2" } else { "" };
    let sql = format!(
        "UPDATE usage_jobs SET {p}_offset = $1, {p}_read = {p}_read + $2, {p}_inserted = {p}_inserted + $3, \
         {p}_updated = {p}_updated + $4, {p}_unchanged = {p}_unchanged + $5, {p}_rejected = {p}_rejected + $6, \
         {p}_line = $7, updated_at = $8{processed} WHERE id = $9"
    );
    sqlx::query(&sql)
        .bind(end.offset as i64)
        .bind(counts.read)
        .bind(counts.inserted)
        .bind(counts.updated)
        .bind(counts.unchanged)
        .bind(counts.rejected)
        .bind(end.line as i64)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores rejected rows for the report.
pub async fn insert_rejects(
    conn: &mut AnyConnection,
    job_id: &str,
    kind: FileKind,
    rejects: &[Reject],
) -> Result<(), sqlx::Error> {
    for chunk in rejects.chunks(rows_per_statement(5)) {
        let sql = format!(
            "INSERT INTO usage_rejects (job_id, file, line, field, reason) VALUES {} ON CONFLICT DO NOTHING",
            backend_of(conn).sequential_rows(chunk.len(), 5)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q.bind(job_id).bind(kind.as_str()).bind(r.line as i64).bind(&r.field).bind(&r.reason);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A page of a job's rejected rows: the users file's first, each in line order.
pub async fn rejects_page(
    db: &Db,
    job_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<(String, Reject)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT file, line, field, reason FROM usage_rejects WHERE job_id = $1 \
         ORDER BY file DESC, line LIMIT $2 OFFSET $3",
    )
    .bind(job_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let line: i64 = r.get("line");
            (r.get("file"), Reject { line: line as u64, field: r.get("field"), reason: r.get("reason") })
        })
        .collect())
}

/// How many rows a job rejected.
pub async fn count_rejects(db: &Db, job_id: &str) -> Result<i64, sqlx::Error> {
    Ok(sqlx::query("SELECT COUNT(*) FROM usage_rejects WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(db.reader())
        .await?
        .get(0))
}

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

/// Sets how many days the aggregate stage has to recompute.
pub async fn set_days_total(conn: &mut AnyConnection, job_id: &str, total: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE usage_jobs SET days_total = $1, days_done = 0 WHERE id = $2")
        .bind(total)
        .bind(job_id)
        .execute(conn)
        .await?;
    Ok(())
}

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

/// How far past its home key an id may be placed when keys clash.
pub const KEY_PROBES: i64 = 32;

/// The home key of a `RowId`: the first 62 bits of its SHA-256 (so probing never overflows).
pub fn transaction_key(id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 2) as i64
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

/// The rows of `sql`, whose `{}` stands for an `IN` list, over `values` in batches that stay far
/// below both databases' parameter limits.
pub(crate) async fn rows_where_in(
    conn: &mut AnyConnection,
    sql: &str,
    values: &[&str],
) -> Result<Vec<AnyRow>, sqlx::Error> {
    let mut rows = Vec::new();
    for batch in values.chunks(rows_per_statement(1)) {
        let text = sql.replace("{}", &backend_of(conn).sequential_placeholders(batch.len()));
        let mut q = sqlx::query(&text);
        for value in batch {
            q = q.bind(*value);
        }
        rows.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}
