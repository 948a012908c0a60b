//! The module's jobs: delivering an ingestion alert (`sports.deliver_alert`), and a sync asked
//! for over the API or by the daily schedule (`sports.sync`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_platform::outbound::OutboundClient;
use sightline_platform::queue::{JobLease, PermanentFailure, RetryPolicy};
use sightline_platform::webhooks::{self, AttemptOutcome, WebhookEndpoint};
use sightline_platform::{Db, Job, JobContext, RunStandalone};
use sqlx::AnyConnection;

use crate::service::SportsService;

/// Post one alert delivery.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverAlert {
    /// The delivery (`webhook_deliveries.id`).
    pub delivery_id: String,
}

impl Job for DeliverAlert {
    const NAME: &'static str = "sports.deliver_alert";
    const QUEUE: &'static str = "sports";
}

/// Delivers alerts to the configured webhook, each attempt logged; 429, 5xx and timeouts are
/// retried with the configured backoff, another 4xx fails the delivery at once.
pub struct DeliverAlertJob {
    /// The database.
    pub db: Db,
    /// The outbound client `sports_alerts` (5 s a try, no retries of its own: the queue retries).
    pub client: OutboundClient,
    /// Where and how.
    pub endpoint: WebhookEndpoint,
    /// First retry delay (`INGEST_ALERT_BACKOFF`), doubling.
    pub backoff: Duration,
}

#[async_trait::async_trait]
impl RunStandalone for DeliverAlertJob {
    type Job = DeliverAlert;

    async fn run(&self, job: DeliverAlert, _ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        match webhooks::attempt(&self.db, &self.client, &self.endpoint, &job.delivery_id).await? {
            AttemptOutcome::Delivered => Ok(()),
            AttemptOutcome::Retry(why) => anyhow::bail!("alert not delivered yet: {why}"),
            AttemptOutcome::GiveUp(why) => Err(PermanentFailure(why).into()),
        }
    }

    fn retry_policy(&self) -> Option<RetryPolicy> {
        let base = i64::try_from(self.backoff.as_millis()).unwrap_or(i64::MAX).max(1);
        Some(RetryPolicy { max_attempts: 4, backoff_base_ms: base, backoff_max_ms: base.saturating_mul(64) })
    }

    async fn on_failed(
        &self,
        job: DeliverAlert,
        _ctx: &JobContext,
        error: &str,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        webhooks::mark_failed(conn, &job.delivery_id, error).await?;
        Ok(())
    }
}

/// Sync one day.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sync {
    /// The day (`YYYY-MM-DD`); the scheduled run names none and takes yesterday in the
    /// configured zone.
    pub date: Option<String>,
    /// Validate and audit only.
    #[serde(default)]
    pub dry_run: bool,
    /// `api` or `schedule`.
    #[serde(default = "schedule")]
    pub trigger: String,
}

fn schedule() -> String {
    "schedule".into()
}

impl Job for Sync {
    const NAME: &'static str = "sports.sync";
    const QUEUE: &'static str = "sports";

    fn dedup_key(&self) -> Option<String> {
        Some(format!("sports.sync:{}", self.date.as_deref().unwrap_or("yesterday")))
    }
}

/// Runs [`Sync`] jobs.
pub struct SyncJob {
    /// The service.
    pub service: SportsService,
    /// The zone "yesterday" is in.
    pub timezone: chrono_tz::Tz,
}

#[async_trait::async_trait]
impl RunStandalone for SyncJob {
    type Job = Sync;

    async fn run(&self, job: Sync, _ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        let day = match &job.date {
            Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
                .map_err(|_| PermanentFailure(format!("{d:?} is not a date")))?,
            None => chrono::Utc::now().with_timezone(&self.timezone).date_naive() - chrono::Duration::days(1),
        };
        self.service.sync(day, job.dry_run, &job.trigger).await?;
        Ok(())
    }
}

/// Build a dataset.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildDataset {
    /// The stat.
    pub stat: String,
    /// Players with fewer stored games are left out.
    pub min_games: usize,
}

impl Job for BuildDataset {
    const NAME: &'static str = "sports.build_dataset";
    const QUEUE: &'static str = "sports";

    fn dedup_key(&self) -> Option<String> {
        Some(format!("sports.build_dataset:{}", self.stat))
    }
}

/// Runs [`BuildDataset`] jobs.
pub struct BuildDatasetJob {
    /// The service.
    pub service: SportsService,
}

#[async_trait::async_trait]
impl RunStandalone for BuildDatasetJob {
    type Job = BuildDataset;

    async fn run(&self, job: BuildDataset, _ctx: &JobContext, _lease: &JobLease) -> anyhow::Result<()> {
        let meta = self.service.build_dataset(&job.stat, job.min_games, None).await?;
        tracing::info!(stat = %meta.stat_type, version = %meta.version_id, rows = meta.rows, "sports.dataset_built");
        Ok(())
    }
}
