//! The S&OP cycle as FACTS-004 §6 verified it, and the dashboard's view of it.

use serde_json::json;
use sightline_platform::Backend;

use crate::{send, spawn};

async fn an_sop_cycle_advances_step_by_step_and_completes_from_any_step(backend: Backend) {
    let app = spawn(backend).await;
    let (_, none) = app.get_json("/api/v1/sop-cycles/active").await;
    assert_eq!(none, json!({"active": false, "message": "No active S&OP cycle"}));
    let (_, none) = app.get_json("/api/v1/dashboard/sop-status").await;
    assert_eq!(none["active"], false);

    let coordinator = app.client_with(&app.user_with_roles(&["sop_coordinator"]).await.access_token);
    let executive = app.client_with(&app.user_with_roles(&["executive"]).await.access_token);
    let body = json!({"cycle_name": "March 2026", "period": "2026-03-01", "step_2_due_date": "2026-03-10"});
    assert_eq!(send(&executive, "POST", app.url("/api/v1/sop-cycles"), Some(body.clone())).await.0, 403);
    let (status, cycle) = send(&coordinator, "POST", app.url("/api/v1/sop-cycles"), Some(body)).await;
    assert_eq!(status, 201, "{cycle}");
    assert_eq!(
        (&cycle["current_step"], &cycle["overall_status"], &cycle["step_1_status"]),
        (&json!(1), &json!("active"), &json!("pending"))
    );
    let id = cycle["id"].as_i64().unwrap();
    let url = |path: &str| app.url(&format!("/api/v1/sop-cycles/{id}{path}"));

    let (_, advanced) = send(&coordinator, "POST", url("/advance"), Some(json!({"notes": "ignored"}))).await;
    assert_eq!(
        (&advanced["current_step"], &advanced["step_1_status"], &advanced["step_2_status"]),
        (&json!(2), &json!("completed"), &json!("pending"))
    );
    let (_, status) = app.get_json("/api/v1/dashboard/sop-status").await;
    assert_eq!(
        (&status["active"], &status["current_step"], &status["steps"][1]["name"]),
        (&json!(true), &json!(2), &json!("Demand Review"))
    );
    assert_eq!(status["steps"][1]["due_date"], "2026-03-10");
    let (_, active) = app.get_json("/api/v1/sop-cycles/active").await;
    assert_eq!(active["id"], id);

    assert_eq!(
        send(&coordinator, "POST", url("/complete"), None).await.0,
        403,
        "coordinators do not complete"
    );
    let (_, done) = send(&executive, "POST", url("/complete"), Some(json!({"decisions": "ignored"}))).await;
    assert_eq!(
        (&done["overall_status"], &done["current_step"], &done["step_2_status"], &done["step_5_status"]),
        (&json!("completed"), &json!(2), &json!("pending"), &json!("completed"))
    );
    let (status, refused) = send(&coordinator, "POST", url("/advance"), None).await;
    assert_eq!(
        (status, refused["error"]["message"].as_str()),
        (400, Some("Can only advance an active S&OP cycle."))
    );

    let (_, second) = send(
        &coordinator,
        "POST",
        app.url("/api/v1/sop-cycles"),
        Some(json!({"cycle_name": "April", "period": "2026-04-01"})),
    )
    .await;
    let second_id = second["id"].as_i64().unwrap();
    for _ in 0..4 {
        assert_eq!(
            send(&coordinator, "POST", app.url(&format!("/api/v1/sop-cycles/{second_id}/advance")), None)
                .await
                .0,
            200
        );
    }
    let (status, last) =
        send(&coordinator, "POST", app.url(&format!("/api/v1/sop-cycles/{second_id}/advance")), None).await;
    assert_eq!((status, last["error"]["code"].as_str()), (400, Some("BUSINESS_RULE_VIOLATION")));
    let (_, edited) = send(
        &coordinator,
        "PUT",
        app.url(&format!("/api/v1/sop-cycles/{second_id}")),
        Some(json!({"decisions": "go", "step_5_owner_id": "u1"})),
    )
    .await;
    assert_eq!(
        (&edited["decisions"], &edited["step_5_owner_id"], &edited["current_step"]),
        (&json!("go"), &json!("u1"), &json!(5))
    );
    let (_, page) = app.get_json("/api/v1/sop-cycles").await;
    assert_eq!(
        (&page["total"], &page["items"][0]["cycle_name"]),
        (&json!(2), &json!("April")),
        "latest period first"
    );
    let (status, missing) = app.get_json("/api/v1/sop-cycles/999").await;
    assert_eq!(
        (status, missing["error"]["message"].as_str()),
        (404, Some("SOPCycle with id '999' not found."))
    );
}

sightline_platform::storage_tests!(an_sop_cycle_advances_step_by_step_and_completes_from_any_step);
