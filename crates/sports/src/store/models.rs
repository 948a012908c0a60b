//! Trained models: each training's model and metrics, kept or not.

use serde::Serialize;
use sightline_platform::db::{ms_to_rfc3339, now_ms};
use sqlx::{AnyConnection, Row as _};
use utoipa::ToSchema;

use crate::model::TrainedModel;

/// A stored model, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoredModel {
    /// Its id.
    pub id: String,
    /// Whether predictions use it (it beat both baselines).
    pub kept: bool,
    /// SHA-256 of its body.
    pub checksum: String,
    /// Trained (RFC 3339).
    pub created_at: String,
    /// The model: stat, dataset version, features, coefficients, metrics.
    pub model: TrainedModel,
}

/// Stores `model` (kept or not); answers its id.
pub async fn insert(
    conn: &mut AnyConnection,
    model: &TrainedModel,
    kept: bool,
) -> Result<String, sqlx::Error> {
    let id = format!("model_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(
        "INSERT INTO sports_models (id, stat, dataset_version, kind, body, checksum, kept, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&model.stat)
    .bind(&model.dataset_version)
    .bind(&model.kind)
    .bind(serde_json::to_string(model).expect("serialisable"))
    .bind(model.checksum())
    .bind(i64::from(kept))
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(id)
}

fn stored(r: &sqlx::any::AnyRow) -> Result<StoredModel, sqlx::Error> {
    let body: String = r.try_get("body")?;
    Ok(StoredModel {
        id: r.try_get("id")?,
        kept: r.try_get::<i64, _>("kept")? != 0,
        checksum: r.try_get("checksum")?,
        created_at: ms_to_rfc3339(r.try_get("created_at")?),
        model: serde_json::from_str(&body).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
    })
}

/// The newest kept model of `stat`, its body checked against its checksum.
pub async fn active(conn: &mut AnyConnection, stat: &str) -> Result<Option<StoredModel>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, kept, checksum, created_at, body FROM sports_models WHERE stat = $1 AND kept = 1 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(stat)
    .fetch_optional(conn)
    .await?;
    let Some(model) = row.as_ref().map(stored).transpose()? else { return Ok(None) };
    if model.model.checksum() != model.checksum {
        tracing::error!(model = %model.id, "sports.model_checksum_mismatch");
        return Ok(None);
    }
    Ok(Some(model))
}

/// Every stored model, newest first.
pub async fn list(conn: &mut AnyConnection) -> Result<Vec<StoredModel>, sqlx::Error> {
    sqlx::query("SELECT id, kept, checksum, created_at, body FROM sports_models ORDER BY created_at DESC, id DESC LIMIT 100")
        .fetch_all(conn)
        .await?
        .iter()
        .map(stored)
        .collect()
}
