//! Inventory, the gap analysis and bulk loads (ERP JSON sync and CSV), on SQLite and PostgreSQL.

use chrono::Datelike as _;
use serde_json::{json, Value};
use sightline_platform::testing::TestApp;
use sightline_platform::Backend;

use crate::{send, spawn};

async fn csv(app: &TestApp, path: &str, body: &str) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(path))
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn count(app: &TestApp, table: &str) -> i64 {
    use sqlx::Row as _;
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(app.platform.db.reader())
        .await
        .unwrap()
        .get(0)
}

/// Products by ERP sync, inventory and actuals by CSV: statuses by the original's rule, days of
/// supply and valuation computed, health and alerts; bad or unknown rows refuse the whole file,
/// naming the line; loading again changes nothing.
async fn loads_make_positions_with_status_days_of_supply_and_value(backend: Backend) {
    let app = spawn(backend).await;
    let sync = json!({"meta": {"source_system": "sap", "batch_id": "b1"}, "items": [
        {"sku": "A", "name": "Alpha", "category_name": "Drinks", "unit_cost": "2.50", "lead_time_days": 10},
        {"sku": "B", "name": "Beta", "category_name": "Drinks", "unit_cost": 4},
        {"sku": "C", "name": "Gamma", "product_family": "Snacks"},
    ]});
    let (status, synced) = app.post_json("/api/v1/integrations/erp/products/sync", &sync).await;
    assert_eq!(status, 200, "{synced}");
    assert_eq!(
        (&synced["success"], &synced["processed"], &synced["created"], &synced["batch_id"]),
        (&json!(true), &json!(3), &json!(3), &json!("b1"))
    );
    let (_, categories) = app.get_json("/api/v1/products/categories").await;
    assert_eq!(categories.as_array().unwrap().len(), 1, "Drinks made once: {categories}");
    let (_, again) = app.post_json("/api/v1/integrations/erp/products/sync", &sync).await;
    assert_eq!((&again["created"], &again["updated"]), (&json!(0), &json!(3)));

    // A file with a bad line and an unknown SKU: refused whole, each named.
    let bad = "sku,location,on_hand_qty,allocated_qty,in_transit_qty,safety_stock,reorder_point,max_stock\n\
               A,Main,70,0,0,50,80,\n\
               B,Main,ten,0,0,0,0,\n\
               Z,Main,5,0,0,0,0,\n";
    let (status, refused) = csv(&app, "/api/v1/import/inventory", bad).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["error"]["details"][0]["field"], "line 3: on_hand_qty", "{refused}");
    let (status, refused) = csv(&app, "/api/v1/import/inventory", &bad.replace("ten", "10")).await;
    assert_eq!(
        (status, refused["error"]["details"][0]["field"].as_str()),
        (422, Some("line 4: sku")),
        "{refused}"
    );
    assert_eq!(count(&app, "planning_inventory").await, 0, "nothing of a refused file is written");

    let good = "sku,location,on_hand_qty,allocated_qty,in_transit_qty,safety_stock,reorder_point,max_stock\n\
                A,Main,70,0,0,50,80,\n\
                A,East,700,0,0,50,80,600\n\
                B,Main,40,0,0,50,20,\n\
                C,Main,100,0,0,10,20,0\n";
    let (status, loaded) = csv(&app, "/api/v1/import/inventory", good).await;
    assert_eq!((status, &loaded["created"]), (200, &json!(4)), "{loaded}");
    let (_, again) = csv(&app, "/api/v1/import/inventory", good).await;
    assert_eq!((&again["created"], &again["updated"]), (&json!(0), &json!(4)));
    assert_eq!(count(&app, "planning_inventory").await, 4);

    // Six months of A's demand: 30 a month, so a day is 1 unit.
    let today = chrono::Utc::now().date_naive();
    let mut actuals = String::from("sku,period,actual_qty,region,channel\n");
    let mut month = today.with_day0(0).unwrap();
    for _ in 0..6 {
        month = (month - chrono::Duration::days(1)).with_day0(0).unwrap();
        actuals.push_str(&format!("A,{month},30,,\n"));
    }
    let (status, loaded) = csv(&app, "/api/v1/import/demand-actuals", &actuals).await;
    assert_eq!((status, &loaded["processed"]), (200, &json!(6)), "{loaded}");

    let (_, page) = app.get_json("/api/v1/inventory?page_size=10").await;
    let items = page["items"].as_array().unwrap();
    let by = |sku_id: i64, location: &str| {
        items.iter().find(|i| i["product_id"] == sku_id && i["location"] == location).unwrap().clone()
    };
    let (a_main, a_east, b_main, c_main) = (by(1, "Main"), by(1, "East"), by(2, "Main"), by(3, "Main"));
    assert_eq!(
        (&a_main["status"], &a_east["status"], &b_main["status"], &c_main["status"]),
        (&json!("critical"), &json!("excess"), &json!("low"), &json!("normal"))
    );
    assert_eq!((&a_main["days_of_supply"], &a_main["valuation"]), (&json!("70.00"), &json!("175.00")));
    assert_eq!(
        (&c_main["days_of_supply"], &c_main["valuation"]),
        (&Value::Null, &Value::Null),
        "no demand, no cost"
    );
    assert_eq!(a_main["on_hand_qty"], "70.00");

    let (_, health) = app.get_json("/api/v1/inventory/health").await;
    assert_eq!(health["total_products"], 4);
    assert_eq!((&health["critical_count"], &health["critical_pct"]), (&json!(1), &json!(25.0)));
    assert_eq!(health["total_value"], "2085.00", "70×2.5 + 700×2.5 + 40×4");
    let (_, alerts) = app.get_json("/api/v1/inventory/alerts").await;
    assert_eq!(alerts["critical"][0]["on_hand_qty"], json!(70.0));
    assert_eq!(alerts["excess"].as_array().unwrap().len(), 1);

    // A manager's edit and a policy override: the status follows.
    let manager = app.client_with(&app.user_with_roles(&["inventory_manager"]).await.access_token);
    let viewer = app.client_with(&app.user_with_roles(&["viewer"]).await.access_token);
    let id = a_main["id"].as_i64().unwrap();
    let url = app.url(&format!("/api/v1/inventory/{id}"));
    assert_eq!(send(&viewer, "PUT", url.clone(), Some(json!({"on_hand_qty": 90}))).await.0, 403);
    let (status, edited) = send(&manager, "PUT", url, Some(json!({"on_hand_qty": 90}))).await;
    assert_eq!((status, &edited["status"]), (200, &json!("normal")), "{edited}");
    let url = app.url(&format!("/api/v1/inventory/policies/{id}/override"));
    let (status, bad) =
        send(&manager, "PUT", url.clone(), Some(json!({"reorder_point": 100, "reason": "x"}))).await;
    assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some("reason")));
    let (_, overridden) =
        send(&manager, "PUT", url, Some(json!({"reorder_point": 100, "reason": "new supplier is slower"})))
            .await;
    assert_eq!((&overridden["reorder_point"], &overridden["status"]), (&json!("100.00"), &json!("critical")));
    let (status, _) = app.get_json("/api/v1/inventory/99999").await;
    assert_eq!(status, 404);

    // The ERP inventory sync skips unknown SKUs and says so.
    let sync = json!({"meta": {"source_system": "sap", "dry_run": false}, "items": [
        {"sku": "B", "location": "Main", "on_hand_qty": 10}, {"sku": "Nope", "location": "Main", "on_hand_qty": 1}]});
    let (_, synced) = app.post_json("/api/v1/integrations/erp/inventory/sync", &sync).await;
    assert_eq!((&synced["updated"], &synced["skipped"]), (&json!(1), &json!(1)), "{synced}");
    let (_, bad) = app
        .post_json("/api/v1/integrations/erp/inventory/sync", &json!({"meta": {"source_system": "sap"}, "items": [{"sku": "B", "location": "Main", "on_hand_qty": -1}]}))
        .await;
    assert_eq!(bad["error"]["details"][0]["field"], "items[0].on_hand_qty");
}

