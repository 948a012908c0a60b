//! Inventory positions: the original's list, health, alerts and edits (status recomputed on
//! every write by its rule), with days of supply and valuation computed from demand history and
//! unit costs when answering (the original left them blank), and the policy override.

use chrono::{Datelike as _, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sightline_platform::error::FieldError;
use sightline_platform::RequestContext;
use utoipa::ToSchema;

use super::{not_negative, present, PlanningService};
use crate::decimal::Dec2;
use crate::error::PlanningError;
use crate::model::{inventory_status, Inventory};
use crate::page::{Page, PageRequest};
use crate::store::inventory::{self as store, InventoryFilter};

/// Months of history the recent demand is the mean of.
pub const RECENT_MONTHS: usize = 6;

/// `PUT /inventory/{id}`: the fields given change (location, status, days of supply and
/// valuation are not set by hand).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct InventoryUpdate {
    /// On hand.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub on_hand_qty: Option<Dec2>,
    /// Allocated.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub allocated_qty: Option<Dec2>,
    /// In transit.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub in_transit_qty: Option<Dec2>,
    /// Safety stock.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub safety_stock: Option<Dec2>,
    /// Reorder point.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reorder_point: Option<Dec2>,
    /// Most to hold (`null`: no maximum).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub max_stock: Option<Option<Dec2>>,
    /// Last receipt.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub last_receipt_date: Option<Option<NaiveDate>>,
    /// Last issue.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub last_issue_date: Option<Option<NaiveDate>>,
}

/// `PUT /inventory/policies/{id}/override`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct PolicyOverride {
    /// Safety stock.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub safety_stock: Option<Dec2>,
    /// Reorder point.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub reorder_point: Option<Dec2>,
    /// Most to hold.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub max_stock: Option<Dec2>,
    /// Why (3–500 characters; kept in the audit log).
    pub reason: String,
}

/// `GET /inventory/health`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InventoryHealth {
    /// Positions (inventory rows).
    pub total_products: i64,
    /// `normal` positions.
    pub normal_count: i64,
    /// `low` positions.
    pub low_count: i64,
    /// `critical` positions.
    pub critical_count: i64,
    /// `excess` positions.
    pub excess_count: i64,
    /// Σ valuation, a decimal string (`"0"` without positions).
    #[schema(value_type = String)]
    pub total_value: Value,
    /// Percent of positions, one decimal.
    pub normal_pct: f64,
    /// Percent `low`.
    pub low_pct: f64,
    /// Percent `critical`.
    pub critical_pct: f64,
    /// Percent `excess`.
    pub excess_pct: f64,
}

/// One position in `GET /inventory/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct InventoryAlert {
    /// The position.
    pub id: i64,
    /// The product.
    pub product_id: i64,
    /// Where.
    pub location: String,
    /// On hand (a number).
    pub on_hand_qty: f64,
}

/// `GET /inventory/alerts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct InventoryAlerts {
    /// Below the reorder point.
    pub critical: Vec<InventoryAlert>,
    /// Below safety stock.
    pub low: Vec<InventoryAlert>,
    /// Above the maximum.
    pub excess: Vec<InventoryAlert>,
}

/// The mean monthly demand over the latest [`RECENT_MONTHS`] periods up to `month` that have
/// any, from `history` (periods in order); `None` without any.
pub fn recent_monthly_demand(history: &[(NaiveDate, Dec2)], month: NaiveDate) -> Option<f64> {
    let recent: Vec<f64> = history
        .iter()
        .rev()
        .filter(|(p, _)| *p <= month)
        .take(RECENT_MONTHS)
        .map(|(_, q)| q.to_f64())
        .collect();
    (!recent.is_empty()).then(|| recent.iter().sum::<f64>() / recent.len() as f64)
}

/// Days `on_hand` lasts at `monthly` demand (30-day months), two decimals; `None` without demand.
pub fn days_of_supply(on_hand: Dec2, monthly: Option<f64>) -> Option<Dec2> {
    monthly.filter(|m| *m > 0.0).map(|m| Dec2::from_f64(on_hand.to_f64() / (m / 30.0)))
}

