//! Typed jobs: a [`Job`] is its payload type with a name, a queue, a retry policy and an optional
//! deduplication key; a handler runs it either in the worker's transaction
//! ([`RunInTransaction`]) or on its own ([`RunStandalone`]). Each handler trait has exactly one
//! required method, so a handler that runs nothing does not compile.

use std::sync::Arc;

use futures::FutureExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::AnyConnection;
use tracing::Instrument as _;

use super::{JobContext, JobLease, PermanentFailure};
use crate::request_id;

/// A kind of job. Jobs must be idempotent in what they do outside the worker's transaction.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// `<module>.<what>`, e.g. `usage.import`: unique in the process, stored with each job.
    const NAME: &'static str;
    /// The queue it is listed under: the module's name.
    const QUEUE: &'static str;

    /// Attempts and backoff; `None` takes the `[queue]` settings.
    fn retry_policy() -> Option<RetryPolicy> {
        None
    }

    /// While a job of this type with the same key is queued or running, enqueueing another does
    /// nothing. `None`: every enqueue adds a job.
    fn dedup_key(&self) -> Option<String> {
        None
    }
}

/// How often and how patiently a job type is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before the job moves to `failed`.
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt.
    pub backoff_base_ms: i64,
    /// Upper bound of a retry delay.
    pub backoff_max_ms: i64,
}

/// Runs jobs of one type inside the worker's transaction: what it writes through `conn` commits
/// together with the job's completion, or not at all.
#[async_trait::async_trait]
pub trait RunInTransaction: Send + Sync + 'static {
    /// The job type it runs.
    type Job: Job;

    /// Runs one job.
    async fn run(&self, job: Self::Job, ctx: &JobContext, conn: &mut AnyConnection) -> anyhow::Result<()>;

    /// Runs several jobs of this type, all or nothing: on error the worker rolls back and runs
    /// each alone with [`RunInTransaction::run`]. Override it to share statements across jobs;
    /// the default runs them one by one, each in its span and request id.
    async fn run_batch(
        &self,
        jobs: Vec<(Self::Job, &JobContext)>,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        for (job, ctx) in jobs {
            let rid = ctx.request_id.clone().unwrap_or_default();
            request_id::scope(rid, self.run(job, ctx, conn)).instrument(ctx.span()).await?;
        }
        Ok(())
    }

    /// Called in the transaction that moves the job to `failed` (out of attempts), so the
    /// module can record the failure on its own rows.
    async fn on_failed(
        &self,
        _job: Self::Job,
        _ctx: &JobContext,
        _error: &str,
        _conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Runs long jobs of one type outside any transaction, on the worker's standalone pool: the
/// handler commits its own checkpoints through `lease.db()`, returns
/// [`super::Interrupted`] when `lease.should_stop()`, and resumes from its last checkpoint
/// when run again. The worker extends the lease while it runs.
#[async_trait::async_trait]
pub trait RunStandalone: Send + Sync + 'static {
    /// The job type it runs.
    type Job: Job;

    /// Runs one job to its end, or to a checkpoint when asked to stop.
    async fn run(&self, job: Self::Job, ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()>;

    /// Backoff between attempts; the job type's own by default. A handler built from
    /// configuration (a webhook's retry settings) answers its own.
    fn retry_policy(&self) -> Option<RetryPolicy> {
        <Self::Job as Job>::retry_policy()
    }

    /// Called in the transaction that moves the job to `failed` (out of attempts).
    async fn on_failed(
        &self,
        _job: Self::Job,
        _ctx: &JobContext,
        _error: &str,
        _conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        Ok(())
    }
}

/// How the worker runs a type's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    InTransaction,
    Standalone,
}

/// A handler with its job type erased, as the worker holds it.
#[async_trait::async_trait]
pub(crate) trait Handler: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn mode(&self) -> Mode;
    fn retry_policy(&self) -> Option<RetryPolicy>;
    async fn run_batch(&self, jobs: &[&JobContext], conn: &mut AnyConnection) -> anyhow::Result<()>;
    async fn run_standalone(&self, ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()>;
    async fn on_failed(&self, ctx: &JobContext, error: &str, conn: &mut AnyConnection) -> anyhow::Result<()>;
}

