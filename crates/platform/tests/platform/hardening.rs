//! What a hostile client can try without signing in, refused: oversized and forged login
//! identifiers, audit floods, invented HTTP methods, slow and idle connections, framing.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sightline_platform::testing::TestApp;
use sightline_platform::{storage_tests, Backend};
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn login(app: &TestApp, body: Value) -> (u16, Value) {
    let r = app.anonymous.post(app.url("/api/v1/auth/login")).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn audit_rows(app: &TestApp, action: &str) -> (i64, i64) {
    let row = sqlx::query(
        "SELECT COUNT(*), COALESCE(MAX(LENGTH(entity_id) + LENGTH(actor_name)), 0) FROM audit_log WHERE action = $1",
    )
    .bind(action)
    .fetch_one(app.platform.db.reader())
    .await
    .unwrap();
    (row.get(0), row.get(1))
}

/// H1 and M4: an identifier no account could have is refused before it is throttled, audited or
/// logged; a flood of throttled attempts writes one audit row per address and window.
async fn login_identifiers_are_checked_before_audit_and_throttled_floods_write_one_row(backend: Backend) {
    let app = TestApp::spawn(
        backend,
        Vec::new(),
        &[
            ("auth.login_max_failures_per_address", json!(3)),
            ("auth.login_max_failures_per_account_address", json!(100)),
        ],
    )
    .await;
    let huge = "w".repeat(500_000);
    let (status, body) = login(&app, json!({"username": huge, "password": "wrong-password"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "username");
    let (status, body) =
        login(&app, json!({"email": format!("{}@x.io", "e".repeat(300)), "password": "p"})).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("email")), "{body}");
    let forged = "zz\n2026-12-02T00:00:00Z  INFO auth.login_succeeded username=\"admin\" FORGED";
    for name in [forged, "zz\u{1b}[2J\u{1b}[31mANSI"] {
        let (status, body) = login(&app, json!({"username": name, "password": "wrong-password"})).await;
        assert_eq!(
            (status, body["error"]["details"][0]["field"].as_str()),
            (422, Some("username")),
            "{body}"
        );
    }
    assert_eq!(audit_rows(&app, "auth.login_failed").await.0, 0, "refused identifiers are not audited");

    for i in 0..3 {
        let (status, _) =
            login(&app, json!({"username": format!("nobody{i}"), "password": "wrong-password"})).await;
        assert_eq!(status, 401);
    }
    for i in 0..40 {
        let name = format!("{}{i}", "w".repeat(240));
        let (status, _) = login(&app, json!({"username": name, "password": "wrong-password"})).await;
        assert_eq!(status, 429);
    }
    let (throttled, longest) = audit_rows(&app, "auth.login_throttled").await;
    assert_eq!(throttled, 1, "one audit row per address and window, not one per request");
    assert!(longest <= 2 * 256, "stored identifiers are capped: {longest}");
    assert_eq!(audit_rows(&app, "auth.login_failed").await.0, 3);
}

/// Sends raw bytes on a new connection and reads until the server closes it or 2 s pass.
async fn raw_exchange(app: &TestApp, request: &[u8]) -> String {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// H2: invented methods are counted as `other`; the label set stays closed.
#[tokio::test]
async fn invented_http_methods_do_not_grow_the_metrics() {
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[]).await;
    let mut request = Vec::new();
    for i in 0..20 {
        request
            .extend(format!("INVENTED{i}{} /health HTTP/1.1\r\nHost: x\r\n\r\n", "Q".repeat(2_000)).bytes());
    }
    request.extend(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let answers = raw_exchange(&app, &request).await;
    assert_eq!(answers.matches("HTTP/1.1 405").count(), 20, "{answers}");
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!metrics.contains("INVENTED"), "a raw method became a label");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.contains("method=\"GET\""), "{metrics}");
}

