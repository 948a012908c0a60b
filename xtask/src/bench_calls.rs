//! `cargo xtask bench calls`: generated calls (`sightline calls sample`) loaded into the
//! embedded store with `sightline calls import` (rows/s on SQLite and PostgreSQL), then one
//! organisation-day report generated, a stored day's report read, and `/all-stats` over 30 days,
//! on SQLite, PostgreSQL and ClickHouse; on ClickHouse also the same SQL sent straight to the
//! server, so the ratio is Sightline's overhead.

use std::io::Write as _;

use super::*;

/// The sample's first organisation (Paul Logistics, America/Chicago).
const ORG: &str = "01951f56-8c6e-7a93-a971-3d06a81a1ab0";
/// The sample's first day.
pub(crate) const FIRST_DAY: &str = "2025-11-03";

#[derive(Default)]
pub(crate) struct CallsFigures {
    import_rows_per_s: Option<f64>,
    generate_ms: f64,
    stored_p50_ms: f64,
    stored_p99_ms: f64,
    all_stats_ms: f64,
    raw_all_stats_ms: Option<f64>,
}

/// Where the calls are: the embedded store (`url`'s database), or ClickHouse.
pub(crate) enum Source {
    Embedded,
    ClickHouse { url: String, database: String },
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

pub(crate) async fn bench_calls(
    bin: &Path,
    root: &Path,
    dir: &Path,
    url: &str,
    file: &Path,
    lines: u64,
    source: &Source,
) -> anyhow::Result<CallsFigures> {
    let mut figures = CallsFigures::default();
    let data = dir.join("data");
    let import = |file: &Path| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new(bin)
            .args(["calls", "import"])
            .arg(file)
            .args(["--sample-orgs", "--data-dir"])
            .arg(&data)
            .env("DATABASE_URL", url)
            .env("SIGHTLINE_LOG_LEVEL", "warn")
            .stderr(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("sightline calls import failed");
        }
        Ok(started.elapsed())
    };
    let mut env = vec![
        ("SIGHTLINE_CALLS__SCHEDULER_CATCHUP_DAYS", Some("0".to_owned())),
        (
            "SIGHTLINE_LOG_LEVEL",
            Some("warn,sightline_platform::app=info,sightline_calls::store::calls=debug".into()),
        ),
    ];
    match source {
        Source::Embedded => {
            let took = import(file)?;
            figures.import_rows_per_s = Some(lines as f64 / took.as_secs_f64());
        }
        Source::ClickHouse { url: ch, database } => {
            // The organisations only: the calls are in ClickHouse.
            let empty = dir.join("empty.ndjson");
            std::fs::write(&empty, "")?;
            import(&empty)?;
            env.push(("SIGHTLINE_CALLS__CLICKHOUSE_URL", Some(ch.clone())));
            env.push(("SIGHTLINE_CALLS__CLICKHOUSE_DATABASE", Some(database.clone())));
            env[1].1 = Some("warn,sightline_platform::app=info,sightline_calls::clickhouse=debug".into());
        }
    }
    let server = start_server_with(bin, root, &data, url, &env)?;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "admin", "password": BENCH_ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("admin did not sign in")?.to_owned();
    let get = |path: String| {
        let request = http.get(format!("{}{path}", server.base)).bearer_auth(&token);
        async move {
            let r = request.send().await?;
            let status = r.status();
            let body = r.text().await?;
            anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
            Ok::<_, anyhow::Error>(body)
        }
    };

