//! The worker: loops that claim jobs and run their handlers. Jobs run in the worker's
//! transaction are claimed in batches by `queue.concurrency` loops; standalone jobs (imports,
//! backfills, forecasts, exports) run on their own `queue.standalone_concurrency` loops, one job
//! each, so long jobs never hold up short ones. One upkeep task per process beats the heartbeat,
//! recovers abandoned jobs and purges old ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng as _;
use sqlx::AnyConnection;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::job::{catching, Handler, JobRegistration, Mode};
use super::lease::{self, Registration};
use super::store::{self, AfterFailure, Claimed};
use super::{Interrupted, JobContext, JobLease, PermanentFailure, Queue};
use crate::db::{ms_to_rfc3339, now_ms};
use crate::validate::loggable;

/// Runs the registered handlers' jobs: the worker loops of one process, plus its upkeep.
#[derive(Clone)]
pub struct Workers {
    queue: Queue,
    handlers: Arc<HashMap<&'static str, Arc<dyn Handler>>>,
    in_transaction: Arc<Vec<&'static str>>,
    standalone: Arc<Vec<&'static str>>,
    worker_id: String,
}

/// How one claimed job ended, for metrics.
type Outcome = (&'static str, f64);

impl Workers {
    /// Workers for `jobs` over `queue`. Two registrations of one job type are refused.
    pub fn new(queue: Queue, jobs: Vec<JobRegistration>) -> anyhow::Result<Self> {
        let mut handlers: HashMap<&'static str, Arc<dyn Handler>> = HashMap::new();
        for JobRegistration(handler) in jobs {
            if handlers.insert(handler.name(), handler.clone()).is_some() {
                anyhow::bail!("job type {} has two handlers", handler.name());
            }
        }
        let of_mode = |mode| {
            let mut names: Vec<&'static str> =
                handlers.values().filter(|h| h.mode() == mode).map(|h| h.name()).collect();
            names.sort_unstable();
            Arc::new(names)
        };
        let in_transaction = of_mode(Mode::InTransaction);
        let standalone = of_mode(Mode::Standalone);
        let worker_id =
            format!("pid{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Ok(Self { queue, handlers: Arc::new(handlers), in_transaction, standalone, worker_id })
    }

    /// Starts the worker loops and the upkeep task; the loops stop after their current job or
    /// batch once `shutdown` fires (standalone jobs at their next checkpoint).
    pub fn spawn(&self, shutdown: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if self.handlers.is_empty() {
            return tasks;
        }
        let config = self.queue.config();
        let loops = [
            (&self.in_transaction, config.concurrency, "t"),
            (&self.standalone, config.standalone_concurrency, "s"),
        ];
        for (types, count, kind) in loops {
            if types.is_empty() {
                continue;
            }
            for n in 0..count {
                let this = self.clone();
                let token = shutdown.clone();
                let loop_id = format!("{}-{kind}{n}", self.worker_id);
                let standalone = kind == "s";
                tasks.push(tokio::spawn(async move { this.run_loop(loop_id, standalone, token).await }));
            }
        }
        let this = self.clone();
        tasks.push(tokio::spawn(async move { this.upkeep_loop(shutdown).await }));
        tasks
    }

    async fn run_loop(&self, loop_id: String, standalone: bool, shutdown: CancellationToken) {
        tracing::info!(worker = %loop_id, standalone, "queue.worker_started");
        let idle = Duration::from_millis(self.queue.config().poll_interval_ms);
        while !shutdown.is_cancelled() {
            // Register interest before looking, so a wake between the look and the wait is kept.
            // Standalone loops only poll: a wake after every short job's commit would send them
            // to claim (a write, on SQLite the one writer) for nothing, and a long job can start
            // a poll interval later.
            let notified = self.queue.new_work.notified();
            let ran = if standalone {
                self.run_standalone_job(&loop_id, &shutdown).await
            } else {
                self.run_batch(&loop_id).await
            };
            match ran {
                Ok(0) if standalone => {
                    tokio::select! {
                        _ = tokio::time::sleep(idle) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Ok(0) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep(idle) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "queue.worker_error");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                }
            }
        }
        tracing::info!(worker = %loop_id, "queue.worker_stopped");
    }

    async fn upkeep_loop(&self, shutdown: CancellationToken) {
        let config = self.queue.config();
        let every = Duration::from_millis(config.heartbeat_ms);
        let mut types: Vec<&str> = self.handlers.keys().copied().collect();
        types.sort_unstable();
        let me = Registration {
            worker_id: &self.worker_id,
            concurrency: (config.concurrency + config.standalone_concurrency) as i64,
            job_types: types.join(","),
        };
        let db = &self.queue.db;
        let mut last_purge = Instant::now();
        loop {
            if let Err(e) = lease::heartbeat(db, &me).await {
                tracing::warn!(error = %e, "queue.heartbeat_failed");
            }
            if let Err(e) = self.queue.recover_abandoned().await {
                tracing::warn!(error = %e, "queue.lease_recovery_failed");
            }
            if last_purge.elapsed() > Duration::from_secs(600) {
                last_purge = Instant::now();
                let cutoff = now_ms() - 24 * 3600 * 1000;
                if let Err(e) = self.queue.purge_succeeded(cutoff).await {
                    tracing::warn!(error = %e, "queue.purge_failed");
                }
                if let Err(e) = lease::purge_stale_workers(db).await {
                    tracing::warn!(error = %e, "queue.purge_failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.cancelled() => {
                    if let Err(e) = lease::deregister(db, &self.worker_id).await {
                        tracing::warn!(error = %e, "queue.deregister_failed");
                    }
                    return;
                }
            }
        }
    }

    /// Processes due jobs, of both kinds, until none is left; returns how many ran. For tests
    /// and CLI tools.
    pub async fn run_pending(&self) -> anyhow::Result<usize> {
        let loop_id = format!("{}-pending", self.worker_id);
        let never = CancellationToken::new();
        let mut total = 0;
        loop {
            let mut n = self.run_batch(&loop_id).await?;
            if n == 0 {
                n = self.run_standalone_job(&loop_id, &never).await?;
            }
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Claims one batch of in-transaction jobs and runs it; returns how many jobs it held.
    ///
    /// Fast path: the whole batch in one transaction, completed with one statement. If any job
    /// fails (or its completion does), that transaction is rolled back and the batch is run
    /// again one job per transaction, so a failure only affects its own job.
    async fn run_batch(&self, loop_id: &str) -> anyhow::Result<usize> {
        let config = self.queue.config();
        let lease_ms = config.lease_secs * 1000;
        let jobs = store::claim(&self.queue.db, loop_id, &self.in_transaction, lease_ms, config.batch_size)
            .await
            .context("Failed to claim jobs")?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let mut outcomes: Vec<(&Claimed, Outcome)> = Vec::with_capacity(jobs.len());
        let started = Instant::now();
        // A lone job goes straight to the slow path: run once, its failure recorded.
        if jobs.len() > 1 && self.run_together(&jobs, loop_id).await? {
            let per_job = started.elapsed().as_secs_f64() / jobs.len() as f64;
            outcomes.extend(jobs.iter().map(|j| (j, ("succeeded", per_job))));
        } else {
            for job in &jobs {
                outcomes.push((job, self.run_alone(job, loop_id).await?));
            }
        }
        for (job, outcome) in outcomes {
            record_metrics(job, outcome);
        }
        self.queue.finished.notify_waiters();
        Ok(jobs.len())
    }

    /// Claims one standalone job and runs it to its end, an interruption, or an error, with its
    /// lease kept alive; returns 1, or 0 when none was due.
    async fn run_standalone_job(&self, loop_id: &str, stop: &CancellationToken) -> anyhow::Result<usize> {
        // A read first: claiming is a write, and there is usually nothing to claim.
        if !store::any_due(&self.queue.db, &self.standalone)
            .await
            .context("Failed to look for standalone jobs")?
        {
            return Ok(0);
        }
        let lease_ms = self.queue.config().lease_secs * 1000;
        let mut claimed = store::claim(&self.queue.db, loop_id, &self.standalone, lease_ms, 1)
            .await
            .context("Failed to claim a standalone job")?;
        let Some(job) = claimed.pop() else { return Ok(0) };
        let ctx = &job.ctx;
        let keeper = lease::keep_lease(self.queue.db.clone(), ctx.id, loop_id, lease_ms, stop);
        let started = Instant::now();
        let handler = self.handler(&ctx.job_type)?;
        let lease = JobLease { db: self.queue.db.clone(), stop: keeper.stop.clone() };
        ctx.span().in_scope(|| tracing::info!(queue = %job.queue, "queue.consume"));
        let result = catching(handler.run_standalone(ctx, &lease)).await;
        drop(keeper);
        let outcome = match result {
            Ok(()) => {
                let done = store::mark_succeeded(self.queue.db.writer(), &[ctx.id], loop_id).await? == 1;
                self.finished(ctx, done, started)
            }
            Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
                store::requeue_interrupted(&self.queue.db, ctx.id, loop_id).await?;
                ctx.span().in_scope(|| tracing::info!("queue.interrupted"));
                ("interrupted", started.elapsed().as_secs_f64())
            }
            Err(e) => self.record_error(&job, loop_id, e, started).await?,
        };
        record_metrics(&job, outcome);
        self.queue.finished.notify_waiters();
        Ok(1)
    }

    fn handler(&self, job_type: &str) -> anyhow::Result<Arc<dyn Handler>> {
        self.handlers.get(job_type).cloned().with_context(|| format!("no handler for job type {job_type}"))
    }

    /// Logs a job's completion: done, or its lease was lost to another worker meanwhile.
    fn finished(&self, ctx: &JobContext, done: bool, started: Instant) -> Outcome {
        let elapsed = started.elapsed().as_secs_f64();
        if done {
            ctx.span().in_scope(|| tracing::info!(elapsed_ms = elapsed * 1000.0, "queue.processed"));
            ("succeeded", elapsed)
        } else {
            ctx.span().in_scope(|| tracing::warn!("queue.lease_lost"));
            ("lease_lost", elapsed)
        }
    }

    /// Runs the handler of a group of same-type jobs on `conn`.
    async fn call_handler(&self, group: &[&Claimed], conn: &mut AnyConnection) -> anyhow::Result<()> {
        let handler = self.handler(&group[0].ctx.job_type)?;
        for job in group {
            job.ctx.span().in_scope(|| tracing::info!(queue = %job.queue, "queue.consume"));
        }
        let contexts: Vec<&JobContext> = group.iter().map(|j| &j.ctx).collect();
        catching(handler.run_batch(&contexts, conn)).await
    }

    /// The fast path; `Ok(false)` when the batch must be re-run job by job.
    async fn run_together(&self, jobs: &[Claimed], loop_id: &str) -> anyhow::Result<bool> {
        let mut tx = self.queue.db.begin().await.context("Failed to begin the job transaction")?;
        // Consecutive jobs of one type go to their handler together.
        for group in jobs.chunk_by(|a, b| a.ctx.job_type == b.ctx.job_type) {
            let group: Vec<&Claimed> = group.iter().collect();
            if let Err(e) = self.call_handler(&group, &mut tx).await {
                tracing::debug!(error = format!("{e:#}"), jobs = group.len(), "queue.batch_fallback");
                tx.rollback().await?;
                return Ok(false);
            }
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.ctx.id).collect();
        match store::mark_succeeded(&mut *tx, &ids, loop_id).await {
            // Every job still ours: commit effects and completions together.
            Ok(done) if done == jobs.len() as u64 => {
                tx.commit().await.context("Failed to commit the job batch")?;
                for job in jobs {
                    job.ctx.span().in_scope(|| tracing::info!("queue.processed"));
                }
                Ok(true)
            }
            _ => {
                tx.rollback().await?;
                Ok(false)
            }
        }
    }

    /// The slow path: one job in its own transaction; failures are recorded on the job.
    async fn run_alone(&self, job: &Claimed, loop_id: &str) -> anyhow::Result<Outcome> {
        let ctx = &job.ctx;
        let started = Instant::now();
        let mut tx = self.queue.db.begin().await?;
        let mut result = self.call_handler(&[job], &mut tx).await;
        if result.is_ok() {
            match store::mark_succeeded(&mut *tx, &[ctx.id], loop_id).await {
                Ok(1) => {
                    tx.commit().await.context("Failed to commit a job")?;
                    return Ok(self.finished(ctx, true, started));
                }
                Ok(_) => {
                    // The lease ran out and another worker owns the job now: undo our effects.
                    tx.rollback().await?;
                    return Ok(self.finished(ctx, false, started));
                }
                Err(e) => result = Err(anyhow::Error::new(e).context("Failed to mark the job done")),
            }
        } else {
            tx.rollback().await?;
        }
        self.record_error(job, loop_id, result.expect_err("only failures reach here"), started).await
    }

    /// Records a failed attempt: a retry after the type's backoff, or `failed` (with the
    /// handler's `on_failed`, in the same transaction) when it was the last.
    async fn record_error(
        &self,
        job: &Claimed,
        loop_id: &str,
        error: anyhow::Error,
        started: Instant,
    ) -> anyhow::Result<Outcome> {
        let ctx = &job.ctx;
        let message = format!("{error:#}");
        let handler = self.handler(&ctx.job_type)?;
        let final_attempt =
            ctx.attempt >= job.max_attempts || error.downcast_ref::<PermanentFailure>().is_some();
        let after = if final_attempt {
            AfterFailure::Failed
        } else {
            AfterFailure::RetryAt(now_ms() + self.backoff_ms(handler.as_ref(), ctx.attempt))
        };
        if final_attempt {
            // The module's failure record commits with the job's, or not at all.
            let mut tx = self.queue.db.begin().await?;
            store::record_failure(&mut *tx, ctx.id, loop_id, &after, &message).await?;
            match handler.on_failed(ctx, &message, &mut tx).instrument(ctx.span()).await {
                Ok(()) => tx.commit().await?,
                Err(e) => {
                    tx.rollback().await?;
                    tracing::warn!(error = format!("{e:#}"), job.id = ctx.id, "queue.on_failed_error");
                    store::record_failure(self.queue.db.writer(), ctx.id, loop_id, &after, &message).await?;
                }
            }
        } else {
            store::record_failure(self.queue.db.writer(), ctx.id, loop_id, &after, &message).await?;
        }
        ctx.span().in_scope(|| match after {
            AfterFailure::Failed => tracing::error!(error = %loggable(&message), "queue.failed"),
            AfterFailure::RetryAt(at) => {
                tracing::warn!(error = %loggable(&message), retry_at = %ms_to_rfc3339(at), "queue.retry_scheduled")
            }
        });
        Ok((if final_attempt { "failed" } else { "retried" }, started.elapsed().as_secs_f64()))
    }

    /// The delay before retry `attempt + 1`: the job type's policy, else `[queue]`'s, with up to
    /// a tenth of jitter.
    fn backoff_ms(&self, handler: &dyn Handler, attempt: i64) -> i64 {
        let config = self.queue.config();
        let (base, max) = match handler.retry_policy() {
            Some(policy) => (policy.backoff_base_ms, policy.backoff_max_ms),
            None => (config.backoff_base_ms, config.backoff_max_ms),
        };
        let delay = store::backoff_delay_ms(base, max, attempt);
        delay + rand::thread_rng().gen_range(0..=delay / 10 + 1)
    }
}

fn record_metrics(job: &Claimed, (outcome, elapsed): Outcome) {
    let job_type = job.ctx.job_type.clone();
    metrics::counter!("sightline_jobs_total", "job_type" => job_type.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("sightline_job_duration_seconds", "job_type" => job_type).record(elapsed);
}
