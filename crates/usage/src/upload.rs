//! Receiving an upload: each file is streamed to the upload's own directory (never held in
//! memory), counted, checksummed and flushed to disk as its chunks arrive ([`Upload::save`]); then
//! the job row, its queue job and its audit entry are committed together ([`Uploads::accept`]),
//! so a 202 means the import will run even if the process dies right after. A refused upload
//! leaves nothing behind.
//!
//! Whoever reads the request (the handler, from a multipart form) hands each file over with its
//! [`FileKind`], its original name and a stream of its bytes; nothing here knows of HTTP.

use std::path::PathBuf;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use sha2::{Digest as _, Sha256};
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::db::{now_ms, Db};
use sightline_platform::queue::Queue;
use sightline_platform::RequestContext;
use tokio::io::AsyncWriteExt as _;

use crate::error::UsageError;
use crate::format::LineCounter;
use crate::jobs::ImportFiles;
use crate::model::{FileKind, NewImport, StoredFile};
use crate::store;

/// Longest original file name kept, in characters.
const MAX_NAME_CHARS: usize = 200;

/// Takes uploads.
#[derive(Clone)]
pub struct Uploads {
    db: Db,
    queue: Queue,
    bus: EventBus,
    dir: PathBuf,
    max_file_bytes: u64,
}

/// An upload being received: the files so far, in a directory of its own.
#[derive(Debug)]
pub struct Upload {
    id: String,
    dir: PathBuf,
    max_file_bytes: u64,
    users: Option<StoredFile>,
    transactions: Option<StoredFile>,
}

/// A queued upload: what its answer tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedUpload {
    /// The import job.
    pub job_id: String,
    /// Data rows of the transactions file.
    pub total_rows: u64,
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

    /// Starts receiving an upload under a new job id.
    pub fn start(&self) -> Upload {
        let id = uuid::Uuid::new_v4().to_string();
        Upload {
            dir: self.dir.join(&id),
            id,
            max_file_bytes: self.max_file_bytes,
            users: None,
            transactions: None,
        }
    }

    /// Queues the import of a received upload once both files are there and durable. Refused or
    /// failed, it leaves nothing behind.
    pub async fn accept(
        &self,
        context: &RequestContext,
        upload: Upload,
    ) -> Result<AcceptedUpload, UsageError> {
        let dir = upload.dir.clone();
        let accepted = async {
            let job = upload.complete(Some(context.actor.name.clone())).await?;
            self.enqueue(context, &job).await?;
            Ok(AcceptedUpload { job_id: job.id, total_rows: job.transactions.rows })
        }
        .await;
        if accepted.is_err() {
            remove_dir(&dir).await;
        }
        accepted
    }

    /// Commits the job row, its audit entry and its queue job together.
    async fn enqueue(&self, context: &RequestContext, job: &NewImport) -> Result<(), UsageError> {
        let mut tx = self.db.begin().await?;
        let queue_job_id = self
            .queue
            .push(&mut tx, &ImportFiles { job_id: job.id.clone() })
            .await
            .map_err(|e| UsageError::Enqueue(e.into()))?
            .ok_or_else(|| {
                UsageError::Enqueue(format!("an import of job {} is already queued", job.id).into())
            })?;
        store::jobs::insert_job(&mut tx, job, queue_job_id, now_ms()).await?;
        let event = DomainEvent::new("usage.upload_accepted", "usage_job", &job.id).after(serde_json::json!({
            "users": {"name": job.users.original_name, "bytes": job.users.bytes, "sha256": job.users.sha256},
            "transactions": {"name": job.transactions.original_name, "bytes": job.transactions.bytes,
                "sha256": job.transactions.sha256, "rows": job.transactions.rows},
        }))
        .within(context);
        self.bus.publish(&mut tx, vec![event]).await.map_err(|e| UsageError::Enqueue(e.into()))?;
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

impl Upload {
    /// Streams file `kind` to `<dir>/<kind>.csv` as its `chunks` arrive, with its SHA-256 and row
    /// count; `name` is the name the client gave it. A chunk that fails ends the file with its
    /// error.
    pub async fn save(
        &mut self,
        kind: FileKind,
        name: Option<&str>,
        chunks: impl Stream<Item = Result<Bytes, UsageError>>,
    ) -> Result<(), UsageError> {
        if self.slot(kind).is_some() {
            return Err(UsageError::RepeatedField(kind));
        }
        let original_name = name.unwrap_or(kind.as_str()).chars().take(MAX_NAME_CHARS).collect::<String>();
        tokio::fs::create_dir_all(&self.dir).await?;
        let mut file = tokio::fs::File::create(self.dir.join(format!("{kind}.csv"))).await?;
        let (mut hash, mut lines, mut bytes) = (Sha256::new(), LineCounter::default(), 0u64);
        let mut chunks = std::pin::pin!(chunks);
        while let Some(data) = chunks.next().await.transpose()? {
            bytes += data.len() as u64;
            if bytes > self.max_file_bytes {
                return Err(UsageError::FileTooLarge { file: kind, limit: self.max_file_bytes });
            }
            hash.update(&data);
            lines.feed(&data);
            file.write_all(&data).await?;
        }
        file.sync_all().await?;
        if bytes == 0 {
            return Err(UsageError::EmptyFile(kind));
        }
        *self.slot(kind) = Some(StoredFile {
            original_name,
            bytes,
            sha256: hex::encode(hash.finalize()),
            rows: lines.rows(),
        });
        Ok(())
    }

    /// Removes what was received.
    pub async fn discard(self) {
        remove_dir(&self.dir).await;
    }

    fn slot(&mut self, kind: FileKind) -> &mut Option<StoredFile> {
        match kind {
            FileKind::Users => &mut self.users,
            FileKind::Transactions => &mut self.transactions,
        }
    }

    /// The new job, once both files came; their directory entries are flushed too.
    async fn complete(self, actor: Option<String>) -> Result<NewImport, UsageError> {
        let (users, transactions) = match (self.users, self.transactions) {
            (Some(users), Some(transactions)) => (users, transactions),
            (users, transactions) => {
                let missing =
                    [(FileKind::Users, users.is_none()), (FileKind::Transactions, transactions.is_none())];
                return Err(UsageError::MissingFiles(
                    missing.into_iter().filter(|(_, m)| *m).map(|(kind, _)| kind).collect(),
                ));
            }
        };
        // The directory entry of both files must survive a crash too.
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)??;
        Ok(NewImport {
            id: self.id,
            dir: self.dir.to_string_lossy().into_owned(),
            users,
            transactions,
            created_by: actor,
        })
    }
}

