//! Leases and liveness. A claimed job is leased to the worker loop that holds it; a standalone
//! job's lease is extended while it runs. Each worker process records a heartbeat in
//! `queue_workers`; jobs whose lease ran out, or whose process stopped beating for
//! `queue.dead_after_secs`, are queued again (or failed, when that was their last attempt).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::{now_ms, Db};

/// Keeps one standalone job's lease alive while it runs; stops when dropped.
pub(crate) struct LeaseKeeper {
    /// Fires when the job should stop: the process stops, or the lease was lost.
    pub stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Extends job `id`'s lease every third of the lease time until dropped; fires the keeper's
/// token when `shutdown` fires or the lease turns out to be lost.
pub(crate) fn keep_lease(
    db: Db,
    id: i64,
    worker_id: &str,
    lease_ms: i64,
    shutdown: &CancellationToken,
) -> LeaseKeeper {
    let stop = shutdown.child_token();
    let every = Duration::from_millis((lease_ms / 3).max(100) as u64);
    let worker_id = worker_id.to_owned();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let now = now_ms();
            let extended = sqlx::query(
                "UPDATE queue_jobs SET lease_until = $1, updated_at = $2 \
                 WHERE id = $3 AND locked_by = $4 AND state = 'running'",
            )
            .bind(now + lease_ms)
            .bind(now)
            .bind(id)
            .bind(&worker_id)
            .execute(db.writer())
            .await;
            match extended {
                Ok(done) if done.rows_affected() == 1 => {}
                Ok(_) => {
                    tracing::warn!(job.id = id, "queue.lease_lost");
                    token.cancel();
                    return;
                }
                Err(e) => tracing::warn!(job.id = id, error = %e, "queue.lease_extend_failed"),
            }
        }
    });
    LeaseKeeper { stop, task }
}

/// This process in the worker registry.
pub(crate) struct Registration<'a> {
    pub worker_id: &'a str,
    pub concurrency: i64,
    pub job_types: String,
}

/// Records the process in `queue_workers`, or refreshes its heartbeat.
pub(crate) async fn heartbeat(db: &Db, me: &Registration<'_>) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    sqlx::query(
        "INSERT INTO queue_workers (id, host, pid, concurrency, job_types, started_at, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO UPDATE SET heartbeat_at = $6",
    )
    .bind(me.worker_id)
    .bind(host)
    .bind(i64::from(std::process::id()))
    .bind(me.concurrency)
    .bind(&me.job_types)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Removes the process from the registry (on a clean stop).
pub(crate) async fn deregister(db: &Db, worker_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM queue_workers WHERE id = $1").bind(worker_id).execute(db.writer()).await?;
    Ok(())
}

/// Forgets processes silent for an hour.
pub(crate) async fn purge_stale_workers(db: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM queue_workers WHERE heartbeat_at < $1")
        .bind(now_ms() - 3_600_000)
        .execute(db.writer())
        .await?;
    Ok(done.rows_affected())
}

/// The jobs a running worker no longer holds: its lease ran out, or it was claimed more than
/// the dead-after time ago by a process with no heartbeat since (`$1` now, `$2` the cutoff).
/// A loop locks jobs as `<process id>-<loop>`.
const ABANDONED: &str = "state = 'running' AND (lease_until < $1 OR (updated_at < $2 AND NOT EXISTS (\
     SELECT 1 FROM queue_workers w WHERE w.heartbeat_at >= $2 \
     AND (queue_jobs.locked_by = w.id OR queue_jobs.locked_by LIKE (w.id || '-%')))))";

/// Queues again the jobs whose worker stopped holding them (see [`ABANDONED`]); those out of
/// attempts become `failed`. Returns how many were recovered.
pub(crate) async fn recover_abandoned(db: &Db, dead_after_ms: i64) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let cutoff = now - dead_after_ms;
    let mut tx = db.begin().await?;
    let failed = sqlx::query(&format!(
        "UPDATE queue_jobs SET state = 'failed', finished_at = $1, updated_at = $1, \
         locked_by = NULL, lease_until = NULL, \
         last_error = 'the worker stopped before finishing (last attempt)' \
         WHERE attempts >= max_attempts AND {ABANDONED}"
    ))
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    let requeued = sqlx::query(&format!(
        "UPDATE queue_jobs SET state = 'queued', run_at = $1, updated_at = $1, \
         locked_by = NULL, lease_until = NULL, \
         last_error = 'the worker stopped before finishing' WHERE {ABANDONED}"
    ))
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let n = failed.rows_affected() + requeued.rows_affected();
    if n > 0 {
        tracing::warn!(
            requeued = requeued.rows_affected(),
            failed = failed.rows_affected(),
            "queue.lease_recovered"
        );
    }
    Ok(n)
}
