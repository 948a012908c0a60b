//! KPI metrics (FACTS.md 004) and the dashboard's summary and alerts (FACTS-004 §7).

use serde_json::{json, Value};
use sightline_platform::Backend;

use crate::scenarios::the_verified_example;
use crate::{send, spawn};

async fn kpis_follow_the_originals_rules_and_feed_the_dashboard(backend: Backend) {
    let app = spawn(backend).await;
    let executive = app.client_with(&app.user_with_roles(&["executive"]).await.access_token);
    let planner = app.client_with(&app.user_with_roles(&["demand_planner"]).await.access_token);
    let metrics = app.url("/api/v1/kpi/metrics");
    let february = json!({"metric_name": "Forecast Accuracy", "metric_category": "demand", "period": "2026-02-01",
        "value": 80, "target": "90", "unit": "%"});
    assert_eq!(send(&planner, "POST", metrics.clone(), Some(february.clone())).await.0, 403);
    let (status, first) = send(&executive, "POST", metrics.clone(), Some(february.clone())).await;
    assert_eq!((status, &first["value"], &first["trend"]), (201, &json!("80.0000"), &Value::Null), "{first}");
    let (status, twice) = send(&executive, "POST", metrics.clone(), Some(february)).await;
    assert_eq!((status, twice["error"]["code"].as_str()), (409, Some("CONFLICT")));
    for (body, field) in [
        (
            json!({"metric_name": "X", "metric_category": "mood", "period": "2026-02-01", "value": 1}),
            "metric_category",
        ),
        (
            json!({"metric_name": "X", "metric_category": "demand", "period": "2026-02-15", "value": 1}),
            "period",
        ),
    ] {
        let (status, bad) = send(&executive, "POST", metrics.clone(), Some(body)).await;
        assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some(field)));
    }
    // March takes February's target and value as its previous one.
    let march = json!({"metric_name": "Forecast Accuracy", "metric_category": "demand", "period": "2026-03-01", "value": 70});
    let (_, m) = send(&executive, "POST", metrics.clone(), Some(march)).await;
    assert_eq!(
        (&m["target"], &m["previous_value"], &m["variance"], &m["variance_pct"], &m["trend"]),
        (&json!("90.0000"), &json!("80.0000"), &json!("-20.0000"), &json!("-22.2222"), &json!("declining"))
    );
    let otif =
        json!({"metric_name": "OTIF", "metric_category": "service", "period": "2026-01-01", "value": 94});
    assert_eq!(send(&executive, "POST", metrics.clone(), Some(otif)).await.0, 201);

    let (_, listed) = app.get_json("/api/v1/kpi/metrics?category=demand&period_from=2026-03-01").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    let (_, board) = app.get_json("/api/v1/kpi/dashboard").await;
    assert_eq!(
        (&board["demand_kpis"][0]["period"], &board["service_kpis"][0]["metric_name"]),
        (&json!("2026-03-01"), &json!("OTIF"))
    );
    let (_, alerts) = app.get_json("/api/v1/kpi/alerts").await;
    assert_eq!(
        alerts,
        json!([{"metric_name": "Forecast Accuracy", "category": "demand", "value": 70.0, "target": 90.0,
        "variance_pct": -22.22, "severity": "critical", "period": "2026-03-01"}])
    );

    // The dashboard: FACTS-004 §7's verified figures.
    let product_id = the_verified_example(&app).await;
    let (_, stock) = app.get_json("/api/v1/inventory").await;
    let position = stock["items"][0]["id"].as_i64().unwrap();
    let edit = json!({"on_hand_qty": 70, "allocated_qty": 0, "in_transit_qty": 0});
    let put = |path: String, body: Value| send(&app.client, "PUT", app.url(&path), Some(body));
    assert_eq!(put(format!("/api/v1/inventory/{position}"), edit).await.0, 200);
    let policy = json!({"reorder_point": 100, "reason": "supplier is slower"});
    let (_, critical) = put(format!("/api/v1/inventory/policies/{position}/override"), policy).await;
    assert_eq!(critical["status"], "critical", "{critical}");
    let (_, summary) = app.get_json("/api/v1/dashboard/summary").await;
    assert_eq!(summary["demand_plans"], json!({"draft": 1, "submitted": 0, "approved": 0, "total": 1}));
    assert_eq!(
        summary["inventory_health"],
        json!({"total_products": 1, "normal": 0, "low": 0, "critical": 1, "excess": 0, "total_value": 700.0})
    );
    assert_eq!(summary["kpis"], json!({"forecast_accuracy": 70.0, "otif": 94.0}));
    assert_eq!(summary["sop_cycle"], Value::Null);
    let (_, alerts) = app.get_json("/api/v1/dashboard/alerts").await;
    assert_eq!(
        alerts["inventory_critical"],
        json!([{"product_id": product_id, "location": "Main", "on_hand": 70.0}])
    );
    assert_eq!(
        alerts["kpi_alerts"],
        json!([{"type": "kpi", "severity": "warning", "message": "Forecast Accuracy is 22.2% off target",
            "metric": "Forecast Accuracy", "value": 70.0, "target": 90.0}]),
        "February is 11.1 % off: under the dashboard's 15 %"
    );
    assert_eq!(alerts["total_alerts"], 2);

    // A new target for the latest month clears the KPI alert.
    let (_, retargeted) = send(
        &executive,
        "POST",
        app.url("/api/v1/kpi/targets"),
        Some(json!({"metric_name": "Forecast Accuracy", "target": 75})),
    )
    .await;
    assert_eq!(
        (&retargeted["period"], &retargeted["variance_pct"]),
        (&json!("2026-03-01"), &json!("-6.6667"))
    );
    assert_eq!(app.get_json("/api/v1/kpi/alerts").await.1, json!([]));
    let (status, _) = send(
        &executive,
        "POST",
        app.url("/api/v1/kpi/targets"),
        Some(json!({"metric_name": "Nope", "target": 1})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, gone) =
        send(&executive, "DELETE", app.url(&format!("/api/v1/kpi/metrics/{}", m["id"])), None).await;
    assert_eq!((status, gone), (200, json!({"message": "KPI metric deleted successfully"})));
}

