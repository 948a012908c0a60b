//! The planning API on the real server, on SQLite and PostgreSQL: the original's paths, shapes,
//! status codes, role sets and workflow rules (FACTS-004), and where we do better.

mod forecasting;
mod inventory;
mod kpis;
mod scenarios;
mod sop;

use std::sync::Arc;

use serde_json::{json, Value};
use sightline_planning::PlanningModule;
use sightline_platform::testing::TestApp;
use sightline_platform::Backend;

pub(crate) async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn(backend, vec![Arc::new(PlanningModule)], &[]).await
}

pub(crate) async fn send(
    client: &reqwest::Client,
    method: &str,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn product(app: &TestApp, sku: &str) -> i64 {
    let (status, p) = app
        .post_json(
            "/api/v1/products",
            &json!({"sku": sku, "name": format!("Widget {sku}"), "unit_cost": 10, "selling_price": "15"}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    p["id"].as_i64().unwrap()
}

/// Products and categories: 201 with the original's fields and decimal strings, the pagination
/// wrapper, search, a duplicate SKU a 400, a soft delete, the frontend's `/api/v1/categories`.
async fn products_and_categories_answer_as_the_original(backend: Backend) {
    let app = spawn(backend).await;
    let (status, category) =
        app.post_json("/api/v1/products/categories", &json!({"name": "Drinks", "description": "cold"})).await;
    assert_eq!(status, 201, "{category}");
    let keys: Vec<&str> = category.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6);
    assert_eq!((category["level"].as_i64(), category["parent_id"].is_null()), (Some(0), true));
    let (status, _) = app.post_json("/api/v1/categories", &json!({"name": "Snacks"})).await;
    assert_eq!(status, 201);
    let (_, all) = app.get_json("/api/v1/categories").await;
    let (_, same) = app.get_json("/api/v1/products/categories/").await;
    assert_eq!(all, same, "both paths, and the trailing slash");
    assert_eq!(all.as_array().unwrap().len(), 2);

    let (status, created) = app
        .post_json(
            "/api/v1/products/",
            &json!({"sku": "SKU-1", "name": "Cola 330ml", "category_id": category["id"], "unit_cost": 12.345, "selling_price": "20"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["unit_cost"], "12.35", "rounded half up, a string with two decimals");
    assert_eq!(created["selling_price"], "20.00");
    assert_eq!(
        (created["unit_of_measure"].as_str(), created["status"].as_str()),
        (Some("units"), Some("active"))
    );
    assert_eq!((created["lead_time_days"].as_i64(), created["min_order_qty"].as_i64()), (Some(0), Some(1)));
    let id = created["id"].as_i64().unwrap();
    let raw = app
        .client
        .get(app.url(&format!("/api/v1/products/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(raw.starts_with("{\"sku\":\"SKU-1\",\"name\":"), "the original's field order: {raw}");

    let (status, duplicate) =
        app.post_json("/api/v1/products", &json!({"sku": "SKU-1", "name": "again"})).await;
    assert_eq!((status, duplicate["error"]["code"].as_str()), (400, Some("DUPLICATE_SKU")), "{duplicate}");
    let (status, bad) =
        app.post_json("/api/v1/products", &json!({"sku": "X", "name": "x", "unit_cost": "ten"})).await;
    assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some("unit_cost")), "{bad}");
    for n in 2..=25 {
        product(&app, &format!("SKU-{n}")).await;
    }
    let (_, page) = app.get_json("/api/v1/products?page=2&page_size=10").await;
    assert_eq!((page["total"].as_i64(), page["total_pages"].as_i64()), (Some(25), Some(3)), "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    let (_, past) = app.get_json("/api/v1/products?page=9").await;
    assert_eq!((&past["items"], past["total"].as_i64()), (&json!([]), Some(25)));
    let (_, found) = app.get_json("/api/v1/products?search=cola").await;
    assert_eq!(found["total"], 1);
    let (_, none) = app.get_json("/api/v1/products?search=%25").await;
    assert_eq!(
        (none["total"].as_i64(), none["total_pages"].as_i64()),
        (Some(0), Some(0)),
        "a % is a literal"
    );
    let (status, bad) = app.get_json("/api/v1/products?page_size=101").await;
    assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some("page_size")));

    let (status, updated) = send(
        &app.client,
        "PUT",
        app.url(&format!("/api/v1/products/{id}")),
        Some(json!({"sku": "CHANGED", "name": "Cola 0.33", "description": null})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!((updated["sku"].as_str(), updated["name"].as_str()), (Some("SKU-1"), Some("Cola 0.33")));
    assert_eq!(updated["unit_cost"], "12.35", "fields not given stay");
    let (status, gone) = send(&app.client, "DELETE", app.url(&format!("/api/v1/products/{id}")), None).await;
    assert_eq!((status, gone), (200, json!({"message": "Product discontinued successfully"})));
    let (_, after) = app.get_json(&format!("/api/v1/products/{id}")).await;
    assert_eq!(after["status"], "discontinued");
    let (status, missing) = app.get_json("/api/v1/products/999999").await;
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _) = app.get_json("/api/v1/products/abc").await;
    assert_eq!(status, 422);

    // The audit log has who changed what, before and after.
    use sqlx::Row as _;
    let audit = sqlx::query(
        "SELECT actor_name, before_state, after_state FROM audit_log WHERE action = 'planning.product.updated'",
    )
    .fetch_all(app.platform.db.reader())
    .await
    .unwrap();
    assert_eq!(audit.len(), 1);
    let before: Value = serde_json::from_str(&audit[0].get::<String, _>("before_state")).unwrap();
    let after: Value = serde_json::from_str(&audit[0].get::<String, _>("after_state")).unwrap();
    assert_eq!((&before["name"], &after["name"]), (&json!("Cola 330ml"), &json!("Cola 0.33")));
    assert_eq!(audit[0].get::<String, _>("actor_name"), "admin");
}

/// The demand workflow as FACTS-004 §2 verified it, step by step, and the role sets.
async fn a_demand_plan_follows_the_originals_versions_and_workflow(backend: Backend) {
    let app = spawn(backend).await;
    let product_id = product(&app, "D-1").await;
    let planner = app.client_with(&app.user_with_roles(&["supply_planner"]).await.access_token);
    let executive = app.client_with(&app.user_with_roles(&["executive"]).await.access_token);
    let url = |path: &str| app.url(&format!("/api/v1/demand/plans{path}"));

    let body = json!({"product_id": product_id, "period": "2026-01-01", "forecast_qty": 500, "confidence": "85.5", "notes": "n1"});
    let (status, _) = send(&executive, "POST", url(""), Some(body.clone())).await;
    assert_eq!(status, 403, "executives do not create demand plans");
    let (status, plan) = send(&planner, "POST", url(""), Some(body.clone())).await;
    assert_eq!(status, 201, "{plan}");
    assert_eq!(
        (
            &plan["forecast_qty"],
            &plan["confidence"],
            &plan["status"],
            &plan["version"],
            &plan["region"],
            &plan["channel"]
        ),
        (&json!("500.00"), &json!("85.50"), &json!("draft"), &json!(1), &json!("Global"), &json!("All"))
    );
    let id = plan["id"].as_i64().unwrap();
    let (status, again) = send(&planner, "POST", url(""), Some(body)).await;
    assert_eq!((status, again["error"]["code"].as_str()), (409, Some("CONFLICT")), "the same key twice");

    let (_, v2) = send(&planner, "PUT", url(&format!("/{id}")), Some(json!({}))).await;
    assert_eq!(v2["version"], 2, "every PUT is a version");
    let (_, v3) =
        send(&planner, "POST", url(&format!("/{id}/adjust")), Some(json!({"adjusted_qty": "530"}))).await;
    assert_eq!(
        (&v3["version"], &v3["adjusted_qty"], &v3["notes"]),
        (&json!(3), &json!("530.00"), &json!("n1"))
    );
    let (status, _) = send(&planner, "POST", url(&format!("/{id}/approve")), None).await;
    assert_eq!(status, 403, "planners do not approve");
    // The frontend approves with no body at all.
    let (status, approved) = send(&executive, "POST", url(&format!("/{id}/approve")), None).await;
    assert_eq!((status, approved["status"].as_str()), (200, Some("approved")), "{approved}");
    assert_eq!(approved["version"], 3, "workflow steps are not versions");
    assert!(approved["approved_by"].is_string());
    let (status, refused) = send(&planner, "POST", url(&format!("/{id}/submit")), None).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("INVALID_STATE_TRANSITION")));
    assert_eq!(refused["error"]["message"], "Cannot transition DemandPlan from 'approved' to 'submitted'.");
    let (status, _) = send(&planner, "DELETE", url(&format!("/{id}")), None).await;
    assert_eq!(status, 400, "an approved plan is not deleted");
    let (_, rejected) =
        send(&executive, "POST", url(&format!("/{id}/reject")), Some(json!({"comments": "redo"}))).await;
    assert_eq!((&rejected["status"], &rejected["notes"]), (&json!("draft"), &json!("n1\n[Rejected] redo")));
    let (_, submitted) = send(&planner, "POST", url(&format!("/{id}/submit")), None).await;
    assert_eq!(submitted["status"], "submitted");
    let (_, approved) =
        send(&executive, "POST", url(&format!("/{id}/approve")), Some(json!({"comments": "ok"}))).await;
    assert_eq!(approved["notes"], "n1\n[Rejected] redo\n[Approved] ok");

    let (status, bad) = send(&planner, "PUT", url(&format!("/{id}")), Some(json!({"status": "gone"}))).await;
    assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some("status")), "{bad}");
    // Locked plans are neither edited nor deleted.
    let (_, locked) = send(&planner, "PUT", url(&format!("/{id}/")), Some(json!({"status": "locked"}))).await;
    assert_eq!(locked["status"], "locked", "{locked}");
    let (status, refused) = send(&planner, "PUT", url(&format!("/{id}")), Some(json!({"notes": "x"}))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("BUSINESS_RULE_VIOLATION")));
    assert_eq!(send(&planner, "DELETE", url(&format!("/{id}")), None).await.0, 400);

    // Bad input is a 422 naming the field; nothing is written.
    for (field, body) in [
        ("forecast_qty", json!({"product_id": product_id, "period": "2026-02-01", "forecast_qty": -1})),
        (
            "confidence",
            json!({"product_id": product_id, "period": "2026-02-01", "forecast_qty": 1, "confidence": 101}),
        ),
        ("product_id", json!({"product_id": 424242, "period": "2026-02-01", "forecast_qty": 1})),
        ("period", json!({"product_id": product_id, "period": "Feb", "forecast_qty": 1})),
    ] {
        let (status, e) = send(&planner, "POST", url(""), Some(body)).await;
        assert_eq!((status, e["error"]["details"][0]["field"].as_str()), (422, Some(field)), "{e}");
    }

    // Lists: newest period first, filters, the wrapper.
    for month in 2..=4 {
        let body = json!({"product_id": product_id, "period": format!("2026-{month:02}-01"), "forecast_qty": 100 * month, "region": "EU"});
        assert_eq!(send(&planner, "POST", url(""), Some(body)).await.0, 201);
    }
    let (_, list) = app.get_json("/api/v1/demand/plans?region=EU&period_from=2026-03-01").await;
    let periods: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|p| p["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["2026-04-01", "2026-03-01"]);
    assert_eq!((list["total"].as_i64(), list["page_size"].as_i64()), (Some(2), Some(20)));
    let (_, draft) = app.get_json("/api/v1/demand/plans?status=draft&product_id=0").await;
    assert_eq!(draft["total"], 3);
    let draft_id = draft["items"][0]["id"].as_i64().unwrap();
    let (status, gone) = send(&planner, "DELETE", url(&format!("/{draft_id}")), None).await;
    assert_eq!((status, gone), (200, json!({"message": "Demand plan deleted successfully"})));
    let (status, missing) = app.get_json(&format!("/api/v1/demand/plans/{draft_id}")).await;
    assert_eq!(
        (status, missing["error"]["message"].as_str()),
        (404, Some(format!("DemandPlan with id '{draft_id}' not found.").as_str()))
    );
}

