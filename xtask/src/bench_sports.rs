//! `cargo xtask bench sports`: against the stats.nba.com stand-in (`sightline sports stand-in`),
//! a full season ingested (`sports sync --season`) and its points dataset built, on SQLite and
//! PostgreSQL; then `/player_summary` served from the cache (memory, then Redis), on misses with
//! the stand-in answering in 50 ms, and while the stand-in hangs. Beside each figure, the same
//! work without Sightline: the stand-in's own answer time, the database reading the dataset's
//! rows, Redis answering a GET of a cached summary, the server's `/health`.

use super::*;

/// The season measured, and the stand-in's "today" (the season over).
const SEASON: &str = "2024-25";
const STAND_IN_TODAY: &str = "2025-07-01";
/// The budget a `/player_summary` request gets in the hang phase.
const BUDGET_SECS: u64 = 4;
/// Concurrent clients in the saturated phases.
const CONCURRENCY: usize = 8;
/// Offered requests a second in the fixed-rate phases.
const FIXED_RATE: u64 = 1_000;

/// The season's ingestion and the dataset on one backend.
pub(crate) struct SeasonFigures {
    player_rows: u64,
    sync_s: f64,
    dataset_rows: u64,
    dataset_s: f64,
    /// The dataset's rows read straight from the database.
    raw_read_s: f64,
}

/// The stand-in's process and its base URL (`http://ADDR`).
pub(crate) struct StandInProcess {
    child: Child,
    pub(crate) base: String,
}

impl Drop for StandInProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl StandInProcess {
    pub(crate) fn start(bin: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(bin)
            .args(["sports", "stand-in", "--bind", "127.0.0.1:0", "--today", STAND_IN_TODAY])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let line = lines.next().context("the stand-in said nothing")??;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .context("the stand-in did not say where it listens")?
            .to_owned();
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Self { child, base: format!("http://{addr}") })
    }

    async fn mode(&self, http: &reqwest::Client, mode: &str, latency_ms: u64) -> anyhow::Result<()> {
        let r = http
            .post(format!("{}/standin/mode", self.base))
            .json(&json!({"mode": mode, "latency_ms": latency_ms}))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "the stand-in refused mode {mode}");
        Ok(())
    }
}

fn sports_env<'a>(stand_in: &StandInProcess, command: &'a mut Command) -> &'a mut Command {
    command
        .env("NBA_STATS_BASE_URL", format!("{}/stats", stand_in.base))
        // No pacing: the bench measures Sightline, not the original's 20 a minute.
        .env("NBA_API_MAX_RPM", "1000000")
        .env("NBA_API_TIMEOUT", (BUDGET_SECS / 2).to_string())
        .env("SIGHTLINE_SPORTS__NBA_API_BUDGET_SECS", BUDGET_SECS.to_string())
        .env("NBA_DEFAULT_SEASON", SEASON)
}

/// Runs `sightline sports …args` on `dir`/`url` and answers its JSON output and wall time.
fn sports_command(
    bin: &Path,
    stand_in: &StandInProcess,
    dir: &Path,
    url: &str,
    args: &[&str],
) -> anyhow::Result<(Value, f64)> {
    let started = Instant::now();
    let mut command = Command::new(bin);
    command.arg("--data-dir").arg(dir).arg("sports").args(args);
    let out = sports_env(stand_in, &mut command)
        .env("DATABASE_URL", url)
        .env("SIGHTLINE_LOG_LEVEL", "warn")
        .stderr(Stdio::inherit())
        .output()?;
    let elapsed = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("sightline sports {} failed", args.join(" "));
    }
    Ok((serde_json::from_slice(&out.stdout).context("sports command output")?, elapsed))
}

