//! The outbound client against a scripted stand-in: TLS with a configured CA, timeouts, hangs,
//! resets, 429 with `Retry-After`, 5xx, retries only where safe, the circuit breaker, the rate
//! limit, request ids and metrics. Every failure comes back typed and maps to 502/503/504.

use std::sync::Arc;
use std::time::{Duration, Instant};

use figment::providers::Serialized;
use figment::Figment;
use serde_json::{json, Value};
use sightline_platform::config::Config;
use sightline_platform::error::ApiError;
use sightline_platform::outbound::{BreakerState, Outbound, OutboundClient, OutboundConfig, OutboundError};
use sightline_platform::testing::standin::{Reply, StandIn};

/// A client of `standin` with quick test timings, changed by `adjust`.
fn client_of(standin: &StandIn, name: &str, adjust: impl FnOnce(&mut OutboundConfig)) -> OutboundClient {
    let mut settings = OutboundConfig {
        base_url: standin.url(""),
        connect_timeout_ms: 1_000,
        timeout_ms: 1_000,
        budget_ms: 5_000,
        max_retries: 2,
        backoff_base_ms: 10,
        backoff_max_ms: 50,
        ..OutboundConfig::default()
    };
    adjust(&mut settings);
    OutboundClient::new(name, settings).expect("client builds")
}

fn status_of(error: OutboundError) -> u16 {
    ApiError::from(error).status().as_u16()
}

#[tokio::test]
async fn https_reaches_a_local_server_whose_ca_is_given_in_config() {
    let standin = StandIn::start_tls().await;
    standin.otherwise(Reply::json(200, &json!({"ok": true})));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, standin.ca_pem().unwrap()).unwrap();
    let figment = Figment::from(Serialized::defaults(Config::default()))
        .merge(("outbound.feed.base_url", standin.url("/v1")))
        .merge(("outbound.feed.ca_file", ca_file.display().to_string()));
    let outbound = Outbound::new(Arc::new(Config::from_figment(figment).unwrap()));
    let feed = outbound.client("feed", OutboundConfig::default()).unwrap();
    let answer: Value = feed.get("/stats").send_json().await.expect("HTTPS call succeeds");
    assert_eq!(answer, json!({"ok": true}));
    assert_eq!(standin.received()[0].uri, "/v1/stats");

    // Without the CA the certificate is refused: verification is on.
    let untrusting = client_of(&standin, "untrusting", |s| s.max_retries = 0);
    let err = untrusting.get("/stats").send().await.unwrap_err();
    assert!(matches!(err, OutboundError::Unavailable { .. }), "{err:?}");
    assert_eq!(standin.received().len(), 1, "the handshake failed before any request");
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let standin = StandIn::start().await;
    standin.then(Reply::status(200).after(Duration::from_secs(3))).then(Reply::json(200, &json!([1])));
    let feed = client_of(&standin, "slow", |s| s.timeout_ms = 200);
    let answer: Value = feed.get("/x").send_json().await.expect("the retry succeeds");
    assert_eq!(answer, json!([1]));
    assert_eq!(standin.received().len(), 2);

    standin.otherwise(Reply::status(200).after(Duration::from_secs(3)));
    let err = feed.get("/x").send().await.unwrap_err();
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    assert_eq!(standin.received().len(), 2 + 3, "first attempt and two retries");
    assert_eq!(status_of(err), 504);
}

