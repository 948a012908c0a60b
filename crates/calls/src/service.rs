//! What the routes call: organisations, ingest into the embedded store, and the live metrics
//! and daily report over the configured source. Knows no HTTP.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use sightline_platform::audit::{DomainEvent, EventBus};
use sightline_platform::db::now_ms;
use sightline_platform::{Db, RequestContext};

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
}

impl CallsService {
    /// Services over `db`, counting with `source`.
    pub fn new(db: Db, bus: EventBus, source: Arc<dyn CallSource>, default_org: DefaultOrg) -> Self {
        Self { db, bus, source, default_org: Arc::new(default_org) }
    }

    /// Creates or updates the configured organisation at start (the original's seeding).
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
        match store::orgs::get(&mut conn, org_id).await? {
            Some(existing) => {
                store::orgs::update(&mut conn, &Org { is_active: existing.is_active, ..org }, now_ms())
                    .await?
            }
            None => {
                store::orgs::insert(&mut conn, &org, now_ms()).await?;
            }
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
        let start = local_midnight(tz, date);
        let end = local_midnight(tz, date + Duration::days(1));
        Ok((tz, Window { start, end }))
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
