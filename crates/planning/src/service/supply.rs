//! Supply plans, by the original's rules: edits add a version; submit and approve take any
//! state; delete has no restriction. Reject (which the original's own frontend calls and the
//! original lacks) sends a plan back to `draft`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{actor_id, not_negative, present, PlanningService};
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::SupplyPlan;
use crate::page::{Page, PageRequest};
use crate::store::supply::{self as store, SupplyFilter};

/// Statuses a supply plan may have.
pub const SUPPLY_STATUSES: [&str; 3] = ["draft", "submitted", "approved"];

/// `POST /supply/plans`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SupplyPlanCreate {
    /// The product.
    pub product_id: i64,
    /// The period.
    pub period: NaiveDate,
    /// Location (`Main`).
    #[serde(default = "main")]
    pub location: String,
    /// Planned production.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub planned_prod_qty: Option<Dec2>,
    /// Actual production.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub actual_prod_qty: Option<Dec2>,
    /// Capacity.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub capacity_max: Option<Dec2>,
    /// Capacity used, percent (0–100).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub capacity_used: Option<Dec2>,
    /// Supplier.
    #[serde(default)]
    pub supplier_name: Option<String>,
    /// Lead time, days.
    #[serde(default)]
    pub lead_time_days: Option<i64>,
    /// Cost of a unit.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub cost_per_unit: Option<Dec2>,
    /// Free text.
    #[serde(default)]
    pub constraints: Option<String>,
}

fn main() -> String {
    "Main".into()
}

/// `PUT /supply/plans/{id}`: the fields given change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SupplyPlanUpdate {
    /// Planned production.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub planned_prod_qty: Option<Option<Dec2>>,
    /// Actual production.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub actual_prod_qty: Option<Option<Dec2>>,
    /// Capacity.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub capacity_max: Option<Option<Dec2>>,
    /// Capacity used, percent.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub capacity_used: Option<Option<Dec2>>,
    /// Supplier.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub supplier_name: Option<Option<String>>,
    /// Lead time, days.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>)]
    pub lead_time_days: Option<Option<i64>>,
    /// Cost of a unit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub cost_per_unit: Option<Option<Dec2>>,
    /// Free text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub constraints: Option<Option<String>>,
    /// `draft`, `submitted` or `approved`.
    #[serde(default)]
    pub status: Option<String>,
}

fn check(p: &SupplyPlan) -> Result<(), PlanningError> {
    let mut errors = not_negative(&[
        ("planned_prod_qty", p.planned_prod_qty),
        ("actual_prod_qty", p.actual_prod_qty),
        ("capacity_max", p.capacity_max),
        ("cost_per_unit", p.cost_per_unit),
    ]);
    if p.capacity_used.is_some_and(|c| c < Dec2::ZERO || c > Dec2::units(100)) {
        errors.push(FieldError::new("capacity_used", "must be 0 to 100"));
    }
    if p.lead_time_days.is_some_and(|d| d < 0) {
        errors.push(FieldError::new("lead_time_days", "must not be negative"));
    }
    if !SUPPLY_STATUSES.contains(&p.status.as_str()) {
        errors.push(FieldError::new("status", format!("must be one of {}", SUPPLY_STATUSES.join(", "))));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlanningError::Invalid(errors))
    }
}

