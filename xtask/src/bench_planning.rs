//! `cargo xtask bench planning`: 1,000 monthly series of 36 points from `sightline planning
//! sample`'s generator, the last 12 held out; `auto` (backtests included) forecasts the 12 from
//! the first 24 on one core; mean sMAPE and MASE beside seasonal naive's; and, in the same run,
//! statsforecast's AutoETS (PyPI, in a throw-away virtualenv under target/) on the same series.

use std::io::Write as _;

use sightline_planning::forecast::{self, Method};
use sightline_planning::sample::{generate, SampleSpec};

use super::*;

/// Points held out.
const HOLDOUT: usize = 12;

/// One method's figures.
pub(crate) struct MethodFigures {
    name: String,
    series_per_s: f64,
    smape: f64,
    mase: f64,
    note: String,
}

/// The series: `count` products × 36 months, as `sightline planning sample` makes them.
pub(crate) fn series(count: usize) -> Vec<(String, Vec<f64>)> {
    let sample = generate(SampleSpec {
        products: count,
        months: 36,
        until: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("a date"),
        seed: 1,
    });
    let mut out: Vec<(String, Vec<f64>)> = Vec::with_capacity(count);
    for a in &sample.actuals {
        match out.last_mut() {
            Some((sku, values)) if *sku == a.sku => values.push(a.actual_qty.to_f64()),
            _ => out.push((a.sku.clone(), vec![a.actual_qty.to_f64()])),
        }
    }
    out
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// `method` on every series on this thread: series/s and mean holdout accuracy.
pub(crate) fn ours(all: &[(String, Vec<f64>)], method: Method, name: &str) -> MethodFigures {
    let started = Instant::now();
    let mut scores = Vec::with_capacity(all.len());
    let mut chosen: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, y) in all {
        let (train, test) = y.split_at(y.len() - HOLDOUT);
        let outcome = forecast::run(method, train, HOLDOUT, 0.95).expect("a forecast");
        *chosen.entry(outcome.model.split('(').next().unwrap_or("").to_owned()).or_default() += 1;
        scores.push(forecast::accuracy(train, test, &outcome.forecast.clipped().mean));
    }
    let elapsed = started.elapsed().as_secs_f64();
    MethodFigures {
        name: name.to_owned(),
        series_per_s: all.len() as f64 / elapsed,
        smape: mean(scores.iter().map(|a| a.smape)),
        mase: mean(scores.iter().map(|a| a.mase)),
        note: chosen.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
    }
}

const PYTHON: &str = r#"
import json, sys, time, os
os.environ.setdefault("NIXTLA_NUMBA_CACHE", "1")
import numpy as np
from statsforecast.models import AutoETS
series = json.load(open(sys.argv[1]))
H = 12
def scores(train, test, f):
    m = 12 if len(train) > 12 else 1
    scale = np.mean(np.abs(train[m:] - train[:-m]))
    den = np.abs(test) + np.abs(f)
    smape = np.mean(np.where(den == 0, 0.0, 200.0 * np.abs(test - f) / np.where(den == 0, 1, den)))
    mase = np.mean(np.abs(test - f)) / scale if scale > 0 else float("nan")
    return smape, mase
# Warm the JIT on one series first, as a long-running service would be.
AutoETS(season_length=12).fit(np.array(series[0][:-H], dtype=float)).predict(h=H)
start = time.perf_counter()
out = []
for y in series:
    y = np.array(y, dtype=float)
    train, test = y[:-H], y[-H:]
    f = np.maximum(AutoETS(season_length=12).fit(train).predict(h=H)["mean"], 0.0)
    out.append(scores(train, test, f))
elapsed = time.perf_counter() - start
sm = [s for s, _ in out if np.isfinite(s)]
ma = [m for _, m in out if np.isfinite(m)]
import statsforecast
print(json.dumps({"series_per_s": len(series) / elapsed, "smape": float(np.mean(sm)), "mase": float(np.mean(ma)),
                  "version": statsforecast.__version__}))
"#;

/// statsforecast's AutoETS on the same series, in a virtualenv under `target/bench-venv`.
pub(crate) fn autoets(root: &Path, all: &[(String, Vec<f64>)]) -> anyhow::Result<MethodFigures> {
    let venv = root.join("target/bench-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("creating {} and installing statsforecast from PyPI (once)…", venv.display());
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?.success();
        anyhow::ensure!(ok, "python3 -m venv failed (apt-get install python3-venv)");
        let ok = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "statsforecast"])
            .status()?
            .success();
        anyhow::ensure!(ok, "pip install statsforecast failed");
    }
    let dir = tempdir()?;
    let data = dir.join("series.json");
    std::fs::write(&data, serde_json::to_vec(&all.iter().map(|(_, y)| y).collect::<Vec<_>>())?)?;
    let script = dir.join("autoets.py");
    std::fs::File::create(&script)?.write_all(PYTHON.as_bytes())?;
    // One core, as ours.
    let out = Command::new(&python)
        .arg(&script)
        .arg(&data)
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .env("NUMBA_NUM_THREADS", "1")
        .output()?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(out.status.success(), "AutoETS failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value =
        serde_json::from_slice(out.stdout.split(|b| *b == b'\n').rfind(|l| !l.is_empty()).unwrap_or(&[]))?;
    Ok(MethodFigures {
        name: "statsforecast AutoETS".into(),
        series_per_s: v["series_per_s"].as_f64().unwrap_or(f64::NAN),
        smape: v["smape"].as_f64().unwrap_or(f64::NAN),
        mase: v["mase"].as_f64().unwrap_or(f64::NAN),
        note: format!("statsforecast {}", v["version"].as_str().unwrap_or("?")),
    })
}