/// FACTS-004 §3's verified example: demand 500, planned 480, 190 available.
async fn the_gap_analysis_has_the_later_originals_figures(backend: Backend) {
    let app = spawn(backend).await;
    let (_, p) = app.post_json("/api/v1/products", &json!({"sku": "G", "name": "Gap"})).await;
    let product_id = p["id"].as_i64().unwrap();
    let plan = json!({"product_id": product_id, "period": "2026-03-01", "forecast_qty": 500});
    assert_eq!(app.post_json("/api/v1/demand/plans", &plan).await.0, 201);
    let supply = json!({"product_id": product_id, "period": "2026-03-01", "planned_prod_qty": 480});
    assert_eq!(app.post_json("/api/v1/supply/plans", &supply).await.0, 201);
    let stock = json!({"meta": {"source_system": "t"}, "items": [
        {"sku": "G", "location": "Main", "on_hand_qty": 200, "allocated_qty": 30, "in_transit_qty": 20}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/inventory/sync", &stock).await.0, 200);
    let (status, gap) = app.get_json("/api/v1/supply/gap-analysis?period=2026-03-01").await;
    assert_eq!(status, 200, "{gap}");
    let row = &gap[0];
    for (key, want) in [
        ("demand_qty", json!("500.00")),
        ("inventory_available_qty", json!("190.00")),
        ("effective_supply_qty", json!("670.00")),
        ("additional_prod_required_qty", json!("310.00")),
        ("plan_gap_qty", json!("-20.00")),
        ("plan_gap_pct", json!(-4.0)),
        ("actual_gap_qty", json!("-500.00")),
        ("actual_gap_pct", json!(-100.0)),
        ("coverage_gap_qty", json!("170.00")),
        ("coverage_gap_pct", json!(34.0)),
        ("supply_qty", json!("670.00")),
        ("gap", json!("170.00")),
        ("status", json!("excess")),
        ("sku", json!("G")),
    ] {
        assert_eq!(row[key], want, "{key}: {row}");
    }
    let (_, none) = app
        .get_json(&format!("/api/v1/supply/gap-analysis?period=2026-03-01&product_id={}", product_id + 1))
        .await;
    assert_eq!(none, json!([]));
}

/// Service-level analytics on a position with two years of history: the analytical figures by
/// hand, the Monte Carlo ones near them, and too little history refused.
async fn service_levels_are_computed_from_demand_history_and_lead_time(backend: Backend) {
    let app = spawn(backend).await;
    let sync = json!({"meta": {"source_system": "t"}, "items": [{"sku": "S", "name": "S", "lead_time_days": 9}, {"sku": "T", "name": "T"}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/products/sync", &sync).await.0, 200);
    let stock = json!({"meta": {"source_system": "t"}, "items": [
        {"sku": "S", "location": "Main", "on_hand_qty": 100, "reorder_point": 40, "safety_stock": 10},
        {"sku": "T", "location": "Main", "on_hand_qty": 5}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/inventory/sync", &stock).await.0, 200);
    // Months alternate 90 and 150: mean 120 (4 a day), sample std ≈ 30.6.
    let mut rows = String::from("sku,period,actual_qty\n");
    for m in 0..24 {
        let period = chrono::NaiveDate::from_ymd_opt(2024 + m / 12, (m % 12) as u32 + 1, 1).unwrap();
        rows.push_str(&format!("S,{period},{}\n", if m % 2 == 0 { 90 } else { 150 }));
    }
    rows.push_str("T,2026-01-01,5\n");
    assert_eq!(csv(&app, "/api/v1/import/demand-actuals", &rows).await.0, 200);

    let (status, a) = app
        .post_json("/api/v1/inventory/analytics/service-level", &json!({"product_id": 1, "location": "Main"}))
        .await;
    assert_eq!(status, 200, "{a}");
    let monthly_std = (24.0f64 * 900.0 / 23.0).sqrt();
    let daily_std = monthly_std / 30f64.sqrt();
    let ltd_std = (9.0 * daily_std * daily_std).sqrt();
    assert_eq!((a["lead_time_days"].as_f64(), a["lead_time_demand_mean"].as_f64()), (Some(9.0), Some(36.0)));
    assert!((a["lead_time_demand_std"].as_f64().unwrap() - ltd_std).abs() < 0.01, "{a}");
    let rop = a["recommended_reorder_point"].as_f64().unwrap();
    assert!((rop - (36.0 + 1.6449 * ltd_std)).abs() < 0.02, "{a}");
    let csl = a["cycle_service_level"].as_f64().unwrap();
    assert!(csl > 0.5 && csl < 1.0 && (a["stockout_probability"].as_f64().unwrap() + csl - 1.0).abs() < 1e-9);
    assert_eq!(a["service_level_curve"].as_array().unwrap().len(), 4);
    assert_eq!(a["distribution"].as_array().unwrap().len(), 20);

    let (_, mc) = app
        .post_json(
            "/api/v1/inventory/analytics/service-level",
            &json!({"inventory_id": a["inventory_id"], "method": "monte_carlo", "simulation_runs": 20000, "seed": 3}),
        )
        .await;
    assert!((mc["recommended_reorder_point"].as_f64().unwrap() - rop).abs() < 1.0, "{mc}");
    let (_, again) = app
        .post_json(
            "/api/v1/inventory/analytics/service-level",
            &json!({"inventory_id": a["inventory_id"], "method": "monte_carlo", "simulation_runs": 20000, "seed": 3}),
        )
        .await;
    assert_eq!(mc, again, "the same seed, the same answer");

    let (status, short) = app
        .post_json("/api/v1/inventory/analytics/service-level", &json!({"product_id": 2, "location": "Main"}))
        .await;
    assert_eq!((status, short["error"]["code"].as_str()), (422, Some("INSUFFICIENT_DATA")), "{short}");
    let (status, bad) = app
        .post_json(
            "/api/v1/inventory/analytics/service-level",
            &json!({"inventory_id": 1, "target_service_level": 1.5, "method": "guess"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(bad["error"]["details"].as_array().unwrap().len(), 2, "{bad}");
}

sightline_platform::storage_tests!(
    loads_make_positions_with_status_days_of_supply_and_value,
    the_gap_analysis_has_the_later_originals_figures,
    service_levels_are_computed_from_demand_history_and_lead_time
);