/// Removes an upload's directory, if it was made.
async fn remove_dir(dir: &std::path::Path) {
    if let Err(e) = tokio::fs::remove_dir_all(dir).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "usage.upload_cleanup_failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    fn upload(dir: &std::path::Path, max_file_bytes: u64) -> Upload {
        Upload { id: "job".into(), dir: dir.join("job"), max_file_bytes, users: None, transactions: None }
    }

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, UsageError>> {
        stream::iter(parts.iter().map(|p| Ok(Bytes::from_static(p))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn each_file_is_kept_or_refused_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let mut up = upload(root.path(), 20);
        up.save(FileKind::Users, Some("people.csv"), chunks(&[b"id,name\n", b"u1,ann\n"])).await.unwrap();
        let users = up.users.clone().unwrap();
        assert_eq!((users.original_name.as_str(), users.bytes, users.rows), ("people.csv", 15, 1));
        assert_eq!(users.sha256.len(), 64);
        let refused = [
            (FileKind::Users, chunks(&[b"x\n"]).boxed(), "users: sent twice"),
            (
                FileKind::Transactions,
                chunks(&[b"0123456789", b"0123456789", b"a"]).boxed(),
                "transactions: file is larger than the limit of 20 bytes (usage.max_file_bytes)",
            ),
            (FileKind::Transactions, chunks(&[]).boxed(), "transactions: file is empty"),
            (
                FileKind::Transactions,
                stream::iter([Ok(Bytes::from_static(b"a")), Err(UsageError::UploadTooLarge)]).boxed(),
                "the upload is larger than the limit",
            ),
        ];
        for (kind, bytes, why) in refused {
            assert_eq!(up.save(kind, None, bytes).await.unwrap_err().to_string(), why);
        }
        let missing = up.complete(None).await.unwrap_err();
        assert!(matches!(&missing, UsageError::MissingFiles(files) if files == &[FileKind::Transactions]));
        let up = upload(root.path(), 10);
        assert!(root.path().join("job").exists(), "the files so far are on disk");
        up.discard().await;
        assert!(!root.path().join("job").exists(), "a discarded upload leaves nothing");
    }
}
