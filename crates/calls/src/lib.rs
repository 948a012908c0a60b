//! Call analytics module (seed 001): a freight brokerage's AI phone calls (runs, sessions, node
//! outputs whose `flat_data` holds each call's outcome), counted into the original's KPIs and
//! breakdowns per organisation and time window.
//!
//! The calls come from the module's embedded store (`calls_*` tables, fed by
//! `POST /api/calls/ingest`); the counting rules ([`metrics`]) are written once over a
//! [`metrics::CallSource`], so a ClickHouse source answers alike. See `docs/calls.md`.

pub mod cli;
pub mod clickhouse;
pub mod error;
pub mod flat;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod query;
pub mod sample;
pub mod service;
pub mod store;

use std::sync::Arc;

use serde::Deserialize;
use sightline_platform::config::Secret;
use sightline_platform::outbound::OutboundConfig;
use sightline_platform::{migrate::Migration, Module, ModuleParts, PermissionSpec, Platform};

/// What the module's routes check, and who holds it.
pub const PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "calls:read",
        description: "Read call KPIs, breakdowns, daily reports and organisations",
        roles: &["executive", "sop_coordinator", "viewer", "analyst"],
    },
    PermissionSpec {
        name: "calls:manage",
        description: "Manage call-analytics organisations and generate reports",
        roles: &["analyst"],
    },
    PermissionSpec {
        name: "calls:debug",
        description: "Read the call module's debug routes (settings, source tables, node counts)",
        roles: &[],
    },
    PermissionSpec {
        name: "calls:ingest",
        description: "Feed calls into the embedded call store (the feeder's API key)",
        roles: &[],
    },
];

/// The module's configuration section `[calls]`; the original's environment variables
/// (`ORG_ID`, `CLIENT_NAME`, `BROKER_NODE_PERSISTENT_ID`, `DEFAULT_TIMEZONE`,
/// `EXCLUDED_USER_NUMBERS`) win over it.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallsConfig {
    /// The default organisation's id in the call data.
    pub org_id: Option<String>,
    /// Its name.
    pub client_name: String,
    /// Its broker node.
    pub broker_node_persistent_id: Option<String>,
    /// Its time zone.
    pub default_timezone: String,
    /// Its test numbers.
    pub excluded_user_numbers: Vec<String>,
    /// Generate each active organisation's report daily (`SCHEDULER_ENABLED`).
    pub scheduler_enabled: bool,
    /// The hour of it, in each organisation's zone (`SCHEDULER_HOUR`).
    pub scheduler_hour: u32,
    /// The minute (`SCHEDULER_MINUTE`).
    pub scheduler_minute: u32,
    /// Days back whose missing reports are made at start (`SCHEDULER_CATCHUP_DAYS`).
    pub scheduler_catchup_days: u32,
    /// ClickHouse's HTTP interface (`CLICKHOUSE_URL`, or `CLICKHOUSE_HOST` with the port of
    /// `CLICKHOUSE_SECURE`); absent: the embedded store is the source.
    pub clickhouse_url: Option<String>,
    /// `CLICKHOUSE_USERNAME` / `CLICKHOUSE_USER`.
    pub clickhouse_user: String,
    /// `CLICKHOUSE_PASSWORD`.
    pub clickhouse_password: Option<Secret>,
    /// `CLICKHOUSE_DATABASE`.
    pub clickhouse_database: String,
}

impl Default for CallsConfig {
    fn default() -> Self {
        Self {
            org_id: None,
            client_name: "Logistics".into(),
            broker_node_persistent_id: None,
            default_timezone: "UTC".into(),
            excluded_user_numbers: Vec::new(),
            scheduler_enabled: true,
            scheduler_hour: 6,
            scheduler_minute: 0,
            scheduler_catchup_days: 7,
            clickhouse_url: None,
            clickhouse_user: "default".into(),
            clickhouse_password: None,
            clickhouse_database: "default".into(),
        }
    }
}

