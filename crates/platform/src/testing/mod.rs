//! Test harness: a fresh database per test (SQLite file or a new PostgreSQL database) and the
//! real server on port 0.
//!
//! PostgreSQL tests use `SIGHTLINE_TEST_POSTGRES_URL` (an admin URL; each test creates its own
//! database and drops it afterwards). [`storage_tests!`] marks the PostgreSQL variants
//! `#[ignore]`, so a plain `cargo test` reports them as ignored, never as passed;
//! `scripts/test.sh` starts a server and runs them with `--run-ignored all`. Run without the
//! URL, they fail.

use std::sync::Arc;

use figment::providers::Serialized;
use figment::Figment;
use serde_json::Value;
use sqlx::{Connection as _, Executor as _};

use crate::app::Application;
use crate::auth::service::TokenResponse;
use crate::auth::{AuthService, RouteAccess};
use crate::config::{Config, LogFormat};
use crate::db::Backend;
use crate::module::Module;
use crate::queue::Workers;
use crate::Platform;

pub mod standin;

/// A database that lives as long as this value: the SQLite directory is removed and the
/// PostgreSQL database dropped when it goes.
pub struct TestDatabase {
    /// Connection URL.
    pub url: String,
    /// Data directory for the test (also holds the SQLite file).
    pub dir: tempfile::TempDir,
    /// On PostgreSQL: the admin URL and the database's name, to drop it.
    postgres: Option<(String, String)>,
}

