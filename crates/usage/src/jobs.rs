//! The module's job types and their handlers: [`ImportFiles`], run by [`ImportJob`], and
//! [`SweepUploads`], run by [`SweepJob`], both on the standalone pool.

use std::time::Duration;

use sightline_platform::db::now_ms;
use sightline_platform::queue::{Job, JobContext, JobLease, RunStandalone};
use sqlx::AnyConnection;

use crate::import::{recompute_and_finish, Importer};
use crate::store;
use crate::upload::Uploads;

/// The queue job type of an import.
pub const JOB_TYPE: &str = "usage.import";

/// The import of one uploaded pair of files: its usage job id. At most one is queued or running
/// per usage job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportFiles {
    /// The usage job (`jobs.id`).
    pub job_id: String,
}

impl Job for ImportFiles {
    const NAME: &'static str = JOB_TYPE;
    const QUEUE: &'static str = "usage";

    fn dedup_key(&self) -> Option<String> {
        Some(self.job_id.clone())
    }
}

/// Runs [`ImportFiles`] jobs on the standalone pool.
pub struct ImportJob {
    /// The importer.
    pub importer: Importer,
}

#[async_trait::async_trait]
impl RunStandalone for ImportJob {
    type Job = ImportFiles;

    async fn run(&self, job: ImportFiles, _ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        self.importer.run(&job.job_id, lease).await
    }

    /// Records the failure on the usage job and recomputes the days its committed chunks touched,
    /// so the aggregates still equal the transactions.
    async fn on_failed(
        &self,
        job: ImportFiles,
        _ctx: &JobContext,
        error: &str,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        let id = job.job_id.as_str();
        let days = store::days::pending_days(conn, id).await?;
        let now = now_ms();
        recompute_and_finish(conn, id, &days, now).await?;
        store::jobs::mark_failed(conn, id, error, now).await?;
        Ok(())
    }
}

/// A sweep of the upload directory ([`Uploads::sweep`]): scheduled hourly, and run at start-up.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct SweepUploads {}

impl Job for SweepUploads {
    const NAME: &'static str = "usage.sweep_uploads";
    const QUEUE: &'static str = "usage";

    fn dedup_key(&self) -> Option<String> {
        Some("sweep".into())
    }
}

/// Runs [`SweepUploads`] jobs.
pub struct SweepJob {
    /// The uploads to sweep.
    pub uploads: Uploads,
    /// Age past which a directory with no job is no upload in progress.
    pub in_flight: Duration,
    /// How long a finished import's files are kept.
    pub retention: Duration,
}

#[async_trait::async_trait]
impl RunStandalone for SweepJob {
    type Job = SweepUploads;

    async fn run(&self, _job: SweepUploads, _ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        self.uploads.sweep(self.in_flight, self.retention).await?;
        Ok(())
    }
}
