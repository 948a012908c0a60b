//! Receiving an upload: both files are streamed to the upload directory (never held in memory),
//! counted, checksummed and flushed to disk; then the job row and its queue job are committed
//! together, so a 202 means the import will run even if the process dies right after.

use std::path::{Path, PathBuf};

use axum::extract::multipart::{Field, Multipart, MultipartError};
use sha2::{Digest as _, Sha256};
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::db::{now_ms, Db};
use sightline_platform::error::{ApiError, FieldError};
use sightline_platform::queue::Queue;
use tokio::io::AsyncWriteExt as _;

use crate::format::LineCounter;
use crate::ingest::ImportFiles;
use crate::store::{self, FileKind, NewImport, StoredFile};

/// Takes uploads.
#[derive(Clone)]
pub struct Uploads {
    db: Db,
    queue: Queue,
    bus: EventBus,
    dir: PathBuf,
    max_file_bytes: u64,
}

impl Uploads {
    /// Uploads stored under `dir`, each file at most `max_file_bytes`.
    pub fn new(db: Db, queue: Queue, bus: EventBus, dir: PathBuf, max_file_bytes: u64) -> Self {
        Self { db, queue, bus, dir, max_file_bytes }
    }

    /// Largest accepted file.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Receives the `users` and `transactions` files and queues their import; returns the job id.
    pub async fn accept(&self, multipart: Multipart, actor: Option<String>) -> Result<String, ApiError> {
        let id = uuid::Uuid::new_v4().to_string();
        let dir = self.dir.join(&id);
        let accepted = async {
            let (users, transactions) = self.receive(multipart, &dir).await?;
            let dir = dir.to_string_lossy().into_owned();
            let job =
                NewImport { id: id.clone(), dir, users, transactions, created_by: actor, queue_job_id: 0 };
            self.enqueue(job).await
        }
        .await;
        if accepted.is_err() {
            // A refused upload leaves nothing behind.
            let _ = tokio::fs::remove_dir_all(&dir).await;
        }
        accepted.map(|()| id)
    }

    async fn receive(
        &self,
        mut multipart: Multipart,
        dir: &Path,
    ) -> Result<(StoredFile, StoredFile), ApiError> {
        tokio::fs::create_dir_all(dir).await.map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        let (mut users, mut transactions) = (None, None);
        while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
            let name = field.name().unwrap_or_default().to_owned();
            let kind = match name.as_str() {
                "users" => FileKind::Users,
                "transactions" => FileKind::Transactions,
                other => {
                    return Err(ApiError::validation(vec![FieldError::new(
                        other,
                        "unknown form field; send the files as `users` and `transactions`",
                    )]))
                }
            };
            let slot = if kind == FileKind::Users { &mut users } else { &mut transactions };
            if slot.is_some() {
                return Err(ApiError::validation(vec![FieldError::new(name, "sent twice")]));
            }
            *slot = Some(self.save(field, kind, dir).await?);
        }
        let missing: Vec<FieldError> = [("users", users.is_none()), ("transactions", transactions.is_none())]
            .into_iter()
            .filter(|(_, m)| *m)
            .map(|(f, _)| FieldError::new(f, "file is required"))
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::validation(missing));
        }
        // The directory entry of both files must survive a crash too.
        let d = std::fs::File::open(dir).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        d.sync_all().map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
        Ok((users.expect("checked"), transactions.expect("checked")))
    }

    /// Streams one file to `<dir>/<kind>.csv`.
    async fn save(&self, mut field: Field<'_>, kind: FileKind, dir: &Path) -> Result<StoredFile, ApiError> {
        let name = kind.as_str();
        let original_name = field.file_name().unwrap_or(name).chars().take(200).collect::<String>();
        let path = dir.join(format!("{name}.csv"));
        let io = |e: std::io::Error| ApiError::internal(anyhow::anyhow!(e));
        let mut file = tokio::fs::File::create(&path).await.map_err(io)?;
        let (mut hash, mut lines, mut bytes) = (Sha256::new(), LineCounter::default(), 0u64);
        while let Some(data) = field.chunk().await.map_err(bad_multipart)? {
            bytes += data.len() as u64;
            if bytes > self.max_file_bytes {
                return Err(ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!(
                        "{name}: file is larger than the limit of {} bytes (usage.max_file_bytes)",
                        self.max_file_bytes
                    ),
                )
                .with_details(serde_json::json!({"field": name, "limit_bytes": self.max_file_bytes})));
            }
            hash.update(&data);
            lines.feed(&data);
            file.write_all(&data).await.map_err(io)?;
        }
        file.sync_all().await.map_err(io)?;
        if bytes == 0 {
            return Err(ApiError::validation(vec![FieldError::new(name, "file is empty")]));
        }
        Ok(StoredFile { original_name, bytes, sha256: hex::encode(hash.finalize()), rows: lines.rows() })
    }

    /// Commits the job row, its audit entry and its queue job together.
    async fn enqueue(&self, mut job: NewImport) -> Result<(), ApiError> {
        let mut tx = self.db.begin().await?;
        job.queue_job_id = self
            .queue
            .push(&mut tx, &ImportFiles { job_id: job.id.clone() })
            .await?
            .ok_or_else(|| anyhow::anyhow!("an import of job {} is already queued", job.id))?;
        store::insert_job(&mut tx, &job, now_ms()).await?;
        let event = DomainEvent::new("usage.upload_accepted", "usage_job", &job.id).after(serde_json::json!({
            "users": {"name": job.users.original_name, "bytes": job.users.bytes, "sha256": job.users.sha256},
            "transactions": {"name": job.transactions.original_name, "bytes": job.transactions.bytes,
                "sha256": job.transactions.sha256, "rows": job.transactions.rows},
        }));
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        self.queue.wake();
        tracing::info!(
            job_id = %job.id,
            rows = job.transactions.rows,
            bytes = job.users.bytes + job.transactions.bytes,
            "usage.upload_accepted"
        );
        Ok(())
    }
}

fn bad_multipart(e: MultipartError) -> ApiError {
    let status = e.status();
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(status, "payload_too_large", "the upload is larger than the limit");
    }
    ApiError::new(
        axum::http::StatusCode::BAD_REQUEST,
        "bad_request",
        format!("malformed multipart body: {}", e.body_text()),
    )
}