/// Makes a fresh database on `backend`. On PostgreSQL it needs `SIGHTLINE_TEST_POSTGRES_URL`
/// and panics without it, so a test that asked for PostgreSQL never passes having run nothing.
pub async fn test_database(backend: Backend) -> TestDatabase {
    let dir = tempfile::tempdir().expect("temp dir");
    match backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            TestDatabase { url, dir, postgres: None }
        }
        Backend::Postgres => {
            let admin = std::env::var("SIGHTLINE_TEST_POSTGRES_URL").expect(
                "PostgreSQL tests need SIGHTLINE_TEST_POSTGRES_URL (scripts/test.sh starts a server and sets it)",
            );
            sqlx::any::install_default_drivers();
            let name = format!("sl_test_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::AnyConnection::connect(&admin).await.expect("connect to test PostgreSQL");
            conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
            conn.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            TestDatabase { url: format!("{base}/{name}"), dir, postgres: Some((admin.clone(), name)) }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else { return };
        // Drop runs inside the test's runtime: drop the database from a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut conn = sqlx::AnyConnection::connect(&admin).await?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                conn.execute(sql.as_str()).await?;
                conn.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop the test database: {e}");
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
    /// HTTP client signed in as the first admin.
    pub client: reqwest::Client,
    /// HTTP client without credentials.
    pub anonymous: reqwest::Client,
    /// Identity services, to make users, tokens and keys.
    pub auth: AuthService,
    /// The route table.
    pub routes: Vec<RouteAccess>,
    /// Shared handles.
    pub platform: Platform,
    /// The server's workers (to drain the queue deterministically).
    pub workers: Workers,
    /// The database (dropped with the app).
    pub db: TestDatabase,
    /// Jobs may be left queued or failed at the end (the test is about failures).
    leftover_jobs_expected: std::sync::atomic::AtomicBool,
}

impl TestApp {
    /// Starts the server over `modules` on `backend`.
    pub async fn spawn(
        backend: Backend,
        modules: Vec<Arc<dyn Module>>,
        overrides: &[(&str, Value)],
    ) -> TestApp {
        crate::telemetry::init_logging(LogFormat::Pretty, "warn");
        let db = test_database(backend).await;
        let config = test_config(&db, overrides);
        let app = Application::build(config, &modules).await.expect("application builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let platform = app.platform().clone();
        let workers = app.workers();
        let auth = app.auth().clone();
        let routes = app.routes().to_vec();
        tokio::spawn(app.run_until_stopped());
        let password =
            std::fs::read_to_string(db.dir.path().join("admin-password")).expect("admin password file");
        let tokens =
            auth.login(&test_context(), "admin", password.trim(), "test").await.expect("admin signs in");
        TestApp {
            address,
            client: bearer_client(&tokens.access_token),
            anonymous: reqwest::Client::new(),
            auth,
            routes,
            platform,
            workers,
            db,
            leftover_jobs_expected: Default::default(),
        }
    }

    /// A new user with `roles` (random name, password [`TEST_PASSWORD`]); its login.
    pub async fn user_with_roles(&self, roles: &[&str]) -> TokenResponse {
        let name = format!("user{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let roles = roles.iter().map(|r| (*r).to_owned()).collect();
        self.auth
            .create_user(&test_context(), &name, None, None, TEST_PASSWORD, roles)
            .await
            .expect("user created");
        self.auth.login(&test_context(), &name, TEST_PASSWORD, "test").await.expect("user signs in")
    }

    /// A client sending `token` as `Authorization: Bearer`.
    pub fn client_with(&self, token: &str) -> reqwest::Client {
        bearer_client(token)
    }

    /// An API key with `permissions`.
    pub async fn api_key(&self, permissions: &[&str]) -> String {
        let permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
        self.auth
            .create_api_key(&test_context(), "test key", permissions, Some("test"))
            .await
            .expect("key created")
            .key
    }

    /// `address` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GETs `path`; answers the status and the JSON body (`Null` when it is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        answer(self.client.get(self.url(path)).send().await.expect("request sent")).await
    }

    /// POSTs `body` as JSON to `path`; answers the status and the JSON body.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        answer(self.client.post(self.url(path)).json(body).send().await.expect("request sent")).await
    }

    /// POSTs nothing to `path`; answers the status and the JSON body.
    pub async fn post_empty(&self, path: &str) -> (u16, Value) {
        answer(self.client.post(self.url(path)).send().await.expect("request sent")).await
    }

    /// Runs every due job now; returns how many ran.
    pub async fn run_pending_jobs(&self) -> usize {
        self.workers.run_pending().await.expect("jobs run")
    }

    /// Runs jobs until none is due, and fails the test if any job is left queued (a retry
    /// waiting) or failed. Returns how many ran.
    pub async fn drain_queue(&self) -> usize {
        let ran = self.run_pending_jobs().await;
        let left = leftover_jobs(self.platform.db.reader()).await.expect("queue readable");
        assert!(left.is_empty(), "jobs left after draining the queue: {left:?}");
        ran
    }

    /// Lets this test end with jobs queued or failed (by default the app's end fails the test
    /// when any are left, as a job nobody ran is usually a bug).
    pub fn expect_leftover_jobs(&self) {
        self.leftover_jobs_expected.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Calls every route in the app's route table as anonymous, as each role and as API keys, and
/// checks that exactly the principals the declared access allows get past authorization
/// (anything but 401/403), that others get 403, and anonymous callers 401. Generated from the
/// route table, so a new route is covered the day it is added.
///
/// It checks access only: an allowed caller passes with any status but 401/403 (its empty body
/// may well be a 422, or a 500 that another test must catch), and a `Public` route with anything
/// but 401.
pub async fn check_route_matrix(app: &TestApp) {
    use crate::auth::policy::ROLES;
    let mut tokens = Vec::new();
    for (role, _) in ROLES {
        let login = app.user_with_roles(&[role]).await;
        let permissions = app.auth.policy().permissions_of([*role]);
        tokens.push((format!("role {role}"), login.access_token, permissions));
    }
    let everything: Vec<String> = app.auth.policy().permissions().iter().map(|p| p.name.to_owned()).collect();
    let all_key = app.api_key(&everything.iter().map(String::as_str).collect::<Vec<_>>()).await;
    tokens.push(("key with every permission".into(), all_key, everything.iter().cloned().collect()));
    let read_key = app.api_key(&["queue:read"]).await;
    tokens.push(("key with queue:read".into(), read_key, ["queue:read".to_owned()].into_iter().collect()));
    assert!(app.routes.len() > 10, "the route table looks empty");
    for route in &app.routes {
        let path = route.path.replace(['{', '}'], "");
        let call = |client: &reqwest::Client| {
            let method = reqwest::Method::from_bytes(route.method.as_bytes()).expect("method");
            let request = client.request(method, format!("{}{path}", app.address));
            match route.method.as_str() {
                "POST" | "PUT" | "PATCH" => request.json(&serde_json::json!({})),
                _ => request,
            }
        };
        let anonymous = call(&app.anonymous).send().await.expect("sent").status().as_u16();
        match route.access {
            crate::auth::Access::Public => {
                assert_ne!(anonymous, 401, "{} {} is public", route.method, route.path);
                continue;
            }
            _ => assert_eq!(anonymous, 401, "{} {} without credentials", route.method, route.path),
        }
        for (who, token, permissions) in &tokens {
            let allowed = match route.access {
                crate::auth::Access::Permission(p) => permissions.contains(p),
                _ => true,
            };
            let status = call(&app.client_with(token)).send().await.expect("sent").status().as_u16();
            if allowed {
                assert!(
                    status != 401 && status != 403,
                    "{who} should pass {} {}: {status}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(status, 403, "{who} must be refused {} {}", route.method, route.path);
            }
        }
    }
}

/// The context of changes a test makes through services directly.
pub fn test_context() -> crate::RequestContext {
    crate::RequestContext::new(
        None,
        crate::audit::Actor { kind: "system".into(), id: None, name: "test".into() },
    )
}

/// The password of users made by [`TestApp::user_with_roles`].
pub const TEST_PASSWORD: &str = "correct horse battery";

fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("token is header-safe");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    reqwest::Client::builder().default_headers(headers).build().expect("client builds")
}

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A job left behind: `(job type, state, id, last error)`.
type Leftover = (String, String, i64, Option<String>);

/// Jobs `queued` or `failed`, read through `exec` (the app's pool, or a connection of its own).
async fn leftover_jobs<'e, E>(exec: E) -> Result<Vec<Leftover>, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT job_type, state, id, last_error FROM queue_jobs WHERE state IN ('queued', 'failed') ORDER BY id",
    )
    .fetch_all(exec)
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
}

impl Drop for TestApp {
    /// Stops the server, and fails the test if it left jobs queued or failed without saying it
    /// expected them ([`TestApp::expect_leftover_jobs`]).
    fn drop(&mut self) {
        self.platform.shutdown.cancel();
        if std::thread::panicking() || self.leftover_jobs_expected.load(std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let url = self.db.url.clone();
        // Drop runs inside the test's runtime, which may have one thread: read on a thread and a
        // connection of their own.
        let left = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = sqlx::AnyConnection::connect(&url).await.ok()?;
                let left = leftover_jobs(&mut conn).await.ok();
                conn.close().await.ok();
                left
            })
        })
        .join()
        .ok()
        .flatten()
        .unwrap_or_default();
        assert!(
            left.is_empty(),
            "the test left jobs queued or failed: {left:?}; run them with app.drain_queue(), or say it \
             expects them with app.expect_leftover_jobs()"
        );
    }
}