/// The season's ingestion and its dataset on `url`.
pub(crate) async fn bench_season(
    bin: &Path,
    stand_in: &StandInProcess,
    dir: &Path,
    url: &str,
) -> anyhow::Result<SeasonFigures> {
    let (sync, sync_s) = sports_command(bin, stand_in, dir, url, &["sync", "--season", SEASON])?;
    let out = dir.join("datasets");
    let out_arg = out.display().to_string();
    let (meta, dataset_s) = sports_command(
        bin,
        stand_in,
        dir,
        url,
        &["dataset", "--stat", "points", "--min-games", "20", "--out", &out_arg],
    )?;
    let _ = std::fs::remove_dir_all(&out);
    // The same rows, read straight from the database (the dataset's first step).
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url).await?;
    let started = Instant::now();
    let rows = sqlx::query(
        "SELECT ps.player_id, p.name, ps.game_id, g.game_date, g.season, ps.team, g.home_team, g.away_team, \
         CAST(g.home_score AS DOUBLE PRECISION) AS home_score, CAST(g.away_score AS DOUBLE PRECISION) AS away_score, \
         ps.points AS value FROM sports_player_stats ps JOIN sports_games g ON g.id = ps.game_id \
         JOIN sports_players p ON p.id = ps.player_id",
    )
    .fetch_all(&mut conn)
    .await?;
    let raw_read_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(!rows.is_empty(), "nothing was ingested");
    Ok(SeasonFigures {
        player_rows: sync["player_rows"].as_u64().unwrap_or(0),
        sync_s,
        dataset_rows: meta["rows"].as_u64().unwrap_or(0),
        dataset_s,
        raw_read_s,
    })
}

