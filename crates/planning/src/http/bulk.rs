//! Bulk loads: the later original's ERP sync routes (`/api/v1/integrations/erp/…/sync`, JSON
//! batches; unknown SKUs skipped and counted, as there) and CSV files (`/api/v1/import/…`, body
//! `text/csv` with a header line; an unknown SKU refuses the file, naming its line). Either way
//! every row is checked first and a batch is applied whole or not at all.

use axum::extract::State;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sightline_platform::error::{ErrorBody, FieldError};
use sightline_platform::validate::ApiJson;
use sightline_platform::{Access, ApiError, ApiResult, RequestContext, SecureRouter};
use utoipa::ToSchema;
use utoipa_axum::routes;

use crate::service::bulk::{
    csv_row, json_row, ActualItem, InventoryItem, LoadCounts, ProductItem, UnknownSku,
};
use crate::service::PlanningService;

/// A sync batch's header (an `idempotency_key` is accepted and not needed, as in the original:
/// a batch loaded again changes nothing).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SyncMeta {
    /// The sending system.
    pub source_system: String,
    /// Its batch id (one is made when missing).
    #[serde(default)]
    pub batch_id: Option<String>,
    /// Check and count only.
    #[serde(default)]
    pub dry_run: bool,
}

/// A sync batch.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SyncRequest<T> {
    /// The header.
    pub meta: SyncMeta,
    /// The rows.
    pub items: Vec<T>,
}

/// What a sync did, in the original's shape.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncResponse {
    /// Whether it was applied (or would be, on a dry run).
    pub success: bool,
    /// The sending system.
    pub source_system: String,
    /// The batch id.
    pub batch_id: String,
    /// Rows read.
    pub processed: usize,
    /// New records.
    pub created: usize,
    /// Changed records.
    pub updated: usize,
    /// Rows left out.
    pub skipped: usize,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// What happened.
    pub message: String,
}

fn answer(meta: SyncMeta, what: &str, counts: LoadCounts) -> Json<SyncResponse> {
    let message = format!(
        "{what}: {} processed, {} created, {} updated, {} skipped{}",
        counts.processed,
        counts.created,
        counts.updated,
        counts.skipped,
        if meta.dry_run { " (dry run, nothing written)" } else { "" }
    );
    Json(SyncResponse {
        success: true,
        source_system: meta.source_system,
        batch_id: meta.batch_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        processed: counts.processed,
        created: counts.created,
        updated: counts.updated,
        skipped: counts.skipped,
        dry_run: meta.dry_run,
        message,
    })
}

/// Products by SKU (categories by name, created when new).
#[utoipa::path(post, path = "/api/v1/integrations/erp/products/sync", tag = "planning",
    request_body = SyncRequest<ProductItem>,
    responses((status = 200, body = SyncResponse), (status = 422, body = ErrorBody)))]
async fn sync_products(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<SyncRequest<ProductItem>>,
) -> ApiResult<Json<SyncResponse>> {
    let counts = s.load_products(&context, body.items, json_row, body.meta.dry_run).await?;
    Ok(answer(body.meta, "products", counts))
}

/// Inventory positions by SKU and location (unknown SKUs skipped); statuses follow.
#[utoipa::path(post, path = "/api/v1/integrations/erp/inventory/sync", tag = "planning",
    request_body = SyncRequest<InventoryItem>,
    responses((status = 200, body = SyncResponse), (status = 422, body = ErrorBody)))]
async fn sync_inventory(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<SyncRequest<InventoryItem>>,
) -> ApiResult<Json<SyncResponse>> {
    let counts =
        s.load_inventory(&context, body.items, json_row, UnknownSku::Skip, body.meta.dry_run).await?;
    Ok(answer(body.meta, "inventory", counts))
}

/// Demand actuals by SKU, period, region and channel (unknown SKUs skipped).
#[utoipa::path(post, path = "/api/v1/integrations/erp/demand-actuals/sync", tag = "planning",
    request_body = SyncRequest<ActualItem>,
    responses((status = 200, body = SyncResponse), (status = 422, body = ErrorBody)))]
async fn sync_actuals(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<SyncRequest<ActualItem>>,
) -> ApiResult<Json<SyncResponse>> {
    let counts = s.load_actuals(&context, body.items, json_row, UnknownSku::Skip, body.meta.dry_run).await?;
    Ok(answer(body.meta, "demand actuals", counts))
}

/// The rows of a CSV body with a header line (each row read as an object of its non-empty
/// cells); a bad cell is a 422 naming its line and column.
fn csv_rows<T: DeserializeOwned>(body: &str) -> Result<Vec<T>, ApiError> {
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_reader(body.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| ApiError::validation(vec![FieldError::new("line 1", e.to_string())]))?
        .clone();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(FieldError::new(format!("line {line}"), e.to_string()));
                continue;
            }
        };
        let object: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(column, cell)| (column.to_owned(), serde_json::Value::from(cell)))
            .collect();
        match serde_path_to_error::deserialize::<_, T>(serde_json::Value::Object(object)) {
            Ok(row) => rows.push(row),
            Err(e) => {
                let column = e.path().to_string();
                let column = if column == "." { "row".to_owned() } else { column };
                errors.push(FieldError::new(format!("line {line}: {column}"), e.inner().to_string()));
            }
        }
        if errors.len() >= 100 {
            break;
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if rows.is_empty() {
        return Err(ApiError::validation(vec![FieldError::new("body", "no rows after the header line")]));
    }
    Ok(rows)
}

/// Products from a CSV file (`sku,name,category_name,product_family,lead_time_days,unit_cost,selling_price`).
#[utoipa::path(post, path = "/api/v1/import/products", tag = "planning",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = LoadCounts), (status = 422, body = ErrorBody)))]
async fn import_products(
    State(s): State<PlanningService>,
    context: RequestContext,
    body: String,
) -> ApiResult<Json<LoadCounts>> {
    Ok(Json(s.load_products(&context, csv_rows(&body)?, csv_row, false).await?))
}

/// Inventory positions from a CSV file
/// (`sku,location,on_hand_qty,allocated_qty,in_transit_qty,safety_stock,reorder_point,max_stock`).
#[utoipa::path(post, path = "/api/v1/import/inventory", tag = "planning",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = LoadCounts), (status = 422, body = ErrorBody)))]
async fn import_inventory(
    State(s): State<PlanningService>,
    context: RequestContext,
    body: String,
) -> ApiResult<Json<LoadCounts>> {
    Ok(Json(s.load_inventory(&context, csv_rows(&body)?, csv_row, UnknownSku::Refuse, false).await?))
}

/// Demand actuals from a CSV file (`sku,period,actual_qty,region,channel`).
#[utoipa::path(post, path = "/api/v1/import/demand-actuals", tag = "planning",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = LoadCounts), (status = 422, body = ErrorBody)))]
async fn import_actuals(
    State(s): State<PlanningService>,
    context: RequestContext,
    body: String,
) -> ApiResult<Json<LoadCounts>> {
    Ok(Json(s.load_actuals(&context, csv_rows(&body)?, csv_row, UnknownSku::Refuse, false).await?))
}

/// Adds the bulk routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    let sync = Access::Permission("integrations:sync");
    router
        .route(sync, routes!(sync_products))
        .route(sync, routes!(sync_inventory))
        .route(sync, routes!(sync_actuals))
        .route(Access::Permission("products:manage"), routes!(import_products))
        .route(Access::Permission("inventory:manage"), routes!(import_inventory))
        .route(Access::Permission("demand:plan"), routes!(import_actuals))
}