/// Declares `async fn name(backend: Backend)` scenarios as tests on SQLite and PostgreSQL. The
/// PostgreSQL variants are `#[ignore]`d: reported as ignored by a plain `cargo test`, run by
/// `--run-ignored all` / `--include-ignored` with `SIGHTLINE_TEST_POSTGRES_URL` set.
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
                #[ignore = "needs PostgreSQL: scripts/test.sh, or SIGHTLINE_TEST_POSTGRES_URL and --run-ignored all"]
                async fn on_postgres() {
                    super::$name($crate::Backend::Postgres).await
                }
            }
        )*
    };
}

/// Panics unless every parameter `spec` places in the path is in its path template, and every
/// template variable is declared as a path parameter (query parameters declared `in: path`
/// break generated clients).
pub fn check_openapi_parameters(spec: &Value) {
    let mut wrong = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("the spec has paths") {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            let in_template: Vec<&str> =
                path.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
            let params = operation["parameters"].as_array().cloned().unwrap_or_default();
            for p in &params {
                let name = p["name"].as_str().unwrap_or_default();
                if (p["in"] == "path") != in_template.contains(&name) {
                    wrong.push(format!("{method} {path}: `{name}` declared in {}", p["in"]));
                }
            }
            for name in in_template {
                if !params.iter().any(|p| p["name"] == name && p["in"] == "path") {
                    wrong.push(format!("{method} {path}: `{name}` not declared as a path parameter"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "parameters declared where they are not read: {wrong:#?}");
}
