//! The S&OP planning module (seed 004, GenXSOP): products and categories, demand plans with
//! their versions and approval workflow, supply plans, on the original's paths under `/api/v1`
//! with its shapes (decimal strings, the pagination wrapper, the original's error codes);
//! inventory with computed days of supply, valuation and service-level analytics; the supply
//! gap analysis; bulk loads (ERP JSON sync, CSV) and `sightline planning sample`. Forecasting,
//! scenarios, the S&OP cycle, KPIs and the dashboard follow (docs/planning.md).

pub mod cli;
pub mod decimal;
pub mod error;
pub mod forecast;
pub mod http;
pub mod jobs;
pub mod model;
pub mod page;
pub mod sample;
pub mod scenario;
pub mod service;
pub mod store;

use sightline_platform::{migrate::Migration, Module, ModuleParts, PermissionSpec, Platform};

/// What the module's routes check, and who holds it (the original's role sets; `admin` holds
/// all). Reading needs only a signed-in user or key, as in the original.
pub const PERMISSIONS: &[PermissionSpec] = &[
    PermissionSpec {
        name: "products:manage",
        description: "Create and change products and categories",
        roles: &[],
    },
    PermissionSpec {
        name: "demand:plan",
        description: "Create, change, adjust, submit and delete demand plans",
        roles: &["demand_planner", "supply_planner", "sop_coordinator"],
    },
    PermissionSpec {
        name: "demand:approve",
        description: "Approve and reject demand plans",
        roles: &["executive"],
    },
    PermissionSpec {
        name: "supply:plan",
        description: "Create, change, submit and delete supply plans",
        roles: &["supply_planner", "sop_coordinator"],
    },
    PermissionSpec {
        name: "supply:approve",
        description: "Approve and reject supply plans",
        roles: &["executive"],
    },
    PermissionSpec {
        name: "inventory:manage",
        description: "Change inventory positions and their policies, load inventory",
        roles: &["inventory_manager", "supply_planner"],
    },
    PermissionSpec {
        name: "forecasts:run",
        description: "Generate forecasts and detect anomalies in demand history",
        roles: &["demand_planner", "supply_planner", "finance_analyst", "sop_coordinator"],
    },
    PermissionSpec {
        name: "sop:coordinate",
        description: "Start, edit and advance S&OP cycles",
        roles: &["sop_coordinator"],
    },
    PermissionSpec {
        name: "scenarios:plan",
        description: "Create, change, run, submit and promote scenarios",
        roles: &["demand_planner", "supply_planner", "finance_analyst", "sop_coordinator"],
    },
    PermissionSpec {
        name: "scenarios:approve",
        description: "Approve and reject scenarios",
        roles: &["executive"],
    },
    PermissionSpec {
        name: "kpis:manage",
        description: "Record, compute and target KPI metrics",
        roles: &["executive"],
    },
    PermissionSpec { name: "sop:execute", description: "Complete S&OP cycles", roles: &["executive"] },
    PermissionSpec {
        name: "integrations:sync",
        description: "Load products, inventory and demand actuals from an ERP (JSON batches)",
        roles: &["sop_coordinator"],
    },
];

/// The planning module.
pub struct PlanningModule;

/// The `[planning]` section of the configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanningConfig {
    /// When the KPIs of this month and the latest planned one are computed (cron, 5 fields);
    /// empty: never on a schedule.
    pub kpi_cron: String,
    /// The time zone `kpi_cron` is read in.
    pub kpi_timezone: String,
}

impl Default for PlanningConfig {
    fn default() -> Self {
        Self { kpi_cron: "30 2 * * *".into(), kpi_timezone: "UTC".into() }
    }
}

#[async_trait::async_trait]
impl Module for PlanningModule {
    fn name(&self) -> &'static str {
        "planning"
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
            "planning" => cli::run(matches, context).await,
            other => anyhow::bail!("no command {other}"),
        }
    }

    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts> {
        let config = platform.config.module_section::<PlanningConfig>("planning")?;
        let service =
            service::PlanningService::new(platform.db.clone(), platform.bus.clone(), platform.queue.clone());
        let mut parts = ModuleParts::new(http::router(service.clone()))
            .page(
                "/ui/planning",
                "Planning",
                "KPIs against targets, demand history and forecasts, inventory health, the S&OP cycle, scenarios",
            )
            .standalone_job(jobs::ForecastAllJob { service: service.clone() })
            .standalone_job(jobs::ComputeKpisJob { service });
        if !config.kpi_cron.trim().is_empty() {
            let timezone: chrono_tz::Tz = config.kpi_timezone.parse().map_err(|_| {
                anyhow::anyhow!(
                    "configuration error: key `planning.kpi_timezone`: {:?} is not a time zone",
                    config.kpi_timezone
                )
            })?;
            let spec = sightline_platform::scheduler::ScheduleSpec::of(
                "planning.compute_kpis",
                &config.kpi_cron,
                timezone,
                &jobs::ComputeKpis {},
            )?;
            parts = parts.schedule(spec);
        }
        Ok(parts)
    }
}
