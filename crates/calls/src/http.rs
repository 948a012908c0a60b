//! Routes of the calls module, on the original's paths: the live `/…-stats` endpoints,
//! `/all-stats` and `/daily-report`; organisations under `/api/orgs`; and the embedded store's
//! ingest, `POST /api/calls/ingest`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sightline_platform::error::{ApiResult, ErrorBody, ErrorCode, FieldError};
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, RequestContext, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

use crate::error::CallsError;
use crate::metrics::{
    CallClassificationShare, CallStageShare, CallsAndDuration, CarrierEndStateShare, CarrierNotQualified,
    CarrierQualificationShare, DurationCarrierAsked, LegacyNonConvertible, LoadNotFound, LoadStatusShare,
    NonConvertible, PricingShare, TransferOverAttempts, TransferOverCalls, TransferredForBooking,
    UniqueLoads,
};
use crate::model::{IngestSummary, Org};
use crate::service::{parse_timezone, CallsService, NewOrg, OrgChange, RunType};
use crate::store::backfills::Backfill;
use crate::store::reports::StoredReport;

/// Each failure's status and stable code.
impl ErrorCode for CallsError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Source(e) => e.status(),
            // ClickHouse's own timeout (code 159) is a gateway timeout; anything else a bad gateway.
            Self::SourceFailed(m) if m.starts_with("Code: 159") => StatusCode::GATEWAY_TIMEOUT,
            Self::SourceFailed(_) => StatusCode::BAD_GATEWAY,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Invalid(_) => "validation_failed",
            Self::Source(e) => e.code(),
            Self::SourceFailed(m) if m.starts_with("Code: 159") => "upstream_timeout",
            Self::SourceFailed(_) => "upstream_error",
            Self::Database(_) | Self::Internal(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            Self::Invalid(errors) => json!(errors),
            Self::Source(e) => e.details(),
            _ => Value::Null,
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Source(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// The organisation and window of a live metric.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Window start: `YYYY-MM-DD` (midnight in the organisation's zone) or ISO 8601. Default: 30 days ago.
    start_date: Option<String>,
    /// Window end (exclusive), the same forms. Default: now.
    end_date: Option<String>,
    /// Organisation; default the configured one (`ORG_ID`).
    org_id: Option<String>,
}

async fn metrics_scope(s: &CallsService, q: &StatsQuery) -> Result<(crate::query::Scope, Value), CallsError> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let window = s.window(&org, q.start_date.as_deref(), q.end_date.as_deref())?;
    Ok((CallsService::scope(&org, &window), window.to_json()))
}

fn no_data() -> CallsError {
    CallsError::NotFound("No data found".into())
}

macro_rules! list_stat {
    ($fn:ident, $path:literal, $body:ty, $doc:literal, $method:ident) => {
        #[doc = $doc]
        #[utoipa::path(get, path = $path, tag = "calls", params(StatsQuery),
                            responses((status = 200, body = Vec<$body>), (status = 422, body = ErrorBody)))]
        async fn $fn(
            State(s): State<CallsService>,
            ApiQuery(q): ApiQuery<StatsQuery>,
        ) -> ApiResult<Json<Vec<$body>>> {
            let (scope, _) = metrics_scope(&s, &q).await?;
            Ok(Json(s.metrics(&scope).$method().await?))
        }
    };
}

list_stat!(call_stage_stats, "/call-stage-stats", CallStageShare, "Runs per call stage.", call_stage);
list_stat!(
    call_classification_stats,
    "/call-classification-stats",
    CallClassificationShare,
    "Runs per call classification.",
    call_classification
);
list_stat!(
    carrier_qualification_stats,
    "/carrier-qualification-stats",
    CarrierQualificationShare,
    "Runs per carrier qualification.",
    carrier_qualification
);
list_stat!(pricing_stats, "/pricing-stats", PricingShare, "Runs per pricing outcome.", pricing);
list_stat!(
    carrier_end_state_stats,
    "/carrier-end-state-stats",
    CarrierEndStateShare,
    "Runs per carrier end state.",
    carrier_end_state
);
list_stat!(
    load_status_stats,
    "/load-status-stats",
    LoadStatusShare,
    "Runs per load status (`[]` when none).",
    load_status
);

/// Loads not found among runs with a load status (404 "No data found" when there are none).
#[utoipa::path(get, path = "/load-not-found-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = LoadNotFound), (status = 404, body = ErrorBody)))]
async fn load_not_found_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<LoadNotFound>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).load_not_found().await?.ok_or_else(no_data)?))
}

