//! `/api/v1/products` and its categories (also at `/api/v1/categories`, where the original's
//! own frontend looks for them).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use sightline_platform::error::ErrorBody;
use sightline_platform::validate::{ApiJson, ApiQuery};
use sightline_platform::{Access, ApiResult, RequestContext, SecureRouter};
use utoipa::IntoParams;
use utoipa_axum::routes;

use super::{message, path_id};
use crate::model::{Category, Product};
use crate::page::{Page, PageQuery, PageRequest};
use crate::service::products::{CategoryCreate, ProductCreate, ProductUpdate};
use crate::service::PlanningService;
use crate::store::products::ProductFilter;

/// Every category (a bare array).
#[utoipa::path(get, path = "/api/v1/products/categories", tag = "planning",
    responses((status = 200, body = Vec<Category>)))]
async fn list_categories(State(s): State<PlanningService>) -> ApiResult<Json<Vec<Category>>> {
    Ok(Json(s.categories().await?))
}

/// Creates a category (admins).
#[utoipa::path(post, path = "/api/v1/products/categories", tag = "planning", request_body = CategoryCreate,
    responses((status = 201, body = Category), (status = 422, body = ErrorBody)))]
async fn create_category(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<CategoryCreate>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    Ok((StatusCode::CREATED, Json(s.create_category(&context, body).await?)))
}

/// Every category, where the original's frontend asks (`/api/v1/categories`).
#[utoipa::path(get, path = "/api/v1/categories", tag = "planning",
    responses((status = 200, body = Vec<Category>)))]
async fn list_categories_alias(s: State<PlanningService>) -> ApiResult<Json<Vec<Category>>> {
    list_categories(s).await
}

/// Creates a category, where the original's frontend posts (`/api/v1/categories`; admins).
#[utoipa::path(post, path = "/api/v1/categories", tag = "planning", request_body = CategoryCreate,
    responses((status = 201, body = Category), (status = 422, body = ErrorBody)))]
async fn create_category_alias(
    s: State<PlanningService>,
    context: RequestContext,
    body: ApiJson<CategoryCreate>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    create_category(s, context, body).await
}

/// Product list filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    /// Exact status.
    status: Option<String>,
    /// Exact category (0: any).
    category_id: Option<i64>,
    /// Part of the name or SKU, any case.
    search: Option<String>,
    /// Page, from 1.
    page: Option<i64>,
    /// Items a page, 1–100 (20).
    page_size: Option<i64>,
}

/// Products, a page at a time (by id).
#[utoipa::path(get, path = "/api/v1/products", tag = "planning", params(ProductQuery),
    responses((status = 200, body = Object), (status = 422, body = ErrorBody)))]
async fn list_products(
    State(s): State<PlanningService>,
    ApiQuery(q): ApiQuery<ProductQuery>,
) -> ApiResult<Json<Page<Product>>> {
    let page = PageRequest::parse(PageQuery { page: q.page, page_size: q.page_size })?;
    let filter = ProductFilter {
        status: q.status.filter(|v| !v.is_empty()),
        category_id: q.category_id.filter(|v| *v != 0),
        search: q.search.filter(|v| !v.is_empty()),
    };
    Ok(Json(s.products(&filter, page).await?))
}

/// Creates a product (admins); a SKU in use is a 400.
#[utoipa::path(post, path = "/api/v1/products", tag = "planning", request_body = ProductCreate,
    responses((status = 201, body = Product), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_product(
    State(s): State<PlanningService>,
    context: RequestContext,
    ApiJson(body): ApiJson<ProductCreate>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    Ok((StatusCode::CREATED, Json(s.create_product(&context, body).await?)))
}

/// One product.
#[utoipa::path(get, path = "/api/v1/products/{product_id}", tag = "planning",
    params(("product_id" = i64, Path, description = "Product id")),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody)))]
async fn get_product(State(s): State<PlanningService>, Path(id): Path<String>) -> ApiResult<Json<Product>> {
    Ok(Json(s.product(path_id(&id, "product_id")?).await?))
}

/// Changes the fields given (admins); the SKU does not change.
#[utoipa::path(put, path = "/api/v1/products/{product_id}", tag = "planning",
    params(("product_id" = i64, Path, description = "Product id")), request_body = ProductUpdate,
    responses((status = 200, body = Product), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_product(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProductUpdate>,
) -> ApiResult<Json<Product>> {
    Ok(Json(s.update_product(&context, path_id(&id, "product_id")?, body).await?))
}

/// Discontinues a product (admins): it stays, with status `discontinued`.
#[utoipa::path(delete, path = "/api/v1/products/{product_id}", tag = "planning",
    params(("product_id" = i64, Path, description = "Product id")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
async fn delete_product(
    State(s): State<PlanningService>,
    context: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    s.discontinue_product(&context, path_id(&id, "product_id")?).await?;
    Ok(message("Product discontinued successfully"))
}

/// Adds the product routes.
pub fn routes(router: SecureRouter<PlanningService>) -> SecureRouter<PlanningService> {
    router
        .route(Access::Authenticated, routes!(list_categories))
        .route(Access::Authenticated, routes!(list_categories_alias))
        .route(Access::Permission("products:manage"), routes!(create_category))
        .route(Access::Permission("products:manage"), routes!(create_category_alias))
        .route(Access::Authenticated, routes!(list_products))
        .route(Access::Permission("products:manage"), routes!(create_product))
        .route(Access::Authenticated, routes!(get_product))
        .route(Access::Permission("products:manage"), routes!(update_product))
        .route(Access::Permission("products:manage"), routes!(delete_product))
}
