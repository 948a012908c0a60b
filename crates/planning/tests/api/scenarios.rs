//! Scenarios (FACTS-004 §5): CRUD with the original's shapes, a run over the stored plans and
//! stock, compare in both bodies, the trade-off summary, and promotion into plans.

use serde_json::{json, Value};
use sightline_platform::testing::TestApp;
use sightline_platform::Backend;

use crate::{send, spawn};

/// FACTS-004 §3 and §5's example: one product at 15 costing 10, demand 500, supply 480, 200 on
/// hand (190 available) in March 2026.
pub(crate) async fn the_verified_example(app: &TestApp) -> i64 {
    let (_, p) = app
        .post_json(
            "/api/v1/products",
            &json!({"sku": "G", "name": "Gap", "unit_cost": 10, "selling_price": 15, "product_family": "Tools"}),
        )
        .await;
    let product_id = p["id"].as_i64().unwrap();
    let plan = json!({"product_id": product_id, "period": "2026-03-01", "forecast_qty": 500});
    assert_eq!(app.post_json("/api/v1/demand/plans", &plan).await.0, 201);
    let supply = json!({"product_id": product_id, "period": "2026-03-01", "planned_prod_qty": 480});
    assert_eq!(app.post_json("/api/v1/supply/plans", &supply).await.0, 201);
    let stock = json!({"meta": {"source_system": "t"}, "items": [
        {"sku": "G", "location": "Main", "on_hand_qty": 200, "allocated_qty": 30, "in_transit_qty": 20}]});
    assert_eq!(app.post_json("/api/v1/integrations/erp/inventory/sync", &stock).await.0, 200);
    product_id
}

fn results(scenario: &Value) -> Value {
    serde_json::from_str(scenario["results"].as_str().expect("results are a string")).unwrap()
}