/// Carrier-asked transfers over transfer attempts (404 "No data found" when no carrier asked).
#[utoipa::path(get, path = "/carrier-asked-transfer-over-total-transfer-attempts-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = TransferOverAttempts), (status = 404, body = ErrorBody)))]
async fn transfer_over_attempts_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<TransferOverAttempts>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).transfer_over_attempts().await?.ok_or_else(no_data)?))
}

/// Carrier-asked transfers over classified calls.
#[utoipa::path(get, path = "/carrier-asked-transfer-over-total-call-attempts-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = TransferOverCalls)))]
async fn transfer_over_calls_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<TransferOverCalls>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).transfer_over_calls().await?))
}

/// Calls transferred for booking after a price agreement.
#[utoipa::path(get, path = "/successfully-transferred-for-booking-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = TransferredForBooking)))]
async fn transferred_for_booking_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<TransferredForBooking>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).transferred_for_booking().await?))
}

async fn non_convertible(
    s: &CallsService,
    q: &StatsQuery,
    with_cnq: bool,
) -> Result<NonConvertible, CallsError> {
    let (scope, _) = metrics_scope(s, q).await?;
    let answer = s.metrics(&scope).non_convertible(with_cnq).await?;
    if answer.total_calls == 0 {
        return Err(no_data());
    }
    Ok(answer)
}

/// Non-convertible calls, `carrier_not_qualified` counted (404 "No data found" without classified calls).
#[utoipa::path(get, path = "/non-convertible-calls-with-carrier-not-qualified-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = NonConvertible), (status = 404, body = ErrorBody)))]
async fn non_convertible_with_cnq_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<NonConvertible>> {
    Ok(Json(non_convertible(&s, &q, true).await?))
}

/// Non-convertible calls, `carrier_not_qualified` not counted (404 "No data found" without classified calls).
#[utoipa::path(get, path = "/non-convertible-calls-without-carrier-not-qualified-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = NonConvertible), (status = 404, body = ErrorBody)))]
async fn non_convertible_without_cnq_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<NonConvertible>> {
    Ok(Json(non_convertible(&s, &q, false).await?))
}

/// Calls classified `carrier_not_qualified` (404 "No data found" without classified calls).
#[utoipa::path(get, path = "/carrier-not-qualified-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = CarrierNotQualified), (status = 404, body = ErrorBody)))]
async fn carrier_not_qualified_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<CarrierNotQualified>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    let answer = s.metrics(&scope).carrier_not_qualified().await?;
    if answer.total_calls == 0 {
        return Err(no_data().into());
    }
    Ok(Json(answer))
}

/// Calls, their summed duration in hours, and minutes per call (zeros without calls).
#[utoipa::path(get, path = "/total-calls-and-total-duration-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = CallsAndDuration)))]
async fn calls_and_duration_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<CallsAndDuration>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).calls_and_duration().await?))
}

/// The legacy non-convertible share: classified calls whose load was covered or past due, whose
/// carrier could not or would not take it, or that were too expensive, over all calls.
#[utoipa::path(get, path = "/percent-non-convertible-calls-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = LegacyNonConvertible)))]
async fn legacy_non_convertible_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<LegacyNonConvertible>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).legacy_non_convertible().await?))
}

/// Distinct loads asked about, and calls per load.
#[utoipa::path(get, path = "/number-of-unique-loads-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = UniqueLoads)))]
async fn unique_loads_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<UniqueLoads>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).unique_loads().await?))
}

/// The distinct load reference numbers: `{list_of_unique_loads: [...]}`.
#[utoipa::path(get, path = "/list-of-unique-loads-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = Object)))]
async fn unique_load_list_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<Value>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(json!({"list_of_unique_loads": s.metrics(&scope).unique_load_list().await?})))
}

/// Hours of talk time of calls whose carrier asked for a transfer.
#[utoipa::path(get, path = "/duration-carrier-asked-for-transfer-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = DurationCarrierAsked)))]
async fn duration_carrier_asked_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<DurationCarrierAsked>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).duration_carrier_asked().await?))
}

