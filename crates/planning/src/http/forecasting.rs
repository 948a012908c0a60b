//! `/api/v1/forecasting`: the methods, generating a product's forecast, stored results, accuracy
//! per model, anomalies in the history.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use sightline_platform::error::ErrorBody;
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, ApiResult, RequestContext, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

use crate::model::ForecastRow;
use crate::service::forecasting::{Anomaly, GeneratedForecast, HistoryMonth, ModelAccuracy, ModelInfo};
use crate::service::PlanningService;
use crate::store::forecasts::ForecastFilter;
use crate::store::runs::ForecastRun;

/// The methods that may be asked for.
#[utoipa::path(get, path = "/api/v1/forecasting/models", tag = "planning",
    responses((status = 200, body = Vec<ModelInfo>)))]
async fn forecast_models(State(s): State<PlanningService>) -> Json<Vec<ModelInfo>> {
    Json(s.forecast_models())
}

/// What to forecast.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GenerateQuery {
    /// The product.
    product_id: i64,
    /// Months ahead, 1–24 (6).
    horizon: Option<usize>,
    /// A method id (default `auto`).
    model_type: Option<String>,
}

/// Forecasts a product's demand past its history (stored, replacing that model's earlier
/// months), with 95 % intervals and the method's rolling-origin backtest accuracy.
#[utoipa::path(post, path = "/api/v1/forecasting/generate", tag = "planning", params(GenerateQuery),
    responses((status = 200, body = GeneratedForecast), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn generate_forecast(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiQuery(q): ApiQuery<GenerateQuery>,
) -> ApiResult<Json<GeneratedForecast>> {
    let horizon = q.horizon.unwrap_or(6);
    Ok(Json(s.generate_forecast(&context, q.product_id, horizon, q.model_type.as_deref()).await?))
}

/// Stored forecast filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// The product.
    product_id: Option<i64>,
    /// The model asked for.
    model_type: Option<String>,
    /// Months from (inclusive).
    period_from: Option<NaiveDate>,
    /// Months to (inclusive).
    period_to: Option<NaiveDate>,
}

/// Stored forecasts, by product, model and month.
#[utoipa::path(get, path = "/api/v1/forecasting/results", tag = "planning", params(ResultsQuery),
    responses((status = 200, body = Vec<ForecastRow>), (status = 422, body = ErrorBody)))]
async fn forecast_results(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<ResultsQuery>,
) -> ApiResult<Json<Vec<ForecastRow>>> {
    let filter = ForecastFilter {
        product_id: q.product_id.filter(|v| *v != 0),
        model_type: q.model_type.filter(|v| !v.is_empty()),
        period_from: q.period_from,
        period_to: q.period_to,
    };
    Ok(Json(s.forecast_results(&filter).await?))
}

/// One product (optional).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// The product.
    product_id: Option<i64>,
}

/// Mean backtest accuracy (MAPE, RMSE, MASE, sMAPE) per model over stored forecasts.
#[utoipa::path(get, path = "/api/v1/forecasting/accuracy", tag = "planning", params(ProductQuery),
    responses((status = 200, body = Vec<ModelAccuracy>)))]
async fn forecast_accuracy(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<ProductQuery>,
) -> ApiResult<Json<Vec<ModelAccuracy>>> {
    Ok(Json(s.forecast_accuracy(q.product_id.filter(|v| *v != 0)).await?))
}

/// The product.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OneProductQuery {
    /// The product.
    product_id: i64,
}

/// The product's monthly demand history (every month from its first; 0 without sales).
#[utoipa::path(get, path = "/api/v1/forecasting/history", tag = "planning", params(OneProductQuery),
    responses((status = 200, body = Vec<HistoryMonth>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn demand_history(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<OneProductQuery>,
) -> ApiResult<Json<Vec<HistoryMonth>>> {
    Ok(Json(s.demand_history(q.product_id).await?))
}

/// Months of the product's demand history that stand out (robust z-score over 3.5 against the
/// neighbouring months and the season; none below 6 months).
#[utoipa::path(post, path = "/api/v1/forecasting/anomalies/detect", tag = "planning", params(OneProductQuery),
    responses((status = 200, body = Vec<Anomaly>), (status = 404, body = ErrorBody)))]
async fn detect_anomalies(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<OneProductQuery>,
) -> ApiResult<Json<Vec<Anomaly>>> {
    Ok(Json(s.detect_anomalies(q.product_id).await?))
}

/// `POST /forecasting/runs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RunRequest {
    /// A method id (`auto`).
    #[serde(default = "auto")]
    model_type: String,
    /// Months ahead, 1–24 (6).
    #[serde(default = "six")]
    horizon: i64,
}

fn auto() -> String {
    "auto".into()
}
fn six() -> i64 {
    6
}

/// Queues a run forecasting every product (a durable job: it goes on after a restart from its
/// last product); 202 with the run, whose progress `GET /forecasting/runs/{run_id}` shows.
#[utoipa::path(post, path = "/api/v1/forecasting/runs", tag = "planning", request_body = RunRequest,
    responses((status = 202, body = ForecastRun), (status = 422, body = ErrorBody)))]
async fn start_run(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<RunRequest>,
) -> ApiResult<(StatusCode, Json<ForecastRun>)> {
    Ok((StatusCode::ACCEPTED, Json(s.start_forecast_run(&context, &body.model_type, body.horizon).await?)))
}

/// The latest forecast runs.
#[utoipa::path(get, path = "/api/v1/forecasting/runs", tag = "planning", responses((status = 200, body = Vec<ForecastRun>)))]
async fn list_runs(State(s): State<PlanningService>) -> ApiResult<Json<Vec<ForecastRun>>> {
    Ok(Json(s.forecast_runs().await?))
}

/// One forecast run and its progress.
#[utoipa::path(get, path = "/api/v1/forecasting/runs/{run_id}", tag = "planning",
    params(("run_id" = String, Path, description = "Run id")),
    responses((status = 200, body = ForecastRun), (status = 404, body = ErrorBody)))]
async fn get_run(State(s): State<PlanningService>, Path(id): Path<String>) -> ApiResult<Json<ForecastRun>> {
    Ok(Json(s.forecast_run(&id).await?))
}

/// Adds the forecasting routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let run = Access::Permission("forecasts:run");
    router
        .route(Access::Authenticated, routes!(forecast_models))
        .route(run, routes!(generate_forecast))
        .route(Access::Authenticated, routes!(forecast_results))
        .route(Access::Authenticated, routes!(forecast_accuracy))
        .route(Access::Authenticated, routes!(demand_history))
        .route(run, routes!(detect_anomalies))
        .route(run, routes!(start_run))
        .route(Access::Authenticated, routes!(list_runs))
        .route(Access::Authenticated, routes!(get_run))
}