async fn a_scenario_runs_over_the_stored_plans_compares_and_is_promoted(backend: Backend) {
    let app = spawn(backend).await;
    the_verified_example(&app).await;
    let planner = app.client_with(&app.user_with_roles(&["finance_analyst"]).await.access_token);
    let executive = app.client_with(&app.user_with_roles(&["executive"]).await.access_token);
    let create = json!({"name": "Push", "parameters": {"demand_change_pct": 10, "price_change_pct": 5, "supply_capacity_pct": "2"}});
    let scenarios = app.url("/api/v1/scenarios");
    assert_eq!(send(&executive, "POST", scenarios.clone(), Some(create.clone())).await.0, 403);
    let (status, created) = send(&planner, "POST", scenarios.clone(), Some(create)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["parameters"],
        r#"{"demand_change_pct": 10, "price_change_pct": 5, "supply_capacity_pct": "2"}"#,
        "a JSON string with Python's spacing"
    );
    assert_eq!(
        (&created["results"], &created["status"], &created["scenario_type"], &created["revenue_impact"]),
        (&Value::Null, &json!("draft"), &json!("what_if"), &Value::Null)
    );
    let id = created["id"].as_i64().unwrap();
    let url = |path: &str| app.url(&format!("/api/v1/scenarios/{id}{path}"));

    // Refused input names the field.
    for (body, field) in [
        (json!({"name": "x", "parameters": "{}"}), "parameters"),
        (json!({"name": "x", "scenario_type": "optimistic"}), "scenario_type"),
        (json!({"name": "x", "parameters": {"demand_change_pct": "ten"}}), "parameters.demand_change_pct"),
        (
            json!({"name": "x", "parameters": {"adjustments": [{"target": "demand", "change_pct": 5, "sku": "NOPE"}]}}),
            "parameters.adjustments[0].sku",
        ),
    ] {
        let (status, refused) = send(&planner, "POST", scenarios.clone(), Some(body)).await;
        assert_eq!(
            (status, refused["error"]["details"][0]["field"].as_str()),
            (422, Some(field)),
            "{refused}"
        );
    }

    let (status, before_run) = app.get_json(&format!("/api/v1/scenarios/{id}/tradeoff-summary")).await;
    assert_eq!((status, &before_run["tradeoff"]), (200, &Value::Null));
    assert_eq!(before_run["message"], "Scenario has no computed results yet. Run the scenario first.");

    let (status, run) = send(&planner, "POST", url("/run"), None).await;
    assert_eq!(status, 200, "{run}");
    let r = results(&run);
    assert_eq!(r["period"], "2026-03-01", "the latest planned month");
    for (side, key, want) in [
        ("baseline", "revenue", 7500.0),
        ("scenario", "revenue", 8662.5),
        ("baseline", "margin", 2500.0),
        ("scenario", "margin", 3162.5),
        ("baseline", "inventory_available_qty", 190.0),
        ("scenario", "supply_qty", 489.6),
        ("baseline", "inventory_value", 1700.0),
        ("scenario", "inventory_value", 1296.0),
        ("scenario", "service_level", 100.0),
    ] {
        assert_eq!(r[side][key].as_f64(), Some(want), "{side}.{key} in {r}");
    }
    assert_eq!(r["tradeoff"]["inventory_carrying_cost"], 233.28);
    assert_eq!(
        (
            &run["status"],
            &run["revenue_impact"],
            &run["margin_impact"],
            &run["inventory_impact"],
            &run["service_level_impact"]
        ),
        (&json!("completed"), &json!("1162.50"), &json!("662.50"), &json!("-404.00"), &json!("0.00"))
    );
    let (_, summary) = app.get_json(&format!("/api/v1/scenarios/{id}/tradeoff-summary")).await;
    assert_eq!(summary["period"], "2026-03-01");
    assert_eq!(summary["service_level"], json!({"baseline": 100.0, "scenario": 100.0, "delta": 0.0}));
    assert_eq!(summary["tradeoff"]["inventory_carrying_cost"], 233.28);
    let (_, lines) = app.get_json(&format!("/api/v1/scenarios/{id}/products")).await;
    assert_eq!(
        (&lines[0]["sku"], &lines[0]["scenario"]["demand_qty"]),
        (&json!("G"), &json!(550.0)),
        "{lines}"
    );

    // A second scenario, not run: compared with zeros, in id order, unknown ids left out.
    let (_, other) =
        send(&planner, "POST", scenarios.clone(), Some(json!({"name": "Idle", "scenario_type": "baseline"})))
            .await;
    let other_id = other["id"].as_i64().unwrap();
    for body in [json!([other_id, 999, id]), json!({"scenario_ids": [other_id, id]})] {
        let (status, compared) =
            send(&planner, "POST", app.url("/api/v1/scenarios/compare"), Some(body)).await;
        assert_eq!(status, 200, "{compared}");
        assert_eq!(compared.as_array().unwrap().len(), 2);
        assert_eq!((&compared[0]["id"], &compared[0]["revenue_impact"]), (&json!(id), &json!(1162.5)));
        assert_eq!((&compared[1]["id"], &compared[1]["revenue_impact"]), (&json!(other_id), &json!(0.0)));
    }
    let (status, _) = send(&planner, "POST", app.url("/api/v1/scenarios/compare"), Some(json!(["a"]))).await;
    assert_eq!(status, 422);
    let (_, page) = app.get_json("/api/v1/scenarios").await;
    assert_eq!((&page["total"], &page["items"][0]["name"]), (&json!(2), &json!("Idle")), "newest first");

    // Promotion needs an approved scenario, then happens once.
    let (status, refused) = send(&planner, "POST", url("/promote"), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("INVALID_STATE_TRANSITION")));
    assert_eq!(send(&planner, "POST", url("/submit"), None).await.1["status"], "submitted");
    assert_eq!(send(&planner, "POST", url("/approve"), None).await.0, 403);
    let (_, approved) = send(&executive, "POST", url("/approve"), Some(json!({"comments": "ignored"}))).await;
    assert_eq!(approved["status"], "approved");
    assert!(approved["approved_by"].is_string());
    let (status, promoted) = send(&planner, "POST", url("/promote"), None).await;
    assert_eq!(status, 200, "{promoted}");
    let demand = &promoted["demand_plans"][0];
    assert_eq!(
        (&demand["version"], &demand["adjusted_qty"], &demand["status"], &demand["forecast_qty"]),
        (&json!(2), &json!("550.00"), &json!("draft"), &json!("500.00"))
    );
    let supply = &promoted["supply_plans"][0];
    assert_eq!((&supply["version"], &supply["planned_prod_qty"]), (&json!(2), &json!("489.60")));
    let (status, again) = send(&planner, "POST", url("/promote"), None).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("CONFLICT")));
    // The next run reads the newest versions: the promoted plan is the baseline now.
    let (_, rerun) = send(&planner, "POST", url("/run"), None).await;
    assert_eq!(results(&rerun)["baseline"]["demand_qty"], 550.0);

    let (_, rejected) =
        send(&executive, "POST", app.url(&format!("/api/v1/scenarios/{other_id}/reject")), None).await;
    assert_eq!(rejected["status"], "rejected");
    let (status, gone) = send(&planner, "DELETE", url(""), None).await;
    assert_eq!((status, gone), (200, json!({"message": "Scenario deleted successfully"})));
    let (status, missing) = app.get_json(&format!("/api/v1/scenarios/{id}")).await;
    assert_eq!(
        (status, missing["error"]["message"].as_str()),
        (404, Some(format!("Scenario with id '{id}' not found.").as_str()))
    );
}

