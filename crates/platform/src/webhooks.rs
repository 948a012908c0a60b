//! Outgoing webhooks any module can send: the body is stored with a delivery row in the
//! transaction of the change that causes it, and a durable job of the module posts it (retried
//! with the queue's backoff, not lost by a restart). Each delivery is signed three ways:
//!
//! - an optional shared secret in a header of the module's naming (`X-Ingest-Secret`);
//! - an optional `sha256=<hex HMAC-SHA256 of the exact body>` header (`X-Ingest-Signature`);
//! - [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id` (the delivery's id, the
//!   same on every attempt), `webhook-timestamp` (Unix seconds of the attempt) and
//!   `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, so a receiver can
//!   check the sender and refuse replays.
//!
//! Every attempt is logged (`webhook_attempts`: status or error, time taken) and the delivery's
//! state kept (`pending`, `delivered`, `failed`). Secrets come from configuration, never from the
//! stored rows, and are never logged.

use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use sqlx::{AnyConnection, Row as _};

use crate::config::Secret;
use crate::db::now_ms;
use crate::migrate::Migration;
use crate::outbound::{OutboundClient, OutboundError};

/// The tables of deliveries and their attempts.
pub const MIGRATION: Migration = Migration::portable(
    5,
    "outgoing webhook deliveries and attempts",
    "CREATE TABLE webhook_deliveries (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        event TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        last_status BIGINT,
        last_error TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX webhook_deliveries_owner ON webhook_deliveries (owner, created_at);
    CREATE TABLE webhook_attempts (
        delivery_id TEXT NOT NULL,
        attempt BIGINT NOT NULL,
        at BIGINT NOT NULL,
        status BIGINT,
        error TEXT,
        duration_ms BIGINT NOT NULL,
        PRIMARY KEY (delivery_id, attempt)
    );",
);

/// Where and how one kind of webhook is sent.
#[derive(Debug, Clone, Default)]
pub struct WebhookEndpoint {
    /// The receiver.
    pub url: String,
    /// A header carrying a shared secret as is (`X-Ingest-Secret`), when configured.
    pub secret_header: Option<(String, Secret)>,
    /// A header carrying `sha256=<hex HMAC of the body>` (`X-Ingest-Signature`), and its key.
    pub hmac_header: Option<(String, Secret)>,
    /// The Standard Webhooks signing secret (`whsec_<base64>`, or any text used as is); without
    /// one, `webhook-id` and `webhook-timestamp` are sent but no `webhook-signature`.
    pub signing_secret: Option<Secret>,
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The key of a Standard Webhooks secret: `whsec_` and base64, decoded; other text as its bytes.
pub fn signing_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
pub fn standard_signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Checks a `webhook-signature` header (it may list several signatures) in constant time, and
/// that the timestamp is within `tolerance` of now: what a receiver does.
pub fn verify_standard(
    key: &[u8],
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &str,
    tolerance: Duration,
) -> bool {
    let now = chrono::Utc::now().timestamp();
    if (now - timestamp).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|b64| {
        let Ok(given) = base64::engine::general_purpose::STANDARD.decode(b64) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac.verify_slice(&given).is_ok()
    })
}

/// Checks a `sha256=<hex>` header in constant time.
pub fn verify_hmac_hex(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(given) = header.strip_prefix("sha256=").and_then(|h| hex::decode(h).ok()) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// A delivery, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Its id (`webhook-id`).
    pub id: String,
    /// What sent it (`sports.ingest_alert`).
    pub event: String,
    /// The receiver.
    pub url: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// The last answer's status.
    pub last_status: Option<i64>,
    /// The last failure.
    pub last_error: Option<String>,
    /// The body sent.
    pub body: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Each attempt.
    pub attempt_log: Vec<Attempt>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1, 2, …
    pub attempt: i64,
    /// When (RFC 3339).
    pub at: String,
    /// The receiver's status, when it answered.
    pub status: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Time taken.
    pub duration_ms: i64,
}

/// Stores a delivery of `body` (compact JSON, sent byte for byte) to `url` in the caller's
/// transaction; the caller enqueues its job with the returned id in the same transaction.
pub async fn create_in(
    conn: &mut AnyConnection,
    owner: &str,
    event: &str,
    url: &str,
    body: &serde_json::Value,
) -> Result<String, sqlx::Error> {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let now = now_ms();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, owner, event, url, body, state, attempts, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6)",
    )
    .bind(&id)
    .bind(owner)
    .bind(event)
    .bind(url)
    .bind(body.to_string())
    .bind(now)
    .execute(conn)
    .await?;
    Ok(id)
}

/// The outcome of one attempt.
#[derive(Debug)]
pub enum AttemptOutcome {
    /// The receiver took it (2xx).
    Delivered,
    /// It failed; worth another attempt (timeout, connection, 429, 5xx).
    Retry(String),
    /// It failed for good (another 4xx, or the delivery is gone).
    GiveUp(String),
}

