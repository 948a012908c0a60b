//! Cron schedules with time zones. Each due run enqueues a job; the `schedules` row is advanced
//! with a compare-and-set in the same transaction, so with several processes sharing a database
//! each run is enqueued exactly once. Next runs are computed in the schedule's own zone, so a
//! 06:00 America/Los_Angeles job stays at 06:00 local across daylight-saving changes. Runs missed
//! while no process was up are coalesced into one.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use sqlx::Row;
use tokio_util::sync::CancellationToken;

use crate::db::{ms_to_rfc3339, now_ms, Db};
use crate::queue::{NewJob, Queue};

/// A module's recurring job.
#[derive(Debug, Clone)]
pub struct ScheduleSpec {
    /// Unique name, e.g. `calls.daily_reports`.
    pub name: String,
    /// Cron expression: 5 fields (`min hour dom mon dow`) or 6 with seconds first.
    pub cron: String,
    /// IANA time zone the expression is read in, e.g. `America/Los_Angeles`.
    pub timezone: String,
    /// Queue of the enqueued job.
    pub queue: String,
    /// Job type to enqueue.
    pub job_type: String,
    /// Job payload; `scheduled_for` (RFC 3339) is added to it.
    pub payload: Value,
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

/// Registers schedules and fires them when due.
#[derive(Clone)]
pub struct Scheduler {
    db: Db,
    queue: Queue,
    specs: Arc<Vec<(ScheduleSpec, CronInZone)>>,
}

impl Scheduler {
    /// Checks every spec and records it (or its changed expression) in `schedules`.
    pub async fn register(db: Db, queue: Queue, specs: Vec<ScheduleSpec>) -> anyhow::Result<Self> {
        let mut parsed = Vec::with_capacity(specs.len());
        for spec in specs {
            let cron = CronInZone::parse(&spec.cron, &spec.timezone)
                .with_context(|| format!("schedule {}", spec.name))?;
            let next = cron
                .next_after(Utc::now())
                .ok_or_else(|| anyhow!("schedule {} never runs", spec.name))?
                .timestamp_millis();
            // New schedules are recorded; a changed expression or zone takes effect from now.
            sqlx::query(
                "INSERT INTO schedules (name, cron, timezone, queue, job_type, payload, next_run_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, timezone = excluded.timezone, \
                 queue = excluded.queue, job_type = excluded.job_type, payload = excluded.payload, \
                 next_run_at = excluded.next_run_at, updated_at = excluded.updated_at \
                 WHERE schedules.cron <> excluded.cron OR schedules.timezone <> excluded.timezone",
            )
            .bind(&spec.name)
            .bind(&spec.cron)
            .bind(&spec.timezone)
            .bind(&spec.queue)
            .bind(&spec.job_type)
            .bind(spec.payload.to_string())
            .bind(next)
            .bind(now_ms())
            .execute(db.writer())
            .await?;
            parsed.push((spec, cron));
        }
        Ok(Self { db, queue, specs: Arc::new(parsed) })
    }

    /// Fires every due schedule once; returns how many runs this process enqueued.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let mut fired = 0;
        for (spec, cron) in self.specs.iter() {
            let row = sqlx::query("SELECT next_run_at FROM schedules WHERE name = $1")
                .bind(&spec.name)
                .fetch_optional(self.db.reader())
                .await?;
            let Some(row) = row else { continue };
            let due: i64 = row.get(0);
            if due > now.timestamp_millis() {
                continue;
            }
            let next = cron.next_after(now).map(|d| d.timestamp_millis()).unwrap_or(i64::MAX);
            let mut tx = self.db.begin().await?;
            let won = sqlx::query(
                "UPDATE schedules SET next_run_at = $1, last_run_at = $2, updated_at = $3 \
                 WHERE name = $4 AND next_run_at = $2",
            )
            .bind(next)
            .bind(due)
            .bind(now.timestamp_millis())
            .bind(&spec.name)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if !won {
                continue; // another process fired it
            }
            let mut payload = spec.payload.clone();
            if let Value::Object(map) = &mut payload {
                map.insert("scheduled_for".into(), json!(ms_to_rfc3339(due)));
            }
            let id = self.queue.enqueue(&mut tx, NewJob::new(&spec.queue, &spec.job_type, payload)).await?;
            tx.commit().await?;
            tracing::info!(schedule = %spec.name, job.id = id, scheduled_for = %ms_to_rfc3339(due), "scheduler.fired");
            fired += 1;
        }
        if fired > 0 {
            self.queue.wake();
        }
        Ok(fired)
    }

    /// Ticks until `shutdown`.
    pub fn spawn(self, every: Duration, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            if self.specs.is_empty() {
                return;
            }
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