/// Adjustments by family and by product, with amounts, over two products.
async fn adjustments_change_only_their_products(backend: Backend) {
    let app = spawn(backend).await;
    let first = the_verified_example(&app).await;
    let (_, p) = app
        .post_json(
            "/api/v1/products",
            &json!({"sku": "H", "name": "Other", "unit_cost": 4, "selling_price": 6}),
        )
        .await;
    let second = p["id"].as_i64().unwrap();
    let plan = json!({"product_id": second, "period": "2026-03-01", "forecast_qty": 100, "region": "EU"});
    assert_eq!(app.post_json("/api/v1/demand/plans", &plan).await.0, 201);
    let (_, k) = app
        .post_json(
            "/api/v1/products",
            &json!({"sku": "K", "name": "New", "unit_cost": 1, "selling_price": 2}),
        )
        .await;
    let body = json!({"name": "Tools up", "parameters": {"period": "2026-03-01", "adjustments": [
        {"target": "demand", "change_amount": 100, "product_family": "Tools"},
        {"target": "price", "change_pct": -50, "product_id": second},
        {"target": "demand", "change_amount": 50, "sku": "K"}]}});
    let (status, created) = app.post_json("/api/v1/scenarios", &body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (_, run) = app.post_json(&format!("/api/v1/scenarios/{id}/run"), &json!({})).await;
    let r = results(&run);
    // H has demand 100 and nothing to meet it: the service level is the demand met, 500 of 600.
    assert_eq!(r["baseline"]["service_level"].as_f64().map(|v| (v * 100.0).round()), Some(8333.0));
    // G: 600 × 15 − 500 × 15; H: 100 × 3 − 100 × 6; K, with no plan that month: 50 × 2.
    assert_eq!(run["revenue_impact"], "1300.00");
    let (_, lines) = app.get_json(&format!("/api/v1/scenarios/{id}/products")).await;
    let by_id = |pid: i64| lines.as_array().unwrap().iter().find(|l| l["product_id"] == pid).unwrap().clone();
    assert_eq!(
        (by_id(first)["scenario"]["demand_qty"].as_f64(), by_id(first)["scenario"]["price"].as_f64()),
        (Some(600.0), Some(15.0))
    );
    assert_eq!(
        (by_id(second)["scenario"]["demand_qty"].as_f64(), by_id(second)["scenario"]["price"].as_f64()),
        (Some(100.0), Some(3.0))
    );
    assert_eq!(by_id(k["id"].as_i64().unwrap())["scenario"]["demand_qty"].as_f64(), Some(50.0));
    // A scope that is not a product id is refused, not taken for every product.
    let bad = json!({"name": "x", "parameters": {"adjustments": [{"target": "demand", "change_pct": 50, "product_id": "seven"}]}});
    let (status, refused) = app.post_json("/api/v1/scenarios", &bad).await;
    assert_eq!(
        (status, refused["error"]["details"][0]["field"].as_str()),
        (422, Some("parameters.adjustments[0].product_id"))
    );
}

/// FACTS-004 §6: the scorecard reads the scenario of the cycle's month.
async fn the_executive_scorecard_reads_the_scenario_of_the_cycles_month(backend: Backend) {
    let app = spawn(backend).await;
    the_verified_example(&app).await;
    let (_, cycle) =
        app.post_json("/api/v1/sop-cycles", &json!({"cycle_name": "March", "period": "2026-03-01"})).await;
    let card_url = format!("/api/v1/sop-cycles/{}/executive-scorecard", cycle["id"]);
    let (status, empty) = app.get_json(&card_url).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        (&empty["scenario_reference"], &empty["service"]["delta_service_level"]),
        (&Value::Null, &json!(0.0))
    );
    assert_eq!(empty["decision_signal"], "review_required");
    for (name, period) in [("February", "2026-02-01"), ("March", "2026-03-01")] {
        let body = json!({"name": name, "parameters": {"period": period, "supply_capacity_pct": -50}});
        let (_, s) = app.post_json("/api/v1/scenarios", &body).await;
        app.post_json(&format!("/api/v1/scenarios/{}/run", s["id"]), &json!({})).await;
    }
    let (_, card) = app.get_json(&card_url).await;
    assert_eq!(card["scenario_reference"], "March", "{card}");
    // Supply 240 + 190 available against 500: 86 % served.
    assert_eq!(card["service"]["scenario_service_level"], 86.0);
    assert_eq!(card["service"]["delta_service_level"], -14.0);
    assert_eq!(card["cost"]["stockout_penalty_cost"], 70.0 * 0.25 * 15.0);
    assert_eq!(card["risk"]["backlog_risk"], "low");
    assert_eq!(card["decision_signal"], "review_required");
    let viewer = app.client_with(&app.user_with_roles(&["sop_coordinator"]).await.access_token);
    assert_eq!(send(&viewer, "GET", app.url(&card_url), None).await.0, 403);
}

sightline_platform::storage_tests!(
    a_scenario_runs_over_the_stored_plans_compares_and_is_promoted,
    adjustments_change_only_their_products,
    the_executive_scorecard_reads_the_scenario_of_the_cycles_month
);
