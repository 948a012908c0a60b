//! The import job's work: users, then transactions, then the daily aggregates of every day
//! touched (`users.rs`, `transactions.rs`, `days.rs` here); this file holds the stage machine.
//!
//! Each chunk commits its rows, its rejects, the days it touched and the file checkpoint in one
//! transaction, so after a crash the job resumes at the last committed chunk and nothing is
//! applied twice. A file is parsed on a background thread one chunk ahead of the writer. On
//! PostgreSQL two chunks insert at once, on two connections, and commit in file order.

mod days;
mod transactions;
mod users;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use sightline_platform::background::spawn_background;
use sightline_platform::db::{now_ms, Db};
use sightline_platform::queue::{JobLease, PermanentFailure};
use tokio::sync::mpsc;

use crate::format::{Chunk, CsvChunks, Fields, FileError, ReadLimits, TRANSACTION_COLUMNS, USER_COLUMNS};
use crate::model::{Checkpoint, ImportStage, ImportStatus, JobRecord, Reject};
use crate::store;

pub(crate) use days::recompute_and_finish;

/// Runs imports.
#[derive(Clone)]
pub struct Importer {
    db: Db,
    limits: ReadLimits,
    keep_uploads: bool,
}

impl Importer {
    /// An importer writing `limits.chunk_rows` rows per transaction; it deletes an upload's
    /// files once imported unless `keep_uploads`.
    pub fn new(db: Db, limits: ReadLimits, keep_uploads: bool) -> Self {
        Self { db, limits: ReadLimits { chunk_rows: limits.chunk_rows.max(1), ..limits }, keep_uploads }
    }

    /// Runs (or resumes) job `id` to its end, one stage after the other from the one it is at.
    /// A job that fails for good on its files (not CSV, wrong header) has them removed: no
    /// retry could use them.
    pub async fn run(&self, id: &str, lease: &JobLease) -> anyhow::Result<()> {
        let outcome = self.run_stages(id, lease).await;
        if let Err(e) = &outcome {
            if let Some(PermanentFailure(why)) = e.downcast_ref::<PermanentFailure>() {
                if let Some(job) = store::jobs::load_job(self.db.reader(), id).await? {
                    tracing::info!(job_id = %id, reason = %why, "usage.upload_files_removed_after_failure");
                    crate::upload::remove_dir(Path::new(&job.file_location)).await;
                }
            }
        }
        outcome
    }

