//! Bulk loads of products, inventory positions and demand actuals, from JSON batches (the later
//! original's ERP sync routes) and CSV files. Every row is checked before anything is written;
//! a batch is applied in one transaction or not at all; loading the same rows again changes
//! nothing (products by SKU, positions by SKU and location, actuals by SKU, period, region and
//! channel).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::PlanningService;
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::{inventory_status, Inventory, Product};

/// A product row.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProductItem {
    /// SKU (the key).
    pub sku: String,
    /// Name.
    pub name: String,
    /// Category by name (created when new).
    #[serde(default)]
    pub category_name: Option<String>,
    /// Family.
    #[serde(default)]
    pub product_family: Option<String>,
    /// Lead time, days (a number, or its text in a CSV file).
    #[serde(default, deserialize_with = "whole_number")]
    pub lead_time_days: Option<i64>,
    /// Cost of a unit.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub unit_cost: Option<Dec2>,
    /// Price of a unit.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub selling_price: Option<Dec2>,
}

/// An inventory row.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct InventoryItem {
    /// The product's SKU.
    pub sku: String,
    /// Where (with the SKU, the key).
    pub location: String,
    /// On hand.
    #[schema(value_type = String)]
    pub on_hand_qty: Dec2,
    /// Allocated (0).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub allocated_qty: Option<Dec2>,
    /// In transit (0).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub in_transit_qty: Option<Dec2>,
    /// Safety stock (kept, else 0).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub safety_stock: Option<Dec2>,
    /// Reorder point (kept, else 0).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reorder_point: Option<Dec2>,
    /// Most to hold (kept, else none).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub max_stock: Option<Dec2>,
}

/// A demand actual row.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ActualItem {
    /// The product's SKU.
    pub sku: String,
    /// The period.
    pub period: NaiveDate,
    /// What sold.
    #[schema(value_type = String)]
    pub actual_qty: Dec2,
    /// Region (`Global`).
    #[serde(default)]
    pub region: Option<String>,
    /// Channel (`All`).
    #[serde(default)]
    pub channel: Option<String>,
}

/// A whole number from a JSON number or a numeric text.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| serde::de::Error::custom("must be a whole number"))
        }
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not a whole number"))),
        Some(_) => Err(serde::de::Error::custom("must be a whole number")),
    }
}

/// What to do with a row whose SKU is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownSku {
    /// Count it as skipped (the original's ERP sync).
    Skip,
    /// Refuse the batch, naming the row.
    Refuse,
}

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct LoadCounts {
    /// Rows read.
    pub processed: usize,
    /// Rows that made a new record.
    pub created: usize,
    /// Rows that changed (or rewrote) one.
    pub updated: usize,
    /// Rows left out (unknown SKU, or no plan to set an actual on).
    pub skipped: usize,
}

/// Names a bad field of row `index` as `items[i].field` (JSON) or `line n: field` (CSV).
pub type RowLabel = fn(usize, &str) -> String;

/// `items[i].field`.
pub fn json_row(index: usize, field: &str) -> String {
    format!("items[{index}].{field}")
}

/// `line n: field` (line 1 is the header).
pub fn csv_row(index: usize, field: &str) -> String {
    format!("line {}: {field}", index + 2)
}

fn refuse(errors: Vec<FieldError>) -> Result<(), PlanningError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlanningError::Invalid(errors))
    }
}

fn negatives(label: RowLabel, i: usize, fields: &[(&str, Option<Dec2>)], errors: &mut Vec<FieldError>) {
    for (name, value) in fields {
        if value.is_some_and(|v| v < Dec2::ZERO) {
            errors.push(FieldError::new(label(i, name), "must not be negative"));
        }
    }
}

fn blank(label: RowLabel, i: usize, fields: &[(&str, &str)], errors: &mut Vec<FieldError>) {
    for (name, value) in fields {
        if value.trim().is_empty() {
            errors.push(FieldError::new(label(i, name), "must not be empty"));
        }
    }
}

