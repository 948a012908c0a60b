//! The usage module over HTTP, on SQLite and PostgreSQL: upload and import, idempotency, row
//! changes, bad rows and bad files, upload errors, WebSocket progress, KPIs and access.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{json, Value};
use sightline_platform::testing::TestApp;
use sightline_platform::{storage_tests, Backend};
use sightline_usage::sample::{write_sample, SampleSummary};
use sightline_usage::UsageModule;
use sqlx::Row as _;

async fn spawn(backend: Backend, overrides: &[(&str, Value)]) -> TestApp {
    let mut all = vec![("usage.chunk_rows", json!(700))];
    all.extend_from_slice(overrides);
    TestApp::spawn(backend, vec![Arc::new(UsageModule)], &all).await
}

const USERS_HEADER: &str = "User_ID,User_Name,Region,Is_Active_Sub,Department,Company_Name,Signup_Date\n";
const TX_HEADER: &str =
    "RowId,User_ID,Model_Name,Conversation_ID,Token_Type,Token_Count,Rate_Per_1k,Calculated_Cost,Timestamp\n";

fn form(users: Vec<u8>, transactions: Vec<u8>) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .part("users", reqwest::multipart::Part::bytes(users).file_name("users.csv"))
        .part("transactions", reqwest::multipart::Part::bytes(transactions).file_name("transactions.csv"))
}