/// Every breakdown and ratio at once: `{stats, date_range, errors?}`; a part that fails is
/// `null` with its message under `errors`.
#[utoipa::path(get, path = "/all-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = Object)))]
async fn all_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<Value>> {
    let (scope, date_range) = metrics_scope(&s, &q).await?;
    let m = s.metrics(&scope);
    let mut stats = Map::new();
    let mut errors = Map::new();
    let mut put = |key: &str, part: Result<Value, CallsError>| match part {
        Ok(v) => {
            stats.insert(key.to_owned(), v);
        }
        Err(e) => {
            tracing::warn!(part = key, error = %e, "calls.all_stats_part_failed");
            stats.insert(key.to_owned(), Value::Null);
            errors.insert(key.to_owned(), json!(e.to_string()));
        }
    };
    put("call_stage_stats", m.call_stage().await.map(|v| json!(v)));
    put(
        "carrier_asked_transfer_over_total_transfer_attempts",
        m.transfer_over_attempts().await.map(|v| json!(v)),
    );
    put("carrier_asked_transfer_over_total_call_attempts", m.transfer_over_calls().await.map(|v| json!(v)));
    put("load_not_found", m.load_not_found().await.map(|v| json!(v)));
    put("load_status", m.load_status().await.map(|v| json!(v)));
    put("successfully_transferred_for_booking", m.transferred_for_booking().await.map(|v| json!(v)));
    put("call_classification", m.call_classification().await.map(|v| json!(v)));
    put("carrier_qualification", m.carrier_qualification().await.map(|v| json!(v)));
    put("pricing", m.pricing().await.map(|v| json!(v)));
    put("carrier_end_state", m.carrier_end_state().await.map(|v| json!(v)));
    put("percent_non_convertible_calls", m.legacy_non_convertible().await.map(|v| json!(v)));
    put("number_of_unique_loads", m.unique_loads().await.map(|v| json!(v)));
    let mut answer = json!({"stats": stats, "date_range": date_range});
    if !errors.is_empty() {
        answer["errors"] = Value::Object(errors);
    }
    Ok(Json(answer))
}

/// The day of a live daily report.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// `YYYY-MM-DD`; default yesterday in `tz`.
    date: Option<String>,
    /// IANA zone of the day; default the organisation's.
    tz: Option<String>,
    /// Organisation; default the configured one.
    org_id: Option<String>,
}

/// The daily report of one day, computed now: `{date_range, kpis, breakdowns}`.
#[utoipa::path(get, path = "/daily-report", tag = "calls", params(DayQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn daily_report(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<DayQuery>,
) -> ApiResult<Json<Value>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let date = q
        .date
        .as_deref()
        .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| CallsError::invalid("date", "must be YYYY-MM-DD"))?;
    let (tz, window) = s.day(&org, date, q.tz.as_deref())?;
    Ok(Json(s.daily_report(&org, tz, &window).await?))
}

/// Whether to list only active organisations.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgsQuery {
    /// Only active ones (default true).
    active_only: Option<bool>,
}

/// Organisations, by name: `{"organizations": [...]}`.
#[utoipa::path(get, path = "/api/orgs", tag = "calls", params(OrgsQuery), responses((status = 200, body = Object)))]
async fn list_orgs(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<OrgsQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"organizations": s.list_orgs(q.active_only.unwrap_or(true)).await?})))
}

/// One organisation.
#[utoipa::path(get, path = "/api/orgs/{org_id}", tag = "calls", params(("org_id" = String, Path, description = "Organisation id")),
    responses((status = 200, body = Org), (status = 404, body = ErrorBody)))]
async fn get_org(State(s): State<CallsService>, Path(org_id): Path<String>) -> ApiResult<Json<Org>> {
    Ok(Json(s.org(&org_id).await?))
}

/// A new organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrg {
    /// Its id in the call data.
    org_id: String,
    /// Display name.
    name: String,
    /// Its broker node's persistent id.
    node_persistent_id: String,
    /// IANA time zone (default `UTC`).
    #[serde(default)]
    timezone: Option<String>,
    /// Caller numbers to leave out (test calls).
    #[serde(default)]
    excluded_numbers: Vec<String>,
}

fn check_id(field: &str, value: &str, errors: &mut Vec<FieldError>) -> String {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 200 || value.chars().any(char::is_control) {
        errors.push(FieldError::new(field, "1 to 200 characters, no control characters"));
    }
    value.to_owned()
}

fn check_numbers(numbers: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if numbers.len() > 1000 || numbers.iter().any(|n| n.trim().is_empty() || n.len() > 64) {
        errors.push(FieldError::new("excluded_numbers", "at most 1000 numbers of 1 to 64 characters"));
    }
    numbers.iter().map(|n| n.trim().to_owned()).collect()
}

