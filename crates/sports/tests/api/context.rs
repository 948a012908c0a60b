//! Contexts, batches, advanced figures, predictions and the status routes.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sightline_sports::features;

use super::{get, spawn, spawn_with, standin};

#[tokio::test]
async fn a_context_carries_the_rolling_features_venue_rest_and_the_opponents_ratings() {
    let standin = standin();
    let app = spawn(&standin).await;
    let (status, c, _) =
        get(&app, "/api/player_context?player_name=stephen%20curry&limit=10&season=2024-25").await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["player_id"], 201939);
    let games = c["recentGames"].as_array().unwrap();
    assert_eq!(games.len(), 10);
    let values: Vec<Option<f64>> = games.iter().map(|g| g["statValue"].as_f64()).collect();
    let expected: BTreeMap<String, Option<f64>> =
        features::rolling(&values).into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(c["rollingAverages"], json!(expected));
    let mean = (values.iter().flatten().sum::<f64>() / 10.0 * 100.0).round() / 100.0;
    assert_eq!(c["seasonAvg"].as_f64(), Some(mean));
    let matchup = games[0]["matchup"].as_str().unwrap();
    assert_eq!(c["contextualFactors"]["is_home"], i64::from(matchup.contains("vs.")), "{matchup}");
    let opponent = matchup.rsplit(' ').next().unwrap();
    assert_eq!(c["opponentInfo"]["team"], opponent, "{c}");
    let rating = c["opponentInfo"]["defensiveRating"].as_f64().unwrap();
    let pace = c["opponentInfo"]["pace"].as_f64().unwrap();
    assert!((80.0..140.0).contains(&rating) && (70.0..130.0).contains(&pace), "{rating} {pace}");
    let (status, body, _) = get(&app, "/api/player_context").await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("player_name")));
    // The POST form: the summary with the original's debug block.
    let (status, posted) = app
        .post_json(
            "/api/player_context",
            &json!({"player": "stephen curry", "season": "2024-25", "limit": 3}),
        )
        .await;
    assert_eq!((status, posted["debug"]["recent_count"].as_i64()), (200, Some(3)), "{posted}");
}

#[tokio::test]
async fn a_batch_keeps_its_order_fails_items_alone_and_is_limited_in_size_and_rate() {
    let standin = standin();
    let app =
        spawn_with(&standin, &[("sports.max_batch_size", json!(5)), ("sports.batch_max_rpm", json!(8))])
            .await;
    let items = json!([{"player": "lebron james"}, {"player": ""}, {"player": "Nobody Atall"}, {"player": "luka doncic", "stat": "assists", "limit": 2}]);
    let (status, answers) = app.post_json("/api/batch_player_context?max_concurrency=2", &items).await;
    assert_eq!(status, 200, "{answers}");
    let answers = answers.as_array().unwrap();
    assert_eq!(answers.len(), 4);
    assert_eq!(answers[0]["playerId"], 2544);
    assert_eq!(answers[1], json!({"player": "", "error": "player name required"}));
    assert_eq!(answers[2], json!({"player": "Nobody Atall", "error": "player not found"}));
    assert_eq!(
        (answers[3]["playerId"].as_i64(), answers[3]["recentGames"].as_array().map(Vec::len)),
        (Some(1629029), Some(2))
    );
    assert_eq!(answers[3]["debug"]["found_player_id"], 1629029);
    // Too big: 400. Over the client's share of the minute (8 items; 4 used): 429 with Retry-After.
    let six: Vec<Value> = (0..6).map(|_| json!({"player": "lebron james"})).collect();
    let (status, body) = app.post_json("/api/batch_player_context", &json!(six)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("batch_too_large")), "{body}");
    let five: Vec<Value> = (0..5).map(|_| json!({"player": "lebron james"})).collect();
    let r = app.client.post(app.url("/api/batch_player_context")).json(&five).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let (status, _) = app.post_json("/api/batch_player_context", &json!([{"player": "lebron james"}])).await;
    assert_eq!(status, 200, "what is left of the minute still admits a smaller batch");
}

