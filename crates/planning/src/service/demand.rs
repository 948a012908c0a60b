//! Demand plans and their workflow, by the original's rules: only submit checks the state (from
//! `draft`); approve and reject take any state, reject going back to `draft`; edits and
//! adjustments add a version, workflow steps do not; approved or locked plans are not deleted,
//! locked ones not edited.

use chrono::NaiveDate;
use serde::Deserialize;
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{actor_id, not_negative, present, PlanningService};
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::DemandPlan;
use crate::page::{Page, PageRequest};
use crate::store::demand::{self as store, DemandFilter};

/// Statuses a plan may have (`locked` only through an edit).
pub const DEMAND_STATUSES: [&str; 4] = ["draft", "submitted", "approved", "locked"];

/// `POST /demand/plans`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DemandPlanCreate {
    /// The product.
    pub product_id: i64,
    /// The period.
    pub period: NaiveDate,
    /// Region (`Global`).
    #[serde(default = "global")]
    pub region: String,
    /// Channel (`All`).
    #[serde(default = "all")]
    pub channel: String,
    /// The forecast.
    #[schema(value_type = String)]
    pub forecast_qty: Dec2,
    /// Adjusted.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub adjusted_qty: Option<Dec2>,
    /// Actual.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub actual_qty: Option<Dec2>,
    /// Consensus.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub consensus_qty: Option<Dec2>,
    /// Confidence, 0–100.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub confidence: Option<Dec2>,
    /// Free text.
    #[serde(default)]
    pub notes: Option<String>,
}

fn global() -> String {
    "Global".into()
}
fn all() -> String {
    "All".into()
}

/// `PUT /demand/plans/{id}`: the fields given change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct DemandPlanUpdate {
    /// The forecast.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub forecast_qty: Option<Dec2>,
    /// Adjusted.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub adjusted_qty: Option<Option<Dec2>>,
    /// Actual.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub actual_qty: Option<Option<Dec2>>,
    /// Consensus.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub consensus_qty: Option<Option<Dec2>>,
    /// Confidence.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub confidence: Option<Option<Dec2>>,
    /// Free text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// `draft`, `submitted`, `approved` or `locked`.
    #[serde(default)]
    pub status: Option<String>,
}

/// `POST /demand/plans/{id}/adjust`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct AdjustmentRequest {
    /// The new adjusted quantity.
    #[schema(value_type = String)]
    pub adjusted_qty: Dec2,
    /// Replaces the notes when not empty.
    #[serde(default)]
    pub notes: Option<String>,
}

/// `POST …/approve` and `…/reject` (the body may be left out).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ApprovalRequest {
    /// Appended to the notes.
    #[serde(default)]
    pub comments: Option<String>,
}

fn check_quantities(p: &DemandPlan) -> Result<(), PlanningError> {
    let mut errors = not_negative(&[
        ("forecast_qty", Some(p.forecast_qty)),
        ("adjusted_qty", p.adjusted_qty),
        ("actual_qty", p.actual_qty),
        ("consensus_qty", p.consensus_qty),
    ]);
    if p.confidence.is_some_and(|c| c < Dec2::ZERO || c > Dec2::units(100)) {
        errors.push(FieldError::new("confidence", "must be 0 to 100"));
    }
    if !DEMAND_STATUSES.contains(&p.status.as_str()) {
        errors.push(FieldError::new("status", format!("must be one of {}", DEMAND_STATUSES.join(", "))));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlanningError::Invalid(errors))
    }
}

/// `POST /demand/plans/from-forecast`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct FromForecast {
    /// The product.
    pub product_id: i64,
    /// The stored forecast's model (`auto`).
    #[serde(default = "auto")]
    pub model_type: String,
    /// Region (`Global`).
    #[serde(default = "global")]
    pub region: String,
    /// Channel (`All`).
    #[serde(default = "all")]
    pub channel: String,
}

fn auto() -> String {
    "auto".into()
}

/// `notes` with `[label] comments` appended on a new line, when there are comments.
fn appended(notes: Option<String>, label: &str, comments: Option<&str>) -> Option<String> {
    match comments.filter(|c| !c.is_empty()) {
        Some(c) => Some(format!("{}\n[{label}] {c}", notes.unwrap_or_default())),
        None => notes,
    }
}