/// Add an organisation (409 when its `org_id` exists).
#[utoipa::path(post, path = "/api/orgs", tag = "calls", request_body = CreateOrg,
    responses((status = 201, body = Org), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_org(
    context: RequestContext,
    State(s): State<CallsService>,
    ApiJson(body): ApiJson<CreateOrg>,
) -> ApiResult<(StatusCode, Json<Org>)> {
    let mut errors = Vec::new();
    let org_id = check_id("org_id", &body.org_id, &mut errors);
    let name = check_id("name", &body.name, &mut errors);
    let node_persistent_id = check_id("node_persistent_id", &body.node_persistent_id, &mut errors);
    let excluded_numbers = check_numbers(&body.excluded_numbers, &mut errors);
    let timezone = match parse_timezone(body.timezone.as_deref().unwrap_or("UTC")) {
        Ok(tz) => Some(tz),
        Err(CallsError::Invalid(mut e)) => {
            errors.append(&mut e);
            None
        }
        Err(e) => return Err(e.into()),
    };
    let Some(timezone) = timezone.filter(|_| errors.is_empty()) else {
        return Err(CallsError::Invalid(errors).into());
    };
    let new = NewOrg { org_id, name, node_persistent_id, timezone, excluded_numbers };
    Ok((StatusCode::CREATED, Json(s.create_org(&context, new).await?)))
}

/// A change to an organisation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrg {
    /// New name.
    name: Option<String>,
    /// New broker node.
    node_persistent_id: Option<String>,
    /// New IANA time zone.
    timezone: Option<String>,
    /// Active (reports generated) or not.
    is_active: Option<bool>,
    /// New test numbers.
    excluded_numbers: Option<Vec<String>>,
}

/// Change an organisation.
#[utoipa::path(patch, path = "/api/orgs/{org_id}", tag = "calls", request_body = UpdateOrg,
    params(("org_id" = String, Path, description = "Organisation id")),
    responses((status = 200, body = Org), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_org(
    context: RequestContext,
    State(s): State<CallsService>,
    Path(org_id): Path<String>,
    ApiJson(body): ApiJson<UpdateOrg>,
) -> ApiResult<Json<Org>> {
    let mut errors = Vec::new();
    let change = OrgChange {
        name: body.name.map(|n| check_id("name", &n, &mut errors)),
        node_persistent_id: body.node_persistent_id.map(|n| check_id("node_persistent_id", &n, &mut errors)),
        timezone: match body.timezone.map(|t| parse_timezone(&t)).transpose() {
            Ok(tz) => tz,
            Err(CallsError::Invalid(mut e)) => {
                errors.append(&mut e);
                None
            }
            Err(e) => return Err(e.into()),
        },
        is_active: body.is_active,
        excluded_numbers: body.excluded_numbers.map(|n| check_numbers(&n, &mut errors)),
    };
    if !errors.is_empty() {
        return Err(CallsError::Invalid(errors).into());
    }
    Ok(Json(s.update_org(&context, &org_id, change).await?))
}

/// Feed the embedded call store: newline-delimited JSON, one record per line with a `type`
/// (`run`, `session`, `node_output`, `node`) and the original's columns. Idempotent on the
/// records' ids. A bad line refuses the whole batch (422 naming each bad line); nothing of it is
/// applied.
#[utoipa::path(post, path = "/api/calls/ingest", tag = "calls",
    request_body(content = String, content_type = "application/x-ndjson"),
    responses((status = 200, body = IngestSummary), (status = 422, body = ErrorBody)))]
async fn ingest(
    context: RequestContext,
    State(s): State<CallsService>,
    body: String,
) -> ApiResult<Json<IngestSummary>> {
    Ok(Json(s.ingest(&context, &body).await?))
}