impl PlanningService {
    async fn supply_plan_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
    ) -> Result<SupplyPlan, PlanningError> {
        store::get(conn, id).await?.ok_or(PlanningError::NotFound { entity: "SupplyPlan", id })
    }

    /// Creates a draft, version 1; the product must exist.
    pub async fn create_supply_plan(
        &self,
        context: &RequestContext,
        input: SupplyPlanCreate,
    ) -> Result<SupplyPlan, PlanningError> {
        let draft = SupplyPlan {
            product_id: input.product_id,
            period: input.period,
            location: input.location,
            planned_prod_qty: input.planned_prod_qty,
            actual_prod_qty: input.actual_prod_qty,
            capacity_max: input.capacity_max,
            capacity_used: input.capacity_used,
            supplier_name: input.supplier_name,
            lead_time_days: input.lead_time_days,
            cost_per_unit: input.cost_per_unit,
            constraints: input.constraints,
            id: 0,
            status: "draft".into(),
            created_by: actor_id(context),
            version: 1,
            created_at: String::new(),
            updated_at: None,
        };
        check(&draft)?;
        let mut tx = self.db().begin().await?;
        if crate::store::products::product_by_id(&mut tx, draft.product_id).await?.is_none() {
            return Err(PlanningError::invalid("product_id", format!("no product {}", draft.product_id)));
        }
        let plan = store::insert(&mut tx, &draft).await.map_err(|e| {
            PlanningError::unique_or(e, "a supply plan of this product, period, location and version exists")
        })?;
        self.publish(&mut tx, context, "supply_plan.created", ("supply_plan", plan.id), (None, Some(&plan)))
            .await?;
        tx.commit().await?;
        Ok(plan)
    }

    /// One plan.
    pub async fn supply_plan(&self, id: i64) -> Result<SupplyPlan, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        self.supply_plan_in(&mut conn, id).await
    }

    /// A page of plans, newest period first.
    pub async fn supply_plans(
        &self,
        filter: &SupplyFilter,
        page: PageRequest,
    ) -> Result<Page<SupplyPlan>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let (items, total) = store::list(&mut conn, filter, page).await?;
        Ok(Page::new(items, total, page))
    }

    async fn change_supply_plan(
        &self,
        context: &RequestContext,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut SupplyPlan),
    ) -> Result<SupplyPlan, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.supply_plan_in(&mut tx, id).await?;
        let mut plan = before.clone();
        change(&mut plan);
        check(&plan)?;
        let after = store::update(&mut tx, &plan).await?;
        self.publish(&mut tx, context, action, ("supply_plan", id), (Some(&before), Some(&after))).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes the fields given; a new version.
    pub async fn update_supply_plan(
        &self,
        context: &RequestContext,
        id: i64,
        input: SupplyPlanUpdate,
    ) -> Result<SupplyPlan, PlanningError> {
        self.change_supply_plan(context, id, "supply_plan.updated", |p| {
            if let Some(v) = input.planned_prod_qty {
                p.planned_prod_qty = v;
            }
            if let Some(v) = input.actual_prod_qty {
                p.actual_prod_qty = v;
            }
            if let Some(v) = input.capacity_max {
                p.capacity_max = v;
            }
            if let Some(v) = input.capacity_used {
                p.capacity_used = v;
            }
            if let Some(v) = input.supplier_name {
                p.supplier_name = v;
            }
            if let Some(v) = input.lead_time_days {
                p.lead_time_days = v;
            }
            if let Some(v) = input.cost_per_unit {
                p.cost_per_unit = v;
            }
            if let Some(v) = input.constraints {
                p.constraints = v;
            }
            if let Some(v) = input.status {
                p.status = v;
            }
            p.version += 1;
        })
        .await
    }

    /// Sets the status to `to` (`submitted`, `approved`, or `draft` for a rejection).
    pub async fn set_supply_status(
        &self,
        context: &RequestContext,
        id: i64,
        to: &str,
    ) -> Result<SupplyPlan, PlanningError> {
        let action = match to {
            "submitted" => "supply_plan.submitted",
            "approved" => "supply_plan.approved",
            _ => "supply_plan.rejected",
        };
        self.change_supply_plan(context, id, action, |p| p.status = to.to_owned()).await
    }

    /// Deletes a plan.
    pub async fn delete_supply_plan(&self, context: &RequestContext, id: i64) -> Result<(), PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.supply_plan_in(&mut tx, id).await?;
        store::delete(&mut tx, id).await?;
        self.publish::<SupplyPlan>(
            &mut tx,
            context,
            "supply_plan.deleted",
            ("supply_plan", id),
            (Some(&before), None),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// One row of the gap analysis: a demand plan of the period against the product's supply and
/// stock (the later original's fields; `supply_qty`, `gap`, `gap_pct` are the coverage ones).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GapAnalysisItem {
    /// The product.
    pub product_id: i64,
    /// Its name (`Unknown` when it is gone).
    pub product_name: String,
    /// Its SKU (`N/A` when it is gone).
    pub sku: String,
    /// The period.
    pub period: NaiveDate,
    /// Consensus, else adjusted, else forecast.
    #[schema(value_type = String)]
    pub consensus_demand_qty: Dec2,
    /// The same.
    #[schema(value_type = String)]
    pub demand_qty: Dec2,
    /// The supply plan's planned production (0 without one).
    #[schema(value_type = String)]
    pub planned_production_qty: Dec2,
    /// Its actual production.
    #[schema(value_type = String)]
    pub actual_production_qty: Dec2,
    /// Planned production again.
    #[schema(value_type = String)]
    pub planned_supply_qty: Dec2,
    /// Σ max(0, on hand − allocated + in transit) over the product's positions.
    #[schema(value_type = String)]
    pub inventory_available_qty: Dec2,
    /// Planned + available.
    #[schema(value_type = String)]
    pub effective_supply_qty: Dec2,
    /// max(demand − available, 0).
    #[schema(value_type = String)]
    pub additional_prod_required_qty: Dec2,
    /// Planned − demand.
    #[schema(value_type = String)]
    pub plan_gap_qty: Dec2,
    /// Of demand, percent.
    pub plan_gap_pct: f64,
    /// Actual − demand.
    #[schema(value_type = String)]
    pub actual_gap_qty: Dec2,
    /// Of demand, percent.
    pub actual_gap_pct: f64,
    /// Effective − demand.
    #[schema(value_type = String)]
    pub coverage_gap_qty: Dec2,
    /// Of demand, percent.
    pub coverage_gap_pct: f64,
    /// Effective supply.
    #[schema(value_type = String)]
    pub supply_qty: Dec2,
    /// Coverage gap.
    #[schema(value_type = String)]
    pub gap: Dec2,
    /// Coverage gap, percent.
    pub gap_pct: f64,
    /// `critical` below −20 %, `shortage` below 0, `excess` above 20 %, else `balanced`.
    pub status: String,
}

