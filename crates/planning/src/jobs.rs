//! The module's jobs, on the standalone pool: [`ForecastAll`], a forecast run over every
//! product, and [`ComputeKpis`], the scheduled KPIs of this month and the latest planned one.

use sightline_platform::queue::{Interrupted, Job, JobContext, JobLease, RunStandalone};
use sqlx::AnyConnection;

use crate::service::forecast_runs::RunEnd;
use crate::service::PlanningService;

/// Forecast every product for one run (at most one queued or running per run).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ForecastAll {
    /// The run (`planning_forecast_runs.id`).
    pub run_id: String,
}

impl Job for ForecastAll {
    const NAME: &'static str = "planning.forecast_all";
    const QUEUE: &'static str = "planning";

    fn dedup_key(&self) -> Option<String> {
        Some(self.run_id.clone())
    }
}

/// Runs [`ForecastAll`] jobs.
pub struct ForecastAllJob {
    /// The service.
    pub service: PlanningService,
}

#[async_trait::async_trait]
impl RunStandalone for ForecastAllJob {
    type Job = ForecastAll;

    async fn run(&self, job: ForecastAll, _ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        let stop = || lease.should_stop();
        match self.service.run_forecasts(&job.run_id, &stop, &mut |_| {}).await? {
            RunEnd::Finished => Ok(()),
            RunEnd::Stopped => Err(Interrupted.into()),
        }
    }

    /// Records the failure on the run.
    async fn on_failed(
        &self,
        job: ForecastAll,
        _ctx: &JobContext,
        error: &str,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        self.service.fail_forecast_run(conn, &job.run_id, error).await?;
        Ok(())
    }
}

/// Computes and records this month's KPIs and, when another, the latest planned month's.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct ComputeKpis {}

impl Job for ComputeKpis {
    const NAME: &'static str = "planning.compute_kpis";
    const QUEUE: &'static str = "planning";

    fn dedup_key(&self) -> Option<String> {
        Some("compute_kpis".into())
    }
}

/// Runs [`ComputeKpis`] jobs.
pub struct ComputeKpisJob {
    /// The service.
    pub service: PlanningService,
}

#[async_trait::async_trait]
impl RunStandalone for ComputeKpisJob {
    type Job = ComputeKpis;

    async fn run(&self, _job: ComputeKpis, _ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        let context = sightline_platform::RequestContext::system();
        let this_month = crate::service::inventory::this_month();
        let planned = self.service.latest_planned_period().await?;
        let mut months = vec![this_month];
        if planned != this_month {
            months.push(planned);
        }
        for month in months {
            let recorded = self.service.compute_kpis(&context, month).await?;
            tracing::info!(period = %month, kpis = recorded.len(), "planning.kpis_computed");
        }
        Ok(())
    }
}