/// The module's routes.
pub fn router(service: CallsService) -> SecureRouter {
    let read = Access::Permission("calls:read");
    SecureRouter::new()
        .route(read, routes!(call_stage_stats))
        .route(read, routes!(call_classification_stats))
        .route(read, routes!(carrier_qualification_stats))
        .route(read, routes!(pricing_stats))
        .route(read, routes!(carrier_end_state_stats))
        .route(read, routes!(load_status_stats))
        .route(read, routes!(load_not_found_stats))
        .route(read, routes!(transfer_over_attempts_stats))
        .route(read, routes!(transfer_over_calls_stats))
        .route(read, routes!(transferred_for_booking_stats))
        .route(read, routes!(non_convertible_with_cnq_stats))
        .route(read, routes!(non_convertible_without_cnq_stats))
        .route(read, routes!(carrier_not_qualified_stats))
        .route(read, routes!(calls_and_duration_stats))
        .route(read, routes!(all_stats))
        .route(read, routes!(legacy_non_convertible_stats))
        .route(read, routes!(unique_loads_stats))
        .route(read, routes!(unique_load_list_stats))
        .route(read, routes!(duration_carrier_asked_stats))
        .route(read, routes!(daily_report))
        .route(read, routes!(list_orgs))
        .route(read, routes!(get_org))
        .route(Access::Permission("calls:manage"), routes!(create_org))
        .route(Access::Permission("calls:manage"), routes!(update_org))
        .route(Access::Permission("calls:ingest"), routes!(ingest))
        .route(read, routes!(list_reports))
        .route(read, routes!(report_dates))
        .route(read, routes!(latest_report))
        .route(read, routes!(report_of_day))
        .route(Access::Permission("calls:manage"), routes!(generate_reports))
        .route(Access::Permission("calls:manage"), routes!(backfill_reports))
        .route(read, routes!(get_backfill))
        .route(Access::Public, routes!(reports_page))
        .route(Access::Permission("calls:debug"), routes!(debug_config))
        .route(Access::Permission("calls:debug"), routes!(debug_schema))
        .route(Access::Permission("calls:debug"), routes!(debug_node_count))
        .route(Access::Permission("calls:debug"), routes!(debug_node_orgs))
        .route(read, routes!(scheduler_status))
        .route(read, routes!(scheduler_health))
        .with_state(service)
}

/// An organisation, and for lists a range and a count.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsQuery {
    /// Organisation; default the configured one.
    org_id: Option<String>,
    /// Newest reports listed (1 to 366, default 30), when no range is given.
    limit: Option<i64>,
    /// First day listed, `YYYY-MM-DD` (with `end_date`).
    start_date: Option<String>,
    /// Last day listed, inclusive.
    end_date: Option<String>,
}

fn parse_day(field: &str, text: &str) -> Result<NaiveDate, CallsError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| CallsError::invalid(field, "must be YYYY-MM-DD"))
}

/// Stored reports with their summary KPIs, newest first: `{org_id, org_name, count, reports}`.
#[utoipa::path(get, path = "/api/reports", tag = "calls", params(ReportsQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_reports(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<ReportsQuery>,
) -> ApiResult<Json<Value>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let limit = q.limit.unwrap_or(30);
    if !(1..=366).contains(&limit) {
        return Err(CallsError::invalid("limit", "1 to 366").into());
    }
    let range = match (q.start_date.as_deref(), q.end_date.as_deref()) {
        (Some(a), Some(b)) => Some((parse_day("start_date", a)?, parse_day("end_date", b)?)),
        _ => None,
    };
    let reports = s.reports(&org, range, limit).await?;
    Ok(Json(json!({"org_id": org.org_id, "org_name": org.name, "count": reports.len(), "reports": reports})))
}

/// Whose reports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgQuery {
    /// Organisation; default the configured one.
    org_id: Option<String>,
}

/// The days with a stored report: `{org_id, count, date_range, dates}`.
#[utoipa::path(get, path = "/api/reports/dates", tag = "calls", params(OrgQuery), responses((status = 200, body = Object)))]
async fn report_dates(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<Value>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let dates = s.report_dates(&org).await?;
    let range = match (dates.first(), dates.last()) {
        (Some(first), Some(last)) => json!({"start": first, "end": last}),
        _ => Value::Null,
    };
    Ok(Json(json!({"org_id": org.org_id, "count": dates.len(), "date_range": range, "dates": dates})))
}

/// The newest stored report (404 "No reports found").
#[utoipa::path(get, path = "/api/reports/latest", tag = "calls", params(OrgQuery),
    responses((status = 200, body = StoredReport), (status = 404, body = ErrorBody)))]
async fn latest_report(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<StoredReport>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    Ok(Json(s.stored_report(&org, None).await?))
}

