//! `cargo xtask bench usage`: a generated upload imported end to end, and the database's own
//! storage ceiling for the same rows.

use super::*;
pub(crate) struct UsageFigures {
    upload_s: f64,
    total_s: f64,
    stage_ms: Value,
    rows_per_s_import: f64,
    inserted: i64,
    rejected: i64,
    peak_rss_mb: f64,
    /// Rows per second the database stores alone (see [`storage_alone`]).
    pub(crate) stored_alone_per_s: f64,
}

pub(crate) async fn bench_usage(
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
pub(crate) const STORED_ALONE_CHUNK: u64 = 50_000;

/// How fast the database alone stores `rows` transactions on this machine: a fresh database
/// migrated by the binary, then generated rows of the same shape (random keys, dates in order)
/// written straight into `usage_transactions` (`transactions` in builds before the table
/// prefixes, measured with `--binary`) by the fastest plain path each database has
/// (SQLite's C API with one prepared INSERT, PostgreSQL's COPY), a transaction per
/// [`STORED_ALONE_CHUNK`] rows, durable. No parsing, no checks: an import cannot beat it.
pub(crate) async fn storage_alone(bin: &Path, dir: &Path, url: &str, rows: u64) -> anyhow::Result<f64> {
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
pub(crate) fn sqlite_store_alone(path: &Path, generator: &mut GeneratedRows) -> anyhow::Result<Duration> {
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
pub(crate) const TX_COLUMNS: &str =
    "id_key, id, user_id, region, company, model_name, conversation_id, token_type, \
                          token_count, rate_per_1k, calculated_cost, date, timestamp";

/// One generated row of `transactions`.
pub(crate) struct GeneratedRow {
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
pub(crate) enum Cell<'a> {
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
pub(crate) struct GeneratedRows {
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

pub(crate) fn print_usage_results(rows: u64, results: &[(&str, UsageFigures)]) {
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