/// H3: connections that trickle their headers or send nothing are closed within the header
/// timeout, and `/health` keeps answering promptly meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_health_keeps_answering() {
    let app =
        TestApp::spawn(Backend::Sqlite, Vec::new(), &[("http.header_read_timeout_secs", json!(1))]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let started = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..300 {
        // One at a time, so the test measures the server, not an overflowing accept backlog.
        let mut stream = TcpStream::connect(&address).await.unwrap();
        attackers.push(tokio::spawn(async move {
            if i % 2 == 0 {
                // Slowloris: a header byte every 100 ms, never finishing the head.
                for byte in b"GET /health HTTP/1.1\r\nX-Slow: ".iter().chain(b"a".repeat(200).iter()) {
                    if stream.write_all(&[*byte]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            // Closed by the server: the read ends (EOF or reset) instead of waiting for ever.
            let mut buffer = [0u8; 256];
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            (i, closed.is_ok())
        }));
    }
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let asked = Instant::now();
        let r = app.anonymous.get(app.url("/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(slowest < Duration::from_secs(1), "/health took {slowest:?} under the slow connections");
    let mut still_open = Vec::new();
    for attacker in attackers {
        let (i, closed) = attacker.await.unwrap();
        if !closed {
            still_open.push(i);
        }
    }
    assert!(still_open.is_empty(), "connections still open 5 s after the header timeout: {still_open:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
}

/// H3: over the connection cap, a new connection is closed at once; one freed slot is usable.
#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[("http.max_connections", json!(20))]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&address).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buffer)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "the connection over the cap was not closed: {read:?}");
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = raw_exchange(&app, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// M3: every answer refuses sniffing and framing; pages carry a CSP naming exactly their inline
/// scripts; token answers are not cached.
#[tokio::test]
async fn pages_carry_a_content_security_policy_and_answers_refuse_framing() {
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[]).await;
    for path in ["/rq", "/docs/", "/"] {
        let r = app.anonymous.get(app.url(path)).header("accept", "text/html").send().await.unwrap();
        let headers = r.headers().clone();
        let policy = headers.get("content-security-policy").map(|v| v.to_str().unwrap().to_owned());
        let policy = policy.unwrap_or_else(|| panic!("{path} has no CSP"));
        assert!(policy.contains("frame-ancestors 'none'"), "{path}: {policy}");
        assert!(policy.contains("object-src 'none'"), "{path}: {policy}");
        assert!(
            !policy.contains("'unsafe-inline'; ") || !policy.contains("script-src 'self' 'unsafe-inline'")
        );
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let html = r.text().await.unwrap();
        let inline = html.matches("<script>").count();
        assert_eq!(policy.matches("'sha256-").count(), inline, "{path}: one hash per inline script");
    }
    let r = app.anonymous.get(app.url("/health")).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().get("content-security-policy").is_none(), "JSON answers need no CSP");
    let r = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "wrong-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
}

/// Item 14: one account's username may not be another's email, either way round; a login by it
/// would otherwise find the wrong account.
async fn a_username_may_not_be_another_accounts_email(backend: Backend) {
    let app = TestApp::spawn(backend, Vec::new(), &[]).await;
    let password = sightline_platform::testing::TEST_PASSWORD;
    let ann = json!({"username": "ann", "email": "ann@example.com", "password": password});
    assert_eq!(app.post_json("/api/v1/auth/users", &ann).await.0, 201);
    let shadow = json!({"username": "ann@example.com", "password": password});
    let (status, body) = app.post_json("/api/v1/auth/users", &shadow).await;
    assert_eq!(status, 409, "{body}");
    let bob = json!({"username": "bob@example.com", "password": password});
    assert_eq!(app.post_json("/api/v1/auth/users", &bob).await.0, 201);
    let taking = json!({"username": "robert", "email": "bob@example.com", "password": password});
    assert_eq!(app.post_json("/api/v1/auth/users", &taking).await.0, 409);
    let (status, _) = login(&app, json!({"email": "ann@example.com", "password": password})).await;
    assert_eq!(status, 200, "the real owner still signs in by email");
}

/// A client whose connections come from `source` (any 127.x.x.x reaches the loopback server).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(source.parse::<std::net::IpAddr>().unwrap()).build().unwrap()
}

/// Signs in through `client`, as forwarded for `forwarded_for` when given.
async fn login_via(
    app: &TestApp,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
    body: Value,
) -> (u16, Value, Option<String>) {
    let mut request = client.post(app.url("/api/v1/auth/login")).json(&body);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    let r = request.send().await.unwrap();
    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null), retry_after)
}

/// Item 8 and the first half of 9: wrong passwords hold back the guessing address on that
/// account, not the owner elsewhere; the username and email of one account share a counter; a
/// much higher per-account ceiling holds against guesses from many addresses; the address
/// comes from `X-Forwarded-For` only through a trusted proxy.
async fn one_address_guessing_cannot_lock_the_owner_out(backend: Backend) {
    let app = TestApp::spawn(
        backend,
        Vec::new(),
        &[
            ("http.trusted_proxies", json!(["127.0.0.2"])),
            ("auth.login_max_failures_per_account_address", json!(3)),
            ("auth.login_max_failures_per_address", json!(10)),
            ("auth.login_max_failures_per_account", json!(8)),
        ],
    )
    .await;
    let password = sightline_platform::testing::TEST_PASSWORD;
    let ann = json!({"username": "ann", "email": "ann@example.com", "password": password});
    assert_eq!(app.post_json("/api/v1/auth/users", &ann).await.0, 201);
    let proxy = client_from("127.0.0.2");
    let wrong = |login: &str| json!({"username": login, "password": "a wrong guess, again"});
    let right = json!({"username": "ann", "password": password});

    // An attacker behind the proxy guesses twice by name and once by email: one counter.
    for login in ["ann", "ann", "ann@example.com"] {
        assert_eq!(login_via(&app, &proxy, Some("203.0.113.5"), wrong(login)).await.0, 401);
    }
    let (status, body, retry_after) = login_via(&app, &proxy, Some("203.0.113.5"), right.clone()).await;
    assert_eq!(status, 429, "the guessing address waits even with the right password: {body}");
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1), "Retry-After is sent");
    let by_email = json!({"email": "ann@example.com", "password": password});
    assert_eq!(login_via(&app, &proxy, Some("203.0.113.5"), by_email).await.0, 429, "the email alias too");
    // The owner, elsewhere, signs in.
    assert_eq!(login_via(&app, &proxy, Some("198.51.100.7"), right.clone()).await.0, 200);

    // Guesses spread over many addresses reach the account's ceiling (8), for everyone.
    for i in 0..8 {
        let from = format!("192.0.2.{i}");
        assert_eq!(login_via(&app, &proxy, Some(&from), wrong("ann")).await.0, 401);
    }
    assert_eq!(login_via(&app, &proxy, Some("198.51.100.7"), right.clone()).await.0, 429);

    // From a peer that is no trusted proxy the header is ignored: every guess counts against the
    // peer, whatever address it claims.
    let direct = client_from("127.0.0.3");
    let bob = json!({"username": "bob", "password": password});
    assert_eq!(app.post_json("/api/v1/auth/users", &bob).await.0, 201);
    for i in 0..3 {
        let claimed = format!("203.0.113.{}", 100 + i);
        let guess = json!({"username": "bob", "password": "a wrong guess, again"});
        assert_eq!(login_via(&app, &direct, Some(&claimed), guess).await.0, 401);
    }
    let (status, _, _) =
        login_via(&app, &direct, Some("203.0.113.200"), json!({"username": "bob", "password": password}))
            .await;
    assert_eq!(status, 429, "a claimed address does not reset the peer's counter");
    let (_, audit) = app.get_json("/api/v1/audit?action=auth.login_failed&actor=bob").await;
    assert_eq!(audit["items"][0]["after"]["address"], "127.0.0.3", "{audit}");
}