/// The stored report of a day (404 "No report found for …").
#[utoipa::path(get, path = "/api/reports/{report_date}", tag = "calls",
    params(("report_date" = String, Path, description = "YYYY-MM-DD"), OrgQuery),
    responses((status = 200, body = StoredReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report_of_day(
    State(s): State<CallsService>,
    Path(report_date): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<StoredReport>> {
    let date = parse_day("report_date", &report_date)?;
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    Ok(Json(s.stored_report(&org, Some(date)).await?))
}

/// What to generate.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// One organisation; absent: every active one.
    #[serde(default)]
    org_id: Option<String>,
    /// `YYYY-MM-DD`; absent: yesterday in each organisation's zone.
    #[serde(default)]
    date: Option<String>,
}

/// Generate and store reports now (a stored one is kept): one organisation's
/// `{success, org_id, date, report_id}`, or every active one's `{success, results, date}`.
#[utoipa::path(post, path = "/api/reports/generate", tag = "calls", request_body = GenerateRequest,
    responses((status = 200, body = Object), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn generate_reports(
    State(s): State<CallsService>,
    body: Option<ApiJson<GenerateRequest>>,
) -> ApiResult<Json<Value>> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let date = body.date.as_deref().map(|d| parse_day("date", d)).transpose()?;
    let shown = date.map_or_else(|| json!("yesterday"), |d| json!(d.format("%Y-%m-%d").to_string()));
    let started = sightline_platform::db::now_ms();
    if let Some(org_id) = body.org_id.as_deref() {
        let org = s.org(org_id).await?;
        let day = match date {
            Some(d) => d,
            None => s.day(&org, None, None)?.1.start.date_naive(),
        };
        s.check_days(&org, "date", day, day)?;
        let outcome = s.generate_report(&org, day, false).await;
        let (status, error) = match &outcome {
            Ok(_) => ("success", None),
            Err(e) => ("error", Some(e.to_string())),
        };
        s.record_run(
            RunType::Manual,
            status,
            Some(&org.org_id),
            started,
            i64::from(matches!(outcome, Ok((_, true)))),
            error.as_deref(),
        )
        .await?;
        return Ok(Json(match outcome {
            Ok((id, _)) => json!({"success": true, "org_id": org.org_id, "date": shown, "report_id": id}),
            Err(e) => json!({"success": false, "org_id": org.org_id, "date": shown, "error": e.to_string()}),
        }));
    }
    let mut results = Vec::new();
    let (mut generated, mut failed) = (0, 0);
    for org in s.list_orgs(true).await? {
        let day = match date {
            Some(d) => d,
            None => s.day(&org, None, None)?.1.start.date_naive(),
        };
        let outcome = match s.check_days(&org, "date", day, day) {
            Ok(()) => s.generate_report(&org, day, false).await,
            Err(e) => Err(e),
        };
        generated += i64::from(matches!(outcome, Ok((_, true))));
        failed += i64::from(outcome.is_err());
        results.push(json!({"org_id": org.org_id, "org_name": org.name, "success": outcome.is_ok()}));
    }
    let status = match (failed, results.len()) {
        (0, _) => "success",
        (f, n) if f as usize == n => "error",
        _ => "partial",
    };
    s.record_run(RunType::Manual, status, None, started, generated, None).await?;
    Ok(Json(json!({"success": failed == 0, "results": results, "date": shown})))
}

/// The report scheduler: enabled, each organisation's schedule and next run, recent runs.
#[utoipa::path(get, path = "/api/scheduler/status", tag = "calls", responses((status = 200, body = Object)))]
async fn scheduler_status(State(s): State<CallsService>) -> ApiResult<Json<Value>> {
    Ok(Json(s.scheduler_status().await?))
}

/// Whether report generation is healthy: `{healthy, issues, scheduler, database, recent_runs}`.
#[utoipa::path(get, path = "/api/scheduler/health", tag = "calls", responses((status = 200, body = Object)))]
async fn scheduler_health(State(s): State<CallsService>) -> ApiResult<Json<Value>> {
    Ok(Json(s.scheduler_health().await?))
}

/// Days a backfill makes within the request (well inside its time limit on ClickHouse too); a
/// longer one runs as a job to follow.
const BACKFILL_NOW_MAX_DAYS: i64 = 7;

/// A backfill.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// Organisation; default the configured one.
    #[serde(default)]
    org_id: Option<String>,
    /// First day, `YYYY-MM-DD`.
    start_date: String,
    /// Last day, inclusive.
    end_date: String,
    /// Make stored reports again.
    #[serde(default)]
    force: bool,
}

/// Make the reports of a range of days that are over (stored ones kept unless `force`). Up to 7
/// days: made now, answered in the original's shape `{success, org_id, start_date, end_date, total_days,
/// successful, failed, results}`. Longer: `202` with the backfill job to follow at
/// `/api/reports/backfills/{id}`; it resumes where it stopped after a crash.
#[utoipa::path(post, path = "/api/reports/backfill", tag = "calls", request_body = BackfillRequest,
    responses((status = 200, body = Object), (status = 202, body = Backfill), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn backfill_reports(
    context: RequestContext,
    State(s): State<CallsService>,
    ApiJson(body): ApiJson<BackfillRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse as _;
    let start = parse_day("start_date", &body.start_date)?;
    let end = parse_day("end_date", &body.end_date)?;
    let org = s.org_or_default(body.org_id.as_deref()).await?;
    if start > end {
        let answer = json!({"success": false, "error": "start_date must be before end_date"});
        return Ok(Json(answer).into_response());
    }
    s.check_days(&org, "end_date", start, end)?;
    if (end - start).num_days() < BACKFILL_NOW_MAX_DAYS {
        return Ok(Json(s.backfill_now(&org, start, end, body.force).await?).into_response());
    }
    let backfill = s.start_backfill(&context, &org, start, end, body.force).await?;
    Ok((StatusCode::ACCEPTED, Json(backfill)).into_response())
}

/// A backfill and its progress (days done of days total).
#[utoipa::path(get, path = "/api/reports/backfills/{id}", tag = "calls",
    params(("id" = String, Path, description = "Backfill id")),
    responses((status = 200, body = Backfill), (status = 404, body = ErrorBody)))]
