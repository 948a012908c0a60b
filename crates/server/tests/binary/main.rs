//! The `sightline` binary as a user runs it: configuration errors, `--help`, the calculator,
//! durability — events answered 202 survive `kill -9` and none is applied twice; an import
//! killed mid-file is picked up again within seconds — and events flowing beside two imports.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sightline_platform::testing::test_database;
use sightline_platform::{storage_tests, Backend};

mod modules;

const BIN: &str = env!("CARGO_BIN_EXE_sightline");

fn mock_db() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/mock_db").to_owned()
}

/// The first admin's password, given to the server through `SIGHTLINE_ADMIN_PASSWORD`.
const ADMIN_PASSWORD: &str = "an operator passphrase for tests";

/// A client signed in as the first admin.
async fn admin_client(base: &str) -> reqwest::Client {
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().expect("admin signs in");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).timeout(Duration::from_secs(30)).build().unwrap()
}

/// A `sightline serve` child process on a free port.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(data_dir: &std::path::Path, database_url: &str) -> Server {
        Self::start_with(data_dir, database_url, &[])
    }

    /// Starts with `env` over the test defaults (a 2 s lease among them).
    fn start_with(data_dir: &std::path::Path, database_url: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json"])
            .arg("--data-dir")
            .arg(data_dir)
            .env("DATABASE_URL", database_url)
            .env("MOCK_DB_DIR", mock_db())
            .env("SIGHTLINE_QUEUE__LEASE_SECS", "2")
            .env("SIGHTLINE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SIGHTLINE_QUEUE__POLL_INTERVAL_MS", "20")
            .env("SIGHTLINE_USAGE__CHUNK_ROWS", "500")
            .env("SIGHTLINE_LOG_LEVEL", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sightline starts");
        // Logs are on stderr.
        let stdout = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("server.listening") {
                    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).expect("server reports its address");
        Server { child, base: format!("http://{addr}"), log }
    }

    fn kill9(&mut self) {
        // SIGKILL: no shutdown code runs.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn events_answered_202_survive_kill_9_and_none_is_applied_twice(backend: Backend) {
    let db = test_database(backend).await;
    let mut server = Server::start(db.dir.path(), &db.url);
    let client = admin_client(&server.base).await;
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut posters = Vec::new();
    for worker in 0..8 {
        let (client, base, accepted, sent) =
            (client.clone(), server.base.clone(), accepted.clone(), sent.clone());
        posters.push(tokio::spawn(async move {
            for i in 0..400 {
                let id = uuid::Uuid::new_v4().to_string();
                let body = json!({
                    "event_id": id,
                    "occurred_at": "2026-02-09T13:59:00Z",
                    "source": "kill9-test",
                    "nba_definition_id": format!("def_{}", i % 3),
                    "account_id": format!("acc_{}", (worker * 7 + i) % 11),
                });
                sent.fetch_add(1, Ordering::SeqCst);
                match client
                    .post(format!("{base}/api/v1/internal/events/nba-calculation"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => accepted.lock().unwrap().push(id),
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => return, // the server is gone
                }
            }
        }));
    }
    // Kill while events are still streaming in.
    while accepted.lock().unwrap().len() < 600 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill9();
    for p in posters {
        p.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 600 && accepted.len() < 3200,
        "the kill happened mid-stream: {}",
        accepted.len()
    );

    let server = Server::start(db.dir.path(), &db.url);
    let mut nba_ids = std::collections::HashSet::new();
    for id in &accepted {
        let url = format!("{}/api/v1/internal/events/{id}?wait_ms=20000", server.base);
        let r = client.get(&url).timeout(Duration::from_secs(30)).send().await.unwrap();
        assert_eq!(r.status(), 200, "event {id} answered 202 was lost");
        let ev: Value = r.json().await.unwrap();
        assert_eq!(ev["state"], "processed", "{ev}\n{}", server.log_text());
        assert_eq!(ev["action"], "created");
        let nba_id = ev["nba_id"].as_str().unwrap().to_owned();
        let history: Value = get_json(&client, format!("{}/api/v1/nba/{nba_id}/events", server.base)).await;
        let created = history["items"].as_array().unwrap().iter().filter(|e| e["status"] == "new").count();
        assert_eq!(created, 1, "event {id} was applied {created} times");
        assert!(nba_ids.insert(nba_id), "two events share an NBA");
    }
    // Scopes collided across concurrent batches: each still has exactly one current NBA.
    for definition in 0..3 {
        for account in 0..11 {
            let url = format!(
                "{}/api/v1/nba?account_id=acc_{account}&nba_definition_id=def_{definition}&status=new",
                server.base
            );
            let page: Value = get_json(&client, &url).await;
            assert_eq!(page["total"], 1, "scope def_{definition}/acc_{account}: {page}");
        }
    }
}

storage_tests!(events_answered_202_survive_kill_9_and_none_is_applied_twice);

/// Uploads the sample in `dir` and returns the job id.
/// GET `url` with `client`, answered as JSON.
async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn upload_sample(client: &reqwest::Client, base: &str, dir: &std::path::Path) -> String {
    let part = |name: &str| {
        reqwest::multipart::Part::bytes(std::fs::read(dir.join(name)).unwrap()).file_name(name.to_owned())
    };
    let form = reqwest::multipart::Form::new()
        .part("users", part("users.csv"))
        .part("transactions", part("transactions.csv"));
    let r = client.post(format!("{base}/upload-csv")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    body["data"]["job_id"].as_str().unwrap().to_owned()
}

/// Polls the job until `done` says so, for up to five minutes; returns its last state.
///
/// Generous on purpose: imports run at a lower priority than everything else, so on a busy
/// two-core machine running the rest of the suite they can take many times as long as alone.
async fn poll_job(client: &reqwest::Client, base: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let job: Value = get_json(client, format!("{base}/jobs/{id}")).await;
        if done(&job) {
            return job;
        }
        if std::time::Instant::now() > deadline {
            panic!("job {id} did not reach the expected state within 300 s; last seen: {job}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn an_import_killed_mid_file_resumes_and_ends_as_an_uninterrupted_one(backend: Backend) {
    let (db, reference_db) = (test_database(backend).await, test_database(backend).await);
    let files = tempfile::tempdir().unwrap();
    sightline_usage::sample::write_sample(files.path(), 60_000, |_| {}).unwrap();
    let range = "start_date=2025-01-01&end_date=2025-06-30";

    // The default 60 s lease: the dead worker is noticed by its stopped heartbeat instead.
    let lease = [("SIGHTLINE_QUEUE__LEASE_SECS", "60")];
    let mut server = Server::start_with(db.dir.path(), &db.url, &lease);
    let client = admin_client(&server.base).await;
    let id = upload_sample(&client, &server.base, files.path()).await;
    let at_kill =
        poll_job(&client, &server.base, &id, |j| j["transactions"]["read"].as_i64().unwrap_or(0) >= 5_000)
            .await;
    server.kill9();
    let killed = std::time::Instant::now();
    assert_eq!(at_kill["status"], "running", "killed mid-file: {at_kill}");
    assert!(at_kill["transactions"]["read"].as_i64().unwrap() < 60_000, "killed mid-file: {at_kill}");

    let server = Server::start_with(db.dir.path(), &db.url, &lease);
    while !server.log_text().contains("queue.lease_recovered") && killed.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered_after = killed.elapsed();
    assert!(
        recovered_after < Duration::from_secs(15),
        "the job was picked up again {recovered_after:?} after the kill, not within 15 s"
    );
    let job =
        poll_job(&client, &server.base, &id, |j| j["status"] != "running" && j["status"] != "queued").await;
    assert_eq!(job["status"], "succeeded", "{job}\n{}", server.log_text());
    let t = &job["transactions"];
    // Each chunk committed once: nothing re-applied (it would count as unchanged), nothing lost.
    assert_eq!(
        (t["read"].as_i64(), t["inserted"].as_i64(), t["unchanged"].as_i64()),
        (Some(60_000), Some(60_000), Some(0)),
        "{job}"
    );
    let resumed: Value = get_json(&client, format!("{}/metrics/kpis?{range}", server.base)).await;

    let reference = Server::start(reference_db.dir.path(), &reference_db.url);
    let reference_client = admin_client(&reference.base).await;
    let id = upload_sample(&reference_client, &reference.base, files.path()).await;
    let job = poll_job(&reference_client, &reference.base, &id, |j| j["status"] == "succeeded").await;
    assert_eq!(job["transactions"]["inserted"], 60_000);
    let uninterrupted: Value =
        get_json(&reference_client, format!("{}/metrics/kpis?{range}", reference.base)).await;
    assert_eq!(resumed, uninterrupted, "the resumed import's aggregates equal an uninterrupted run's");
}

/// Long jobs run on their own pool: with two imports running, calculation events are still
/// processed within moments.
async fn events_keep_being_processed_while_two_imports_run(backend: Backend) {
    let db = test_database(backend).await;
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    sightline_usage::sample::write_sample(first.path(), 120_000, |_| {}).unwrap();
    sightline_usage::sample::write_sample(second.path(), 121_000, |_| {}).unwrap();
    let server = Server::start(db.dir.path(), &db.url);
    let client = admin_client(&server.base).await;
    let imports = [
        upload_sample(&client, &server.base, first.path()).await,
        upload_sample(&client, &server.base, second.path()).await,
    ];
    for id in &imports {
        poll_job(&client, &server.base, id, |j| j["status"] == "running").await;
    }
    for i in 0..10 {
        let body = json!({
            "event_id": uuid::Uuid::new_v4().to_string(),
            "occurred_at": "2026-02-09T13:59:00Z",
            "source": "beside-imports",
            "nba_definition_id": "def_1",
            "account_id": format!("acc_{i}"),
        });
        let url = format!("{}/api/v1/internal/events/nba-calculation?wait=true&wait_ms=5000", server.base);
        let status: Value = client.post(url).json(&body).send().await.unwrap().json().await.unwrap();
        assert_eq!(status["state"], "processed", "event {i} while two imports run: {status}");
    }
    for id in &imports {
        let job: Value = get_json(&client, format!("{}/jobs/{id}", server.base)).await;
        assert_eq!(job["status"], "running", "both imports were still running: {job}");
    }
    for id in &imports {
        let job =
            poll_job(&client, &server.base, id, |j| j["status"] == "succeeded" || j["status"] == "failed")
                .await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
}

storage_tests!(
    an_import_killed_mid_file_resumes_and_ends_as_an_uninterrupted_one,
    events_keep_being_processed_while_two_imports_run
);

/// GETs a list until its `total` is `want` (processing is asynchronous), for up to 2 s.
/// A long backfill is a job that commits each day: killed with `kill -9` part-way, it goes on
/// after a restart from the last committed day and ends with every day's report made once.
async fn a_backfill_killed_part_way_resumes_and_makes_every_day_once(backend: Backend) {
    let db = test_database(backend).await;
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("calls.ndjson");
    let data = db.dir.path().to_str().unwrap();
    let out = run(
        &["calls", "sample", "--out", file.to_str().unwrap(), "--days", "5", "--calls-per-day", "30"],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let env = [("DATABASE_URL", db.url.as_str())];
    let out = run(&["calls", "import", file.to_str().unwrap(), "--sample-orgs", "--data-dir", data], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let settings = [("SIGHTLINE_QUEUE__LEASE_SECS", "60"), ("SIGHTLINE_CALLS__SCHEDULER_CATCHUP_DAYS", "0")];
    let mut server = Server::start_with(db.dir.path(), &db.url, &settings);
    let client = admin_client(&server.base).await;
    // Three years to the sample's last day: the sample's days and many empty ones.
    let org = "01951f56-8c6e-7a93-a971-3d06a81a1ab0";
    let r = client
        .post(format!("{}/api/reports/backfill", server.base))
        .json(&json!({"org_id": org, "start_date": "2022-11-09", "end_date": "2025-11-07"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let backfill: Value = r.json().await.unwrap();
    let url = format!("{}/api/reports/backfills/{}", server.base, backfill["id"].as_str().unwrap());
    let total = backfill["days_total"].as_i64().unwrap();
    assert_eq!(total, 1095);
    let at_kill = loop {
        let b: Value = get_json(&client, &url).await;
        if b["days_done"].as_i64().unwrap_or(0) >= 30 {
            break b;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    server.kill9();
    let done_at_kill = at_kill["days_done"].as_i64().unwrap();
    assert!(done_at_kill < total, "killed part-way: {at_kill}");

    let server = Server::start_with(db.dir.path(), &db.url, &settings);
    let client = admin_client(&server.base).await;
    let url = url.replace(&backfill_base(&url), &server.base);
    let started = std::time::Instant::now();
    let finished = loop {
        let b: Value = get_json(&client, &url).await;
        if b["status"] == "succeeded" || b["status"] == "failed" {
            break b;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the backfill did not finish: {b}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(finished["status"], "succeeded", "{finished}\n{}", server.log_text());
    assert!(server.log_text().contains("queue.lease_recovered"), "the killed job was taken up again");
    assert_eq!(
        (finished["days_done"].as_i64(), finished["failed"].as_i64()),
        (Some(total), Some(0)),
        "{finished}"
    );
    // Every day stored once: a day made before the kill but not yet counted is kept, not made again.
    let dates: Value = get_json(&client, format!("{}/api/reports/dates?org_id={org}", server.base)).await;
    assert_eq!(dates["count"].as_i64(), Some(total), "{}", dates["date_range"]);
    assert!(finished["generated"].as_i64().unwrap() <= total, "{finished}");
}

/// `http://host:port` of a URL.
fn backfill_base(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    format!("http://{}", rest.split('/').next().unwrap())
}

storage_tests!(a_backfill_killed_part_way_resumes_and_makes_every_day_once);

async fn poll_until_total(client: &reqwest::Client, url: &str, want: i64) -> Value {
    let mut list = Value::Null;
    for _ in 0..100 {
        list = get_json(client, url).await;
        if list["total"] == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    list
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("DATABASE_URL");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("sightline runs")
}

#[test]
fn a_bad_configuration_value_exits_non_zero_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = run(&["migrate", "--data-dir", data], &[("SIGHTLINE_QUEUE__CONCURRENCY", "many")]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("queue.concurrency"), "{err}");

    let out = run(&["serve", "--bind", "nowhere", "--data-dir", data], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`bind`"));

    let toml = dir.path().join("sightline.toml");
    std::fs::write(&toml, "modules = [\"actions\", \"weather\"]\n").unwrap();
    let out = run(&["migrate", "--config", toml.to_str().unwrap(), "--data-dir", data], &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown module `weather`"));
}

/// `calls sample` writes call data that `calls import` loads whole; a file with one bad line is
/// refused naming the line, and nothing of it is written.
#[test]
fn call_data_is_sampled_and_imported_from_the_cli_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("calls.ndjson");
    let out = run(
        &["calls", "sample", "--out", file.to_str().unwrap(), "--days", "3", "--calls-per-day", "20"],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();

    let bad = dir.path().join("bad.ndjson");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("{\"type\":\"run\",\"id\":\"x\",\"timestamp\":\"never\"}\n");
    std::fs::write(&bad, text).unwrap();
    let out = run(&["calls", "import", bad.to_str().unwrap(), "--data-dir", data.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("line {}", lines + 1)) && err.contains("nothing was imported"), "{err}");

    let args =
        ["calls", "import", file.to_str().unwrap(), "--sample-orgs", "--data-dir", data.to_str().unwrap()];
    let out = run(&args, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("imported {lines} records")), "{err}");
    assert!(err.contains("created organisation Paul Logistics"), "{err}");
    // Again: idempotent, and the organisations are not created twice.
    let out = run(&args, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("created organisation"));

    // Reports of the three days, made once.
    let backfill = [
        "calls",
        "backfill",
        "--org",
        "01951f56-8c6e-7a93-a971-3d06a81a1ab0",
        "--from",
        "2025-11-03",
        "--to",
        "2025-11-05",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let out = run(&backfill, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3 reports made, 0 kept"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&backfill, &[]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("0 reports made, 3 kept"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn migrate_creates_the_sqlite_database_and_is_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for _ in 0..2 {
        let out = run(&["migrate", "--data-dir", data.to_str().unwrap()], &[("SIGHTLINE_LOG_LEVEL", "warn")]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(data.join("sightline.db").exists());
}

#[test]
fn every_command_has_useful_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["worker", "--help"],
        vec!["migrate", "--help"],
        vec!["calc", "income", "--help"],
        vec!["calls", "import", "--help"],
        vec!["calls", "sample", "--help"],
        vec!["calls", "backfill", "--help"],
    ] {
        let out = run(&args, &[]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage: sightline"), "{text}");
    }
    let text = String::from_utf8_lossy(&run(&["serve", "--help"], &[]).stdout).to_string();
    assert!(text.contains("--bind") && text.contains("--data-dir"), "{text}");
}

#[test]
fn the_income_calculator_dry_run_emits_events_for_incomes_above_2000() {
    let input = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/calculator/income_list.json");
    let out = run(&["calc", "income", "--input", input, "--dry-run"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let records: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(input).unwrap()).unwrap();
    let above = records.iter().filter(|r| r["monthly_income"].as_f64().unwrap() > 2000.0).count();
    assert_eq!(events.len(), above);
    assert!(events
        .iter()
        .all(|e| e["nba_definition_id"] == "optimization" && e["context"]["hash"].is_string()));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(summary.contains(&format!("emitted {above}, skipped {}", records.len() - above)), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_income_calculator_posts_events_and_later_deactivates_clients_that_no_longer_qualify() {
    let db = test_database(Backend::Sqlite).await;
    let server = Server::start(db.dir.path(), &db.url);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.json");
    std::fs::write(&input, r#"{"0123456789": 3200, "1111111111": 1800}"#).unwrap();
    let client = admin_client(&server.base).await;
    let created: Value = client
        .post(format!("{}/api/v1/auth/api-keys", server.base))
        .json(&json!({"name": "income calculator", "permissions": ["events:write", "nba:read"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    // Without its key the calculator is refused.
    let out = run(
        &["calc", "income", "--input", input.to_str().unwrap(), "--api", &server.base, "--attempts", "1"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"), "{}", String::from_utf8_lossy(&out.stderr));
    let run_calc = |input: &std::path::Path| {
        let out = run(
            &["calc", "income", "--input", input.to_str().unwrap(), "--api", &server.base],
            &[("SIGHTLINE_API_KEY", &key)],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    assert!(run_calc(&input).contains("emitted 1, skipped 1, delete events 0, failed 0"));
    let list_url =
        format!("{}/api/v1/nba?enterprise_number=0123456789&nba_definition_id=optimization", server.base);
    let list = poll_until_total(&client, &list_url, 1).await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["account_id"], "acc_123", "enriched from the reference data");
    // The client's income drops: its NBA is withdrawn with a delete event.
    std::fs::write(&input, r#"{"0123456789": 1500}"#).unwrap();
    assert!(run_calc(&input).contains("emitted 0, skipped 1, delete events 1, failed 0"));
    // Secrets never reach the log: not the key, not the admin password, not a hash or token.
    let login: Value = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    let bad = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "admin", "password": "a wrong password typed by mistake"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log_text();
    assert!(log.contains("auth.login_failed") || log.contains("audit.event"), "the log is being read");
    for secret in
        [key.as_str(), ADMIN_PASSWORD, "a wrong password typed by mistake", refresh.as_str(), "$argon2"]
    {
        assert!(!log.contains(secret), "the log contains a secret: {secret}");
    }
    let list = poll_until_total(&client, &list_url, 0).await;
    assert_eq!(list["total"], 0);
    // An unreachable API (its NBA lookup fails after retries) exits non-zero.
    let out = run(
        &[
            "calc",
            "income",
            "--input",
            input.to_str().unwrap(),
            "--api",
            "http://127.0.0.1:9",
            "--attempts",
            "2",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed 1"));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db?mode=rwc", dir.path().display());
    let mut server = Server::start(dir.path(), &url);
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(server.log_text().contains("server.stopped"));
}

#[test]
fn users_and_api_keys_are_managed_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let quiet = [("SIGHTLINE_LOG_LEVEL", "error")];
    let out = run(&["user", "create", "--username", "ops", "--role", "analyst", "--data-dir", data], &quiet);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(stdout.contains("created ops") && stdout.contains("password: "), "{stdout}");
    // The first use created the admin, with its password in a private file.
    assert!(dir.path().join("admin-password").exists());
    let list =
        String::from_utf8_lossy(&run(&["user", "list", "--data-dir", data], &quiet).stdout).to_string();
    assert!(list.contains("\tadmin\t") && list.contains("\tops\t") && list.contains("analyst"), "{list}");

    let mut child = Command::new(BIN)
        .args(["user", "set-password", "--username", "ops", "--password-stdin", "--data-dir", data])
        .env("SIGHTLINE_LOG_LEVEL", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(b"a fresh passphrase, kept safe\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stdout).contains("password:"), "a given password is not echoed");

    // With logs on (they go to stderr), stdout is the key alone: `KEY=$(sightline apikey create …)`.
    let out = run(
        &["apikey", "create", "--name", "calc", "--permission", "events:write", "--data-dir", data],
        &[("SIGHTLINE_LOG_LEVEL", "debug")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(key.starts_with("slk_") && !key.contains(char::is_whitespace), "{key}");
    let list =
        String::from_utf8_lossy(&run(&["apikey", "list", "--data-dir", data], &quiet).stdout).to_string();
    assert!(list.contains("calc") && list.contains("active") && !list.contains(&key), "{list}");
    let id = list.split('\t').next().unwrap().to_owned();
    assert!(run(&["apikey", "revoke", &id, "--data-dir", data], &quiet).status.success());
    let list =
        String::from_utf8_lossy(&run(&["apikey", "list", "--data-dir", data], &quiet).stdout).to_string();
    assert!(list.contains("revoked"), "{list}");
    let out =
        run(&["apikey", "create", "--name", "bad", "--permission", "nope:x", "--data-dir", data], &quiet);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown permission nope:x"));
}
