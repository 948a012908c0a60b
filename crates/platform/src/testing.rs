//! Test harness: a fresh database per test (SQLite file or a new PostgreSQL database) and the
//! real server on port 0.
//!
//! PostgreSQL tests use `SIGHTLINE_TEST_POSTGRES_URL` (an admin URL; each test creates its own
//! database). Without it they are skipped with a notice, unless `SIGHTLINE_REQUIRE_POSTGRES` is
//! set (as the test script does), when they fail.

use std::sync::Arc;

use figment::providers::Serialized;
use figment::Figment;
use serde_json::Value;
use sqlx::{Connection as _, Executor as _};

use crate::app::Application;
use crate::config::{Config, LogFormat};
use crate::db::Backend;
use crate::module::Module;
use crate::queue::Workers;
use crate::Platform;

/// A database that lives as long as this value (the SQLite directory is removed on drop).
pub struct TestDatabase {
    /// Connection URL.
    pub url: String,
    /// Data directory for the test (also holds the SQLite file).
    pub dir: tempfile::TempDir,
}

/// Makes a fresh database on `backend`; `None` when PostgreSQL is not configured (test skipped).
pub async fn test_database(backend: Backend) -> Option<TestDatabase> {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            Some(TestDatabase { url, dir })
        }
        Backend::Postgres => {
            let Ok(admin) = std::env::var("SIGHTLINE_TEST_POSTGRES_URL") else {
                if std::env::var_os("SIGHTLINE_REQUIRE_POSTGRES").is_some() {
                    panic!(
                        "SIGHTLINE_REQUIRE_POSTGRES is set but SIGHTLINE_TEST_POSTGRES_URL is not"
                    );
                }
                eprintln!("skipped: set SIGHTLINE_TEST_POSTGRES_URL to run PostgreSQL tests");
                return None;
            };
            sqlx::any::install_default_drivers();
            let name = format!("sl_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::AnyConnection::connect(&admin)
                .await
                .expect("connect to test PostgreSQL");
            conn.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            conn.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            Some(TestDatabase {
                url: format!("{base}/{name}"),
                dir,
            })
        }
    }
}

/// A configuration for tests: port 0, the given database, quiet logs, plus `overrides`
/// (`("queue.lease_secs", json!(2))`, …).
pub fn test_config(db: &TestDatabase, overrides: &[(&str, Value)]) -> Config {
    let mut figment = Figment::from(Serialized::defaults(Config::default()))
        .merge(("bind", "127.0.0.1:0"))
        .merge(("data_dir", db.dir.path().display().to_string()))
        .merge(("database_url", db.url.clone()))
        .merge(("queue.poll_interval_ms", 50))
        .merge(("scheduler.tick_ms", 200));
    for (key, value) in overrides {
        figment = figment.merge((*key, value.clone()));
    }
    Config::from_figment(figment).expect("valid test config")
}

/// A running server for one test.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// HTTP client.
    pub client: reqwest::Client,
    /// Shared handles.
    pub platform: Platform,
    /// The server's workers (to drain the queue deterministically).
    pub workers: Workers,
    /// The database (dropped with the app).
    pub db: TestDatabase,
}

impl TestApp {
    /// Starts the server over `modules` on `backend`; `None` when the backend is not available.
    pub async fn spawn(
        backend: Backend,
        modules: Vec<Arc<dyn Module>>,
        overrides: &[(&str, Value)],
    ) -> Option<TestApp> {
        crate::telemetry::init_logging(LogFormat::Pretty, "warn");
        let db = test_database(backend).await?;
        let config = test_config(&db, overrides);
        let app = Application::build(config, &modules)
            .await
            .expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let platform = app.platform().clone();
        let workers = app.workers();
        tokio::spawn(app.run_until_stopped());
        Some(TestApp {
            address,
            client: reqwest::Client::new(),
            platform,
            workers,
            db,
        })
    }

    /// `address` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GETs `path`; answers the status and the JSON body (`Null` when it is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        answer(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// POSTs `body` as JSON to `path`; answers the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        answer(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// POSTs nothing to `path`; answers the status and the JSON body.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        answer(
            self.client
                .post(self.url(path))
                .send()
                .await
                .expect("request sent"),
        )
        .await
    }

    /// Runs every due job now; returns how many ran.
    pub async fn run_pending_jobs(&self) -> usize {
        self.workers.run_pending().await.expect("jobs run")
    }
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.platform.shutdown.cancel();
    }
}

/// Declares `async fn name(backend: Backend)` scenarios as tests on SQLite and PostgreSQL.
#[macro_export]
macro_rules! storage_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn on_postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}