async fn get_backfill(State(s): State<CallsService>, Path(id): Path<String>) -> ApiResult<Json<Backfill>> {
    Ok(Json(s.backfill(&id).await?))
}

/// The module's settings (no secret in them): the source, the default organisation, the
/// scheduler (admins only).
#[utoipa::path(get, path = "/debug-config", tag = "calls", responses((status = 200, body = Object)))]
async fn debug_config(State(s): State<CallsService>) -> Json<Value> {
    Json(s.debug_config())
}

/// The columns of one of the source's four tables (`public_node_outputs`, `public_runs`,
/// `public_sessions`, `public_nodes`; any other is a 422).
#[utoipa::path(get, path = "/debug-schema/{table_name}", tag = "calls",
    params(("table_name" = String, Path, description = "One of the four tables")),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn debug_schema(
    State(s): State<CallsService>,
    Path(table_name): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(s.describe_table(&table_name).await?))
}

/// A node and a number of days back.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeQuery {
    /// The node; default the configured one.
    node_persistent_id: Option<String>,
    /// Days back (1 to 366).
    days: Option<i64>,
}

fn node_and_days(s: &CallsService, q: &NodeQuery, default_days: i64) -> Result<(String, i64), CallsError> {
    let days = q.days.unwrap_or(default_days);
    if !(1..=366).contains(&days) {
        return Err(CallsError::invalid("days", "1 to 366"));
    }
    let node =
        q.node_persistent_id.clone().or_else(|| s.default_node().map(str::to_owned)).ok_or_else(|| {
            CallsError::invalid("node_persistent_id", "required: no BROKER_NODE_PERSISTENT_ID is configured")
        })?;
    Ok((node, days))
}

/// Node outputs of a node in the last `days` (7) days (admins only).
#[utoipa::path(get, path = "/debug-node-count", tag = "calls", params(NodeQuery), responses((status = 200, body = Object)))]
async fn debug_node_count(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<NodeQuery>,
) -> ApiResult<Json<Value>> {
    let (node, days) = node_and_days(&s, &q, 7)?;
    Ok(Json(s.node_count(&node, days).await?))
}

/// The organisations of a node's calls in the last `days` (30) days (admins only).
#[utoipa::path(get, path = "/debug-node-orgs", tag = "calls", params(NodeQuery), responses((status = 200, body = Object)))]
async fn debug_node_orgs(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<NodeQuery>,
) -> ApiResult<Json<Value>> {
    let (node, days) = node_and_days(&s, &q, 30)?;
    Ok(Json(s.node_orgs(&node, days).await?))
}

/// The reports dashboard: KPI tiles, breakdowns and trends per organisation and day.
#[utoipa::path(get, path = "/ui/calls", tag = "calls",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn reports_page() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../ui/reports.html"))
}
