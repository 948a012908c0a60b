//! Cron schedules with time zones, kept as data in `schedules`. Modules declare fixed schedules
//! at start ([`crate::ModuleParts::schedule`]) and add, change or remove others at run time in
//! their own transaction ([`upsert_in`], [`remove_in`]): one per organisation, in its zone, say.
//!
//! Each tick reads the due rows with one query; a due run enqueues its job and advances the row
//! with a compare-and-set in the same transaction, so with several processes sharing a database
//! each run is enqueued exactly once. Next runs are computed in the schedule's own zone, so a
//! 06:00 America/Los_Angeles job stays at 06:00 local across daylight-saving changes. Runs missed
//! while no process was up are coalesced into one.

use std::collections::HashSet;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use sqlx::{AnyConnection, Row};
use tokio_util::sync::CancellationToken;

use crate::db::{ms_to_rfc3339, now_ms, placeholders, Db};
use crate::queue::{Job, NewJob, Queue};

/// The owner of the schedules `module` declares at start (others are owned by whoever added
/// them at run time).
fn declared_by(module: &str) -> String {
    format!("declared:{module}")
}

/// Due schedules fired per tick at most (the rest wait for the next tick).
const DUE_PER_TICK: i64 = 100;

/// A recurring job.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// Unique name, prefixed by its module: `calls.daily_report:org_42`.
    pub name: String,
    /// Cron expression: 5 fields (`min hour dom mon dow`) or 6 with seconds first.
    pub cron: String,
    /// The time zone the expression is read in.
    pub timezone: Tz,
    /// Queue of the enqueued job.
    pub queue: String,
    /// Job type to enqueue.
    pub job_type: String,
    /// Job payload; `scheduled_for` (RFC 3339) is added to it.
    pub payload: Value,
}

impl ScheduleSpec {
    /// A schedule enqueuing `job` (its type, queue and payload) at `cron` in `timezone`.
    pub fn of<J: Job>(name: impl Into<String>, cron: &str, timezone: Tz, job: &J) -> anyhow::Result<Self> {
        Ok(Self {
            name: name.into(),
            cron: cron.to_owned(),
            timezone,
            queue: J::QUEUE.to_owned(),
            job_type: J::NAME.to_owned(),
            payload: serde_json::to_value(job)?,
        })
    }

    fn parsed(&self) -> anyhow::Result<CronInZone> {
        CronInZone::parse(&self.cron, self.timezone.name()).with_context(|| format!("schedule {}", self.name))
    }
}

/// Adds `spec` (owned by `owner`) or changes the schedule of that name, through `conn` (the
/// caller's transaction). A changed expression or zone takes effect from now; an unchanged one
/// keeps its next run.
pub async fn upsert_in(conn: &mut AnyConnection, spec: &ScheduleSpec, owner: &str) -> anyhow::Result<()> {
    let next = spec
        .parsed()?
        .next_after(Utc::now())
        .ok_or_else(|| anyhow!("schedule {} never runs", spec.name))?
        .timestamp_millis();
    sqlx::query(
        "INSERT INTO schedules (name, cron, timezone, queue, job_type, payload, next_run_at, updated_at, owner) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name) DO UPDATE SET queue = excluded.queue, job_type = excluded.job_type, \
         payload = excluded.payload, owner = excluded.owner, updated_at = excluded.updated_at, \
         cron = excluded.cron, timezone = excluded.timezone, \
         next_run_at = CASE WHEN schedules.cron <> excluded.cron OR schedules.timezone <> excluded.timezone \
         THEN excluded.next_run_at ELSE schedules.next_run_at END",
    )
    .bind(&spec.name)
    .bind(&spec.cron)
    .bind(spec.timezone.name())
    .bind(&spec.queue)
    .bind(&spec.job_type)
    .bind(spec.payload.to_string())
    .bind(next)
    .bind(now_ms())
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored schedule, as a status page shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// Its name.
    pub name: String,
    /// Cron expression.
    pub cron: String,
    /// The zone it is read in.
    pub timezone: String,
    /// Next run (RFC 3339).
    pub next_run_at: String,
}

/// The schedules of `owner` (a module's name), by next run.
pub async fn list_owned(conn: &mut AnyConnection, owner: &str) -> Result<Vec<ScheduleView>, sqlx::Error> {
    use sqlx::Row as _;
    let rows = sqlx::query(
        "SELECT name, cron, timezone, next_run_at FROM schedules WHERE owner = $1 ORDER BY next_run_at, name",
    )
    .bind(owner)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ScheduleView {
                name: r.try_get("name")?,
                cron: r.try_get("cron")?,
                timezone: r.try_get("timezone")?,
                next_run_at: crate::db::ms_to_rfc3339(r.try_get("next_run_at")?),
            })
        })
        .collect()
}

/// Removes the schedule `name` through `conn`; false when there was none.
pub async fn remove_in(conn: &mut AnyConnection, name: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM schedules WHERE name = $1").bind(name).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// A parsed cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct CronInZone {
    schedule: cron::Schedule,
    tz: Tz,
}

impl CronInZone {
    /// Parses `expr` (5 or 6 fields) and the zone name.
    pub fn parse(expr: &str, timezone: &str) -> anyhow::Result<Self> {
        let fields = expr.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expr}"),
            6 | 7 => expr.to_string(),
            _ => return Err(anyhow!("cron expression `{expr}` must have 5 or 6 fields")),
        };
        let schedule =
            cron::Schedule::from_str(&full).map_err(|e| anyhow!("cron expression `{expr}`: {e}"))?;
        let tz: Tz = timezone.parse().map_err(|_| anyhow!("unknown time zone `{timezone}`"))?;
        Ok(Self { schedule, tz })
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after.with_timezone(&self.tz)).next().map(|d| d.with_timezone(&Utc))
    }
}

