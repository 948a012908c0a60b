//! Typed jobs on SQLite and PostgreSQL: the standalone pool, deduplication keys, per-type retry
//! policies, payloads that do not decode, names checked at start, dead workers noticed within
//! seconds, and schedules kept as data.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sightline_platform::app::Application;
use sightline_platform::db::now_ms;
use sightline_platform::queue::job::JobRegistration;
use sightline_platform::queue::{Interrupted, JobLease, RetryPolicy, RunStandalone, Workers};
use sightline_platform::scheduler::{self, ScheduleSpec, Scheduler};
use sightline_platform::testing::{test_config, test_database, TestApp};
use sightline_platform::{
    storage_tests, Backend, Job, JobContext, Module, ModuleParts, NewJob, Platform, RunInTransaction,
    SecureRouter,
};
use sqlx::{AnyConnection, Row};

/// A short job, run in the worker's transaction.
#[derive(Serialize, Deserialize)]
struct Short {
    n: i64,
}

impl Job for Short {
    const NAME: &'static str = "pool.short";
    const QUEUE: &'static str = "pool";
}

/// A job with a key, allowed one attempt.
#[derive(Serialize, Deserialize)]
struct Keyed {
    key: String,
    fail: bool,
}

impl Job for Keyed {
    const NAME: &'static str = "pool.keyed";
    const QUEUE: &'static str = "pool";

    fn retry_policy() -> Option<RetryPolicy> {
        Some(RetryPolicy { max_attempts: 1, backoff_base_ms: 1, backoff_max_ms: 1 })
    }

    fn dedup_key(&self) -> Option<String> {
        Some(self.key.clone())
    }
}

/// A long job: runs until released, stopping at a checkpoint when asked to.
#[derive(Serialize, Deserialize)]
struct Long;

impl Job for Long {
    const NAME: &'static str = "pool.long";
    const QUEUE: &'static str = "pool";
}

#[derive(Default)]
struct Counters {
    short: AtomicUsize,
    keyed: AtomicUsize,
    long_started: AtomicUsize,
    release: AtomicBool,
}

struct ShortJob(Arc<Counters>);

