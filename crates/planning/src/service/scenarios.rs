//! What-if scenarios by the original's rules (run, submit, approve and reject take any state),
//! computed per product by [`crate::scenario`], and promoted into plans once approved.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{actor_id, present, PlanningService};
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::{DemandPlan, Scenario, ScenarioLine, SupplyPlan};
use crate::page::{Page, PageRequest};
use crate::scenario::{self, python_json, Exceptions, Parameters};
use crate::store::scenarios as store;

/// Kinds of scenario (the later original's check).
pub const SCENARIO_TYPES: [&str; 3] = ["what_if", "baseline", "stress_test"];

fn what_if() -> String {
    "what_if".into()
}

fn empty_object() -> Value {
    json!({})
}

/// `POST /scenarios`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ScenarioCreate {
    /// Its name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// `what_if` (default), `baseline` or `stress_test`.
    #[serde(default = "what_if")]
    pub scenario_type: String,
    /// What it changes: `demand_change_pct`, `supply_capacity_pct`, `price_change_pct`,
    /// `inventory_release_pct`, `period`, the trade-off's rates and weights, and `adjustments`
    /// (`[{target, change_pct | change_amount, product_id | sku | product_family | category_id}]`).
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub parameters: Value,
}

/// `PUT /scenarios/{id}`: the fields given change (not the type; the last results stay).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ScenarioUpdate {
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// What it changes.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
}

/// The plans an approved scenario became.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Promotion {
    /// The scenario.
    pub scenario_id: i64,
    /// Its month.
    pub period: String,
    /// New draft demand plan versions.
    pub demand_plans: Vec<DemandPlan>,
    /// New draft supply plan versions.
    pub supply_plans: Vec<SupplyPlan>,
}

impl PlanningService {
    /// Checks `parameters` and that the products its adjustments name exist.
    async fn checked_parameters(&self, parameters: &Value) -> Result<String, PlanningError> {
        let parsed = Parameters::parse(parameters).map_err(PlanningError::Invalid)?;
        let mut conn = self.db().reader().acquire().await?;
        let mut errors = Vec::new();
        for (i, a) in parsed.adjustments.iter().enumerate() {
            let field = |key: &str| format!("parameters.adjustments[{i}].{key}");
            let s = &a.scope;
            if let Some(id) = s.product_id {
                if crate::store::products::product_by_id(&mut conn, id).await?.is_none() {
                    errors.push(FieldError::new(field("product_id"), format!("no product {id}")));
                }
            }
            if let Some(sku) = &s.sku {
                if crate::store::products::product_by_sku(&mut conn, sku).await?.is_none() {
                    errors.push(FieldError::new(field("sku"), format!("no product with SKU {sku:?}")));
                }
            }
            if let Some(family) = &s.product_family {
                if !store::family_exists(&mut conn, family).await? {
                    errors.push(FieldError::new(
                        field("product_family"),
                        format!("no product in family {family:?}"),
                    ));
                }
            }
            if let Some(id) = s.category_id {
                if !store::category_exists(&mut conn, id).await? {
                    errors.push(FieldError::new(field("category_id"), format!("no category {id}")));
                }
            }
        }
        if !errors.is_empty() {
            return Err(PlanningError::Invalid(errors));
        }
        Ok(python_json(parameters))
    }