impl PlanningService {
    /// Loads products by SKU (categories by name, created when new); `dry_run` checks and
    /// counts only.
    pub async fn load_products(
        &self,
        context: &RequestContext,
        items: Vec<ProductItem>,
        label: RowLabel,
        dry_run: bool,
    ) -> Result<LoadCounts, PlanningError> {
        let mut errors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (i, item) in items.iter().enumerate() {
            blank(label, i, &[("sku", &item.sku), ("name", &item.name)], &mut errors);
            negatives(
                label,
                i,
                &[("unit_cost", item.unit_cost), ("selling_price", item.selling_price)],
                &mut errors,
            );
            if item.lead_time_days.is_some_and(|d| d < 0) {
                errors.push(FieldError::new(label(i, "lead_time_days"), "must not be negative"));
            }
            if let Some(first) = seen.insert(item.sku.trim().to_owned(), i) {
                errors
                    .push(FieldError::new(label(i, "sku"), format!("repeats the SKU of row {}", first + 1)));
            }
        }
        refuse(errors)?;
        let mut counts = LoadCounts { processed: items.len(), ..LoadCounts::default() };
        let mut tx = self.db().begin().await?;
        for item in items {
            let sku = item.sku.trim().to_owned();
            let existing = crate::store::products::product_by_sku(&mut tx, &sku).await?;
            let category_id = match item.category_name.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                None => None,
                Some(name) => match crate::store::products::category_by_name(&mut tx, name).await? {
                    Some(id) => Some(id),
                    None if dry_run => None,
                    None => {
                        let new = crate::store::products::NewCategory {
                            name: name.to_owned(),
                            parent_id: None,
                            level: 0,
                            description: None,
                        };
                        Some(crate::store::products::insert_category(&mut tx, &new).await?.id)
                    }
                },
            };
            match existing {
                Some(before) => {
                    counts.updated += 1;
                    let mut p = before.clone();
                    p.name = item.name;
                    p.category_id = category_id.or(p.category_id);
                    p.product_family = item.product_family.or(p.product_family);
                    p.lead_time_days = item.lead_time_days.unwrap_or(p.lead_time_days);
                    p.unit_cost = item.unit_cost.or(p.unit_cost);
                    p.selling_price = item.selling_price.or(p.selling_price);
                    if !dry_run && p != before {
                        let after = crate::store::products::update_product(&mut tx, &p).await?;
                        self.publish(
                            &mut tx,
                            context,
                            "product.updated",
                            ("product", p.id),
                            (Some(&before), Some(&after)),
                        )
                        .await?;
                    }
                }
                None => {
                    counts.created += 1;
                    if !dry_run {
                        let draft = Product {
                            sku,
                            name: item.name,
                            description: None,
                            category_id,
                            product_family: item.product_family,
                            unit_of_measure: "units".into(),
                            unit_cost: item.unit_cost,
                            selling_price: item.selling_price,
                            lead_time_days: item.lead_time_days.unwrap_or(0),
                            min_order_qty: 1,
                            status: "active".into(),
                            id: 0,
                            created_at: String::new(),
                            updated_at: None,
                        };
                        let p = crate::store::products::insert_product(&mut tx, &draft).await?;
                        self.publish(
                            &mut tx,
                            context,
                            "product.created",
                            ("product", p.id),
                            (None, Some(&p)),
                        )
                        .await?;
                    }
                }
            }
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(counts)
    }

    /// The product ids of `skus` (in order; `None` for an unknown one).
    async fn product_ids(
        conn: &mut sqlx::AnyConnection,
        skus: &[&str],
    ) -> Result<Vec<Option<i64>>, PlanningError> {
        let mut out = Vec::with_capacity(skus.len());
        let mut known = std::collections::HashMap::new();
        for sku in skus {
            let sku = sku.trim();
            if !known.contains_key(sku) {
                let id = crate::store::products::product_by_sku(conn, sku).await?.map(|p| p.id);
                known.insert(sku.to_owned(), id);
            }
            out.push(known[sku]);
        }
        Ok(out)
    }