    // One organisation-day report generated (and stored), five weekdays.
    let mut generate = Vec::new();
    for day in ["2025-11-04", "2025-11-05", "2025-11-06", "2025-11-11", "2025-11-12"] {
        let started = Instant::now();
        let r = http
            .post(format!("{}/api/reports/backfill", server.base))
            .bearer_auth(&token)
            .json(&json!({"org_id": ORG, "start_date": day, "end_date": day, "force": true}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "backfill {day}: {}", r.text().await?);
        generate.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    figures.generate_ms = median(generate);

    // A stored day's report read, 300 times.
    let mut reads = Vec::new();
    for _ in 0..300 {
        let started = Instant::now();
        get(format!("/api/reports/2025-11-05?org_id={ORG}")).await?;
        reads.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    reads.sort_by(f64::total_cmp);
    figures.stored_p50_ms = percentile(&reads, 0.5);
    figures.stored_p99_ms = percentile(&reads, 0.99);

    // /all-stats over 30 days, three times.
    let all_stats = format!("/all-stats?org_id={ORG}&start_date={FIRST_DAY}&end_date=2025-12-03");
    let mut runs = Vec::new();
    for _ in 0..3 {
        server.queries.lock().expect("log lock").clear();
        let started = Instant::now();
        get(all_stats.clone()).await?;
        runs.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    figures.all_stats_ms = median(runs);

    // The same SQL straight to the database, one query after the other as Sightline sends them.
    let queries = server.queries.lock().expect("log lock").clone();
    anyhow::ensure!(!queries.is_empty(), "no call-source query was logged");
    let mut raw = Vec::new();
    match source {
        Source::ClickHouse { url: ch, database } => {
            for _ in 0..3 {
                let started = Instant::now();
                for q in &queries {
                    clickhouse_query(ch, database, &format!("{}\nFORMAT JSONEachRow", q.sql)).await?;
                }
                raw.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Source::Embedded => {
            sqlx::any::install_default_drivers();
            let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(url).await?;
            for _ in 0..3 {
                let started = Instant::now();
                for q in &queries {
                    let mut query = sqlx::query(&q.sql);
                    for b in &q.binds {
                        query = match b {
                            Value::Number(n) => query.bind(n.as_i64().context("an integer bind")?),
                            other => query.bind(other.as_str().context("a text bind")?.to_owned()),
                        };
                    }
                    query.fetch_all(&pool).await?;
                }
                raw.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            pool.close().await;
        }
    }
    figures.raw_all_stats_ms = Some(median(raw));
    Ok(figures)
}

/// Runs one statement on ClickHouse (read-only settings as Sightline's), body discarded.
pub(crate) async fn clickhouse_query(url: &str, database: &str, sql: &str) -> anyhow::Result<()> {
    // One client, so connections are reused as the server's outbound client reuses them.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let r = CLIENT
        .get_or_init(reqwest::Client::new)
        .post(format!("{url}/"))
        .query(&[
            ("database", database),
            ("max_execution_time", "180"),
            ("max_threads", "16"),
            ("output_format_json_quote_64bit_integers", "0"),
        ])
        .body(sql.to_owned())
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    anyhow::ensure!(
        status.is_success(),
        "ClickHouse: {status} {}",
        body.chars().take(300).collect::<String>()
    );
    Ok(())
}

/// Creates the original's four tables in a fresh database and loads the sample's lines into them.
pub(crate) async fn load_clickhouse(url: &str, file: &Path) -> anyhow::Result<String> {
    let database = format!("calls_bench_{}", uuid::Uuid::new_v4().simple());
    clickhouse_query(url, "default", &format!("CREATE DATABASE {database}")).await?;
    for ddl in [
        "CREATE TABLE public_runs (id String, timestamp DateTime) ENGINE = MergeTree ORDER BY (timestamp, id)",
        "CREATE TABLE public_sessions (run_id String, org_id String, user_number String, duration Float64, timestamp DateTime) \
         ENGINE = MergeTree ORDER BY (org_id, timestamp, run_id)",
        "CREATE TABLE public_node_outputs (run_id String, node_id String, node_persistent_id String, flat_data String, \
         timestamp DateTime) ENGINE = MergeTree ORDER BY (node_persistent_id, timestamp, run_id)",
        "CREATE TABLE public_nodes (id String, org_id String) ENGINE = MergeTree ORDER BY id",
    ] {
        clickhouse_query(url, &database, ddl).await?;
    }
    let mut buffers: std::collections::BTreeMap<&str, Vec<u8>> = Default::default();
    let flush = |table: &str, rows: &mut Vec<u8>, database: &str| {
        let sql = format!("INSERT INTO {table} FORMAT JSONEachRow\n");
        let mut body = sql.into_bytes();
        body.append(rows);
        let (url, database) = (url.to_owned(), database.to_owned());
        async move {
            let r = reqwest::Client::new()
                .post(format!("{url}/"))
                .query(&[("database", database)])
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(r.status().is_success(), "insert: {}", r.text().await?);
            Ok::<_, anyhow::Error>(())
        }
    };
    for line in BufReader::new(std::fs::File::open(file)?).lines() {
        let mut record: Value = serde_json::from_str(&line?)?;
        let object = record.as_object_mut().context("a record")?;
        let kind = object.remove("type").and_then(|t| t.as_str().map(str::to_owned)).unwrap_or_default();
        let table = match kind.as_str() {
            "run" => "public_runs",
            "session" => "public_sessions",
            "node" => "public_nodes",
            _ => {
                object.remove("id");
                let flat = object.remove("flat_data").unwrap_or(Value::Null);
                object.insert("flat_data".into(), Value::String(flat.to_string()));
                "public_node_outputs"
            }
        };
        let rows = buffers.entry(table).or_default();
        serde_json::to_writer(&mut *rows, &record)?;
        rows.write_all(b"\n")?;
        if rows.len() > 16 << 20 {
            flush(table, rows, &database).await?;
        }
    }
    for (table, mut rows) in buffers {
        if !rows.is_empty() {
            flush(table, &mut rows, &database).await?;
        }
    }
    Ok(database)
}

pub(crate) fn print_calls_results(outputs: u64, results: &[(&str, CallsFigures)]) {
    println!("\ncalls: {outputs} node outputs (with their runs and sessions) over 30 days, 3 organisations; release build");
    println!("machine reference: {:.0} M steps/s on one core", machine_reference());
    println!(
        "{:<12} {:>14} {:>14} {:>12} {:>12} {:>14} {:>16} {:>10}",
        "source",
        "ingest rows/s",
        "day report ms",
        "stored p50",
        "stored p99",
        "all-stats ms",
        "raw database",
        "overhead"
    );
    for (name, f) in results {
        let ingest = f.import_rows_per_s.map_or("-".to_owned(), |r| format!("{r:.0}"));
        let raw = f.raw_all_stats_ms.map_or("-".to_owned(), |r| format!("{r:.0} ms"));
        let overhead = f
            .raw_all_stats_ms
            .map_or("-".to_owned(), |r| format!("{:+.0} %", (f.all_stats_ms / r - 1.0) * 100.0));
        println!(
            "{:<12} {:>14} {:>14.1} {:>12.2} {:>12.2} {:>14.0} {:>16} {:>10}",
            name, ingest, f.generate_ms, f.stored_p50_ms, f.stored_p99_ms, f.all_stats_ms, raw, overhead
        );
    }
    println!(
        "targets: a stored day's report < 5 ms p99; a day's report < 100 ms on the embedded store; \
         /all-stats over 30 days < 1 s on SQLite; overhead over raw ClickHouse < 20 %"
    );
    println!(
        "raw database: the SQL Sightline sent its source during /all-stats, sent again straight to the \
         database (sqlx, or ClickHouse's HTTP interface) one statement after the other"
    );
    println!("ingest: `sightline calls import` of the sample file (every line checked, then batches of 5,000), lines/s");
}