/// `on_hand × unit_cost`, rounded to hundredths.
pub fn valuation(on_hand: Dec2, unit_cost: Option<Dec2>) -> Option<Dec2> {
    unit_cost.map(|c| {
        let ten_thousandths = i128::from(on_hand.0) * i128::from(c.0);
        let rounded = (ten_thousandths + if ten_thousandths >= 0 { 50 } else { -50 }) / 100;
        Dec2(i64::try_from(rounded).unwrap_or(i64::MAX))
    })
}

fn check(p: &Inventory) -> Result<(), PlanningError> {
    let errors = not_negative(&[
        ("on_hand_qty", Some(p.on_hand_qty)),
        ("allocated_qty", Some(p.allocated_qty)),
        ("in_transit_qty", Some(p.in_transit_qty)),
        ("safety_stock", Some(p.safety_stock)),
        ("reorder_point", Some(p.reorder_point)),
        ("max_stock", p.max_stock),
    ]);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PlanningError::Invalid(errors))
    }
}

/// The first day of today's month (UTC).
pub fn this_month() -> NaiveDate {
    let today = Utc::now().date_naive();
    today.with_day(1).unwrap_or(today)
}

impl PlanningService {
    /// `rows` with days of supply and valuation filled in.
    pub(crate) async fn completed(
        &self,
        conn: &mut sqlx::AnyConnection,
        rows: Vec<(Inventory, Option<Dec2>)>,
    ) -> Result<Vec<Inventory>, PlanningError> {
        let mut ids: Vec<i64> = rows.iter().map(|(i, _)| i.product_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let history = crate::store::actuals::monthly(conn, Some(&ids)).await?;
        let month = this_month();
        Ok(rows
            .into_iter()
            .map(|(mut i, cost)| {
                let monthly = history.get(&i.product_id).and_then(|h| recent_monthly_demand(h, month));
                i.days_of_supply = days_of_supply(i.on_hand_qty, monthly);
                i.valuation = valuation(i.on_hand_qty, cost);
                i
            })
            .collect())
    }

    /// A page of positions.
    pub async fn inventory(
        &self,
        filter: &InventoryFilter,
        page: PageRequest,
    ) -> Result<Page<Inventory>, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let (rows, total) = store::list(&mut conn, filter, page).await?;
        let items = self.completed(&mut conn, rows).await?;
        Ok(Page::new(items, total, page))
    }