async fn upload_with(
    client: &reqwest::Client,
    app: &TestApp,
    form: reqwest::multipart::Form,
) -> (u16, Value) {
    let r = client.post(app.url("/upload-csv")).multipart(form).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Uploads and waits for the job to end; returns its final status.
async fn import(app: &TestApp, users: Vec<u8>, transactions: Vec<u8>) -> Value {
    let (status, body) = upload_with(&app.client, app, form(users, transactions)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["message"], "success");
    wait_job(app, body["data"]["job_id"].as_str().unwrap()).await
}

async fn wait_job(app: &TestApp, id: &str) -> Value {
    for _ in 0..600 {
        let (status, job) = app.get_json(&format!("/jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if job["status"] == "succeeded" || job["status"] == "failed" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} did not finish");
}

fn sample(rows: u64) -> (tempfile::TempDir, SampleSummary, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_sample(dir.path(), rows, |_| {}).unwrap();
    let users = std::fs::read(dir.path().join("users.csv")).unwrap();
    let tx = std::fs::read(dir.path().join("transactions.csv")).unwrap();
    (dir, summary, users, tx)
}

async fn kpis(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get_json(&format!("/metrics/kpis?{query}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "success");
    body["data"].clone()
}

const WHOLE_RANGE: &str = "start_date=2025-01-01&end_date=2025-06-30";

/// The daily tables' rows: every cell but the cost joined by `|`, then the cost.
async fn daily_tables(app: &TestApp) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for sql in [
        "SELECT date, region, highest_model_used, costliest_model, least_used_model, total_conversations, \
         total_prompt_tokens, total_completion_tokens, transaction_count, active_users, active_subscribers, \
         total_cost FROM usage_daily_metrics ORDER BY date, region",
        "SELECT date, region, company_name, highest_used_model, least_used_model, conversation_count, total_cost \
         FROM usage_daily_company_metrics ORDER BY date, region, company_name",
        "SELECT date, region, model_name, conversation_count, token_consumption, total_cost \
         FROM usage_daily_model_metrics ORDER BY date, region, model_name",
    ] {
        out.extend(figures_and_cost(app, sql).await);
    }
    out
}

/// The daily tables after recomputing every day in SQL, one day at a time (imports recompute
/// days in groups, or take them from their tally).
async fn recomputed_daily_tables(app: &TestApp) -> Vec<(String, f64)> {
    let mut tx = app.platform.db.begin().await.unwrap();
    let days: Vec<String> = sqlx::query("SELECT DISTINCT date FROM usage_transactions ORDER BY date")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for day in &days {
        let one = std::slice::from_ref(day);
        sightline_usage::store::daily::recompute_days(&mut tx, one, 0).await.unwrap();
    }
    tx.commit().await.unwrap();
    daily_tables(app).await
}

/// Two readings of the daily tables hold the same rows, costs equal within float rounding (sums
/// taken in another order differ in the last bits).
fn assert_same_days(kept: &[(String, f64)], recomputed: &[(String, f64)]) {
    assert_eq!(kept.len(), recomputed.len());
    for ((kept, kept_cost), (figures, cost)) in kept.iter().zip(recomputed) {
        assert_eq!(kept, figures);
        assert!((kept_cost - cost).abs() < 1e-12, "{kept}: {kept_cost} vs {cost}");
    }
}

/// A text or integer cell as text.
fn cell_text(r: &sqlx::any::AnyRow, i: usize) -> String {
    r.try_get::<String, _>(i).or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string())).unwrap()
}

/// The rows of `sql`: all cells but the last joined by `|`, and the last (a cost).
async fn figures_and_cost(app: &TestApp, sql: &str) -> Vec<(String, f64)> {
    let rows = sqlx::query(sql).fetch_all(app.platform.db.reader()).await.unwrap();
    rows.iter()
        .map(|r| {
            let last = r.len() - 1;
            let cells: Vec<String> = (0..last).map(|i| cell_text(r, i)).collect();
            (cells.join("|"), r.get::<f64, _>(last))
        })
        .collect()
}

/// Every parameter of the module's routes is declared where it is read.
#[tokio::test]
async fn every_openapi_parameter_is_declared_where_it_is_read() {
    let app = spawn(Backend::Sqlite, &[]).await;
    sightline_platform::testing::check_openapi_parameters(&app.get_json("/openapi.json").await.1);
}

async fn an_upload_is_imported_and_the_kpis_equal_the_transactions(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let (_dir, summary, users, tx) = sample(5_000);
    let job = import(&app, users, tx).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["stage"], "done");
    assert_eq!(job["progress"], 100.0);
    assert_eq!(job["transactions"]["read"], 5_000);
    assert_eq!(job["transactions"]["inserted"], 5_000);
    assert_eq!(job["transactions"]["rejected"], 0);
    assert_eq!(job["users"]["inserted"], 100);
    assert_eq!(job["total_rows"], 5_000);
    assert_eq!(job["aggregates"]["days_total"], 181);
    assert_eq!(job["transactions"]["sha256"].as_str().unwrap().len(), 64);
    assert!(job["stage_ms"]["transactions"].is_number(), "{job}");

    let data = kpis(&app, WHOLE_RANGE).await;
    let k = &data["kpis"];
    assert!(
        (k["total_spendings"].as_f64().unwrap() - summary.total_cost).abs() < 0.01,
        "{k} vs {}",
        summary.total_cost
    );
    assert_eq!(k["total_tokens"], summary.total_tokens);
    assert_eq!(k["total_transactions"], 5_000);
    assert!(k["heighest_model_used"].is_string(), "the misspelled key is kept: {k}");
    for key in [
        "average_token_consumption",
        "average_per_day_spending",
        "active_sub_utilization",
        "spend_per_active_user",
    ] {
        assert!(k[key].is_number(), "{key} in {k}");
    }
    assert_eq!(k["spends_trend"].as_array().unwrap().len(), 181);
    let trend_total: f64 =
        k["spends_trend"].as_array().unwrap().iter().map(|p| p["cost"].as_f64().unwrap()).sum();
    assert!((trend_total - summary.total_cost).abs() < 1.0);
    assert_eq!(data["max_date_range"], json!(["2025-01-01", "2025-06-30"]));
    let regions: f64 = data["region_wise_spends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total_spends"].as_f64().unwrap())
        .sum();
    let companies: f64 = data["company_wise_spends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total_spends"].as_f64().unwrap())
        .sum();
    let models: f64 =
        data["models_metrics"].as_array().unwrap().iter().map(|r| r["total_cost"].as_f64().unwrap()).sum();
    for (name, v) in [("regions", regions), ("companies", companies), ("models", models)] {
        assert!((v - summary.total_cost).abs() < 0.05, "{name}: {v} vs {}", summary.total_cost);
    }
    // Lists are ordered by spend.
    let spends: Vec<f64> = data["region_wise_spends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["total_spends"].as_f64().unwrap())
        .collect();
    assert!(spends.windows(2).all(|w| w[0] >= w[1]), "{spends:?}");

    // Filters narrow consistently: every company together equals no filter; top trims lists.
    let names: Vec<String> = data["company_wise_spends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["company"].as_str().unwrap().replace("(none)", ""))
        .filter(|c| !c.is_empty())
        .collect();
    let one = kpis(&app, &format!("{WHOLE_RANGE}&companies={}", names[0].replace(' ', "%20"))).await;
    assert_eq!(one["company_wise_spends"].as_array().unwrap().len(), 1);
    assert_eq!(one["company_wise_spends"][0]["total_spends"], data["company_wise_spends"][0]["total_spends"]);
    assert_eq!(one["kpis"]["total_spendings"], data["company_wise_spends"][0]["total_spends"]);
    let model = data["models_metrics"][0]["model"].as_str().unwrap();
    let by_model = kpis(&app, &format!("{WHOLE_RANGE}&models={model}")).await;
    assert_eq!(by_model["kpis"]["total_spendings"], data["models_metrics"][0]["total_cost"]);
    let top = kpis(&app, &format!("{WHOLE_RANGE}&top=2")).await;
    assert_eq!(top["company_wise_spends"].as_array().unwrap().len(), 2);
    assert_eq!(top["kpis"], data["kpis"]);
    let eu = kpis(&app, &format!("{WHOLE_RANGE}&regions=EU")).await;
    assert_eq!(eu["region_wise_spends"].as_array().unwrap().len(), 1);
    assert_eq!(eu["kpis"]["total_spendings"], eu["region_wise_spends"][0]["total_spends"]);
    // Period over period: March against the 31 days before it.
    let march = kpis(&app, "start_date=2025-03-01&end_date=2025-03-31").await;
    let c = &march["comparison"];
    assert_eq!(
        (c["previous_start_date"].as_str(), c["previous_end_date"].as_str()),
        (Some("2025-01-29"), Some("2025-02-28"))
    );
    let (now, before) =
        (march["kpis"]["total_spendings"].as_f64().unwrap(), c["total_spendings"].as_f64().unwrap());
    // The change is computed before rounding the totals, so allow for the cents.
    let want = (now - before) / before * 100.0;
    assert!((c["change_pct"]["total_spendings"].as_f64().unwrap() - want).abs() < 0.5, "{c}");

    // The daily tables (made from the import's tally: every day was new) equal a recomputation
    // from the transactions.
    assert_same_days(&daily_tables(&app).await, &recomputed_daily_tables(&app).await);
    // And the per-model and per-region figures equal direct sums over the transactions (costs
    // within float rounding: the sums are taken in another order).
    for (kept_sql, direct_sql) in [
        (
            "SELECT date, region, model_name, conversation_count, token_consumption, transaction_count, total_cost \
             FROM usage_daily_model_metrics ORDER BY date, region, model_name",
            "SELECT date, region, model_name, COUNT(DISTINCT conversation_id), CAST(SUM(token_count) AS BIGINT), \
             COUNT(*), SUM(calculated_cost) FROM usage_transactions \
             GROUP BY date, region, model_name ORDER BY date, region, model_name",
        ),
        (
            "SELECT date, region, total_conversations, transaction_count, \
             total_prompt_tokens + total_completion_tokens, total_cost FROM usage_daily_metrics ORDER BY date, region",
            "SELECT date, region, COUNT(DISTINCT conversation_id), COUNT(*), CAST(SUM(token_count) AS BIGINT), \
             SUM(calculated_cost) FROM usage_transactions GROUP BY date, region ORDER BY date, region",
        ),
    ] {
        let (kept, direct) = (figures_and_cost(&app, kept_sql).await, figures_and_cost(&app, direct_sql).await);
        assert_eq!(kept.len(), direct.len(), "{kept_sql}");
        for ((kept_figures, kept_cost), (figures, cost)) in kept.iter().zip(&direct) {
            assert_eq!(kept_figures, figures);
            assert!((kept_cost - cost).abs() < 1e-9, "{kept_figures}: {kept_cost} vs {cost}");
        }
    }
    let sum: f64 = sqlx::query("SELECT SUM(calculated_cost) FROM usage_transactions")
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get(0);
    assert!((sum - summary.total_cost).abs() < 1e-6);
}

async fn a_kpi_range_of_any_length_is_answered_from_the_data_in_it(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let (_dir, summary, users, tx) = sample(1_000);
    import(&app, users, tx).await;
    let range = kpis(&app, WHOLE_RANGE).await["max_date_range"].clone();
    let (first, last) = (range[0].as_str().unwrap(), range[1].as_str().unwrap());
    let own = kpis(&app, &format!("start_date={first}&end_date={last}")).await;
    assert!((own["kpis"]["total_spendings"].as_f64().unwrap() - summary.total_cost).abs() < 0.01, "{own}");
    let model = own["models_metrics"][0]["model"].as_str().unwrap().to_owned();
    let own_model = kpis(&app, &format!("start_date={first}&end_date={last}&models={model}")).await;
    for wide in ["start_date=2015-01-01&end_date=2034-12-31", "start_date=0001-01-01&end_date=9999-12-31"] {
        let answer = kpis(&app, wide).await;
        // The same figures as over the data's own range; only the period before differs (empty).
        for key in ["kpis", "models_metrics", "region_wise_spends", "company_wise_spends", "max_date_range"] {
            assert_eq!(answer[key], own[key], "{wide}: {key}");
        }
        assert_eq!(answer["comparison"]["total_spendings"], 0.0, "{wide}");
        // Narrowed figures come from the transactions: the same there.
        let narrowed = kpis(&app, &format!("{wide}&models={model}")).await;
        assert_eq!(narrowed["kpis"], own_model["kpis"], "{wide}");
    }
}

async fn uploading_the_same_files_twice_changes_no_figure(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let (_dir, _summary, users, tx) = sample(2_000);
    import(&app, users.clone(), tx.clone()).await;
    let before = (kpis(&app, WHOLE_RANGE).await, daily_tables(&app).await);
    let again = import(&app, users, tx).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["transactions"]["unchanged"], 2_000, "{again}");
    assert_eq!(again["transactions"]["inserted"], 0);
    assert_eq!(again["transactions"]["updated"], 0);
    assert_eq!(again["users"]["unchanged"], 100);
    assert_eq!(again["aggregates"]["days_total"], 0, "no day changed, none is recomputed: {again}");
    let after = (kpis(&app, WHOLE_RANGE).await, daily_tables(&app).await);
    assert_eq!(before, after);
    let (_, jobs) = app.get_json("/jobs").await;
    assert_eq!(jobs["total"], 2);
}

