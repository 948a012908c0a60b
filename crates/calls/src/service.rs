//! What the routes call: organisations, ingest into the embedded store, and the live metrics
//! and daily report over the configured source. Knows no HTTP.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::db::now_ms;
use sightline_platform::queue::{JobLease, Queue};
use sightline_platform::scheduler::{self, ScheduleSpec};
use sightline_platform::{Db, RequestContext};
use utoipa::ToSchema;

use crate::jobs::GenerateReport;
use crate::store::backfills::Backfill;
use crate::store::reports::{ReportRun, ReportSummary, StoredReport};

use crate::error::CallsError;
use crate::ingest;
use crate::metrics::{CallSource, Metrics};
use crate::model::{IngestSummary, Org};
use crate::query::Scope;
use crate::store;

/// The organisation used when a request names none (the original's `ORG_ID` and friends).
#[derive(Debug, Clone, Default)]
pub struct DefaultOrg {
    /// `ORG_ID`.
    pub org_id: Option<String>,
    /// `CLIENT_NAME`.
    pub name: String,
    /// `BROKER_NODE_PERSISTENT_ID`.
    pub node_persistent_id: Option<String>,
    /// `DEFAULT_TIMEZONE`.
    pub timezone: String,
    /// `EXCLUDED_USER_NUMBERS`.
    pub excluded_numbers: Vec<String>,
}

/// Most days one backfill makes.
pub const MAX_BACKFILL_DAYS: i64 = 1096;

/// When reports are generated (the original's `SCHEDULER_*` variables).
#[derive(Debug, Clone)]
pub struct ReportSchedule {
    /// `SCHEDULER_ENABLED`: generate each active organisation's report daily.
    pub enabled: bool,
    /// `SCHEDULER_HOUR`, in each organisation's zone.
    pub hour: u32,
    /// `SCHEDULER_MINUTE`.
    pub minute: u32,
    /// `SCHEDULER_CATCHUP_DAYS`: missing reports of this many past days are made at start.
    pub catchup_days: u32,
}

impl Default for ReportSchedule {
    fn default() -> Self {
        Self { enabled: true, hour: 6, minute: 0, catchup_days: 7 }
    }
}

/// What started a report generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunType {
    /// The daily schedule.
    Daily,
    /// The catch-up at start.
    Catchup,
    /// By hand (`POST /api/reports/generate`).
    Manual,
    /// A backfill.
    Backfill,
}

impl RunType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunType::Daily => "daily",
            RunType::Catchup => "catchup",
            RunType::Manual => "manual",
            RunType::Backfill => "backfill",
        }
    }
}

/// A new organisation, checked.
#[derive(Debug, Clone)]
pub struct NewOrg {
    /// Its id in the call data.
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// Its broker node.
    pub node_persistent_id: String,
    /// Its time zone.
    pub timezone: Tz,
    /// Its test numbers.
    pub excluded_numbers: Vec<String>,
}

/// A change to an organisation, checked; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct OrgChange {
    /// New name.
    pub name: Option<String>,
    /// New node.
    pub node_persistent_id: Option<String>,
    /// New zone.
    pub timezone: Option<Tz>,
    /// Active or not.
    pub is_active: Option<bool>,
    /// New test numbers.
    pub excluded_numbers: Option<Vec<String>>,
}

/// A time window as asked: the scope's bounds and how to print them.
#[derive(Debug, Clone)]
pub struct Window {
    /// Start (inclusive).
    pub start: DateTime<Tz>,
    /// End (exclusive).
    pub end: DateTime<Tz>,
}

impl Window {
    /// `{"start_date", "end_date"}` as ISO 8601 with the zone's offset.
    pub fn to_json(&self) -> Value {
        json!({"start_date": iso(&self.start), "end_date": iso(&self.end)})
    }
}

