//! Project tasks: `cargo xtask bench actions` measures the NBA pipeline and `cargo xtask bench
//! usage` the CSV import, against the release binary on SQLite and PostgreSQL; both print
//! figures (they assert nothing).

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
                let pg = ThrowawayPostgres::start(root)?;
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

struct UsageFigures {
    upload_s: f64,
    total_s: f64,
    stage_ms: Value,
    rows_per_s_import: f64,
    inserted: i64,
    rejected: i64,
    peak_rss_mb: f64,
    /// Rows per second the database stores alone (see [`storage_alone`]).
    stored_alone_per_s: f64,
}

async fn bench_usage(
    bin: &Path,
    root: &Path,
    dir: &Path,
    url: &str,
    files: &Path,
    rows: u64,
    chunk_rows: Option<usize>,
) -> anyhow::Result<UsageFigures> {
    let server = start_server_with(
        bin,
        root,
        dir,
        url,
        &[("SIGHTLINE_USAGE__CHUNK_ROWS", chunk_rows.map(|c| c.to_string()))],
    )?;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "admin", "password": BENCH_ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("admin did not sign in")?.to_owned();
    let part = |name: &str| -> anyhow::Result<reqwest::multipart::Part> {
        Ok(reqwest::multipart::Part::bytes(std::fs::read(files.join(name))?).file_name(name.to_owned()))
    };
    let form = reqwest::multipart::Form::new()
        .part("users", part("users.csv")?)
        .part("transactions", part("transactions.csv")?);
    let started = Instant::now();
    let r =
        http.post(format!("{}/upload-csv", server.base)).bearer_auth(&token).multipart(form).send().await?;
    if r.status() != 202 {
        bail!("upload answered {}: {}", r.status(), r.text().await?);
    }
    let upload_s = started.elapsed().as_secs_f64();
    let accepted: Value = r.json().await?;
    let id = accepted["data"]["job_id"].as_str().context("no job id")?.to_owned();
    let job = loop {
        let job: Value =
            http.get(format!("{}/jobs/{id}", server.base)).bearer_auth(&token).send().await?.json().await?;
        match job["status"].as_str() {
            Some("succeeded") => break job,
            Some("failed") => bail!("the import failed: {}", job["error"]),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let total_s = started.elapsed().as_secs_f64();
    let stage_ms = job["stage_ms"].clone();
    let import_ms: f64 =
        ["users", "transactions", "aggregates"].iter().filter_map(|s| stage_ms[*s].as_f64()).sum();
    Ok(UsageFigures {
        upload_s,
        total_s,
        rows_per_s_import: rows as f64 / (import_ms / 1000.0),
        stage_ms,
        inserted: job["transactions"]["inserted"].as_i64().unwrap_or(0),
        rejected: job["transactions"]["rejected"].as_i64().unwrap_or(0),
        peak_rss_mb: peak_rss_mb(server.child.id()),
        stored_alone_per_s: f64::NAN,
    })
}

/// Rows per transaction when storing alone: the server's default `usage.chunk_rows`.
const STORED_ALONE_CHUNK: u64 = 50_000;

/// How fast the database alone stores `rows` transactions on this machine: a fresh database
/// migrated by the binary, then generated rows of the same shape (random keys, dates in order)
/// written straight into `usage_transactions` (`transactions` in builds before the table
/// prefixes, measured with `--binary`) by the fastest plain path each database has
/// (SQLite's C API with one prepared INSERT, PostgreSQL's COPY), a transaction per
/// [`STORED_ALONE_CHUNK`] rows, durable. No parsing, no checks: an import cannot beat it.
async fn storage_alone(bin: &Path, dir: &Path, url: &str, rows: u64) -> anyhow::Result<f64> {
    use sqlx::Connection as _;
    let (url, sqlite) = if url.starts_with("sqlite") {
        (format!("sqlite://{}/stored-alone.db?mode=rwc", dir.display()), true)
    } else {
        (create_database(url).await?, false)
    };
    let status = Command::new(bin)
        .args(["--log-format", "json", "--data-dir"])
        .arg(dir)
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("SIGHTLINE_LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("sightline migrate failed on {url}");
    }
    let mut generator = GeneratedRows::new(rows);
    // Generating rows (and PostgreSQL's CSV text) is left out of the time.
    let mut storing = Duration::ZERO;
    if sqlite {
        let path = dir.join("stored-alone.db");
        storing = tokio::task::spawn_blocking(move || sqlite_store_alone(&path, &mut generator)).await??;
    } else {
        use sqlx::Row as _;
        use std::fmt::Write as _;
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        let prefixed: bool = sqlx::query("SELECT to_regclass('usage_transactions') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?
            .get(0);
        let table = if prefixed { "usage_transactions" } else { "transactions" };
        let mut csv = String::new();
        while let Some(chunk) = generator.next_chunk(STORED_ALONE_CHUNK) {
            csv.clear();
            for r in &chunk {
                let cells: Vec<String> = r.cells().iter().map(Cell::to_string).collect();
                writeln!(csv, "{}", cells.join(","))?;
            }
            let started = Instant::now();
            let mut copy = conn
                .copy_in_raw(&format!("COPY {table} ({TX_COLUMNS}) FROM STDIN WITH (FORMAT csv)"))
                .await?;
            copy.send(csv.as_bytes()).await?;
            copy.finish().await?;
            storing += started.elapsed();
        }
        conn.close().await?;
    }
    Ok(rows as f64 / storing.as_secs_f64())
}

/// Stores the generated rows into the SQLite file at `path` through SQLite's C API: one prepared
/// single-row INSERT (no statement journal), the server's pragmas; returns the time spent.
fn sqlite_store_alone(path: &Path, generator: &mut GeneratedRows) -> anyhow::Result<Duration> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -32000;")?;
    let prefixed: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'usage_transactions'",
        [],
        |row| row.get(0),
    )?;
    let table = if prefixed { "usage_transactions" } else { "transactions" };
    let sql = format!(
        "INSERT INTO {table} ({TX_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    );
    let mut storing = Duration::ZERO;
    while let Some(chunk) = generator.next_chunk(STORED_ALONE_CHUNK) {
        let started = Instant::now();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(&sql)?;
            for r in &chunk {
                insert.execute(rusqlite::params_from_iter(r.cells()))?;
            }
        }
        tx.commit()?;
        storing += started.elapsed();
    }
    Ok(storing)
}

/// The columns of the `usage_transactions` table, in [`GeneratedRow::cells`] order.
const TX_COLUMNS: &str = "id_key, id, user_id, region, company, model_name, conversation_id, token_type, \
                          token_count, rate_per_1k, calculated_cost, date, timestamp";

/// One generated row of `transactions`.
struct GeneratedRow {
    key: i64,
    id: String,
    user_id: String,
    region: &'static str,
    company: &'static str,
    model: &'static str,
    conversation_id: String,
    token_type: &'static str,
    tokens: i64,
    rate: f64,
    cost: f64,
    date: String,
    timestamp_ms: i64,
}

impl GeneratedRow {
    /// The row's values in [`TX_COLUMNS`] order.
    fn cells(&self) -> [Cell<'_>; 13] {
        [
            Cell::Int(self.key),
            Cell::Text(&self.id),
            Cell::Text(&self.user_id),
            Cell::Text(self.region),
            Cell::Text(self.company),
            Cell::Text(self.model),
            Cell::Text(&self.conversation_id),
            Cell::Text(self.token_type),
            Cell::Int(self.tokens),
            Cell::Real(self.rate),
            Cell::Real(self.cost),
            Cell::Text(&self.date),
            Cell::Int(self.timestamp_ms),
        ]
    }
}

/// One value of a generated row: bound as an SQLite parameter, or written as a CSV cell (no
/// generated text needs quoting).
enum Cell<'a> {
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl std::fmt::Display for Cell<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Int(v) => write!(f, "{v}"),
            Cell::Real(v) => write!(f, "{v}"),
            Cell::Text(v) => f.write_str(v),
        }
    }
}

