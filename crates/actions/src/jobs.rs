//! The module's job: process calculation events (one, or a batch in one transaction).

use sightline_platform::{Backend, JobContext, JobHandler};
use sqlx::AnyConnection;

use crate::service::{process_events, Processed, PROCESS_EVENT_JOB};
use crate::store;

/// Runs [`process_events`] for jobs `{"event_id": …}`.
pub struct ProcessEventJob {
    /// The database kind (PostgreSQL needs scope locks).
    pub backend: Backend,
}

fn event_id(job: &JobContext) -> anyhow::Result<&str> {
    job.payload
        .get("event_id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("payload has no event_id"))
}

/// Logs the seed's markers for one processed event, in its job's span (with its request id).
fn log_outcome(job: &JobContext, event_id: &str, outcome: &Processed) {
    job.span().in_scope(|| {
        if outcome.action == "duplicate_skipped" {
            tracing::info!(event_id, "calc.skip_duplicate");
            return;
        }
        if let Some(nba_id) = &outcome.nba_id {
            tracing::info!(nba.id = %nba_id, event_id, superseded = outcome.superseded, "calc.nba_upserted");
        }
        if outcome.deactivated > 0 {
            tracing::info!(event_id, count = outcome.deactivated, "calc.nba_deactivated");
        }
        tracing::info!(event_id, action = outcome.action, "calc.event_processed");
    });
}

#[async_trait::async_trait]
impl JobHandler for ProcessEventJob {
    fn job_type(&self) -> &'static str {
        PROCESS_EVENT_JOB
    }

    async fn run(&self, job: &JobContext, conn: &mut AnyConnection) -> anyhow::Result<()> {
        self.run_batch(&[job], conn).await
    }

    async fn run_batch(&self, jobs: &[&JobContext], conn: &mut AnyConnection) -> anyhow::Result<()> {
        let ids = jobs.iter().map(|j| event_id(j)).collect::<anyhow::Result<Vec<&str>>>()?;
        let outcomes = process_events(conn, self.backend, &ids).await?;
        for ((job, id), outcome) in jobs.iter().zip(&ids).zip(&outcomes) {
            log_outcome(job, id, outcome);
        }
        Ok(())
    }

    async fn on_failed(&self, job: &JobContext, error: &str, conn: &mut AnyConnection) -> anyhow::Result<()> {
        store::mark_event_failed(conn, event_id(job)?, error).await?;
        Ok(())
    }
}
