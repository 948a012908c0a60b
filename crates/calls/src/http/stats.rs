//! The live metrics: the `/…-stats` endpoints, `/all-stats` and `/daily-report`.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sightline_platform::error::{ApiResult, ErrorBody};
use sightline_platform::validate::ApiQuery;
use sightline_platform::{Access, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::error::CallsError;
use crate::metrics::{
    CallClassificationShare, CallStageShare, CallsAndDuration, CarrierEndStateShare, CarrierNotQualified,
    CarrierQualificationShare, DurationCarrierAsked, LegacyNonConvertible, LoadNotFound, LoadStatusShare,
    NonConvertible, PricingShare, TransferOverAttempts, TransferOverCalls, TransferredForBooking,
    UniqueLoads, WithoutCarrierAsked,
};
use crate::model::NodeOutputRow;
use crate::service::CallsService;

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

/// Calls whose transfer reason is set and is not the carrier's asking: calls and hours, and runs
/// and hours per outcome (counts, hours, and fractions of calls and of hours).
#[utoipa::path(get, path = "/calls-without-carrier-asked-for-transfer-stats", tag = "calls", params(StatsQuery),
    responses((status = 200, body = WithoutCarrierAsked)))]
async fn without_carrier_asked_stats(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<WithoutCarrierAsked>> {
    let (scope, _) = metrics_scope(&s, &q).await?;
    Ok(Json(s.metrics(&scope).without_carrier_asked().await?))
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
    let (tz, window) = s.day(&org, parse_date(q.date.as_deref())?, q.tz.as_deref())?;
    Ok(Json(s.daily_report(&org, tz, &window).await?))
}

/// The day and node of `/daily-node-outputs`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NodeOutputsQuery {
    /// The node; default the organisation's broker node.
    node_persistent_id: Option<String>,
    /// IANA zone of the day; default the organisation's.
    tz: Option<String>,
    /// `YYYY-MM-DD`; default yesterday in `tz`.
    date: Option<String>,
    /// Most outputs listed (1–5000; default 200).
    limit: Option<i64>,
    /// Whether each row carries the whole `flat_data` object (default true).
    include_flat_data: Option<bool>,
    /// Organisation (whose sessions are joined); default the configured one.
    org_id: Option<String>,
}

/// A day's node outputs of one node, newest run first, with the session and the `flat_data`
/// fields a new client looks at first.
#[utoipa::path(get, path = "/daily-node-outputs", tag = "calls", params(NodeOutputsQuery),
    responses((status = 200, body = Vec<NodeOutputRow>), (status = 422, body = ErrorBody)))]
async fn daily_node_outputs(
    State(s): State<CallsService>,
    ApiQuery(q): ApiQuery<NodeOutputsQuery>,
) -> ApiResult<Json<Vec<NodeOutputRow>>> {
    let org = s.org_or_default(q.org_id.as_deref()).await?;
    let (_, window) = s.day(&org, parse_date(q.date.as_deref())?, q.tz.as_deref())?;
    let rows = s
        .node_outputs(
            &org,
            q.node_persistent_id.as_deref(),
            &window,
            q.limit.unwrap_or(200),
            q.include_flat_data.unwrap_or(true),
        )
        .await?;
    Ok(Json(rows))
}

fn parse_date(date: Option<&str>) -> Result<Option<NaiveDate>, CallsError> {
    date.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| CallsError::invalid("date", "must be YYYY-MM-DD"))
}

/// Adds this file's routes.
pub(super) fn routes(router: SecureRouter<CallsService>) -> SecureRouter<CallsService> {
    let read = Access::Permission("calls:read");
    router
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
        .route(read, routes!(without_carrier_asked_stats))
        .route(read, routes!(daily_node_outputs))
}
