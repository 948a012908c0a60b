//! S&OP cycles by the original's rules: five steps; advance completes the current step and
//! moves on (only an active cycle, not past the fifth); complete closes the cycle from any step.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{present, PlanningService};
use crate::error::PlanningError;
use crate::model::{SopCycle, SOP_STEPS};
use crate::page::{Page, PageRequest};
use crate::store::sop as store;

/// `POST /sop-cycles`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SopCycleCreate {
    /// Its name.
    pub cycle_name: String,
    /// The month it plans.
    pub period: NaiveDate,
    /// Step 1's due date.
    #[serde(default)]
    pub step_1_due_date: Option<NaiveDate>,
    /// Step 1's owner (user id).
    #[serde(default)]
    pub step_1_owner_id: Option<String>,
    /// Step 2's due date.
    #[serde(default)]
    pub step_2_due_date: Option<NaiveDate>,
    /// Step 2's owner (user id).
    #[serde(default)]
    pub step_2_owner_id: Option<String>,
    /// Step 3's due date.
    #[serde(default)]
    pub step_3_due_date: Option<NaiveDate>,
    /// Step 3's owner (user id).
    #[serde(default)]
    pub step_3_owner_id: Option<String>,
    /// Step 4's due date.
    #[serde(default)]
    pub step_4_due_date: Option<NaiveDate>,
    /// Step 4's owner (user id).
    #[serde(default)]
    pub step_4_owner_id: Option<String>,
    /// Step 5's due date.
    #[serde(default)]
    pub step_5_due_date: Option<NaiveDate>,
    /// Step 5's owner (user id).
    #[serde(default)]
    pub step_5_owner_id: Option<String>,
    /// Free text.
    #[serde(default)]
    pub notes: Option<String>,
}

/// `PUT /sop-cycles/{id}`: the fields given change (steps' statuses, the current step and
/// the overall status only through advance and complete).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct SopCycleUpdate {
    /// Its name.
    #[serde(default)]
    pub cycle_name: Option<String>,
    /// The month.
    #[serde(default)]
    pub period: Option<NaiveDate>,
    /// Step 1's due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_1_due_date: Option<Option<NaiveDate>>,
    /// Step 1's owner.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_1_owner_id: Option<Option<String>>,
    /// Step 2's due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_2_due_date: Option<Option<NaiveDate>>,
    /// Step 2's owner.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_2_owner_id: Option<Option<String>>,
    /// Step 3's due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_3_due_date: Option<Option<NaiveDate>>,
    /// Step 3's owner.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_3_owner_id: Option<Option<String>>,
    /// Step 4's due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_4_due_date: Option<Option<NaiveDate>>,
    /// Step 4's owner.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_4_owner_id: Option<Option<String>>,
    /// Step 5's due date.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_5_due_date: Option<Option<NaiveDate>>,
    /// Step 5's owner.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub step_5_owner_id: Option<Option<String>>,
    /// Free text.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub notes: Option<Option<String>>,
    /// What was decided.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub decisions: Option<Option<String>>,
    /// What is to be done.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub action_items: Option<Option<String>>,
}

/// A step in `GET /dashboard/sop-status`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StepStatus {
    /// 1–5.
    pub step: i64,
    /// Its name.
    pub name: String,
    /// `pending` or `completed`.
    pub status: String,
    /// Due.
    pub due_date: Option<NaiveDate>,
}

impl PlanningService {
    /// Creates an active cycle at step 1, every step pending.
    pub async fn create_sop_cycle(
        &self,
        context: &RequestContext,
        input: SopCycleCreate,
    ) -> Result<SopCycle, PlanningError> {
        if input.cycle_name.trim().is_empty() {
            return Err(PlanningError::invalid("cycle_name", "must not be empty"));
        }
        let draft = SopCycle {
            cycle_name: input.cycle_name,
            period: input.period,
            step_1_due_date: input.step_1_due_date,
            step_1_owner_id: input.step_1_owner_id,
            step_1_status: "pending".into(),
            step_2_due_date: input.step_2_due_date,
            step_2_owner_id: input.step_2_owner_id,
            step_2_status: "pending".into(),
            step_3_due_date: input.step_3_due_date,
            step_3_owner_id: input.step_3_owner_id,
            step_3_status: "pending".into(),
            step_4_due_date: input.step_4_due_date,
            step_4_owner_id: input.step_4_owner_id,
            step_4_status: "pending".into(),
            step_5_due_date: input.step_5_due_date,
            step_5_owner_id: input.step_5_owner_id,
            step_5_status: "pending".into(),
            notes: input.notes,
            id: 0,
            current_step: 1,
            decisions: None,
            action_items: None,
            overall_status: "active".into(),
            created_at: String::new(),
            updated_at: None,
        };
        let mut tx = self.db().begin().await?;
        let id = store::save(&mut tx, &draft).await?;
        let cycle = store::get(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("the cycle just made"))?;
        self.publish(&mut tx, context, "sop_cycle.created", ("sop_cycle", id), (None, Some(&cycle))).await?;
        tx.commit().await?;
        Ok(cycle)
    }