    /// Creates a draft scenario.
    pub async fn create_scenario(
        &self,
        context: &RequestContext,
        input: ScenarioCreate,
    ) -> Result<Scenario, PlanningError> {
        let mut errors = Vec::new();
        if input.name.trim().is_empty() {
            errors.push(FieldError::new("name", "must not be empty"));
        }
        if !SCENARIO_TYPES.contains(&input.scenario_type.as_str()) {
            errors.push(FieldError::new("scenario_type", "must be one of what_if, baseline, stress_test"));
        }
        if !errors.is_empty() {
            return Err(PlanningError::Invalid(errors));
        }
        let parameters = self.checked_parameters(&input.parameters).await?;
        let draft = Scenario {
            id: 0,
            name: input.name,
            description: input.description,
            scenario_type: input.scenario_type,
            parameters,
            results: None,
            revenue_impact: None,
            margin_impact: None,
            inventory_impact: None,
            service_level_impact: None,
            status: "draft".into(),
            created_by: actor_id(context),
            approved_by: None,
            created_at: String::new(),
            updated_at: None,
            promoted_at: None,
        };
        let mut tx = self.db().begin().await?;
        let created = store::insert(&mut tx, &draft).await?;
        self.publish(&mut tx, context, "scenario.created", ("scenario", created.id), (None, Some(&created)))
            .await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn scenario_in(&self, conn: &mut sqlx::AnyConnection, id: i64) -> Result<Scenario, PlanningError> {
        store::get(conn, id).await?.ok_or(PlanningError::NotFound { entity: "Scenario", id })
    }

    /// One scenario.
    pub async fn scenario(&self, id: i64) -> Result<Scenario, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        self.scenario_in(&mut conn, id).await
    }