/// Supply plans: versions on edit, submit and approve from any state, a reject back to draft,
/// delete without restriction, and the role sets.
async fn supply_plans_keep_the_originals_rules(backend: Backend) {
    let app = spawn(backend).await;
    let product_id = product(&app, "S-1").await;
    let planner = app.client_with(&app.user_with_roles(&["supply_planner"]).await.access_token);
    let demand_planner = app.client_with(&app.user_with_roles(&["demand_planner"]).await.access_token);
    let executive = app.client_with(&app.user_with_roles(&["executive"]).await.access_token);
    let url = |path: &str| app.url(&format!("/api/v1/supply/plans{path}"));
    let body = json!({"product_id": product_id, "period": "2026-01-01", "planned_prod_qty": 480, "capacity_max": "600", "notes": "ignored"});
    assert_eq!(send(&demand_planner, "POST", url(""), Some(body.clone())).await.0, 403);
    let (status, plan) = send(&planner, "POST", url("/"), Some(body)).await;
    assert_eq!(status, 201, "{plan}");
    assert_eq!(
        (&plan["location"], &plan["planned_prod_qty"], &plan["status"]),
        (&json!("Main"), &json!("480.00"), &json!("draft"))
    );
    assert!(plan.get("notes").is_none() && plan.get("approved_by").is_none());
    let id = plan["id"].as_i64().unwrap();
    let (_, v2) = send(&planner, "PUT", url(&format!("/{id}")), Some(json!({"capacity_used": 80}))).await;
    assert_eq!((&v2["version"], &v2["capacity_used"]), (&json!(2), &json!("80.00")));
    let (status, bad) =
        send(&planner, "PUT", url(&format!("/{id}")), Some(json!({"capacity_used": 120}))).await;
    assert_eq!((status, bad["error"]["details"][0]["field"].as_str()), (422, Some("capacity_used")));
    let (_, approved) =
        send(&executive, "POST", url(&format!("/{id}/approve")), Some(json!({"ignored": true}))).await;
    assert_eq!(approved["status"], "approved", "approve from draft, as the original");
    let (_, rejected) = send(&executive, "POST", url(&format!("/{id}/reject")), None).await;
    assert_eq!(rejected["status"], "draft");
    let (_, submitted) = send(&planner, "POST", url(&format!("/{id}/submit")), None).await;
    assert_eq!((&submitted["status"], &submitted["version"]), (&json!("submitted"), &json!(2)));
    let (_, list) = app.get_json("/api/v1/supply/plans?location=Main").await;
    assert_eq!(list["total"], 1);
    let (status, gone) = send(&planner, "DELETE", url(&format!("/{id}")), None).await;
    assert_eq!((status, gone), (200, json!({"message": "Supply plan deleted successfully"})));
}

async fn every_route_follows_its_declared_access(backend: Backend) {
    let app = spawn(backend).await;
    sightline_platform::testing::check_route_matrix(&app).await;
    sightline_platform::testing::check_openapi_parameters(&app.get_json("/openapi.json").await.1);
    // The matrix queued forecast runs (of no products): they finish.
    app.drain_queue().await;
}

sightline_platform::storage_tests!(
    products_and_categories_answer_as_the_original,
    a_demand_plan_follows_the_originals_versions_and_workflow,
    supply_plans_keep_the_originals_rules,
    every_route_follows_its_declared_access
);