/// Requests `paths` (relative to `base`) from `CONCURRENCY` clients, each request once, in
/// order; answers the latencies. Every answer must be a 200.
async fn each_once(http: &reqwest::Client, base: &str, paths: Vec<String>) -> anyhow::Result<Latencies> {
    let paths = Arc::new(paths);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, base, paths, next) = (http.clone(), base.to_owned(), paths.clone(), next.clone());
            tokio::spawn(async move {
                let mut ms = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = paths.get(i) else { break };
                    let t = Instant::now();
                    let r = http.get(format!("{base}{path}")).send().await?;
                    let status = r.status();
                    r.bytes().await?;
                    anyhow::ensure!(status == 200, "{path} answered {status}");
                    ms.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                anyhow::Ok(ms)
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    Ok(Latencies::of(all, started.elapsed()))
}

/// `rounds` passes over `paths`.
fn rounds(paths: &[String], rounds: usize) -> Vec<String> {
    (0..rounds).flat_map(|_| paths.iter().cloned()).collect()
}

/// Every phase of `/player_summary` on one cache backend.
pub(crate) struct SummaryFigures {
    /// At `FIXED_RATE`.
    hits: Latencies,
    health: Latencies,
    /// As fast as `CONCURRENCY` clients go.
    hits_saturated: Latencies,
    health_saturated: Latencies,
    /// Redis's own GET of a cached summary (Redis backend only).
    redis_get: Option<Latencies>,
    misses: Option<Latencies>,
    /// The stand-in answering a player's game log itself, at 50 ms.
    upstream: Option<Latencies>,
    hang_s: Option<f64>,
}

/// `/player_summary` on a server over `dir` (the season ingested there): cache hits, then
/// (with `misses`) misses at 50 ms upstream and one request while upstream hangs.
pub(crate) async fn bench_summary(
    bin: &Path,
    root: &Path,
    dir: &Path,
    stand_in: &StandInProcess,
    redis_url: Option<&str>,
    misses: bool,
) -> anyhow::Result<SummaryFigures> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY * 2).build()?;
    stand_in.mode(&http, "normal", 0).await?;
    let url = format!("sqlite://{}/bench.db?mode=rwc", dir.display());
    let env: Vec<(&str, Option<String>)> = vec![
        ("NBA_STATS_BASE_URL", Some(format!("{}/stats", stand_in.base))),
        ("NBA_API_MAX_RPM", Some("1000000".into())),
        ("NBA_API_TIMEOUT", Some((BUDGET_SECS / 2).to_string())),
        ("SIGHTLINE_SPORTS__NBA_API_BUDGET_SECS", Some(BUDGET_SECS.to_string())),
        ("NBA_DEFAULT_SEASON", Some(SEASON.into())),
        ("REDIS_URL", redis_url.map(str::to_owned)),
    ];
    let server = start_server_with(bin, root, dir, &url, &env)?;
    let client = sports_client(&server.base).await?;

    // The league's players, from the stand-in's player list.
    let all: Value = http
        .get(format!(
            "{}/stats/commonallplayers?IsOnlyCurrentSeason=1&LeagueID=00&Season={SEASON}",
            stand_in.base
        ))
        .send()
        .await?
        .json()
        .await?;
    let set = &all["resultSets"][0];
    let name_at = set["headers"]
        .as_array()
        .and_then(|h| h.iter().position(|c| c == "DISPLAY_FIRST_LAST"))
        .context("no DISPLAY_FIRST_LAST")?;
    let id_at = set["headers"]
        .as_array()
        .and_then(|h| h.iter().position(|c| c == "PERSON_ID"))
        .context("no PERSON_ID")?;
    let players: Vec<(String, i64)> = set["rowSet"]
        .as_array()
        .context("no players")?
        .iter()
        .filter_map(|r| Some((r[name_at].as_str()?.to_owned(), r[id_at].as_i64()?)))
        .collect();
    anyhow::ensure!(players.len() >= 300, "the stand-in has {} players", players.len());
    let path = |name: &str| format!("/player_summary?player={}&stat=points", urlencode(name));
    let (hot, cold) = players.split_at(50);
    let hot_paths: Vec<String> = hot.iter().map(|(n, _)| path(n)).collect();

    // Warm, then hits.
    each_once(&client, &server.base, hot_paths.clone()).await?;
    let hits_saturated = each_once(&client, &server.base, rounds(&hot_paths, 400)).await?;
    let health_saturated = each_once(&client, &server.base, rounds(&["/health".to_owned()], 20_000)).await?;
    let hits = at_rate(&client, &server.base, &hot_paths, FIXED_RATE, 5).await?;
    let health = at_rate(&client, &server.base, &["/health".to_owned()], FIXED_RATE, 5).await?;

    let redis_get = match redis_url {
        Some(redis) => Some(redis_gets(redis, 20_000).await?),
        None => None,
    };

    let (mut miss, mut upstream, mut hang_s) = (None, None, None);
    if misses {
        stand_in.mode(&http, "normal", 50).await?;
        let (cold, spare) = cold.split_at(cold.len() - 5);
        miss = Some(each_once(&client, &server.base, cold.iter().map(|(n, _)| path(n)).collect()).await?);
        let logs: Vec<String> = cold
            .iter()
            .take(200)
            .map(|(_, id)| {
                format!("/stats/playergamelog?PlayerID={id}&Season={SEASON}&SeasonType=Regular+Season")
            })
            .collect();
        upstream = Some(each_once(&http, &stand_in.base, logs).await?);
        stand_in.mode(&http, "hang", 0).await?;
        let started = Instant::now();
        let r = client.get(format!("{}{}", server.base, path(&spare[0].0))).send().await?;
        hang_s = Some(started.elapsed().as_secs_f64());
        let status = r.status();
        let body = r.text().await?;
        eprintln!("while the stand-in hangs: {status} {}", body.chars().take(200).collect::<String>());
        stand_in.mode(&http, "normal", 0).await?;
    }
    Ok(SummaryFigures {
        hits,
        health,
        hits_saturated,
        health_saturated,
        redis_get,
        misses: miss,
        upstream,
        hang_s,
    })
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A client with an API key allowed to read sports data.
async fn sports_client(base: &str) -> anyhow::Result<reqwest::Client> {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": BENCH_ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("admin did not sign in")?;
    let created: Value = http
        .post(format!("{base}/api/v1/auth/api-keys"))
        .bearer_auth(token)
        .json(&json!({"name": "bench", "permissions": ["sports:read"]}))
        .send()
        .await?
        .json()
        .await?;
    let key = created["key"].as_str().context("API key not created")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {key}").parse()?);
    Ok(reqwest::Client::builder().default_headers(headers).pool_max_idle_per_host(CONCURRENCY * 2).build()?)
}

