//! The S&OP cycle's executive scorecard (the later original's): the scenario that speaks for
//! the cycle's month (a run one first, then an approved one; the first whose month is the
//! cycle's, else the first), its service, cost and cash figures, the inventory's open exceptions,
//! and a decision signal.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::PlanningService;
use crate::error::PlanningError;
use crate::model::Scenario;

/// The service figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ServiceFigures {
    /// Service level before the scenario, %.
    pub baseline_service_level: f64,
    /// After, %.
    pub scenario_service_level: f64,
    /// After minus before, points.
    pub delta_service_level: f64,
}

/// The cost figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct CostFigures {
    /// Carrying cost of the excess.
    pub inventory_carrying_cost: f64,
    /// Penalty of the units short.
    pub stockout_penalty_cost: f64,
    /// The scenario's composite score.
    pub composite_tradeoff_score: f64,
}

/// The cash figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct CashFigures {
    /// Month-end inventory value, scenario minus baseline.
    pub working_capital_delta: f64,
    /// The scenario's month-end inventory value.
    pub inventory_value_estimate: f64,
}

/// The risk figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct RiskFigures {
    /// Positions low or critical.
    pub open_exceptions: f64,
    /// Of those, critical.
    pub high_risk_exceptions: f64,
    /// Positions due a reorder with none in transit.
    pub pending_recommendations: f64,
    /// `low`, `medium` or `high`.
    pub backlog_risk: String,
}

/// `GET /sop-cycles/{id}/executive-scorecard`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ExecutiveScorecard {
    /// The cycle.
    pub cycle_id: i64,
    /// Its name.
    pub cycle_name: String,
    /// Its month.
    pub period: String,
    /// The scenario's name, if one was found.
    pub scenario_reference: Option<String>,
    /// Service.
    pub service: ServiceFigures,
    /// Cost.
    pub cost: CostFigures,
    /// Cash.
    pub cash: CashFigures,
    /// Risk.
    pub risk: RiskFigures,
    /// `recommended`, `not_recommended` or `review_required`.
    pub decision_signal: String,
}

/// `high` past 50 pending reorders or 20 critical positions, `medium` past 20 or 5, else `low`.
pub fn backlog_risk(pending: i64, high: i64) -> &'static str {
    if pending > 50 || high > 20 {
        "high"
    } else if pending > 20 || high > 5 {
        "medium"
    } else {
        "low"
    }
}

/// `recommended` when service rises a point or more at a composite score ≥ 0 and the backlog is
/// not high; `not_recommended` when service falls and the backlog is high; else `review_required`.
pub fn decision_signal(service_delta: f64, composite: f64, backlog: &str) -> &'static str {
    if service_delta >= 1.0 && composite >= 0.0 && backlog != "high" {
        "recommended"
    } else if service_delta < 0.0 && backlog == "high" {
        "not_recommended"
    } else {
        "review_required"
    }
}

/// The candidate whose results' month is `period`, else the first; with its results.
fn pick(candidates: Vec<Scenario>, period: &str) -> Option<(Scenario, Value)> {
    let parsed: Vec<(Scenario, Value)> = candidates
        .into_iter()
        .filter_map(|s| {
            let results = serde_json::from_str(s.results.as_deref()?).ok()?;
            Some((s, results))
        })
        .collect();
    let at = parsed.iter().position(|(_, r)| r["period"].as_str() == Some(period)).unwrap_or(0);
    parsed.into_iter().nth(at)
}

impl PlanningService {
    /// The cycle's executive scorecard.
    pub async fn executive_scorecard(&self, id: i64) -> Result<ExecutiveScorecard, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let cycle = crate::store::sop::get(&mut conn, id)
            .await?
            .ok_or(PlanningError::NotFound { entity: "SOPCycle", id })?;
        let period = cycle.period.to_string();
        let mut candidates = crate::store::scenarios::with_status(&mut conn, "completed").await?;
        candidates.extend(crate::store::scenarios::with_status(&mut conn, "approved").await?);
        let chosen = pick(candidates, &period);
        let counts = crate::store::inventory::status_counts(&mut conn).await?;
        let exceptions = crate::scenario::Exceptions::from_status_counts(&counts);
        let pending = crate::store::inventory::reorders_due(&mut conn).await?;
        let backlog = backlog_risk(pending, exceptions.high);
        let number = |v: &Value| v.as_f64().unwrap_or(0.0);
        let (service, cost, cash) = match &chosen {
            Some((_, r)) => (
                ServiceFigures {
                    baseline_service_level: number(&r["baseline"]["service_level"]),
                    scenario_service_level: number(&r["scenario"]["service_level"]),
                    delta_service_level: number(&r["service_level_impact"]),
                },
                CostFigures {
                    inventory_carrying_cost: number(&r["tradeoff"]["inventory_carrying_cost"]),
                    stockout_penalty_cost: number(&r["tradeoff"]["stockout_penalty_cost"]),
                    composite_tradeoff_score: number(&r["tradeoff"]["composite_score"]),
                },
                CashFigures {
                    working_capital_delta: number(&r["tradeoff"]["working_capital_delta"]),
                    inventory_value_estimate: number(&r["scenario"]["inventory_value"]),
                },
            ),
            None => Default::default(),
        };
        let signal = decision_signal(service.delta_service_level, cost.composite_tradeoff_score, backlog);
        Ok(ExecutiveScorecard {
            cycle_id: cycle.id,
            cycle_name: cycle.cycle_name,
            period,
            scenario_reference: chosen.map(|(s, _)| s.name),
            service,
            cost,
            cash,
            risk: RiskFigures {
                open_exceptions: exceptions.open as f64,
                high_risk_exceptions: exceptions.high as f64,
                pending_recommendations: pending as f64,
                backlog_risk: backlog.into(),
            },
            decision_signal: signal.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backlog_and_signal_follow_the_originals_thresholds() {
        assert_eq!(backlog_risk(51, 0), "high");
        assert_eq!(backlog_risk(50, 21), "high");
        assert_eq!(backlog_risk(21, 0), "medium");
        assert_eq!(backlog_risk(0, 6), "medium");
        assert_eq!(backlog_risk(20, 5), "low");
        assert_eq!(decision_signal(1.0, 0.0, "medium"), "recommended");
        assert_eq!(decision_signal(1.0, 0.0, "high"), "review_required");
        assert_eq!(decision_signal(-0.5, 3.0, "high"), "not_recommended");
        assert_eq!(decision_signal(0.5, 3.0, "low"), "review_required");
    }
}