async fn kpis_are_computed_from_the_plans_actuals_and_stock(backend: Backend) {
    let app = spawn(backend).await;
    the_verified_example(&app).await;
    let sold = json!({"meta": {"source_system": "t"}, "items": [{"sku": "G", "period": "2026-03-01", "actual_qty": 450}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/demand-actuals/sync", &sold).await.0, 200);
    let (status, computed) = app.post_json("/api/v1/kpi/compute?period=2026-03-01", &json!({})).await;
    assert_eq!(status, 200, "{computed}");
    let value = |name: &str| {
        computed.as_array().unwrap().iter().find(|m| m["metric_name"] == name).map(|m| m["value"].clone())
    };
    for (name, want) in [
        ("Forecast Accuracy", "88.8889"),
        ("Forecast Bias", "11.1111"),
        ("Plan Fill Rate", "100.0000"),
        ("Supply Plan Coverage", "96.0000"),
        ("Planned Revenue", "7500.0000"),
        ("Planned Margin", "33.3333"),
    ] {
        assert_eq!(value(name), Some(json!(want)), "{name} in {computed}");
    }
    assert_eq!(value("Inventory Value"), None, "the stock is today's: not March's");
    // Computing again replaces the month's values; the next month carries them as previous.
    let (_, again) = app.post_json("/api/v1/kpi/compute?period=2026-03-01", &json!({})).await;
    assert_eq!(
        (again[0]["id"].clone(), again.as_array().map(Vec::len)),
        (computed[0]["id"].clone(), Some(6))
    );
    let (_, product) = app.get_json("/api/v1/products?search=G").await;
    let april = json!({"product_id": product["items"][0]["id"], "period": "2026-04-01", "forecast_qty": 100});
    assert_eq!(app.post_json("/api/v1/demand/plans", &april).await.0, 201);
    let (_, april) = app.post_json("/api/v1/kpi/compute?period=2026-04-01", &json!({})).await;
    let fill = april.as_array().unwrap().iter().find(|m| m["metric_name"] == "Plan Fill Rate").unwrap();
    assert_eq!((&fill["previous_value"], &fill["trend"]), (&json!("100.0000"), &json!("stable")));
    // This month has the stock's KPIs: 200 on hand at 10.
    let this_month = chrono::Utc::now().date_naive().format("%Y-%m-01").to_string();
    let (_, now) = app.post_json(&format!("/api/v1/kpi/compute?period={this_month}"), &json!({})).await;
    let names: Vec<&str> =
        now.as_array().unwrap().iter().map(|m| m["metric_name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["Inventory Value", "Healthy Positions"], "no plans this month");
    assert_eq!((&now[0]["value"], &now[1]["value"]), (&json!("2000.0000"), &json!("100.0000")));
    for bad in ["April", "2026-04-15"] {
        let (status, _) = app.post_json(&format!("/api/v1/kpi/compute?period={bad}"), &json!({})).await;
        assert_eq!(status, 422, "{bad}");
    }
}

/// The nightly job computes this month's KPIs and the latest planned month's.
async fn the_scheduled_job_computes_this_and_the_latest_planned_months_kpis(backend: Backend) {
    let app = spawn(backend).await;
    the_verified_example(&app).await;
    let mut conn = app.platform.db.writer().acquire().await.unwrap();
    app.platform.queue.push(&mut conn, &sightline_planning::jobs::ComputeKpis {}).await.unwrap();
    drop(conn);
    app.drain_queue().await;
    let this_month = chrono::Utc::now().date_naive().format("%Y-%m-01").to_string();
    let (_, now) = app.get_json(&format!("/api/v1/kpi/metrics?period_from={this_month}")).await;
    let (_, march) = app.get_json("/api/v1/kpi/metrics?period_from=2026-03-01&period_to=2026-03-01").await;
    let names = |v: &Value| {
        let mut n: Vec<String> =
            v.as_array().unwrap().iter().map(|m| m["metric_name"].as_str().unwrap().to_owned()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&now), vec!["Healthy Positions", "Inventory Value"]);
    assert_eq!(
        names(&march),
        vec!["Plan Fill Rate", "Planned Margin", "Planned Revenue", "Supply Plan Coverage"]
    );
}

sightline_platform::storage_tests!(
    kpis_follow_the_originals_rules_and_feed_the_dashboard,
    kpis_are_computed_from_the_plans_actuals_and_stock,
    the_scheduled_job_computes_this_and_the_latest_planned_months_kpis
);
