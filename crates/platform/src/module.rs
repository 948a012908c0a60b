//! The module contract: a module declares itself once and the server composes the enabled ones.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::auth::{PermissionSpec, SecureRouter};
use crate::migrate::Migration;
use crate::queue::job::JobRegistration;
use crate::queue::{RunInTransaction, RunStandalone};
use crate::scheduler::ScheduleSpec;
use crate::Platform;

/// What a built module contributes to the process.
pub struct ModuleParts {
    /// Routes (API and pages) with their OpenAPI paths and the access each declares.
    pub router: SecureRouter,
    /// Handlers of the module's job types.
    pub jobs: Vec<JobRegistration>,
    /// Recurring jobs.
    pub schedules: Vec<ScheduleSpec>,
    /// The module's pages, linked from the home page (`/`).
    pub pages: Vec<PageLink>,
    /// What `/health/ready` checks for the module (Redis, ClickHouse, an outside API).
    pub readiness: Vec<ReadinessCheck>,
}

/// One readiness check: a name (`clickhouse`, `nba_stats`) and an async probe answering why it is
/// not ready. `/health/ready` runs every check with a time budget.
#[derive(Clone)]
pub struct ReadinessCheck {
    /// What is checked.
    pub name: &'static str,
    probe: Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>,
}

impl ReadinessCheck {
    /// A check named `name` running `probe`.
    pub fn new<F, Fut>(name: &'static str, probe: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        Self { name, probe: Arc::new(move || Box::pin(probe())) }
    }

    /// Runs the probe.
    pub async fn run(&self) -> Result<(), String> {
        (self.probe)().await
    }
}

/// What a module's command-line tool gets: the way to the configuration, for tools that need the
/// database (most calculators and generators need none).
pub struct CommandContext {
    /// The configuration file given with `--config`.
    pub config_file: Option<std::path::PathBuf>,
    /// Values given on the command line.
    pub overrides: crate::config::Overrides,
}

impl CommandContext {
    /// Loads the configuration as `serve` would.
    pub fn load_config(&self) -> Result<crate::config::Config, crate::config::ConfigError> {
        crate::config::Config::load(self.config_file.as_deref(), &self.overrides)
    }
}

/// Runs the future `work` makes on a runtime of its own, for a command's work whose futures are
/// not `Send` for every lifetime [`Module::run_command`]'s `Send` bound asks of them (the store's).
pub async fn on_own_runtime<F, Fut>(work: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(work())
    })
    .await?
}

/// A page a module serves, as the home page lists it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PageLink {
    /// Path, e.g. `/ui/usage`.
    pub path: &'static str,
    /// Title.
    pub title: &'static str,
    /// One line on what it is for.
    pub description: &'static str,
}

impl ModuleParts {
    /// Parts with `router` and no jobs or schedules yet.
    pub fn new(router: SecureRouter) -> Self {
        Self { router, jobs: Vec::new(), schedules: Vec::new(), pages: Vec::new(), readiness: Vec::new() }
    }

    /// Lists a page on the home page.
    pub fn page(mut self, path: &'static str, title: &'static str, description: &'static str) -> Self {
        self.pages.push(PageLink { path, title, description });
        self
    }

    /// Adds the handler of a job type run in the worker's transaction.
    pub fn job(mut self, handler: impl RunInTransaction) -> Self {
        self.jobs.push(JobRegistration::in_transaction(handler));
        self
    }

    /// Adds the handler of a long job type, run on the standalone pool.
    pub fn standalone_job(mut self, handler: impl RunStandalone) -> Self {
        self.jobs.push(JobRegistration::standalone(handler));
        self
    }

    /// Adds a recurring job.
    pub fn schedule(mut self, spec: ScheduleSpec) -> Self {
        self.schedules.push(spec);
        self
    }

    /// Adds a readiness check to `/health/ready`.
    pub fn readiness(mut self, check: ReadinessCheck) -> Self {
        self.readiness.push(check);
        self
    }
}

/// A Sightline module (`actions`, `calls`, `sports`, `usage`, `planning`).
#[async_trait::async_trait]
pub trait Module: Send + Sync + 'static {
    /// Short name: config key, queue name, migration namespace.
    fn name(&self) -> &'static str;

    /// The module's migrations, in order.
    fn migrations(&self) -> &'static [Migration] {
        &[]
    }

    /// The permissions the module's routes check, with the roles that hold them.
    fn permissions(&self) -> &'static [PermissionSpec] {
        &[]
    }

    /// The module's command-line tools: top-level subcommands of `sightline` (`sightline calc
    /// income`, `sightline usage sample`). Their names must not clash with the platform's.
    fn commands(&self) -> Vec<clap::Command> {
        Vec::new()
    }

    /// Runs the command named by `matches` (one of [`Module::commands`]), with that command's
    /// own matches.
    async fn run_command(
        &self,
        name: &str,
        _matches: &clap::ArgMatches,
        _context: &CommandContext,
    ) -> anyhow::Result<()> {
        anyhow::bail!("module {} has no command {name}", self.name())
    }

    /// Loads the module's configuration and reference data and returns its parts. Runs after
    /// migrations; bad configuration or data is an error naming the key, file or row.
    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts>;
}
