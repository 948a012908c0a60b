//! Usage analytics module (seed 003): uploads of LLM usage (a users CSV and a transactions CSV)
//! are streamed to disk and imported by a resumable job into `usage_users` and
//! `usage_transactions`; the daily tables (`usage_daily_metrics`, `usage_daily_company_metrics`,
//! `usage_daily_model_metrics`) are kept equal to what the transactions say; KPIs, live job
//! progress (WebSocket) and two pages go out.
//!
//! The shape of every module (`docs/MODULES.md`): [`http`] (routes, answers, the status of each
//! [`error::UsageError`]) over [`service`] (what the routes call), [`upload`] (receiving files),
//! [`kpis`] (the KPI assembly), [`jobs`] (the import job type) over [`import`] (its stages);
//! [`store`] holds all the SQL; [`model`] the domain types, [`format`] the CSV contract,
//! [`aggregate`] the daily figures and [`tally`] the in-memory tally of an import's new rows.

pub mod aggregate;
pub mod cli;
pub mod error;
pub mod format;
pub mod http;
pub mod import;
pub mod jobs;
pub mod kpis;
pub mod model;
mod records;
pub mod sample;
pub mod service;
pub mod store;
pub mod tally;
pub mod upload;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sightline_platform::scheduler::ScheduleSpec;
use sightline_platform::{migrate::Migration, Module, ModuleParts, PermissionSpec, Platform};

/// What the module's routes check, and who holds it.
pub const PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "usage:read",
        description: "Read usage KPIs, import jobs and their reports",
        roles: &["executive", "finance_analyst", "viewer", "analyst"],
    },
    PermissionSpec {
        name: "usage:upload",
        description: "Upload usage CSV files for import",
        roles: &["analyst"],
    },
];

/// The module's configuration section `[usage]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Where uploads are kept until imported (default `<data_dir>/usage/uploads`).
    pub upload_dir: Option<PathBuf>,
    /// Largest accepted file, in bytes (default 2 GiB).
    pub max_file_bytes: u64,
    /// Rows written per transaction during an import (default 50,000; the original used 500).
    pub chunk_rows: usize,
    /// Keep an upload's files after a successful import (default false: they are deleted).
    pub keep_uploads: bool,
    /// How long the files of a finished import (failed, or kept by `keep_uploads`) stay, in
    /// seconds (default 7 days); an hourly sweep removes them after.
    pub upload_retention_secs: u64,
    /// Longest CSV row, in bytes of cell data (default 1 MiB): a longer row is rejected with
    /// its line and the import goes on; reading never holds more than this of one row.
    pub max_row_bytes: usize,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            upload_dir: None,
            max_file_bytes: 2 * 1024 * 1024 * 1024,
            chunk_rows: 50_000,
            keep_uploads: false,
            upload_retention_secs: 7 * 24 * 3600,
            max_row_bytes: 1024 * 1024,
        }
    }
}

/// The `usage` module.
pub struct UsageModule;

#[async_trait::async_trait]
impl Module for UsageModule {
    fn name(&self) -> &'static str {
        "usage"
    }

    fn migrations(&self) -> &'static [Migration] {
        store::MIGRATIONS
    }

    fn permissions(&self) -> &'static [PermissionSpec] {
        PERMISSIONS
    }

    fn commands(&self) -> Vec<clap::Command> {
        vec![cli::command()]
    }

    async fn run_command(
        &self,
        name: &str,
        matches: &clap::ArgMatches,
        _context: &sightline_platform::CommandContext,
    ) -> anyhow::Result<()> {
        match name {
            "usage" => cli::run(matches),
            other => anyhow::bail!("no command {other}"),
        }
    }

    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts> {
        let config: UsageConfig = platform.config.module_section("usage")?;
        if config.chunk_rows == 0 || config.chunk_rows > 100_000 {
            anyhow::bail!("usage.chunk_rows must be from 1 to 100000 (got {})", config.chunk_rows);
        }
        if config.max_file_bytes < 1024 {
            anyhow::bail!("usage.max_file_bytes must be at least 1024 (got {})", config.max_file_bytes);
        }
        let dir = config.upload_dir.unwrap_or_else(|| platform.config.data_dir.join("usage").join("uploads"));
        std::fs::create_dir_all(&dir)
            .map_err(|e| anyhow::anyhow!("usage.upload_dir {} cannot be created: {e}", dir.display()))?;
        let uploads = upload::Uploads::new(
            platform.db.clone(),
            platform.queue.clone(),
            platform.bus.clone(),
            dir,
            config.max_file_bytes,
        );
        let sweep = jobs::SweepJob {
            uploads: uploads.clone(),
            // An upload still being received is younger than its request's time limit.
            in_flight: Duration::from_secs(platform.config.http.request_timeout_secs + 60),
            retention: Duration::from_secs(config.upload_retention_secs),
        };
        // What a crash left is swept at start-up too, not only on the hour.
        let (at_start, in_flight, retention) = (uploads.clone(), sweep.in_flight, sweep.retention);
        tokio::spawn(async move {
            if let Err(e) = at_start.sweep(in_flight, retention).await {
                tracing::warn!(error = format!("{e:#}"), "usage.upload_sweep_failed");
            }
        });
        let hourly =
            ScheduleSpec::of("usage.sweep_uploads", "7 * * * *", chrono_tz::UTC, &jobs::SweepUploads {})?;
        if config.max_row_bytes < 1024 {
            anyhow::bail!("usage.max_row_bytes must be at least 1024 (got {})", config.max_row_bytes);
        }
        let limits =
            format::ReadLimits { chunk_rows: config.chunk_rows, max_row_bytes: config.max_row_bytes };
        let importer = import::Importer::new(platform.db.clone(), limits, config.keep_uploads);
        let service = service::UsageService::new(platform.db.clone(), uploads);
        Ok(ModuleParts::new(http::router(service))
            .standalone_job(jobs::ImportJob { importer })
            .standalone_job(sweep)
            .schedule(hourly)
            .page("/ui/usage", "Usage upload", "Upload usage CSV files and follow the import")
            .page(
                "/ui/usage/dashboard",
                "Usage dashboard",
                "Spend, tokens and users per day, model and company",
            ))
    }
}
