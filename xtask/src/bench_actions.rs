//! `cargo xtask bench actions`: calculation events, NBA reads and decisions under concurrent load.

use super::*;
pub(crate) struct Params {
    pub(crate) events: usize,
    pub(crate) concurrency: usize,
    pub(crate) get_rate: u64,
    pub(crate) get_seconds: u64,
}

pub(crate) struct Figures {
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

pub(crate) async fn bench_actions(
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
pub(crate) async fn bench_decisions(
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

pub(crate) fn print_results(p: &Params, results: &[(&str, Figures)]) {
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