impl rusqlite::ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(match self {
            Cell::Int(v) => (*v).into(),
            Cell::Real(v) => (*v).into(),
            Cell::Text(v) => (*v).into(),
        })
    }
}

/// Deterministic rows like the sample's: random 62-bit keys and UUID-shaped ids, a few
/// regions, companies and models, timestamps in order over half a year.
struct GeneratedRows {
    state: u64,
    next: u64,
    total: u64,
}

impl GeneratedRows {
    fn new(total: u64) -> Self {
        Self { state: 0x9E37_79B9_7F4A_7C15, next: 0, total }
    }

    fn random(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    fn uuid(&mut self) -> String {
        uuid::Uuid::from_u64_pair(self.random(), self.random()).to_string()
    }

    fn next_chunk(&mut self, size: u64) -> Option<Vec<GeneratedRow>> {
        const REGIONS: [&str; 5] = ["US", "EU", "JP", "IN", "BR"];
        const COMPANIES: [&str; 8] =
            ["Tech Global", "Acme", "Initech", "Umbrella", "Globex", "Hooli", "Stark", "Wayne"];
        const MODELS: [&str; 4] = ["gpt-4o", "gpt-4o-mini", "claude-3.5-sonnet", "gemini-1.5-pro"];
        const START_MS: i64 = 1_735_689_600_000; // 2025-01-01
        const SPAN_MS: i64 = 181 * 86_400_000;
        if self.next >= self.total {
            return None;
        }
        let end = (self.next + size).min(self.total);
        let mut rows = Vec::with_capacity((end - self.next) as usize);
        for i in self.next..end {
            let pick = self.random();
            let timestamp_ms = START_MS + (i as i128 * SPAN_MS as i128 / self.total as i128) as i64;
            let tokens = 20 + (pick % 1_500) as i64;
            rows.push(GeneratedRow {
                key: (self.random() >> 2) as i64,
                id: self.uuid(),
                user_id: format!("user-{:05}", pick % 5_000),
                region: REGIONS[(pick >> 16) as usize % REGIONS.len()],
                company: COMPANIES[(pick >> 24) as usize % COMPANIES.len()],
                model: MODELS[(pick >> 32) as usize % MODELS.len()],
                conversation_id: self.uuid(),
                token_type: if i % 2 == 0 { "prompt" } else { "completion" },
                tokens,
                rate: 0.005,
                cost: tokens as f64 * 0.005 / 1000.0,
                date: chrono::DateTime::from_timestamp_millis(timestamp_ms)
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                timestamp_ms,
            });
        }
        self.next = end;
        Some(rows)
    }
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

fn print_usage_results(rows: u64, results: &[(&str, UsageFigures)]) {
    println!("\nusage import: {rows} transactions rows (+ users), release build, durable storage");
    println!("machine reference: {:.0} M steps/s on one core", machine_reference());
    println!(
        "{:<10} {:>12} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12} {:>10} {:>14}",
        "backend",
        "rows/s e2e",
        "total s",
        "upload s",
        "users ms",
        "rows ms",
        "aggr. ms",
        "rows/s imp.",
        "RSS MB",
        "stored alone/s"
    );
    for (name, f) in results {
        let ms = |s: &str| f.stage_ms[s].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<10} {:>12.0} {:>10.2} {:>10.2} {:>10.0} {:>12.0} {:>12.0} {:>12.0} {:>10.1} {:>14.0}",
            name,
            rows as f64 / f.total_s,
            f.total_s,
            f.upload_s,
            ms("users"),
            ms("transactions"),
            ms("aggregates"),
            f.rows_per_s_import,
            f.peak_rss_mb,
            f.stored_alone_per_s
        );
        if f.inserted != rows as i64 || f.rejected != 0 {
            println!("  warning: {} inserted, {} rejected", f.inserted, f.rejected);
        }
    }
    println!(
        "stored alone: as many generated rows written straight into a fresh `usage_transactions` table \
         (SQLite's C API, one prepared INSERT; COPY on PostgreSQL; {STORED_ALONE_CHUNK} a transaction): \
         the database's own ceiling for an import on this machine"
    );
}

