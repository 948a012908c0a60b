//! Promotion of an approved scenario into plans: for each product whose demand or supply the
//! scenario changed, a new draft version of each of the month's plans (the newest version per
//! region and channel, or per location), scaled so the product's total is the scenario's. A
//! product with no plan, or plans summing to 0, gets its whole quantity on one plan (version 1
//! of `Global`/`All`, or of `Main`, when it has none).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sightline_platform::RequestContext;

use super::scenarios::Promotion;
use super::{actor_id, PlanningService};
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::{DemandPlan, ScenarioLine, SupplyPlan};
use crate::store::scenarios as store;

/// The newest version of each plan in `plans`, keyed by `key`, grouped by product.
fn newest<P: Clone>(
    plans: Vec<P>,
    product: impl Fn(&P) -> i64,
    key: impl Fn(&P) -> String,
    version: impl Fn(&P) -> i64,
) -> BTreeMap<i64, Vec<P>> {
    let mut latest: BTreeMap<(i64, String), P> = BTreeMap::new();
    for p in plans {
        let k = (product(&p), key(&p));
        if latest.get(&k).is_none_or(|q| version(q) < version(&p)) {
            latest.insert(k, p);
        }
    }
    let mut by_product: BTreeMap<i64, Vec<P>> = BTreeMap::new();
    for ((product_id, _), p) in latest {
        by_product.entry(product_id).or_default().push(p);
    }
    by_product
}

/// Each of `quantities` scaled so they sum to `total` to the hundredth (the rounding's
/// remainder on the largest; all of it on the first when they sum to 0).
fn scaled(quantities: &[Dec2], total: f64) -> Vec<Dec2> {
    let base: i64 = quantities.iter().map(|q| q.0).sum();
    let total = Dec2::from_f64(total);
    let mut out: Vec<Dec2> =
        quantities
            .iter()
            .map(|q| {
                if base == 0 {
                    Dec2::ZERO
                } else {
                    Dec2::from_f64(total.to_f64() * q.0 as f64 / base as f64)
                }
            })
            .collect();
    let given: i64 = out.iter().map(|d| d.0).sum();
    let largest = (0..quantities.len()).max_by_key(|&i| (quantities[i], std::cmp::Reverse(i))).unwrap_or(0);
    if let Some(slot) = out.get_mut(largest) {
        slot.0 += total.0 - given;
    }
    out
}

fn changed(before: f64, after: f64) -> bool {
    Dec2::from_f64(before) != Dec2::from_f64(after)
}

/// A demand plan's quantity: consensus, else adjusted, else forecast.
fn demand_qty(p: &DemandPlan) -> Dec2 {
    p.consensus_qty.or(p.adjusted_qty).unwrap_or(p.forecast_qty)
}

impl PlanningService {
    /// Takes an approved, run scenario into new draft plan versions (once).
    pub async fn promote_scenario(
        &self,
        context: &RequestContext,
        id: i64,
    ) -> Result<Promotion, PlanningError> {
        let mut tx = self.db().begin().await?;
        let before =
            store::get(&mut tx, id).await?.ok_or(PlanningError::NotFound { entity: "Scenario", id })?;
        if before.status != "approved" {
            return Err(PlanningError::InvalidTransition {
                entity: "Scenario",
                from: before.status,
                to: "promoted".into(),
            });
        }
        let Some(results) = before.results.as_deref() else {
            return Err(PlanningError::BusinessRule("Run the scenario before promoting it.".into()));
        };
        // Claimed first: a second promotion, even a concurrent one, finds it taken.
        if !store::claim_promotion(&mut tx, id).await? {
            let at = before.promoted_at.unwrap_or_default();
            return Err(PlanningError::Conflict(format!("Scenario {id} was promoted at {at}.")));
        }
        let results: serde_json::Value = serde_json::from_str(results).map_err(anyhow::Error::from)?;
        let period = results["period"]
            .as_str()
            .and_then(|p| NaiveDate::parse_from_str(p, "%Y-%m-%d").ok())
            .ok_or_else(|| anyhow::anyhow!("scenario {id}'s results have no period"))?;
        let lines = store::lines(&mut tx, id).await?;
        let note = format!("From scenario #{id} ({})", before.name);
        let demand = newest(
            crate::store::demand::of_period(&mut tx, period).await?,
            |p| p.product_id,
            |p| format!("{}\u{1f}{}", p.region, p.channel),
            |p| p.version,
        );
        let supply = newest(
            crate::store::supply::of_period(&mut tx, period).await?,
            |p| p.product_id,
            |p| p.location.clone(),
            |p| p.version,
        );
        let mut promotion = Promotion {
            scenario_id: id,
            period: period.to_string(),
            demand_plans: vec![],
            supply_plans: vec![],
        };
        for line in &lines {
            if changed(line.baseline.demand_qty, line.scenario.demand_qty) {
                let plans = demand.get(&line.product_id).cloned().unwrap_or_default();
                for plan in self.demand_versions(context, line, period, plans, &note) {
                    let plan = crate::store::demand::insert(&mut tx, &plan).await.map_err(|e| {
                        PlanningError::unique_or(e, "a plan version was made meanwhile; try again")
                    })?;
                    self.publish(
                        &mut tx,
                        context,
                        "demand_plan.created_from_scenario",
                        ("demand_plan", plan.id),
                        (None, Some(&plan)),
                    )
                    .await?;
                    promotion.demand_plans.push(plan);
                }
            }
            if changed(line.baseline.supply_qty, line.scenario.supply_qty) {
                let plans = supply.get(&line.product_id).cloned().unwrap_or_default();
                for plan in self.supply_versions(context, line, period, plans) {
                    let plan = crate::store::supply::insert(&mut tx, &plan).await.map_err(|e| {
                        PlanningError::unique_or(e, "a plan version was made meanwhile; try again")
                    })?;
                    self.publish(
                        &mut tx,
                        context,
                        "supply_plan.created_from_scenario",
                        ("supply_plan", plan.id),
                        (None, Some(&plan)),
                    )
                    .await?;
                    promotion.supply_plans.push(plan);
                }
            }
        }
        let after =
            store::get(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("scenario {id} just claimed"))?;
        self.publish(&mut tx, context, "scenario.promoted", ("scenario", id), (Some(&before), Some(&after)))
            .await?;
        tx.commit().await?;
        Ok(promotion)
    }

