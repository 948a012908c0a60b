//! The module contract: a module declares itself once and the server composes the enabled ones.

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
        Self { router, jobs: Vec::new(), schedules: Vec::new(), pages: Vec::new() }
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

    /// Loads the module's configuration and reference data and returns its parts. Runs after
    /// migrations; bad configuration or data is an error naming the key, file or row.
    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts>;
}
