//! The module's jobs: [`GenerateReport`] (one organisation's day, from its schedule or by hand)
//! and [`CatchUp`] (missing reports of the last days, at start). Both run on the standalone
//! pool: a report's queries may take long on a large ClickHouse.

use serde::{Deserialize, Serialize};
use sightline_platform::db::now_ms;
use sightline_platform::queue::{Job, JobContext, JobLease, PermanentFailure, RunStandalone};

use crate::error::CallsError;
use crate::service::{CallsService, RunType};

/// Generate (and store) one organisation's daily report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateReport {
    /// The organisation.
    pub org_id: String,
    /// `YYYY-MM-DD`; absent: the day before `scheduled_for` (or now) in the organisation's zone.
    #[serde(default)]
    pub date: Option<String>,
    /// What started it.
    pub run_type: RunType,
    /// Replace a stored report.
    #[serde(default)]
    pub force: bool,
    /// Set by the scheduler: when this run was due (RFC 3339).
    #[serde(default)]
    pub scheduled_for: Option<String>,
}

impl Job for GenerateReport {
    const NAME: &'static str = "calls.generate_report";
    const QUEUE: &'static str = "calls";
}

/// Runs [`GenerateReport`]; each attempt is recorded as a report run.
pub struct GenerateReportJob {
    /// The services.
    pub service: CallsService,
}

#[async_trait::async_trait]
impl RunStandalone for GenerateReportJob {
    type Job = GenerateReport;

    async fn run(&self, job: GenerateReport, _ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        let started = now_ms();
        let outcome = self.service.generate_for_job(&job).await;
        let (status, generated, error) = match &outcome {
            Ok(created) => ("success", i64::from(*created), None),
            Err(e) => ("error", 0, Some(format!("{e:#}"))),
        };
        self.service
            .record_run(job.run_type, status, Some(&job.org_id), started, generated, error.as_deref())
            .await?;
        outcome.map(|_| ()).map_err(|e| match e {
            // No retry can help an unknown organisation or a bad date.
            CallsError::NotFound(_) | CallsError::Invalid(_) => PermanentFailure(e.to_string()).into(),
            other => other.into(),
        })
    }
}

/// Generate the missing reports of the last `days` days of every active organisation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatchUp {
    /// How many days back (yesterday is the first).
    pub days: u32,
}

impl Job for CatchUp {
    const NAME: &'static str = "calls.catch_up";
    const QUEUE: &'static str = "calls";

    fn dedup_key(&self) -> Option<String> {
        Some("catch_up".into())
    }
}

/// Runs [`CatchUp`]; records one run: `success`, `partial` (some days failed) or `error`.
pub struct CatchUpJob {
    /// The services.
    pub service: CallsService,
}

#[async_trait::async_trait]
impl RunStandalone for CatchUpJob {
    type Job = CatchUp;

    async fn run(&self, job: CatchUp, _ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        let started = now_ms();
        let (generated, failures) = match self.service.catch_up(job.days, lease).await {
            Ok(done) => done,
            // Interrupted (asked to stop): the queue runs it again.
            Err(CallsError::Internal(e)) => return Err(e),
            Err(e) => return Err(e.into()),
        };
        let status = match (generated, failures.len()) {
            (_, 0) => "success",
            (0, _) => "error",
            _ => "partial",
        };
        let error = (!failures.is_empty()).then(|| failures.join("; "));
        self.service.record_run(RunType::Catchup, status, None, started, generated, error.as_deref()).await?;
        Ok(())
    }
}

/// Run a backfill ([`CallsService::run_backfill`]): durable, resumed from its next day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunBackfill {
    /// `calls_backfills.id`.
    pub backfill_id: String,
}

impl Job for RunBackfill {
    const NAME: &'static str = "calls.backfill";
    const QUEUE: &'static str = "calls";

    fn dedup_key(&self) -> Option<String> {
        Some(self.backfill_id.clone())
    }
}

/// Runs [`RunBackfill`].
pub struct RunBackfillJob {
    /// The services.
    pub service: CallsService,
}

#[async_trait::async_trait]
impl RunStandalone for RunBackfillJob {
    type Job = RunBackfill;

    async fn run(&self, job: RunBackfill, _ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        match self.service.run_backfill(&job.backfill_id, lease).await {
            Ok(_) => Ok(()),
            Err(CallsError::NotFound(m)) => Err(PermanentFailure(m).into()),
            Err(CallsError::Internal(e)) => Err(e),
            Err(e) => Err(e.into()),
        }
    }
}