/// A job type's registration: its handler, erased. Made by [`JobRegistration::in_transaction`]
/// or [`JobRegistration::standalone`] (through `ModuleParts::job` / `standalone_job`).
#[derive(Clone)]
pub struct JobRegistration(pub(crate) Arc<dyn Handler>);

impl JobRegistration {
    /// A handler run in the worker's transaction.
    pub fn in_transaction<H: RunInTransaction>(handler: H) -> Self {
        Self(Arc::new(InTransaction(handler)))
    }

    /// A handler run on the standalone pool.
    pub fn standalone<H: RunStandalone>(handler: H) -> Self {
        Self(Arc::new(Standalone(handler)))
    }

    /// The job type's name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// The payload of `ctx` as `J`; a payload that does not decode never will, so it fails at once.
fn decode<J: Job>(ctx: &JobContext) -> anyhow::Result<J> {
    serde_json::from_value(ctx.payload.clone()).map_err(|e| {
        anyhow::Error::new(PermanentFailure(format!("payload of {} does not decode: {e}", J::NAME)))
    })
}

/// Runs `fut`, turning a panic into an error.
pub(crate) async fn catching<F: std::future::Future<Output = anyhow::Result<()>>>(
    fut: F,
) -> anyhow::Result<()> {
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("job handler panicked")),
    }
}

struct InTransaction<H>(H);

#[async_trait::async_trait]
impl<H: RunInTransaction> Handler for InTransaction<H> {
    fn name(&self) -> &'static str {
        H::Job::NAME
    }
    fn mode(&self) -> Mode {
        Mode::InTransaction
    }
    fn retry_policy(&self) -> Option<RetryPolicy> {
        H::Job::retry_policy()
    }
    async fn run_batch(&self, jobs: &[&JobContext], conn: &mut AnyConnection) -> anyhow::Result<()> {
        if let [ctx] = jobs {
            let job = decode::<H::Job>(ctx)?;
            let rid = ctx.request_id.clone().unwrap_or_default();
            return request_id::scope(rid, self.0.run(job, ctx, conn)).instrument(ctx.span()).await;
        }
        let mut decoded = Vec::with_capacity(jobs.len());
        for ctx in jobs {
            decoded.push((decode::<H::Job>(ctx)?, *ctx));
        }
        self.0.run_batch(decoded, conn).await
    }
    async fn run_standalone(&self, ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        anyhow::bail!("job type {} runs in the worker's transaction", ctx.job_type)
    }
    async fn on_failed(&self, ctx: &JobContext, error: &str, conn: &mut AnyConnection) -> anyhow::Result<()> {
        match decode::<H::Job>(ctx) {
            Ok(job) => self.0.on_failed(job, ctx, error, conn).await,
            Err(_) => Ok(()),
        }
    }
}

struct Standalone<H>(H);

#[async_trait::async_trait]
impl<H: RunStandalone> Handler for Standalone<H> {
    fn name(&self) -> &'static str {
        H::Job::NAME
    }
    fn mode(&self) -> Mode {
        Mode::Standalone
    }
    fn retry_policy(&self) -> Option<RetryPolicy> {
        self.0.retry_policy()
    }
    async fn run_batch(&self, jobs: &[&JobContext], _conn: &mut AnyConnection) -> anyhow::Result<()> {
        anyhow::bail!("job type {} runs standalone ({} jobs)", H::Job::NAME, jobs.len())
    }
    async fn run_standalone(&self, ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        let job = decode::<H::Job>(ctx)?;
        let rid = ctx.request_id.clone().unwrap_or_default();
        request_id::scope(rid, self.0.run(job, ctx, lease)).instrument(ctx.span()).await
    }
    async fn on_failed(&self, ctx: &JobContext, error: &str, conn: &mut AnyConnection) -> anyhow::Result<()> {
        match decode::<H::Job>(ctx) {
            Ok(job) => self.0.on_failed(job, ctx, error, conn).await,
            Err(_) => Ok(()),
        }
    }
}
