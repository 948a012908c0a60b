//! The sports module over HTTP against the stats.nba.com stand-in: player summaries, the shared
//! cache (one upstream call for concurrent misses, stale copies while upstream fails), and a
//! stats.nba.com that hangs, throttles, fails or answers HTML: every answer within its budget,
//! as a clear 502/503/504.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::{json, Value};
use sightline_platform::testing::TestApp;
use sightline_platform::Backend;
use sightline_sports::standin::{Control, Mode, StandIn};
use sightline_sports::SportsModule;

mod context;
mod ingest;

/// The stand-in lives after the 2024-25 regular season.
fn standin() -> StandIn {
    StandIn::new(NaiveDate::from_ymd_opt(2025, 6, 1).unwrap())
}

/// The server against `standin`: 1 s per attempt, 3 s per call, quick retries.
async fn spawn(standin: &StandIn) -> TestApp {
    spawn_with(standin, &[]).await
}

/// The same, with more settings.
async fn spawn_with(standin: &StandIn, more: &[(&str, Value)]) -> TestApp {
    let base = standin.spawn().await.unwrap();
    let mut overrides = vec![
        ("sports.nba_stats_base_url", json!(format!("{base}/stats"))),
        ("sports.nba_api_max_rpm", json!(6000)),
        ("sports.nba_api_timeout_secs", json!(1)),
        ("sports.nba_api_budget_secs", json!(3)),
        ("outbound.nba_stats.backoff_base_ms", json!(50)),
        ("outbound.nba_stats.backoff_max_ms", json!(200)),
        ("outbound.nba_stats.breaker_failures", json!(20)),
        ("sports.default_season", json!("2024-25")),
    ];
    overrides.extend(more.iter().cloned());
    TestApp::spawn(Backend::Sqlite, vec![Arc::new(SportsModule)], &overrides).await
}

fn summary_url(player: &str, extra: &str) -> String {
    format!("/player_summary?player={}&season=2024-25{extra}", player.replace(' ', "%20"))
}

async fn get(app: &TestApp, path: &str) -> (u16, Value, Option<String>) {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), retry_after)
}

#[tokio::test]
async fn a_summary_has_the_originals_figures_and_the_true_season_average() {
    let standin = standin();
    let app = spawn(&standin).await;
    let (status, s, _) = get(&app, &summary_url("lebron james", "&limit=5&debug=1")).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["player"].as_str(), s["league"].as_str(), s["playerId"].as_i64()),
        (Some("lebron james"), Some("nba"), Some(2544))
    );
    let games = s["recentGames"].as_array().unwrap();
    assert_eq!(games.len(), 5);
    let values: Vec<f64> = games.iter().map(|g| g["statValue"].as_f64().unwrap()).collect();
    let mean = (values.iter().sum::<f64>() / 5.0 * 100.0).round() / 100.0;
    assert_eq!(s["seasonAvg"].as_f64(), Some(mean), "the original's figure: the recent games' mean");
    let shown: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
    assert_eq!(s["recent"], format!("Last 5 games points: {}", shown.join(", ")));
    assert_eq!(games[0]["raw"]["PTS"].as_f64(), Some(values[0]));
    assert_eq!(s["lastGameDate"], games[0]["gameDate"]);
    // The real season average is over every game, straight from the stand-in's log.
    let log: Value =
        reqwest::get(format!("{}/stats/playergamelog?PlayerID=2544&Season=2024-25", standin_base(&app)))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let rows = log["resultSets"][0]["rowSet"].as_array().unwrap();
    let pts: Vec<f64> = rows.iter().map(|r| r[24].as_f64().unwrap()).collect();
    assert_eq!(s["seasonGames"].as_u64(), Some(pts.len() as u64));
    assert!(pts.len() > 50, "{} games", pts.len());
    let full = (pts.iter().sum::<f64>() / pts.len() as f64 * 100.0).round() / 100.0;
    assert_eq!(s["fullSeasonAvg"].as_f64(), Some(full));
    // Rest: the days between the two latest games, less one.
    let date = |v: &Value| NaiveDate::parse_from_str(&title_case(v.as_str().unwrap()), "%b %d, %Y").unwrap();
    let rest = (date(&games[0]["gameDate"]) - date(&games[1]["gameDate"])).num_days() - 1;
    assert_eq!(s["contextualFactors"], json!({"daysRest": rest, "isBackToBack": rest == 0}));
    assert_eq!(
        s["debug"],
        json!({"player_query": "lebron james", "found_player_id": 2544, "recent_count": 5})
    );
    assert_eq!(s["cached"], false);

    // Accents, case, punctuation and suffixes do not matter; another stat; a name nobody has.
    let (status, jokic, _) = get(&app, &summary_url("NIKOLA JOKIC", "&stat=rebounds")).await;
    assert_eq!((status, jokic["playerId"].as_i64()), (200, Some(203999)), "{jokic}");
    assert_eq!(jokic["recentGames"][0]["statValue"], jokic["recentGames"][0]["raw"]["REB"]);
    let (status, jaren, _) = get(&app, &summary_url("jaren jackson", "")).await;
    assert_eq!((status, jaren["playerId"].as_i64()), (200, Some(1628991)));
    let (status, body, _) = get(&app, &summary_url("Nobody Atall", "")).await;
    assert_eq!((status, body["error"]["message"].as_str()), (404, Some("player not found")), "{body}");
    let (status, body, _) = get(&app, &summary_url("lebron james", "&limit=0")).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("limit")));
    let (status, body, _) = get(&app, "/player_summary?player=lebron&season=2024-26").await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("season")));
    // A season before his career: no games, and his seasons from the career log.
    let (status, none, _) = get(&app, "/player_summary?player=lebron%20james&season=2019-20").await;
    assert_eq!(status, 200, "{none}");
    assert_eq!((none["noGamesThisSeason"].as_bool(), none["recent"].as_str()), (Some(true), None), "{none}");
    assert_eq!(
        (none["lastSeason"].as_str(), none["latestSeason"].as_str()),
        (Some("2021-22"), Some("2024-25"))
    );
}

