//! The aggregates stage: the days that hold only this run's new rows get their figures from the
//! tally; every other touched day is recomputed in SQL, two groups at a time.

use sightline_platform::db::now_ms;
use sightline_platform::queue::{Interrupted, JobLease};
use sqlx::AnyConnection;

use super::Importer;
use crate::aggregate::DayFigures;
use crate::store;
use crate::store::daily::{self, DAYS_PER_RECOMPUTE};
use crate::tally::Tally;

/// Tallied days stored per transaction.
const TALLIED_DAYS_PER_TRANSACTION: usize = 62;

impl Importer {
    /// Stores the aggregates of the pending days that hold only rows this run inserted, straight
    /// from `tally`. A day whose row count differs from the tally's (rows from before, from
    /// another import, or from this job before a restart) is left pending for SQL.
    pub(super) async fn store_tallied_days(&self, job_id: &str, tally: &Tally) -> anyhow::Result<()> {
        let mut conn = self.db.writer().acquire().await?;
        let days: Vec<String> = store::days::pending_days(&mut conn, job_id)
            .await?
            .into_iter()
            .filter(|d| tally.rows(d).is_some())
            .collect();
        drop(conn);
        for group in days.chunks(TALLIED_DAYS_PER_TRANSACTION) {
            let mut tx = self.db.begin().await?;
            daily::hold_days(&mut tx, group).await?;
            let counts = daily::rows_per_day(&mut tx, group).await?;
            let settled: Vec<String> =
                group.iter().filter(|d| counts.get(*d).copied() == tally.rows(d)).cloned().collect();
            if !settled.is_empty() {
                daily::clear_days(&mut tx, &settled).await?;
                let subscribers = store::users::subscribers(&mut tx, tally.users(&settled)).await?;
                let now = now_ms();
                daily::store(&mut tx, &tally.figures(&settled, &subscribers), now).await?;
                store::days::finish_days(&mut tx, job_id, &settled, now).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    /// Recomputes the job's pending days. Each transaction holds two groups of days (see
    /// [`daily::lock_days`]) while two reading connections compute them side by side, then
    /// stores their rows and marks the days done.
    pub(super) async fn recompute_days(&self, job_id: &str, lease: &JobLease) -> anyhow::Result<()> {
        let days = store::days::pending_days(&mut *self.db.writer().acquire().await?, job_id).await?;
        for pair in days.chunks(2 * DAYS_PER_RECOMPUTE) {
            if lease.should_stop() {
                return Err(Interrupted.into());
            }
            let mut tx = self.db.begin().await?;
            daily::lock_days(&mut tx, pair).await?;
            let (first, second) = pair.split_at(pair.len().min(DAYS_PER_RECOMPUTE));
            let (a, b) = tokio::try_join!(self.compute(first), self.compute(second))?;
            let now = now_ms();
            daily::store(&mut tx, &a, now).await?;
            daily::store(&mut tx, &b, now).await?;
            store::days::finish_days(&mut tx, job_id, pair, now).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn compute(&self, dates: &[String]) -> anyhow::Result<DayFigures> {
        if dates.is_empty() {
            return Ok(DayFigures::default());
        }
        let mut conn = self.db.reader().acquire().await?;
        Ok(daily::compute(&mut conn, dates).await?)
    }
}

/// Recomputes `days` and records them done for the job, on `conn`.
pub(crate) async fn recompute_and_finish(
    conn: &mut AnyConnection,
    job_id: &str,
    days: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    daily::recompute_days(conn, days, now).await?;
    store::days::finish_days(conn, job_id, days, now).await
}