#[async_trait::async_trait]
impl RunInTransaction for ShortJob {
    type Job = Short;
    async fn run(&self, _job: Short, _ctx: &JobContext, _conn: &mut AnyConnection) -> anyhow::Result<()> {
        self.0.short.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct KeyedJob(Arc<Counters>);

#[async_trait::async_trait]
impl RunInTransaction for KeyedJob {
    type Job = Keyed;
    async fn run(&self, job: Keyed, _ctx: &JobContext, _conn: &mut AnyConnection) -> anyhow::Result<()> {
        self.0.keyed.fetch_add(1, Ordering::SeqCst);
        anyhow::ensure!(!job.fail, "planned failure");
        Ok(())
    }
}

struct LongJob(Arc<Counters>);

#[async_trait::async_trait]
impl RunStandalone for LongJob {
    type Job = Long;
    async fn run(&self, _job: Long, _ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        self.0.long_started.fetch_add(1, Ordering::SeqCst);
        while !self.0.release.load(Ordering::SeqCst) {
            if lease.should_stop() {
                return Err(Interrupted.into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

struct PoolModule(Arc<Counters>);

#[async_trait::async_trait]
impl Module for PoolModule {
    fn name(&self) -> &'static str {
        "pool"
    }
    async fn build(&self, _platform: &Platform) -> anyhow::Result<ModuleParts> {
        Ok(ModuleParts::new(SecureRouter::new())
            .job(ShortJob(self.0.clone()))
            .job(KeyedJob(self.0.clone()))
            .standalone_job(LongJob(self.0.clone())))
    }
}

async fn spawn(backend: Backend, overrides: &[(&str, Value)]) -> (TestApp, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let mut all = vec![("queue.run_in_server", json!(false)), ("queue.max_attempts", json!(5))];
    all.extend(overrides.iter().cloned());
    (TestApp::spawn(backend, vec![Arc::new(PoolModule(counters.clone()))], &all).await, counters)
}

async fn push<J: Job>(app: &TestApp, job: &J) -> Option<i64> {
    let mut tx = app.platform.db.begin().await.unwrap();
    let id = app.platform.queue.push(&mut tx, job).await.unwrap();
    tx.commit().await.unwrap();
    app.platform.queue.wake();
    id
}

async fn state_of(app: &TestApp, id: i64) -> (String, i64, Option<String>) {
    let job = app.platform.queue.get(id).await.unwrap().unwrap();
    (job.state, job.attempts, job.last_error)
}

/// Waits up to `within` for `done`.
async fn eventually(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

async fn long_jobs_run_on_their_own_pool_while_short_ones_keep_flowing(backend: Backend) {
    let (app, counters) = spawn(
        backend,
        &[
            ("queue.run_in_server", json!(true)),
            ("queue.concurrency", json!(1)),
            ("queue.standalone_concurrency", json!(2)),
        ],
    )
    .await;
    let long = [push(&app, &Long).await.unwrap(), push(&app, &Long).await.unwrap()];
    assert!(
        eventually(Duration::from_secs(10), || counters.long_started.load(Ordering::SeqCst) == 2).await,
        "both long jobs start side by side"
    );
    for n in 0..20 {
        push(&app, &Short { n }).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || counters.short.load(Ordering::SeqCst) == 20).await,
        "short jobs are processed while two long ones run: {}",
        counters.short.load(Ordering::SeqCst)
    );
    for id in long {
        assert_eq!(state_of(&app, id).await.0, "running");
    }
    counters.release.store(true, Ordering::SeqCst);
    for id in long {
        let mut state = String::new();
        for _ in 0..250 {
            state = state_of(&app, id).await.0;
            if state == "succeeded" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state, "succeeded");
    }
}

async fn a_job_whose_key_is_queued_or_running_is_not_queued_twice(backend: Backend) {
    let (app, counters) = spawn(backend, &[]).await;
    let first = push(&app, &Keyed { key: "org-1".into(), fail: false }).await;
    assert!(first.is_some());
    assert_eq!(push(&app, &Keyed { key: "org-1".into(), fail: false }).await, None, "same key: no-op");
    let other = push(&app, &Keyed { key: "org-2".into(), fail: false }).await;
    assert!(other.is_some(), "another key is another job");
    // Many at once: the keys already queued are skipped.
    let mut tx = app.platform.db.begin().await.unwrap();
    let many = [Keyed { key: "org-1".into(), fail: false }, Keyed { key: "org-3".into(), fail: false }];
    app.platform.queue.push_many(&mut tx, &many).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(app.run_pending_jobs().await, 3);
    assert_eq!(counters.keyed.load(Ordering::SeqCst), 3);
    assert!(push(&app, &Keyed { key: "org-1".into(), fail: false }).await.is_some(), "free again once done");
    app.drain_queue().await;
}

async fn a_job_types_retry_policy_wins_over_the_queue_default(backend: Backend) {
    let (app, counters) = spawn(backend, &[]).await;
    app.expect_leftover_jobs(); // a failed job is what it is about
    let id = push(&app, &Keyed { key: "k".into(), fail: true }).await.unwrap();
    app.run_pending_jobs().await;
    let (state, attempts, error) = state_of(&app, id).await;
    assert_eq!((state.as_str(), attempts), ("failed", 1), "one attempt allowed, not the queue's 5");
    assert!(error.unwrap().contains("planned failure"));
    assert_eq!(counters.keyed.load(Ordering::SeqCst), 1);
    // A failed job frees its key; retrying it is refused while another holds the key.
    let again = push(&app, &Keyed { key: "k".into(), fail: false }).await.unwrap();
    assert!(!app.platform.queue.retry(id).await.unwrap(), "the key is held by the queued job");
    app.run_pending_jobs().await;
    assert_eq!(state_of(&app, again).await.0, "succeeded");
    assert!(app.platform.queue.retry(id).await.unwrap(), "the key is free again");
}

async fn a_payload_that_does_not_decode_fails_at_once(backend: Backend) {
    let (app, counters) = spawn(backend, &[]).await;
    app.expect_leftover_jobs(); // a failed job is what it is about
    let mut tx = app.platform.db.begin().await.unwrap();
    let job = NewJob::new("pool", "pool.short", json!({"n": "seven"}));
    let id = app.platform.queue.enqueue(&mut tx, job).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    app.run_pending_jobs().await;
    let (state, attempts, error) = state_of(&app, id).await;
    assert_eq!((state.as_str(), attempts), ("failed", 1));
    assert!(error.unwrap().contains("does not decode"));
    assert_eq!(counters.short.load(Ordering::SeqCst), 0);
}

async fn jobs_of_a_dead_worker_are_run_again_within_seconds(backend: Backend) {
    let (app, counters) = spawn(backend, &[]).await;
    let db = &app.platform.db;
    let now = now_ms();
    // Two claimed jobs with an hour of lease left: one held by a process whose heartbeat
    // stopped a minute ago, one by a live process.
    for (worker, heartbeat) in [("pid1-dead0000", now - 60_000), ("pid2-alive000", now)] {
        sqlx::query(
            "INSERT INTO queue_workers (id, host, pid, concurrency, job_types, started_at, heartbeat_at) \
             VALUES ($1, 'h', 1, 1, 'pool.short', $2, $2)",
        )
        .bind(worker)
        .bind(heartbeat)
        .execute(db.writer())
        .await
        .unwrap();
    }
    let dead = push(&app, &Short { n: 1 }).await.unwrap();
    let alive = push(&app, &Short { n: 2 }).await.unwrap();
    for (id, holder) in [(dead, "pid1-dead0000-t0"), (alive, "pid2-alive000-t0")] {
        sqlx::query(
            "UPDATE queue_jobs SET state = 'running', attempts = 1, locked_by = $1, lease_until = $2, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(holder)
        .bind(now + 3_600_000)
        .bind(now - 60_000)
        .bind(id)
        .execute(db.writer())
        .await
        .unwrap();
    }
    assert_eq!(app.platform.queue.recover_abandoned().await.unwrap(), 1, "only the dead worker's job");
    assert_eq!(state_of(&app, dead).await.0, "queued");
    assert_eq!(state_of(&app, alive).await.0, "running");
    app.run_pending_jobs().await;
    assert_eq!(state_of(&app, dead).await.0, "succeeded");
    assert_eq!(counters.short.load(Ordering::SeqCst), 1);
}

async fn schedules_are_data_added_changed_and_removed_in_a_transaction(backend: Backend) {
    let (app, _) = spawn(backend, &[("scheduler.enabled", json!(false))]).await;
    let db = &app.platform.db;
    let brussels = chrono_tz::Tz::Europe__Brussels;
    let declared = ScheduleSpec::of("pool.declared", "0 0 1 1 *", brussels, &Short { n: 0 }).unwrap();
    let scheduler =
        Scheduler::register(db.clone(), app.platform.queue.clone(), &["pool"], vec![declared]).await.unwrap();
    let every_second = ScheduleSpec::of("pool.org:42", "* * * * * *", brussels, &Short { n: 42 }).unwrap();
    let mut tx = db.begin().await.unwrap();
    scheduler::upsert_in(&mut tx, &every_second, "pool").await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(scheduler.tick().await.unwrap(), 1, "a schedule added at run time fires");

    // Changed to once a year: it no longer fires every second.
    let yearly = ScheduleSpec { cron: "0 0 1 1 *".into(), ..every_second.clone() };
    let mut tx = db.begin().await.unwrap();
    scheduler::upsert_in(&mut tx, &yearly, "pool").await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(scheduler.tick().await.unwrap(), 0);

    // A process without the module leaves its declared schedules alone.
    Scheduler::register(db.clone(), app.platform.queue.clone(), &["other"], vec![]).await.unwrap();
    let declared: i64 = sqlx::query("SELECT COUNT(*) FROM schedules WHERE name = 'pool.declared'")
        .fetch_one(db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(declared, 1);
    // Declared schedules their module no longer declares are forgotten; run-time ones stay.
    Scheduler::register(db.clone(), app.platform.queue.clone(), &["pool"], vec![]).await.unwrap();
    let names: Vec<String> = sqlx::query("SELECT name FROM schedules ORDER BY name")
        .fetch_all(db.reader())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["pool.org:42"]);
    let mut tx = db.begin().await.unwrap();
    assert!(scheduler::remove_in(&mut tx, "pool.org:42").await.unwrap());
    tx.commit().await.unwrap();
    let left: i64 =
        sqlx::query("SELECT COUNT(*) FROM schedules").fetch_one(db.reader()).await.unwrap().get(0);
    assert_eq!(left, 0);
    app.drain_queue().await;
}

storage_tests!(
    long_jobs_run_on_their_own_pool_while_short_ones_keep_flowing,
    a_job_whose_key_is_queued_or_running_is_not_queued_twice,
    a_job_types_retry_policy_wins_over_the_queue_default,
    a_payload_that_does_not_decode_fails_at_once,
    jobs_of_a_dead_worker_are_run_again_within_seconds,
    schedules_are_data_added_changed_and_removed_in_a_transaction,
);

/// A module whose job type lacks its prefix.
struct Unprefixed;

#[async_trait::async_trait]
impl Module for Unprefixed {
    fn name(&self) -> &'static str {
        "other"
    }
    async fn build(&self, _platform: &Platform) -> anyhow::Result<ModuleParts> {
        Ok(ModuleParts::new(SecureRouter::new()).job(ShortJob(Arc::default())))
    }
}

#[tokio::test]
async fn two_handlers_or_schedules_of_one_name_or_an_unprefixed_name_stop_the_start() {
    let db = test_database(Backend::Sqlite).await;
    let app = Application::build(test_config(&db, &[]), &[Arc::new(Unprefixed)]).await;
    let err = format!("{:#}", app.err().expect("refused"));
    assert!(err.contains("`pool.short` must start with `other.`"), "{err}");

    let counters = Arc::new(Counters::default());
    let app = TestApp::spawn(Backend::Sqlite, vec![Arc::new(PoolModule(counters.clone()))], &[]).await;
    let twice = vec![
        JobRegistration::in_transaction(ShortJob(counters.clone())),
        JobRegistration::in_transaction(ShortJob(counters)),
    ];
    let err = Workers::new(app.platform.queue.clone(), twice).err().expect("refused").to_string();
    assert!(err.contains("pool.short has two handlers"), "{err}");

    let spec = ScheduleSpec::of("pool.daily", "0 6 * * *", chrono_tz::Tz::UTC, &Short { n: 0 }).unwrap();
    let err = Scheduler::register(
        app.platform.db.clone(),
        app.platform.queue.clone(),
        &["pool"],
        vec![spec.clone(), spec],
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("pool.daily is declared twice"), "{err}");
}
