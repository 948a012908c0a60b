//! The NBA module over HTTP, on SQLite and PostgreSQL: the seed's flow, idempotency, scope
//! deactivation, delete events, the decision lifecycle, enrichment and bad input.

use std::sync::Arc;

use serde_json::{json, Value};
use sightline_actions::ActionsModule;
use sightline_platform::testing::TestApp;
use sightline_platform::{storage_tests, Backend};

async fn spawn(backend: Backend) -> TestApp {
    let mock_db = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/mock_db");
    TestApp::spawn(backend, vec![Arc::new(ActionsModule)], &[("actions.mock_db_dir", json!(mock_db))]).await
}

fn event(definition: &str, target: Value) -> Value {
    let mut e = json!({
        "event_id": uuid::Uuid::new_v4().to_string(),
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "source": "test.calculator",
        "nba_definition_id": definition,
        "context": {"score": 0.5},
    });
    e.as_object_mut().unwrap().extend(target.as_object().unwrap().clone());
    e
}

const EVENTS: &str = "/api/v1/internal/events/nba-calculation?wait=true";

async fn post_event(app: &TestApp, body: &Value) -> (u16, Value) {
    app.post_json(EVENTS, body).await
}

async fn act(app: &TestApp, nba_id: &str, body: Value) -> (u16, Value) {
    app.post_json(&format!("/api/v1/nba/{nba_id}/actions"), &body).await
}

/// An event dated far in the future would pin its scope (every later event stored inactive); an
/// oversized context would bloat every list answer. Both are refused, naming the field.
async fn events_dated_in_the_future_or_with_oversized_context_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let target = json!({"account_id": "acc_pin"});
    let mut pinned = event("def_pin", target.clone());
    pinned["occurred_at"] = json!("9999-12-31T23:59:59Z");
    let (status, err) = post_event(&app, &pinned).await;
    assert_eq!((status, err["error"]["details"][0]["field"].as_str()), (422, Some("occurred_at")), "{err}");
    let mut skewed = event("def_pin", target.clone());
    skewed["occurred_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc3339());
    assert_eq!(post_event(&app, &skewed).await.0, 202, "a minute of clock skew is accepted");
    let mut bulky = event("def_pin", target.clone());
    bulky["context"] = json!({"blob": "x".repeat(70 * 1024)});
    let (status, err) = post_event(&app, &bulky).await;
    assert_eq!((status, err["error"]["details"][0]["field"].as_str()), (422, Some("context")), "{err}");
    let later = event("def_pin", target);
    let (status, accepted) = post_event(&app, &later).await;
    assert_eq!((status, accepted["state"].as_str()), (202, Some("processed")), "{accepted}");
    app.drain_queue().await;
}

async fn the_seed_demo_enqueues_processes_lists_and_accepts(backend: Backend) {
    let app = spawn(backend).await;
    let body = json!({
        "event_id": "9f6849e6-6110-4bd8-8397-a8f9a6ec7d5a",
        "occurred_at": "2026-02-09T13:59:00Z",
        "source": "calculator.customer-segmentation.v1",
        "nba_definition_id": "def_42",
        "account_id": "acc_123",
        "enterprise_number": "0123456789",
        "contact_id": "con_456",
        "context": {"score": 0.92, "reason": "high upsell propensity"}
    });
    let r = app
        .client
        .post(app.url("/api/v1/internal/events/nba-calculation?wait=true"))
        .header("x-request-id", "demo-trace-001")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-request-id"], "demo-trace-001");
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["event_id"], "9f6849e6-6110-4bd8-8397-a8f9a6ec7d5a");
    assert_eq!(accepted["state"], "processed");
    assert_eq!(accepted["action"], "created");
    assert_eq!(accepted["request_id"], "demo-trace-001");
    let nba_id = accepted["nba_id"].as_str().unwrap().to_owned();
    assert!(nba_id.starts_with("nba_") && nba_id.len() == 14, "{nba_id}");

    let (status, list) = app.get_json("/api/v1/nba?account_id=acc_123").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1);
    assert_eq!((list["limit"].as_i64(), list["offset"].as_i64()), (Some(50), Some(0)));
    let item = &list["items"][0];
    let mut keys: Vec<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "account_id",
            "active",
            "contact_id",
            "context",
            "enterprise_number",
            "id",
            "nba_definition_id",
            "priority",
            "status"
        ]
    );
    assert_eq!(item["status"], "new");
    assert_eq!(item["priority"], 0);
    assert_eq!(item["context"]["reason"], "high upsell propensity");

    let (status, action) = act(&app, &nba_id, json!({"status": "accepted"})).await;
    assert_eq!(status, 201);
    assert_eq!(action["nba_id"], nba_id.as_str());
    assert_eq!(action["status"], "accepted");
    assert_eq!(action["acted_by"], "admin");
    assert!(action["event_id"].as_str().unwrap().starts_with("evt_"));

    let (_, nba) = app.get_json(&format!("/api/v1/nba/{nba_id}")).await;
    assert_eq!(nba["status"], "accepted");
    assert_eq!(nba["source_event_id"], "9f6849e6-6110-4bd8-8397-a8f9a6ec7d5a");
    let (_, history) = app.get_json(&format!("/api/v1/nba/{nba_id}/events")).await;
    let statuses: Vec<&str> =
        history["items"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["new", "accepted"]);
    assert_eq!(history["items"][0]["context"]["source"], "calculator.customer-segmentation.v1");
    assert_eq!(history["items"][0]["request_id"], "demo-trace-001");

    let (_, ev) = app.get_json("/api/v1/internal/events/9f6849e6-6110-4bd8-8397-a8f9a6ec7d5a").await;
    assert_eq!(ev["state"], "processed");
    assert_eq!(ev["nba_id"], nba_id.as_str());
}