    fn demand_versions(
        &self,
        context: &RequestContext,
        line: &ScenarioLine,
        period: NaiveDate,
        mut plans: Vec<DemandPlan>,
        note: &str,
    ) -> Vec<DemandPlan> {
        if plans.is_empty() {
            plans.push(DemandPlan {
                product_id: line.product_id,
                period,
                region: "Global".into(),
                channel: "All".into(),
                forecast_qty: Dec2::ZERO,
                adjusted_qty: None,
                actual_qty: None,
                consensus_qty: None,
                confidence: None,
                notes: None,
                id: 0,
                status: "draft".into(),
                created_by: None,
                approved_by: None,
                version: 0,
                created_at: String::new(),
                updated_at: None,
            });
        }
        let quantities: Vec<Dec2> = plans.iter().map(demand_qty).collect();
        plans
            .into_iter()
            .zip(scaled(&quantities, line.scenario.demand_qty))
            .map(|(p, qty)| DemandPlan {
                adjusted_qty: Some(qty),
                consensus_qty: None,
                notes: Some(note.to_owned()),
                status: "draft".into(),
                created_by: actor_id(context),
                approved_by: None,
                version: p.version + 1,
                ..p
            })
            .collect()
    }

    fn supply_versions(
        &self,
        context: &RequestContext,
        line: &ScenarioLine,
        period: NaiveDate,
        mut plans: Vec<SupplyPlan>,
    ) -> Vec<SupplyPlan> {
        if plans.is_empty() {
            plans.push(SupplyPlan {
                product_id: line.product_id,
                period,
                location: "Main".into(),
                planned_prod_qty: None,
                actual_prod_qty: None,
                capacity_max: None,
                capacity_used: None,
                supplier_name: None,
                lead_time_days: None,
                cost_per_unit: None,
                constraints: None,
                id: 0,
                status: "draft".into(),
                created_by: None,
                version: 0,
                created_at: String::new(),
                updated_at: None,
            });
        }
        let quantities: Vec<Dec2> = plans.iter().map(|p| p.planned_prod_qty.unwrap_or_default()).collect();
        plans
            .into_iter()
            .zip(scaled(&quantities, line.scenario.supply_qty))
            .map(|(p, qty)| SupplyPlan {
                planned_prod_qty: Some(qty),
                status: "draft".into(),
                created_by: actor_id(context),
                version: p.version + 1,
                ..p
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_scaled_to_the_new_total_or_put_on_the_first_plan() {
        let d = |v: i64| Dec2::units(v);
        assert_eq!(scaled(&[d(300), d(100)], 600.0), vec![d(450), d(150)]);
        assert_eq!(scaled(&[d(0), d(0)], 50.0), vec![d(50), d(0)]);
        assert_eq!(scaled(&[d(10)], 0.0), vec![d(0)]);
        assert_eq!(
            scaled(&[d(1), d(1), d(1)], 100.0),
            vec![Dec2(3_334), Dec2(3_333), Dec2(3_333)],
            "every cent placed"
        );
    }
}
