//! The daily ingestion against the stand-in, on SQLite and PostgreSQL: raw records audited,
//! validation findings, records missing a required field dropped, the rest stored once, and a
//! signed alert delivered (retried after a 503) to a local receiver that checks every signature
//! in constant time.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use sightline_platform::testing::TestApp;
use sightline_platform::webhooks::{signing_key, verify_hmac_hex, verify_standard};
use sightline_platform::Backend;
use sightline_sports::standin::{Control, StandIn};
use sightline_sports::SportsModule;
use sqlx::Row as _;

const SIGNING: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A request the receiver got: its headers and body.
type Received = (HeaderMap, Vec<u8>);

/// A webhook receiver: answers 503 to the first request and 200 after, keeping each request.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn spawn(&self) -> String {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let me = me.clone();
                async move {
                    let mut seen = me.seen.lock().unwrap();
                    seen.push((headers, body.to_vec()));
                    if seen.len() == 1 {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get::<i64, _>(0)
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(20), "waited too long for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn runs(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/ingest/runs").await.1["runs"].as_array().cloned().unwrap_or_default()
}

async fn sync(app: &TestApp, body: Value) -> Value {
    let before = runs(app).await.len();
    let (status, queued) = app.post_json("/api/ingest/run", &body).await;
    assert_eq!(status, 202, "{queued}");
    let started = Instant::now();
    loop {
        let all = runs(app).await;
        if all.len() > before && all[0]["status"] != "running" {
            return all[0].clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the sync did not finish: {all:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_days_sync_is_audited_validated_stored_once_and_its_alert_signed(backend: Backend) {
    let standin = StandIn::new(chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap());
    standin.set(Control { blank_fields: vec!["PLAYER_NAME".into()], ..Control::default() });
    let base = standin.spawn().await.unwrap();
    let receiver = Receiver::default();
    let hook = receiver.spawn().await;
    let audit = tempfile::tempdir().unwrap();
    let overrides = [
        ("sports.nba_stats_base_url", json!(format!("{base}/stats"))),
        ("sports.nba_api_max_rpm", json!(6000)),
        ("sports.ingest_audit_dir", json!(audit.path())),
        ("sports.ingest_critical_fields", json!(["game_date", "home_team", "away_team", "player_name"])),
        ("sports.ingest_alert_webhook", json!(hook)),
        ("sports.ingest_alert_secret", json!("shared s3cret")),
        ("sports.ingest_alert_hmac_secret", json!("hmac key")),
        ("sports.ingest_alert_signing_secret", json!(SIGNING)),
        ("sports.ingest_alert_backoff_secs", json!(0.05)),
        ("sports.sync_enabled", json!(false)),
    ];
    let app = TestApp::spawn(backend, vec![Arc::new(SportsModule)], &overrides).await;

    let run = sync(&app, json!({"date": "2025-01-15"})).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let summary = &run["summary"];
    let lines: Value = reqwest::get(format!(
        "{base}/stats/leaguegamelog?PlayerOrTeam=P&Season=2024-25&DateFrom=01/15/2025&DateTo=01/15/2025"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let all_lines = lines["resultSets"][0]["rowSet"].as_array().unwrap().len() as i64;
    assert!(all_lines > 20, "{all_lines} lines that day");
    assert_eq!(summary["validation"]["missing"], json!([[0, ["player_name"]]]), "{summary}");
    assert_eq!(summary["validation"]["type_errors"], json!([]));
    assert_eq!(
        (summary["filtered_out_count"].as_i64(), summary["player_rows"].as_i64()),
        (Some(1), Some(all_lines - 1))
    );
    let games = count(&app, "sports_games").await;
    assert!(games >= 2 && summary["team_rows"].as_i64() == Some(games * 2), "{games} games: {summary}");
    assert_eq!(count(&app, "sports_player_stats").await, all_lines - 1);
    let audit_file = summary["audit_path"].as_str().unwrap();
    assert!(audit_file.ends_with("games_raw_2025-01-15.json"), "{audit_file}");
    let audited = std::fs::read_to_string(audit_file).unwrap().lines().count() as i64;
    assert_eq!(audited, all_lines + games * 2, "every raw row, team and player");

    // The alert: refused once (503), delivered on the retry, both signed; the same id both times.
    wait_for("two alert attempts", || receiver.seen().len() >= 2).await;
    let seen = receiver.seen();
    let id = seen[0].0["webhook-id"].to_str().unwrap().to_owned();
    for (headers, body) in &seen {
        let alert: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            (alert["when"].as_str(), alert["missing_count"].as_i64(), alert["type_error_count"].as_i64()),
            (Some("2025-01-15"), Some(1), Some(0))
        );
        assert_eq!(headers["webhook-id"].to_str().unwrap(), id);
        assert_eq!(headers["x-ingest-secret"], "shared s3cret");
        assert!(verify_hmac_hex(b"hmac key", body, headers["x-ingest-signature"].to_str().unwrap()));
        let timestamp: i64 = headers["webhook-timestamp"].to_str().unwrap().parse().unwrap();
        let signature = headers["webhook-signature"].to_str().unwrap();
        assert!(verify_standard(
            &signing_key(SIGNING),
            &id,
            timestamp,
            body,
            signature,
            Duration::from_secs(300)
        ));
        assert!(!verify_standard(
            &signing_key(SIGNING),
            "msg_other",
            timestamp,
            body,
            signature,
            Duration::from_secs(300)
        ));
    }
    let started = Instant::now();
    let delivery = loop {
        let (_, alerts) = app.get_json("/api/ingest/alerts").await;
        let first = alerts["deliveries"][0].clone();
        if first["state"] == "delivered" {
            break first;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "not delivered: {alerts}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (delivery["id"].as_str(), delivery["attempts"].as_i64()),
        (Some(id.as_str()), Some(2)),
        "{delivery}"
    );
    let statuses: Vec<Option<i64>> =
        delivery["attempt_log"].as_array().unwrap().iter().map(|a| a["status"].as_i64()).collect();
    assert_eq!(statuses, vec![Some(503), Some(200)]);
    assert_eq!(run["alert_delivery_id"].as_str(), Some(id.as_str()));

    // The same day again changes nothing stored; a dry run stores nothing and alerts nobody.
    let again = sync(&app, json!({"date": "2025-01-15"})).await;
    assert_eq!(again["summary"]["player_rows"], summary["player_rows"]);
    assert_eq!(
        (count(&app, "sports_games").await, count(&app, "sports_player_stats").await),
        (games, all_lines - 1)
    );
    let dry = sync(&app, json!({"date": "2025-01-16", "dry_run": true})).await;
    assert_eq!(
        (dry["summary"]["dry_run"].as_bool(), dry["alert_delivery_id"].as_str()),
        (Some(true), None),
        "{dry}"
    );
    assert_eq!(count(&app, "sports_games").await, games, "nothing of the dry run stored");
    let (status, body) = app.post_json("/api/ingest/run", &json!({"date": "15/01/2025"})).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("date")));
    assert_eq!(runs(&app).await.len(), 3);
}

/// Weeks of games synced, then a dataset built from them: Parquet and CSV of the same samples,
/// each split present, and the same data giving the same version.
async fn a_dataset_is_built_from_the_stored_games(backend: Backend) {
    let standin = StandIn::new(chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap());
    let base = standin.spawn().await.unwrap();
    let overrides = [
        ("sports.nba_stats_base_url", json!(format!("{base}/stats"))),
        ("sports.nba_api_max_rpm", json!(6000)),
        ("sports.sync_enabled", json!(false)),
    ];
    let app = TestApp::spawn(backend, vec![Arc::new(SportsModule)], &overrides).await;
    let first = chrono::NaiveDate::from_ymd_opt(2024, 11, 1).unwrap();
    for day in 0..21 {
        let date = (first + chrono::Duration::days(day)).to_string();
        let run = sync(&app, json!({"date": date})).await;
        assert_eq!(run["status"], "succeeded", "{run}");
    }
    let build = || async {
        let (status, queued) =
            app.post_json("/api/datasets", &json!({"stat": "points", "min_games": 5})).await;
        assert_eq!(status, 202, "{queued}");
        let started = Instant::now();
        loop {
            let pending: i64 = sqlx::query(
                "SELECT COUNT(*) FROM queue_jobs WHERE job_type = 'sports.build_dataset' AND state IN ('queued', 'running')",
            )
            .fetch_one(app.platform.db.reader())
            .await
            .unwrap()
            .get(0);
            let (_, list) = app.get_json("/api/datasets").await;
            match list["datasets"].as_array().and_then(|d| d.first()).cloned() {
                Some(meta) if pending == 0 => return meta,
                _ => {}
            }
            assert!(started.elapsed() < Duration::from_secs(30), "no dataset written");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let meta = build().await;
    let rows = meta["rows"].as_u64().unwrap();
    assert!(rows > 500, "{meta}");
    assert_eq!(meta["version_id"].as_str().map(str::len), Some(12));
    for split in ["train", "val", "test"] {
        assert!(meta["splits"][split].as_u64().unwrap() > 0, "{split}: {meta}");
    }
    let parquet = std::fs::File::open(meta["path"].as_str().unwrap()).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(parquet).unwrap();
    use parquet::file::reader::FileReader as _;
    assert_eq!(reader.metadata().file_metadata().num_rows() as u64, rows);
    let columns = reader.metadata().file_metadata().schema_descr().num_columns();
    assert_eq!(columns, 8 + sightline_sports::dataset::FEATURES.len());
    let csv = std::fs::read_to_string(meta["csv_path"].as_str().unwrap()).unwrap();
    assert_eq!(csv.lines().count() as u64, rows + 1);
    assert!(csv.starts_with("player_id,player_name,game_id,game_date,season,opponent,target,last_3_avg"));
    let (status, bad) = app.post_json("/api/datasets", &json!({"stat": "dunks"})).await;
    assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some("stat")));
    let again = build().await;
    assert_eq!(again["version_id"], meta["version_id"], "the same data, the same version");

    // A model on it, judged against the two baselines; predictions use it only when kept.
    let (status, training) = app.post_json("/api/models/train", &json!({"stat": "points"})).await;
    assert_eq!(status, 200, "{training}");
    let m = &training["model"]["metrics"];
    for key in ["test_mae", "test_rmse", "val_mae"] {
        assert!(m[key].as_f64().is_some_and(f64::is_finite), "{key}: {m}");
    }
    let (model_mae, season_mae, last5_mae) = (
        m["test_mae"].as_f64().unwrap(),
        m["baseline_season_avg"][0].as_f64().unwrap(),
        m["baseline_last_5"][0].as_f64().unwrap(),
    );
    let kept = training["kept"].as_bool().unwrap();
    assert_eq!(kept, model_mae < season_mae && model_mae < last5_mae, "{m}");
    assert_eq!(training["model"]["dataset_version"], meta["version_id"]);
    let (_, models) = app.get_json("/api/models").await;
    assert_eq!(models["models"], if kept { json!(["points"]) } else { json!([]) }, "{models}");
    let given = json!({"player": "lebron james", "line": 20.5,
        "player_data": {"recentGames": [{"statValue": 30}, {"statValue": 24}, {"statValue": 27}], "seasonAvg": 26.0,
            "contextualFactors": {"homeAway": "home", "daysRest": 1}}});
    let (status, p) = app.post_json("/api/predict", &given).await;
    assert_eq!(status, 200, "{p}");
    let method = p["method"].as_str().unwrap();
    assert_eq!(method.starts_with("model:"), kept, "{p}");
    let over = p["over_probability"].as_f64().unwrap();
    assert!(
        (0.0..=1.0).contains(&over) && (p["under_probability"].as_f64().unwrap() + over - 1.0).abs() < 1e-9
    );
    let (status, none) = app.post_json("/api/models/train", &json!({"stat": "rebounds"})).await;
    assert_eq!(status, 404, "no rebounds dataset: {none}");
}

/// Predictions are stored; ingestion of the following days fills in what each player then did
/// in his first game on or after the day of the prediction; `/api/models` reports the error.
async fn predictions_are_settled_by_the_next_ingested_game(backend: Backend) {
    let today = chrono::Utc::now().with_timezone(&chrono_tz::America::New_York).date_naive();
    let standin = StandIn::new(today);
    let base = standin.spawn().await.unwrap();
    let overrides = [
        ("sports.nba_stats_base_url", json!(format!("{base}/stats"))),
        ("sports.nba_api_max_rpm", json!(6000)),
        ("sports.sync_enabled", json!(false)),
    ];
    let app = TestApp::spawn(backend, vec![Arc::new(SportsModule)], &overrides).await;
    // Twelve players predicted on points, three of them also on rebounds; the recent games
    // given make the heuristic's value 13.
    // Players whose name, as compared, nobody else has (the generated league repeats some, and
    // "Darius Carter Sr." is "Darius Carter").
    let names: Vec<String> = standin.league().players.iter().map(|p| p.full_name()).collect();
    let key = |n: &String| sightline_sports::players::normalise(n);
    let players: Vec<String> = names
        .iter()
        .filter(|n| names.iter().filter(|m| key(m) == key(n)).count() == 1)
        .take(12)
        .cloned()
        .collect();
    for (i, player) in players.iter().enumerate() {
        for stat in if i < 3 { &["points", "rebounds"][..] } else { &["points"][..] } {
            let body = json!({"player": player, "stat": stat, "line": 10.5,
                "player_data": {"recentGames": [{"statValue": 12}, {"statValue": 14}]}});
            let (status, p) = app.post_json("/api/predict", &body).await;
            assert_eq!((status, p["predicted_value"].as_f64()), (200, Some(13.0)), "{p}");
        }
    }
    let made = sqlx::query("SELECT DISTINCT made_on FROM sports_predictions")
        .fetch_all(app.platform.db.reader())
        .await
        .unwrap();
    assert_eq!(made.iter().map(|r| r.get::<String, _>(0)).collect::<Vec<_>>(), [today.to_string()]);
    // As if they were made five days ago (only past days can be synced).
    let made_on = today - chrono::Duration::days(5);
    sqlx::query("UPDATE sports_predictions SET made_on = $1")
        .bind(made_on.to_string())
        .execute(app.platform.db.writer())
        .await
        .unwrap();
    // A day before the predictions settles none of them.
    let run = sync(&app, json!({"date": (made_on - chrono::Duration::days(1)).to_string()})).await;
    assert_eq!(run["summary"]["predictions_settled"], 0, "{run}");
    let mut settled_by_runs = 0;
    for day in 0..4 {
        let run = sync(&app, json!({"date": (made_on + chrono::Duration::days(day)).to_string()})).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        settled_by_runs += run["summary"]["predictions_settled"].as_i64().unwrap();
    }

    // Every prediction whose player played since is settled with his first game's figure.
    let rows = sqlx::query(
        "SELECT player_key, stat, made_on, actual, game_id, game_date, predicted, recommendation, line \
         FROM sports_predictions",
    )
    .fetch_all(app.platform.db.reader())
    .await
    .unwrap();
    assert_eq!(rows.len(), 15);
    let (mut settled, mut abs_error, mut hits) = (0, 0.0, 0);
    for row in &rows {
        let (key, stat, made_on): (String, String, String) =
            (row.get("player_key"), row.get("stat"), row.get("made_on"));
        let column = if stat == "points" { "points" } else { "rebounds" };
        let first_game = sqlx::query(&format!(
            "SELECT g.id, g.game_date, ps.{column} AS value FROM sports_player_stats ps \
             JOIN sports_games g ON g.id = ps.game_id JOIN sports_players p ON p.id = ps.player_id \
             WHERE p.name = $1 AND g.game_date >= $2 ORDER BY g.game_date LIMIT 1"
        ))
        .bind(players.iter().find(|p| sightline_sports::players::normalise(p) == key).unwrap())
        .bind(&made_on)
        .fetch_optional(app.platform.db.reader())
        .await
        .unwrap();
        let actual: Option<f64> = row.get("actual");
        match first_game {
            Some(game) => {
                let value: f64 = game.get("value");
                assert_eq!(actual, Some(value), "{key} {stat}");
                assert_eq!(row.get::<Option<String>, _>("game_id"), Some(game.get::<String, _>("id")));
                settled += 1;
                abs_error += (13.0 - value).abs();
                hits += i32::from(value > 10.5);
            }
            None => assert_eq!(actual, None, "{key} had no game since {made_on}"),
        }
    }
    assert!(settled >= 10, "teams play every few days: {settled} of 15 settled");
    assert_eq!(settled_by_runs, settled);
    let (_, models) = app.get_json("/api/models").await;
    let live = models["live"].as_array().unwrap();
    let points = live.iter().find(|l| l["method"] == "heuristic" && l["stat"] == "points").unwrap();
    let rebounds = live.iter().find(|l| l["stat"] == "rebounds").unwrap();
    assert_eq!(points["predictions"].as_i64().unwrap() + rebounds["predictions"].as_i64().unwrap(), 15);
    let settled_live = points["settled"].as_i64().unwrap() + rebounds["settled"].as_i64().unwrap();
    assert_eq!(settled_live, settled);
    let weighted_mae = points["mae"].as_f64().unwrap_or(0.0) * points["settled"].as_f64().unwrap()
        + rebounds["mae"].as_f64().unwrap_or(0.0) * rebounds["settled"].as_f64().unwrap();
    assert!((weighted_mae - abs_error).abs() < 1e-6, "{live:?}");
    // The heuristic said OVER (13 > 10.5) each time: it hit when the player beat 10.5.
    let weighted_hits = points["hit_rate"].as_f64().unwrap_or(0.0) * points["settled"].as_f64().unwrap()
        + rebounds["hit_rate"].as_f64().unwrap_or(0.0) * rebounds["settled"].as_f64().unwrap();
    assert!((weighted_hits - f64::from(hits)).abs() < 1e-6, "{live:?}");
}

sightline_platform::storage_tests!(
    a_days_sync_is_audited_validated_stored_once_and_its_alert_signed,
    a_dataset_is_built_from_the_stored_games,
    predictions_are_settled_by_the_next_ingested_game
);