    async fn run_stages(&self, id: &str, lease: &JobLease) -> anyhow::Result<()> {
        let Some(mut job) = store::jobs::load_job(self.db.reader(), id).await? else {
            return Err(PermanentFailure(format!("usage job {id} does not exist")).into());
        };
        match job.status {
            ImportStatus::Succeeded => return Ok(()),
            // A failed import queued again from the job dashboard: resume from its checkpoint.
            ImportStatus::Failed => {
                let mut conn = self.db.writer().acquire().await?;
                store::jobs::reopen(&mut conn, &job.id, now_ms()).await?;
                job = store::jobs::load_job(&mut *conn, id).await?.context("the job disappeared")?;
            }
            ImportStatus::Queued | ImportStatus::Running => {}
        }
        let dir = PathBuf::from(&job.file_location);
        if job.stage != ImportStage::Done && !tokio::fs::try_exists(&dir).await? {
            return Err(PermanentFailure(
                "the upload's files are gone (removed after usage.upload_retention_secs, or after \
                 an earlier failure); upload them again"
                    .into(),
            )
            .into());
        }
        let (users_path, tx_path) = (dir.join("users.csv"), dir.join("transactions.csv"));
        // Kept from the transactions stage for the aggregates stage, when both run in this run.
        let mut tally = None;
        let mut aggregated = false;
        while job.stage != ImportStage::Done {
            let (stage, started) = (job.stage, Instant::now());
            match stage {
                // Both headers are checked before anything is written.
                ImportStage::Queued => check_headers(&users_path, &tx_path, self.limits).await?,
                ImportStage::Users => self.import_users(&job, &users_path, lease).await?,
                ImportStage::Transactions => {
                    tally = Some(self.import_transactions(&job, &tx_path, lease).await?);
                    let mut tx = self.db.begin().await?;
                    let days = store::days::pending_days(&mut tx, &job.id).await?;
                    store::jobs::set_days_total(&mut tx, &job.id, days.len() as i64).await?;
                    tx.commit().await?;
                }
                ImportStage::Aggregates => {
                    if let Some(tally) = &tally {
                        self.store_tallied_days(&job.id, tally).await?;
                    }
                    self.recompute_days(&job.id, lease).await?;
                    aggregated = true;
                }
                ImportStage::Done => unreachable!("the loop ends at done"),
            }
            // The check before the first stage is not timed.
            let timed = (stage != ImportStage::Queued).then_some((stage, started));
            job = self.next_stage(&job, stage.next(), timed).await?;
        }
        if aggregated {
            let t = &job.transactions;
            tracing::info!(
                job_id = %job.id,
                rows = t.read,
                inserted = t.inserted,
                updated = t.updated,
                unchanged = t.unchanged,
                rejected = t.rejected + job.users.rejected,
                "usage.import_finished"
            );
            if !self.keep_uploads {
                if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                    tracing::warn!(job_id = %job.id, error = %e, "usage.upload_cleanup_failed");
                }
            }
        }
        Ok(())
    }

    /// Moves the job on to `stage`, adding the finished stage's time to its metadata.
    async fn next_stage(
        &self,
        job: &JobRecord,
        stage: ImportStage,
        finished: Option<(ImportStage, Instant)>,
    ) -> anyhow::Result<JobRecord> {
        let mut metadata = job.metadata.clone();
        if let Some((done, started)) = finished {
            let ms = started.elapsed().as_millis() as u64;
            let slot = &mut metadata["stage_ms"][done.as_str()];
            *slot = json!(slot.as_u64().unwrap_or(0) + ms);
        }
        let status = if stage == ImportStage::Done { ImportStatus::Succeeded } else { ImportStatus::Running };
        let mut conn = self.db.writer().acquire().await?;
        store::jobs::set_stage(&mut conn, job, status, stage, &metadata, now_ms()).await?;
        store::jobs::load_job(&mut *conn, &job.id).await?.context("the job disappeared")
    }
}

/// Checks that both files are CSV with the expected header; a file that is not fails the job
/// for good.
async fn check_headers(users: &Path, transactions: &Path, limits: ReadLimits) -> anyhow::Result<()> {
    let (users, transactions) = (users.to_owned(), transactions.to_owned());
    tokio::task::spawn_blocking(move || -> Result<(), FileError> {
        CsvChunks::open(&users, "users", &USER_COLUMNS, Checkpoint::default(), limits)?;
        CsvChunks::open(&transactions, "transactions", &TRANSACTION_COLUMNS, Checkpoint::default(), limits)?;
        Ok(())
    })
    .await?
    .map_err(FileError::into_job_error)?;
    Ok(())
}

/// Parses `path` on a background thread (see [`spawn_background`]), one chunk ahead of the caller.
fn read_chunks<R: Send + 'static>(
    path: &Path,
    label: &'static str,
    columns: &'static [&'static str],
    from: Checkpoint,
    limits: ReadLimits,
    parse: fn(&Fields<'_>) -> Result<R, Reject>,
) -> std::io::Result<mpsc::Receiver<Result<Chunk<R>, FileError>>> {
    let (sender, receiver) = mpsc::channel(1);
    let path = path.to_owned();
    // The thread reports through the channel; the future of its end is not needed.
    let _ended = spawn_background("usage-parse", move || {
        let mut chunks = match CsvChunks::open(&path, label, columns, from, limits) {
            Ok(c) => c,
            Err(e) => {
                let _ = sender.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let next = chunks.next_chunk(parse).transpose();
            let Some(next) = next else { return };
            let failed = next.is_err();
            // The receiver is gone when the job stopped: stop reading.
            if sender.blocking_send(next).is_err() || failed {
                return;
            }
        }
    })?;
    Ok(receiver)
}
