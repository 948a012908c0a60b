//! The users stage: each chunk of the users file upserted, with its rejects and checkpoint.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use sightline_platform::db::now_ms;
use sightline_platform::queue::{Interrupted, JobLease};
use sqlx::AnyConnection;

use super::{read_chunks, Importer};
use crate::format::{parse_user, Chunk, FileError, USER_COLUMNS};
use crate::model::{ChunkCounts, FileKind, JobRecord, Reject, UserRow};
use crate::store;

impl Importer {
    pub(super) async fn import_users(
        &self,
        job: &JobRecord,
        path: &Path,
        lease: &JobLease,
    ) -> anyhow::Result<()> {
        let mut chunks =
            read_chunks(path, "users", &USER_COLUMNS, job.users.checkpoint, self.limits, parse_user)?;
        while let Some(chunk) = chunks.recv().await {
            let chunk = chunk.map_err(FileError::into_job_error)?;
            if lease.should_stop() {
                return Err(Interrupted.into());
            }
            let mut tx = self.db.begin().await?;
            write_users(&mut tx, &job.id, chunk).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Stores one chunk of users; the latest row of an id wins. A user whose active subscription or
/// region changes makes every aggregated day of the regions involved due for recomputing.
async fn write_users(conn: &mut AnyConnection, job_id: &str, chunk: Chunk<UserRow>) -> anyhow::Result<()> {
    let ids: Vec<&str> = chunk.rows.iter().map(|(_, u)| u.id.as_str()).collect();
    let names: Vec<&str> = chunk.rows.iter().map(|(_, u)| u.username.as_str()).collect();
    let (existing, owners) = store::users::existing_users(conn, &ids, &names).await?;
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
    store::users::upsert_users(conn, &changed, now).await?;
    store::days::add_region_days(conn, job_id, &regions).await?;
    store::jobs::insert_rejects(conn, job_id, FileKind::Users, &rejects).await?;
    store::jobs::advance(conn, job_id, FileKind::Users, chunk.end, counts, now).await?;
    Ok(())
}
