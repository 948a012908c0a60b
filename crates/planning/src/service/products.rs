//! Categories and products.

use serde::Deserialize;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{not_negative, present, PlanningService};
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::{Category, Product};
use crate::page::{Page, PageRequest};
use crate::store::products::{self as store, NewCategory, ProductFilter};

/// `POST /products/categories`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CategoryCreate {
    /// Name.
    pub name: String,
    /// Parent category.
    #[serde(default)]
    pub parent_id: Option<i64>,
    /// Depth (0).
    #[serde(default)]
    pub level: i64,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /products`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProductCreate {
    /// Stock-keeping unit, unique.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Category.
    #[serde(default)]
    pub category_id: Option<i64>,
    /// Family.
    #[serde(default)]
    pub product_family: Option<String>,
    /// Unit (`units`).
    #[serde(default = "units")]
    pub unit_of_measure: String,
    /// Cost of a unit.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub unit_cost: Option<Dec2>,
    /// Price of a unit.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub selling_price: Option<Dec2>,
    /// Lead time, days (0).
    #[serde(default)]
    pub lead_time_days: i64,
    /// Smallest order (1).
    #[serde(default = "one")]
    pub min_order_qty: i64,
    /// `active` (default), `discontinued`, `new`.
    #[serde(default = "active")]
    pub status: String,
}

fn units() -> String {
    "units".into()
}
fn one() -> i64 {
    1
}
fn active() -> String {
    "active".into()
}

/// `PUT /products/{id}`: only the fields given change; a SKU given is ignored.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ProductUpdate {
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Category.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub category_id: Option<Option<i64>>,
    /// Family.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub product_family: Option<Option<String>>,
    /// Unit.
    #[serde(default)]
    pub unit_of_measure: Option<String>,
    /// Cost of a unit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub unit_cost: Option<Option<Dec2>>,
    /// Price of a unit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub selling_price: Option<Option<Dec2>>,
    /// Lead time, days.
    #[serde(default)]
    pub lead_time_days: Option<i64>,
    /// Smallest order.
    #[serde(default)]
    pub min_order_qty: Option<i64>,
    /// Status.
    #[serde(default)]
    pub status: Option<String>,
}

fn check_product(p: &Product) -> Result<(), PlanningError> {
    let mut errors = not_negative(&[("unit_cost", p.unit_cost), ("selling_price", p.selling_price)]);
    for (field, text) in [("sku", &p.sku), ("name", &p.name)] {
        if text.trim().is_empty() {
            errors.push(sightline_platform::error::FieldError::new(field, "must not be empty"));
        }
    }
    if p.lead_time_days < 0 {
        errors.push(sightline_platform::error::FieldError::new("lead_time_days", "must not be negative"));
    }
    if p.min_order_qty < 0 {
        errors.push(sightline_platform::error::FieldError::new("min_order_qty", "must not be negative"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlanningError::Invalid(errors))
    }
}

impl PlanningService {
    /// Creates a category.
    pub async fn create_category(
        &self,
        context: &RequestContext,
        input: CategoryCreate,
    ) -> Result<Category, PlanningError> {
        if input.name.trim().is_empty() {
            return Err(PlanningError::invalid("name", "must not be empty"));
        }
        let mut tx = self.db().begin().await?;
        let category = store::insert_category(
            &mut tx,
            &NewCategory {
                name: input.name,
                parent_id: input.parent_id,
                level: input.level,
                description: input.description,
            },
        )
        .await?;
        self.publish(
            &mut tx,
            context,
            "category.created",
            ("category", category.id),
            (None, Some(&category)),
        )
        .await?;
        tx.commit().await?;
        Ok(category)
    }

    /// Every category.
    pub async fn categories(&self) -> Result<Vec<Category>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::categories(&mut conn).await?)
    }

    /// Creates a product; a SKU in use is refused.
    pub async fn create_product(
        &self,
        context: &RequestContext,
        input: ProductCreate,
    ) -> Result<Product, PlanningError> {
        let draft = Product {
            sku: input.sku.trim().to_owned(),
            name: input.name,
            description: input.description,
            category_id: input.category_id,
            product_family: input.product_family,
            unit_of_measure: input.unit_of_measure,
            unit_cost: input.unit_cost,
            selling_price: input.selling_price,
            lead_time_days: input.lead_time_days,
            min_order_qty: input.min_order_qty,
            status: input.status,
            id: 0,
            created_at: String::new(),
            updated_at: None,
        };
        check_product(&draft)?;
        let mut tx = self.db().begin().await?;
        if store::product_by_sku(&mut tx, &draft.sku).await?.is_some() {
            return Err(PlanningError::DuplicateSku);
        }
        let product =
            store::insert_product(&mut tx, &draft).await.map_err(|e| {
                match PlanningError::unique_or(e, "SKU already exists") {
                    PlanningError::Conflict(_) => PlanningError::DuplicateSku,
                    other => other,
                }
            })?;
        self.publish(&mut tx, context, "product.created", ("product", product.id), (None, Some(&product)))
            .await?;
        tx.commit().await?;
        Ok(product)
    }

    /// One product.
    pub async fn product(&self, id: i64) -> Result<Product, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        store::product_by_id(&mut conn, id).await?.ok_or(PlanningError::NotFound { entity: "Product", id })
    }

    /// A page of products.
    pub async fn products(
        &self,
        filter: &ProductFilter,
        page: PageRequest,
    ) -> Result<Page<Product>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let (items, total) = store::list_products(&mut conn, filter, page).await?;
        Ok(Page::new(items, total, page))
    }

    /// Changes the fields `input` gives.
    pub async fn update_product(
        &self,
        context: &RequestContext,
        id: i64,
        input: ProductUpdate,
    ) -> Result<Product, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = store::product_by_id(&mut tx, id)
            .await?
            .ok_or(PlanningError::NotFound { entity: "Product", id })?;
        let mut p = before.clone();
        if let Some(v) = input.name {
            p.name = v;
        }
        if let Some(v) = input.description {
            p.description = v;
        }
        if let Some(v) = input.category_id {
            p.category_id = v;
        }
        if let Some(v) = input.product_family {
            p.product_family = v;
        }
        if let Some(v) = input.unit_of_measure {
            p.unit_of_measure = v;
        }
        if let Some(v) = input.unit_cost {
            p.unit_cost = v;
        }
        if let Some(v) = input.selling_price {
            p.selling_price = v;
        }
        if let Some(v) = input.lead_time_days {
            p.lead_time_days = v;
        }
        if let Some(v) = input.min_order_qty {
            p.min_order_qty = v;
        }
        if let Some(v) = input.status {
            p.status = v;
        }
        check_product(&p)?;
        let after = store::update_product(&mut tx, &p).await?;
        self.publish(&mut tx, context, "product.updated", ("product", id), (Some(&before), Some(&after)))
            .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Discontinues a product (it stays, with status `discontinued`).
    pub async fn discontinue_product(&self, context: &RequestContext, id: i64) -> Result<(), PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = store::product_by_id(&mut tx, id)
            .await?
            .ok_or(PlanningError::NotFound { entity: "Product", id })?;
        let mut p = before.clone();
        p.status = "discontinued".into();
        let after = store::update_product(&mut tx, &p).await?;
        self.publish(
            &mut tx,
            context,
            "product.discontinued",
            ("product", id),
            (Some(&before), Some(&after)),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