impl CallsConfig {
    /// The original's environment variables over the configuration.
    fn with_env(mut self) -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        self.org_id = var("ORG_ID").or(self.org_id);
        self.client_name = var("CLIENT_NAME").unwrap_or(self.client_name);
        self.broker_node_persistent_id = var("BROKER_NODE_PERSISTENT_ID").or(self.broker_node_persistent_id);
        self.default_timezone = var("DEFAULT_TIMEZONE").unwrap_or(self.default_timezone);
        if let Some(list) = var("EXCLUDED_USER_NUMBERS") {
            self.excluded_user_numbers =
                list.split(',').map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
        }
        if let Some(on) = var("SCHEDULER_ENABLED") {
            self.scheduler_enabled =
                !matches!(on.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no" | "off");
        }
        let number = |name: &str, current: u32| -> anyhow::Result<u32> {
            var(name).map_or(Ok(current), |v| {
                v.trim().parse().map_err(|_| anyhow::anyhow!("{name} {v:?} is not a number"))
            })
        };
        self.scheduler_hour = number("SCHEDULER_HOUR", self.scheduler_hour)?;
        self.scheduler_minute = number("SCHEDULER_MINUTE", self.scheduler_minute)?;
        self.scheduler_catchup_days = number("SCHEDULER_CATCHUP_DAYS", self.scheduler_catchup_days)?;
        anyhow::ensure!(self.scheduler_hour < 24, "calls.scheduler_hour (SCHEDULER_HOUR) must be 0 to 23");
        anyhow::ensure!(
            self.scheduler_minute < 60,
            "calls.scheduler_minute (SCHEDULER_MINUTE) must be 0 to 59"
        );
        anyhow::ensure!(
            self.scheduler_catchup_days <= 366,
            "calls.scheduler_catchup_days must be at most 366"
        );
        let secure = var("CLICKHOUSE_SECURE")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
        if let Some(url) = var("CLICKHOUSE_URL") {
            self.clickhouse_url = Some(url);
        } else if let Some(host) = var("CLICKHOUSE_HOST") {
            let (scheme, port) = if secure { ("https", 8443) } else { ("http", 8123) };
            self.clickhouse_url = Some(format!("{scheme}://{host}:{port}"));
        }
        if let Some(user) = var("CLICKHOUSE_USERNAME").or_else(|| var("CLICKHOUSE_USER")) {
            self.clickhouse_user = user;
        }
        if let Some(password) = var("CLICKHOUSE_PASSWORD") {
            self.clickhouse_password = Some(Secret::new(password));
        }
        if let Some(database) = var("CLICKHOUSE_DATABASE") {
            self.clickhouse_database = database;
        }
        Ok(self)
    }
}

impl CallsConfig {
    /// The configured call source: ClickHouse when a URL is set, else the embedded store.
    pub fn source(
        &self,
        db: &sightline_platform::Db,
        outbound: &sightline_platform::outbound::Outbound,
    ) -> anyhow::Result<Arc<dyn metrics::CallSource>> {
        let Some(url) = &self.clickhouse_url else {
            return Ok(Arc::new(store::calls::EmbeddedSource::new(db.clone())));
        };
        let defaults = OutboundConfig {
            base_url: url.trim_end_matches('/').to_owned(),
            // The original's client: 30 s to connect; a query may run 180 s.
            connect_timeout_ms: 30_000,
            timeout_ms: 190_000,
            budget_ms: 200_000,
            max_retries: 1,
            ..OutboundConfig::default()
        };
        let client = outbound.client("clickhouse", defaults)?;
        let settings = clickhouse::ClickHouseSettings {
            database: self.clickhouse_database.clone(),
            user: self.clickhouse_user.clone(),
            password: self.clickhouse_password.clone().unwrap_or_else(|| Secret::new("")),
        };
        tracing::info!(database = %settings.database, "calls.source_clickhouse");
        Ok(Arc::new(clickhouse::ClickHouseSource::new(client, settings)))
    }

    /// This section of `config`, with the original's environment variables over it.
    pub fn load(config: &sightline_platform::config::Config) -> anyhow::Result<Self> {
        config.module_section::<CallsConfig>("calls")?.with_env()
    }
}

/// The `calls` module.
pub struct CallsModule;

#[async_trait::async_trait]
impl Module for CallsModule {
    fn name(&self) -> &'static str {
        "calls"
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
        context: &sightline_platform::CommandContext,
    ) -> anyhow::Result<()> {
        match name {
            "calls" => cli::run(matches, context).await,
            other => anyhow::bail!("no command {other}"),
        }
    }

    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts> {
        let config = CallsConfig::load(&platform.config)?;
        service::parse_timezone(&config.default_timezone).map_err(|_| {
            anyhow::anyhow!(
                "calls.default_timezone (DEFAULT_TIMEZONE) {:?} is not an IANA time zone",
                config.default_timezone
            )
        })?;
        let source = config.source(&platform.db, &platform.outbound)?;
        let default_org = service::DefaultOrg {
            org_id: config.org_id,
            name: config.client_name,
            node_persistent_id: config.broker_node_persistent_id,
            timezone: config.default_timezone,
            excluded_numbers: config.excluded_user_numbers,
        };
        let schedule = service::ReportSchedule {
            enabled: config.scheduler_enabled,
            hour: config.scheduler_hour,
            minute: config.scheduler_minute,
            catchup_days: config.scheduler_catchup_days,
        };
        let service = service::CallsService::new(
            platform.db.clone(),
            platform.bus.clone(),
            platform.queue.clone(),
            source,
            default_org,
            schedule,
        );
        let service = service.with_settings(serde_json::json!({
            "clickhouse": config.clickhouse_url.as_ref().map(|url| serde_json::json!({
                "url": sightline_platform::config::url_without_credentials(url),
                "database": config.clickhouse_database,
                "user": config.clickhouse_user,
                "password_set": config.clickhouse_password.is_some(),
            })),
        }));
        service.seed_default_org().await?;
        service.start_schedules().await?;
        Ok(ModuleParts::new(http::router(service.clone()))
            .page("/ui/calls", "Call reports", "KPIs, breakdowns and trends of each organisation's calls")
            .standalone_job(jobs::GenerateReportJob { service: service.clone() })
            .standalone_job(jobs::CatchUpJob { service: service.clone() })
            .standalone_job(jobs::RunBackfillJob { service }))
    }
}
