//! The sports and planning commands as a user runs them: a stretch of days synced in one
//! request per season and kind, and a forecast run killed part way that resumes.

use super::*;

/// `sports sync --from/--to` fetches each season's stretch in one league-log request per kind
/// (a range over the season's turn: two stretches), records a run a day, and a second pass
/// stores the same rows again without changing anything.
#[tokio::test(flavor = "multi_thread")]
async fn a_stretch_of_days_is_synced_from_the_cli_in_one_request_per_season_and_kind() {
    use sightline_sports::standin::StandIn;
    let standin = StandIn::new(chrono::NaiveDate::from_ymd_opt(2025, 10, 30).unwrap());
    let base = standin.spawn().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let sync = |from: &str, to: &str| {
        let args = ["sports", "sync", "--from", from, "--to", to, "--data-dir", &data];
        let envs = [("NBA_STATS_BASE_URL", format!("{base}/stats")), ("NBA_API_MAX_RPM", "600".into())];
        let out = run(&args, &envs.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let league_logs = || standin.requests().get("leaguegamelog").copied().unwrap_or(0);

    let first = tokio::task::block_in_place(|| sync("2025-04-01", "2025-04-13"));
    assert_eq!(league_logs(), 2, "one request per kind for the stretch");
    assert_eq!(first["days"], 13, "{first}");
    let expected: Value = reqwest::get(format!(
        "{base}/stats/leaguegamelog?PlayerOrTeam=P&Season=2024-25&DateFrom=04/01/2025&DateTo=04/13/2025"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let lines = expected["resultSets"][0]["rowSet"].as_array().unwrap().len() as u64;
    assert!(lines > 1_000, "{lines}");
    assert_eq!(first["player_rows"], lines, "{first}");
    assert_eq!(first["team_rows"].as_u64().unwrap() % 2, 0);

    let again = tokio::task::block_in_place(|| sync("2025-04-01", "2025-04-13"));
    assert_eq!(
        (&again["player_rows"], &again["team_rows"]),
        (&first["player_rows"], &first["team_rows"]),
        "{again}"
    );

    // Over the turn of the season (1 October): a stretch in each.
    let before = league_logs();
    let turn = tokio::task::block_in_place(|| sync("2025-09-28", "2025-10-03"));
    assert_eq!(turn["days"], 6, "{turn}");
    assert_eq!(league_logs() - before, 4, "two stretches, two kinds each");
}

/// `planning forecast` killed part way: run again, it goes on after its last product, and every
/// product ends with exactly one forecast of each month.
#[tokio::test(flavor = "multi_thread")]
async fn a_forecast_run_killed_part_way_resumes_and_forecasts_each_product_once() {
    use sqlx::{Connection as _, Row as _};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let sample = dir.path().join("sample");
    let out = run(
        &[
            "planning",
            "sample",
            "--products",
            "40",
            "--months",
            "30",
            "--load",
            "--out",
            sample.to_str().unwrap(),
            "--data-dir",
            &data_arg,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = format!("sqlite://{}?mode=rw", data.join("sightline.db").display());
    let done = || async {
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let row = sqlx::query("SELECT COALESCE(MAX(done + failed), 0) FROM planning_forecast_runs")
            .fetch_one(&mut conn)
            .await;
        row.map(|r| r.get::<i64, _>(0)).unwrap_or(0)
    };
    let mut child = Command::new(BIN)
        .args(["planning", "forecast", "--horizon", "3", "--data-dir", &data_arg])
        .env_remove("DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while done().await < 5 {
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = done().await;
    assert!(before < 40, "killed part way ({before} done)");

    let out = tokio::task::block_in_place(|| {
        run(&["planning", "forecast", "--horizon", "3", "--data-dir", &data_arg], &[])
    });
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("40 products forecast"), "{err}");
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let runs = sqlx::query("SELECT status, done, failed FROM planning_forecast_runs")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "the same run went on");
    assert_eq!((runs[0].get::<String, _>(0), runs[0].get::<i64, _>(1)), ("succeeded".to_owned(), 40));
    let rows: i64 =
        sqlx::query("SELECT COUNT(*) FROM planning_forecasts").fetch_one(&mut conn).await.unwrap().get(0);
    let distinct: i64 = sqlx::query("SELECT COUNT(DISTINCT product_id) FROM planning_forecasts")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get(0);
    assert_eq!((rows, distinct), (120, 40));
}