    /// A page of scenarios, newest first.
    pub async fn scenarios(&self, page: PageRequest) -> Result<Page<Scenario>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let (items, total) = store::list(&mut conn, page).await?;
        Ok(Page::new(items, total, page))
    }

    /// Writes `after` over the stored scenario in one transaction, publishing `action`.
    async fn change_scenario(
        &self,
        context: &RequestContext,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Scenario) -> Result<(), PlanningError>,
    ) -> Result<Scenario, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.scenario_in(&mut tx, id).await?;
        let mut after = before.clone();
        change(&mut after)?;
        let after = store::update(&mut tx, &after).await?;
        self.publish(&mut tx, context, action, ("scenario", id), (Some(&before), Some(&after))).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes the fields given.
    pub async fn update_scenario(
        &self,
        context: &RequestContext,
        id: i64,
        input: ScenarioUpdate,
    ) -> Result<Scenario, PlanningError> {
        if input.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(PlanningError::invalid("name", "must not be empty"));
        }
        let parameters = match &input.parameters {
            Some(p) => Some(self.checked_parameters(p).await?),
            None => None,
        };
        self.change_scenario(context, id, "scenario.updated", |s| {
            if let Some(name) = input.name {
                s.name = name;
            }
            if let Some(description) = input.description {
                s.description = description;
            }
            if let Some(parameters) = parameters {
                s.parameters = parameters;
            }
            Ok(())
        })
        .await
    }

    /// Deletes a scenario whatever its status.
    pub async fn delete_scenario(&self, context: &RequestContext, id: i64) -> Result<(), PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.scenario_in(&mut tx, id).await?;
        store::delete(&mut tx, id).await?;
        self.publish::<Scenario>(
            &mut tx,
            context,
            "scenario.deleted",
            ("scenario", id),
            (Some(&before), None),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Computes the scenario over the month's plans and stock, stores the results and the
    /// product lines, and marks it `completed`.
    pub async fn run_scenario(&self, context: &RequestContext, id: i64) -> Result<Scenario, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.scenario_in(&mut tx, id).await?;
        let stored: Value = serde_json::from_str(&before.parameters).map_err(anyhow::Error::from)?;
        let parameters = Parameters::parse(&stored).map_err(PlanningError::Invalid)?;
        let period = match parameters.period {
            Some(p) => p,
            None => super::dashboard::planned_month(&mut tx).await?,
        };
        let mut inputs = store::inputs(&mut tx, period).await?;
        // A product an adjustment names takes part even without plans or stock that month.
        for a in &parameters.adjustments {
            let named = match (a.scope.product_id, a.scope.sku.as_deref()) {
                (Some(id), _) => crate::store::products::product_by_id(&mut tx, id).await?,
                (None, Some(sku)) => crate::store::products::product_by_sku(&mut tx, sku).await?,
                _ => None,
            };
            if let Some(p) = named.filter(|p| inputs.iter().all(|i| i.product_id != p.id)) {
                inputs.push(scenario::ProductInputs {
                    product_id: p.id,
                    sku: p.sku,
                    product_family: p.product_family,
                    category_id: p.category_id,
                    price: p.selling_price.map_or(0.0, Dec2::to_f64),
                    cost: p.unit_cost.map_or(0.0, Dec2::to_f64),
                    ..Default::default()
                });
            }
        }
        inputs.sort_by_key(|i| i.product_id);
        let exceptions =
            Exceptions::from_status_counts(&crate::store::inventory::status_counts(&mut tx).await?);
        let outcome = scenario::run(&parameters, period, &inputs, exceptions);
        let mut after = before.clone();
        after.results = Some(python_json(&outcome.results));
        let [revenue, margin, inventory, service] = outcome.impacts.map(|v| Some(Dec2::from_f64(v)));
        (after.revenue_impact, after.margin_impact, after.inventory_impact, after.service_level_impact) =
            (revenue, margin, inventory, service);
        after.status = "completed".into();
        let after = store::update(&mut tx, &after).await?;
        store::replace_lines(&mut tx, id, &outcome.lines).await?;
        self.publish(&mut tx, context, "scenario.run", ("scenario", id), (Some(&before), Some(&after)))
            .await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Sets the status (`submitted`, `approved` with the approver, `rejected`) from any status,
    /// as the original.
    pub async fn set_scenario_status(
        &self,
        context: &RequestContext,
        id: i64,
        status: &'static str,
    ) -> Result<Scenario, PlanningError> {
        self.change_scenario(context, id, &format!("scenario.{status}"), |s| {
            s.status = status.into();
            if status == "approved" {
                s.approved_by = actor_id(context);
            }
            Ok(())
        })
        .await
    }

    /// The scenarios of `ids` that exist, by id, with their impacts as numbers (0 when not run).
    pub async fn compare_scenarios(&self, ids: &[i64]) -> Result<Vec<Value>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let number = |d: Option<Dec2>| d.map_or(0.0, Dec2::to_f64);
        Ok(store::many(&mut conn, ids)
            .await?
            .into_iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    "name": s.name,
                    "scenario_type": s.scenario_type,
                    "revenue_impact": number(s.revenue_impact),
                    "margin_impact": number(s.margin_impact),
                    "inventory_impact": number(s.inventory_impact),
                    "service_level_impact": number(s.service_level_impact),
                    "status": s.status,
                })
            })
            .collect())
    }

    /// The last run's trade-off and service levels.
    pub async fn scenario_tradeoff(&self, id: i64) -> Result<Value, PlanningError> {
        let s = self.scenario(id).await?;
        let Some(results) = s.results.as_deref() else {
            return Ok(json!({
                "scenario_id": s.id,
                "status": s.status,
                "message": "Scenario has no computed results yet. Run the scenario first.",
                "tradeoff": null,
            }));
        };
        let r: Value = serde_json::from_str(results).map_err(anyhow::Error::from)?;
        let t = &r["tradeoff"];
        Ok(json!({
            "scenario_id": s.id,
            "status": s.status,
            "period": r["period"],
            "tradeoff": {
                "inventory_carrying_cost": t["inventory_carrying_cost"],
                "stockout_penalty_cost": t["stockout_penalty_cost"],
                "working_capital_delta": t["working_capital_delta"],
                "composite_score": t["composite_score"],
                "open_inventory_exceptions": t["open_inventory_exceptions"],
                "high_risk_exception_count": t["high_risk_exception_count"],
            },
            "service_level": {
                "baseline": r["baseline"]["service_level"],
                "scenario": r["scenario"]["service_level"],
                "delta": r["service_level_impact"],
            },
        }))
    }

    /// The last run's figures per product.
    pub async fn scenario_lines(&self, id: i64) -> Result<Vec<ScenarioLine>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        self.scenario_in(&mut conn, id).await?;
        Ok(store::lines(&mut conn, id).await?)
    }
}
