//! Inspecting and steering the queue, for the job dashboard: counts, listings, workers, retries
//! and removal.

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

use super::{lease, store, Queue, QueueError};
use crate::db::{ms_to_rfc3339, now_ms, Conditions, FilterValue};

/// A failed job may go back to the queue only while no queued or running job holds its key.
const KEY_FREE: &str = "(dedup_key IS NULL OR NOT EXISTS (SELECT 1 FROM queue_jobs other \
     WHERE other.dedup_key = queue_jobs.dedup_key AND other.state IN ('queued', 'running')))";

/// Job state counts for one queue.
#[derive(Debug, Clone, Serialize, ToSchema, Default, PartialEq)]
pub struct QueueCounts {
    /// Queue name.
    pub queue: String,
    /// Waiting to run (including scheduled retries).
    pub queued: i64,
    /// Claimed by a worker.
    pub running: i64,
    /// Done (kept for the retention period).
    pub succeeded: i64,
    /// Out of attempts.
    pub failed: i64,
}

/// One job as shown by the queue API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobView {
    /// Job id.
    pub id: i64,
    /// Queue name.
    pub queue: String,
    /// Job type.
    pub job_type: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// Last error, if any.
    pub last_error: Option<String>,
    /// Request id that enqueued it.
    pub request_id: Option<String>,
    /// Input.
    pub payload: Value,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Next or last run time (RFC 3339).
    pub run_at: String,
    /// Completion time (RFC 3339), if finished.
    pub finished_at: Option<String>,
}

const JOB_COLUMNS: &str = "id, queue, job_type, state, attempts, max_attempts, last_error, \
     request_id, payload, created_at, run_at, finished_at";

fn job_view(row: &AnyRow) -> JobView {
    let payload: String = row.get("payload");
    JobView {
        id: row.get("id"),
        queue: row.get("queue"),
        job_type: row.get("job_type"),
        state: row.get("state"),
        attempts: row.get("attempts"),
        max_attempts: row.get("max_attempts"),
        last_error: row.get("last_error"),
        request_id: row.get("request_id"),
        payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
        created_at: ms_to_rfc3339(row.get("created_at")),
        run_at: ms_to_rfc3339(row.get("run_at")),
        finished_at: row.get::<Option<i64>, _>("finished_at").map(ms_to_rfc3339),
    }
}

/// Which jobs [`Queue::list`] returns; `None` matches any.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// `queued`, `running`, `succeeded`, `failed`, or `stuck` (running with its lease expired).
    pub state: Option<String>,
    /// Queue name.
    pub queue: Option<String>,
    /// Job type.
    pub job_type: Option<String>,
}

/// What [`Queue::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Removal {
    /// Deleted.
    Removed,
    /// Left alone: a worker holds it.
    Running,
    /// No such job.
    NotFound,
}

/// One worker process as the job dashboard shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkerView {
    /// Worker id (`pid<pid>-<random>`).
    pub id: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: i64,
    /// Worker loops in the process.
    pub concurrency: i64,
    /// Job types it runs.
    pub job_types: Vec<String>,
    /// Start time (RFC 3339).
    pub started_at: String,
    /// Last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// Heartbeat seen within three heartbeat periods.
    pub alive: bool,
    /// Ids of the jobs it is running.
    pub running_jobs: Vec<i64>,
}

/// Of failed jobs sharing a key, only the newest goes back to the queue.
const NEWEST_OF_KEY: &str = "(dedup_key IS NULL OR id = (SELECT MAX(other.id) FROM queue_jobs other \
     WHERE other.dedup_key = queue_jobs.dedup_key AND other.state = 'failed'))";

