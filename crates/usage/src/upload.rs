//! Receiving an upload: each file is streamed to the upload's own directory (never held in
//! memory), counted, checksummed and flushed to disk as its chunks arrive ([`Upload::save`]); then
//! the job row, its queue job and its audit entry are committed together ([`Uploads::accept`]),
//! so a 202 means the import will run even if the process dies right after. A refused upload
//! leaves nothing behind, nor does one cut off (its request timed out, its client went away):
//! an [`Upload`] not accepted removes its files when dropped. [`Uploads::sweep`] removes what a
//! crash left, and the files of finished imports after their retention period.
//!
//! Whoever reads the request (the handler, from a multipart form) hands each file over with its
//! [`FileKind`], its original name and a stream of its bytes; nothing here knows of HTTP.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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
use crate::model::{FileKind, JobRecord, NewImport, StoredFile};
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

/// An upload being received: the files so far, in a directory of its own, removed when the
/// upload is dropped before it is accepted.
#[derive(Debug)]
pub struct Upload {
    id: String,
    dir: RemovedUnlessKept,
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
            dir: RemovedUnlessKept::new(self.dir.join(&id)),
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
        mut upload: Upload,
    ) -> Result<AcceptedUpload, UsageError> {
        let job = upload.complete(Some(context.actor.name.clone())).await?;
        // Kept from here on even if this future is dropped mid-commit (the commit may still
        // land); if it did not, the sweep finds a directory with no job.
        upload.dir.keep();
        if let Err(e) = self.enqueue(context, &job).await {
            remove_dir(upload.dir.path()).await;
            return Err(e);
        }
        Ok(AcceptedUpload { job_id: job.id, total_rows: job.transactions.rows })
    }

    /// Removes upload directories nobody needs: those with no job that are older than
    /// `in_flight` (an upload still being received is younger: requests end within their
    /// timeout), and those of imports that finished (succeeded or failed) more than `retention`
    /// ago and are not queued again. Answers how many were removed.
    pub async fn sweep(&self, in_flight: Duration, retention: Duration) -> anyhow::Result<usize> {
        let mut removed = 0;
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let now = SystemTime::now();
        while let Some(entry) = entries.next_entry().await? {
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else { continue };
            if uuid::Uuid::parse_str(&id).is_err() {
                continue; // not an upload of ours
            }
            let meta = match entry.metadata().await {
                Ok(meta) if meta.is_dir() => meta,
                Ok(_) => continue,
                // Removed meanwhile (its import finished): nothing to do.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            let age = now.duration_since(meta.modified()?).unwrap_or_default();
            let expired = match store::jobs::load_job(self.db.reader(), &id).await? {
                None => age > in_flight,
                Some(job) => {
                    let long_done =
                        job.processed_at.is_some_and(|at| now_ms() - at > retention.as_millis() as i64);
                    job.status.finished() && long_done && !self.queued_again(&job).await?
                }
            };
            if expired && remove_dir(&entry.path()).await {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, dir = %self.dir.display(), "usage.uploads_swept");
        }
        Ok(removed)
    }

    /// Whether a finished job's import is queued (or running) again: retried from the job
    /// dashboard, it has not reopened its usage job yet.
    async fn queued_again(&self, job: &JobRecord) -> anyhow::Result<bool> {
        let Some(queue_job_id) = job.metadata["queue_job_id"].as_i64() else { return Ok(false) };
        let state = self.queue.get(queue_job_id).await?.map(|j| j.state);
        Ok(state.is_some_and(|s| matches!(s.as_str(), "queued" | "running")))
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
        tokio::fs::create_dir_all(self.dir.path()).await?;
        let mut file = tokio::fs::File::create(self.dir.path().join(format!("{kind}.csv"))).await?;
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
        remove_dir(self.dir.path()).await;
    }

    fn slot(&mut self, kind: FileKind) -> &mut Option<StoredFile> {
        match kind {
            FileKind::Users => &mut self.users,
            FileKind::Transactions => &mut self.transactions,
        }
    }

    /// The new job, once both files came; their directory entries are flushed too.
    async fn complete(&mut self, actor: Option<String>) -> Result<NewImport, UsageError> {
        let (users, transactions) = match (self.users.clone(), self.transactions.clone()) {
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
        let dir = self.dir.path().to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir)?.sync_all())
            .await
            .map_err(std::io::Error::other)??;
        Ok(NewImport {
            id: self.id.clone(),
            dir: self.dir.path().to_string_lossy().into_owned(),
            users,
            transactions,
            created_by: actor,
        })
    }
}

/// An upload's directory, removed when dropped unless kept (the upload was accepted): a
/// request cut off by its timeout or its client drops the handler's future, and with it this.
#[derive(Debug)]
struct RemovedUnlessKept {
    path: PathBuf,
    kept: bool,
}

impl RemovedUnlessKept {
    fn new(path: PathBuf) -> Self {
        Self { path, kept: false }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for RemovedUnlessKept {
    fn drop(&mut self) {
        if self.kept || !self.path.exists() {
            return;
        }
        let path = std::mem::take(&mut self.path);
        // Off the async threads when there is a runtime: the files may be large.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { remove_dir(&path).await });
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
    }
}

/// Removes an upload's directory, if it was made; `false` when it could not be removed.
pub(crate) async fn remove_dir(dir: &std::path::Path) -> bool {
    match tokio::fs::remove_dir_all(dir).await {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "usage.upload_cleanup_failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    fn upload(dir: &std::path::Path, max_file_bytes: u64) -> Upload {
        Upload {
            id: "job".into(),
            dir: RemovedUnlessKept::new(dir.join("job")),
            max_file_bytes,
            users: None,
            transactions: None,
        }
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
        assert!(root.path().join("job").exists(), "the files so far are on disk");
        up.discard().await;
        assert!(!root.path().join("job").exists(), "a discarded upload leaves nothing");
        let mut dropped = upload(root.path(), 10);
        dropped.save(FileKind::Users, None, chunks(&[b"id\n"])).await.unwrap();
        drop(dropped);
        for _ in 0..100 {
            if !root.path().join("job").exists() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("an upload dropped before it was accepted leaves its files");
    }
}
