//! Basketball stats module (seed 002): player summaries and contexts over stats.nba.com (a
//! client that never hangs: budgets, retries, pacing, a breaker, a shared cache with stale
//! copies), and, as the issue lands, daily ingestion with signed alerts, datasets and a model.
//! [`standin`] is a local stats.nba.com for tests and demos. See `docs/sports.md`.

pub mod cli;
pub mod dataset;
pub mod error;
pub mod features;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod model;
pub mod nba;
pub mod players;
pub mod service;
pub mod standin;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sightline_platform::config::Secret;
use sightline_platform::outbound::OutboundConfig;
use sightline_platform::scheduler::ScheduleSpec;
use sightline_platform::webhooks::WebhookEndpoint;
use sightline_platform::{migrate::Migration, Module, ModuleParts, PermissionSpec, Platform};

/// What the module's routes check, and who holds it.
pub const PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "sports:read",
        description: "Read player summaries, contexts and advanced figures, and ask for predictions",
        roles: &["executive", "sop_coordinator", "viewer", "analyst"],
    },
    PermissionSpec {
        name: "sports:manage",
        description: "Run ingestion and read its runs and alert deliveries",
        roles: &["analyst"],
    },
    PermissionSpec {
        name: "sports:debug",
        description: "Read the sports module's status routes (database, Redis, cache, stats.nba.com)",
        roles: &[],
    },
];

/// The module's configuration section `[sports]`; the original's environment variables
/// (`NBA_STATS_BASE_URL`, `NBA_API_MAX_RPM`, `NBA_API_TIMEOUT`, `NBA_DEFAULT_SEASON`,
/// `MAX_BATCH_SIZE`, `BATCH_MAX_RPM`) win over it.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SportsConfig {
    /// stats.nba.com's base URL (a stand-in's in tests and demos).
    pub nba_stats_base_url: String,
    /// Requests a minute to stats.nba.com at most (`NBA_API_MAX_RPM`).
    pub nba_api_max_rpm: u32,
    /// Seconds one request to stats.nba.com may take (`NBA_API_TIMEOUT`).
    pub nba_api_timeout_secs: u64,
    /// Seconds a whole call may take, retries and pacing included: no answer waits longer.
    pub nba_api_budget_secs: u64,
    /// The season asked about when a request names none (`NBA_DEFAULT_SEASON`); default the
    /// current one by date (a new season from October).
    pub default_season: Option<String>,
    /// Items in one batch at most (`MAX_BATCH_SIZE`).
    pub max_batch_size: usize,
    /// Batch items a client may ask for a minute (`BATCH_MAX_RPM`).
    pub batch_max_rpm: u32,
    /// Raw records of each sync, a JSON Lines file a day (`INGEST_AUDIT_DIR`); default
    /// `<data_dir>/sports/ingest_audit`.
    pub ingest_audit_dir: Option<PathBuf>,
    /// Fields a record must have (`INGEST_CRITICAL_FIELDS`, comma-separated).
    pub ingest_critical_fields: Vec<String>,
    /// Where validation alerts go (`INGEST_ALERT_WEBHOOK`); none: they are logged.
    pub ingest_alert_webhook: Option<String>,
    /// Sent as is in `X-Ingest-Secret` (`INGEST_ALERT_SECRET`).
    pub ingest_alert_secret: Option<Secret>,
    /// Key of `X-Ingest-Signature: sha256=<hex HMAC of the body>` (`INGEST_ALERT_HMAC_SECRET`).
    pub ingest_alert_hmac_secret: Option<Secret>,
    /// Standard Webhooks secret (`whsec_…`) of `webhook-signature`
    /// (`INGEST_ALERT_SIGNING_SECRET`); default the HMAC secret.
    pub ingest_alert_signing_secret: Option<Secret>,
    /// Retries of an alert after its first attempt (`INGEST_ALERT_RETRIES`).
    pub ingest_alert_retries: u32,
    /// Seconds before the first retry, doubling (`INGEST_ALERT_BACKOFF`).
    pub ingest_alert_backoff_secs: f64,
    /// Run the daily sync of yesterday's games.
    pub sync_enabled: bool,
    /// Its hour, in `sync_timezone`.
    pub sync_hour: u32,
    /// Its minute.
    pub sync_minute: u32,
    /// The zone of its time and of "yesterday".
    pub sync_timezone: String,
}

impl Default for SportsConfig {
    fn default() -> Self {
        Self {
            nba_stats_base_url: "https://stats.nba.com/stats".into(),
            nba_api_max_rpm: 20,
            nba_api_timeout_secs: 10,
            nba_api_budget_secs: 20,
            default_season: None,
            max_batch_size: 50,
            batch_max_rpm: 120,
            ingest_audit_dir: None,
            ingest_critical_fields: ingest::validate::DEFAULT_CRITICAL
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
            ingest_alert_webhook: None,
            ingest_alert_secret: None,
            ingest_alert_hmac_secret: None,
            ingest_alert_signing_secret: None,
            ingest_alert_retries: 3,
            ingest_alert_backoff_secs: 0.5,
            sync_enabled: true,
            sync_hour: 9,
            sync_minute: 0,
            sync_timezone: "America/New_York".into(),
        }
    }
}

