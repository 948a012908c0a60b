//! The import job: users, then transactions, then the daily aggregates of every day touched.
//!
//! Each chunk commits its rows, its rejects, the days it touched and the file checkpoint in one
//! transaction, so after a crash the job resumes at the last committed chunk and nothing is
//! applied twice. A file is parsed on a background thread one chunk ahead of the writer. On
//! PostgreSQL two chunks insert at once, on two connections, and commit in file order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use sightline_platform::background::spawn_background;
use sightline_platform::db::{now_ms, Backend, Db};
use sightline_platform::queue::{Interrupted, Job, JobContext, JobLease, PermanentFailure, RunStandalone};
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::mpsc;

use crate::aggregate::{self, DAYS_PER_RECOMPUTE};
use crate::format::{
    parse_transaction, parse_user, Checkpoint, Chunk, CsvChunks, Fields, FileError, Reject, TransactionRow,
    UserRow, TRANSACTION_COLUMNS, USER_COLUMNS,
};
use crate::store::{
    self, ChunkCounts, ExistingTransaction, FileKind, JobRecord, StoredTransaction, UserFacts,
};
use crate::tally::{Tally, TallyRow};

/// Most memory the tally of one import keeps (see [`crate::tally`]).
const TALLY_BUDGET_BYTES: usize = 64 << 20;
/// Tallied days stored per transaction.
const TALLIED_DAYS_PER_TRANSACTION: usize = 62;

/// The queue job type of an import.
pub const JOB_TYPE: &str = "usage.import";

/// Runs imports.
#[derive(Clone)]
pub struct Importer {
    db: Db,
    chunk_rows: usize,
    keep_uploads: bool,
}

impl Importer {
    /// An importer writing `chunk_rows` rows per transaction; it deletes an upload's files once
    /// imported unless `keep_uploads`.
    pub fn new(db: Db, chunk_rows: usize, keep_uploads: bool) -> Self {
        Self { db, chunk_rows: chunk_rows.max(1), keep_uploads }
    }

