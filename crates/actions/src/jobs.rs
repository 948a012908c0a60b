//! The module's job: process one calculation event.

use sightline_platform::{JobContext, JobHandler};
use sqlx::AnyConnection;

use crate::service::{process_event, PROCESS_EVENT_JOB};

/// Runs [`process_event`] for `{"event_id": …}`.
pub struct ProcessEventJob;

#[async_trait::async_trait]
impl JobHandler for ProcessEventJob {
    fn job_type(&self) -> &'static str {
        PROCESS_EVENT_JOB
    }

    async fn run(&self, job: &JobContext, conn: &mut AnyConnection) -> anyhow::Result<()> {
        let event_id = job
            .payload
            .get("event_id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow::anyhow!("payload has no event_id"))?;
        process_event(conn, event_id).await?;
        Ok(())
    }
}
