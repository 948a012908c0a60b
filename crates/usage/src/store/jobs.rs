//! `usage_jobs` (one row per upload: status, stage, checkpoints and counts) and `usage_rejects`
//! (the bad-row report of each job).

use serde_json::Value;
use sightline_platform::db::{backend_of, rows_per_statement, Db};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::model::{
    Checkpoint, ChunkCounts, FileKind, FileProgress, ImportStage, ImportStatus, JobRecord, NewImport, Reject,
};

/// The prefix of a file's columns in `usage_jobs`.
fn column_prefix(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Users => "users",
        FileKind::Transactions => "tx",
    }
}

fn progress(row: &AnyRow, kind: FileKind) -> Result<FileProgress, sqlx::Error> {
    let prefix = column_prefix(kind);
    let col = |name: &str| format!("{prefix}_{name}");
    Ok(FileProgress {
        checkpoint: Checkpoint {
            offset: row.try_get::<i64, _>(col("offset").as_str())? as u64,
            line: row.try_get::<i64, _>(col("line").as_str())? as u64,
        },
        read: row.try_get(col("read").as_str())?,
        inserted: row.try_get(col("inserted").as_str())?,
        updated: row.try_get(col("updated").as_str())?,
        unchanged: row.try_get(col("unchanged").as_str())?,
        rejected: row.try_get(col("rejected").as_str())?,
        bytes: row.try_get(col("bytes").as_str())?,
        sha256: row.try_get(col("sha256").as_str())?,
    })
}

fn job_record(row: &AnyRow) -> Result<JobRecord, sqlx::Error> {
    let metadata: String = row.try_get("job_metadata")?;
    let (status, stage): (String, String) = (row.try_get("status")?, row.try_get("stage")?);
    Ok(JobRecord {
        id: row.try_get("id")?,
        status: ImportStatus::parse(&status).ok_or_else(|| undecodable("usage_jobs.status", &status))?,
        stage: ImportStage::parse(&stage).ok_or_else(|| undecodable("usage_jobs.stage", &stage))?,
        file_location: row.try_get("file_location")?,
        filename: row.try_get("filename")?,
        transactions_filename: row.try_get::<Option<String>, _>("transactions_filename")?.unwrap_or_default(),
        users_filename: row.try_get::<Option<String>, _>("users_filename")?.unwrap_or_default(),
        total_rows: row.try_get("total_rows")?,
        processed_rows: row.try_get("processed_rows")?,
        error: row.try_get("error")?,
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
        users_total: row.try_get("users_total")?,
        users: progress(row, FileKind::Users)?,
        transactions: progress(row, FileKind::Transactions)?,
        days_total: row.try_get("days_total")?,
        days_done: row.try_get("days_done")?,
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
        started_at: row.try_get("started_at")?,
        tx_started_at: row.try_get("tx_started_at")?,
        updated_at: row.try_get("updated_at")?,
        processed_at: row.try_get("processed_at")?,
    })
}

/// Records a new job (in the caller's transaction, with its queue job `queue_job_id`).
pub async fn insert_job(
    conn: &mut AnyConnection,
    job: &NewImport,
    queue_job_id: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let metadata = serde_json::json!({"queue_job_id": queue_job_id, "stage_ms": {}});
    sqlx::query(
        "INSERT INTO usage_jobs (id, file_location, filename, total_rows, processed_rows, job_metadata, created_at, \
         created_by, status, stage, updated_at, users_bytes, users_sha256, users_total, tx_bytes, tx_sha256, \
         transactions_filename, users_filename) \
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $15, $16, $6, $8, $9, $10, $11, $12, $13, $14)",
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
    .bind(ImportStatus::Queued.as_str())
    .bind(ImportStage::Queued.as_str())
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
    row.as_ref().map(job_record).transpose()
}

/// Jobs, newest first, and their total.
pub async fn list_jobs(db: &Db, limit: i64, offset: i64) -> Result<(Vec<JobRecord>, i64), sqlx::Error> {
    let rows = sqlx::query("SELECT * FROM usage_jobs ORDER BY created_at DESC, id LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(db.reader())
        .await?;
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM usage_jobs").fetch_one(db.reader()).await?.get(0);
    Ok((rows.iter().map(job_record).collect::<Result<_, _>>()?, total))
}

/// Moves a job to `stage` with `status`, recording stage timings in its metadata.
pub async fn set_stage(
    conn: &mut AnyConnection,
    job: &JobRecord,
    status: ImportStatus,
    stage: ImportStage,
    metadata: &Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    let finished = status.finished().then_some(now);
    // The transactions stage's start is kept for the rate.
    let tx_started = (stage == ImportStage::Transactions).then_some(now);
    sqlx::query(
        "UPDATE usage_jobs SET status = $1, stage = $2, job_metadata = $3, updated_at = $4, \
         started_at = COALESCE(started_at, $4), tx_started_at = COALESCE(tx_started_at, $7), \
         processed_at = COALESCE($5, processed_at) WHERE id = $6",
    )
    .bind(status.as_str())
    .bind(stage.as_str())
    .bind(metadata.to_string())
    .bind(now)
    .bind(finished)
    .bind(&job.id)
    .bind(tx_started)
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
        "UPDATE usage_jobs SET status = $4, error = $1, updated_at = $2, processed_at = $2 \
         WHERE id = $3 AND status <> $5",
    )
    .bind(error)
    .bind(now)
    .bind(id)
    .bind(ImportStatus::Failed.as_str())
    .bind(ImportStatus::Succeeded.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes a failed job runnable again (it resumes from its checkpoint).
pub async fn reopen(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE usage_jobs SET status = $3, error = NULL, processed_at = NULL, updated_at = $1 \
         WHERE id = $2 AND status = $4",
    )
    .bind(now)
    .bind(id)
    .bind(ImportStatus::Running.as_str())
    .bind(ImportStatus::Failed.as_str())
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
    let p = column_prefix(kind);
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

/// Sets how many days the aggregate stage has to recompute.
pub async fn set_days_total(conn: &mut AnyConnection, job_id: &str, total: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE usage_jobs SET days_total = $1, days_done = 0 WHERE id = $2")
        .bind(total)
        .bind(job_id)
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
) -> Result<Vec<(FileKind, Reject)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT file, line, field, reason FROM usage_rejects WHERE job_id = $1 \
         ORDER BY file DESC, line LIMIT $2 OFFSET $3",
    )
    .bind(job_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(db.reader())
    .await?;
    rows.iter()
        .map(|r| {
            let file: String = r.try_get("file")?;
            let file = FileKind::from_field(&file).ok_or_else(|| undecodable("usage_rejects.file", &file))?;
            let line: i64 = r.try_get("line")?;
            Ok((file, Reject { line: line as u64, field: r.try_get("field")?, reason: r.try_get("reason")? }))
        })
        .collect()
}

/// The error of a stored value the module does not know.
fn undecodable(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("{column} holds an unknown value {value:?}").into())
}

/// How many rows a job rejected.
pub async fn count_rejects(db: &Db, job_id: &str) -> Result<i64, sqlx::Error> {
    Ok(sqlx::query("SELECT COUNT(*) FROM usage_rejects WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(db.reader())
        .await?
        .get(0))
}