impl Queue {
    /// Job counts per queue and state.
    pub async fn counts(&self) -> Result<Vec<QueueCounts>, QueueError> {
        let rows = sqlx::query(
            "SELECT queue, state, COUNT(*) AS n FROM queue_jobs GROUP BY queue, state ORDER BY queue",
        )
        .fetch_all(self.db.reader())
        .await?;
        let mut out: Vec<QueueCounts> = Vec::new();
        for row in rows {
            let queue: String = row.get("queue");
            let state: String = row.get("state");
            let n: i64 = row.get("n");
            if out.last().map(|c| c.queue != queue).unwrap_or(true) {
                out.push(QueueCounts { queue: queue.clone(), ..Default::default() });
            }
            let c = out.last_mut().expect("pushed above");
            match state.as_str() {
                "queued" => c.queued = n,
                "running" => c.running = n,
                "succeeded" => c.succeeded = n,
                "failed" => c.failed = n,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Jobs matching `filter` (newest first) and their total.
    pub async fn list(
        &self,
        filter: &JobFilter,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<JobView>, i64), QueueError> {
        let mut conditions = Conditions::default();
        match filter.state.as_deref() {
            Some("stuck") => {
                conditions
                    .fixed("state = 'running'")
                    .bind(|n| format!("lease_until < ${n}"), FilterValue::Int(now_ms()));
            }
            state => {
                conditions.eq("state", state);
            }
        }
        conditions.eq("queue", filter.queue.as_deref()).eq("job_type", filter.job_type.as_deref());
        let next = conditions.next_placeholder();
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM queue_jobs{} ORDER BY id DESC LIMIT ${next} OFFSET ${}",
            conditions.where_sql(),
            next + 1
        );
        let rows =
            conditions.apply(sqlx::query(&sql)).bind(limit).bind(offset).fetch_all(self.db.reader()).await?;
        let count = format!("SELECT COUNT(*) FROM queue_jobs{}", conditions.where_sql());
        let total: i64 = conditions.apply(sqlx::query(&count)).fetch_one(self.db.reader()).await?.get(0);
        Ok((rows.iter().map(job_view).collect(), total))
    }

    /// Deletes a job that is not running.
    pub async fn remove(&self, id: i64) -> Result<Removal, QueueError> {
        let done = sqlx::query("DELETE FROM queue_jobs WHERE id = $1 AND state <> 'running'")
            .bind(id)
            .execute(self.db.writer())
            .await?;
        if done.rows_affected() == 1 {
            return Ok(Removal::Removed);
        }
        Ok(match self.get(id).await? {
            Some(_) => Removal::Running,
            None => Removal::NotFound,
        })
    }

    /// Worker processes seen in the last hour, newest heartbeat first, with the jobs they hold.
    pub async fn workers(&self) -> Result<Vec<WorkerView>, QueueError> {
        let now = now_ms();
        let rows = sqlx::query(
            "SELECT id, host, pid, concurrency, job_types, started_at, heartbeat_at FROM queue_workers \
             ORDER BY heartbeat_at DESC",
        )
        .fetch_all(self.db.reader())
        .await?;
        let running = sqlx::query("SELECT id, locked_by FROM queue_jobs WHERE state = 'running' ORDER BY id")
            .fetch_all(self.db.reader())
            .await?;
        // A worker's loops lock jobs as `<worker id>-<loop>`.
        let alive_ms = self.config.heartbeat_ms as i64 * 3;
        Ok(rows
            .iter()
            .map(|row| {
                let id: String = row.get("id");
                let prefix = format!("{id}-");
                let heartbeat_at: i64 = row.get("heartbeat_at");
                let job_types: String = row.get("job_types");
                WorkerView {
                    running_jobs: running
                        .iter()
                        .filter(|r| {
                            r.get::<Option<String>, _>("locked_by").is_some_and(|l| l.starts_with(&prefix))
                        })
                        .map(|r| r.get("id"))
                        .collect(),
                    host: row.get("host"),
                    pid: row.get("pid"),
                    concurrency: row.get("concurrency"),
                    job_types: job_types.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
                    started_at: ms_to_rfc3339(row.get("started_at")),
                    heartbeat_at: ms_to_rfc3339(heartbeat_at),
                    alive: now - heartbeat_at <= alive_ms,
                    id,
                }
            })
            .collect())
    }

    /// One job.
    pub async fn get(&self, id: i64) -> Result<Option<JobView>, QueueError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM queue_jobs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(self.db.reader()).await?;
        Ok(row.as_ref().map(job_view))
    }

    /// Queues a failed job again with fresh attempts; `false` when it is not failed.
    pub async fn retry(&self, id: i64) -> Result<bool, QueueError> {
        let now = now_ms();
        let done = sqlx::query(&format!(
            "UPDATE queue_jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1, \
             finished_at = NULL WHERE id = $2 AND state = 'failed' AND {KEY_FREE}"
        ))
        .bind(now)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        self.wake();
        Ok(done.rows_affected() == 1)
    }

    /// Queues every failed job again; returns how many.
    pub async fn retry_all_failed(&self) -> Result<u64, QueueError> {
        let now = now_ms();
        let done = sqlx::query(&format!(
            "UPDATE queue_jobs SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1, \
             finished_at = NULL WHERE state = 'failed' AND {KEY_FREE} AND {NEWEST_OF_KEY}"
        ))
        .bind(now)
        .execute(self.db.writer())
        .await?;
        self.wake();
        Ok(done.rows_affected())
    }

    /// Queues again the jobs whose worker stopped holding them: lease expired, or the process
    /// stopped beating. Jobs out of attempts become `failed`. Returns how many.
    pub async fn recover_abandoned(&self) -> Result<u64, QueueError> {
        let n = lease::recover_abandoned(&self.db, self.config.dead_after_secs * 1000).await?;
        if n > 0 {
            self.wake();
        }
        Ok(n)
    }

    /// Deletes succeeded jobs finished before `cutoff_ms`.
    pub async fn purge_succeeded(&self, cutoff_ms: i64) -> Result<u64, QueueError> {
        Ok(store::purge_succeeded(&self.db, cutoff_ms).await?)
    }
}
