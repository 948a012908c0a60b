//! The module's job: process one calculation event.

use sightline_platform::{Backend, JobContext, JobHandler};
use sqlx::AnyConnection;

use crate::service::{process_event, PROCESS_EVENT_JOB};
use crate::store;

/// Runs [`process_event`] for `{"event_id": …}`.
pub struct ProcessEventJob {
    /// The database kind (PostgreSQL needs a scope lock).
    pub backend: Backend,
}

fn event_id(job: &JobContext) -> anyhow::Result<&str> {
    job.payload
        .get("event_id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("payload has no event_id"))
}

#[async_trait::async_trait]
impl JobHandler for ProcessEventJob {
    fn job_type(&self) -> &'static str {
        PROCESS_EVENT_JOB
    }

    async fn run(&self, job: &JobContext, conn: &mut AnyConnection) -> anyhow::Result<()> {
        process_event(conn, self.backend, event_id(job)?).await?;
        Ok(())
    }

    async fn on_failed(
        &self,
        job: &JobContext,
        error: &str,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        store::mark_event_failed(conn, event_id(job)?, error).await?;
        Ok(())
    }
}