/// Makes one attempt of delivery `id` through `client` to `endpoint`, and logs it.
pub async fn attempt(
    db: &crate::Db,
    client: &OutboundClient,
    endpoint: &WebhookEndpoint,
    id: &str,
) -> Result<AttemptOutcome, sqlx::Error> {
    let Some(row) = sqlx::query("SELECT url, body, state, attempts FROM webhook_deliveries WHERE id = $1")
        .bind(id)
        .fetch_optional(db.reader())
        .await?
    else {
        return Ok(AttemptOutcome::GiveUp(format!("no delivery {id}")));
    };
    let (url, body, state, attempts): (String, String, String, i64) =
        (row.try_get("url")?, row.try_get("body")?, row.try_get("state")?, row.try_get("attempts")?);
    if state == "delivered" {
        return Ok(AttemptOutcome::Delivered);
    }
    let timestamp = chrono::Utc::now().timestamp();
    let mut request = client
        .post(&url)
        .body(body.clone().into_bytes(), "application/json")
        .header(header("webhook-id"), value(id))
        .header(header("webhook-timestamp"), value(&timestamp.to_string()));
    if let Some(secret) = &endpoint.signing_secret {
        let signature = standard_signature(&signing_key(secret.expose()), id, timestamp, body.as_bytes());
        request = request.header(header("webhook-signature"), value(&signature));
    }
    if let Some((name, secret)) = &endpoint.secret_header {
        let mut v = value(secret.expose());
        v.set_sensitive(true);
        request = request.header(header(name), v);
    }
    if let Some((name, secret)) = &endpoint.hmac_header {
        request = request
            .header(header(name), value(&hmac_sha256_hex(secret.expose().as_bytes(), body.as_bytes())));
    }
    // The receiver sees one id per delivery whatever is repeated: retrying is safe.
    let started = Instant::now();
    let result = request.retry_non_idempotent().send().await;
    let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let (status, error, outcome) = match result {
        Ok(answer) => (Some(i64::from(answer.status.as_u16())), None, AttemptOutcome::Delivered),
        Err(e) => {
            let status = match &e {
                OutboundError::Status { status, .. } => Some(i64::from(*status)),
                OutboundError::RateLimited { .. } => Some(429),
                _ => None,
            };
            let text = e.to_string();
            let retry = !matches!(&e, OutboundError::Status { status, .. } if *status < 500 && *status != 429)
                && !matches!(&e, OutboundError::Config { .. });
            let outcome = if retry {
                AttemptOutcome::Retry(text.clone())
            } else {
                AttemptOutcome::GiveUp(text.clone())
            };
            (status, Some(text), outcome)
        }
    };
    let now = now_ms();
    let attempt = attempts + 1;
    let state = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::GiveUp(_) => "failed",
        AttemptOutcome::Retry(_) => "pending",
    };
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, at, status, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(attempt)
    .bind(now)
    .bind(status)
    .bind(error.as_deref())
    .bind(duration_ms)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET state = $1, attempts = $2, last_status = $3, last_error = $4, updated_at = $5 \
         WHERE id = $6",
    )
    .bind(state)
    .bind(attempt)
    .bind(status)
    .bind(error.as_deref())
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(delivery = id, attempt, state, status, "webhook.attempt");
    Ok(outcome)
}

/// Marks delivery `id` failed for good (its job ran out of attempts).
pub async fn mark_failed(conn: &mut AnyConnection, id: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'failed', last_error = $1, updated_at = $2 WHERE id = $3",
    )
    .bind(crate::validate::loggable(error))
    .bind(now_ms())
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The latest `limit` deliveries of `owner`, newest first, with their attempts.
pub async fn list(db: &crate::Db, owner: &str, limit: i64) -> Result<Vec<Delivery>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, event, url, state, attempts, last_status, last_error, body, created_at FROM webhook_deliveries \
         WHERE owner = $1 ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(owner)
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id")?;
        let attempts = sqlx::query(
            "SELECT attempt, at, status, error, duration_ms FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(&id)
        .fetch_all(db.reader())
        .await?
        .iter()
        .map(|a| {
            Ok(Attempt {
                attempt: a.try_get("attempt")?,
                at: crate::db::ms_to_rfc3339(a.try_get("at")?),
                status: a.try_get("status")?,
                error: a.try_get("error")?,
                duration_ms: a.try_get("duration_ms")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        out.push(Delivery {
            id,
            event: r.try_get("event")?,
            url: r.try_get("url")?,
            state: r.try_get("state")?,
            attempts: r.try_get("attempts")?,
            last_status: r.try_get("last_status")?,
            last_error: r.try_get("last_error")?,
            body: r.try_get("body")?,
            created_at: crate::db::ms_to_rfc3339(r.try_get("created_at")?),
            attempt_log: attempts,
        });
    }
    Ok(out)
}

fn header(name: &str) -> reqwest::header::HeaderName {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name")
}

fn value(text: &str) -> reqwest::header::HeaderValue {
    reqwest::header::HeaderValue::from_str(text)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_two_schemes_and_verify_in_constant_time() {
        // The Standard Webhooks specification's example.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        let signature = standard_signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let now = chrono::Utc::now().timestamp();
        let fresh = standard_signature(&key, "msg_1", now, body);
        assert!(verify_standard(
            &key,
            "msg_1",
            now,
            body,
            &format!("v1,bogus {fresh}"),
            Duration::from_secs(300)
        ));
        assert!(!verify_standard(&key, "msg_2", now, body, &fresh, Duration::from_secs(300)), "another id");
        let old = standard_signature(&key, "msg_1", now - 3600, body);
        assert!(
            !verify_standard(&key, "msg_1", now - 3600, body, &old, Duration::from_secs(300)),
            "a replay"
        );
        let hex = hmac_sha256_hex(b"secret", b"{}");
        assert!(verify_hmac_hex(b"secret", b"{}", &hex));
        assert!(!verify_hmac_hex(b"secret", b"{ }", &hex));
        assert!(!verify_hmac_hex(b"other", b"{}", &hex));
    }
}
