//! Process assembly: connect, migrate, build modules, then serve HTTP and/or run workers and the
//! scheduler until asked to stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::audit::EventBus;
use crate::auth::{AccessPolicy, AuthService, RouteAccess};
use crate::config::Config;
use crate::db::Db;
use crate::http::build_router;
use crate::module::{Module, ModuleParts};
use crate::queue::{Queue, Workers};
use crate::scheduler::Scheduler;
use crate::{migrate, queue, Platform};

/// The platform's own migrations: queue and schedules, identity and audit, the worker registry,
/// job deduplication and schedule owners, outgoing webhooks.
const PLATFORM_MIGRATIONS: &[migrate::Migration] = &[
    queue::MIGRATION,
    crate::auth::store::MIGRATION,
    queue::WORKERS_MIGRATION,
    queue::DEDUP_MIGRATION,
    crate::webhooks::MIGRATION,
];

/// Makes what the process creates (database, WAL, uploads, secrets) readable by the owner only:
/// umask 077 for the process, and the data directory created 0700.
fn keep_files_private(data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)
        .with_context(|| format!("Failed to create {}", data_dir.display()))
}

/// Connects to the database and applies the platform's and `modules`' migrations.
pub async fn connect_and_migrate(config: &Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<Db> {
    keep_files_private(&config.data_dir)?;
    let db = Db::connect(config.effective_database_url().expose()).await?;
    migrate::apply(&db, "platform", PLATFORM_MIGRATIONS).await?;
    for m in modules {
        migrate::apply(&db, m.name(), m.migrations()).await?;
    }
    Ok(db)
}

/// The identity service over an already-migrated database: merges the platform's and the
/// modules' permissions, loads the signing secret and creates the first admin if needed.
pub async fn identity(
    config: &Config,
    db: &Db,
    bus: &EventBus,
    modules: &[Arc<dyn Module>],
) -> anyhow::Result<AuthService> {
    let mut permissions = crate::auth::policy::PLATFORM_PERMISSIONS.to_vec();
    for m in modules {
        permissions.extend_from_slice(m.permissions());
    }
    let policy = Arc::new(AccessPolicy::new(&permissions)?);
    let auth = AuthService::new(db.clone(), bus.clone(), policy, &config.auth, &config.data_dir)?;
    auth.bootstrap_admin(&config.data_dir).await?;
    Ok(auth)
}

/// A platform with every module built.
pub struct Assembled {
    /// Shared handles.
    pub platform: Platform,
    /// Identity services.
    pub auth: AuthService,
    /// Each module's parts, in the order given.
    pub parts: Vec<(&'static str, ModuleParts)>,
}

impl Assembled {
    /// Connects, migrates and builds `modules`.
    pub async fn new(config: Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<Self> {
        let db = connect_and_migrate(&config, modules).await?;
        let queue = Queue::new(db.clone(), config.queue.clone());
        let bus = EventBus::standard();
        let auth = identity(&config, &db, &bus, modules).await?;
        let platform = {
            let config = Arc::new(config);
            let outbound = crate::outbound::Outbound::new(config.clone());
            let cache = crate::cache::Cache::from_config(&config.cache)?;
            Platform { config, db, queue, bus, outbound, cache, shutdown: CancellationToken::new() }
        };
        let mut parts = Vec::with_capacity(modules.len());
        for m in modules {
            let built = m.build(&platform).await.with_context(|| format!("module {}", m.name()))?;
            tracing::info!(
                module = m.name(),
                jobs = built.jobs.len(),
                schedules = built.schedules.len(),
                "module.ready"
            );
            check_names(m.name(), &built)?;
            parts.push((m.name(), built));
        }
        Ok(Self { platform, auth, parts })
    }

    /// Workers for every module's job handlers; a job type registered twice is an error.
    pub fn workers(&self) -> anyhow::Result<Workers> {
        let handlers = self.parts.iter().flat_map(|(_, p)| p.jobs.iter().cloned()).collect();
        Workers::new(self.platform.queue.clone(), handlers)
    }

    /// The scheduler for every module's schedules.
    pub async fn scheduler(&self) -> anyhow::Result<Scheduler> {
        let specs = self.parts.iter().flat_map(|(_, p)| p.schedules.iter().cloned()).collect();
        let modules: Vec<&str> = self.parts.iter().map(|(name, _)| *name).collect();
        Scheduler::register(self.platform.db.clone(), self.platform.queue.clone(), &modules, specs).await
    }
}

/// A module's job types and schedules carry its name as prefix (`usage.import`), so two modules
/// cannot clash.
fn check_names(module: &str, parts: &ModuleParts) -> anyhow::Result<()> {
    let prefix = format!("{module}.");
    let names = parts.jobs.iter().map(|j| ("job type", j.name().to_owned()));
    let names = names.chain(parts.schedules.iter().map(|s| ("schedule", s.name.clone())));
    for (what, name) in names {
        anyhow::ensure!(
            name.starts_with(&prefix),
            "module {module}: {what} `{name}` must start with `{prefix}`"
        );
    }
    Ok(())
}

/// A running HTTP server with its workers and scheduler (`sightline serve`).
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    routes: Vec<RouteAccess>,
    platform: Platform,
    auth: AuthService,
    workers: Workers,
    scheduler: Scheduler,
}

impl Application {
    /// Builds everything and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<Self> {
        let bind = config.bind_addr();
        let mut assembled = Assembled::new(config, modules).await?;
        let workers = assembled.workers()?;
        let scheduler = assembled.scheduler().await?;
        let routers = assembled.parts.iter_mut().map(|(_, p)| std::mem::take(&mut p.router)).collect();
        let pages = assembled.parts.iter().flat_map(|(_, p)| p.pages.iter().cloned()).collect();
        let checks = assembled.parts.iter().flat_map(|(_, p)| p.readiness.iter().cloned()).collect();
        let (router, routes) = build_router(&assembled.platform, &assembled.auth, routers, pages, checks)?;
        let listener = TcpListener::bind(bind).await.with_context(|| format!("Failed to bind {bind}"))?;
        Ok(Self {
            listener,
            router,
            routes,
            platform: assembled.platform,
            auth: assembled.auth,
            workers,
            scheduler,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Shared handles (for tests).
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// Identity services (tests create users and keys through it).
    pub fn auth(&self) -> &AuthService {
        &self.auth
    }

    /// The route table: every route with the access it declares.
    pub fn routes(&self) -> &[RouteAccess] {
        &self.routes
    }

    /// The workers (tests use [`Workers::run_pending`]).
    pub fn workers(&self) -> Workers {
        self.workers.clone()
    }

    /// Serves until SIGINT/SIGTERM or `platform.shutdown`, then drains in-flight requests and
    /// running job batches.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self { listener, router, platform, workers, scheduler, .. } = self;
        let config = platform.config.clone();
        let shutdown = platform.shutdown.clone();
        tokio::spawn(signal_to(shutdown.clone()));
        // Workers stop after HTTP has drained, so in-flight requests that wait on jobs finish.
        let background = CancellationToken::new();
        let mut tasks = Vec::new();
        if config.queue.run_in_server {
            tasks.extend(workers.spawn(background.clone()));
        }
        if config.scheduler.enabled {
            tasks.push(scheduler.spawn(Duration::from_millis(config.scheduler.tick_ms), background.clone()));
        }
        tracing::info!(
            addr = %listener.local_addr()?,
            backend = platform.db.backend().as_str(),
            workers = config.queue.run_in_server,
            "server.listening"
        );
        let grace = Duration::from_secs(config.http.shutdown_grace_secs);
        let served = crate::serve::serve(listener, router, &config.http, shutdown, grace).await;
        background.cancel();
        finish(tasks, &platform, config.http.shutdown_grace_secs).await;
        served.context("HTTP server failed")
    }
}

/// Runs workers and the scheduler with no HTTP server (`sightline worker`).
pub async fn run_worker(config: Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<()> {
    let grace = config.http.shutdown_grace_secs;
    let tick = Duration::from_millis(config.scheduler.tick_ms);
    let scheduler_enabled = config.scheduler.enabled;
    let assembled = Assembled::new(config, modules).await?;
    let platform = assembled.platform.clone();
    tokio::spawn(signal_to(platform.shutdown.clone()));
    let mut tasks = assembled.workers()?.spawn(platform.shutdown.clone());
    if scheduler_enabled {
        tasks.push(assembled.scheduler().await?.spawn(tick, platform.shutdown.clone()));
    }
    tracing::info!(backend = platform.db.backend().as_str(), "worker.started");
    platform.shutdown.cancelled().await;
    finish(tasks, &platform, grace).await;
    Ok(())
}

async fn finish(mut tasks: Vec<tokio::task::JoinHandle<()>>, platform: &Platform, grace_secs: u64) {
    tracing::info!("server.draining");
    let grace = Duration::from_secs(grace_secs);
    if tokio::time::timeout(grace, futures::future::join_all(tasks.iter_mut())).await.is_err() {
        tracing::warn!("server.drain_timeout");
        // Unfinished batches roll back; their jobs run again once their lease expires.
        tasks.iter().for_each(|t| t.abort());
    }
    if tokio::time::timeout(Duration::from_secs(5), platform.db.close()).await.is_err() {
        tracing::warn!("server.database_close_timeout");
    }
    tracing::info!("server.stopped");
}

/// Installs the SIGINT/SIGTERM handlers now (so a signal sent once `server.listening` is logged
/// is never the default "terminate"), and cancels `token` when one arrives.
fn signal_to(token: CancellationToken) -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let (interrupt, terminate) = {
        use tokio::signal::unix::{signal, SignalKind};
        (signal(SignalKind::interrupt()).ok(), signal(SignalKind::terminate()).ok())
    };
    async move {
        #[cfg(unix)]
        let (ctrl_c, term) = {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            (wait(interrupt), wait(terminate))
        };
        #[cfg(not(unix))]
        let (ctrl_c, term) = (tokio::signal::ctrl_c(), std::future::pending::<()>());
        tokio::select! {
            _ = ctrl_c => {}
            _ = term => {}
            _ = token.cancelled() => return,
        }
        tracing::info!("server.shutdown_requested");
        token.cancel();
    }
}