async fn the_same_event_id_twice_has_no_second_effect(backend: Backend) {
    let app = spawn(backend).await;
    let body = event("def_idem", json!({"account_id": "acc_idem"}));
    let (s1, first) = post_event(&app, &body).await;
    let (s2, second) = post_event(&app, &body).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(first["duplicate"], false);
    assert_eq!(second["duplicate"], true);
    assert_eq!(second["nba_id"], first["nba_id"]);
    let (_, list) = app.get_json("/api/v1/nba?account_id=acc_idem&active=all").await;
    assert_eq!(list["total"], 1);
    // As in the original, any repeat of the id is skipped, even with other content.
    let mut changed = body.clone();
    changed["nba_definition_id"] = json!("def_other");
    let (status, third) = post_event(&app, &changed).await;
    assert_eq!((status, &third["duplicate"]), (202, &json!(true)));
    let (_, list) = app.get_json("/api/v1/nba?nba_definition_id=def_other&active=all").await;
    assert_eq!(list["total"], 0);
}

async fn a_recalculation_deactivates_the_older_nba_of_the_same_scope_only(backend: Backend) {
    let app = spawn(backend).await;
    let target = json!({"account_id": "acc_scope", "enterprise_number": "5550000001"});
    let mut older = event("def_s", target.clone());
    older["occurred_at"] = json!("2026-03-01T10:00:00Z");
    let mut newer = event("def_s", target.clone());
    newer["occurred_at"] = json!("2026-03-02T10:00:00Z");
    let other_definition = event("def_t", target.clone());
    let other_contact = event(
        "def_s",
        json!({"account_id": "acc_scope", "enterprise_number": "5550000001", "contact_id": "c1"}),
    );
    let (_, a) = post_event(&app, &older).await;
    let (_, b) = post_event(&app, &newer).await;
    let (_, c) = post_event(&app, &other_definition).await;
    let (_, d) = post_event(&app, &other_contact).await;
    assert_eq!(b["deactivated"], 1);
    let (_, nba_a) = app.get_json(&format!("/api/v1/nba/{}", a["nba_id"].as_str().unwrap())).await;
    assert_eq!(nba_a["active"], false, "the older NBA of the scope is deactivated");
    for current in [&b, &c, &d] {
        let (_, n) = app.get_json(&format!("/api/v1/nba/{}", current["nba_id"].as_str().unwrap())).await;
        assert_eq!(n["active"], true, "{current}");
    }
    // A calculation older than the scope's current NBA arriving late does not replace it.
    let mut late = event("def_s", target);
    late["occurred_at"] = json!("2026-02-01T10:00:00Z");
    let (_, e) = post_event(&app, &late).await;
    let (_, nba_e) = app.get_json(&format!("/api/v1/nba/{}", e["nba_id"].as_str().unwrap())).await;
    assert_eq!(nba_e["active"], false);
    let (_, nba_b) = app.get_json(&format!("/api/v1/nba/{}", b["nba_id"].as_str().unwrap())).await;
    assert_eq!(nba_b["active"], true);
    let (_, list) = app.get_json("/api/v1/nba?account_id=acc_scope").await;
    assert_eq!(list["total"], 3, "active only by default");
    let (_, list) = app.get_json("/api/v1/nba?account_id=acc_scope&active=false").await;
    assert_eq!(list["total"], 2);
}

