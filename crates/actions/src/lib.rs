//! Next Best Action module (seed 000): calculation events are accepted, queued and processed
//! into NBAs per scope (definition + target identifiers); clients list NBAs and accept or reject
//! them; reference data enriches events; the income calculator emits events.
//!
//! Processing rules: a repeated event id has no second effect; `deactivate_nba_ids` are
//! deactivated; `create_nba=false` stops there (`deactivated_only`); otherwise one NBA is created
//! per event and the scope's other current `new` NBAs calculated no later than it are
//! deactivated (an event older than the scope's current NBA is stored inactive).

pub mod calculator;
pub mod cli;
pub mod http;
pub mod jobs;
pub mod mockdb;
pub mod model;
pub mod service;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use sightline_platform::{migrate::Migration, Module, ModuleParts, PermissionSpec, Platform};

/// What the module's routes check, and who holds it.
pub const PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "nba:read",
        description: "List and read next-best-actions, their history and the reference data",
        roles: &[
            "executive",
            "demand_planner",
            "supply_planner",
            "inventory_manager",
            "finance_analyst",
            "sop_coordinator",
            "viewer",
            "analyst",
        ],
    },
    PermissionSpec {
        name: "nba:act",
        description: "Accept or reject next-best-actions",
        roles: &["executive", "sop_coordinator", "analyst"],
    },
    PermissionSpec {
        name: "events:write",
        description: "Send calculation events (calculators, usually with an API key)",
        roles: &[],
    },
];

/// The module's configuration section `[actions]`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionsConfig {
    /// Reference data directory (env `MOCK_DB_DIR` wins; default `examples/mock_db`).
    pub mock_db_dir: Option<PathBuf>,
    /// How far past the server's clock an event's `occurred_at` may be, in seconds (clock skew);
    /// later ones are refused, or one event dated 9999 would pin its scope for good.
    pub event_max_future_secs: i64,
    /// Largest accepted `context` of an event, in bytes of JSON.
    pub event_max_context_bytes: usize,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        let limits = model::EventLimits::default();
        Self {
            mock_db_dir: None,
            event_max_future_secs: limits.max_future_secs,
            event_max_context_bytes: limits.max_context_bytes,
        }
    }
}

/// The `actions` module.
pub struct ActionsModule;

#[async_trait::async_trait]
impl Module for ActionsModule {
    fn name(&self) -> &'static str {
        "actions"
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
            "calc" => cli::run(matches).await,
            other => anyhow::bail!("no command {other}"),
        }
    }

    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts> {
        let config: ActionsConfig = platform.config.module_section("actions")?;
        let chosen = std::env::var_os("MOCK_DB_DIR").map(PathBuf::from).or(config.mock_db_dir);
        // A directory the user named must exist; the default may be absent (empty tables).
        if let Some(dir) = chosen.as_ref().filter(|d| !d.is_dir()) {
            anyhow::bail!(
                "reference data directory {} (MOCK_DB_DIR or actions.mock_db_dir) does not exist",
                dir.display()
            );
        }
        let dir = chosen.unwrap_or_else(|| PathBuf::from("examples/mock_db"));
        let reference = Arc::new(mockdb::ReferenceData::load(&dir)?);
        let timeout = platform.config.http.request_timeout_secs;
        let max_wait = std::time::Duration::from_millis(timeout.saturating_sub(1) * 1000);
        let service = service::ActionsService::new(
            platform.db.clone(),
            platform.queue.clone(),
            platform.bus.clone(),
            reference,
            max_wait,
        )
        .with_event_limits(model::EventLimits {
            max_future_secs: config.event_max_future_secs,
            max_context_bytes: config.event_max_context_bytes,
        });
        let job = jobs::ProcessEventJob { backend: platform.db.backend() };
        Ok(ModuleParts::new(http::router(service)).job(job).page(
            "/ui/active-nbas",
            "Active NBAs",
            "Next best actions per client: accept, reject, filter",
        ))
    }
}