/// Fires due schedules.
#[derive(Clone)]
pub struct Scheduler {
    db: Db,
    queue: Queue,
}

impl Scheduler {
    /// Records the schedules `modules` declare (refusing two of one name; each named
    /// `<module>.…`) and forgets the ones these modules declared before and no longer do. Other
    /// modules' schedules are left alone: a process may run fewer modules than another.
    pub async fn register(
        db: Db,
        queue: Queue,
        modules: &[&str],
        specs: Vec<ScheduleSpec>,
    ) -> anyhow::Result<Self> {
        let mut names = HashSet::new();
        for spec in &specs {
            anyhow::ensure!(names.insert(spec.name.as_str()), "schedule {} is declared twice", spec.name);
            spec.parsed()?;
        }
        let module_of = |spec: &ScheduleSpec| spec.name.split('.').next().unwrap_or_default().to_owned();
        let mut tx = db.begin().await?;
        for spec in &specs {
            upsert_in(&mut tx, spec, &declared_by(&module_of(spec))).await?;
        }
        for module in modules {
            let kept: Vec<&str> =
                specs.iter().filter(|s| module_of(s) == *module).map(|s| s.name.as_str()).collect();
            let stale = match kept.len() {
                0 => "DELETE FROM schedules WHERE owner = $1".to_owned(),
                n => {
                    format!("DELETE FROM schedules WHERE owner = $1 AND name NOT IN ({})", placeholders(n, 2))
                }
            };
            let mut query = sqlx::query(&stale).bind(declared_by(module));
            for name in kept {
                query = query.bind(name);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(Self { db, queue })
    }

    /// Fires every due schedule once; returns how many runs this process enqueued.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let due = sqlx::query(
            "SELECT name, cron, timezone, queue, job_type, payload, next_run_at FROM schedules \
             WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2",
        )
        .bind(now.timestamp_millis())
        .bind(DUE_PER_TICK)
        .fetch_all(self.db.reader())
        .await?;
        let mut fired = 0;
        for row in due {
            match self.fire(&row, now).await {
                Ok(true) => fired += 1,
                Ok(false) => {}
                Err(e) => {
                    let name: String = row.get("name");
                    tracing::warn!(schedule = %name, error = format!("{e:#}"), "scheduler.fire_failed");
                }
            }
        }
        if fired > 0 {
            self.queue.wake();
        }
        Ok(fired)
    }

    /// Enqueues one due run and advances its schedule; `false` when another process did first.
    async fn fire(&self, row: &sqlx::any::AnyRow, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let name: String = row.get("name");
        let due: i64 = row.get("next_run_at");
        let cron = CronInZone::parse(&row.get::<String, _>("cron"), &row.get::<String, _>("timezone"))?;
        let next = cron.next_after(now).map(|d| d.timestamp_millis()).unwrap_or(i64::MAX);
        let mut tx = self.db.begin().await?;
        let won = sqlx::query(
            "UPDATE schedules SET next_run_at = $1, last_run_at = $2, updated_at = $3 \
             WHERE name = $4 AND next_run_at = $2",
        )
        .bind(next)
        .bind(due)
        .bind(now.timestamp_millis())
        .bind(&name)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !won {
            return Ok(false);
        }
        let mut payload: Value = serde_json::from_str(&row.get::<String, _>("payload"))?;
        if let Value::Object(map) = &mut payload {
            map.insert("scheduled_for".into(), json!(ms_to_rfc3339(due)));
        }
        let job = NewJob::new(row.get::<String, _>("queue"), row.get::<String, _>("job_type"), payload);
        let id = self.queue.enqueue(&mut tx, job).await?;
        tx.commit().await?;
        tracing::info!(schedule = %name, job.id = ?id, scheduled_for = %ms_to_rfc3339(due), "scheduler.fired");
        Ok(true)
    }

    /// Ticks until `shutdown`.
    pub fn spawn(self, every: Duration, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(e) = self.tick().await {
                    tracing::warn!(error = format!("{e:#}"), "scheduler.tick_failed");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn six_am_los_angeles_follows_daylight_saving() {
        let c = CronInZone::parse("0 6 * * *", "America/Los_Angeles").unwrap();
        // Before the March 2026 change: PST, UTC-8.
        assert_eq!(c.next_after(utc("2026-03-07T15:00:00Z")).unwrap(), utc("2026-03-08T13:00:00Z"));
        // 8 March 2026 02:00 local clocks go forward; the next day's 06:00 is PDT, UTC-7.
        assert_eq!(c.next_after(utc("2026-03-08T14:00:00Z")).unwrap(), utc("2026-03-09T13:00:00Z"));
        // After 1 November 2026: back to PST.
        assert_eq!(c.next_after(utc("2026-11-01T14:00:00Z")).unwrap(), utc("2026-11-02T14:00:00Z"));
    }

    #[test]
    fn bad_expressions_and_zones_are_refused() {
        assert!(CronInZone::parse("0 6 * *", "UTC").is_err());
        assert!(CronInZone::parse("0 6 * * *", "Mars/Olympus").is_err());
        assert!(CronInZone::parse("*/5 * * * * *", "Europe/Brussels").is_ok());
    }
}
