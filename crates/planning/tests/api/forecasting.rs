//! Forecasting over the API on SQLite and PostgreSQL: the methods, generate with each id the
//! original had and `auto`, stored results and accuracy, too little history, anomalies.

use serde_json::json;
use sightline_platform::Backend;

use crate::{send, spawn};

async fn forecasts_are_generated_stored_and_scored(backend: Backend) {
    let app = spawn(backend).await;
    let products = json!({"meta": {"source_system": "t"}, "items": [{"sku": "F", "name": "Seasonal"}, {"sku": "G", "name": "Short"}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/products/sync", &products).await.0, 200);
    // Three years of a seasonal, trending product, and a spike in month 20.
    let mut items = Vec::new();
    for t in 0..36i32 {
        let period = chrono::NaiveDate::from_ymd_opt(2023 + t / 12, (t % 12) as u32 + 1, 1).unwrap();
        let season = 1.0 + 0.3 * (2.0 * std::f64::consts::PI * f64::from(t % 12) / 12.0).sin();
        let qty = if t == 20 { 2_000.0 } else { ((200.0 + 4.0 * f64::from(t)) * season).round() };
        items.push(json!({"sku": "F", "period": period, "actual_qty": qty}));
    }
    items.push(json!({"sku": "G", "period": "2026-01-01", "actual_qty": 5}));
    items.push(json!({"sku": "G", "period": "2026-03-01", "actual_qty": 7}));
    let actuals = json!({"meta": {"source_system": "t"}, "items": items});
    assert_eq!(app.post_json("/api/v1/integrations/erp/demand-actuals/sync", &actuals).await.0, 200);

    // The history a chart draws: every month from the first, a month without sales as 0.
    let (_, history) = app.get_json("/api/v1/forecasting/history?product_id=1").await;
    assert_eq!(history.as_array().map(Vec::len), Some(36));
    assert_eq!(
        (&history[0]["period"], &history[20]["actual_qty"]),
        (&json!("2023-01-01"), &json!("2000.00"))
    );
    let (_, short) = app.get_json("/api/v1/forecasting/history?product_id=2").await;
    assert_eq!(
        short,
        json!([{"period": "2026-01-01", "actual_qty": "5.00"}, {"period": "2026-02-01", "actual_qty": "0.00"},
        {"period": "2026-03-01", "actual_qty": "7.00"}])
    );
    assert_eq!(app.get_json("/api/v1/forecasting/history?product_id=99").await.0, 404);

    let (_, models) = app.get_json("/api/v1/forecasting/models").await;
    let ids: Vec<&str> = models.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    for id in
        ["moving_average", "exp_smoothing", "prophet", "auto", "ets", "croston", "tsb", "seasonal_naive"]
    {
        assert!(ids.contains(&id), "{id}");
    }

    let viewer = app.client_with(&app.user_with_roles(&["viewer"]).await.access_token);
    let (status, _) = send(&viewer, "POST", app.url("/api/v1/forecasting/generate?product_id=1"), None).await;
    assert_eq!(status, 403, "viewers do not generate");
    for model in ["auto", "ets", "exp_smoothing", "prophet", "moving_average", "seasonal_naive", "tsb"] {
        let (status, f) = app
            .post_empty(&format!("/api/v1/forecasting/generate?product_id=1&horizon=12&model_type={model}"))
            .await;
        assert_eq!(status, 200, "{model}: {f}");
        assert_eq!((f["model_type"].as_str(), f["horizon"].as_u64()), (Some(model), Some(12)));
        let months = f["forecasts"].as_array().unwrap();
        assert_eq!(months.len(), 12);
        assert_eq!(months[0]["period"], "2026-01-01", "the month after the history");
        for m in months {
            let (lo, mid, hi) = (
                m["lower_bound"].as_f64().unwrap(),
                m["predicted_qty"].as_f64().unwrap(),
                m["upper_bound"].as_f64().unwrap(),
            );
            assert!(0.0 <= lo && lo <= mid && mid <= hi, "{model}: {m}");
        }
        assert!(f["accuracy"]["smape"].as_f64().is_some(), "{model}: a backtest: {f}");
    }
    let (_, auto) = app.post_empty("/api/v1/forecasting/generate?product_id=1&model_type=auto").await;
    assert_ne!(auto["method_used"], "auto", "{auto}");
    let (_, results) = app.get_json("/api/v1/forecasting/results?product_id=1&model_type=ets").await;
    assert_eq!(results.as_array().unwrap().len(), 12, "generated twice, stored once per month");
    assert_eq!(results[0]["confidence"], "95.00");
    let (_, accuracy) = app.get_json("/api/v1/forecasting/accuracy?product_id=1").await;
    assert_eq!(accuracy.as_array().unwrap().len(), 7, "{accuracy}");
    assert!(accuracy[0]["avg_mase"].as_f64().is_some());

    let (status, short) = app.post_empty("/api/v1/forecasting/generate?product_id=2").await;
    assert_eq!(status, 200, "3 months (one a gap) are enough: {short}");
    let (status, e) =
        app.post_empty("/api/v1/forecasting/generate?product_id=1&model_type=crystal_ball").await;
    assert_eq!((status, e["error"]["details"][0]["field"].as_str()), (422, Some("model_type")));
    let (status, e) = app.post_empty("/api/v1/forecasting/generate?product_id=1&horizon=25").await;
    assert_eq!((status, e["error"]["details"][0]["field"].as_str()), (422, Some("horizon")));
    let (status, _) = app.post_empty("/api/v1/forecasting/generate?product_id=99").await;
    assert_eq!(status, 404);
    let (_, _) = app.post_json("/api/v1/products", &json!({"sku": "H", "name": "No history"})).await;
    let (status, e) = app.post_empty("/api/v1/forecasting/generate?product_id=3").await;
    assert_eq!((status, e["error"]["code"].as_str()), (422, Some("INSUFFICIENT_DATA")), "{e}");

    let (status, anomalies) = app.post_empty("/api/v1/forecasting/anomalies/detect?product_id=1").await;
    assert_eq!(status, 200);
    let found = anomalies.as_array().unwrap();
    assert!(found.iter().any(|a| a["period"] == "2024-09-01" && a["anomaly_type"] == "spike"), "{anomalies}");
    let (_, none) = app.post_empty("/api/v1/forecasting/anomalies/detect?product_id=2").await;
    assert_eq!(none, json!([]));
}

/// A run forecasts every product as a job (one with too little history counted, not failed),
/// and a stored forecast becomes new draft versions of demand plans, netted against sales.
async fn a_run_forecasts_every_product_and_forecasts_become_plan_versions(backend: Backend) {
    let app = spawn(backend).await;
    let products = json!({"meta": {"source_system": "t"}, "items": [
        {"sku": "P1", "name": "One"}, {"sku": "P2", "name": "Two"}, {"sku": "P3", "name": "No history"}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/products/sync", &products).await.0, 200);
    let mut items = Vec::new();
    for t in 0..30i32 {
        let period = chrono::NaiveDate::from_ymd_opt(2023 + t / 12, (t % 12) as u32 + 1, 1).unwrap();
        items.push(json!({"sku": "P1", "period": period, "actual_qty": 100 + t}));
        items.push(json!({"sku": "P2", "period": period, "actual_qty": 50 + (t % 12) * 5}));
    }
    let actuals = json!({"meta": {"source_system": "t"}, "items": items});
    assert_eq!(app.post_json("/api/v1/integrations/erp/demand-actuals/sync", &actuals).await.0, 200);

    let (status, run) =
        app.post_json("/api/v1/forecasting/runs", &json!({"model_type": "ets", "horizon": 3})).await;
    assert_eq!((status, &run["status"], &run["total"]), (202, &json!("queued"), &json!(3)), "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let run = loop {
        let (_, run) = app.get_json(&format!("/api/v1/forecasting/runs/{id}")).await;
        if run["status"] == "succeeded" || run["status"] == "failed" {
            break run;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{run}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        (&run["status"], &run["done"], &run["failed"]),
        (&json!("succeeded"), &json!(2), &json!(1)),
        "{run}"
    );
    let (_, results) = app.get_json("/api/v1/forecasting/results?model_type=ets").await;
    assert_eq!(results.as_array().unwrap().len(), 6, "3 months of 2 products");
    let (_, runs) = app.get_json("/api/v1/forecasting/runs").await;
    assert_eq!(runs[0]["id"], id.as_str());
    let (status, _) = app.post_json("/api/v1/forecasting/runs", &json!({"horizon": 30})).await;
    assert_eq!(status, 422);

    // A plan of the first forecast month exists already, and some of it has sold.
    let first = results[0]["period"].as_str().unwrap().to_owned();
    let forecast_qty: f64 = results[0]["predicted_qty"].as_str().unwrap().parse().unwrap();
    let plan = json!({"product_id": 1, "period": first, "forecast_qty": 1});
    assert_eq!(app.post_json("/api/v1/demand/plans", &plan).await.0, 201);
    let sold = json!({"meta": {"source_system": "t"}, "items": [{"sku": "P1", "period": first, "actual_qty": forecast_qty + 40.0}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/demand-actuals/sync", &sold).await.0, 200);
    let (status, plans) = app
        .post_json("/api/v1/demand/plans/from-forecast", &json!({"product_id": 1, "model_type": "ets"}))
        .await;
    assert_eq!(status, 201, "{plans}");
    let plans = plans.as_array().unwrap();
    assert_eq!(plans.len(), 3);
    assert_eq!((&plans[0]["version"], &plans[0]["status"]), (&json!(2), &json!("draft")), "a new version");
    let netted: f64 = plans[0]["forecast_qty"].as_str().unwrap().parse().unwrap();
    assert!(
        (netted - (forecast_qty + 40.0)).abs() < 0.011,
        "sales above the forecast consume it: {}",
        plans[0]
    );
    assert_eq!(plans[1]["version"], 1);
    assert!(plans[1]["notes"].as_str().unwrap().starts_with("From the ets forecast (ETS("));
    let (status, e) = app
        .post_json("/api/v1/demand/plans/from-forecast", &json!({"product_id": 2, "model_type": "tsb"}))
        .await;
    assert_eq!((status, e["error"]["details"][0]["field"].as_str()), (422, Some("model_type")));
}

sightline_platform::storage_tests!(
    forecasts_are_generated_stored_and_scored,
    a_run_forecasts_every_product_and_forecasts_become_plan_versions
);
