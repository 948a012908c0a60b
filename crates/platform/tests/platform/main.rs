//! Platform behaviour on SQLite and PostgreSQL: queue retries and failure, lease recovery,
//! the queue API, the scheduler running once across processes, request ids, errors, docs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sightline_platform::db::now_ms;
use sightline_platform::queue::job::JobRegistration;
use sightline_platform::queue::Workers;
use sightline_platform::scheduler::{ScheduleSpec, Scheduler};
use sightline_platform::testing::TestApp;
use sightline_platform::SecureRouter;
use sightline_platform::{
    storage_tests, Backend, Job, JobContext, Module, ModuleParts, NewJob, Platform, ReadinessCheck,
    RunInTransaction,
};
use sqlx::{AnyConnection, Row};

mod auth;
mod cache;
mod hardening;
mod jobs;
mod outbound;

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test.sh, or SIGHTLINE_TEST_POSTGRES_URL and --run-ignored all"]
async fn postgres_with_sslmode_require_connects_over_tls() {
    let db = sightline_platform::testing::test_database(Backend::Postgres).await;
    assert!(
        std::env::var_os("SIGHTLINE_TEST_POSTGRES_TLS").is_some(),
        "the test server does not speak TLS (scripts/lib/postgres.sh turns it on when openssl is present)"
    );
    let pool = sightline_platform::Db::connect(&format!("{}?sslmode=require", db.url)).await.unwrap();
    let row = sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(pool.reader())
        .await
        .unwrap();
    assert!(row.get::<bool, _>(0), "the connection is encrypted");
    pool.close().await;
}

/// A job that fails while `fail_times` is above its attempt number.
#[derive(Serialize, Deserialize, Default)]
struct Flaky {
    #[serde(default)]
    fail_times: i64,
}

impl Job for Flaky {
    const NAME: &'static str = "test.flaky";
    const QUEUE: &'static str = "test";
}

/// Runs [`Flaky`] jobs, counting runs.
struct FlakyJob {
    runs: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl RunInTransaction for FlakyJob {
    type Job = Flaky;
    async fn run(&self, job: Flaky, ctx: &JobContext, conn: &mut AnyConnection) -> anyhow::Result<()> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        // A write that must be rolled back when the job fails.
        sqlx::query("INSERT INTO test_effects (job_id, attempt) VALUES ($1, $2)")
            .bind(ctx.id)
            .bind(ctx.attempt)
            .execute(conn)
            .await?;
        if ctx.attempt <= job.fail_times {
            anyhow::bail!("planned failure {}", ctx.attempt);
        }
        Ok(())
    }
}

struct TestModule {
    runs: Arc<AtomicUsize>,
}

const TEST_MIGRATIONS: &[sightline_platform::migrate::Migration] =
    &[sightline_platform::migrate::Migration::portable(
        1,
        "effects",
        "CREATE TABLE test_effects (job_id BIGINT NOT NULL, attempt BIGINT NOT NULL)",
    )];

#[async_trait::async_trait]
impl Module for TestModule {
    fn name(&self) -> &'static str {
        "test"
    }
    fn migrations(&self) -> &'static [sightline_platform::migrate::Migration] {
        TEST_MIGRATIONS
    }
    async fn build(&self, platform: &Platform) -> anyhow::Result<ModuleParts> {
        // A stand-in outside dependency: down while `<data_dir>/feed-down` exists.
        let marker = platform.config.data_dir.join("feed-down");
        let feed = ReadinessCheck::new("feed", move || {
            let down = marker.exists();
            async move {
                if down {
                    Err("connection refused".to_owned())
                } else {
                    Ok(())
                }
            }
        });
        Ok(ModuleParts::new(SecureRouter::new())
            .readiness(feed)
            .job(FlakyJob { runs: self.runs.clone() })
            .page("/ui/test", "Test <page>", "A module's page"))
    }
}

async fn spawn(backend: Backend, overrides: &[(&str, Value)]) -> (TestApp, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut all = vec![
        ("queue.run_in_server", json!(false)),
        ("queue.backoff_base_ms", json!(1)),
        ("queue.backoff_max_ms", json!(2)),
        ("queue.max_attempts", json!(3)),
    ];
    all.extend(overrides.iter().cloned());
    let app = TestApp::spawn(backend, vec![Arc::new(TestModule { runs: runs.clone() })], &all).await;
    (app, runs)
}

async fn enqueue(app: &TestApp, payload: Value) -> i64 {
    let mut tx = app.platform.db.begin().await.unwrap();
    let id = app.platform.queue.enqueue(&mut tx, NewJob::new("test", "test.flaky", payload)).await.unwrap();
    tx.commit().await.unwrap();
    id.expect("no deduplication key")
}

