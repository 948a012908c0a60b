//! Basketball stats module (seed 002): player summaries and contexts over stats.nba.com (a
//! client that never hangs: budgets, retries, pacing, a breaker, a shared cache with stale
//! copies), and, as the issue lands, daily ingestion with signed alerts, datasets and a model.
//! [`standin`] is a local stats.nba.com for tests and demos. See `docs/sports.md`.

pub mod cli;
pub mod error;
pub mod features;
pub mod http;
pub mod nba;
pub mod players;
pub mod service;
pub mod standin;

use serde::Deserialize;
use sightline_platform::outbound::OutboundConfig;
use sightline_platform::{migrate::Migration, Module, ModuleParts, PermissionSpec, Platform};

/// What the module's routes check, and who holds it.
pub const PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "sports:read",
        description: "Read player summaries, contexts and advanced figures, and ask for predictions",
        roles: &["executive", "sop_coordinator", "viewer", "analyst"],
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

/// The `sports` module.
pub struct SportsModule;

#[async_trait::async_trait]
impl Module for SportsModule {
    fn name(&self) -> &'static str {
        "sports"
    }

    fn migrations(&self) -> &'static [Migration] {
        &[]
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
        let client = platform.outbound.client("nba_stats", config.outbound())?;
        let config_root = &platform.config;
        let database_shown =
            sightline_platform::config::url_without_credentials(config_root.database_url.expose());
        let redis = config_root.cache.redis_url.expose();
        let redis_shown =
            (!redis.is_empty()).then(|| sightline_platform::config::url_without_credentials(redis));
        let service = service::SportsService::new(
            nba::NbaStats::new(client),
            platform.cache.clone(),
            platform.db.clone(),
            database_shown,
            redis_shown,
            service::BatchLimits { max_batch_size: config.max_batch_size, per_minute: config.batch_max_rpm },
            config.default_season,
        );
        Ok(ModuleParts::new(http::router(service)))
    }
}