    async fn sop_cycle_in(&self, conn: &mut sqlx::AnyConnection, id: i64) -> Result<SopCycle, PlanningError> {
        store::get(conn, id).await?.ok_or(PlanningError::NotFound { entity: "SOPCycle", id })
    }

    /// One cycle.
    pub async fn sop_cycle(&self, id: i64) -> Result<SopCycle, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        self.sop_cycle_in(&mut conn, id).await
    }

    /// The active cycle of the latest period.
    pub async fn active_sop_cycle(&self) -> Result<Option<SopCycle>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        Ok(store::active(&mut conn).await?)
    }

    /// A page of cycles, latest period first.
    pub async fn sop_cycles(&self, page: PageRequest) -> Result<Page<SopCycle>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let (items, total) = store::list(&mut conn, page).await?;
        Ok(Page::new(items, total, page))
    }

    async fn change_sop_cycle(
        &self,
        context: &RequestContext,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut SopCycle) -> Result<(), PlanningError>,
    ) -> Result<SopCycle, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before = self.sop_cycle_in(&mut tx, id).await?;
        let mut c = before.clone();
        change(&mut c)?;
        store::save(&mut tx, &c).await?;
        let after = self.sop_cycle_in(&mut tx, id).await?;
        self.publish(&mut tx, context, action, ("sop_cycle", id), (Some(&before), Some(&after))).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes the fields given.
    pub async fn update_sop_cycle(
        &self,
        context: &RequestContext,
        id: i64,
        input: SopCycleUpdate,
    ) -> Result<SopCycle, PlanningError> {
        self.change_sop_cycle(context, id, "sop_cycle.updated", |c| {
            if let Some(v) = input.cycle_name {
                if v.trim().is_empty() {
                    return Err(PlanningError::invalid("cycle_name", "must not be empty"));
                }
                c.cycle_name = v;
            }
            if let Some(v) = input.period {
                c.period = v;
            }
            if let Some(v) = input.step_1_due_date {
                c.step_1_due_date = v;
            }
            if let Some(v) = input.step_1_owner_id {
                c.step_1_owner_id = v;
            }
            if let Some(v) = input.step_2_due_date {
                c.step_2_due_date = v;
            }
            if let Some(v) = input.step_2_owner_id {
                c.step_2_owner_id = v;
            }
            if let Some(v) = input.step_3_due_date {
                c.step_3_due_date = v;
            }
            if let Some(v) = input.step_3_owner_id {
                c.step_3_owner_id = v;
            }
            if let Some(v) = input.step_4_due_date {
                c.step_4_due_date = v;
            }
            if let Some(v) = input.step_4_owner_id {
                c.step_4_owner_id = v;
            }
            if let Some(v) = input.step_5_due_date {
                c.step_5_due_date = v;
            }
            if let Some(v) = input.step_5_owner_id {
                c.step_5_owner_id = v;
            }
            if let Some(v) = input.notes {
                c.notes = v;
            }
            if let Some(v) = input.decisions {
                c.decisions = v;
            }
            if let Some(v) = input.action_items {
                c.action_items = v;
            }
            Ok(())
        })
        .await
    }

    /// Completes the current step and moves to the next (the next stays pending).
    pub async fn advance_sop_cycle(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> Result<SopCycle, PlanningError> {
        self.change_sop_cycle(context, id, "sop_cycle.advanced", |c| {
            if c.overall_status != "active" {
                return Err(PlanningError::BusinessRule("Can only advance an active S&OP cycle.".into()));
            }
            if c.current_step >= 5 {
                return Err(PlanningError::BusinessRule(
                    "S&OP cycle is already at the final step (Executive S&OP).".into(),
                ));
            }
            if let Some(status) = c.status_mut(c.current_step) {
                *status = "completed".into();
            }
            c.current_step += 1;
            Ok(())
        })
        .await
    }

    /// Closes the cycle from any step: the fifth step and the cycle completed.
    pub async fn complete_sop_cycle(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> Result<SopCycle, PlanningError> {
        self.change_sop_cycle(context, id, "sop_cycle.completed", |c| {
            c.step_5_status = "completed".into();
            c.overall_status = "completed".into();
            Ok(())
        })
        .await
    }
}

/// The five steps of `c` with their names.
pub fn steps_of(c: &SopCycle) -> Vec<StepStatus> {
    (1..=5)
        .map(|n| {
            let (status, due_date) = c.step(n);
            StepStatus {
                step: n,
                name: SOP_STEPS[(n - 1) as usize].to_owned(),
                status: status.to_owned(),
                due_date,
            }
        })
        .collect()
}