impl PlanningService {
    async fn demand_plan_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
    ) -> Result<DemandPlan, PlanningError> {
        store::get(conn, id).await?.ok_or(PlanningError::NotFound { entity: "DemandPlan", id })
    }

    /// Creates a draft, version 1; the product must exist.
    pub async fn create_demand_plan(
        &self,
        context: &RequestContext,
        input: DemandPlanCreate,
    ) -> Result<DemandPlan, PlanningError> {
        let draft = DemandPlan {
            product_id: input.product_id,
            period: input.period,
            region: input.region,
            channel: input.channel,
            forecast_qty: input.forecast_qty,
            adjusted_qty: input.adjusted_qty,
            actual_qty: input.actual_qty,
            consensus_qty: input.consensus_qty,
            confidence: input.confidence,
            notes: input.notes,
            id: 0,
            status: "draft".into(),
            created_by: actor_id(context),
            approved_by: None,
            version: 1,
            created_at: String::new(),
            updated_at: None,
        };
        check_quantities(&draft)?;
        let mut tx = self.db().begin().await?;
        if crate::store::products::product_by_id(&mut tx, draft.product_id).await?.is_none() {
            return Err(PlanningError::invalid("product_id", format!("no product {}", draft.product_id)));
        }
        let plan = store::insert(&mut tx, &draft).await.map_err(|e| {
            PlanningError::unique_or(
                e,
                "a demand plan of this product, period, region, channel and version exists",
            )
        })?;
        self.publish(&mut tx, context, "demand_plan.created", ("demand_plan", plan.id), (None, Some(&plan)))
            .await?;
        tx.commit().await?;
        Ok(plan)
    }

    /// One plan.
    pub async fn demand_plan(&self, id: i64) -> Result<DemandPlan, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        self.demand_plan_in(&mut conn, id).await
    }

    /// A page of plans, newest period first.
    pub async fn demand_plans(
        &self,
        filter: &DemandFilter,
        page: PageRequest,
    ) -> Result<Page<DemandPlan>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let (items, total) = store::list(&mut conn, filter, page).await?;
        Ok(Page::new(items, total, page))
    }

    /// Applies `change` to plan `id` and stores it, publishing `action` with before and after.
    async fn change_demand_plan(
        &self,
        context: &RequestContext,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut DemandPlan) -> Result<(), PlanningError>,
    ) -> Result<DemandPlan, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.demand_plan_in(&mut tx, id).await?;
        let mut plan = before.clone();
        change(&mut plan)?;
        check_quantities(&plan)?;
        let after = store::update(&mut tx, &plan).await?;
        // A plan's actual is demand history too.
        if let Some(actual) = after.actual_qty.filter(|_| after.actual_qty != before.actual_qty) {
            crate::store::actuals::upsert(
                &mut tx,
                after.product_id,
                after.period,
                &after.region,
                &after.channel,
                actual,
            )
            .await?;
        }
        self.publish(&mut tx, context, action, ("demand_plan", id), (Some(&before), Some(&after))).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes the fields given; a new version. Locked plans are not changed.
    pub async fn update_demand_plan(
        &self,
        context: &RequestContext,
        id: i64,
        input: DemandPlanUpdate,
    ) -> Result<DemandPlan, PlanningError> {
        self.change_demand_plan(context, id, "demand_plan.updated", |p| {
            if p.status == "locked" {
                return Err(PlanningError::BusinessRule("Cannot modify a locked demand plan.".into()));
            }
            if let Some(v) = input.forecast_qty {
                p.forecast_qty = v;
            }
            if let Some(v) = input.adjusted_qty {
                p.adjusted_qty = v;
            }
            if let Some(v) = input.actual_qty {
                p.actual_qty = v;
            }
            if let Some(v) = input.consensus_qty {
                p.consensus_qty = v;
            }
            if let Some(v) = input.confidence {
                p.confidence = v;
            }
            if let Some(v) = input.notes {
                p.notes = v;
            }
            if let Some(v) = input.status {
                p.status = v;
            }
            p.version += 1;
            Ok(())
        })
        .await
    }

    /// Sets the adjusted quantity (and the notes, when given); a new version.
    pub async fn adjust_demand_plan(
        &self,
        context: &RequestContext,
        id: i64,
        input: AdjustmentRequest,
    ) -> Result<DemandPlan, PlanningError> {
        self.change_demand_plan(context, id, "demand_plan.adjusted", |p| {
            p.adjusted_qty = Some(input.adjusted_qty);
            if let Some(notes) = input.notes.filter(|n| !n.is_empty()) {
                p.notes = Some(notes);
            }
            p.version += 1;
            Ok(())
        })
        .await
    }

    /// Submits a draft for approval.
    pub async fn submit_demand_plan(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> Result<DemandPlan, PlanningError> {
        self.change_demand_plan(context, id, "demand_plan.submitted", |p| {
            if p.status != "draft" {
                return Err(PlanningError::InvalidTransition {
                    entity: "DemandPlan",
                    from: p.status.clone(),
                    to: "submitted".into(),
                });
            }
            p.status = "submitted".into();
            Ok(())
        })
        .await
    }

    /// Approves (from any state), noting the comments.
    pub async fn approve_demand_plan(
        &self,
        context: &RequestContext,
        id: i64,
        input: ApprovalRequest,
    ) -> Result<DemandPlan, PlanningError> {
        let approver = actor_id(context);
        self.change_demand_plan(context, id, "demand_plan.approved", |p| {
            p.status = "approved".into();
            p.approved_by = approver;
            p.notes = appended(p.notes.take(), "Approved", input.comments.as_deref());
            Ok(())
        })
        .await
    }

    /// Sends back to draft (from any state), noting the comments.
    pub async fn reject_demand_plan(
        &self,
        context: &RequestContext,
        id: i64,
        input: ApprovalRequest,
    ) -> Result<DemandPlan, PlanningError> {
        self.change_demand_plan(context, id, "demand_plan.rejected", |p| {
            p.status = "draft".into();
            p.notes = appended(p.notes.take(), "Rejected", input.comments.as_deref());
            Ok(())
        })
        .await
    }

    /// Takes the product's stored `model_type` forecast into demand plans: for each forecast
    /// month, a new draft version of the plan of that month, region and channel (version 1 when
    /// there is none), its forecast quantity netted against what already sold that month (the
    /// larger of the two: sales consume the forecast, and a month never plans less than it
    /// sold).
    pub async fn plans_from_forecast(
        &self,
        context: &RequestContext,
        input: FromForecast,
    ) -> Result<Vec<DemandPlan>, PlanningError> {
        let mut tx = self.db().begin().await?;
        if crate::store::products::product_by_id(&mut tx, input.product_id).await?.is_none() {
            return Err(PlanningError::invalid("product_id", format!("no product {}", input.product_id)));
        }
        let filter = crate::store::forecasts::ForecastFilter {
            product_id: Some(input.product_id),
            model_type: Some(input.model_type.clone()),
            ..Default::default()
        };
        let forecasts = crate::store::forecasts::list(&mut tx, &filter, 120).await?;
        if forecasts.is_empty() {
            return Err(PlanningError::invalid(
                "model_type",
                format!(
                    "no stored {} forecast of product {}: generate one first",
                    input.model_type, input.product_id
                ),
            ));
        }
        let mut created = Vec::with_capacity(forecasts.len());
        for f in forecasts {
            let newest =
                store::newest_version(&mut tx, input.product_id, f.period, &input.region, &input.channel)
                    .await?;
            let actual = crate::store::actuals::get(
                &mut tx,
                input.product_id,
                f.period,
                &input.region,
                &input.channel,
            )
            .await?;
            let netted = actual.map_or(f.predicted_qty, |a| a.max(f.predicted_qty));
            let mut notes = format!("From the {} forecast ({})", f.model_type, f.model);
            if let Some(a) = actual {
                notes.push_str(&format!("; netted against {a} sold"));
            }
            let draft = DemandPlan {
                product_id: input.product_id,
                period: f.period,
                region: input.region.clone(),
                channel: input.channel.clone(),
                forecast_qty: netted,
                adjusted_qty: None,
                actual_qty: actual,
                consensus_qty: None,
                confidence: Some(f.confidence),
                notes: Some(notes),
                id: 0,
                status: "draft".into(),
                created_by: actor_id(context),
                approved_by: None,
                version: newest.map_or(1, |p| p.version + 1),
                created_at: String::new(),
                updated_at: None,
            };
            let plan = store::insert(&mut tx, &draft).await?;
            self.publish(
                &mut tx,
                context,
                "demand_plan.created_from_forecast",
                ("demand_plan", plan.id),
                (None, Some(&plan)),
            )
            .await?;
            created.push(plan);
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Deletes a plan that is neither approved nor locked.
    pub async fn delete_demand_plan(&self, context: &RequestContext, id: i64) -> Result<(), PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.demand_plan_in(&mut tx, id).await?;
        if before.status == "approved" || before.status == "locked" {
            return Err(PlanningError::BusinessRule("Cannot delete approved or locked demand plans.".into()));
        }
        store::delete(&mut tx, id).await?;
        self.publish::<DemandPlan>(
            &mut tx,
            context,
            "demand_plan.deleted",
            ("demand_plan", id),
            (Some(&before), None),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_appended_on_a_new_line_as_the_original_did() {
        assert_eq!(appended(None, "Approved", Some("ok")).as_deref(), Some("\n[Approved] ok"));
        assert_eq!(
            appended(Some("n1".into()), "Rejected", Some("redo")).as_deref(),
            Some("n1\n[Rejected] redo")
        );
        assert_eq!(appended(Some("n1".into()), "Rejected", Some("")).as_deref(), Some("n1"));
        assert_eq!(appended(None, "Rejected", None), None);
    }
}
