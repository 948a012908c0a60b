//! The transactions stage: chunks inserted (two at once on PostgreSQL), stored ids compared and
//! overwritten only when a value differs, clashing keys probed, and the inserted rows tallied.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use sightline_platform::background::spawn_background;
use sightline_platform::db::{now_ms, Backend};
use sightline_platform::queue::{Interrupted, JobLease};
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::mpsc;

use super::{read_chunks, Importer};
use crate::format::{parse_transaction, Chunk, FileError, TRANSACTION_COLUMNS};
use crate::model::{ChunkCounts, FileKind, JobRecord, Reject, TransactionRow};
use crate::store::transactions::{ExistingTransaction, StoredTransaction};
use crate::store::{self, users::UserFacts};
use crate::tally::{Tally, TallyRow};

/// Most memory the tally of one import keeps (see [`crate::tally`]).
const TALLY_BUDGET_BYTES: usize = 64 << 20;

impl Importer {
    /// Imports the transactions file from its checkpoint, tallying the rows it inserts on a
    /// thread of its own (see [`crate::tally`]); returns the tally.
    pub(super) async fn import_transactions(
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
            self.limits,
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
            let chunk = Arc::new(chunk.map_err(FileError::into_job_error)?);
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
            store::transactions::limit_lock_wait(&mut tx).await?;
        }
        let user_ids: Vec<&str> = chunk.rows.iter().map(|(_, r)| r.user_id.as_str()).collect();
        store::users::load_users(&mut tx, &user_ids, users).await?;
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
                    store::transactions::insert_expected_new_transactions(&mut tx, &stored).await?
                } else {
                    store::transactions::insert_new_transactions(&mut tx, &stored).await?
                };
                Ok((tx, inserted))
            }
        });
        Ok(StartedChunk { chunk, facts, held, first_inserts })
    }
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
    let first_pass =
        (first_inserted + store::transactions::insert_new_transactions(conn, &held_rows).await?) as usize;
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
        let existing = store::transactions::existing_transactions(conn, &keys).await?;
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
        store::transactions::update_transactions(conn, &changes).await?;
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
    store::days::add_days(conn, job_id, &changed_days).await?;
    store::jobs::insert_rejects(conn, job_id, FileKind::Transactions, &rejects).await?;
    store::jobs::advance(conn, job_id, FileKind::Transactions, chunk.end, counts, now).await?;
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

/// Finds or makes the place of a row whose home key holds another id (see [`store::transactions::KEY_PROBES`]).
async fn place_clashing(conn: &mut AnyConnection, t: &StoredTransaction<'_>) -> anyhow::Result<Placed> {
    let taken = store::transactions::probed_transactions(conn, t.row.key).await?;
    if let Some((key, old)) = taken.iter().find(|(_, old)| old.id == t.row.id) {
        return Ok(Placed::Stored(*key, Box::new(old.clone())));
    }
    let Some(free) =
        (t.row.key + 1..=t.row.key + store::transactions::KEY_PROBES).find(|k| !taken.contains_key(k))
    else {
        return Ok(Placed::Full);
    };
    store::transactions::insert_new_transactions(
        conn,
        &[StoredTransaction { key: free, row: t.row, user: t.user }],
    )
    .await?;
    Ok(Placed::Inserted)
}