    /// One position.
    pub async fn inventory_item(&self, id: i64) -> Result<Inventory, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let row =
            store::get(&mut conn, id).await?.ok_or(PlanningError::NotFound { entity: "Inventory", id })?;
        Ok(self.completed(&mut conn, vec![row]).await?.remove(0))
    }

    /// Applies `change` to position `id`, recomputes its status, stores it and publishes
    /// `action` with before and after.
    async fn change_inventory(
        &self,
        context: &RequestContext,
        id: i64,
        action: &str,
        change: impl FnOnce(&mut Inventory),
    ) -> Result<Inventory, PlanningError> {
        let mut tx = self.db().begin().await?;
        let (before, cost) =
            store::get(&mut tx, id).await?.ok_or(PlanningError::NotFound { entity: "Inventory", id })?;
        let mut item = before.clone();
        change(&mut item);
        check(&item)?;
        item.status =
            inventory_status(item.on_hand_qty, item.reorder_point, item.safety_stock, item.max_stock)
                .to_owned();
        store::save(&mut tx, &item).await?;
        let stored = store::get(&mut tx, id).await?.unwrap_or((item, cost));
        let after = self.completed(&mut tx, vec![stored]).await?.remove(0);
        self.publish(&mut tx, context, action, ("inventory", id), (Some(&before), Some(&after))).await?;
        tx.commit().await?;
        Ok(after)
    }

    /// Changes the fields given; the status follows.
    pub async fn update_inventory(
        &self,
        context: &RequestContext,
        id: i64,
        input: InventoryUpdate,
    ) -> Result<Inventory, PlanningError> {
        self.change_inventory(context, id, "inventory.updated", |i| {
            if let Some(v) = input.on_hand_qty {
                i.on_hand_qty = v;
            }
            if let Some(v) = input.allocated_qty {
                i.allocated_qty = v;
            }
            if let Some(v) = input.in_transit_qty {
                i.in_transit_qty = v;
            }
            if let Some(v) = input.safety_stock {
                i.safety_stock = v;
            }
            if let Some(v) = input.reorder_point {
                i.reorder_point = v;
            }
            if let Some(v) = input.max_stock {
                i.max_stock = v;
            }
            if let Some(v) = input.last_receipt_date {
                i.last_receipt_date = v;
            }
            if let Some(v) = input.last_issue_date {
                i.last_issue_date = v;
            }
        })
        .await
    }

    /// Sets a position's policy by hand, with a reason; the status follows.
    pub async fn override_policy(
        &self,
        context: &RequestContext,
        id: i64,
        input: PolicyOverride,
    ) -> Result<Inventory, PlanningError> {
        let reason = input.reason.trim().to_owned();
        if !(3..=500).contains(&reason.chars().count()) {
            return Err(PlanningError::Invalid(vec![FieldError::new(
                "reason",
                "must be 3 to 500 characters",
            )]));
        }
        let action = "inventory.policy_overridden";
        self.change_inventory(context, id, action, |i| {
            if let Some(v) = input.safety_stock {
                i.safety_stock = v;
            }
            if let Some(v) = input.reorder_point {
                i.reorder_point = v;
            }
            if let Some(v) = input.max_stock {
                i.max_stock = Some(v);
            }
        })
        .await
    }

    /// Counts by status, percents and the total value.
    pub async fn inventory_health(&self) -> Result<InventoryHealth, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let counts = store::status_counts(&mut conn).await?;
        let count = |s: &str| counts.iter().filter(|(status, _)| status == s).map(|(_, n)| *n).sum::<i64>();
        let total: i64 = counts.iter().map(|(_, n)| n).sum();
        let rows = store::all(&mut conn, &InventoryFilter::default()).await?;
        let value: i64 =
            rows.iter().filter_map(|(i, cost)| valuation(i.on_hand_qty, *cost)).map(|v| v.0).sum();
        let pct = |n: i64| if total == 0 { 0.0 } else { (n as f64 / total as f64 * 1000.0).round() / 10.0 };
        Ok(InventoryHealth {
            total_products: total,
            normal_count: count("normal"),
            low_count: count("low"),
            critical_count: count("critical"),
            excess_count: count("excess"),
            total_value: if total == 0 { Value::from("0") } else { Value::from(Dec2(value).to_string()) },
            normal_pct: pct(count("normal")),
            low_pct: pct(count("low")),
            critical_pct: pct(count("critical")),
            excess_pct: pct(count("excess")),
        })
    }

    /// Positions that are `critical`, `low` or `excess`.
    pub async fn inventory_alerts(&self) -> Result<InventoryAlerts, PlanningError> {
        let mut conn = self.db().reader().acquire().await?;
        let filter = InventoryFilter {
            statuses: vec!["critical".into(), "low".into(), "excess".into()],
            ..InventoryFilter::default()
        };
        let mut alerts = InventoryAlerts::default();
        for (i, _) in store::all(&mut conn, &filter).await? {
            let alert = InventoryAlert {
                id: i.id,
                product_id: i.product_id,
                location: i.location,
                on_hand_qty: i.on_hand_qty.to_f64(),
            };
            match i.status.as_str() {
                "critical" => alerts.critical.push(alert),
                "low" => alerts.low.push(alert),
                _ => alerts.excess.push(alert),
            }
        }
        Ok(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_of_supply_and_valuation_come_from_demand_and_cost() {
        let d = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap();
        let history: Vec<(NaiveDate, Dec2)> =
            (1..=8).map(|m| (d(2026, m), Dec2::units(i64::from(m) * 10))).collect();
        // The latest six up to June: 10..60, mean 35.
        assert_eq!(recent_monthly_demand(&history, d(2026, 6)), Some(35.0));
        assert_eq!(recent_monthly_demand(&history, d(2025, 12)), None);
        assert_eq!(days_of_supply(Dec2::units(70), Some(35.0)), Some(Dec2(6000)), "70 / (35/30) = 60 days");
        assert_eq!(days_of_supply(Dec2::units(70), Some(0.0)), None);
        assert_eq!(
            valuation(Dec2(12_345), Some(Dec2(1_005))),
            Some(Dec2(124_067)),
            "123.45 × 10.05 = 1240.6725"
        );
        assert_eq!(valuation(Dec2(100), None), None);
    }
}
