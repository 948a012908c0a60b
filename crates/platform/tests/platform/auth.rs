//! Identity, access control and audit, on SQLite and PostgreSQL: token attacks, refresh-token
//! rotation and reuse, instant revocation, login throttling, secrets kept out of answers,
//! registration, and the audit trail with its filters.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};
use sightline_platform::testing::{TestApp, TEST_PASSWORD};
use sightline_platform::{storage_tests, Backend};

async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, &[]).await
}

async fn spawn_with(backend: Backend, overrides: &[(&str, Value)]) -> TestApp {
    TestApp::spawn(backend, Vec::new(), overrides).await
}

fn secret(app: &TestApp) -> Vec<u8> {
    std::fs::read_to_string(app.db.dir.path().join("jwt-secret")).unwrap().trim().as_bytes().to_vec()
}

fn access_claims(sub: &str, aud: &str, exp_offset: i64, sid: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "iss": "sightline", "aud": aud, "exp": now + exp_offset, "iat": now,
           "jti": "t", "type": "access", "name": "x", "email": null, "role": "admin", "sid": sid})
}

/// The claims of a JWT, unchecked.
fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// Signs `header.payload` with HS256 over the server's own secret.
fn sign(app: &TestApp, header: &Value, payload: &Value) -> String {
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(payload.to_string());
    let message = format!("{head}.{body}");
    let key = jsonwebtoken::EncodingKey::from_secret(&secret(app));
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{message}.{signature}")
}

async fn me_with(app: &TestApp, token: &str) -> (u16, Value) {
    let r = app.client_with(token).get(app.url("/api/v1/auth/me")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn forged_expired_tampered_and_confused_tokens_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let user = app.user_with_roles(&["viewer"]).await;
    let id = user.user.id.as_str();
    let sid = payload_of(&user.access_token)["sid"].as_str().unwrap().to_owned();
    let claims = |sub: &str, aud: &str, exp_offset: i64| access_claims(sub, aud, exp_offset, &sid);
    let hs256 = json!({"alg": "HS256", "typ": "JWT"});
    // A correctly made token passes: the forgeries below differ in one thing each.
    assert_eq!(me_with(&app, &sign(&app, &hs256, &claims(id, "sightline-api", 60))).await.0, 200);
    let cases = [
        ("expired", sign(&app, &hs256, &claims(id, "sightline-api", -3600)), "token expired"),
        ("wrong audience", sign(&app, &hs256, &claims(id, "other-api", 60)), "token is for another audience"),
        (
            "alg none",
            {
                let head = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
                let body = URL_SAFE_NO_PAD.encode(claims(id, "sightline-api", 60).to_string());
                format!("{head}.{body}.")
            },
            "",
        ),
        (
            "RS256 header over an HMAC signature",
            sign(&app, &json!({"alg": "RS256", "typ": "JWT"}), &claims(id, "sightline-api", 60)),
            "",
        ),
        (
            "tampered payload",
            {
                let token = user.access_token.clone();
                let parts: Vec<&str> = token.split('.').collect();
                let mut payload: Value =
                    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
                payload["sub"] = json!("usr_someone_else");
                format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2])
            },
            "token signature is invalid",
        ),
        ("garbage", "not.a.jwt".to_owned(), ""),
        (
            "a token of an older version, with no session",
            {
                let mut old = claims(id, "sightline-api", 60);
                old.as_object_mut().unwrap().remove("sid");
                sign(&app, &hs256, &old)
            },
            "token has no session; sign in again",
        ),
        (
            "a session that never was",
            sign(&app, &hs256, &access_claims(id, "sightline-api", 60, "made-up")),
            "session ended; sign in again",
        ),
    ];
    for (what, token, reason) in cases {
        let (status, body) = me_with(&app, &token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{what}");
        if !reason.is_empty() {
            assert_eq!(body["error"]["message"], reason, "{what}");
        }
    }
}