async fn a_delete_event_deactivates_the_listed_nbas_and_creates_none(backend: Backend) {
    let app = spawn(backend).await;
    let (_, a) = post_event(&app, &event("def_d1", json!({"account_id": "acc_del"}))).await;
    let (_, b) = post_event(&app, &event("def_d2", json!({"account_id": "acc_del"}))).await;
    let mut delete = event("def_d1", json!({"account_id": "acc_del"}));
    delete["create_nba"] = json!(false);
    delete["deactivate_nba_ids"] = json!([a["nba_id"], a["nba_id"], "nba_unknown00"]);
    // A delete event listing nothing is accepted and changes nothing, as in the original.
    let mut empty = event("def_d1", json!({"account_id": "acc_del"}));
    empty["create_nba"] = json!(false);
    let (status, e) = post_event(&app, &empty).await;
    assert_eq!(
        (status, e["action"].as_str(), e["deactivated"].as_i64()),
        (202, Some("deactivated_only"), Some(0))
    );
    let (status, d) = post_event(&app, &delete).await;
    assert_eq!(status, 202);
    assert_eq!(d["action"], "deactivated_only");
    assert_eq!(d["nba_id"], "n/a");
    assert_eq!(d["deactivated"], 1);
    let (_, list) = app.get_json("/api/v1/nba?account_id=acc_del").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], b["nba_id"]);
    let (_, all) = app.get_json("/api/v1/nba?account_id=acc_del&active=all").await;
    assert_eq!(all["total"], 2);
}