impl SportsConfig {
    /// This section of `config`, with the original's environment variables over it.
    pub fn load(config: &sightline_platform::config::Config) -> anyhow::Result<Self> {
        let mut this = config.module_section::<SportsConfig>("sports")?;
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(url) = var("NBA_STATS_BASE_URL") {
            this.nba_stats_base_url = url;
        }
        if let Some(season) = var("NBA_DEFAULT_SEASON") {
            this.default_season = Some(season.trim().to_owned());
        }
        if let Some(season) = this.default_season.as_deref().filter(|s| !nba::valid_season(s)) {
            anyhow::bail!("configuration error: key `sports.default_season` (NBA_DEFAULT_SEASON): {season:?} is not a season such as 2024-25");
        }
        let number = |name: &str, key: &str| -> anyhow::Result<Option<u64>> {
            var(name).map(|v| v.trim().parse::<f64>().map(|n| n.ceil() as u64)).transpose().map_err(|_| {
                anyhow::anyhow!("configuration error: key `sports.{key}` ({name}): not a number")
            })
        };
        if let Some(rpm) = number("NBA_API_MAX_RPM", "nba_api_max_rpm")? {
            this.nba_api_max_rpm = u32::try_from(rpm).unwrap_or(u32::MAX);
        }
        if let Some(secs) = number("NBA_API_TIMEOUT", "nba_api_timeout_secs")? {
            this.nba_api_timeout_secs = secs;
        }
        if let Some(size) = number("MAX_BATCH_SIZE", "max_batch_size")? {
            this.max_batch_size = usize::try_from(size).unwrap_or(usize::MAX);
        }
        if let Some(rpm) = number("BATCH_MAX_RPM", "batch_max_rpm")? {
            this.batch_max_rpm = u32::try_from(rpm).unwrap_or(u32::MAX);
        }
        if let Some(dir) = var("INGEST_AUDIT_DIR") {
            this.ingest_audit_dir = Some(PathBuf::from(dir));
        }
        if let Some(fields) = var("INGEST_CRITICAL_FIELDS") {
            this.ingest_critical_fields =
                fields.split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect();
        }
        if let Some(url) = var("INGEST_ALERT_WEBHOOK") {
            this.ingest_alert_webhook = Some(url);
        }
        for (name, slot) in [
            ("INGEST_ALERT_SECRET", &mut this.ingest_alert_secret),
            ("INGEST_ALERT_HMAC_SECRET", &mut this.ingest_alert_hmac_secret),
            ("INGEST_ALERT_SIGNING_SECRET", &mut this.ingest_alert_signing_secret),
        ] {
            if let Some(secret) = var(name) {
                *slot = Some(Secret::new(secret));
            }
        }
        if let Some(retries) = number("INGEST_ALERT_RETRIES", "ingest_alert_retries")? {
            this.ingest_alert_retries = u32::try_from(retries).unwrap_or(u32::MAX);
        }
        if let Some(backoff) = var("INGEST_ALERT_BACKOFF") {
            this.ingest_alert_backoff_secs = backoff.trim().parse().map_err(|_| {
                anyhow::anyhow!("configuration error: key `sports.ingest_alert_backoff_secs` (INGEST_ALERT_BACKOFF): not a number")
            })?;
        }
        anyhow::ensure!(
            this.ingest_alert_backoff_secs.is_finite() && this.ingest_alert_backoff_secs > 0.0,
            "configuration error: key `sports.ingest_alert_backoff_secs`: above 0"
        );
        anyhow::ensure!(
            this.ingest_alert_retries <= 20,
            "configuration error: key `sports.ingest_alert_retries`: at most 20"
        );
        anyhow::ensure!(
            this.sync_hour < 24 && this.sync_minute < 60,
            "configuration error: keys `sports.sync_hour` and `sports.sync_minute`: a time of day"
        );
        this.sync_timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow::anyhow!(
                "configuration error: key `sports.sync_timezone`: {:?} is not an IANA time zone",
                this.sync_timezone
            )
        })?;
        if let Some(url) = &this.ingest_alert_webhook {
            reqwest::Url::parse(url).map_err(|e| {
                anyhow::anyhow!(
                    "configuration error: key `sports.ingest_alert_webhook` (INGEST_ALERT_WEBHOOK): {e}"
                )
            })?;
        }
        anyhow::ensure!(
            this.max_batch_size >= 1 && this.batch_max_rpm >= 1,
            "configuration error: keys `sports.max_batch_size` and `sports.batch_max_rpm`: at least 1"
        );
        anyhow::ensure!(
            this.nba_api_max_rpm >= 1,
            "configuration error: key `sports.nba_api_max_rpm`: at least 1"
        );
        anyhow::ensure!(
            this.nba_api_timeout_secs >= 1 && this.nba_api_budget_secs >= this.nba_api_timeout_secs,
            "configuration error: key `sports.nba_api_budget_secs`: at least `nba_api_timeout_secs` (≥ 1)"
        );
        Ok(this)
    }

    /// The outbound client's settings: pacing as a token bucket of `nba_api_max_rpm` (full at
    /// start, as the original's), 3 retries, a breaker after 5 failures.
    pub fn outbound(&self) -> OutboundConfig {
        OutboundConfig {
            base_url: self.nba_stats_base_url.trim_end_matches('/').to_owned(),
            connect_timeout_ms: 5_000.min(self.nba_api_timeout_secs * 1000),
            timeout_ms: self.nba_api_timeout_secs * 1000,
            budget_ms: self.nba_api_budget_secs * 1000,
            max_retries: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 8_000,
            rate_per_sec: f64::from(self.nba_api_max_rpm) / 60.0,
            burst: self.nba_api_max_rpm,
            user_agent: Some(nba::USER_AGENT.to_owned()),
            ..OutboundConfig::default()
        }
    }
}