fn title_case(s: &str) -> String {
    s.chars().enumerate().map(|(i, c)| if i == 0 { c } else { c.to_ascii_lowercase() }).collect()
}

/// The stand-in's base URL, from the configured client.
fn standin_base(app: &TestApp) -> String {
    let section = app.platform.config.module_section::<Value>("sports").unwrap();
    section["nba_stats_base_url"].as_str().unwrap().trim_end_matches("/stats").to_owned()
}

#[tokio::test]
async fn concurrent_misses_make_one_upstream_call_and_hits_say_cached() {
    let standin = standin();
    let app = spawn(&standin).await;
    let requests = futures_join(&app, &summary_url("stephen curry", ""), 10).await;
    assert!(requests.iter().all(|(status, _)| *status == 200));
    assert_eq!(standin.requests().get("playergamelog"), Some(&1), "{:?}", standin.requests());
    assert_eq!(standin.requests().get("commonallplayers"), Some(&1), "the player list too");
    let cached = requests.iter().filter(|(_, s)| s["cached"] == true).count();
    assert_eq!(cached, 9, "all but the one that loaded it");
    let (_, again, _) = get(&app, &summary_url("stephen curry", "")).await;
    assert_eq!(again["cached"], true);
    assert_eq!(standin.requests().get("playergamelog"), Some(&1));
}

async fn futures_join(app: &TestApp, path: &str, n: usize) -> Vec<(u16, Value)> {
    let calls = (0..n).map(|_| {
        let request = app.client.get(app.url(path));
        async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_failing_stats_nba_com_is_a_clear_error_within_the_budget_or_a_stale_copy() {
    let standin = standin();
    let app = spawn(&standin).await;
    // Warm the player list and one summary.
    assert_eq!(get(&app, &summary_url("lebron james", "")).await.0, 200);

    // Hanging: the call gives up at its 3 s budget: 504 with Retry-After.
    standin.set(Control { mode: Mode::Hang, ..Control::default() });
    let started = Instant::now();
    let (status, body, retry_after) = get(&app, &summary_url("stephen curry", "")).await;
    let took = started.elapsed();
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("upstream_timeout")), "{body}");
    assert!(retry_after.is_some());
    assert!(took >= Duration::from_millis(2_900) && took < Duration::from_millis(4_000), "took {took:?}");

    // Failing with 500, or answering an HTML block page: retried, then 502.
    for (mode, code) in [(Mode::Error, "upstream_error"), (Mode::NotJson, "upstream_bad_response")] {
        standin.set(Control { mode, ..Control::default() });
        let before = standin.requests().get("playergamelog").copied().unwrap_or(0);
        let (status, body, _) = get(&app, &summary_url("jayson tatum", "")).await;
        assert_eq!((status, body["error"]["code"].as_str()), (502, Some(code)), "{mode:?}: {body}");
        let tries = standin.requests().get("playergamelog").copied().unwrap_or(0) - before;
        assert!(tries >= 2, "{mode:?} was retried: {tries} tries");
    }

    // A summary seen before is served from its stale copy, marked so.
    app.platform.cache.delete("player_summary:lebron james:points:8:2024-25").await;
    standin.set(Control { mode: Mode::Error, ..Control::default() });
    let (status, stale, _) = get(&app, &summary_url("lebron james", "")).await;
    assert_eq!((status, &stale["stale"], &stale["cached"]), (200, &json!(true), &json!(true)), "{stale}");
}

#[tokio::test]
async fn throttling_is_a_503_and_repeated_failures_open_the_breaker() {
    let standin = standin();
    let app = spawn(&standin).await;
    assert_eq!(get(&app, &summary_url("lebron james", "")).await.0, 200);
    standin.set(Control { mode: Mode::Throttle, ..Control::default() });
    let (status, body, retry_after) = get(&app, &summary_url("devin booker", "")).await;
    // 429 with Retry-After: 1 each time: the retries wait it out, then the call gives up.
    assert!(matches!(status, 503 | 504), "{status} {body}");
    assert!(retry_after.is_some());
    // The breaker opens after 20 failed attempts (4 a call): calls fail at once without
    // reaching upstream.
    standin.set(Control { mode: Mode::Error, ..Control::default() });
    for _ in 0..6 {
        get(&app, &summary_url("jalen brunson", "")).await;
    }
    let before = standin.requests().values().sum::<u64>();
    let started = Instant::now();
    let (status, body, _) = get(&app, &summary_url("victor wembanyama", "")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("upstream_unavailable")), "{body}");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(standin.requests().values().sum::<u64>(), before, "nothing sent while open");
}

#[tokio::test]
async fn summaries_need_a_signed_in_reader() {
    let standin = standin();
    let app = spawn(&standin).await;
    let r = reqwest::get(app.url(&summary_url("lebron james", ""))).await.unwrap();
    assert_eq!(r.status(), 401);
    let key = app.api_key(&["sports:read"]).await;
    let r = app.client_with(&key).get(app.url(&summary_url("lebron james", ""))).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