/// Second half of item 9: wrong current passwords on change-password are throttled like
/// failed logins.
async fn wrong_current_passwords_are_throttled(backend: Backend) {
    let app =
        TestApp::spawn(backend, Vec::new(), &[("auth.login_max_failures_per_account_address", json!(3))])
            .await;
    let user = app.user_with_roles(&["viewer"]).await;
    let client = app.client_with(&user.access_token);
    let change = |current: &str| {
        client
            .post(app.url("/api/v1/auth/change-password"))
            .json(&json!({"current_password": current, "new_password": "a brand new secret"}))
            .send()
    };
    for _ in 0..3 {
        assert_eq!(change("not my password at all").await.unwrap().status(), 422);
    }
    let r = change(sightline_platform::testing::TEST_PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
}

/// Item 11: logout, a password change and refresh-token reuse end the session's access tokens
/// at once; logout ends only the caller's own session.
async fn ended_sessions_end_their_access_tokens_at_once(backend: Backend) {
    let app = TestApp::spawn(backend, Vec::new(), &[]).await;
    let me = |token: String| {
        let app = &app;
        async move {
            let r = app.client_with(&token).get(app.url("/api/v1/auth/me")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let ann = app.user_with_roles(&["viewer"]).await;
    let (status, second) = login(
        &app,
        json!({"username": ann.user.username, "password": sightline_platform::testing::TEST_PASSWORD}),
    )
    .await;
    assert_eq!(status, 200);
    let bob = app.user_with_roles(&["viewer"]).await;

    let logout = |access_token: &str, refresh_token: &str| {
        let request = app.client_with(access_token).post(app.url("/api/v1/auth/logout"));
        let body = json!({"refresh_token": refresh_token});
        async move { request.json(&body).send().await.unwrap().status().as_u16() }
    };

    // Bob presents Ann's refresh token to logout: 204, and nothing of Ann's ends.
    assert_eq!(logout(&bob.access_token, &ann.refresh_token).await, 204);
    assert_eq!(me(ann.access_token.clone()).await.0, 200);

    // Ann logs out of her first session: its access token is refused at once; the other goes on.
    assert_eq!(logout(&ann.access_token, &ann.refresh_token).await, 204);
    let (status, body) = me(ann.access_token.clone()).await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("session ended; sign in again")));
    assert_eq!(me(second["access_token"].as_str().unwrap().to_owned()).await.0, 200);

    // A refresh token replayed: the session ends, with the access token it last gave.
    let (status, rotated) =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(status, 200);
    assert_eq!(me(rotated["access_token"].as_str().unwrap().to_owned()).await.0, 200);
    let (status, _) =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": second["refresh_token"]})).await;
    assert_eq!(status, 401);
    assert_eq!(me(rotated["access_token"].as_str().unwrap().to_owned()).await.0, 401);

    // An admin's password reset ends every session of the user.
    assert_eq!(me(bob.access_token.clone()).await.0, 200);
    let reset = json!({"new_password": "an entirely different secret"});
    let (status, body) = app.post_json(&format!("/api/v1/auth/users/{}/password", bob.user.id), &reset).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(bob.access_token.clone()).await.0, 401);
}

/// Item 16: registration is throttled per address, and a taken email is answered like a new
/// one, creating nothing.
async fn registration_is_throttled_and_reveals_no_emails(backend: Backend) {
    let app = TestApp::spawn(
        backend,
        Vec::new(),
        &[("auth.registration_enabled", json!(true)), ("auth.registration_max_per_address", json!(3))],
    )
    .await;
    let register = |email: &str, password: &str| {
        let body = json!({"email": email, "password": password});
        let app = &app;
        async move {
            let r = app.anonymous.post(app.url("/api/v1/auth/register")).json(&body).send().await.unwrap();
            let retry_after = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), r.json::<Value>().await.unwrap(), retry_after)
        }
    };
    let (status, new, _) = register("carol@example.com", "a first passphrase of hers").await;
    assert_eq!(status, 201, "{new}");
    let (status, again, _) = register("Carol@Example.com", "someone else's passphrase").await;
    assert_eq!(status, 201, "a taken email is answered like a new one: {again}");
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&new), keys(&again));
    assert_ne!(new["id"], again["id"]);
    let (_, users) = app.get_json("/api/v1/auth/users").await;
    let carols = users.as_array().unwrap().iter().filter(|u| u["email"] == "carol@example.com").count();
    assert_eq!(carols, 1, "nothing was created");
    let (status, _) =
        login(&app, json!({"email": "carol@example.com", "password": "someone else's passphrase"})).await;
    assert_eq!(status, 401, "the account kept its password");
    assert_eq!(register("dave@example.com", "his very own passphrase").await.0, 201);
    let (status, body, retry_after) = register("erin@example.com", "her very own passphrase").await;
    assert_eq!((status, retry_after), (429, true), "{body}");
}