async fn decisions_follow_the_documented_lifecycle(backend: Backend) {
    let app = spawn(backend).await;
    let (_, a) = post_event(&app, &event("def_life", json!({"account_id": "acc_life"}))).await;
    let id = a["nba_id"].as_str().unwrap();
    let (s, first) = act(
        &app,
        id,
        json!({"status": "rejected", "comment": "not now", "action_at": "2026-04-01T08:00:00"}),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(first["action_at"], "2026-04-01T08:00:00.000Z");
    let (s, again) = act(&app, id, json!({"status": "rejected"})).await;
    assert_eq!(s, 201);
    assert_eq!(again["event_id"], first["event_id"], "the same decision returns the recorded one");
    let (s, err) = act(&app, id, json!({"status": "accepted"})).await;
    assert_eq!(s, 409);
    assert!(err["error"]["message"].as_str().unwrap().contains("state transition is not allowed"));
    let (s, err) = act(&app, "nba_doesnotexist", json!({"status": "accepted"})).await;
    assert_eq!((s, err["error"]["message"].as_str()), (404, Some("nba not found")));
    let (s, err) =
        act(&app, id, json!({"status": "maybe", "extra": true, "comment": "x".repeat(1001)})).await;
    assert_eq!(s, 422);
    let fields: Vec<&str> =
        err["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    for f in ["status", "extra", "comment"] {
        assert!(fields.contains(&f), "{f} not in {fields:?}");
    }
    // An NBA deactivated by a recalculation can no longer be decided.
    let (_, b) = post_event(&app, &event("def_life2", json!({"account_id": "acc_life"}))).await;
    post_event(&app, &event("def_life2", json!({"account_id": "acc_life"}))).await;
    let (s, err) = act(&app, b["nba_id"].as_str().unwrap(), json!({"status": "accepted"})).await;
    assert_eq!(s, 409);
    assert!(err["error"]["message"].as_str().unwrap().contains("inactive"));
    let (_, history) = app.get_json(&format!("/api/v1/nba/{id}/events")).await;
    assert_eq!(history["total"], 2);
    assert_eq!(history["items"][1]["context"]["comment"], "not now");
    assert_eq!(history["items"][1]["acted_by"], "admin");
}

async fn a_missing_identifier_is_filled_from_the_reference_data(backend: Backend) {
    let app = spawn(backend).await;
    let (_, a) = post_event(&app, &event("def_enrich", json!({"account_id": "acc_123"}))).await;
    let (_, nba) = app.get_json(&format!("/api/v1/nba/{}", a["nba_id"].as_str().unwrap())).await;
    assert_eq!(nba["enterprise_number"], "0123456789");
    let (_, b) = post_event(&app, &event("def_enrich", json!({"enterprise_number": "1111111111"}))).await;
    let (_, nba) = app.get_json(&format!("/api/v1/nba/{}", b["nba_id"].as_str().unwrap())).await;
    assert_eq!(nba["account_id"], "acc_999");
    let (_, overview) = app.get_json("/api/v1/mock-db/overview").await;
    assert_eq!(overview["users"], 40);
    assert!(overview["client_employees"].as_i64().unwrap() > 0);
}

async fn bad_payloads_are_refused_with_4xx_naming_the_field(backend: Backend) {
    let app = spawn(backend).await;
    let good = event("def_bad", json!({"account_id": "acc_bad"}));
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "event_id"),
        (
            {
                let mut e = good.clone();
                e["event_id"] = json!("not-a-uuid");
                e
            },
            "event_id",
        ),
        (
            {
                let mut e = good.clone();
                e["occurred_at"] = json!("yesterday");
                e
            },
            "occurred_at",
        ),
        (
            {
                let mut e = good.clone();
                e["occurred_at"] = json!(12);
                e
            },
            "occurred_at",
        ),
        (
            {
                let mut e = good.clone();
                e["source"] = json!("");
                e
            },
            "source",
        ),
        (
            {
                let mut e = good.clone();
                e["nba_definition_id"] = json!(null);
                e
            },
            "nba_definition_id",
        ),
        (
            {
                let mut e = good.clone();
                e.as_object_mut().unwrap().remove("account_id");
                e
            },
            "enterprise_number",
        ),
        (
            {
                let mut e = good.clone();
                e["context"] = json!([1, 2]);
                e
            },
            "context",
        ),
        (
            {
                let mut e = good.clone();
                e["create_nba"] = json!("no");
                e
            },
            "create_nba",
        ),
        (
            {
                let mut e = good.clone();
                e["deactivate_nba_ids"] = json!(["ok", 5]);
                e
            },
            "deactivate_nba_ids.1",
        ),
        (
            {
                let mut e = good.clone();
                e["source"] = json!("nul\u{0}inside");
                e
            },
            "source",
        ),
        (
            {
                let mut e = good.clone();
                e["nba_definition_id"] = json!("d".repeat(257));
                e
            },
            "nba_definition_id",
        ),
        (
            {
                let mut e = good.clone();
                e["account_id"] = json!("a".repeat(129));
                e
            },
            "account_id",
        ),
        (
            {
                let mut e = good.clone();
                e["priority"] = json!(3);
                e
            },
            "priority",
        ),
        (
            {
                let mut e = good.clone();
                e["account_id"] = json!(42);
                e
            },
            "account_id",
        ),
        (json!([1, 2, 3]), "body"),
    ];
    for (body, field) in cases {
        let (status, err) = post_event(&app, &body).await;
        assert_eq!(status, 422, "{body} -> {err}");
        assert_eq!(err["error"]["code"], "validation_failed");
        let fields: Vec<&str> = err["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(fields.contains(&field), "{field} not named for {body}: {err}");
        assert!(err["error"]["request_id"].as_str().unwrap().starts_with("req_"));
    }
    let r = app
        .client
        .post(app.url("/api/v1/internal/events/nba-calculation"))
        .body("{\"event_id\":")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "invalid_json");
    let r = app
        .client
        .post(app.url("/api/v1/internal/events/nba-calculation"))
        .body(good.to_string())
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let big = json!({"event_id": uuid::Uuid::new_v4().to_string(), "context": {"blob": "x".repeat(2 * 1024 * 1024)}});
    // The server answers 413 before reading the body and then drops the connection: ask the
    // client not to pool it, or the next request may be sent on it and fail.
    let r = app
        .client
        .post(app.url("/api/v1/internal/events/nba-calculation"))
        .header("connection", "close")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "payload_too_large");
    let (s, err) = app.get_json("/api/v1/nba?status=done").await;
    assert_eq!((s, err["error"]["message"].as_str()), (400, Some("invalid status filter")));
    let (s, err) = app.get_json("/api/v1/nba?limit=500&offset=-1").await;
    assert_eq!(s, 422);
    assert_eq!(err["error"]["details"].as_array().unwrap().len(), 2);
    let (s, _) = app.get_json("/api/v1/internal/events/not-a-uuid").await;
    assert_eq!(s, 404);
    let (s, err) = app.get_json("/api/v1/nba?account_id=%00").await;
    assert_eq!((s, err["error"]["details"][0]["field"].as_str()), (422, Some("account_id")));
    let (s, err) = app.get_json("/api/v1/nba?limit=lots").await;
    assert_eq!((s, err["error"]["details"][0]["field"].as_str()), (422, Some("limit")));
    let (s, _) = app.get_json("/api/v1/nba/nba_%00").await;
    assert_eq!(s, 404);
    // Nothing above was written.
    let (_, list) = app.get_json("/api/v1/nba?active=all").await;
    assert_eq!(list["total"], 0);
}