async fn drain(app: &TestApp) {
    for _ in 0..100 {
        app.run_pending_jobs().await;
        let counts = app.platform.queue.counts().await.unwrap();
        if counts.iter().all(|c| c.queued == 0 && c.running == 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("queue did not drain");
}

async fn effects(app: &TestApp, job_id: i64) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM test_effects WHERE job_id = $1")
        .bind(job_id)
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get(0)
}

async fn a_failing_job_is_retried_with_backoff_and_its_failed_attempts_leave_no_writes(backend: Backend) {
    let (app, runs) = spawn(backend, &[]).await;
    let id = enqueue(&app, json!({"fail_times": 2})).await;
    drain(&app).await;
    // A lone job runs once per attempt (in a batch of several, a failing one runs twice: in the
    // batch, then alone to isolate the failure).
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    let job = app.platform.queue.get(id).await.unwrap().unwrap();
    assert_eq!(job.state, "succeeded");
    assert_eq!(job.attempts, 3);
    assert_eq!(effects(&app, id).await, 1, "only the successful attempt's write is kept");
}

async fn a_job_out_of_attempts_is_failed_with_its_error_and_can_be_retried_over_the_api(backend: Backend) {
    let (app, _runs) = spawn(backend, &[]).await;
    app.expect_leftover_jobs(); // a failed job is what it is about
    let id = enqueue(&app, json!({"fail_times": 99})).await;
    drain(&app).await;
    let page: Value = app.get_json("/api/v1/queue/jobs?state=failed").await.1;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["id"], id);
    assert_eq!(page["items"][0]["attempts"], 3);
    assert!(page["items"][0]["last_error"].as_str().unwrap().contains("planned failure 3"));
    let counts: Value = app.get_json("/api/v1/queue").await.1;
    assert_eq!(counts["queues"][0]["queue"], "test");
    assert_eq!(counts["queues"][0]["failed"], 1);

    // Retrying a job that is not failed is a conflict; an unknown one is 404.
    let r = app.client.post(app.url("/api/v1/queue/jobs/999999/retry")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = app.client.post(app.url(&format!("/api/v1/queue/jobs/{id}/retry"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["state"], "queued");
    assert_eq!(job["attempts"], 0);
    let r = app.client.post(app.url(&format!("/api/v1/queue/jobs/{id}/retry"))).send().await.unwrap();
    assert_eq!(r.status(), 409);
    drain(&app).await;
    let r: Value = app.post_empty("/api/v1/queue/failed/retry?confirm=true").await.1;
    assert_eq!(r["retried"], 1);
}

async fn a_job_whose_worker_died_is_run_again_after_its_lease_expires(backend: Backend) {
    let (app, runs) = spawn(backend, &[]).await;
    let id = enqueue(&app, json!({})).await;
    // What a worker that died mid-job leaves behind: claimed, lease running out.
    sqlx::query("UPDATE queue_jobs SET state = 'running', attempts = 1, locked_by = 'dead', lease_until = $1 WHERE id = $2")
        .bind(now_ms() - 1)
        .bind(id)
        .execute(app.platform.db.writer())
        .await
        .unwrap();
    assert_eq!(app.run_pending_jobs().await, 0, "a leased job is not claimed");
    assert_eq!(app.platform.queue.recover_abandoned().await.unwrap(), 1);
    drain(&app).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let job = app.platform.queue.get(id).await.unwrap().unwrap();
    assert_eq!((job.state.as_str(), job.attempts), ("succeeded", 2));
}

async fn a_scheduled_job_runs_once_per_due_time_across_processes(backend: Backend) {
    let (app, _runs) = spawn(backend, &[("scheduler.enabled", json!(false))]).await;
    let spec = ScheduleSpec {
        name: "test.every_second".into(),
        cron: "* * * * * *".into(),
        timezone: chrono_tz::Tz::Europe__Brussels,
        queue: "test".into(),
        job_type: "test.flaky".into(),
        payload: json!({}),
    };
    let db = &app.platform.db;
    let q = &app.platform.queue;
    // Two processes' schedulers over one database.
    let a = Scheduler::register(db.clone(), q.clone(), &["test"], vec![spec.clone()]).await.unwrap();
    let b = Scheduler::register(db.clone(), q.clone(), &["test"], vec![spec]).await.unwrap();
    let mut fired = 0;
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (x, y) = tokio::join!(a.tick(), b.tick());
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(x + y <= 1, "one due run was fired {} times", x + y);
        fired += x + y;
    }
    assert_eq!(fired, 3);
    let jobs: i64 = sqlx::query("SELECT COUNT(*) FROM queue_jobs WHERE job_type = 'test.flaky'")
        .fetch_one(db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(jobs, 3);
    let filter = sightline_platform::queue::JobFilter { state: Some("queued".into()), ..Default::default() };
    let (page, _) = q.list(&filter, 10, 0).await.unwrap();
    assert!(page[0].payload["scheduled_for"].is_string());
    app.drain_queue().await;
}

async fn workers_in_two_processes_share_the_queue_without_running_a_job_twice(backend: Backend) {
    let (app, runs) = spawn(backend, &[("queue.batch_size", json!(7))]).await;
    for _ in 0..60 {
        enqueue(&app, json!({})).await;
    }
    let other = Workers::new(
        app.platform.queue.clone(),
        vec![JobRegistration::in_transaction(FlakyJob { runs: runs.clone() })],
    )
    .unwrap();
    let (x, y) = tokio::join!(app.workers.run_pending(), other.run_pending());
    assert_eq!(x.unwrap() + y.unwrap(), 60);
    assert_eq!(runs.load(Ordering::SeqCst), 60);
    let total: i64 = sqlx::query("SELECT COUNT(*) FROM test_effects")
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 60);
}

async fn every_response_carries_a_request_id_and_errors_use_the_json_body(backend: Backend) {
    let (app, _) = spawn(backend, &[]).await;
    let r = app.client.get(app.url("/health")).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "healthy", "ok": true}));
    let r = app.client.get(app.url("/no/such/route")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req_") && id.len() == 14, "{id}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["request_id"], id);
    let r = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
    let r = app.client.get(app.url("/api/v1/queue/jobs?state=lost")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "state");
    let r = app.client.get(app.url("/api/v1/queue/jobs?limit=many")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["field"], "limit", "{body}");
}