/// Redis answering `count` GETs of a cached summary from `CONCURRENCY` connections.
async fn redis_gets(url: &str, count: usize) -> anyhow::Result<Latencies> {
    let client = redis::Client::open(url)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS").arg("*player_summary:*").query_async(&mut conn).await?;
    let key = keys.into_iter().find(|k| !k.contains("stale:")).context("no cached summary in Redis")?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (mut conn, key, next) =
            (client.get_multiplexed_async_connection().await?, key.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut ms = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let t = Instant::now();
                let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(&mut conn).await?;
                anyhow::ensure!(value.is_some(), "the cached summary went away");
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(ms)
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await??);
    }
    Ok(Latencies::of(all, started.elapsed()))
}

pub(crate) fn print_sports_results(
    seasons: &[(&str, SeasonFigures)],
    memory: &SummaryFigures,
    redis: Option<&SummaryFigures>,
) {
    println!(
        "\nsports: against the stats.nba.com stand-in, season {SEASON}; release build, {CONCURRENCY} clients"
    );
    println!("machine reference: {:.0} M steps/s on one core", machine_reference());
    println!(
        "{:<10} {:>12} {:>10} {:>12} {:>12} {:>10} {:>12} {:>14} {:>12}",
        "backend",
        "player rows",
        "sync s",
        "rows/s",
        "dataset rows",
        "dataset s",
        "rows/s",
        "raw read s",
        "season+data"
    );
    for (name, f) in seasons {
        println!(
            "{:<10} {:>12} {:>10.2} {:>12.0} {:>12} {:>10.2} {:>12.0} {:>14.3} {:>11.1}s",
            name,
            f.player_rows,
            f.sync_s,
            f.player_rows as f64 / f.sync_s,
            f.dataset_rows,
            f.dataset_s,
            f.dataset_rows as f64 / f.dataset_s,
            f.raw_read_s,
            f.sync_s + f.dataset_s
        );
    }
    println!("target: a season's ingestion plus its dataset < 30 s (times include starting the command)");
    println!(
        "\n/player_summary{:<30} {:>10} {:>10} {:>10} {:>10}",
        "", "requests", "req/s", "p50 ms", "p99 ms"
    );
    let row = |label: &str, l: &Latencies| {
        println!("{label:<45} {:>10} {:>10.0} {:>10.3} {:>10.3}", l.requests, l.per_s, l.p50_ms, l.p99_ms);
    };
    println!("at {FIXED_RATE} requests a second (open loop):");
    row("cache hit, memory", &memory.hits);
    row("  reference: GET /health, same server", &memory.health);
    if let Some(r) = redis {
        row("cache hit, Redis", &r.hits);
        row("  reference: GET /health, same server", &r.health);
    }
    println!("as fast as {CONCURRENCY} clients go (client and server share the 2 cores):");
    row("cache hit, memory", &memory.hits_saturated);
    row("  reference: GET /health, same server", &memory.health_saturated);
    if let Some(r) = redis {
        row("cache hit, Redis", &r.hits_saturated);
        row("  reference: GET /health, same server", &r.health_saturated);
        if let Some(g) = &r.redis_get {
            row("  reference: Redis GET of a cached summary", g);
        }
    }
    if let Some(m) = &memory.misses {
        row("cache miss, stand-in answering in 50 ms", m);
    }
    if let Some(u) = &memory.upstream {
        row("  reference: the stand-in's game log itself", u);
    }
    if let Some(h) = memory.hang_s {
        println!(
            "{:<45} {:>10} {:>10} {:>10.0} {:>10}",
            "while the stand-in hangs (one request)",
            1,
            "-",
            h * 1000.0,
            "-"
        );
        println!("  configured budget: {} ms", BUDGET_SECS * 1000);
    }
    println!("target: cache-hit p99 < 2 ms (at the fixed rate; /player_summary checks its API key in the database, /health has no key)");
}