/// `gap` of `demand`, percent (0 when there is no demand).
fn pct(gap: Dec2, demand: Dec2) -> f64 {
    if demand == Dec2::ZERO {
        0.0
    } else {
        gap.to_f64() / demand.to_f64() * 100.0
    }
}

/// The original's gap status.
pub fn gap_status(gap_pct: f64) -> &'static str {
    if gap_pct < -20.0 {
        "critical"
    } else if gap_pct < 0.0 {
        "shortage"
    } else if gap_pct > 20.0 {
        "excess"
    } else {
        "balanced"
    }
}

impl PlanningService {
    /// Each demand plan of `period` (default this month), of `product_id` when given, against
    /// its product's supply plan of the period (the last one, as the original read them) and
    /// available stock.
    pub async fn gap_analysis(
        &self,
        period: Option<NaiveDate>,
        product_id: Option<i64>,
    ) -> Result<Vec<GapAnalysisItem>, PlanningError> {
        let period = period.unwrap_or_else(crate::service::inventory::this_month);
        let mut conn = self.db().reader().acquire().await?;
        let demand = crate::store::demand::of_period(&mut conn, period).await?;
        let supply = store::of_period(&mut conn, period).await?;
        let filter = crate::store::inventory::InventoryFilter { product_id, ..Default::default() };
        let stock = crate::store::inventory::all(&mut conn, &filter).await?;
        let mut out = Vec::new();
        let mut products = std::collections::HashMap::new();
        for plan in demand.iter().filter(|p| product_id.is_none_or(|id| p.product_id == id)) {
            if let std::collections::hash_map::Entry::Vacant(slot) = products.entry(plan.product_id) {
                slot.insert(crate::store::products::product_by_id(&mut conn, plan.product_id).await?);
            }
            let product = products.get(&plan.product_id).cloned().flatten();
            let last_supply = supply.iter().rfind(|s| s.product_id == plan.product_id);
            let planned = last_supply.and_then(|s| s.planned_prod_qty).unwrap_or_default();
            let actual = last_supply.and_then(|s| s.actual_prod_qty).unwrap_or_default();
            let available = stock
                .iter()
                .filter(|(i, _)| i.product_id == plan.product_id)
                .map(|(i, _)| (i.on_hand_qty - i.allocated_qty + i.in_transit_qty).max(Dec2::ZERO))
                .fold(Dec2::ZERO, |a, b| a + b);
            let demand_qty = plan.demand();
            let effective = planned + available;
            let coverage = effective - demand_qty;
            let coverage_pct = pct(coverage, demand_qty);
            out.push(GapAnalysisItem {
                product_id: plan.product_id,
                product_name: product.as_ref().map_or_else(|| "Unknown".to_owned(), |p| p.name.clone()),
                sku: product.as_ref().map_or_else(|| "N/A".to_owned(), |p| p.sku.clone()),
                period,
                consensus_demand_qty: demand_qty,
                demand_qty,
                planned_production_qty: planned,
                actual_production_qty: actual,
                planned_supply_qty: planned,
                inventory_available_qty: available,
                effective_supply_qty: effective,
                additional_prod_required_qty: (demand_qty - available).max(Dec2::ZERO),
                plan_gap_qty: planned - demand_qty,
                plan_gap_pct: pct(planned - demand_qty, demand_qty),
                actual_gap_qty: actual - demand_qty,
                actual_gap_pct: pct(actual - demand_qty, demand_qty),
                coverage_gap_qty: coverage,
                coverage_gap_pct: coverage_pct,
                supply_qty: effective,
                gap: coverage,
                gap_pct: coverage_pct,
                status: gap_status(coverage_pct).to_owned(),
            });
        }
        Ok(out)
    }
}