pub(crate) fn print_planning_results(count: usize, figures: &[MethodFigures], peak_rss_mb: f64) {
    println!("\nplanning: {count} monthly series of 36 points (sightline planning sample, seed 1); the last {HOLDOUT} held out, forecast from the first 24; one core");
    println!("machine reference: {:.0} M steps/s on one core", machine_reference());
    println!("{:<34} {:>10} {:>10} {:>8}  models chosen / note", "method", "series/s", "sMAPE", "MASE");
    for f in figures {
        println!("{:<34} {:>10.1} {:>10.2} {:>8.3}  {}", f.name, f.series_per_s, f.smape, f.mase, f.note);
    }
    println!("peak RSS of this process: {peak_rss_mb:.0} MB");
    println!("targets: auto's mean MASE at or below AutoETS's and below seasonal naive's; series/s at least AutoETS's");
    println!(
        "sMAPE: percent, 0–200 (M4); MASE: scaled by the in-sample seasonal naive's mean absolute error"
    );
}

/// Paginated listings on a server holding `plans` demand plans (500 products × months),
/// 1,500 stock positions: p50/p99 at a fixed rate, `/health` beside them.
pub(crate) async fn listings(
    bin: &Path,
    root: &Path,
    dir: &Path,
    url: &str,
    plans: usize,
) -> anyhow::Result<Vec<(String, Latencies)>> {
    let server = start_server(bin, root, dir, url)?;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "admin", "password": BENCH_ADMIN_PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"].as_str().context("admin did not sign in")?.to_owned();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    let client = reqwest::Client::builder().default_headers(headers).pool_max_idle_per_host(32).build()?;
    let products = 500usize;
    let items: Vec<Value> = (0..products)
        .map(|p| json!({"sku": format!("B-{p:04}"), "name": format!("Bench {p}"), "unit_cost": 2.5}))
        .collect();
    let r = client
        .post(format!("{}/api/v1/integrations/erp/products/sync", server.base))
        .json(&json!({"meta": {"source_system": "bench"}, "items": items}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "product sync answered {}", r.status());
    let stock: Vec<Value> = (0..products)
        .flat_map(|p| ["Main", "East", "West"].map(|l| json!({"sku": format!("B-{p:04}"), "location": l, "on_hand_qty": 100 + p, "reorder_point": 150})))
        .collect();
    let r = client
        .post(format!("{}/api/v1/integrations/erp/inventory/sync", server.base))
        .json(&json!({"meta": {"source_system": "bench"}, "items": stock}))
        .send()
        .await?;
    anyhow::ensure!(r.status() == 200, "inventory sync answered {}", r.status());
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..16)
        .map(|_| {
            let (client, base, next) = (client.clone(), server.base.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= plans {
                        return anyhow::Ok(());
                    }
                    let (product, month) = (i % products + 1, i / products);
                    let period = format!("{}-{:02}-01", 2020 + month / 12, month % 12 + 1);
                    let r = client
                        .post(format!("{base}/api/v1/demand/plans"))
                        .json(&json!({"product_id": product, "period": period, "forecast_qty": 100 + i % 50}))
                        .send()
                        .await?;
                    anyhow::ensure!(r.status() == 201, "plan {i}: {}", r.status());
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    eprintln!("created {plans} demand plans in {:.1} s", started.elapsed().as_secs_f64());
    if url.starts_with("postgres") {
        // What autovacuum does a little after a bulk load: statistics and the visibility map,
        // so the measurement sees the steady state rather than the minute after the load.
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query("VACUUM ANALYZE").execute(&mut conn).await?;
        conn.close().await?;
    }
    let pages = |path: &str, count: usize| -> Vec<String> {
        (0..200).map(|i| path.replace("{page}", &((i * 37) % count + 1).to_string())).collect()
    };
    let plan_pages = plans.div_ceil(20);
    let mut out = Vec::new();
    for (name, paths) in [
        (
            "GET /api/v1/demand/plans (page of 20)",
            pages("/api/v1/demand/plans?page={page}&page_size=20", plan_pages),
        ),
        (
            "GET /api/v1/demand/plans?product_id&status",
            pages("/api/v1/demand/plans?product_id={page}&status=draft", products),
        ),
        (
            "GET /api/v1/products (page of 20)",
            pages("/api/v1/products?page={page}&page_size=20", products / 20),
        ),
        (
            "GET /api/v1/inventory (page of 20)",
            pages("/api/v1/inventory?page={page}&page_size=20", products * 3 / 20),
        ),
        ("  reference: GET /health", vec!["/health".to_owned()]),
    ] {
        out.push((name.to_owned(), at_rate(&client, &server.base, &paths, 200, 5).await?));
    }
    Ok(out)
}

pub(crate) fn print_listings(backend: &str, plans: usize, rows: &[(String, Latencies)]) {
    println!("\nplanning listings on {backend}: {plans} demand plans, 500 products, 1,500 positions; 200 requests a second for 5 s, signed in");
    println!("{:<46} {:>10} {:>10} {:>10}", "request", "requests", "p50 ms", "p99 ms");
    for (name, l) in rows {
        println!("{name:<46} {:>10} {:>10.3} {:>10.3}", l.requests, l.p50_ms, l.p99_ms);
    }
    println!("target: p99 of the paginated listings under 5 ms with 10,000 plans (PostgreSQL: after VACUUM ANALYZE, as autovacuum does after a load)");
}