async fn listing_pages_and_filters_by_enterprise_number_and_status(backend: Backend) {
    let app = spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let (_, r) =
            post_event(&app, &event(&format!("def_page_{i}"), json!({"enterprise_number": "7770000001"})))
                .await;
        ids.push(r["nba_id"].as_str().unwrap().to_owned());
    }
    act(&app, &ids[0], json!({"status": "accepted"})).await;
    let (_, page) =
        app.get_json("/api/v1/nba?enterprise_number=7770000001&status=new&limit=2&offset=1").await;
    assert_eq!(page["total"], 4);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!((page["limit"].as_i64(), page["offset"].as_i64()), (Some(2), Some(1)));
    let (_, accepted) = app.get_json("/api/v1/nba?enterprise_number=7770000001&status_filter=accepted").await;
    assert_eq!(accepted["total"], 1);
    let (_, page) =
        app.get_json("/api/v1/nba?enterprise_number=7770000001&nba_definition_id=def_page_3").await;
    assert_eq!(page["items"][0]["id"], ids[3].as_str());
}

async fn the_active_nbas_page_is_served_and_documented(backend: Backend) {
    let app = spawn(backend).await;
    let r = app.client.get(app.url("/ui/active-nbas?client=0123456789")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text().await.unwrap().contains("/api/v1/nba"));
    let (_, spec) = app.get_json("/openapi.json").await;
    sightline_platform::testing::check_openapi_parameters(&spec);
    for path in [
        "/api/v1/internal/events/nba-calculation",
        "/api/v1/internal/events/{event_id}",
        "/api/v1/nba",
        "/api/v1/nba/{nba_id}",
        "/api/v1/nba/{nba_id}/events",
        "/api/v1/nba/{nba_id}/actions",
        "/api/v1/mock-db/overview",
        "/ui/active-nbas",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} missing");
    }
    assert!(spec["components"]["schemas"]["CalculationEvent"]["example"].is_object());
}

storage_tests!(
    events_dated_in_the_future_or_with_oversized_context_are_refused,
    the_seed_demo_enqueues_processes_lists_and_accepts,
    the_same_event_id_twice_has_no_second_effect,
    a_recalculation_deactivates_the_older_nba_of_the_same_scope_only,
    a_delete_event_deactivates_the_listed_nbas_and_creates_none,
    decisions_follow_the_documented_lifecycle,
    a_missing_identifier_is_filled_from_the_reference_data,
    bad_payloads_are_refused_with_4xx_naming_the_field,
    listing_pages_and_filters_by_enterprise_number_and_status,
    the_active_nbas_page_is_served_and_documented,
);

async fn every_route_admits_exactly_the_roles_its_permission_names(backend: Backend) {
    let app = spawn(backend).await;
    sightline_platform::testing::check_route_matrix(&app).await;
}

async fn decisions_and_events_are_audited_with_their_actor(backend: Backend) {
    let app = spawn(backend).await;
    let analyst = app.user_with_roles(&["analyst"]).await;
    let key = app.api_key(&["events:write"]).await;
    let calculator = app.client_with(&key);
    let body = event("def_audit", json!({"account_id": "acc_audit"}));
    let r = calculator.post(app.url(EVENTS)).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    let nba_id = accepted["nba_id"].as_str().unwrap().to_owned();
    let r = app
        .client_with(&analyst.access_token)
        .post(app.url(&format!("/api/v1/nba/{nba_id}/actions")))
        .json(&json!({"status": "rejected", "comment": "not interested"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let record: Value = r.json().await.unwrap();
    assert_eq!(record["acted_by"], analyst.user.username.as_str());
    let (_, page) = app.get_json(&format!("/api/v1/audit?entity_type=nba&entity_id={nba_id}")).await;
    assert_eq!(page["total"], 1, "{page}");
    let entry = &page["items"][0];
    assert_eq!(entry["action"], "nba.rejected");
    assert_eq!(entry["actor"]["name"], analyst.user.username.as_str());
    assert_eq!(entry["before"]["status"], "new");
    assert_eq!(entry["after"]["comment"], "not interested");
    let event_id = body["event_id"].as_str().unwrap();
    let (_, page) = app.get_json(&format!("/api/v1/audit?entity_type=nba_event&entity_id={event_id}")).await;
    assert_eq!(page["items"][0]["actor"]["kind"], "api_key", "{page}");
    // A viewer may read NBAs but not decide, and a key without events:write can't send events.
    let viewer = app.user_with_roles(&["viewer"]).await;
    let r = app.client_with(&viewer.access_token).get(app.url("/api/v1/nba")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client_with(&viewer.access_token)
        .post(app.url(&format!("/api/v1/nba/{nba_id}/actions")))
        .json(&json!({"status": "accepted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
}

storage_tests!(
    every_route_admits_exactly_the_roles_its_permission_names,
    decisions_and_events_are_audited_with_their_actor,
);
