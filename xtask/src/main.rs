//! Project tasks: `cargo xtask bench actions` measures the NBA pipeline, `cargo xtask bench
//! usage` the CSV import, `cargo xtask bench calls` the call analytics and `cargo xtask bench
//! sports` the basketball-stats module, against the release binary on SQLite and PostgreSQL (and
//! ClickHouse for calls, Redis for sports); they print figures (they assert nothing).

mod bench_actions;
mod bench_calls;
mod bench_planning;
mod bench_sports;
mod bench_usage;

use bench_actions::{bench_actions, print_results, Params};
use bench_calls::{bench_calls, load_clickhouse, print_calls_results, Source};
use bench_sports::{bench_season, bench_summary, print_sports_results, StandInProcess};
use bench_usage::{bench_usage, print_usage_results, storage_alone};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(name = "xtask", about = "Sightline project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Benchmarks (figures, not pass/fail).
    Bench {
        #[command(subcommand)]
        target: BenchTarget,
    },
}

#[derive(Subcommand)]
enum BenchTarget {
    /// Calculation events through the NBA pipeline, and NBA list latency at a fixed rate.
    Actions {
        /// Events to post.
        #[arg(long, default_value_t = 20_000)]
        events: usize,
        /// Concurrent posting clients.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Offered rate of the GET phase (requests per second).
        #[arg(long, default_value_t = 1_000)]
        get_rate: u64,
        /// Duration of the GET phase in seconds.
        #[arg(long, default_value_t = 5)]
        get_seconds: u64,
        /// Backends to measure.
        #[arg(long, value_enum, default_value_t = Which::Both)]
        backend: Which,
        /// PostgreSQL admin URL; without it a durable throw-away server is started.
        #[arg(long, env = "SIGHTLINE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Measure this binary instead of building target/release/sightline (to compare builds).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// Generated calls loaded into the embedded store; a day's report generated, a stored one
    /// read, and /all-stats over 30 days, on SQLite, PostgreSQL and ClickHouse (raw ClickHouse
    /// beside it).
    Calls {
        /// Node outputs to generate (one per call), over 30 days and 3 organisations.
        #[arg(long, default_value_t = 1_000_000)]
        outputs: u64,
        /// Backends of the embedded store to measure.
        #[arg(long, value_enum, default_value_t = Which::Both)]
        backend: Which,
        /// Leave ClickHouse out.
        #[arg(long)]
        no_clickhouse: bool,
        /// PostgreSQL admin URL; without it a durable throw-away server is started.
        #[arg(long, env = "SIGHTLINE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Measure this binary instead of building target/release/sightline.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// A generated usage upload (users + transactions CSV) imported end to end: upload, rows,
    /// aggregates; rows/s, time per stage and the server's peak RSS.
    Usage {
        /// Transactions rows in the generated file.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Rows per import transaction (the server's usage.chunk_rows; default its own).
        #[arg(long)]
        chunk_rows: Option<usize>,
        /// Backends to measure.
        #[arg(long, value_enum, default_value_t = Which::Both)]
        backend: Which,
        /// PostgreSQL admin URL; without it a durable throw-away server is started.
        #[arg(long, env = "SIGHTLINE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Measure this binary instead of building target/release/sightline (to compare builds).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
    /// 1,000 sample series forecast with `auto` (backtests included), the last 12 months held
    /// out, beside seasonal naive and statsforecast's AutoETS.
    Planning {
        /// Series.
        #[arg(long, default_value_t = 1_000)]
        series: usize,
        /// Leave statsforecast out.
        #[arg(long)]
        no_statsforecast: bool,
        /// Demand plans for the listing latencies (0: leave them out).
        #[arg(long, default_value_t = 10_000)]
        plans: usize,
        /// Backends of the listing latencies.
        #[arg(long, value_enum, default_value_t = Which::Both)]
        backend: Which,
        /// PostgreSQL admin URL; without it a durable throw-away server is started.
        #[arg(long, env = "SIGHTLINE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
    },
    /// Against the stats.nba.com stand-in: a season ingested and its dataset built (SQLite and
    /// PostgreSQL), then /player_summary on cache hits (memory and Redis), on misses with the
    /// stand-in answering in 50 ms, and while it hangs.
    Sports {
        /// Backends of the season's ingestion.
        #[arg(long, value_enum, default_value_t = Which::Both)]
        backend: Which,
        /// Leave the Redis cache out.
        #[arg(long)]
        no_redis: bool,
        /// PostgreSQL admin URL; without it a durable throw-away server is started.
        #[arg(long, env = "SIGHTLINE_BENCH_POSTGRES_URL")]
        postgres_url: Option<String>,
        /// Measure this binary instead of building target/release/sightline.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Sqlite,
    Postgres,
    Both,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.task {
        Task::Bench {
            target:
                BenchTarget::Actions { events, concurrency, get_rate, get_seconds, backend, postgres_url, binary },
        } => {
            let bin = release_binary(&root, binary)?;
            let params = Params { events, concurrency, get_rate, get_seconds };
            let results = on_backends(&rt, &root, backend, postgres_url, |dir, url| {
                rt.block_on(bench_actions(&bin, &root, dir, url, &params))
            })?;
            print_results(&params, &results);
        }
        Task::Bench {
            target: BenchTarget::Calls { outputs, backend, no_clickhouse, postgres_url, binary },
        } => {
            let bin = release_binary(&root, binary)?;
            let files = tempdir()?;
            let file = files.join("calls.ndjson");
            // About 22 weekdays at full volume and 8 weekend days at a quarter, 3 organisations.
            let per_day = ((outputs as f64) / (3.0 * (22.0 + 8.0 / 4.0) * 1.1)).ceil().max(1.0) as u64;
            let started = Instant::now();
            let status = Command::new(&bin)
                .args([
                    "calls",
                    "sample",
                    "--from",
                    bench_calls::FIRST_DAY,
                    "--days",
                    "30",
                    "--calls-per-day",
                ])
                .arg(per_day.to_string())
                .arg("--out")
                .arg(&file)
                .status()?;
            if !status.success() {
                bail!("sightline calls sample failed");
            }
            let lines = BufReader::new(std::fs::File::open(&file)?).lines().count() as u64;
            eprintln!("generated {lines} lines in {:.1} s", started.elapsed().as_secs_f64());
            let mut results = on_backends(&rt, &root, backend, postgres_url, |dir, url| {
                rt.block_on(bench_calls(&bin, &root, dir, url, &file, lines, &Source::Embedded))
            })?;
            if !no_clickhouse {
                let ch = ThrowawayServer::clickhouse(&root)?;
                let started = Instant::now();
                let database = rt.block_on(load_clickhouse(&ch.url, &file))?;
                eprintln!("loaded ClickHouse in {:.1} s", started.elapsed().as_secs_f64());
                let dir = tempdir()?;
                let url = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
                let source = Source::ClickHouse { url: ch.url.clone(), database };
                results.push((
                    "clickhouse",
                    rt.block_on(bench_calls(&bin, &root, &dir, &url, &file, lines, &source))?,
                ));
                let _ = std::fs::remove_dir_all(&dir);
            }
            let _ = std::fs::remove_dir_all(&files);
            let outputs = (lines.saturating_sub(3)) / 3;
            print_calls_results(outputs, &results);
        }
        Task::Bench {
            target: BenchTarget::Planning { series, no_statsforecast, plans, backend, postgres_url },
        } => {
            use sightline_planning::forecast::Method;
            let all = bench_planning::series(series);
            let mut figures = vec![
                bench_planning::ours(&all, Method::Auto, "sightline auto (with backtests)"),
                bench_planning::ours(&all, Method::Ets, "sightline ETS (AICc)"),
                bench_planning::ours(&all, Method::Combination, "sightline combination"),
                bench_planning::ours(&all, Method::SeasonalNaive, "seasonal naive"),
            ];
            let rss = peak_rss_mb(std::process::id());
            if !no_statsforecast {
                figures.push(bench_planning::autoets(&root, &all)?);
            }
            bench_planning::print_planning_results(all.len(), &figures, rss);
            if plans > 0 {
                let bin = release_binary(&root, None)?;
                let results = on_backends(&rt, &root, backend, postgres_url, |dir, url| {
                    rt.block_on(bench_planning::listings(&bin, &root, dir, url, plans))
                })?;
                for (name, rows) in &results {
                    bench_planning::print_listings(name, plans, rows);
                }
            }
        }
        Task::Bench { target: BenchTarget::Sports { backend, no_redis, postgres_url, binary } } => {
            let bin = release_binary(&root, binary)?;
            let stand_in = StandInProcess::start(&bin)?;
            let seasons = on_backends(&rt, &root, backend, postgres_url, |dir, url| {
                rt.block_on(bench_season(&bin, &stand_in, dir, url))
            })?;
            // The summaries on a SQLite data directory with the season in it.
            let dir = tempdir()?;
            let url = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
            rt.block_on(bench_season(&bin, &stand_in, &dir, &url))?;
            let memory = rt.block_on(bench_summary(&bin, &root, &dir, &stand_in, None, true))?;
            let redis = if no_redis {
                None
            } else {
                let redis = ThrowawayServer::redis(&root)?;
                Some(rt.block_on(bench_summary(&bin, &root, &dir, &stand_in, Some(&redis.url), false))?)
            };
            let _ = std::fs::remove_dir_all(&dir);
            print_sports_results(&seasons, &memory, redis.as_ref());
        }
        Task::Bench { target: BenchTarget::Usage { rows, chunk_rows, backend, postgres_url, binary } } => {
            let bin = release_binary(&root, binary)?;
            let files = tempdir()?;
            let started = Instant::now();
            let status = Command::new(&bin)
                .args(["usage", "sample", "--rows", &rows.to_string(), "--out"])
                .arg(&files)
                .status()?;
            if !status.success() {
                bail!("sightline usage sample failed");
            }
            eprintln!("generated {rows} rows in {:.1} s", started.elapsed().as_secs_f64());
            let results = on_backends(&rt, &root, backend, postgres_url, |dir, url| {
                rt.block_on(async {
                    let mut figures = bench_usage(&bin, &root, dir, url, &files, rows, chunk_rows).await?;
                    figures.stored_alone_per_s = storage_alone(&bin, dir, url, rows).await?;
                    Ok(figures)
                })
            })?;
            let _ = std::fs::remove_dir_all(&files);
            print_usage_results(rows, &results);
        }
    }
    Ok(())
}

/// The binary to measure: `binary`, or a fresh release build.
fn release_binary(root: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = binary {
        return Ok(path);
    }
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "sightline"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    Ok(root.join("target/release/sightline"))
}

/// Runs `measure(data_dir, database_url)` on a fresh SQLite file and/or a fresh PostgreSQL
/// database (on a throw-away durable server unless `postgres_url` is given).
fn on_backends<T>(
    rt: &tokio::runtime::Runtime,
    root: &Path,
    backend: Which,
    postgres_url: Option<String>,
    mut measure: impl FnMut(&Path, &str) -> anyhow::Result<T>,
) -> anyhow::Result<Vec<(&'static str, T)>> {
    let mut results = Vec::new();
    if backend != Which::Postgres {
        let dir = tempdir()?;
        let url = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
        results.push(("sqlite", measure(&dir, &url)?));
        let _ = std::fs::remove_dir_all(&dir);
    }
    if backend != Which::Sqlite {
        let (admin, pg) = match postgres_url {
            Some(url) => (url, None),
            None => {
                let pg = ThrowawayServer::postgres(root)?;
                (pg.url.clone(), Some(pg))
            }
        };
        let url = rt.block_on(create_database(&admin))?;
        let dir = tempdir()?;
        results.push(("postgres", measure(&dir, &url)?));
        let _ = std::fs::remove_dir_all(&dir);
        drop(pg);
    }
    Ok(results)
}

/// A fixed single-core workload (integer hashing), as millions of steps per second: runs of the
/// benchmarks on different machines compare through it.
fn machine_reference() -> f64 {
    const STEPS: u64 = 200_000_000;
    let started = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..STEPS {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_mul(0x2545_F491_4F6C_DD1D).wrapping_add(i);
    }
    std::hint::black_box(x);
    STEPS as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sightline-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A throw-away server started by one of `scripts/lib/*.sh` (its start function exports the
/// URL; `state` names the variables its stop function needs), stopped when dropped.
pub(crate) struct ThrowawayServer {
    pub(crate) url: String,
    lib: &'static str,
    stop: &'static str,
    vars: String,
    root: PathBuf,
}

impl ThrowawayServer {
    fn start(
        root: &Path,
        lib: &'static str,
        (start, stop): (&str, &'static str),
        url_var: &str,
        state: &[&str],
        package: &str,
    ) -> anyhow::Result<Self> {
        let vars: Vec<String> = state.iter().map(|v| format!("{v}=${v}")).collect();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source scripts/lib/{lib}.sh && {start} >&2 && echo \"${url_var}|{}\"",
                vars.join(" ")
            ))
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("could not start {lib} (apt-get install {package})");
        }
        let line = String::from_utf8(out.stdout)?;
        let (url, vars) = line.trim().split_once('|').context("unexpected start output")?;
        Ok(Self { url: url.to_owned(), lib, stop, vars: vars.to_owned(), root: root.to_path_buf() })
    }

    /// PostgreSQL with its durable defaults (fsync on), without TLS: the bench measures the
    /// database, and builds without TLS (`--binary`) could not use it anyway.
    pub(crate) fn postgres(root: &Path) -> anyhow::Result<Self> {
        let start = ("PG_DURABLE=1 PG_TLS=0 pg_start", "pg_stop");
        Self::start(
            root,
            "postgres",
            start,
            "SIGHTLINE_TEST_POSTGRES_URL",
            &["PG_TMPDIR", "PG_BINDIR"],
            "postgresql",
        )
    }

    /// ClickHouse.
    pub(crate) fn clickhouse(root: &Path) -> anyhow::Result<Self> {
        let start = ("ch_start", "ch_stop");
        Self::start(
            root,
            "clickhouse",
            start,
            "SIGHTLINE_TEST_CLICKHOUSE_URL",
            &["CH_TMPDIR", "CH_PID"],
            "clickhouse-server",
        )
    }

    /// Redis, without persistence.
    pub(crate) fn redis(root: &Path) -> anyhow::Result<Self> {
        let start = ("redis_start", "redis_stop");
        Self::start(
            root,
            "redis",
            start,
            "SIGHTLINE_TEST_REDIS_URL",
            &["REDIS_TMPDIR", "REDIS_PID"],
            "redis-server",
        )
    }
}

impl Drop for ThrowawayServer {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!("source scripts/lib/{}.sh && {} {} >/dev/null 2>&1", self.lib, self.vars, self.stop))
            .current_dir(&self.root)
            .status();
    }
}

async fn create_database(admin: &str) -> anyhow::Result<String> {
    let name = format!("sightline_bench_{}", uuid::Uuid::new_v4().simple());
    let status =
        Command::new("psql").arg(admin).arg("-qc").arg(format!("CREATE DATABASE {name}")).status()?;
    if !status.success() {
        bail!("psql could not create the bench database");
    }
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    Ok(format!("{base}/{name}"))
}

/// A statement the server sent its call source, with its bound values (embedded store only).
#[derive(Clone)]
struct LoggedQuery {
    sql: String,
    binds: Vec<Value>,
}

struct Server {
    child: Child,
    base: String,
    /// The call-source queries the server logged (`calls.clickhouse_query`,
    /// `calls.embedded_query`, at debug level).
    queries: Arc<std::sync::Mutex<Vec<LoggedQuery>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The bench server's first admin password.
const BENCH_ADMIN_PASSWORD: &str = "bench operator passphrase";

/// Signs in as admin, creates an API key for the load (as a calculator would use), and returns a
/// client that sends it on every request.
async fn calculator_client(base: &str, pool: usize) -> anyhow::Result<reqwest::Client> {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": BENCH_ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let Some(token) = login["access_token"].as_str() else {
        // A build from before authentication existed (compared with --binary).
        return Ok(reqwest::Client::builder().pool_max_idle_per_host(pool).build()?);
    };
    let created: Value = http
        .post(format!("{base}/api/v1/auth/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "bench", "permissions": ["events:write", "nba:read", "nba:act"]}))
        .send()
        .await?
        .json()
        .await?;
    let key = created["key"].as_str().context("API key not created")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    Ok(reqwest::Client::builder().default_headers(headers).pool_max_idle_per_host(pool).build()?)
}

fn start_server(bin: &Path, root: &Path, dir: &Path, url: &str) -> anyhow::Result<Server> {
    start_server_with(bin, root, dir, url, &[])
}

/// Starts the server with extra environment (unset values are left out).
fn start_server_with(
    bin: &Path,
    root: &Path,
    dir: &Path,
    url: &str,
    env: &[(&str, Option<String>)],
) -> anyhow::Result<Server> {
    let mut command = Command::new(bin);
    command
        .args(["serve", "--bind", "127.0.0.1:0", "--log-format", "json", "--data-dir"])
        .arg(dir)
        .env("DATABASE_URL", url)
        .env("SIGHTLINE_LOG_LEVEL", "warn,sightline_platform::app=info")
        .env("SIGHTLINE_ADMIN_PASSWORD", BENCH_ADMIN_PASSWORD)
        .env("MOCK_DB_DIR", root.join("examples/mock_db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        if let Some(value) = value {
            command.env(key, value);
        }
    }
    let mut child = command.spawn()?;
    // Logs are on stderr (on stdout in builds before the platform's round 2: `--binary`).
    let outputs: [Box<dyn std::io::Read + Send>; 2] = [
        Box::new(child.stdout.take().context("no stdout")?),
        Box::new(child.stderr.take().context("no stderr")?),
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    let queries = Arc::new(std::sync::Mutex::new(Vec::new()));
    for output in outputs {
        let tx = tx.clone();
        let queries = queries.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if line.contains("server.listening") {
                    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                } else if line.contains("calls.clickhouse_query") || line.contains("calls.embedded_query") {
                    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    let field = |name: &str| {
                        v[name].as_str().or_else(|| v["fields"][name].as_str()).map(str::to_owned)
                    };
                    if let Some(sql) = field("sql").filter(|s| !s.is_empty()) {
                        let binds =
                            field("binds").and_then(|b| serde_json::from_str(&b).ok()).unwrap_or_default();
                        queries.lock().expect("log lock").push(LoggedQuery { sql, binds });
                    }
                }
            }
        });
    }
    let addr = rx.recv_timeout(Duration::from_secs(60)).context("server did not start")?;
    Ok(Server { child, base: format!("http://{addr}"), queries })
}

fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Latencies of one phase.
pub(crate) struct Latencies {
    pub(crate) requests: usize,
    pub(crate) per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
}

impl Latencies {
    pub(crate) fn of(mut ms: Vec<f64>, elapsed: Duration) -> Self {
        ms.sort_by(f64::total_cmp);
        Self {
            requests: ms.len(),
            per_s: ms.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: percentile(&ms, 0.5),
            p99_ms: percentile(&ms, 0.99),
        }
    }
}

/// Requests `paths` in turn at a fixed offered `rate` a second for `seconds` (open loop: a slow
/// answer does not delay the next request); answers the latencies.
pub(crate) async fn at_rate(
    http: &reqwest::Client,
    base: &str,
    paths: &[String],
    rate: u64,
    seconds: u64,
) -> anyhow::Result<Latencies> {
    let n = (rate * seconds) as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut requests = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let (http, url) = (http.clone(), format!("{base}{}", paths[i % paths.len()]));
        requests.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = http.get(&url).send().await?;
            let status = r.status();
            r.bytes().await?;
            anyhow::ensure!(status == 200, "{url} answered {status}");
            anyhow::Ok(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut ms = Vec::with_capacity(n);
    for r in requests {
        ms.push(r.await??);
    }
    Ok(Latencies::of(ms, started.elapsed()))
}
