//! The module's job: process calculation events (one, or a batch in one transaction).

use serde::{Deserialize, Serialize};
use sightline_platform::{Backend, Job, JobContext, RunInTransaction};
use sqlx::AnyConnection;

use crate::service::{process_events, Processed};
use crate::store;

/// Process one stored calculation event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessEvent {
    /// The event's id.
    pub event_id: String,
}

impl Job for ProcessEvent {
    const NAME: &'static str = "actions.process_event";
    const QUEUE: &'static str = "actions";
}

/// Runs [`process_events`] for [`ProcessEvent`] jobs, a batch in one transaction.
pub struct ProcessEventJob {
    /// The database kind (PostgreSQL needs scope locks).
    pub backend: Backend,
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
impl RunInTransaction for ProcessEventJob {
    type Job = ProcessEvent;

    async fn run(&self, job: ProcessEvent, ctx: &JobContext, conn: &mut AnyConnection) -> anyhow::Result<()> {
        self.run_batch(vec![(job, ctx)], conn).await
    }

    async fn run_batch(
        &self,
        jobs: Vec<(ProcessEvent, &JobContext)>,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        let ids: Vec<&str> = jobs.iter().map(|(job, _)| job.event_id.as_str()).collect();
        let outcomes = process_events(conn, self.backend, &ids).await?;
        for ((job, ctx), outcome) in jobs.iter().zip(&outcomes) {
            log_outcome(ctx, &job.event_id, outcome);
        }
        Ok(())
    }

    async fn on_failed(
        &self,
        job: ProcessEvent,
        _ctx: &JobContext,
        error: &str,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        store::mark_event_failed(conn, &job.event_id, error).await?;
        Ok(())
    }
}