storage_tests!(
    login_identifiers_are_checked_before_audit_and_throttled_floods_write_one_row,
    a_username_may_not_be_another_accounts_email,
    one_address_guessing_cannot_lock_the_owner_out,
    wrong_current_passwords_are_throttled,
    ended_sessions_end_their_access_tokens_at_once,
    registration_is_throttled_and_reveals_no_emails
);

/// POSTs `body` as `content_type` to the login route; answers the status and the JSON body.
async fn raw_login(app: &TestApp, content_type: &str, body: &'static str) -> (u16, Value) {
    let r = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// L7: a key given twice is refused, naming it (a proxy reading the first would see another
/// request than the one acted on).
#[tokio::test]
async fn a_json_or_form_key_given_twice_is_refused_naming_it() {
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[]).await;
    let json_body = r#"{"username":"nobody","username":"admin","password":"wrong-password"}"#;
    let (status, answer) = raw_login(&app, "application/json", json_body).await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["details"][0]["field"], "username", "{answer}");
    let form_body = "username=nobody&password=x&username=admin";
    let (status, answer) = raw_login(&app, "application/x-www-form-urlencoded", form_body).await;
    assert_eq!(status, 422);
    assert_eq!(answer["error"]["details"][0]["field"], "username", "{answer}");
}