/// `tx` (a transactions file) with its first rows' RowIds replaced by those of `other`, in order.
fn with_row_ids_of(tx: &[u8], other: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(tx.to_vec()).unwrap();
    let other = String::from_utf8(other.to_vec()).unwrap();
    let mut ids = other.lines().skip(1).map(|line| line.split(',').next().unwrap());
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines {
        match ids.next() {
            Some(id) => out.push_str(&format!("{id},{}\n", line.split_once(',').unwrap().1)),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    out.into_bytes()
}

async fn a_second_upload_adding_rows_to_the_same_days_keeps_every_figure(backend: Backend) {
    let app = spawn(backend, &[("usage.chunk_rows", json!(700))]).await;
    // The second file starts with the first one's RowIds at other times: its chunks move stored
    // rows to other days and add new rows on days that already have figures, so its days are
    // recomputed in SQL.
    let (_a, _, users, first_tx) = sample(1_500);
    let first = import(&app, users, first_tx.clone()).await;
    assert_eq!(first["transactions"]["inserted"], 1_500, "{first}");
    let (_b, summary, users, tx) = sample(3_000);
    let second = import(&app, users, with_row_ids_of(&tx, &first_tx)).await;
    assert_eq!(second["status"], "succeeded", "{second}");
    assert_eq!(second["transactions"]["inserted"], 1_500, "{second}");
    let t = &second["transactions"];
    assert!(t["updated"].as_i64().unwrap() > 1_400, "most stored rows moved: {second}");
    assert_eq!(t["updated"].as_i64().unwrap() + t["unchanged"].as_i64().unwrap(), 1_500, "{second}");
    let kept = daily_tables(&app).await;
    assert_same_days(&kept, &recomputed_daily_tables(&app).await);
    let k = kpis(&app, WHOLE_RANGE).await;
    assert_eq!(k["kpis"]["total_tokens"], summary.total_tokens, "{k}");
}

fn users_file(rows: &[&str]) -> Vec<u8> {
    let mut s = USERS_HEADER.to_owned();
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    s.into_bytes()
}

fn tx_file(rows: &[&[u8]]) -> Vec<u8> {
    let mut s = TX_HEADER.as_bytes().to_vec();
    for r in rows {
        s.extend_from_slice(r);
        s.push(b'\n');
    }
    s
}

const USERS: [&str; 3] = [
    "u1,alice,EU,true,Research,Tech Global,2024-05-01",
    "u2,bob,EU,false,Sales,Tech Global,2024-06-01",
    "u3,carol,US,yes,,Acme Labs,",
];

async fn a_changed_row_moves_its_figures_to_its_new_day(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let first = tx_file(&[
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t2,u2,gpt-4o-mini,c2,completion,200,0.001,0.25,2025-01-01T11:00:00Z",
        b"t3,u3,gpt-4o,c3,prompt,300,0.005,1.5,2025-01-02T09:00:00Z",
    ]);
    let job = import(&app, users_file(&USERS), first).await;
    assert_eq!(job["transactions"]["inserted"], 3, "{job}");
    let d1 = kpis(&app, "start_date=2025-01-01&end_date=2025-01-01").await;
    assert_eq!(d1["kpis"]["total_spendings"], 0.75);
    // EU has one active subscriber (alice) and she used it on the 1st: utilisation 1.0.
    assert_eq!(d1["kpis"]["active_sub_utilization"], 1.0);
    assert_eq!(d1["kpis"]["heighest_model_used"], "gpt-4o");
    // t1 moves to the 2nd with a new cost; t2 is repeated unchanged.
    let second = tx_file(&[
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,0.75,2025-01-02T10:00:00Z",
        b"t2,u2,gpt-4o-mini,c2,completion,200,0.001,0.25,2025-01-01T11:00:00Z",
    ]);
    let job = import(&app, users_file(&USERS), second).await;
    assert_eq!(
        (job["transactions"]["updated"].as_i64(), job["transactions"]["unchanged"].as_i64()),
        (Some(1), Some(1))
    );
    let d1 = kpis(&app, "start_date=2025-01-01&end_date=2025-01-01").await;
    assert_eq!(d1["kpis"]["total_spendings"], 0.25);
    assert_eq!(d1["kpis"]["heighest_model_used"], "gpt-4o-mini");
    assert_eq!(d1["kpis"]["active_sub_utilization"], 0.0, "alice no longer transacted on the 1st");
    let d2 = kpis(&app, "start_date=2025-01-02&end_date=2025-01-02").await;
    assert_eq!(d2["kpis"]["total_spendings"], 2.25);
    // A user who stops subscribing changes every day's utilisation in her region.
    let users = ["u1,alice,EU,false,Research,Tech Global,2024-05-01", USERS[1], USERS[2]];
    import(&app, users_file(&users), tx_file(&[])).await;
    let d2 = kpis(&app, "start_date=2025-01-02&end_date=2025-01-02&regions=EU").await;
    assert_eq!(d2["kpis"]["active_sub_utilization"], 0.0);
}

async fn bad_rows_are_reported_with_line_and_reason_and_the_rest_is_imported(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let users = users_file(&[USERS[0], USERS[1], "u9,alice,US,true,,,", "u4,dave,JP,maybe,,,", USERS[2]]);
    let tx = tx_file(&[
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t2,u1,gpt-4o,c1,prompt,-100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t3,nobody,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t4,u1,gpt-4o,c1",
        b"t5,u1,gpt-\xff,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t6,u1,=HYPERLINK(\"http://x\"),c1,completion,100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t7,u1,gpt-4o,c1,prompt,100,0.005,0.5,not-a-date",
        b"t8,u2,+cmd,c2,prompt,10,0.005,0.05,2025-01-01 12:00:00",
    ]);
    let job = import(&app, users, tx).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        (job["users"]["inserted"].as_i64(), job["users"]["rejected"].as_i64()),
        (Some(3), Some(2)),
        "{job}"
    );
    let t = &job["transactions"];
    assert_eq!(
        (t["read"].as_i64(), t["inserted"].as_i64(), t["rejected"].as_i64()),
        (Some(8), Some(3), Some(5)),
        "{job}"
    );
    let id = job["job_id"].as_str().unwrap();
    let (status, page) = app.get_json(&format!("/jobs/{id}/rejects?format=json&limit=50")).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 7);
    let got: Vec<(String, i64, String)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_owned(),
                r["line"].as_i64().unwrap(),
                r["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("users", 4, "User_Name"),
        ("users", 5, "Is_Active_Sub"),
        ("transactions", 3, "Token_Count"),
        ("transactions", 4, "User_ID"),
        ("transactions", 5, ""),
        ("transactions", 6, "Model_Name"),
        ("transactions", 8, "Timestamp"),
    ];
    let want: Vec<(String, i64, String)> =
        want.iter().map(|(f, l, c)| ((*f).to_owned(), *l, (*c).to_owned())).collect();
    assert_eq!(got, want);
    assert!(page["items"][0]["reason"].as_str().unwrap().contains("already belongs to User_ID u1"));
    // The CSV report is a download, with formula-like cells defused.
    let r = app.client.get(app.url(&format!("/jobs/{id}/rejects"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let report = r.text().await.unwrap();
    assert!(report.starts_with("file,line,field,reason\n"), "{report}");
    assert_eq!(report.lines().count(), 8, "{report}");
    assert!(
        report.contains("transactions,3,Token_Count,-100 is negative")
            || report.contains("Token_Count,'-100"),
        "{report}"
    );
    // Formula-like text is stored as text.
    let models: Vec<String> = sqlx::query("SELECT model_name FROM usage_transactions ORDER BY id")
        .fetch_all(app.platform.db.reader())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(models, ["gpt-4o", "=HYPERLINK(\"http://x\")", "+cmd"]);
}

async fn a_file_that_is_not_csv_fails_the_job_and_writes_nothing(backend: Backend) {
    let app = spawn(backend, &[]).await;
    // The import fails for good: its queue job is left failed.
    app.expect_leftover_jobs();
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01".to_vec();
    let job = import(&app, users_file(&USERS), png).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("transactions file is not a CSV with the expected header"), "{error}");
    assert!(error.contains("RowId"), "{error}");
    let users: i64 = sqlx::query("SELECT COUNT(*) FROM usage_users")
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0, "nothing is applied when a file is refused");
    // It failed at once, not after its retries.
    let (_, failed) = app.get_json("/api/v1/queue/jobs?state=failed&queue=usage").await;
    assert_eq!(failed["items"][0]["attempts"], 1, "{failed}");
    // Its files went with the failure: retried from the job dashboard, the import runs again and
    // fails, saying so.
    let queue_id = failed["items"][0]["id"].as_i64().unwrap();
    let (status, _) = app.post_empty(&format!("/api/v1/queue/jobs/{queue_id}/retry")).await;
    assert_eq!(status, 200);
    for _ in 0..100 {
        let (_, q) = app.get_json(&format!("/api/v1/queue/jobs/{queue_id}")).await;
        if q["state"] == "failed" || q["state"] == "succeeded" {
            assert_eq!(q["state"], "failed", "{q}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = wait_job(&app, job["job_id"].as_str().unwrap()).await;
    assert_eq!(again["status"], "failed");
    assert!(again["error"].as_str().unwrap().contains("upload them again"), "{again}");
}

async fn upload_errors_name_the_field(backend: Backend) {
    let app = spawn(backend, &[("usage.max_file_bytes", json!(4096))]).await;
    let only_users =
        reqwest::multipart::Form::new().part("users", reqwest::multipart::Part::bytes(users_file(&USERS)));
    let (status, body) = upload_with(&app.client, &app, only_users).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "transactions");
    let extra = form(users_file(&USERS), tx_file(&[])).text("comment", "hi");
    let (status, body) = upload_with(&app.client, &app, extra).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("comment")), "{body}");
    let (status, body) = upload_with(&app.client, &app, form(Vec::new(), tx_file(&[]))).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("users")), "{body}");
    // The server answers 413 without reading the rest of the body and then drops the
    // connection: ask the client not to reuse it.
    let big = vec![b'x'; 10_000];
    let r = app
        .client
        .post(app.url("/upload-csv"))
        .header("connection", "close")
        .multipart(form(users_file(&USERS), big))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["details"]["field"], "transactions");
    let r = app.client.post(app.url("/upload-csv")).body("not multipart").send().await.unwrap();
    assert!(r.status().is_client_error());
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].is_string());
    let (_, jobs) = app.get_json("/jobs").await;
    assert_eq!(jobs["total"], 0, "no job for a refused upload");
    // Nothing is left behind in the upload directory.
    let uploads = app.db.dir.path().join("usage/uploads");
    assert_eq!(std::fs::read_dir(uploads).unwrap().count(), 0);
    // KPI parameters are checked too.
    let (status, body) = app.get_json("/metrics/kpis?start_date=2025-01-01").await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("end_date")), "{body}");
}