async fn a_used_refresh_token_presented_again_revokes_its_whole_login(backend: Backend) {
    let app = spawn(backend).await;
    let first = app.user_with_roles(&["viewer"]).await;
    let refresh = |token: String| {
        let app = &app;
        async move { app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": token})).await }
    };
    let (status, second) = refresh(first.refresh_token.clone()).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first.refresh_token.as_str());
    assert_eq!(me_with(&app, second["access_token"].as_str().unwrap()).await.0, 200);
    // The thief (or the user) replays the spent token: the whole family dies.
    let (status, body) = refresh(first.refresh_token.clone()).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("already used"));
    let (status, _) = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(status, 401, "the rotated token was revoked with its family");
    let (_, audit) = app.get_json("/api/v1/audit?action=auth.refresh_reused").await;
    assert_eq!(audit["total"], 1);
    // Logout ends a login too.
    let other = app
        .auth
        .login(&sightline_platform::testing::test_context(), &first.user.username, TEST_PASSWORD, "test")
        .await
        .unwrap();
    let r = app
        .client_with(&other.access_token)
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({"refresh_token": other.refresh_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(refresh(other.refresh_token.clone()).await.0, 401);
}

async fn disabled_users_and_revoked_keys_are_refused_at_once(backend: Backend) {
    let app = spawn(backend).await;
    let user = app.user_with_roles(&["analyst"]).await;
    assert_eq!(me_with(&app, &user.access_token).await.0, 200);
    let (status, _) =
        app.post_json("/api/v1/auth/users/x/password", &json!({"new_password": "whatever is long"})).await;
    assert_eq!(status, 404);
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/auth/users/{}", user.user.id)))
        .json(&json!({"is_active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, body) = me_with(&app, &user.access_token).await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("user is disabled")));
    let (status, _) =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_json("/api/v1/auth/login", &json!({"username": user.user.username, "password": TEST_PASSWORD}))
        .await;
    assert_eq!(status, 401);

    let (status, created) =
        app.post_json("/api/v1/auth/api-keys", &json!({"name": "feed", "permissions": ["queue:read"]})).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let with_header = |k: &str| app.anonymous.get(app.url("/api/v1/queue")).header("x-api-key", k.to_owned());
    assert_eq!(with_header(&key).send().await.unwrap().status(), 200);
    assert_eq!(app.client_with(&key).get(app.url("/api/v1/queue")).send().await.unwrap().status(), 200);
    // The key lacks other permissions.
    assert_eq!(app.client_with(&key).get(app.url("/api/v1/audit")).send().await.unwrap().status(), 403);
    let id = created["id"].as_str().unwrap();
    let r = app.client.delete(app.url(&format!("/api/v1/auth/api-keys/{id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = with_header(&key).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["message"], "API key revoked");
    let (status, body) = app
        .post_json("/api/v1/auth/api-keys", &json!({"name": "bad", "permissions": ["everything:please"]}))
        .await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("permissions")));
}

async fn repeated_failed_logins_are_throttled_per_account_and_address(backend: Backend) {
    let app = spawn_with(backend, &[("auth.login_max_failures_per_account_address", json!(3))]).await;
    let user = app.user_with_roles(&["viewer"]).await;
    let name = user.user.username.as_str();
    for _ in 0..3 {
        let (status, body) = app
            .post_json("/api/v1/auth/login", &json!({"username": name, "password": "wrong guess 123"}))
            .await;
        assert_eq!((status, body["error"]["message"].as_str()), (401, Some("Invalid email or password")));
    }
    // Even the right password waits now.
    let (status, body) =
        app.post_json("/api/v1/auth/login", &json!({"username": name, "password": TEST_PASSWORD})).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["details"]["retry_after_secs"].as_u64().unwrap() > 0);
    // Other users are not affected.
    let other = app.user_with_roles(&["viewer"]).await;
    let (status, _) = app
        .post_json("/api/v1/auth/login", &json!({"username": other.user.username, "password": TEST_PASSWORD}))
        .await;
    assert_eq!(status, 200);
    let (_, audit) = app.get_json(&format!("/api/v1/audit?action=auth.login_failed&actor={name}")).await;
    assert_eq!(audit["total"], 3, "{audit}");
}

async fn login_takes_json_with_username_or_email_and_the_oauth2_form(backend: Backend) {
    let app = spawn(backend).await;
    let (status, created) = app
        .post_json(
            "/api/v1/auth/users",
            &json!({"username": "ann", "email": "Ann@Example.com", "password": TEST_PASSWORD, "roles": ["demand_planner"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, by_email) = app
        .post_json("/api/v1/auth/login", &json!({"email": "ann@example.com", "password": TEST_PASSWORD}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_email["token_type"], "bearer");
    assert_eq!(by_email["user"]["role"], "demand_planner");
    assert!(by_email["expires_in"].as_i64().unwrap() > 0);
    let form = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .form(&[("grant_type", "password"), ("username", "ann"), ("password", TEST_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let form: Value = form.json().await.unwrap();
    let (status, me) = me_with(&app, form["access_token"].as_str().unwrap()).await;
    assert_eq!((status, me["username"].as_str()), (200, Some("ann")));
    // Duplicate names and unknown roles are refused with the field named.
    let (status, _) =
        app.post_json("/api/v1/auth/users", &json!({"username": "ANN", "password": TEST_PASSWORD})).await;
    assert_eq!(status, 409);
    let (status, body) = app
        .post_json(
            "/api/v1/auth/users",
            &json!({"username": "bo", "password": TEST_PASSWORD, "roles": ["wizard"]}),
        )
        .await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("roles")));
    let (status, body) =
        app.post_json("/api/v1/auth/users", &json!({"username": "bo", "password": "short"})).await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("password")));
    // Registration is off by default.
    let (status, _) = app
        .post_json("/api/v1/auth/register", &json!({"email": "x@example.com", "password": TEST_PASSWORD}))
        .await;
    assert_eq!(status, 403);
}

async fn registration_when_enabled_creates_viewers(backend: Backend) {
    let app = spawn_with(backend, &[("auth.registration_enabled", json!(true))]).await;
    let r = app
        .anonymous
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": "new@example.com", "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["roles"], json!(["viewer"]));
}

async fn changing_a_password_ends_other_sessions(backend: Backend) {
    let app = spawn(backend).await;
    let user = app.user_with_roles(&["viewer"]).await;
    let (status, other) = app
        .post_json("/api/v1/auth/login", &json!({"username": user.user.username, "password": TEST_PASSWORD}))
        .await;
    assert_eq!(status, 200, "{other}");
    let client = app.client_with(&user.access_token);
    let change = |current: &str, new: &str| {
        client
            .post(app.url("/api/v1/auth/change-password"))
            .json(&json!({"current_password": current, "new_password": new}))
            .send()
    };
    assert_eq!(change("not my password", "a brand new secret").await.unwrap().status(), 422);
    assert_eq!(change(TEST_PASSWORD, "a brand new secret").await.unwrap().status(), 200);
    // The other session ends at once, its access token included; the caller's goes on.
    let (status, _) =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": other["refresh_token"]})).await;
    assert_eq!(status, 401);
    assert_eq!(me_with(&app, other["access_token"].as_str().unwrap()).await.0, 401);
    assert_eq!(me_with(&app, &user.access_token).await.0, 200);
    let (status, _) =
        app.post_json("/api/v1/auth/refresh", &json!({"refresh_token": user.refresh_token})).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"username": user.user.username, "password": "a brand new secret"}),
        )
        .await;
    assert_eq!(status, 200);
}

async fn secrets_never_appear_in_answers_or_the_spec(backend: Backend) {
    let app = spawn(backend).await;
    let (_, created) =
        app.post_json("/api/v1/auth/api-keys", &json!({"name": "calc", "permissions": ["queue:read"]})).await;
    let key = created["key"].as_str().unwrap().to_owned();
    let password = std::fs::read_to_string(app.db.dir.path().join("admin-password")).unwrap();
    let mut seen = String::new();
    for path in [
        "/api/v1/auth/users",
        "/api/v1/auth/api-keys",
        "/api/v1/audit?limit=200",
        "/api/v1/auth/me",
        "/openapi.json",
    ] {
        let (status, body) = app.get_json(path).await;
        assert_eq!(status, 200, "{path}");
        seen.push_str(&body.to_string());
    }
    for secret in [key.as_str(), password.trim(), "$argon2", "password_hash"] {
        assert!(!seen.contains(secret), "{secret} leaked");
    }
    let (_, keys) = app.get_json("/api/v1/auth/api-keys").await;
    assert_eq!(keys[0]["prefix"].as_str().unwrap(), &key[..12]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for file in ["admin-password", "jwt-secret"] {
            let mode = std::fs::metadata(app.db.dir.path().join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
}

async fn the_audit_trail_records_auth_events_and_filters_them(backend: Backend) {
    let app = spawn(backend).await;
    let user = app.user_with_roles(&["viewer"]).await;
    let r = app
        .client
        .patch(app.url(&format!("/api/v1/auth/users/{}", user.user.id)))
        .json(&json!({"roles": ["viewer", "analyst"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, page) = app.get_json(&format!("/api/v1/audit?entity_type=user&entity_id={}", user.user.id)).await;
    let actions: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["user.roles_changed", "auth.login", "user.created"], "{page}");
    let change = &page["items"][0];
    assert_eq!(change["actor"]["name"], "admin");
    assert_eq!(change["before"]["roles"], json!(["viewer"]));
    assert_eq!(change["after"]["roles"], json!(["viewer", "analyst"]));
    assert!(change["request_id"].as_str().unwrap().starts_with("req_"));
    // A state-changing request with no domain event of its own still gets one entry.
    let (status, _) = app.post_empty("/api/v1/queue/failed/retry?confirm=true").await;
    assert_eq!(status, 200);
    let (_, page) = app.get_json("/api/v1/audit?action=http.post&actor=admin").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["items"][0]["entity_id"], "/api/v1/queue/failed/retry");
    // Time range and paging.
    let (_, all) = app.get_json("/api/v1/audit?limit=2").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);
    let (_, none) = app.get_json("/api/v1/audit?until=2000-01-01T00:00:00Z").await;
    assert_eq!(none["total"], 0);
    let (status, body) = app.get_json("/api/v1/audit?since=yesterday").await;
    assert_eq!((status, body["error"]["details"][0]["field"].as_str()), (422, Some("since")));
    // A viewer can't read it.
    let r = app.client_with(&user.access_token).get(app.url("/api/v1/audit")).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

async fn the_spec_declares_security_and_public_routes_stay_open(backend: Backend) {
    let app = spawn(backend).await;
    let (_, spec) = app.get_json("/openapi.json").await;
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["oauth2"]["flows"]["password"]["tokenUrl"], "/api/v1/auth/login");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert!(spec["paths"]["/api/v1/queue"]["get"]["security"].is_array());
    assert!(spec["paths"]["/health"]["get"]["security"].is_null());
    for path in ["/health", "/health/ready", "/openapi.json", "/docs/"] {
        let r = app.anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    let r = app.anonymous.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let (status, _) = app.get_json("/metrics").await;
    assert_eq!(status, 200, "admin holds metrics:read");
    let (_, roles) = app.get_json("/api/v1/auth/roles").await;
    let admin = roles["roles"].as_array().unwrap().iter().find(|r| r["role"] == "admin").unwrap();
    assert!(admin["permissions"].as_array().unwrap().len() >= 6);
}

storage_tests!(
    forged_expired_tampered_and_confused_tokens_are_refused,
    a_used_refresh_token_presented_again_revokes_its_whole_login,
    disabled_users_and_revoked_keys_are_refused_at_once,
    repeated_failed_logins_are_throttled_per_account_and_address,
    login_takes_json_with_username_or_email_and_the_oauth2_form,
    registration_when_enabled_creates_viewers,
    changing_a_password_ends_other_sessions,
    secrets_never_appear_in_answers_or_the_spec,
    the_audit_trail_records_auth_events_and_filters_them,
    the_spec_declares_security_and_public_routes_stay_open,
);

#[tokio::test]
async fn a_route_needing_an_undeclared_permission_stops_the_start() {
    use sightline_platform::{Access, Module, ModuleParts, Platform, SecureRouter};
    use std::sync::Arc;

    #[utoipa::path(get, path = "/x", responses((status = 200)))]
    async fn x() {}

    struct Careless;
    #[async_trait::async_trait]
    impl Module for Careless {
        fn name(&self) -> &'static str {
            "careless"
        }
        async fn build(&self, _p: &Platform) -> anyhow::Result<ModuleParts> {
            let router = SecureRouter::new().route(Access::Permission("x:do"), utoipa_axum::routes!(x));
            Ok(ModuleParts::new(router))
        }
    }
    let db = sightline_platform::testing::test_database(Backend::Sqlite).await;
    let config = sightline_platform::testing::test_config(&db, &[]);
    let modules: Vec<Arc<dyn Module>> = vec![Arc::new(Careless)];
    let err = sightline_platform::Application::build(config, &modules).await.err().expect("refused");
    assert!(format!("{err:#}").contains("undeclared permission x:do"), "{err:#}");
}