/// L6: the database, its WAL and the secrets are readable by the owner only.
#[tokio::test]
async fn the_database_and_secrets_are_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[]).await;
    app.get_json("/health").await;
    let dir = app.db.dir.path();
    for name in ["sightline.db", "sightline.db-wal", "jwt-secret", "admin-password"] {
        let path = dir.join(name);
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        assert_eq!(
            meta.permissions().mode() & 0o077,
            0,
            "{name} is open to others: {:o}",
            meta.permissions().mode()
        );
    }
    let nested = dir.join("nested/deeper");
    let mut config = sightline_platform::config::Config::default();
    config.data_dir = nested.clone();
    sightline_platform::app::connect_and_migrate(&config, &[]).await.unwrap();
    let mode = std::fs::metadata(&nested).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "a created data directory is the owner's: {mode:o}");
}

/// I4: every parameter is declared where it is read (see `testing::check_openapi_parameters`).
#[tokio::test]
async fn every_openapi_parameter_is_declared_where_it_is_read() {
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[]).await;
    sightline_platform::testing::check_openapi_parameters(&app.get_json("/openapi.json").await.1);
}

/// I5: the answers hyper writes by itself for requests it cannot parse (a URI over 64 KiB, a
/// malformed request line, oversized headers) carry the JSON error body like every other.
#[tokio::test]
async fn unparsable_requests_are_answered_with_the_json_error_body() {
    let app = TestApp::spawn(Backend::Sqlite, Vec::new(), &[]).await;
    let long_uri = format!("GET /health?q={} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let huge_header = format!("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(500_000));
    let cases = [
        (long_uri.into_bytes(), "414", "uri_too_long"),
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), "400", "bad_request"),
        (huge_header.into_bytes(), "431", "headers_too_large"),
    ];
    for (request, status, code) in cases {
        let answer = raw_exchange(&app, &request).await;
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{code}: {head}");
        assert!(head.contains("content-type: application/json"), "{code}: {head}");
        let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{code}: {e}: {body:?}"));
        assert_eq!(body["error"]["code"], code);
    }
    // Well-formed requests on the same server are untouched.
    let answer = raw_exchange(&app, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Guesses sent all at once are counted as they start: no more of them reach the password
/// check than the limit allows.
#[tokio::test]
async fn guesses_sent_at_once_get_no_more_tries_than_the_limit() {
    let app = TestApp::spawn(
        Backend::Sqlite,
        Vec::new(),
        &[("auth.login_max_failures_per_account_address", json!(3))],
    )
    .await;
    let guesses =
        (0..20).map(|_| login(&app, json!({"username": "admin", "password": "a wrong guess, again"})));
    let statuses: Vec<u16> = futures::future::join_all(guesses).await.into_iter().map(|(s, _)| s).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (3, 17), "{statuses:?}");
}
