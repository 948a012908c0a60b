//! The answers of the module's routes (upload, jobs, the bad-row report).

use serde::Serialize;
use serde_json::Value;
use sightline_platform::db::ms_to_rfc3339;
use utoipa::ToSchema;

use crate::kpis::KpiData;
use crate::model::{FileKind, FileProgress, ImportStage, ImportStatus, JobRecord, Reject};
use crate::upload::AcceptedUpload;

/// The upload answer, in the original's envelope.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"message": "success", "data": {"job_id": "7f6c1a9e-3f7e-4c1b-9f7e-2b8a3c4d5e6f"}}))]
pub struct UploadAccepted {
    /// Always `success`.
    pub message: &'static str,
    /// The job.
    pub data: UploadedJob,
}

impl UploadAccepted {
    /// The answer for a queued upload.
    pub fn queued(upload: AcceptedUpload) -> Self {
        Self {
            message: "success",
            data: UploadedJob {
                job_id: upload.job_id,
                status: ImportStatus::Queued,
                total_rows: upload.total_rows as i64,
                progress: 0.0,
            },
        }
    }
}

/// The job created by an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadedJob {
    /// Job id: `GET /jobs/{job_id}`, `WS /jobs/{job_id}`.
    pub job_id: String,
    /// `queued`.
    pub status: ImportStatus,
    /// Transactions rows in the file.
    pub total_rows: i64,
    /// 0.
    pub progress: f64,
}

/// Progress through one file.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct FileStatus {
    /// Name the client gave the file.
    pub name: String,
    /// Size in bytes.
    pub bytes: i64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Data rows in the file.
    pub total: i64,
    /// Rows read so far.
    pub read: i64,
    /// New rows stored.
    pub inserted: i64,
    /// Stored rows that changed.
    pub updated: i64,
    /// Rows identical to what was stored (a repeated upload).
    pub unchanged: i64,
    /// Rows rejected (see the report).
    pub rejected: i64,
}

/// The aggregate stage.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct AggregateStatus {
    /// Days whose daily tables are recomputed.
    pub days_total: i64,
    /// Days done.
    pub days_done: i64,
}

/// An import job: state, stage, counts, rate and ETA.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct JobStatus {
    /// Job id.
    pub job_id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: ImportStatus,
    /// `queued`, `users`, `transactions`, `aggregates` or `done`.
    pub stage: ImportStage,
    /// Overall progress, 0–100.
    pub progress: f64,
    /// `<transactions file>,<users file>`.
    pub filename: String,
    /// Transactions rows in the file.
    pub total_rows: i64,
    /// Transactions rows read so far.
    pub processed_rows: i64,
    /// Same as `processed_rows` (the original's progress event name).
    pub rows_processed: i64,
    /// The users file.
    pub users: FileStatus,
    /// The transactions file.
    pub transactions: FileStatus,
    /// The aggregate stage.
    pub aggregates: AggregateStatus,
    /// Transactions rows read per second.
    pub rows_per_second: f64,
    /// Seconds left, estimated from the rate (null when unknown or done).
    pub eta_seconds: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Where the bad-row report is.
    pub rejects_url: String,
    /// Time spent per stage, ms.
    pub stage_ms: Value,
    /// The platform queue job running it.
    pub queue_job_id: Option<i64>,
    /// Who uploaded it.
    pub created_by: Option<String>,
    /// Upload time (RFC 3339).
    pub created_at: String,
    /// First start (RFC 3339).
    pub started_at: Option<String>,
    /// Completion (RFC 3339).
    pub processed_at: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl JobStatus {
    /// True once the job can change no more.
    pub fn finished(&self) -> bool {
        self.status.finished()
    }

    /// The view of `job` at `now_ms`.
    pub fn new(job: &JobRecord, now_ms: i64) -> Self {
        let file = |p: &FileProgress, name: &str, total: i64| FileStatus {
            name: name.to_owned(),
            bytes: p.bytes,
            sha256: p.sha256.clone(),
            total: total.max(p.read),
            read: p.read,
            inserted: p.inserted,
            updated: p.updated,
            unchanged: p.unchanged,
            rejected: p.rejected,
        };
        let users = file(&job.users, &job.users_filename, job.users_total);
        let transactions = file(&job.transactions, &job.transactions_filename, job.total_rows);
        let fraction =
            |done: i64, total: i64| if total <= 0 { 1.0 } else { (done as f64 / total as f64).min(1.0) };
        let (u, t, a) = match job.stage {
            ImportStage::Queued => (0.0, 0.0, 0.0),
            ImportStage::Users => (fraction(users.read, users.total), 0.0, 0.0),
            ImportStage::Transactions => (1.0, fraction(transactions.read, transactions.total), 0.0),
            ImportStage::Aggregates => (1.0, 1.0, fraction(job.days_done, job.days_total)),
            ImportStage::Done => (1.0, 1.0, 1.0),
        };
        let progress = if job.status == ImportStatus::Succeeded {
            100.0
        } else {
            ((5.0 * u + 85.0 * t + 10.0 * a) * 10.0).round() / 10.0
        };
        let end = job.processed_at.unwrap_or(now_ms);
        let secs = job.tx_started_at.map(|s| (end - s) as f64 / 1000.0).unwrap_or(0.0);
        let rows_per_second = if secs > 0.0 { (job.transactions.read as f64 / secs).round() } else { 0.0 };
        let eta_seconds = (job.status == ImportStatus::Running
            && rows_per_second > 0.0
            && job.stage == ImportStage::Transactions)
            .then(|| {
                ((transactions.total - transactions.read).max(0) as f64 / rows_per_second * 10.0).round()
                    / 10.0
            });
        Self {
            job_id: job.id.clone(),
            status: job.status,
            stage: job.stage,
            progress,
            filename: job.filename.clone(),
            total_rows: transactions.total,
            processed_rows: job.processed_rows,
            rows_processed: job.processed_rows,
            users,
            transactions,
            aggregates: AggregateStatus { days_total: job.days_total, days_done: job.days_done },
            rows_per_second,
            eta_seconds,
            error: job.error.clone(),
            rejects_url: format!("/jobs/{}/rejects", job.id),
            stage_ms: job.metadata.get("stage_ms").cloned().unwrap_or(Value::Null),
            queue_job_id: job.metadata.get("queue_job_id").and_then(Value::as_i64),
            created_by: job.created_by.clone(),
            created_at: ms_to_rfc3339(job.created_at),
            started_at: job.started_at.map(ms_to_rfc3339),
            processed_at: job.processed_at.map(ms_to_rfc3339),
            updated_at: ms_to_rfc3339(job.updated_at),
        }
    }
}

/// One rejected row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRow {
    /// `users` or `transactions`.
    pub file: String,
    /// Line in the file.
    pub line: u64,
    /// Column at fault (empty for the whole row).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl RejectedRow {
    /// The report row of `reject` in `file`.
    pub fn new(file: FileKind, reject: Reject) -> Self {
        Self { file: file.as_str().to_owned(), line: reject.line, field: reject.field, reason: reject.reason }
    }
}

/// KPIs in the original's envelope: `{"message":"success","data":{…}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiAnswer {
    /// Always `success`.
    pub message: &'static str,
    /// The KPIs.
    pub data: KpiData,
}