async fn readiness_metrics_and_docs_are_served(backend: Backend) {
    let (app, _) = spawn(backend, &[]).await;
    let r: Value = app.get_json("/health/ready").await.1;
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["feed"]["ok"], true, "a module's own check is part of readiness");
    std::fs::write(app.db.dir.path().join("feed-down"), "").unwrap();
    let (status, down) = app.get_json("/health/ready").await;
    assert_eq!(status, 503);
    assert_eq!(down["error"]["details"][0]["field"], "feed", "{down}");
    assert!(!down.to_string().contains("connection refused"), "causes stay in the log: {down}");
    std::fs::remove_file(app.db.dir.path().join("feed-down")).unwrap();
    assert_eq!(r["database"]["backend"], if backend == Backend::Sqlite { "sqlite" } else { "postgres" });
    enqueue(&app, json!({})).await;
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("sightline_http_requests_total"), "{text}");
    assert!(text.contains("route=\"/health/ready\""), "{text}");
    assert!(text.contains("sightline_http_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("sightline_queue_jobs{queue=\"test\",state=\"queued\"}"), "{text}");
    let spec: Value = app.get_json("/openapi.json").await.1;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/health", "/health/ready", "/api/v1/queue", "/api/v1/queue/jobs/{id}/retry", "/metrics"] {
        assert!(spec["paths"][path].is_object(), "{path} missing from the spec");
    }
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
    app.drain_queue().await;
}

async fn the_root_welcomes_json_clients_and_browsers_get_a_home_page(backend: Backend) {
    let (app, _) = spawn(backend, &[]).await;
    let response = app.anonymous.get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let root: Value = response.json().await.unwrap();
    assert_eq!(root["message"], "Welcome to Sightline API");
    assert_eq!(
        (root["app"].as_str(), root["docs"].as_str(), root["status"].as_str()),
        (Some("Sightline"), Some("/docs"), Some("running"))
    );
    assert_eq!(root["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(root["pages"][0]["path"], "/ui/test");
    let page = app.anonymous.get(app.url("/")).header("accept", "text/html,*/*").send().await.unwrap();
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    for link in ["href=\"/ui/test\"", "href=\"/docs\"", "href=\"/rq\"", "href=\"/health\""] {
        assert!(html.contains(link), "{link} missing");
    }
    assert!(html.contains("Test &lt;page&gt;"), "titles are escaped");
}

storage_tests!(
    a_failing_job_is_retried_with_backoff_and_its_failed_attempts_leave_no_writes,
    a_job_out_of_attempts_is_failed_with_its_error_and_can_be_retried_over_the_api,
    a_job_whose_worker_died_is_run_again_after_its_lease_expires,
    a_scheduled_job_runs_once_per_due_time_across_processes,
    workers_in_two_processes_share_the_queue_without_running_a_job_twice,
    every_response_carries_a_request_id_and_errors_use_the_json_body,
    readiness_metrics_and_docs_are_served,
    the_root_welcomes_json_clients_and_browsers_get_a_home_page,
);
