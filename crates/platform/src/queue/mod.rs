//! Durable, table-backed job queue (`queue_jobs`) on SQLite and PostgreSQL.
//!
//! Jobs are inserted in the same transaction as the write that causes them. A job type is a
//! [`Job`]: a serde payload with a name, a queue, a retry policy and an optional deduplication
//! key. Its handler either runs inside the worker's transaction ([`RunInTransaction`]: the job's
//! effects and its completion commit together, so it is never applied twice) or on its own
//! ([`RunStandalone`]: long jobs such as imports, which commit their own checkpoints while the
//! worker keeps the lease alive, and resume from the last one).
//!
//! The files follow the seams: this one is the contract; [`job`] the typed job traits;
//! `store` the SQL of a job's life; `worker` the loops that claim and run jobs; `lease` the
//! leases, heartbeats and the recovery of jobs whose worker died; [`admin`] inspection and
//! retries; [`http`] the dashboard API.

pub mod admin;
pub mod http;
pub mod job;
mod lease;
mod store;
mod worker;

use std::sync::Arc;

use serde_json::Value;
use sqlx::AnyConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use admin::{JobFilter, JobView, QueueCounts, Removal, WorkerView};
pub use job::{Job, RetryPolicy, RunInTransaction, RunStandalone};
pub use store::{DEDUP_MIGRATION, MIGRATION, WORKERS_MIGRATION};
pub use worker::Workers;

use crate::config::QueueConfig;
use crate::db::Db;

/// A job to enqueue, untyped: [`Queue::push`] builds one from a [`Job`].
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Queue name (usually the module's).
    pub queue: String,
    /// Job type, e.g. `actions.process_event`.
    pub job_type: String,
    /// Input.
    pub payload: Value,
    /// Earliest run time (epoch ms); now when `None`.
    pub run_at_ms: Option<i64>,
    /// Request id to carry; the current one when `None`.
    pub request_id: Option<String>,
    /// Attempts allowed; `[queue] max_attempts` when `None`.
    pub max_attempts: Option<i64>,
    /// While a job with this key is queued or running, enqueueing another does nothing.
    pub dedup_key: Option<String>,
}

impl NewJob {
    /// A job to run now.
    pub fn new(queue: impl Into<String>, job_type: impl Into<String>, payload: Value) -> Self {
        Self {
            queue: queue.into(),
            job_type: job_type.into(),
            payload,
            run_at_ms: None,
            request_id: None,
            max_attempts: None,
            dedup_key: None,
        }
    }

    /// The job of a typed `job`: its name, queue, payload, attempts and key.
    pub fn of<J: Job>(job: &J) -> Result<Self, serde_json::Error> {
        Ok(Self {
            max_attempts: J::retry_policy().map(|p| p.max_attempts),
            dedup_key: job.dedup_key().map(|key| format!("{}:{key}", J::NAME)),
            ..Self::new(J::QUEUE, J::NAME, serde_json::to_value(job)?)
        })
    }

    /// Carries `request_id` (for jobs enqueued outside the request's task).
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// What a handler sees of the job it runs.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Job id.
    pub id: i64,
    /// Job type.
    pub job_type: String,
    /// Attempt number, from 1.
    pub attempt: i64,
    /// Request id of the request that enqueued it.
    pub request_id: Option<String>,
    /// Input.
    pub payload: Value,
    /// The job's log span, made once so that entering it again inside itself adds nothing.
    span: tracing::Span,
}

impl JobContext {
    /// A job as claimed, with its log span.
    pub fn new(id: i64, job_type: String, attempt: i64, request_id: Option<String>, payload: Value) -> Self {
        let span = tracing::info_span!(
            "job",
            request_id = request_id.as_deref().unwrap_or(""),
            job.id = id,
            job.r#type = %job_type,
            job.attempt = attempt,
        );
        Self { id, job_type, attempt, request_id, payload, span }
    }

    /// The job's log span: its id, type, attempt and the request id that enqueued it. The same
    /// span every call, so a handler entering it inside the worker's logs it once.
    pub fn span(&self) -> tracing::Span {
        self.span.clone()
    }
}

/// What a standalone handler gets besides its job: the database and a token that fires when it
/// should stop at its next checkpoint (shutdown, or the lease was lost).
#[derive(Debug, Clone)]
pub struct JobLease {
    db: Db,
    stop: CancellationToken,
}

impl JobLease {
    /// The database, to commit checkpoints.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether the job should stop at its next checkpoint and return [`Interrupted`].
    pub fn should_stop(&self) -> bool {
        self.stop.is_cancelled()
    }
}

/// Returned by a standalone handler that stopped at a checkpoint because
/// [`JobLease::should_stop`] said so: the job is queued again at once without using up an
/// attempt.
#[derive(Debug, thiserror::Error)]
#[error("interrupted at a checkpoint")]
pub struct Interrupted;

/// An error that no retry can fix (a file that is not CSV): the job fails at once.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PermanentFailure(pub String);

/// The queue's own storage failed (answered as a logged 500).
#[derive(Debug, thiserror::Error)]
#[error("job queue storage failed")]
pub struct QueueError(#[from] sqlx::Error);

impl crate::error::ErrorCode for QueueError {
    fn status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::INTERNAL_SERVER_ERROR
    }

    fn code(&self) -> &'static str {
        "internal"
    }
}

/// Handle to the queue: enqueue, inspect, retry. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    db: Db,
    config: Arc<QueueConfig>,
    new_work: Arc<Notify>,
    finished: Arc<Notify>,
}

impl Queue {
    /// A queue over `db`.
    pub fn new(db: Db, config: QueueConfig) -> Self {
        Self {
            db,
            config: Arc::new(config),
            new_work: Arc::new(Notify::new()),
            finished: Arc::new(Notify::new()),
        }
    }

    /// The queue settings.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Enqueues the typed `job` through `conn` (the caller's transaction); `None` when a job
    /// with the same deduplication key is already queued or running. Call [`Queue::wake`] after
    /// the transaction commits.
    pub async fn push<J: Job>(&self, conn: &mut AnyConnection, job: &J) -> anyhow::Result<Option<i64>> {
        let new = NewJob::of(job)?;
        Ok(self.enqueue(conn, new).await?)
    }

    /// Enqueues many typed jobs through `conn` with multi-row statements; duplicates of a
    /// queued or running key are skipped. Call [`Queue::wake`] after the commit.
    pub async fn push_many<J: Job>(&self, conn: &mut AnyConnection, jobs: &[J]) -> anyhow::Result<()> {
        let new = jobs.iter().map(NewJob::of).collect::<Result<Vec<_>, _>>()?;
        Ok(self.enqueue_many(conn, new).await?)
    }

    /// Inserts `job` through `conn`, tagged with the current request id; `None` when its
    /// deduplication key is taken. Call [`Queue::wake`] after the transaction commits.
    pub async fn enqueue(&self, conn: &mut AnyConnection, job: NewJob) -> Result<Option<i64>, sqlx::Error> {
        store::insert(conn, &job, self.config.max_attempts).await
    }

    /// Inserts many jobs through `conn`. Call [`Queue::wake`] after the transaction commits.
    pub async fn enqueue_many(&self, conn: &mut AnyConnection, jobs: Vec<NewJob>) -> Result<(), sqlx::Error> {
        store::insert_many(conn, jobs, self.config.max_attempts).await
    }

    /// Wakes this process's idle workers (after enqueuing).
    pub fn wake(&self) {
        self.new_work.notify_waiters();
    }

    /// Resolves when any worker of this process next finishes a batch.
    pub async fn batch_finished(&self) {
        self.finished.notified().await;
    }
}
