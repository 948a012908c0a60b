//! Stored reports: generation (by hand, scheduled, caught up), the organisations' schedules,
//! recorded runs, backfills, and the scheduler's status.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{json, Value};
use sightline_platform::audit::DomainEvent;
use sightline_platform::db::now_ms;
use sightline_platform::queue::JobLease;
use sightline_platform::scheduler::{self, ScheduleSpec};
use sightline_platform::RequestContext;

use crate::jobs::GenerateReport;
use crate::store::backfills::Backfill;
use crate::store::reports::{ReportRun, ReportSummary, StoredReport};

use crate::error::CallsError;
use crate::model::Org;
use crate::store;

use super::{error_chain, iso, parse_timezone, CallsService, ReportSchedule, RunType, MAX_BACKFILL_DAYS};

/// How late a schedule may be before the health check calls it overdue.
const OVERDUE_MINUTES: i64 = 5;

impl CallsService {
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
    pub(super) async fn sync_schedule(
        &self,
        conn: &mut sqlx::AnyConnection,
        org: &Org,
    ) -> Result<(), CallsError> {
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

    /// Healthy unless enabled without schedules for active organisations, a schedule is overdue
    /// (no process ticks the scheduler), or 2 of the last 3 runs failed.
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
        // A schedule long past its time means no process is ticking the scheduler.
        let late = Utc::now() - Duration::minutes(OVERDUE_MINUTES);
        let overdue: Vec<&str> = schedules
            .iter()
            .filter(|s| DateTime::parse_from_rfc3339(&s.next_run_at).is_ok_and(|t| t < late))
            .map(|s| s.name.as_str())
            .collect();
        if !overdue.is_empty() {
            issues.push(format!(
                "{} overdue by more than {OVERDUE_MINUTES} minutes (is a scheduler running?): {}",
                overdue.len(),
                overdue.join(", ")
            ));
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
}