fn iso(t: &DateTime<Tz>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// The calls module's services. Cheap to clone.
#[derive(Clone)]
pub struct CallsService {
    db: Db,
    bus: EventBus,
    source: Arc<dyn CallSource>,
    default_org: Arc<DefaultOrg>,
    queue: Queue,
    schedule: Arc<ReportSchedule>,
    settings: Arc<Value>,
}

impl CallsService {
    /// Services over `db`, counting with `source`, generating reports on `schedule`.
    pub fn new(
        db: Db,
        bus: EventBus,
        queue: Queue,
        source: Arc<dyn CallSource>,
        default_org: DefaultOrg,
        schedule: ReportSchedule,
    ) -> Self {
        Self {
            db,
            bus,
            source,
            default_org: Arc::new(default_org),
            queue,
            schedule: Arc::new(schedule),
            settings: Arc::new(Value::Null),
        }
    }

    /// With `settings`, what `/debug-config` shows (no secret in it).
    pub fn with_settings(mut self, settings: Value) -> Self {
        self.settings = Arc::new(settings);
        self
    }

    /// The module's settings (no secret), the source and the default organisation.
    pub fn debug_config(&self) -> Value {
        let d = &self.default_org;
        json!({
            "source": self.source.kind(),
            "org_id": d.org_id, "client_name": d.name, "broker_node_persistent_id": d.node_persistent_id,
            "default_timezone": d.timezone, "excluded_user_numbers": d.excluded_numbers,
            "scheduler": {"enabled": self.schedule.enabled, "hour": self.schedule.hour, "minute": self.schedule.minute,
                "catchup_days": self.schedule.catchup_days},
            "settings": *self.settings,
        })
    }

    /// The configured broker node (`BROKER_NODE_PERSISTENT_ID`).
    pub fn default_node(&self) -> Option<&str> {
        self.default_org.node_persistent_id.as_deref()
    }

    /// The columns of one of the source's four tables.
    pub async fn describe_table(&self, name: &str) -> Result<Value, CallsError> {
        let table = crate::metrics::SourceTable::parse(name).ok_or_else(|| {
            CallsError::invalid(
                "table_name",
                "one of public_node_outputs, public_runs, public_sessions, public_nodes",
            )
        })?;
        let columns = self.source.describe(table).await?;
        Ok(json!({
            "table": table.name(), "source": self.source.kind(),
            "columns": columns.into_iter().map(|(name, kind)| json!({"name": name, "type": kind})).collect::<Vec<_>>(),
        }))
    }

    /// Node outputs of a node in the last `days` days.
    pub async fn node_count(&self, node_persistent_id: &str, days: i64) -> Result<Value, CallsError> {
        let since = now_ms() - days * 86_400_000;
        let count = self.source.node_output_count(node_persistent_id, since).await?;
        Ok(json!({"node_persistent_id": node_persistent_id, "days": days, "count": count}))
    }

    /// The organisations whose sessions a node's outputs belong to, in the last `days` days.
    pub async fn node_orgs(&self, node_persistent_id: &str, days: i64) -> Result<Value, CallsError> {
        let since = now_ms() - days * 86_400_000;
        let orgs = self.source.node_orgs(node_persistent_id, since).await?;
        Ok(json!({
            "node_persistent_id": node_persistent_id, "days": days,
            "orgs": orgs.into_iter().map(|(org_id, runs)| json!({"org_id": org_id, "runs": runs})).collect::<Vec<_>>(),
        }))
    }

    /// When reports are generated.
    pub fn report_schedule(&self) -> &ReportSchedule {
        &self.schedule
    }

    /// The name of `org_id`'s daily schedule.
    pub fn schedule_name(org_id: &str) -> String {
        format!("calls.daily_report:{org_id}")
    }

    /// Puts `org`'s daily schedule in step with it, in the caller's transaction: added, or moved
    /// to its zone, when active; removed when not.
    async fn sync_schedule(&self, conn: &mut sqlx::AnyConnection, org: &Org) -> Result<(), CallsError> {
        let name = Self::schedule_name(&org.org_id);
        if !self.schedule.enabled || !org.is_active {
            scheduler::remove_in(conn, &name).await?;
            return Ok(());
        }
        let tz = parse_timezone(&org.timezone)?;
        let job = GenerateReport {
            org_id: org.org_id.clone(),
            date: None,
            run_type: RunType::Daily,
            force: false,
            scheduled_for: None,
        };
        let cron = format!("{} {} * * *", self.schedule.minute, self.schedule.hour);
        let spec = ScheduleSpec::of(name, &cron, tz, &job)?;
        scheduler::upsert_in(conn, &spec, "calls").await?;
        Ok(())
    }

    /// At start: every organisation's schedule in step, and the catch-up queued.
    pub async fn start_schedules(&self) -> Result<(), CallsError> {
        let orgs = self.list_orgs(false).await?;
        let mut tx = self.db.begin().await?;
        for org in &orgs {
            self.sync_schedule(&mut tx, org).await?;
        }
        if self.schedule.enabled && self.schedule.catchup_days > 0 {
            self.queue.push(&mut tx, &crate::jobs::CatchUp { days: self.schedule.catchup_days }).await?;
        }
        tx.commit().await?;
        self.queue.wake();
        Ok(())
    }

    /// Generates and stores `org`'s report of `date`, unless stored already (and not `force`);
    /// answers the report's id and whether it was written now.
    pub async fn generate_report(
        &self,
        org: &Org,
        date: NaiveDate,
        force: bool,
    ) -> Result<(i64, bool), CallsError> {
        let day = date.format("%Y-%m-%d").to_string();
        if !force {
            let mut conn = self.db.reader().acquire().await?;
            if let Some(stored) = store::reports::get(&mut conn, &org.org_id, Some(&day)).await? {
                return Ok((stored.id, false));
            }
        }
        let (tz, window) = self.day(org, Some(date), None)?;
        let mut report = self.daily_report(org, tz, &window).await?;
        report["metadata"] = json!({
            "org_id": org.org_id,
            "org_name": org.name,
            "generated_at": iso(&Utc::now().with_timezone(&tz)),
        });
        let mut conn = self.db.writer().acquire().await?;
        let id = store::reports::save(&mut conn, &org.org_id, &day, &report, now_ms()).await?;
        Ok((id, true))
    }

    /// The day a generation job is for: its date, or the day before it was due (or now) in the
    /// organisation's zone.
    fn job_day(org: &Org, job: &GenerateReport) -> Result<NaiveDate, CallsError> {
        if let Some(date) = &job.date {
            return NaiveDate::parse_from_str(date, "%Y-%m-%d")
                .map_err(|_| CallsError::invalid("date", "must be YYYY-MM-DD"));
        }
        let tz = parse_timezone(&org.timezone)?;
        let due = job
            .scheduled_for
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
        Ok(due.with_timezone(&tz).date_naive() - Duration::days(1))
    }

    /// Runs a generation job; `true` when a report was written.
    pub async fn generate_for_job(&self, job: &GenerateReport) -> Result<bool, CallsError> {
        let org = self.org(&job.org_id).await?;
        let date = Self::job_day(&org, job)?;
        Ok(self.generate_report(&org, date, job.force).await?.1)
    }

    /// Generates the missing reports of the last `days` days of every active organisation;
    /// answers how many were written and what failed.
    pub async fn catch_up(&self, days: u32, lease: &JobLease) -> Result<(i64, Vec<String>), CallsError> {
        let (mut generated, mut failures) = (0, Vec::new());
        for org in self.list_orgs(true).await? {
            let tz = parse_timezone(&org.timezone)?;
            let today = Utc::now().with_timezone(&tz).date_naive();
            for back in 1..=i64::from(days) {
                if lease.should_stop() {
                    return Err(CallsError::Internal(sightline_platform::queue::Interrupted.into()));
                }
                let date = today - Duration::days(back);
                match self.generate_report(&org, date, false).await {
                    Ok((_, written)) => generated += i64::from(written),
                    Err(e) => failures.push(format!("{} {date}: {e}", org.org_id)),
                }
            }
        }
        Ok((generated, failures))
    }

    /// Records a generation run.
    pub async fn record_run(
        &self,
        run_type: RunType,
        status: &str,
        org_id: Option<&str>,
        started_at: i64,
        generated: i64,
        error: Option<&str>,
    ) -> Result<(), CallsError> {
        let mut conn = self.db.writer().acquire().await?;
        let run = store::reports::NewRun {
            run_type: run_type.as_str(),
            status,
            org_id,
            started_at,
            completed_at: now_ms(),
            reports_generated: generated,
            error,
        };
        store::reports::record_run(&mut conn, &run).await?;
        Ok(())
    }

    /// The newest generation runs.
    pub async fn recent_runs(&self, limit: i64) -> Result<Vec<ReportRun>, CallsError> {
        let mut conn = self.db.reader().acquire().await?;
        Ok(store::reports::recent_runs(&mut conn, limit).await?)
    }

    /// Stored report summaries, newest first.
    pub async fn reports(
        &self,
        org: &Org,
        range: Option<(NaiveDate, NaiveDate)>,
        limit: i64,
    ) -> Result<Vec<ReportSummary>, CallsError> {
        let range = range.map(|(a, b)| (a.format("%Y-%m-%d").to_string(), b.format("%Y-%m-%d").to_string()));
        let mut conn = self.db.reader().acquire().await?;
        let range = range.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        Ok(store::reports::list(&mut conn, &org.org_id, range, limit).await?)
    }

    /// The stored days of an organisation, oldest first.
    pub async fn report_dates(&self, org: &Org) -> Result<Vec<String>, CallsError> {
        let mut conn = self.db.reader().acquire().await?;
        Ok(store::reports::dates(&mut conn, &org.org_id).await?)
    }

    /// The scheduler's state in the original's keys: enabled, the organisations' schedules
    /// (`jobs`) with their next runs, the last successful run and the recent ones.
    pub async fn scheduler_status(&self) -> Result<Value, CallsError> {
        let mut conn = self.db.reader().acquire().await?;
        let schedules = scheduler::list_owned(&mut conn, "calls").await?;
        let runs = store::reports::recent_runs(&mut conn, 10).await?;
        let last_success = runs.iter().find(|r| r.status == "success").cloned();
        let s = &self.schedule;
        Ok(json!({
            "enabled": s.enabled,
            "running": s.enabled,
            "scheduled_time": format!("{:02}:{:02}", s.hour, s.minute),
            "timezone": "each organisation's own",
            "next_run": schedules.first().map(|j| j.next_run_at.clone()),
            "jobs": schedules.iter().map(|j| json!({
                "id": j.name, "name": format!("Daily report ({})", j.name.trim_start_matches("calls.daily_report:")),
                "next_run_time": j.next_run_at, "timezone": j.timezone,
            })).collect::<Vec<_>>(),
            "last_successful_run": last_success,
            "recent_runs": runs,
            "catchup_days": s.catchup_days,
        }))
    }

    /// Healthy unless enabled without schedules for active organisations, or 2 of the last 3
    /// runs failed.
    pub async fn scheduler_health(&self) -> Result<Value, CallsError> {
        let mut issues = Vec::new();
        let mut conn = self.db.reader().acquire().await?;
        let runs = store::reports::recent_runs(&mut conn, 3).await?;
        let schedules = scheduler::list_owned(&mut conn, "calls").await?;
        drop(conn);
        let active = self.list_orgs(true).await?;
        if self.schedule.enabled && schedules.len() < active.len() {
            issues.push(format!("{} active organisations but {} schedules", active.len(), schedules.len()));
        }
        if runs.iter().filter(|r| r.status == "error").count() >= 2 {
            issues.push("2 or more of the last 3 runs failed".to_owned());
        }
        Ok(json!({
            "healthy": issues.is_empty(),
            "issues": issues,
            "scheduler": {"enabled": self.schedule.enabled, "schedules": schedules.len()},
            "database": "ok",
            "recent_runs": runs,
        }))
    }

    /// Refuses a day of `org` that is not over yet in its zone (its report would be partial and
    /// kept), or a range longer than three years.
    pub fn check_days(
        &self,
        org: &Org,
        field: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Result<(), CallsError> {
        let tz = parse_timezone(&org.timezone)?;
        let today = Utc::now().with_timezone(&tz).date_naive();
        if end >= today {
            return Err(CallsError::invalid(field, format!("{end} is not over yet in {}", tz.name())));
        }
        if (end - start).num_days() >= MAX_BACKFILL_DAYS {
            return Err(CallsError::invalid(
                "start_date",
                format!("at most {MAX_BACKFILL_DAYS} days at once"),
            ));
        }
        Ok(())
    }

    /// Makes the reports of `start..=end` now (a stored one kept unless `force`), in the
    /// original's answer: `{success, org_id, start_date, end_date, total_days, successful,
    /// failed, results: [{date, success}]}`; the run is recorded.
    pub async fn backfill_now(
        &self,
        org: &Org,
        start: NaiveDate,
        end: NaiveDate,
        force: bool,
    ) -> Result<Value, CallsError> {
        let started = now_ms();
        let (mut results, mut successful, mut failed, mut generated) = (Vec::new(), 0, 0, 0);
        let mut day = start;
        while day <= end {
            let outcome = self.generate_report(org, day, force).await;
            match &outcome {
                Ok((_, written)) => {
                    successful += 1;
                    generated += i64::from(*written);
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(org_id = %org.org_id, date = %day, error = %error_chain(e), "calls.backfill_day_failed");
                }
            }
            results.push(json!({"date": day.format("%Y-%m-%d").to_string(), "success": outcome.is_ok()}));
            day += Duration::days(1);
        }
        let status = match (failed, successful) {
            (0, _) => "success",
            (_, 0) => "error",
            _ => "partial",
        };
        self.record_run(RunType::Backfill, status, Some(&org.org_id), started, generated, None).await?;
        Ok(json!({
            "success": failed == 0, "org_id": org.org_id,
            "start_date": start.format("%Y-%m-%d").to_string(), "end_date": end.format("%Y-%m-%d").to_string(),
            "total_days": results.len(), "successful": successful, "failed": failed, "results": results,
        }))
    }

    /// Records a backfill of `start..=end` and queues its job; it runs day by day, keeping its
    /// progress, and resumes where it stopped.
    pub async fn start_backfill(
        &self,
        context: &RequestContext,
        org: &Org,
        start: NaiveDate,
        end: NaiveDate,
        force: bool,
    ) -> Result<Backfill, CallsError> {
        let day = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
        let backfill = Backfill {
            id: format!("bf_{}", uuid::Uuid::new_v4().simple()),
            org_id: org.org_id.clone(),
            start_date: day(start),
            end_date: day(end),
            force,
            next_date: day(start),
            days_total: (end - start).num_days() + 1,
            days_done: 0,
            generated: 0,
            failed: 0,
            status: "queued".into(),
            error: None,
            created_by: Some(context.actor.name.clone()),
            created_at: String::new(),
            updated_at: String::new(),
        };
        let mut tx = self.db.begin().await?;
        store::backfills::insert(&mut tx, &backfill, now_ms()).await?;
        self.queue.push(&mut tx, &crate::jobs::RunBackfill { backfill_id: backfill.id.clone() }).await?;
        let event = DomainEvent::new("calls.backfill_started", "calls_backfill", &backfill.id)
            .after(serde_json::to_value(&backfill).unwrap_or_default())
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        self.queue.wake();
        self.backfill(&backfill.id).await
    }

    /// A backfill and its progress.
    pub async fn backfill(&self, id: &str) -> Result<Backfill, CallsError> {
        let mut conn = self.db.reader().acquire().await?;
        store::backfills::get(&mut conn, id)
            .await?
            .ok_or_else(|| CallsError::NotFound(format!("Backfill {id} not found")))
    }

    /// Runs a backfill from its next day to its end, committing each day's progress; stops
    /// (to resume later) when the lease asks.
    pub async fn run_backfill(&self, id: &str, lease: &JobLease) -> Result<Backfill, CallsError> {
        let mut backfill = self.backfill(id).await?;
        let org = self.org(&backfill.org_id).await?;
        let end = NaiveDate::parse_from_str(&backfill.end_date, "%Y-%m-%d").map_err(anyhow::Error::from)?;
        let mut day =
            NaiveDate::parse_from_str(&backfill.next_date, "%Y-%m-%d").map_err(anyhow::Error::from)?;
        let started = now_ms();
        while day <= end {
            if lease.should_stop() {
                return Err(CallsError::Internal(sightline_platform::queue::Interrupted.into()));
            }
            let outcome = self.generate_report(&org, day, backfill.force).await;
            if let Err(e @ (CallsError::Source(_) | CallsError::SourceFailed(_))) = outcome {
                // The source is failing, not this day: the queue retries with backoff, and the
                // run resumes at this day.
                return Err(e);
            }
            let (written, error) = match &outcome {
                Ok((_, written)) => (*written, None),
                Err(e) => {
                    tracing::warn!(backfill = %id, date = %day, error = %error_chain(e), "calls.backfill_day_failed");
                    (false, Some(format!("{day}: {e}")))
                }
            };
            let from = day.format("%Y-%m-%d").to_string();
            day += Duration::days(1);
            let mut conn = self.db.writer().acquire().await?;
            let next = day.format("%Y-%m-%d").to_string();
            if !store::backfills::advance(&mut conn, id, &from, &next, written, error.as_deref(), now_ms())
                .await?
            {
                // Another worker moved this backfill on (this one lost its lease): leave it.
                return Err(CallsError::Internal(sightline_platform::queue::Interrupted.into()));
            }
        }
        backfill = self.backfill(id).await?;
        let status = if backfill.failed == 0 { "succeeded" } else { "failed" };
        let run_status = match (backfill.failed, backfill.days_total) {
            (0, _) => "success",
            (f, t) if f == t => "error",
            _ => "partial",
        };
        let mut conn = self.db.writer().acquire().await?;
        store::backfills::finish(&mut conn, id, status, now_ms()).await?;
        drop(conn);
        self.record_run(
            RunType::Backfill,
            run_status,
            Some(&org.org_id),
            started,
            backfill.generated,
            backfill.error.as_deref(),
        )
        .await?;
        self.backfill(id).await
    }

    /// A stored report: of `date`, or the newest.
    pub async fn stored_report(
        &self,
        org: &Org,
        date: Option<NaiveDate>,
    ) -> Result<StoredReport, CallsError> {
        let day = date.map(|d| d.format("%Y-%m-%d").to_string());
        let mut conn = self.db.reader().acquire().await?;
        store::reports::get(&mut conn, &org.org_id, day.as_deref()).await?.ok_or_else(|| match &day {
            Some(day) => CallsError::NotFound(format!("No report found for {day}")),
            None => CallsError::NotFound("No reports found".into()),
        })
    }

    /// Creates the configured organisation at start when it does not exist (the original's
    /// seeding). An existing one is left as it is: changes made through the API survive a
    /// restart.
    pub async fn seed_default_org(&self) -> Result<(), CallsError> {
        let d = &self.default_org;
        let (Some(org_id), Some(node)) = (&d.org_id, &d.node_persistent_id) else { return Ok(()) };
        let timezone = parse_timezone(&d.timezone)?;
        let mut conn = self.db.writer().acquire().await?;
        let org = Org {
            id: 0,
            org_id: org_id.clone(),
            name: d.name.clone(),
            node_persistent_id: node.clone(),
            timezone: timezone.name().to_owned(),
            is_active: true,
            excluded_numbers: d.excluded_numbers.clone(),
            created_at: String::new(),
        };
        if store::orgs::get(&mut conn, org_id).await?.is_none() {
            store::orgs::insert(&mut conn, &org, now_ms()).await?;
        }
        Ok(())
    }

    /// Organisations by name.
    pub async fn list_orgs(&self, active_only: bool) -> Result<Vec<Org>, CallsError> {
        let mut conn = self.db.reader().acquire().await?;
        Ok(store::orgs::list(&mut conn, active_only).await?)
    }

    /// One organisation.
    pub async fn org(&self, org_id: &str) -> Result<Org, CallsError> {
        let mut conn = self.db.reader().acquire().await?;
        store::orgs::get(&mut conn, org_id)
            .await?
            .ok_or_else(|| CallsError::NotFound(format!("Organization {org_id} not found")))
    }

    /// Adds an organisation.
    pub async fn create_org(&self, context: &RequestContext, new: NewOrg) -> Result<Org, CallsError> {
        let org = Org {
            id: 0,
            org_id: new.org_id,
            name: new.name,
            node_persistent_id: new.node_persistent_id,
            timezone: new.timezone.name().to_owned(),
            is_active: true,
            excluded_numbers: new.excluded_numbers,
            created_at: String::new(),
        };
        let mut tx = self.db.begin().await?;
        let Some(created) = store::orgs::insert(&mut tx, &org, now_ms()).await? else {
            return Err(CallsError::Conflict(format!("Organization {} already exists", org.org_id)));
        };
        self.sync_schedule(&mut tx, &created).await?;
        let event = DomainEvent::new("calls.org_created", "calls_org", &created.org_id)
            .after(serde_json::to_value(&created).unwrap_or_default())
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// Changes an organisation.
    pub async fn update_org(
        &self,
        context: &RequestContext,
        org_id: &str,
        change: OrgChange,
    ) -> Result<Org, CallsError> {
        let mut tx = self.db.begin().await?;
        let before = store::orgs::get(&mut tx, org_id)
            .await?
            .ok_or_else(|| CallsError::NotFound(format!("Organization {org_id} not found")))?;
        let mut after = before.clone();
        if let Some(name) = change.name {
            after.name = name;
        }
        if let Some(node) = change.node_persistent_id {
            after.node_persistent_id = node;
        }
        if let Some(tz) = change.timezone {
            after.timezone = tz.name().to_owned();
        }
        if let Some(active) = change.is_active {
            after.is_active = active;
        }
        if let Some(numbers) = change.excluded_numbers {
            after.excluded_numbers = numbers;
        }
        store::orgs::update(&mut tx, &after, now_ms()).await?;
        self.sync_schedule(&mut tx, &after).await?;
        let event = DomainEvent::new("calls.org_updated", "calls_org", org_id)
            .before(serde_json::to_value(&before).unwrap_or_default())
            .after(serde_json::to_value(&after).unwrap_or_default())
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Applies a newline-delimited JSON batch to the embedded store, all of it or (when a line
    /// is bad) none of it.
    pub async fn ingest(&self, context: &RequestContext, body: &str) -> Result<IngestSummary, CallsError> {
        let records = ingest::parse_batch(body).map_err(CallsError::Invalid)?;
        let mut tx = self.db.begin().await?;
        let summary = store::calls::upsert(&mut tx, &records).await?;
        let event = DomainEvent::new("calls.ingested", "calls_batch", format!("{} records", records.len()))
            .after(serde_json::to_value(&summary).unwrap_or_default())
            .within(context);
        self.bus.publish(&mut tx, vec![event]).await?;
        tx.commit().await?;
        Ok(summary)
    }

    /// The organisation named, else the configured one.
    pub async fn org_or_default(&self, org_id: Option<&str>) -> Result<Org, CallsError> {
        match org_id.or(self.default_org.org_id.as_deref()) {
            Some(id) => self.org(id).await,
            None => {
                Err(CallsError::invalid("org_id", "required: no default organisation (ORG_ID) is configured"))
            }
        }
    }

    /// The window of `start_date`/`end_date` (RFC 3339, or dates and naive times in the
    /// organisation's zone); by default the last 30 days.
    pub fn window(&self, org: &Org, start: Option<&str>, end: Option<&str>) -> Result<Window, CallsError> {
        let tz = parse_timezone(&org.timezone)?;
        let now = Utc::now().with_timezone(&tz);
        let start_at = start.map(|s| parse_instant(s, tz, "start_date")).transpose()?;
        let end_at = end.map(|s| parse_instant(s, tz, "end_date")).transpose()?;
        let (start, end) = match (start_at, end_at) {
            (Some(s), Some(e)) => (s, e),
            (Some(s), None) => (s, now),
            (None, Some(e)) => (e - Duration::days(30), e),
            (None, None) => (now - Duration::days(30), now),
        };
        if start >= end {
            return Err(CallsError::invalid("end_date", "must be after start_date"));
        }
        Ok(Window { start, end })
    }

    /// The scope of `org` over `window`.
    pub fn scope(org: &Org, window: &Window) -> Scope {
        Scope {
            org_id: org.org_id.clone(),
            node_persistent_id: org.node_persistent_id.clone(),
            start_ms: window.start.timestamp_millis(),
            end_ms: window.end.timestamp_millis(),
            excluded_numbers: org.excluded_numbers.clone(),
        }
    }

    /// The rules over the configured source in `scope`.
    pub fn metrics<'a>(&'a self, scope: &'a Scope) -> Metrics<'a> {
        Metrics::new(self.source.as_ref(), scope)
    }

    /// The day `date` (default: yesterday) of `org` in zone `tz` (default: the organisation's).
    pub fn day(
        &self,
        org: &Org,
        date: Option<NaiveDate>,
        tz: Option<&str>,
    ) -> Result<(Tz, Window), CallsError> {
        let tz = parse_timezone(tz.unwrap_or(&org.timezone))?;
        let date = date.unwrap_or_else(|| Utc::now().with_timezone(&tz).date_naive() - Duration::days(1));
        Ok((tz, day_window(tz, date)))
    }

    /// The original's daily report for `org` over `window`: date range, KPIs and breakdowns.
    pub async fn daily_report(&self, org: &Org, tz: Tz, window: &Window) -> Result<Value, CallsError> {
        let scope = Self::scope(org, window);
        let m = self.metrics(&scope);
        let classification = m.call_classification().await?;
        let with_cnq = m.non_convertible(true).await?;
        let without_cnq = m.non_convertible(false).await?;
        let cnq = m.carrier_not_qualified().await?;
        let over_calls = m.transfer_over_calls().await?;
        let booking = m.transferred_for_booking().await?;
        let volume = m.calls_and_duration().await?;
        let classified = with_cnq.total_calls;
        let nonzero = |v: Value, total: i64| if total == 0 { Value::Null } else { v };
        Ok(json!({
            "date_range": {"tz": tz.name(), "start_date": iso(&window.start), "end_date": iso(&window.end)},
            "kpis": {
                "total_calls": volume.total_calls,
                "classified_calls": classified,
                "total_duration_hours": volume.total_duration,
                "avg_minutes_per_call": volume.avg_minutes_per_call,
                "success_rate_percent": Metrics::success_rate(&classification),
                "non_convertible_calls_with_carrier_not_qualified": nonzero(json!({
                    "count": with_cnq.non_convertible_calls_count, "total_calls": with_cnq.total_calls,
                    "percentage": with_cnq.non_convertible_calls_percentage}), classified),
                "non_convertible_calls_without_carrier_not_qualified": nonzero(json!({
                    "count": without_cnq.non_convertible_calls_count, "total_calls": without_cnq.total_calls,
                    "percentage": without_cnq.non_convertible_calls_percentage}), classified),
                "carrier_not_qualified": nonzero(json!({
                    "count": cnq.carrier_not_qualified_count, "total_calls": cnq.total_calls,
                    "percentage": cnq.carrier_not_qualified_percentage}), classified),
                "carrier_transfer_over_total_transfer_attempts": m.transfer_over_attempts().await?,
                "carrier_transfer_over_total_call_attempts": nonzero(json!(over_calls), over_calls.total_call_attempts),
                "successfully_transferred_for_booking": nonzero(json!(booking), booking.total_calls),
            },
            "breakdowns": {
                "call_stage": m.call_stage().await?,
                "call_classification": classification,
                "load_status": m.load_status().await?,
                "pricing_notes": m.pricing().await?,
                "carrier_end_state": m.carrier_end_state().await?,
            },
        }))
    }
}

/// An IANA zone name, checked.
pub fn parse_timezone(name: &str) -> Result<Tz, CallsError> {
    name.parse::<Tz>()
        .map_err(|_| CallsError::invalid("timezone", format!("{name:?} is not an IANA time zone")))
}

/// The day `date` in `tz`: from its first instant to the next day's (23 or 25 hours across a
/// daylight-saving change).
pub fn day_window(tz: Tz, date: NaiveDate) -> Window {
    Window { start: local_midnight(tz, date), end: local_midnight(tz, date + Duration::days(1)) }
}

/// Midnight starting `date` in `tz` (the first instant of the day where a change skips it).
fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Tz> {
    let midnight = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(midnight + Duration::hours(1))).earliest())
        .expect("a day has an hour")
}

/// An instant: RFC 3339, or a date or naive time in `tz`.
fn parse_instant(text: &str, tz: Tz, field: &str) -> Result<DateTime<Tz>, CallsError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&tz));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(local_midnight(tz, d));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            if let Some(t) = tz.from_local_datetime(&t).earliest() {
                return Ok(t);
            }
        }
    }
    Err(CallsError::invalid(field, format!("{text:?} is not a date (YYYY-MM-DD) or an ISO 8601 time")))
}

/// An error with its causes, for logs.
fn error_chain(e: &CallsError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_follow_daylight_saving_changes() {
        let chicago: Tz = "America/Chicago".parse().unwrap();
        let hours = |d: NaiveDate| {
            let w = day_window(chicago, d);
            ((w.end - w.start).num_hours(), w.to_json())
        };
        let (fall, json) = hours(NaiveDate::from_ymd_opt(2025, 11, 2).unwrap());
        assert_eq!(fall, 25);
        assert_eq!(json["start_date"], "2025-11-02T00:00:00-05:00");
        assert_eq!(json["end_date"], "2025-11-03T00:00:00-06:00");
        assert_eq!(hours(NaiveDate::from_ymd_opt(2025, 3, 9).unwrap()).0, 23);
        assert_eq!(hours(NaiveDate::from_ymd_opt(2025, 12, 15).unwrap()).0, 24);
        // A zone whose midnight is skipped (Santiago's spring change) starts the day at 01:00.
        let santiago: Tz = "America/Santiago".parse().unwrap();
        let w = day_window(santiago, NaiveDate::from_ymd_opt(2025, 9, 7).unwrap());
        assert_eq!(w.start.format("%H:%M").to_string(), "01:00");
    }
}