#[tokio::test]
async fn advanced_figures_honour_each_season_and_teams_have_their_opponents_points() {
    let standin = standin();
    let app = spawn(&standin).await;
    let (status, a) = app
        .post_json(
            "/api/player_advanced",
            &json!({"player": "lebron james", "seasons": ["2023-24", "2024-25"]}),
        )
        .await;
    assert_eq!(status, 200, "{a}");
    let per = &a["advanced"]["per_season"];
    let (one, two) =
        (per["2023-24"]["PTS_per_game"].as_f64().unwrap(), per["2024-25"]["PTS_per_game"].as_f64().unwrap());
    assert_ne!(one, two, "each season its own games");
    let mean = a["advanced"]["aggregated"]["PTS_per_game"].as_f64().unwrap();
    assert!((mean - (one + two) / 2.0).abs() < 1e-9, "{mean}");
    assert!(per["2024-25"]["games"].as_i64().unwrap() > 50);
    let (status, nobody) = app.post_json("/api/player_advanced", &json!({"player": "Nobody Atall"})).await;
    assert_eq!(
        (status, &nobody["player_id"], &nobody["advanced"]["per_season"]),
        (200, &Value::Null, &json!({}))
    );

    let (status, t) =
        app.post_json("/api/team_advanced", &json!({"team_id": 1610612747, "seasons": ["2024-25"]})).await;
    assert_eq!(status, 200, "{t}");
    let lal = &t["advanced"]["per_season"]["2024-25"];
    let (pts, opp) = (lal["PTS_avg"].as_f64().unwrap(), lal["OPP_PTS_avg"].as_f64().unwrap());
    assert!(lal["games"].as_i64().unwrap() >= 82 && pts > 80.0 && opp > 80.0, "{lal}");
    assert_eq!(lal["PTS_diff"].as_f64(), Some(((pts - opp) * 100.0).round() / 100.0));
    let (status, body) = app.post_json("/api/team_advanced", &json!({"seasons": ["2024-25"]})).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("team_id")));
}

#[tokio::test]
async fn predictions_use_the_given_games_or_fetch_them_and_batches_keep_order() {
    let standin = standin();
    let app = spawn(&standin).await;
    let given = json!({"player": "lebron james", "line": 20.0,
        "player_data": {"recentGames": [{"statValue": 30}, {"statValue": 20}]}});
    let (status, p) = app.post_json("/api/predict", &given).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        (p["predicted_value"].as_f64(), p["over_probability"].as_f64(), p["recommendation"].as_str()),
        (Some(25.0), Some(0.75), Some("OVER"))
    );
    assert_eq!(p["games_used"], 2);
    let (status, fetched) =
        app.post_json("/api/predict", &json!({"player": "lebron james", "line": 99.5})).await;
    assert_eq!(
        (status, fetched["recommendation"].as_str(), fetched["games_used"].as_u64()),
        (200, Some("UNDER"), Some(10)),
        "{fetched}"
    );
    let (_, unknown) = app.post_json("/api/predict", &json!({"player": "Nobody Atall", "line": 1})).await;
    assert_eq!(unknown["error"], "player not found");
    let (status, body) = app.post_json("/api/predict", &json!({"player": "lebron james"})).await;
    assert_eq!(status, 422, "the line is required: {body}");
    let (status, batch) =
        app.post_json("/api/batch_predict", &json!([given, {"player": "Nobody Atall", "line": 1}])).await;
    assert_eq!(status, 200);
    let predictions = batch["predictions"].as_array().unwrap();
    assert_eq!(
        (predictions.len(), &predictions[0]["player"], &predictions[1]["error"]),
        (2, &json!("lebron james"), &json!("player not found"))
    );
}

#[tokio::test]
async fn the_status_routes_tell_what_answers_and_the_debug_one_is_for_admins() {
    let standin = standin();
    let app = spawn(&standin).await;
    let (status, nba) = app.get_json("/api/nba_status").await;
    assert_eq!(status, 200);
    assert_eq!(
        (nba["can_fetch_players"].as_bool(), nba["sample_player"]["player_id"].as_i64()),
        (Some(true), Some(2544)),
        "{nba}"
    );
    assert_eq!(nba["breaker"], "closed");
    assert_eq!(app.get_json("/api/db_health").await.1, json!({"ok": true, "db": {"ok": true}}));
    assert_eq!(app.get_json("/api/models").await.1["models"], json!([]));
    let (status, debug) = app.get_json("/debug/status").await;
    assert_eq!(status, 200, "{debug}");
    assert_eq!(
        (debug["db"]["ok"].as_bool(), debug["cache"]["backend"].as_str()),
        (Some(true), Some("memory"))
    );
    assert!(debug["cache_metrics"]["misses"].as_u64().unwrap() > 0, "{debug}");
    let reader = app.api_key(&["sports:read"]).await;
    let r = app.client_with(&reader).get(app.url("/debug/status")).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn every_route_follows_its_declared_access_and_parameters_are_declared_where_read() {
    let standin = standin();
    let app = spawn(&standin).await;
    sightline_platform::testing::check_route_matrix(&app).await;
    sightline_platform::testing::check_openapi_parameters(&app.get_json("/openapi.json").await.1);
}