struct Params {
    events: usize,
    concurrency: usize,
    get_rate: u64,
    get_seconds: u64,
}

struct Figures {
    accepted_per_s: f64,
    processed_per_s: f64,
    post_p50_ms: f64,
    post_p99_ms: f64,
    get_p50_ms: f64,
    get_p99_ms: f64,
    get_achieved_rate: f64,
    decisions_per_s: f64,
    decide_p50_ms: f64,
    decide_p99_ms: f64,
    peak_rss_mb: f64,
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sightline-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

struct ThrowawayPostgres {
    url: String,
    vars: String,
    root: PathBuf,
}

impl ThrowawayPostgres {
    /// Starts a PostgreSQL server with its durable defaults (fsync on) via scripts/lib/postgres.sh,
    /// without TLS: the bench measures the database, and builds without TLS (`--binary`) could
    /// not use it anyway.
    fn start(root: &Path) -> anyhow::Result<Self> {
        let out = Command::new("bash")
            .arg("-c")
            .arg("source scripts/lib/postgres.sh && PG_DURABLE=1 PG_TLS=0 pg_start >&2 && echo \"$SIGHTLINE_TEST_POSTGRES_URL|PG_TMPDIR=$PG_TMPDIR PG_BINDIR=$PG_BINDIR\"")
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()?;
        if !out.status.success() {
            bail!("could not start PostgreSQL (apt-get install postgresql)");
        }
        let line = String::from_utf8(out.stdout)?;
        let (url, vars) = line.trim().split_once('|').context("unexpected pg_start output")?;
        Ok(Self { url: url.to_owned(), vars: vars.to_owned(), root: root.to_path_buf() })
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg("-c")
            .arg(format!("source scripts/lib/postgres.sh && {} pg_stop >/dev/null 2>&1", self.vars))
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

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The bench server's first admin password.
const BENCH_ADMIN_PASSWORD: &str = "bench admin password";

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
    for output in outputs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                if line.contains("server.listening") {
                    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
    }
    let addr = rx.recv_timeout(Duration::from_secs(60)).context("server did not start")?;
    Ok(Server { child, base: format!("http://{addr}") })
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

async fn bench_actions(
    bin: &Path,
    root: &Path,
    dir: &Path,
    url: &str,
    p: &Params,
) -> anyhow::Result<Figures> {
    let server = start_server(bin, root, dir, url)?;
    let client = calculator_client(&server.base, p.concurrency * 2).await?;
    let post_url = format!("{}/api/v1/internal/events/nba-calculation", server.base);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..p.concurrency {
        let (client, post_url, next, total) = (client.clone(), post_url.clone(), next.clone(), p.events);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                // 2,000 accounts x 8 definitions: scopes both collide and differ.
                let body = json!({
                    "event_id": uuid::Uuid::new_v4().to_string(),
                    "occurred_at": "2026-02-09T13:59:00Z",
                    "source": "bench",
                    "nba_definition_id": format!("def_{}", i % 8),
                    "account_id": format!("acc_{}", (i * 7919) % 2000),
                    "context": {"score": (i % 100) as f64 / 100.0},
                });
                let t = Instant::now();
                let r = client.post(&post_url).json(&body).send().await?;
                if r.status() != 202 {
                    bail!("POST answered {}", r.status());
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut post_lat = Vec::with_capacity(p.events);
    for t in tasks {
        post_lat.extend(t.await??);
    }
    let accept_time = started.elapsed().as_secs_f64();
    // Wait until the queue holds nothing queued or running.
    loop {
        let counts: Value = client.get(format!("{}/api/v1/queue", server.base)).send().await?.json().await?;
        let pending: i64 = counts["queues"]
            .as_array()
            .map(|qs| {
                qs.iter()
                    .map(|q| q["queued"].as_i64().unwrap_or(0) + q["running"].as_i64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let e2e_time = started.elapsed().as_secs_f64();

    // GET phase: open loop at a fixed offered rate.
    let n = (p.get_rate * p.get_seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / p.get_rate as f64);
    let get_started = Instant::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut gets = Vec::with_capacity(n);
    for i in 0..n {
        ticker.tick().await;
        let url = format!("{}/api/v1/nba?account_id=acc_{}&limit=50", server.base, (i * 31) % 2000);
        let client = client.clone();
        gets.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = client.get(&url).send().await?;
            let ok = r.status() == 200;
            let _ = r.bytes().await?;
            if !ok {
                bail!("GET failed");
            }
            Ok::<_, anyhow::Error>(t.elapsed().as_secs_f64() * 1000.0)
        }));
    }
    let mut get_lat = Vec::with_capacity(n);
    for g in gets {
        get_lat.push(g.await??);
    }
    let get_time = get_started.elapsed().as_secs_f64();
    post_lat.sort_by(f64::total_cmp);
    get_lat.sort_by(f64::total_cmp);
    let (decisions_per_s, mut decide_lat) = bench_decisions(&client, &server.base, p).await?;
    decide_lat.sort_by(f64::total_cmp);
    Ok(Figures {
        accepted_per_s: p.events as f64 / accept_time,
        processed_per_s: p.events as f64 / e2e_time,
        post_p50_ms: percentile(&post_lat, 0.50),
        post_p99_ms: percentile(&post_lat, 0.99),
        get_p50_ms: percentile(&get_lat, 0.50),
        get_p99_ms: percentile(&get_lat, 0.99),
        get_achieved_rate: n as f64 / get_time,
        decisions_per_s,
        decide_p50_ms: percentile(&decide_lat, 0.50),
        decide_p99_ms: percentile(&decide_lat, 0.99),
        peak_rss_mb: peak_rss_mb(server.child.id()),
    })
}

/// Decision phase: `concurrency` clients accept distinct active NBAs (`POST /api/v1/nba/{id}/actions`)
/// as fast as they are answered; returns decisions/s and each decision's latency in ms.
async fn bench_decisions(
    client: &reqwest::Client,
    base: &str,
    p: &Params,
) -> anyhow::Result<(f64, Vec<f64>)> {
    let wanted = (p.events / 2).clamp(1, 10_000);
    let mut ids = Vec::with_capacity(wanted);
    while ids.len() < wanted {
        let url = format!("{base}/api/v1/nba?status=new&active=true&limit=200&offset={}", ids.len());
        let page: Value = client.get(url).send().await?.json().await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            break;
        }
        ids.extend(items.iter().filter_map(|i| i["id"].as_str().map(str::to_owned)));
    }
    ids.truncate(wanted);
    let ids = Arc::new(ids);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..p.concurrency {
        let (client, base, ids, next) = (client.clone(), base.to_owned(), ids.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(id) = ids.get(i) else { return Ok::<_, anyhow::Error>(latencies) };
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/api/v1/nba/{id}/actions"))
                    .json(&json!({"status": "accepted", "comment": "bench"}))
                    .send()
                    .await?;
                if r.status() != 201 {
                    bail!("decision answered {}", r.status());
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut latencies = Vec::with_capacity(ids.len());
    for t in tasks {
        latencies.extend(t.await??);
    }
    Ok((ids.len() as f64 / started.elapsed().as_secs_f64(), latencies))
}

fn print_results(p: &Params, results: &[(&str, Figures)]) {
    println!();
    println!("machine reference: {:.0} M steps/s on one core", machine_reference());
    println!(
        "actions bench: {} events, {} concurrent clients, GET at {} req/s for {} s (durable: SQLite WAL synchronous=FULL; PostgreSQL fsync on)",
        p.events, p.concurrency, p.get_rate, p.get_seconds
    );
    println!(
        "{:<9} {:>12} {:>13} {:>10} {:>10} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11} {:>9}",
        "backend",
        "accepted/s",
        "processed/s",
        "POST p50",
        "POST p99",
        "GET p50",
        "GET p99",
        "GET rate",
        "decisions/s",
        "decide p50",
        "decide p99",
        "peak RSS"
    );
    for (name, f) in results {
        println!(
            "{:<9} {:>12.0} {:>13.0} {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>8.2}ms {:>9.0}/s {:>11.0} {:>9.2}ms {:>9.2}ms {:>7.1}MB",
            name,
            f.accepted_per_s,
            f.processed_per_s,
            f.post_p50_ms,
            f.post_p99_ms,
            f.get_p50_ms,
            f.get_p99_ms,
            f.get_achieved_rate,
            f.decisions_per_s,
            f.decide_p50_ms,
            f.decide_p99_ms,
            f.peak_rss_mb
        );
    }
}
