//! What the routes call: organisations, ingest into the embedded store, and the live metrics
//! and daily report over the configured source ([`reports`]: stored reports, schedules, runs and
//! backfills). Knows no HTTP.

mod reports;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::db::now_ms;
use sightline_platform::queue::Queue;
use sightline_platform::{Db, RequestContext};
use utoipa::ToSchema;

use crate::error::CallsError;
use crate::ingest;
use crate::metrics::{CallSource, Metrics};
use crate::model::{IngestSummary, NodeOutputRow, Org};
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

/// Most node outputs `/daily-node-outputs` lists at once.
pub const MAX_NODE_OUTPUTS: i64 = 5000;

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

    /// Up to `limit` outputs of `node` (default: the organisation's) in `window`, newest first.
    pub async fn node_outputs(
        &self,
        org: &Org,
        node: Option<&str>,
        window: &Window,
        limit: i64,
        include_flat_data: bool,
    ) -> Result<Vec<NodeOutputRow>, CallsError> {
        if !(1..=MAX_NODE_OUTPUTS).contains(&limit) {
            return Err(CallsError::invalid("limit", format!("must be 1 to {MAX_NODE_OUTPUTS}")));
        }
        let mut scope = Self::scope(org, window);
        if let Some(node) = node {
            scope.node_persistent_id = node.to_owned();
        }
        let mut rows = self.source.node_outputs(&scope, limit).await?;
        // A run's outputs in one order whatever the source's text of their `flat_data`.
        rows.sort_by_cached_key(|r| {
            let canonical = serde_json::from_str::<Value>(&r.flat_data)
                .map_or_else(|_| r.flat_data.clone(), |v| v.to_string());
            (std::cmp::Reverse(r.run_ms), r.run_id.clone(), canonical)
        });
        let rows = rows.into_iter().map(|raw| NodeOutputRow::new(raw, include_flat_data)).collect();
        Ok(rows)
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