    /// Runs (or resumes) job `id` to its end.
    pub async fn run(&self, id: &str, lease: &JobLease) -> anyhow::Result<()> {
        let Some(mut job) = store::load_job(self.db.reader(), id).await? else {
            return Err(PermanentFailure(format!("usage job {id} does not exist")).into());
        };
        match job.status.as_str() {
            "succeeded" => return Ok(()),
            // A failed import queued again from the job dashboard: resume from its checkpoint.
            "failed" => {
                let mut conn = self.db.writer().acquire().await?;
                store::reopen(&mut conn, &job.id, now_ms()).await?;
                job = store::load_job(&mut *conn, id).await?.context("the job disappeared")?;
            }
            _ => {}
        }
        let dir = PathBuf::from(&job.file_location);
        let (users_path, tx_path) = (dir.join("users.csv"), dir.join("transactions.csv"));
        // Both headers are checked before anything is written.
        if job.stage == "queued" {
            let (u, t) = (users_path.clone(), tx_path.clone());
            tokio::task::spawn_blocking(move || -> Result<(), FileError> {
                CsvChunks::open(&u, "users", &USER_COLUMNS, Checkpoint::default(), 1)?;
                CsvChunks::open(&t, "transactions", &TRANSACTION_COLUMNS, Checkpoint::default(), 1)?;
                Ok(())
            })
            .await?
            .map_err(|e| PermanentFailure(e.0))?;
            job = self.next_stage(&job, "users", None).await?;
        }
        if job.stage == "users" {
            let started = Instant::now();
            self.import_users(&job, &users_path, lease).await?;
            job = self.next_stage(&job, "transactions", Some(("users", started))).await?;
        }
        let mut tally = None;
        if job.stage == "transactions" {
            let started = Instant::now();
            tally = Some(self.import_transactions(&job, &tx_path, lease).await?);
            let mut tx = self.db.begin().await?;
            let days = store::pending_days(&mut tx, &job.id).await?;
            store::set_days_total(&mut tx, &job.id, days.len() as i64).await?;
            tx.commit().await?;
            job = self.next_stage(&job, "aggregates", Some(("transactions", started))).await?;
        }
        if job.stage == "aggregates" {
            let started = Instant::now();
            if let Some(tally) = &tally {
                self.store_tallied_days(&job.id, tally).await?;
            }
            self.recompute_days(&job.id, lease).await?;
            job = self.next_stage(&job, "done", Some(("aggregates", started))).await?;
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

    /// Moves the job on, adding the finished stage's time to its metadata.
    async fn next_stage(
        &self,
        job: &JobRecord,
        stage: &str,
        finished: Option<(&str, Instant)>,
    ) -> anyhow::Result<JobRecord> {
        let mut metadata = job.metadata.clone();
        if let Some((name, started)) = finished {
            let ms = started.elapsed().as_millis() as u64;
            let slot = &mut metadata["stage_ms"][name];
            *slot = json!(slot.as_u64().unwrap_or(0) + ms);
        }
        let status = if stage == "done" { "succeeded" } else { "running" };
        let mut conn = self.db.writer().acquire().await?;
        store::set_stage(&mut conn, job, status, stage, &metadata, now_ms()).await?;
        store::load_job(&mut *conn, &job.id).await?.context("the job disappeared")
    }

    async fn import_users(&self, job: &JobRecord, path: &Path, lease: &JobLease) -> anyhow::Result<()> {
        let mut chunks =
            read_chunks(path, "users", &USER_COLUMNS, job.users.checkpoint, self.chunk_rows, parse_user)?;
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.map_err(|e| PermanentFailure(e.0))?;
            if lease.should_stop() {
                return Err(Interrupted.into());
            }
            let mut tx = self.db.begin().await?;
            write_users(&mut tx, &job.id, chunk).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// Imports the transactions file from its checkpoint, tallying the rows it inserts on a
    /// thread of its own (see [`crate::tally`]); returns the tally.
    async fn import_transactions(
        &self,
        job: &JobRecord,
        path: &Path,
        lease: &JobLease,
    ) -> anyhow::Result<Tally> {
        let mut chunks = read_chunks(
            path,
            "transactions",
            &TRANSACTION_COLUMNS,
            job.transactions.checkpoint,
            self.chunk_rows,
            parse_transaction,
        )?;
        let (to_tally, mut tally_inbox) = mpsc::channel::<Tallied>(1);
        let tallying = spawn_background("usage-tally", move || {
            let mut tally = Tally::new(TALLY_BUDGET_BYTES);
            while let Some(tallied) = tally_inbox.blocking_recv() {
                tallied.add_to(&mut tally);
            }
            tally
        })?;
        let window = chunks_in_flight(self.db.backend());
        let mut users = HashMap::new();
        let mut in_flight: VecDeque<StartedChunk> = VecDeque::with_capacity(window);
        let mut expect_new = true;
        while let Some(chunk) = chunks.recv().await {
            let chunk = Arc::new(chunk.map_err(|e| PermanentFailure(e.0))?);
            if lease.should_stop() {
                return Err(Interrupted.into());
            }
            in_flight.push_back(self.start_chunk(chunk, &mut users, &in_flight, expect_new).await?);
            if in_flight.len() == window {
                let oldest = in_flight.pop_front().expect("a chunk in flight");
                expect_new &= finish_chunk(oldest, &job.id, &to_tally).await?;
            }
        }
        while let Some(oldest) = in_flight.pop_front() {
            finish_chunk(oldest, &job.id, &to_tally).await?;
        }
        drop(to_tally);
        // Every row is committed by now: should the tally have failed, SQL recomputes every day.
        Ok(tallying.await.unwrap_or_else(|e| {
            tracing::warn!(job_id = %job.id, error = %e, "usage.tally_failed");
            Tally::new(0)
        }))
    }

    /// Opens the transaction of `chunk`, looks up its users and starts inserting its new rows on
    /// a task of its own, leaving out keys that a chunk still in flight may insert (they wait
    /// for [`finish_chunk`], after that chunk commits). `expect_new`: no chunk of this file so
    /// far found a key taken, so the inserts assume none is.
    async fn start_chunk(
        &self,
        chunk: Arc<Chunk<TransactionRow>>,
        users: &mut HashMap<String, Arc<UserFacts>>,
        in_flight: &VecDeque<StartedChunk>,
        expect_new: bool,
    ) -> anyhow::Result<StartedChunk> {
        let mut tx = self.db.begin().await?;
        if chunks_in_flight(self.db.backend()) > 1 {
            // A later chunk waits for this one to commit, a wait the server cannot see. It never
            // holds a key this one inserts first (they are left out), but should some other
            // lock ever close such a cycle (a key probed past a clash, two imports of
            // overlapping files), the import fails and is retried instead of hanging.
            sqlx::query("SET LOCAL lock_timeout = '60s'").execute(&mut *tx).await?;
        }
        let user_ids: Vec<&str> = chunk.rows.iter().map(|(_, r)| r.user_id.as_str()).collect();
        store::load_users(&mut tx, &user_ids, users).await?;
        let facts: Arc<Vec<Option<Arc<UserFacts>>>> =
            Arc::new(chunk.rows.iter().map(|(_, r)| users.get(&r.user_id).cloned()).collect());
        let held: Arc<HashSet<i64>> =
            Arc::new(in_flight.iter().flat_map(|c| c.chunk.rows.iter().map(|(_, r)| r.key)).collect());
        let first_inserts = tokio::spawn({
            let (chunk, facts, held) = (chunk.clone(), facts.clone(), held.clone());
            async move {
                let stored: Vec<StoredTransaction<'_>> =
                    stored_rows(&chunk, &facts).into_iter().filter(|t| !held.contains(&t.key)).collect();
                let inserted = if expect_new {
                    store::insert_expected_new_transactions(&mut tx, &stored).await?
                } else {
                    store::insert_new_transactions(&mut tx, &stored).await?
                };
                Ok((tx, inserted))
            }
        });
        Ok(StartedChunk { chunk, facts, held, first_inserts })
    }

    /// Stores the aggregates of the pending days that hold only rows this run inserted, straight
    /// from `tally`. A day whose row count differs from the tally's (rows from before, from
    /// another import, or from this job before a restart) is left pending for SQL.
    async fn store_tallied_days(&self, job_id: &str, tally: &Tally) -> anyhow::Result<()> {
        let mut conn = self.db.writer().acquire().await?;
        let days: Vec<String> = store::pending_days(&mut conn, job_id)
            .await?
            .into_iter()
            .filter(|d| tally.rows(d).is_some())
            .collect();
        drop(conn);
        for group in days.chunks(TALLIED_DAYS_PER_TRANSACTION) {
            let mut tx = self.db.begin().await?;
            aggregate::hold_days(&mut tx, group).await?;
            let counts = aggregate::rows_per_day(&mut tx, group).await?;
            let settled: Vec<String> =
                group.iter().filter(|d| counts.get(*d).copied() == tally.rows(d)).cloned().collect();
            if !settled.is_empty() {
                aggregate::clear_days(&mut tx, &settled).await?;
                let subscribers = store::subscribers(&mut tx, tally.users(&settled)).await?;
                let now = now_ms();
                aggregate::store(&mut tx, &tally.figures(&settled, &subscribers), now).await?;
                store::finish_days(&mut tx, job_id, &settled, now).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Recomputes the job's pending days. Each transaction holds two groups of days (see
    /// [`aggregate::lock_days`]) while two reading connections compute them side by side, then
    /// stores their rows and marks the days done.
    async fn recompute_days(&self, job_id: &str, lease: &JobLease) -> anyhow::Result<()> {
        let days = store::pending_days(&mut *self.db.writer().acquire().await?, job_id).await?;
        for pair in days.chunks(2 * DAYS_PER_RECOMPUTE) {
            if lease.should_stop() {
                return Err(Interrupted.into());
            }
            let mut tx = self.db.begin().await?;
            aggregate::lock_days(&mut tx, pair).await?;
            let (first, second) = pair.split_at(pair.len().min(DAYS_PER_RECOMPUTE));
            let (a, b) = tokio::try_join!(self.compute(first), self.compute(second))?;
            let now = now_ms();
            aggregate::store(&mut tx, &a, now).await?;
            aggregate::store(&mut tx, &b, now).await?;
            store::finish_days(&mut tx, job_id, pair, now).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn compute(&self, dates: &[String]) -> anyhow::Result<aggregate::DayFigures> {
        if dates.is_empty() {
            return Ok(aggregate::DayFigures::default());
        }
        let mut conn = self.db.reader().acquire().await?;
        Ok(aggregate::compute(&mut conn, dates).await?)
    }
}

/// Recomputes `days` and records them done for the job, on `conn`.
async fn recompute_and_finish(
    conn: &mut AnyConnection,
    job_id: &str,
    days: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    aggregate::recompute_days(conn, days, now).await?;
    store::finish_days(conn, job_id, days, now).await
}

/// Parses `path` on a background thread (see [`spawn_background`]), one chunk ahead of the caller.
fn read_chunks<R: Send + 'static>(
    path: &Path,
    label: &'static str,
    columns: &'static [&'static str],
    from: Checkpoint,
    chunk_rows: usize,
    parse: fn(&Fields<'_>) -> Result<R, Reject>,
) -> std::io::Result<mpsc::Receiver<Result<Chunk<R>, FileError>>> {
    let (sender, receiver) = mpsc::channel(1);
    let path = path.to_owned();
    // The thread reports through the channel; the future of its end is not needed.
    let _ended = spawn_background("usage-parse", move || {
        let mut chunks = match CsvChunks::open(&path, label, columns, from, chunk_rows) {
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

/// Stores one chunk of users; the latest row of an id wins. A user whose active subscription or
/// region changes makes every aggregated day of the regions involved due for recomputing.
async fn write_users(conn: &mut AnyConnection, job_id: &str, chunk: Chunk<UserRow>) -> anyhow::Result<()> {
    let ids: Vec<&str> = chunk.rows.iter().map(|(_, u)| u.id.as_str()).collect();
    let names: Vec<&str> = chunk.rows.iter().map(|(_, u)| u.username.as_str()).collect();
    let (existing, owners) = store::existing_users(conn, &ids, &names).await?;
    let mut rejects = chunk.rejects.clone();
    let mut latest: HashMap<&str, &UserRow> = HashMap::new();
    let mut names_in_chunk: HashMap<&str, &str> = HashMap::new();
    for (line, user) in &chunk.rows {
        let owner = owners
            .get(&user.username)
            .map(String::as_str)
            .or(names_in_chunk.get(user.username.as_str()).copied());
        if let Some(owner) = owner.filter(|o| *o != user.id) {
            rejects.push(Reject {
                line: *line,
                field: "User_Name".into(),
                reason: format!("'{}' already belongs to User_ID {owner}", user.username),
            });
            continue;
        }
        names_in_chunk.insert(&user.username, &user.id);
        latest.insert(&user.id, user);
    }
    let mut counts =
        ChunkCounts { read: chunk.read() as i64, rejected: rejects.len() as i64, ..Default::default() };
    let mut regions = HashSet::new();
    let mut changed = Vec::new();
    for user in latest.values() {
        match existing.get(&user.id) {
            Some(old) if old == *user => continue,
            Some(old) => {
                counts.updated += 1;
                if (old.region.as_str(), old.is_active_sub) != (user.region.as_str(), user.is_active_sub) {
                    if old.is_active_sub {
                        regions.insert(old.region.clone());
                    }
                    if user.is_active_sub {
                        regions.insert(user.region.clone());
                    }
                }
            }
            None => {
                counts.inserted += 1;
                if user.is_active_sub {
                    regions.insert(user.region.clone());
                }
            }
        }
        changed.push(*user);
    }
    counts.unchanged = counts.read - counts.rejected - counts.inserted - counts.updated;
    let now = now_ms();
    store::upsert_users(conn, &changed, now).await?;
    store::add_region_days(conn, job_id, &regions).await?;
    store::insert_rejects(conn, job_id, FileKind::Users, &rejects).await?;
    store::advance(conn, job_id, FileKind::Users, chunk.end, counts, now).await?;
    Ok(())
}

/// What writing a chunk of transactions did.
enum Written {
    /// Every row not rejected was new and inserted.
    AllInserted,
    /// Some rows were stored already: these days changed.
    Some(Vec<String>),
}

/// A committed chunk, on its way to the tally.
enum Tallied {
    /// Rows all newly inserted, with their users' facts.
    Inserted(Arc<Chunk<TransactionRow>>, Arc<Vec<Option<Arc<UserFacts>>>>),
    /// Days whose rows changed in ways the tally does not follow.
    Spoiled(Vec<String>),
}

impl Tallied {
    fn add_to(self, tally: &mut Tally) {
        match self {
            Tallied::Inserted(chunk, facts) => {
                tally.add(chunk.rows.iter().zip(facts.iter()).filter_map(|((_, r), user)| {
                    user.as_ref().map(|u| TallyRow {
                        date: &r.date,
                        region: &u.region,
                        company: &u.company,
                        model: &r.model_name,
                        conversation: &r.conversation_id,
                        user: &r.user_id,
                        token_type: r.token_type,
                        tokens: r.token_count,
                        cost: r.calculated_cost,
                    })
                }))
            }
            Tallied::Spoiled(days) => days.iter().for_each(|d| tally.spoil(d)),
        }
    }
}

/// A chunk of transactions whose transaction is open and whose first inserts are under way.
struct StartedChunk {
    chunk: Arc<Chunk<TransactionRow>>,
    /// Each row's user facts (`None`: unknown user).
    facts: Arc<Vec<Option<Arc<UserFacts>>>>,
    /// Keys left out of the first inserts (those of the chunks in flight before it).
    held: Arc<HashSet<i64>>,
    first_inserts: tokio::task::JoinHandle<anyhow::Result<(Transaction<'static, Any>, u64)>>,
}

/// Chunks whose transactions may be open at once. A PostgreSQL server runs each connection on a
/// process of its own, so two chunks inserting at once keep two cores busy; SQLite has one
/// writer.
fn chunks_in_flight(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 2,
    }
}

/// The rows of `chunk` whose user is known, in file order.
fn stored_rows<'a>(
    chunk: &'a Chunk<TransactionRow>,
    facts: &'a [Option<Arc<UserFacts>>],
) -> Vec<StoredTransaction<'a>> {
    chunk
        .rows
        .iter()
        .zip(facts)
        .filter_map(|((_, row), user)| {
            user.as_deref().map(|user| StoredTransaction { key: row.key, row, user })
        })
        .collect()
}

/// Waits for a started chunk's first inserts, writes the rest of it, commits and hands it to
/// the tally; returns whether every row was new. Chunks are finished in file order, so the file
/// checkpoint only moves forward.
async fn finish_chunk(
    started: StartedChunk,
    job_id: &str,
    to_tally: &mpsc::Sender<Tallied>,
) -> anyhow::Result<bool> {
    let (mut tx, first_inserted) = started.first_inserts.await??;
    let written =
        write_transactions(&mut tx, job_id, &started.chunk, &started.facts, &started.held, first_inserted)
            .await?;
    tx.commit().await?;
    let all_new = matches!(written, Written::AllInserted);
    let tallied = match written {
        Written::AllInserted => Tallied::Inserted(started.chunk, started.facts),
        Written::Some(days) => Tallied::Spoiled(days),
    };
    // The tally thread only ends when this sender is dropped.
    let _ = to_tally.send(tallied).await;
    Ok(all_new)
}

/// Writes the rest of one chunk of transactions after its first inserts (`first_inserted` rows,
/// every new key but the `held` ones): new ids are inserted; an existing id is overwritten only
/// when a value differs (and its old day is recomputed too); a row naming an unknown user is
/// rejected.
async fn write_transactions(
    conn: &mut AnyConnection,
    job_id: &str,
    chunk: &Chunk<TransactionRow>,
    facts: &[Option<Arc<UserFacts>>],
    held: &HashSet<i64>,
    first_inserted: u64,
) -> anyhow::Result<Written> {
    let mut rejects = chunk.rejects.clone();
    for ((line, row), user) in chunk.rows.iter().zip(facts) {
        if user.is_none() {
            rejects.push(Reject {
                line: *line,
                field: "User_ID".into(),
                reason: format!("'{}' is not a known user (not in the users file nor stored)", row.user_id),
            });
        }
    }
    let stored = stored_rows(chunk, facts);
    let held_rows: Vec<StoredTransaction<'_>> =
        stored.iter().filter(|t| held.contains(&t.key)).copied().collect();
    let first_pass = (first_inserted + store::insert_new_transactions(conn, &held_rows).await?) as usize;
    let mut inserted = first_pass as i64;
    // Days whose figures change: all of the chunk's when any row was new (which ones is not known
    // here), else those of the rows changed or placed past a clash.
    let mut changed_days: HashSet<&str> = HashSet::new();
    if first_pass > 0 {
        changed_days.extend(stored.iter().map(|t| t.row.date.as_str()));
    }
    let mut updated = 0;
    let mut old_days = Vec::new();
    if first_pass < stored.len() {
        // Some keys were taken (the id is stored, repeats within the chunk, or its key clashes
        // with another id's): compare with what is stored and overwrite the rows that differ,
        // the last occurrence of an id winning.
        let keys: Vec<i64> = stored.iter().map(|t| t.key).collect();
        let existing = store::existing_transactions(conn, &keys).await?;
        // The file line of each of `stored`.
        let lines: Vec<u64> = chunk
            .rows
            .iter()
            .zip(facts)
            .filter(|(_, user)| user.is_some())
            .map(|((line, _), _)| *line)
            .collect();
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(stored.len());
        for (i, t) in stored.iter().enumerate() {
            last.insert(t.row.id.as_str(), i);
        }
        let mut changes = Vec::new();
        for (i, t) in stored.iter().enumerate() {
            if last.get(t.row.id.as_str()) != Some(&i) {
                continue;
            }
            let (key, old) = match existing.get(&t.key) {
                Some(old) if old.id == t.row.id => (t.key, Some(old.clone())),
                Some(_) => match place_clashing(conn, t).await? {
                    Placed::Inserted => {
                        inserted += 1;
                        changed_days.insert(t.row.date.as_str());
                        continue;
                    }
                    Placed::Stored(key, old) => (key, Some(*old)),
                    Placed::Full => {
                        rejects.push(Reject {
                            line: lines[i],
                            field: "RowId".into(),
                            reason: "its key clashes with too many other RowIds".into(),
                        });
                        continue;
                    }
                },
                None => (t.key, None),
            };
            if let Some(old) = old.filter(|old| !old.same_as(t)) {
                old_days.push(old.date);
                changed_days.insert(t.row.date.as_str());
                changes.push(StoredTransaction { key, row: t.row, user: t.user });
            }
        }
        updated = changes.len() as i64;
        store::update_transactions(conn, &changes).await?;
    }
    changed_days.extend(old_days.iter().map(String::as_str));
    let counts = ChunkCounts {
        read: chunk.read() as i64,
        inserted,
        updated,
        unchanged: chunk.read() as i64 - rejects.len() as i64 - inserted - updated,
        rejected: rejects.len() as i64,
    };
    let now = now_ms();
    store::add_days(conn, job_id, &changed_days).await?;
    store::insert_rejects(conn, job_id, FileKind::Transactions, &rejects).await?;
    store::advance(conn, job_id, FileKind::Transactions, chunk.end, counts, now).await?;
    Ok(if first_pass == stored.len() {
        Written::AllInserted
    } else {
        Written::Some(changed_days.into_iter().map(str::to_owned).collect())
    })
}

/// Where a row whose home key belongs to another id went.
enum Placed {
    /// Its id was not stored: it now is, at the first free key of its probe sequence.
    Inserted,
    /// Its id is stored at this key, with these values.
    Stored(i64, Box<ExistingTransaction>),
    /// Every key of its probe sequence belongs to other ids.
    Full,
}

/// Finds or makes the place of a row whose home key holds another id (see [`store::KEY_PROBES`]).
async fn place_clashing(conn: &mut AnyConnection, t: &StoredTransaction<'_>) -> anyhow::Result<Placed> {
    let taken = store::probed_transactions(conn, t.row.key).await?;
    if let Some((key, old)) = taken.iter().find(|(_, old)| old.id == t.row.id) {
        return Ok(Placed::Stored(*key, Box::new(old.clone())));
    }
    let Some(free) = (t.row.key + 1..=t.row.key + store::KEY_PROBES).find(|k| !taken.contains_key(k)) else {
        return Ok(Placed::Full);
    };
    store::insert_new_transactions(conn, &[StoredTransaction { key: free, row: t.row, user: t.user }])
        .await?;
    Ok(Placed::Inserted)
}

/// The import of one uploaded pair of files: its usage job id. At most one is queued or running
/// per usage job.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ImportFiles {
    /// The usage job (`jobs.id`).
    pub job_id: String,
}

impl Job for ImportFiles {
    const NAME: &'static str = JOB_TYPE;
    const QUEUE: &'static str = "usage";

    fn dedup_key(&self) -> Option<String> {
        Some(self.job_id.clone())
    }
}

/// Runs [`ImportFiles`] jobs on the standalone pool.
pub struct ImportJob {
    /// The importer.
    pub importer: Importer,
}

#[async_trait::async_trait]
impl RunStandalone for ImportJob {
    type Job = ImportFiles;

    async fn run(&self, job: ImportFiles, _ctx: &JobContext, lease: &JobLease) -> anyhow::Result<()> {
        self.importer.run(&job.job_id, lease).await
    }

    /// Records the failure on the usage job and recomputes the days its committed chunks touched,
    /// so the aggregates still equal the transactions.
    async fn on_failed(
        &self,
        job: ImportFiles,
        _ctx: &JobContext,
        error: &str,
        conn: &mut AnyConnection,
    ) -> anyhow::Result<()> {
        let id = job.job_id.as_str();
        let days = store::pending_days(conn, id).await?;
        let now = now_ms();
        recompute_and_finish(conn, id, &days, now).await?;
        store::mark_failed(conn, id, error, now).await?;
        Ok(())
    }
}