impl SportsConfig {
    /// Ingestion's settings, the audit directory under `data_dir` unless configured.
    pub fn ingest(&self, data_dir: &std::path::Path) -> ingest::IngestSettings {
        ingest::IngestSettings {
            audit_dir: self
                .ingest_audit_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("sports").join("ingest_audit")),
            critical_fields: self.ingest_critical_fields.clone(),
            alert: self.ingest_alert_webhook.as_ref().map(|url| WebhookEndpoint {
                url: url.clone(),
                secret_header: self.ingest_alert_secret.clone().map(|s| ("X-Ingest-Secret".to_owned(), s)),
                hmac_header: self
                    .ingest_alert_hmac_secret
                    .clone()
                    .map(|s| ("X-Ingest-Signature".to_owned(), s)),
                signing_secret: self
                    .ingest_alert_signing_secret
                    .clone()
                    .or_else(|| self.ingest_alert_hmac_secret.clone()),
            }),
            alert_attempts: i64::from(self.ingest_alert_retries) + 1,
            datasets_dir: data_dir.join("sports").join("datasets"),
        }
    }
}

/// The `sports` module.
pub struct SportsModule;

impl SportsModule {
    /// The module's service over the platform's parts (for `serve` and the commands).
    pub fn service(
        config: &SportsConfig,
        root: &sightline_platform::config::Config,
        db: &sightline_platform::Db,
        outbound: &sightline_platform::outbound::Outbound,
        cache: sightline_platform::cache::Cache,
        queue: sightline_platform::queue::Queue,
    ) -> anyhow::Result<service::SportsService> {
        let client = outbound.client("nba_stats", config.outbound())?;
        let database_shown =
            sightline_platform::config::url_without_credentials(root.effective_database_url().expose());
        let redis = root.cache.redis_url.expose();
        let redis_shown =
            (!redis.is_empty()).then(|| sightline_platform::config::url_without_credentials(redis));
        Ok(service::SportsService::new(service::ServiceParts {
            nba: nba::NbaStats::new(client),
            cache,
            db: db.clone(),
            queue,
            database_shown,
            redis_shown,
            limits: service::BatchLimits {
                max_batch_size: config.max_batch_size,
                per_minute: config.batch_max_rpm,
            },
            default_season: config.default_season.clone(),
            ingest: config.ingest(&root.data_dir),
        }))
    }
}

#[async_trait::async_trait]
impl Module for SportsModule {
    fn name(&self) -> &'static str {
        "sports"
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
            "sports" => cli::run(matches, context).await,
            other => anyhow::bail!("no command {other}"),
        }
    }

    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts> {
        let config = SportsConfig::load(&platform.config)?;
        let service = Self::service(
            &config,
            &platform.config,
            &platform.db,
            &platform.outbound,
            platform.cache.clone(),
            platform.queue.clone(),
        )?;
        let timezone: chrono_tz::Tz =
            config.sync_timezone.parse().map_err(|_| anyhow::anyhow!("sports.sync_timezone"))?;
        let alerts = platform.outbound.client(
            "sports_alerts",
            OutboundConfig {
                timeout_ms: 5_000,
                budget_ms: 6_000,
                max_retries: 0,
                ..OutboundConfig::default()
            },
        )?;
        let mut parts = ModuleParts::new(http::router(service.clone()))
            .page(
                "/ui/sports",
                "Players",
                "A player's recent games, rolling averages and context, from stats.nba.com",
            )
            .page(
                "/ui/sports/ingest",
                "Ingestion",
                "Daily ingestion runs, validation findings and alert deliveries",
            )
            .standalone_job(jobs::SyncJob { service: service.clone(), timezone })
            .standalone_job(jobs::BuildDatasetJob { service: service.clone() })
            .standalone_job(jobs::DeliverAlertJob {
                db: platform.db.clone(),
                client: alerts,
                endpoint: service.ingest_settings().alert.clone().unwrap_or_default(),
                backoff: Duration::from_secs_f64(config.ingest_alert_backoff_secs),
            });
        if config.sync_enabled {
            let cron = format!("{} {} * * *", config.sync_minute, config.sync_hour);
            let job = jobs::Sync { date: None, dry_run: false, trigger: "schedule".into() };
            parts = parts.schedule(ScheduleSpec::of("sports.daily_sync", &cron, timezone, &job)?);
        }
        Ok(parts)
    }
}