#[tokio::test]
async fn a_hanging_service_fails_the_call_within_its_budget() {
    let standin = StandIn::start().await;
    standin.otherwise(Reply::hang());
    let feed = client_of(&standin, "hanging", |s| {
        s.timeout_ms = 10_000;
        s.budget_ms = 400;
    });
    let started = Instant::now();
    let err = feed.get("/x").send().await.unwrap_err();
    assert!(matches!(err, OutboundError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(status_of(err), 504);
}

#[tokio::test]
async fn a_reset_connection_is_retried_only_when_a_repeat_is_harmless() {
    let standin = StandIn::start().await;
    standin.then(Reply::reset()).then(Reply::json(200, &json!({})));
    let feed = client_of(&standin, "resetting", |_| {});
    feed.get("/x").send().await.expect("GET is retried after a reset");
    assert_eq!(standin.received().len(), 2);

    standin.then(Reply::reset());
    let err = feed.post("/events").json(&json!({"a": 1})).send().await.unwrap_err();
    assert!(matches!(err, OutboundError::Unavailable { .. }), "{err:?}");
    assert_eq!(standin.received().len(), 3, "a POST that may have arrived is not repeated");
    assert_eq!(status_of(err), 503);

    standin.then(Reply::reset()).then(Reply::json(200, &json!({})));
    feed.post("/events").json(&json!({"a": 1})).retry_non_idempotent().send().await.expect("retried");
    let received = standin.received();
    assert_eq!(received.len(), 5);
    assert_eq!(received[4].body, received[3].body, "the same body is sent again");
}

#[tokio::test]
async fn a_refused_connection_is_unavailable_and_retried_even_for_a_post() {
    let standin = StandIn::start().await;
    let url = standin.url("");
    drop(standin);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let feed = OutboundClient::new(
        "refused",
        OutboundConfig { base_url: url, backoff_base_ms: 10, max_retries: 2, ..OutboundConfig::default() },
    )
    .unwrap();
    let started = Instant::now();
    let err = feed.post("/events").json(&json!({})).send().await.unwrap_err();
    let OutboundError::Unavailable { reason, .. } = &err else { panic!("{err:?}") };
    assert!(reason.to_lowercase().contains("connect"), "{reason}");
    assert!(started.elapsed() >= Duration::from_millis(20), "it waited between attempts");
    assert_eq!(status_of(err), 503);
}

#[tokio::test]
async fn a_429_is_retried_after_the_time_the_service_asks_for() {
    let standin = StandIn::start().await;
    standin.then(Reply::status(429).header("retry-after", "1")).then(Reply::json(200, &json!({})));
    let feed = client_of(&standin, "limited", |_| {});
    let started = Instant::now();
    feed.get("/x").send().await.expect("succeeds after waiting");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured: {:?}", started.elapsed());
    assert_eq!(standin.received().len(), 2);

    // A wait longer than allowed fails at once.
    standin.then(Reply::status(429).header("retry-after", "120"));
    let started = Instant::now();
    let err = feed.get("/x").send().await.unwrap_err();
    let OutboundError::RateLimited { retry_after, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*retry_after, Some(Duration::from_secs(120)));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(standin.received().len(), 3);
    assert_eq!(status_of(err), 503);
}

#[tokio::test]
async fn a_5xx_is_retried_then_reported_with_its_status_and_a_4xx_is_not_retried() {
    let standin = StandIn::start().await;
    standin.otherwise(Reply::bytes(503, "text/plain", "down for maintenance"));
    let feed = client_of(&standin, "failing", |s| s.breaker_failures = 0);
    let err = feed.get("/x").send().await.unwrap_err();
    let OutboundError::Status { status, body, .. } = &err else { panic!("{err:?}") };
    assert_eq!((*status, body.as_str()), (503, "down for maintenance"));
    assert_eq!(standin.received().len(), 3);
    assert_eq!(status_of(err), 502);

    standin.otherwise(Reply::status(404));
    let err = feed.get("/missing").send().await.unwrap_err();
    assert!(matches!(err, OutboundError::Status { status: 404, .. }), "{err:?}");
    assert_eq!(standin.received().len(), 4, "a 404 is final");
}

#[tokio::test]
async fn an_undecodable_body_is_a_bad_gateway() {
    let standin = StandIn::start().await;
    standin.otherwise(Reply::bytes(200, "application/json", "{not json"));
    let feed = client_of(&standin, "garbled", |_| {});
    let err = feed.get("/x").send_json::<Value>().await.unwrap_err();
    assert!(matches!(err, OutboundError::Undecodable { .. }), "{err:?}");
    assert_eq!(status_of(err), 502);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_lets_one_probe_through_after_the_cooldown() {
    let standin = StandIn::start().await;
    standin.otherwise(Reply::status(500));
    let feed = client_of(&standin, "breaking", |s| {
        s.max_retries = 0;
        s.breaker_failures = 2;
        s.breaker_cooldown_ms = 300;
    });
    for _ in 0..2 {
        assert!(matches!(feed.get("/x").send().await, Err(OutboundError::Status { status: 500, .. })));
    }
    assert_eq!(feed.breaker_state(), BreakerState::Open);
    let started = Instant::now();
    let err = feed.get("/x").send().await.unwrap_err();
    assert!(matches!(err, OutboundError::CircuitOpen { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_millis(100), "fails fast");
    assert_eq!(standin.received().len(), 2, "no call was made while open");
    assert_eq!(status_of(err), 503);

    tokio::time::sleep(Duration::from_millis(350)).await;
    standin.otherwise(Reply::json(200, &json!({})));
    feed.get("/x").send().await.expect("the probe goes through");
    assert_eq!(feed.breaker_state(), BreakerState::Closed);
    assert_eq!(standin.received().len(), 3);
}

#[tokio::test]
async fn the_rate_limit_spaces_calls_out() {
    let standin = StandIn::start().await;
    standin.otherwise(Reply::json(200, &json!({})));
    let feed = client_of(&standin, "metered", |s| {
        s.rate_per_sec = 10.0;
        s.burst = 1;
    });
    let started = Instant::now();
    for _ in 0..5 {
        feed.get("/x").send().await.unwrap();
    }
    assert!(started.elapsed() >= Duration::from_millis(380), "5 calls at 10/s: {:?}", started.elapsed());
}

#[tokio::test]
async fn the_request_id_is_sent_and_kept_across_retries() {
    let standin = StandIn::start().await;
    standin.then(Reply::status(502)).otherwise(Reply::json(200, &json!({})));
    let feed = client_of(&standin, "traced", |_| {});
    sightline_platform::request_id::scope("req_0123456789".into(), feed.get("/x").send()).await.unwrap();
    let ids: Vec<_> = standin.received().iter().map(|r| r.headers["x-request-id"].clone()).collect();
    assert_eq!(ids, ["req_0123456789", "req_0123456789"]);

    feed.get("/y").send().await.unwrap();
    let id = standin.received()[2].headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.starts_with("req_") && id.len() == 14, "one is made when none is current: {id}");
}

#[tokio::test]
async fn calls_are_counted_by_client_and_outcome() {
    let metrics = sightline_platform::telemetry::prometheus();
    let standin = StandIn::start().await;
    standin.then(Reply::json(200, &json!({}))).otherwise(Reply::status(404));
    let feed = client_of(&standin, "counted", |_| {});
    feed.get("/x").send().await.unwrap();
    feed.get("/x").send().await.unwrap_err();
    let text = metrics.render();
    for line in [
        r#"sightline_outbound_requests_total{client="counted",outcome="success"} 1"#,
        r#"sightline_outbound_requests_total{client="counted",outcome="status"} 1"#,
        r#"sightline_outbound_breaker_state{client="counted"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line}");
    }
    assert!(text.contains(r#"sightline_outbound_request_duration_seconds_count{client="counted"} 2"#));
}