    /// Loads inventory positions by SKU and location; the status follows each write.
    pub async fn load_inventory(
        &self,
        context: &RequestContext,
        items: Vec<InventoryItem>,
        label: RowLabel,
        unknown: UnknownSku,
        dry_run: bool,
    ) -> Result<LoadCounts, PlanningError> {
        let mut tx = self.db().begin().await?;
        let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
        let ids = Self::product_ids(&mut tx, &skus).await?;
        let mut errors = Vec::new();
        let mut seen = std::collections::HashMap::new();
        for (i, (item, id)) in items.iter().zip(&ids).enumerate() {
            blank(label, i, &[("sku", &item.sku), ("location", &item.location)], &mut errors);
            negatives(
                label,
                i,
                &[
                    ("on_hand_qty", Some(item.on_hand_qty)),
                    ("allocated_qty", item.allocated_qty),
                    ("in_transit_qty", item.in_transit_qty),
                    ("safety_stock", item.safety_stock),
                    ("reorder_point", item.reorder_point),
                    ("max_stock", item.max_stock),
                ],
                &mut errors,
            );
            if id.is_none() && unknown == UnknownSku::Refuse && !item.sku.trim().is_empty() {
                errors.push(FieldError::new(
                    label(i, "sku"),
                    format!("no product with SKU {:?}", item.sku.trim()),
                ));
            }
            let key = (item.sku.trim().to_owned(), item.location.trim().to_owned());
            if let Some(first) = seen.insert(key, i) {
                errors.push(FieldError::new(
                    label(i, "location"),
                    format!("repeats the SKU and location of row {}", first + 1),
                ));
            }
        }
        refuse(errors)?;
        let mut counts = LoadCounts { processed: items.len(), ..LoadCounts::default() };
        for (item, id) in items.into_iter().zip(ids) {
            let Some(product_id) = id else {
                counts.skipped += 1;
                continue;
            };
            let location = item.location.trim().to_owned();
            let existing = crate::store::inventory::find(&mut tx, product_id, &location).await?;
            let before = existing.as_ref().map(|(i, _)| i.clone());
            let mut p = before.clone().unwrap_or(Inventory {
                product_id,
                location,
                on_hand_qty: Dec2::ZERO,
                allocated_qty: Dec2::ZERO,
                in_transit_qty: Dec2::ZERO,
                safety_stock: Dec2::ZERO,
                reorder_point: Dec2::ZERO,
                max_stock: None,
                days_of_supply: None,
                last_receipt_date: None,
                last_issue_date: None,
                valuation: None,
                status: String::new(),
                id: 0,
                updated_at: None,
            });
            p.on_hand_qty = item.on_hand_qty;
            p.allocated_qty = item.allocated_qty.unwrap_or(Dec2::ZERO);
            p.in_transit_qty = item.in_transit_qty.unwrap_or(Dec2::ZERO);
            p.safety_stock = item.safety_stock.unwrap_or(p.safety_stock);
            p.reorder_point = item.reorder_point.unwrap_or(p.reorder_point);
            p.max_stock = item.max_stock.or(p.max_stock);
            p.status =
                inventory_status(p.on_hand_qty, p.reorder_point, p.safety_stock, p.max_stock).to_owned();
            if before.is_some() {
                counts.updated += 1;
            } else {
                counts.created += 1;
            }
            if !dry_run && before.as_ref() != Some(&p) {
                let id = crate::store::inventory::save(&mut tx, &p).await?;
                p.id = id;
                let action = if before.is_some() { "inventory.updated" } else { "inventory.created" };
                self.publish(&mut tx, context, action, ("inventory", id), (before.as_ref(), Some(&p)))
                    .await?;
            }
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(counts)
    }

    /// Loads demand actuals by SKU, period, region and channel into the demand history, and onto
    /// the newest version of the matching demand plan when there is one.
    pub async fn load_actuals(
        &self,
        context: &RequestContext,
        items: Vec<ActualItem>,
        label: RowLabel,
        unknown: UnknownSku,
        dry_run: bool,
    ) -> Result<LoadCounts, PlanningError> {
        let mut tx = self.db().begin().await?;
        let skus: Vec<&str> = items.iter().map(|i| i.sku.as_str()).collect();
        let ids = Self::product_ids(&mut tx, &skus).await?;
        let mut errors = Vec::new();
        for (i, (item, id)) in items.iter().zip(&ids).enumerate() {
            blank(label, i, &[("sku", &item.sku)], &mut errors);
            negatives(label, i, &[("actual_qty", Some(item.actual_qty))], &mut errors);
            if id.is_none() && unknown == UnknownSku::Refuse && !item.sku.trim().is_empty() {
                errors.push(FieldError::new(
                    label(i, "sku"),
                    format!("no product with SKU {:?}", item.sku.trim()),
                ));
            }
        }
        refuse(errors)?;
        let mut counts = LoadCounts { processed: items.len(), ..LoadCounts::default() };
        for (item, id) in items.into_iter().zip(ids) {
            let Some(product_id) = id else {
                counts.skipped += 1;
                continue;
            };
            let region = item.region.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "Global".into());
            let channel = item.channel.filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "All".into());
            counts.updated += 1;
            if dry_run {
                continue;
            }
            crate::store::actuals::upsert(
                &mut tx,
                product_id,
                item.period,
                &region,
                &channel,
                item.actual_qty,
            )
            .await?;
            let plan =
                crate::store::demand::newest_version(&mut tx, product_id, item.period, &region, &channel)
                    .await?;
            if let Some(before) = plan.filter(|p| p.actual_qty != Some(item.actual_qty)) {
                let mut p = before.clone();
                p.actual_qty = Some(item.actual_qty);
                let after = crate::store::demand::update(&mut tx, &p).await?;
                self.publish(
                    &mut tx,
                    context,
                    "demand_plan.actual_recorded",
                    ("demand_plan", p.id),
                    (Some(&before), Some(&after)),
                )
                .await?;
            }
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(counts)
    }
}