async fn progress_streams_over_the_websocket_until_done(backend: Backend) {
    let app = spawn(backend, &[("usage.chunk_rows", json!(200))]).await;
    let (_dir, _summary, users, tx) = sample(4_000);
    let (status, body) = upload_with(&app.client, &app, form(users, tx)).await;
    assert_eq!(status, 202);
    let id = body["data"]["job_id"].as_str().unwrap();
    let token = app.user_with_roles(&["viewer"]).await.access_token;
    let ws_url = format!("{}/jobs/{id}?access_token={token}", app.address.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("websocket opens");
    let mut events = Vec::new();
    while let Some(message) =
        tokio::time::timeout(Duration::from_secs(60), socket.next()).await.expect("progress")
    {
        match message.unwrap() {
            tokio_tungstenite::tungstenite::Message::Text(text) => {
                events.push(serde_json::from_str::<Value>(&text).unwrap())
            }
            tokio_tungstenite::tungstenite::Message::Close(_) => break,
            _ => {}
        }
    }
    assert!(events.len() >= 2, "{events:?}");
    assert_eq!(events[0]["data"]["job_id"], id);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["data"]["status"], "succeeded");
    assert_eq!(last["data"]["rows_processed"], 4_000);
    let progress: Vec<f64> = events.iter().map(|e| e["data"]["progress"].as_f64().unwrap()).collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    // A late client gets the final state at once.
    let (mut late, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    let first = late.next().await.unwrap().unwrap();
    let first: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(
        (first["event"].as_str(), first["data"]["status"].as_str()),
        (Some("done"), Some("succeeded"))
    );
    // Without a token the handshake is refused.
    let anonymous = format!("{}/jobs/{id}", app.address.replace("http://", "ws://"));
    let refused = tokio_tungstenite::connect_async(&anonymous).await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
}

async fn access_follows_roles_and_the_job_dashboard_lists_every_job(backend: Backend) {
    let app = spawn(backend, &[]).await;
    sightline_platform::testing::check_route_matrix(&app).await;
    let viewer = app.client_with(&app.user_with_roles(&["viewer"]).await.access_token);
    let analyst = app.client_with(&app.user_with_roles(&["analyst"]).await.access_token);
    let (status, _) = upload_with(&viewer, &app, form(users_file(&USERS), tx_file(&[]))).await;
    assert_eq!(status, 403, "viewers read, they do not upload");
    let (status, body) = upload_with(&app.anonymous, &app, form(users_file(&USERS), tx_file(&[]))).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = upload_with(&analyst, &app, form(users_file(&USERS), tx_file(&[]))).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(&app, body["data"]["job_id"].as_str().unwrap()).await;
    assert!(job["created_by"].as_str().unwrap().starts_with("user"));
    let r = viewer.get(app.url(&format!("/metrics/kpis?{WHOLE_RANGE}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The upload is in the audit trail.
    let (_, audit) = app.get_json("/api/v1/audit?action=usage.upload_accepted").await;
    assert_eq!(audit["total"], 1, "{audit}");
    // The job dashboard's API shows the import job, the workers, and refuses an unconfirmed requeue.
    let (_, jobs) = app.get_json("/api/v1/queue/jobs?state=all&queue=usage").await;
    assert_eq!(jobs["items"][0]["job_type"], "usage.import", "{jobs}");
    assert_eq!(jobs["items"][0]["state"], "succeeded");
    let queue_id = jobs["items"][0]["id"].as_i64().unwrap();
    assert_eq!(job["queue_job_id"], queue_id);
    let (_, workers) = app.get_json("/api/v1/queue/workers").await;
    assert!(workers["workers"].as_array().unwrap().iter().any(|w| w["alive"] == true), "{workers}");
    let (status, body) = app.post_empty("/api/v1/queue/failed/retry").await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("confirm")), "{body}");
    let r = app.client.delete(app.url(&format!("/api/v1/queue/jobs/{queue_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = app.client.delete(app.url(&format!("/api/v1/queue/jobs/{queue_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let page = app.anonymous.get(app.url("/rq")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

/// Stores a row under `key` directly, as if another RowId's key had come out equal.
async fn squat(app: &TestApp, key: i64, id: &str) {
    sqlx::query(
        "INSERT INTO usage_transactions (id_key, id, user_id, region, company, model_name, conversation_id, \
         token_type, token_count, rate_per_1k, calculated_cost, date, timestamp) \
         VALUES ($1, $2, 'u3', 'US', 'Acme Labs', 'gpt-4o', $2, 'prompt', 10, 0.005, 1.0, '2025-01-01', 0)",
    )
    .bind(key)
    .bind(id)
    .execute(app.platform.db.writer())
    .await
    .unwrap();
}

async fn rowids_whose_keys_clash_are_kept_apart(backend: Backend) {
    use sightline_usage::model::transaction_key;
    use sightline_usage::store::transactions::KEY_PROBES;
    let app = spawn(backend, &[]).await;
    import(&app, users_file(&USERS), tx_file(&[])).await;
    let home = transaction_key("t1");
    squat(&app, home, "squatter").await;
    let rows: [&[u8]; 2] = [
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z",
        b"t2,u2,gpt-4o-mini,c2,completion,200,0.001,0.25,2025-01-01T11:00:00Z",
    ];
    let job = import(&app, users_file(&USERS), tx_file(&rows)).await;
    assert_eq!(job["transactions"]["inserted"], 2, "{job}");
    let stored: Vec<(i64, String)> = sqlx::query(
        "SELECT id_key, id FROM usage_transactions WHERE id_key BETWEEN $1 AND $2 ORDER BY id_key",
    )
    .bind(home)
    .bind(home + 1)
    .fetch_all(app.platform.db.reader())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert_eq!(stored, vec![(home, "squatter".to_owned()), (home + 1, "t1".to_owned())]);
    let day = kpis(&app, "start_date=2025-01-01&end_date=2025-01-01").await;
    assert_eq!(day["kpis"]["total_spendings"], 1.75, "the squatter, t1 and t2");
    // Found again past its home key: unchanged, then changed in place.
    let job = import(&app, users_file(&USERS), tx_file(&rows)).await;
    assert_eq!(
        (job["transactions"]["inserted"].as_i64(), job["transactions"]["unchanged"].as_i64()),
        (Some(0), Some(2))
    );
    let changed: [&[u8]; 1] = [b"t1,u1,gpt-4o,c1,prompt,100,0.005,0.75,2025-01-01T10:00:00Z"];
    let job = import(&app, users_file(&USERS), tx_file(&changed)).await;
    assert_eq!(job["transactions"]["updated"], 1, "{job}");
    let day = kpis(&app, "start_date=2025-01-01&end_date=2025-01-01").await;
    assert_eq!(day["kpis"]["total_spendings"], 2.0);
    let copies: i64 = sqlx::query("SELECT COUNT(*) FROM usage_transactions WHERE id = 't1'")
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(copies, 1);
    // A RowId whose every probe key is taken is rejected, not lost silently.
    let full = transaction_key("t9");
    for k in full..=full + KEY_PROBES {
        squat(&app, k, &format!("squatter-{k}")).await;
    }
    let job = import(
        &app,
        users_file(&USERS),
        tx_file(&[
            b"t8,nobody,gpt-4o,c8,prompt,100,0.005,0.5,2025-01-03T09:00:00Z",
            b"t9,u1,gpt-4o,c9,prompt,100,0.005,0.5,2025-01-03T10:00:00Z",
        ]),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["transactions"]["rejected"], 2, "{job}");
    let id = job["job_id"].as_str().unwrap();
    let (_, report) = app.get_json(&format!("/jobs/{id}/rejects?format=json")).await;
    let lines: Vec<(i64, &str)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["field"].as_str().unwrap()))
        .collect();
    assert_eq!(lines, [(2, "User_ID"), (3, "RowId")], "each reject names its own line: {report}");
}

async fn a_rowid_repeated_in_the_next_chunks_keeps_its_last_values(backend: Backend) {
    // Chunks of two rows: on PostgreSQL the next chunk inserts while the one before is still
    // open, so a RowId in both is held back until the first commits.
    let app = spawn(backend, &[("usage.chunk_rows", json!(2))]).await;
    let rows: [&[u8]; 7] = [
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,1.0,2025-01-01T10:00:00Z",
        b"t2,u2,gpt-4o-mini,c2,completion,200,0.001,0.25,2025-01-01T11:00:00Z",
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,2.0,2025-01-02T10:00:00Z",
        b"t3,u3,gpt-4o,c3,prompt,300,0.005,1.5,2025-01-02T09:00:00Z",
        b"t2,u2,gpt-4o-mini,c2,completion,200,0.001,0.25,2025-01-01T11:00:00Z",
        b"t4,u1,gpt-4o,c4,completion,50,0.005,0.5,2025-01-02T12:00:00Z",
        b"t1,u1,gpt-4o,c1,prompt,100,0.005,3.0,2025-01-02T10:00:00Z",
    ];
    let job = import(&app, users_file(&USERS), tx_file(&rows)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let t = &job["transactions"];
    assert_eq!(
        [&t["inserted"], &t["updated"], &t["unchanged"], &t["rejected"]],
        [4, 2, 1, 0],
        "t1 is inserted then changed twice, t2 repeated as it was: {job}"
    );
    let d1 = kpis(&app, "start_date=2025-01-01&end_date=2025-01-01").await;
    assert_eq!(d1["kpis"]["total_spendings"], 0.25, "t1 left the 1st: {d1}");
    let d2 = kpis(&app, "start_date=2025-01-02&end_date=2025-01-02").await;
    assert_eq!(d2["kpis"]["total_spendings"], 5.0, "t1 at its last cost, t3 and t4: {d2}");
    assert_same_days(&daily_tables(&app).await, &recomputed_daily_tables(&app).await);
}

async fn file_names_with_commas_are_kept_apart(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let (_dir, _, users, tx) = sample(1_000);
    let form = reqwest::multipart::Form::new()
        .part("users", reqwest::multipart::Part::bytes(users).file_name("users, march.csv"))
        .part("transactions", reqwest::multipart::Part::bytes(tx).file_name("usage,2025.csv"));
    let (status, body) = upload_with(&app.client, &app, form).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_job(&app, body["data"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["users"]["name"], "users, march.csv");
    assert_eq!(job["transactions"]["name"], "usage,2025.csv");
}

/// Migration 2 renames the module's tables to `usage_*` and splits the stored file names, keeping
/// every row of a database made by migration 1.
async fn the_prefix_migration_keeps_every_row(backend: Backend) {
    use sightline_platform::migrate;
    use sightline_usage::store::MIGRATIONS;
    let database = sightline_platform::testing::test_database(backend).await;
    let db = sightline_platform::Db::connect(&database.url).await.unwrap();
    migrate::apply(&db, "usage", &MIGRATIONS[..1]).await.unwrap();
    for sql in [
        "INSERT INTO users (id, username, region, is_active_sub, department, company_name, signup_date, \
         updated_at) VALUES ('u1', 'ann', 'EU', 1, 'ops', 'Acme', 1, 1)",
        "INSERT INTO jobs (id, file_location, filename, total_rows, processed_rows, job_metadata, created_at, \
         created_by, status, stage, updated_at, users_bytes, users_sha256, users_total, tx_bytes, tx_sha256) \
         VALUES ('j1', '/tmp', 'tx.csv,users.csv', 0, 0, '{}', 1, 'admin', 'succeeded', 'done', 1, 0, '', 0, 0, '')",
    ] {
        sqlx::query(sql).execute(db.writer()).await.unwrap();
    }
    assert_eq!(migrate::apply(&db, "usage", MIGRATIONS).await.unwrap(), MIGRATIONS.len() - 1);
    let user: String = sqlx::query("SELECT username FROM usage_users WHERE id = 'u1'")
        .fetch_one(db.reader())
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "ann");
    let row = sqlx::query("SELECT transactions_filename, users_filename FROM usage_jobs WHERE id = 'j1'")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!((row.get::<String, _>(0), row.get::<String, _>(1)), ("tx.csv".into(), "users.csv".into()));
    db.close().await;
}

/// The process's peak resident memory so far, in bytes (`VmHWM`).
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A multipart part streamed from `parts` (never whole in memory).
fn streamed(parts: Vec<bytes::Bytes>, name: &str) -> reqwest::multipart::Part {
    let body =
        reqwest::Body::wrap_stream(futures::stream::iter(parts.into_iter().map(Ok::<_, std::io::Error>)));
    reqwest::multipart::Part::stream(body).file_name(name.to_owned())
}

/// Issue 12, item 4: a row longer than `usage.max_row_bytes` is rejected with its line and the
/// import goes on; reading it holds no more than the limit (before, one 300 MB line raised
/// the peak to 823 MB).
async fn a_row_over_the_length_limit_is_rejected_by_line_in_bounded_memory(backend: Backend) {
    let app =
        spawn(backend, &[("usage.max_row_bytes", json!(65_536)), ("queue.run_in_server", json!(false))])
            .await;
    const HUGE_MIB: usize = 48;
    let mebibyte = bytes::Bytes::from(vec![b'9'; 1 << 20]);
    let mut parts = vec![bytes::Bytes::from(format!(
        "{TX_HEADER}t1,u1,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z\nt2,u1,gpt-4o,c1,prompt,"
    ))];
    parts.extend(std::iter::repeat_n(mebibyte, HUGE_MIB));
    parts.push(bytes::Bytes::from_static(
        b",0.005,0.5,2025-01-01T10:00:00Z\nt3,u1,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T11:00:00Z\n",
    ));
    let form = reqwest::multipart::Form::new()
        .part("users", reqwest::multipart::Part::bytes(users_file(&USERS)).file_name("users.csv"))
        .part("transactions", streamed(parts, "transactions.csv"));
    let before = peak_memory();
    let (status, body) = upload_with(&app.client, &app, form).await;
    assert_eq!(status, 202, "{body}");
    app.drain_queue().await;
    let grown = peak_memory().saturating_sub(before);
    let job = wait_job(&app, body["data"]["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let t = &job["transactions"];
    assert_eq!(
        (t["read"].as_i64(), t["inserted"].as_i64(), t["rejected"].as_i64()),
        (Some(3), Some(2), Some(1))
    );
    let (_, page) =
        app.get_json(&format!("/jobs/{}/rejects?format=json", job["job_id"].as_str().unwrap())).await;
    assert_eq!(page["items"][0]["line"], 3, "{page}");
    assert!(page["items"][0]["reason"].as_str().unwrap().contains("usage.max_row_bytes"), "{page}");
    println!("peak memory grew {} KiB over the upload and import of a {HUGE_MIB} MiB row", grown / 1024);
    assert!(grown < 24 << 20, "peak memory grew {} MiB for a {HUGE_MIB} MiB row", grown >> 20);
}

/// The upload directories under `dir` (one per upload).
fn upload_dirs(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits up to 10 s for `check` to hold.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what} did not happen within 10 s");
}

/// Issue 12, item 5: upload files are removed when the upload is cut off by the request
/// timeout, when a crash left them with no job (at start-up), when the import failed for good,
/// and after the retention period for a finished import's kept files.
async fn upload_files_are_removed_when_cut_off_orphaned_failed_or_expired(backend: Backend) {
    let uploads = tempfile::tempdir().unwrap();
    let old_orphan = uuid::Uuid::new_v4().to_string();
    let fresh_orphan = uuid::Uuid::new_v4().to_string();
    for name in [&old_orphan, &fresh_orphan, &"notes".to_owned()] {
        std::fs::create_dir(uploads.path().join(name)).unwrap();
        std::fs::write(uploads.path().join(name).join("users.csv"), "partial").unwrap();
    }
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::open(uploads.path().join(&old_orphan)).unwrap().set_modified(two_hours_ago).unwrap();
    let app = spawn(
        backend,
        &[
            ("usage.upload_dir", json!(uploads.path())),
            ("usage.keep_uploads", json!(true)),
            ("usage.upload_retention_secs", json!(1)),
            ("http.request_timeout_secs", json!(2)),
        ],
    )
    .await;
    // At start-up: the old orphan goes; an upload perhaps in flight elsewhere, and what is not
    // an upload, stay.
    let dir = uploads.path().to_owned();
    eventually("the start-up sweep", || !upload_dirs(&dir).contains(&old_orphan)).await;
    let mut kept = vec![fresh_orphan.clone(), "notes".to_owned()];
    kept.sort();
    assert_eq!(upload_dirs(&dir), kept);

    // Cut off by the request timeout: half a file, then nothing.
    let stalled = reqwest::Body::wrap_stream(
        futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(TX_HEADER))])
            .chain(futures::stream::pending()),
    );
    let half = reqwest::multipart::Form::new()
        .part("users", reqwest::multipart::Part::bytes(users_file(&USERS)).file_name("users.csv"))
        .part("transactions", reqwest::multipart::Part::stream(stalled).file_name("transactions.csv"));
    let started = std::time::Instant::now();
    let cut = app.client.post(app.url("/upload-csv")).multipart(half).send().await;
    assert!(cut.as_ref().map_or(true, |r| r.status() == 408), "{cut:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    eventually("the cut-off upload's removal", || upload_dirs(&dir) == kept).await;

    // Failed for good (not the expected header): its files go with it.
    app.expect_leftover_jobs();
    let (status, body) =
        upload_with(&app.client, &app, form(users_file(&USERS), b"not,the,header\n1,2,3\n".to_vec())).await;
    assert_eq!(status, 202, "{body}");
    let failed = wait_job(&app, body["data"]["job_id"].as_str().unwrap()).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    eventually("the failed upload's removal", || upload_dirs(&dir) == kept).await;

    // Kept after success (keep_uploads), then swept once the retention period has passed.
    let job = import(
        &app,
        users_file(&USERS),
        tx_file(&[b"t1,u1,gpt-4o,c1,prompt,100,0.005,0.5,2025-01-01T10:00:00Z"]),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let id = job["job_id"].as_str().unwrap().to_owned();
    assert!(upload_dirs(&dir).contains(&id), "kept by usage.keep_uploads");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut tx = app.platform.db.begin().await.unwrap();
    app.platform.queue.push(&mut tx, &sightline_usage::jobs::SweepUploads::default()).await.unwrap();
    tx.commit().await.unwrap();
    app.platform.queue.wake();
    eventually("the retention sweep", || !upload_dirs(&dir).contains(&id)).await;
    assert_eq!(upload_dirs(&dir), kept, "the fresh orphan is still younger than a request may last");
}

storage_tests!(
    a_row_over_the_length_limit_is_rejected_by_line_in_bounded_memory,
    upload_files_are_removed_when_cut_off_orphaned_failed_or_expired,
    file_names_with_commas_are_kept_apart,
    the_prefix_migration_keeps_every_row,
    rowids_whose_keys_clash_are_kept_apart,
    a_rowid_repeated_in_the_next_chunks_keeps_its_last_values,
    an_upload_is_imported_and_the_kpis_equal_the_transactions,
    uploading_the_same_files_twice_changes_no_figure,
    a_kpi_range_of_any_length_is_answered_from_the_data_in_it,
    a_second_upload_adding_rows_to_the_same_days_keeps_every_figure,
    a_changed_row_moves_its_figures_to_its_new_day,
    bad_rows_are_reported_with_line_and_reason_and_the_rest_is_imported,
    a_file_that_is_not_csv_fails_the_job_and_writes_nothing,
    upload_errors_name_the_field,
    progress_streams_over_the_websocket_until_done,
    access_follows_roles_and_the_job_dashboard_lists_every_job,
);
