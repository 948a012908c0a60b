//! `GET /metrics/kpis`: the original's KPIs over a date range and regions, plus company and
//! model filters, top-N lists, spend per active user and the change against the previous period.
//!
//! [`fetch`] reads the figures ([`crate::store::kpis`], side by side on the reader pool) and the
//! pure [`assemble`] turns them into the answer.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use sightline_platform::db::Db;
use utoipa::ToSchema;

use crate::model::KpiScope;
use crate::store;
use crate::store::kpis::{CompanyCost, DayModel, DayRegion};

/// The headline figures.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct Headline {
    /// Σ cost, rounded to cents.
    pub total_spendings: f64,
    /// The model most often the day's most used (by conversations) across days and regions.
    /// The key keeps the original's spelling, which clients read.
    pub heighest_model_used: Option<String>,
    /// Σ tokens / Σ conversations, rounded.
    pub average_token_consumption: i64,
    /// `total_spendings` / days with data.
    pub average_per_day_spending: f64,
    /// Mean of the daily active-subscriber utilisation (a fraction 0..1), rounded to 2 places.
    pub active_sub_utilization: f64,
    /// Spend per day.
    pub spends_trend: Vec<TrendPoint>,
    /// Σ conversations (distinct per day and region).
    pub total_conversations: i64,
    /// Σ tokens.
    pub total_tokens: i64,
    /// Transactions.
    pub total_transactions: i64,
    /// Distinct users with a transaction in the scope.
    pub active_users: i64,
    /// `total_spendings / active_users`.
    pub spend_per_active_user: f64,
}

/// One day of the spend trend.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct TrendPoint {
    /// Day.
    pub date: String,
    /// Σ cost (4 decimals, so the points add up to `total_spendings`).
    pub cost: f64,
    /// Σ tokens.
    pub tokens: i64,
}

/// Spend per model.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct ModelSpend {
    /// Model name.
    pub model: String,
    /// Σ cost.
    pub total_cost: f64,
    /// Σ conversations.
    pub conversations: i64,
}

/// Spend per region.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct RegionSpend {
    /// Region.
    pub region: String,
    /// Σ cost.
    pub total_spends: f64,
}

/// Spend per company.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct CompanySpend {
    /// Company (`(none)` for users without one).
    pub company: String,
    /// Σ cost.
    pub total_spends: f64,
}

/// The previous period and the change against it.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct Comparison {
    /// First day of the previous period.
    pub previous_start_date: String,
    /// Last day of the previous period.
    pub previous_end_date: String,
    /// Its Σ cost.
    pub total_spendings: f64,
    /// Its spend per day with data.
    pub average_per_day_spending: f64,
    /// Its conversations.
    pub total_conversations: i64,
    /// Its tokens.
    pub total_tokens: i64,
    /// Change in percent (null when the previous value is 0).
    pub change_pct: ChangePct,
}

/// Change against the previous period, in percent.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct ChangePct {
    /// Of `total_spendings`.
    pub total_spendings: Option<f64>,
    /// Of `average_per_day_spending`.
    pub average_per_day_spending: Option<f64>,
    /// Of `total_conversations`.
    pub total_conversations: Option<f64>,
    /// Of `total_tokens`.
    pub total_tokens: Option<f64>,
}

/// The KPI answer's `data`.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct KpiData {
    /// Headline figures.
    pub kpis: Headline,
    /// Spend per model, highest first.
    pub models_metrics: Vec<ModelSpend>,
    /// Spend per region, highest first.
    pub region_wise_spends: Vec<RegionSpend>,
    /// Spend per company, highest first.
    pub company_wise_spends: Vec<CompanySpend>,
    /// First and last day with data (whole data set, unfiltered).
    pub max_date_range: [Option<String>; 2],
    /// Against the previous period of the same length.
    pub comparison: Comparison,
}

/// What the KPIs are made from: the reads of a scope and of the period before it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KpiInputs {
    /// Per day and region, in the scope.
    pub days: Vec<DayRegion>,
    /// Per day and region, in the previous period.
    pub previous: Vec<DayRegion>,
    /// Per day, region and model.
    pub models: Vec<DayModel>,
    /// Per company.
    pub companies: Vec<CompanyCost>,
    /// Mean daily subscriber utilisation.
    pub utilization: f64,
    /// Distinct users with a transaction.
    pub active_users: i64,
    /// First and last day of all data.
    pub date_range: [Option<String>; 2],
}

/// Reads what the KPIs of `scope` need, the independent queries at once on the reader pool.
pub async fn fetch(db: &Db, scope: &KpiScope) -> Result<KpiInputs, sqlx::Error> {
    let previous_scope = scope.previous();
    let pool = db.reader();
    let (days, previous, models, companies, utilization, active_users, date_range) = tokio::try_join!(
        store::kpis::day_regions(pool, scope),
        store::kpis::day_regions(pool, &previous_scope),
        store::kpis::day_models(pool, scope),
        store::kpis::companies(pool, scope),
        store::kpis::utilization(pool, scope),
        store::kpis::active_users(pool, scope),
        store::kpis::date_range(pool),
    )?;
    Ok(KpiInputs { days, previous, models, companies, utilization, active_users, date_range })
}

/// The KPIs of `scope` from what [`fetch`] read.
pub fn assemble(scope: &KpiScope, inputs: KpiInputs) -> KpiData {
    let KpiInputs { days, previous, models, companies, utilization, active_users, date_range } = inputs;
    let previous_scope = scope.previous();
    let totals = Totals::of(&days);
    let before = Totals::of(&previous);
    let mut trend: BTreeMap<&str, (f64, i64)> = BTreeMap::new();
    let mut regions: HashMap<&str, f64> = HashMap::new();
    for d in &days {
        let t = trend.entry(&d.date).or_default();
        t.0 += d.cost;
        t.1 += d.tokens;
        *regions.entry(&d.region).or_default() += d.cost;
    }
    let mut by_model: HashMap<&str, (f64, i64)> = HashMap::new();
    for m in &models {
        let e = by_model.entry(&m.model).or_default();
        e.0 += m.cost;
        e.1 += m.conversations;
    }
    let top = scope.top.unwrap_or(usize::MAX);
    let models_metrics = top_n(
        by_model.into_iter().map(|(model, (cost, conversations))| ModelSpend {
            model: model.to_owned(),
            total_cost: round2(cost),
            conversations,
        }),
        top,
        |m| (m.total_cost, m.model.as_str()),
    );
    let region_wise_spends = top_n(
        regions
            .into_iter()
            .map(|(region, cost)| RegionSpend { region: region.to_owned(), total_spends: round2(cost) }),
        top,
        |r| (r.total_spends, r.region.as_str()),
    );
    let company_wise_spends = top_n(
        companies.into_iter().map(|c| CompanySpend {
            company: if c.company.is_empty() { "(none)".to_owned() } else { c.company },
            total_spends: round2(c.cost),
        }),
        top,
        |c| (c.total_spends, c.company.as_str()),
    );
    KpiData {
        kpis: Headline {
            total_spendings: round2(totals.cost),
            heighest_model_used: most_often_top(&models),
            average_token_consumption: if totals.conversations > 0 {
                (totals.tokens as f64 / totals.conversations as f64).round() as i64
            } else {
                0
            },
            average_per_day_spending: totals.per_day(),
            active_sub_utilization: round2(utilization),
            spends_trend: trend
                .into_iter()
                .map(|(date, (cost, tokens))| TrendPoint {
                    date: date.to_owned(),
                    cost: round4(cost),
                    tokens,
                })
                .collect(),
            total_conversations: totals.conversations,
            total_tokens: totals.tokens,
            total_transactions: totals.transactions,
            active_users,
            spend_per_active_user: if active_users > 0 {
                round2(totals.cost / active_users as f64)
            } else {
                0.0
            },
        },
        models_metrics,
        region_wise_spends,
        company_wise_spends,
        max_date_range: date_range,
        comparison: Comparison {
            previous_start_date: previous_scope.start.to_string(),
            previous_end_date: previous_scope.end.to_string(),
            total_spendings: round2(before.cost),
            average_per_day_spending: before.per_day(),
            total_conversations: before.conversations,
            total_tokens: before.tokens,
            change_pct: ChangePct {
                total_spendings: change(totals.cost, before.cost),
                average_per_day_spending: change(totals.per_day(), before.per_day()),
                total_conversations: change(totals.conversations as f64, before.conversations as f64),
                total_tokens: change(totals.tokens as f64, before.tokens as f64),
            },
        },
    }
}

/// The `top` items with the highest spend, ties in name order; `key` gives an item's spend and
/// name.
fn top_n<T>(items: impl IntoIterator<Item = T>, top: usize, key: impl Fn(&T) -> (f64, &str)) -> Vec<T> {
    let mut items: Vec<T> = items.into_iter().collect();
    items.sort_by(|a, b| {
        let ((a_spend, a_name), (b_spend, b_name)) = (key(a), key(b));
        b_spend.total_cmp(&a_spend).then_with(|| a_name.cmp(b_name))
    });
    items.truncate(top);
    items
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Trend points keep 4 decimals so that they add up to the rounded total.
fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Change from `before` to `now` in percent (none from 0).
fn change(now: f64, before: f64) -> Option<f64> {
    (before != 0.0).then(|| round2((now - before) / before * 100.0))
}

struct Totals {
    cost: f64,
    tokens: i64,
    conversations: i64,
    transactions: i64,
    days: usize,
}

impl Totals {
    fn of(rows: &[DayRegion]) -> Self {
        let days: HashSet<&str> = rows.iter().map(|d| d.date.as_str()).collect();
        Self {
            // `+ 0.0`: an empty f64 sum is -0.0.
            cost: rows.iter().map(|d| d.cost).sum::<f64>() + 0.0,
            tokens: rows.iter().map(|d| d.tokens).sum(),
            conversations: rows.iter().map(|d| d.conversations).sum(),
            transactions: rows.iter().map(|d| d.transactions).sum(),
            days: days.len(),
        }
    }

    fn per_day(&self) -> f64 {
        if self.days == 0 {
            0.0
        } else {
            round2(round2(self.cost) / self.days as f64)
        }
    }
}

/// Each day and region's most used model (most conversations, ties to the first name), then
/// the one that is so most often (ties to the first name): the daily tables' rule.
fn most_often_top(rows: &[DayModel]) -> Option<String> {
    let mut best: HashMap<(&str, &str), (&str, i64)> = HashMap::new();
    for m in rows {
        let e = best.entry((&m.date, &m.region)).or_insert((&m.model, m.conversations));
        if m.conversations > e.1 || (m.conversations == e.1 && m.model.as_str() < e.0) {
            *e = (&m.model, m.conversations);
        }
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (model, _) in best.values() {
        *counts.entry(model).or_default() += 1;
    }
    // BTreeMap order makes the first maximum the first name.
    let max = counts.values().copied().max()?;
    counts.into_iter().find(|(_, n)| *n == max).map(|(m, _)| m.to_owned())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn scope(start: &str, end: &str, top: Option<usize>) -> KpiScope {
        KpiScope { start: day(start), end: day(end), regions: vec![], companies: vec![], models: vec![], top }
    }

    fn dr(date: &str, region: &str, cost: f64, tokens: i64, conversations: i64) -> DayRegion {
        DayRegion {
            date: date.into(),
            region: region.into(),
            cost,
            tokens,
            conversations,
            transactions: 2 * conversations,
        }
    }

    fn dm(date: &str, region: &str, model: &str, conversations: i64) -> DayModel {
        DayModel { date: date.into(), region: region.into(), model: model.into(), cost: 1.0, conversations }
    }

    fn company(name: &str, cost: f64) -> CompanyCost {
        CompanyCost { company: name.into(), cost }
    }

    #[test]
    fn the_most_often_top_model_breaks_ties_by_name() {
        let rows =
            [dm("d1", "EU", "b", 5), dm("d1", "EU", "a", 5), dm("d2", "EU", "c", 9), dm("d2", "EU", "a", 1)];
        assert_eq!(most_often_top(&rows).as_deref(), Some("a"));
        assert_eq!(most_often_top(&[]), None);
    }

    #[test]
    fn changes_are_percentages_of_the_previous_value() {
        assert_eq!(change(150.0, 100.0), Some(50.0));
        assert_eq!(change(1.0, 0.0), None);
        assert_eq!(change(0.0, 4.0), Some(-100.0));
    }

    #[test]
    fn top_n_keeps_the_highest_spends_ties_in_name_order() {
        /// Items (spend, name), how many to keep, the names kept.
        type Case<'a> = (&'a [(f64, &'a str)], usize, &'a [&'a str]);
        let cases: [Case<'_>; 4] = [
            (&[], 3, &[]),
            (&[(1.0, "a"), (3.0, "b"), (2.0, "c")], usize::MAX, &["b", "c", "a"]),
            (&[(1.0, "b"), (1.0, "a"), (5.0, "z")], 2, &["z", "a"]),
            (&[(2.0, "x"), (2.0, "y")], 1, &["x"]),
        ];
        for (items, top, want) in cases {
            let got = top_n(items.iter().copied(), top, |(spend, name)| (*spend, name));
            let names: Vec<&str> = got.iter().map(|(_, name)| *name).collect();
            assert_eq!(names, want, "{items:?} top {top}");
        }
    }

    /// What a case expects of the assembled KPIs.
    struct Want {
        total_spendings: f64,
        average_per_day_spending: f64,
        average_token_consumption: i64,
        spend_per_active_user: f64,
        heighest_model_used: Option<&'static str>,
        trend_days: usize,
        models: &'static [&'static str],
        regions: &'static [&'static str],
        companies: &'static [&'static str],
        change_of_spend: Option<f64>,
    }

    #[test]
    fn kpis_are_assembled_from_the_reads() {
        let two_days = KpiInputs {
            days: vec![
                dr("2025-03-01", "EU", 10.004, 100, 4),
                dr("2025-03-01", "US", 5.0, 50, 1),
                dr("2025-03-02", "EU", 4.0, 30, 1),
            ],
            previous: vec![dr("2025-02-27", "EU", 7.6, 10, 1)],
            models: vec![
                dm("2025-03-01", "EU", "m1", 3),
                dm("2025-03-01", "EU", "m2", 1),
                dm("2025-03-02", "EU", "m2", 1),
            ],
            companies: vec![company("", 1.0), company("Acme", 18.004)],
            utilization: 0.3333,
            active_users: 3,
            date_range: [Some("2025-01-01".into()), Some("2025-06-30".into())],
        };
        let cases = [
            (
                "nothing in the range",
                scope("2025-03-01", "2025-03-31", None),
                KpiInputs::default(),
                Want {
                    total_spendings: 0.0,
                    average_per_day_spending: 0.0,
                    average_token_consumption: 0,
                    spend_per_active_user: 0.0,
                    heighest_model_used: None,
                    trend_days: 0,
                    models: &[],
                    regions: &[],
                    companies: &[],
                    change_of_spend: None,
                },
            ),
            (
                "two days, two regions",
                scope("2025-03-01", "2025-03-02", None),
                two_days.clone(),
                Want {
                    total_spendings: 19.0,
                    average_per_day_spending: 9.5,
                    average_token_consumption: 30,
                    spend_per_active_user: 6.33,
                    heighest_model_used: Some("m1"),
                    trend_days: 2,
                    models: &["m2", "m1"],
                    regions: &["EU", "US"],
                    companies: &["Acme", "(none)"],
                    change_of_spend: Some(150.05),
                },
            ),
            (
                "top one",
                scope("2025-03-01", "2025-03-02", Some(1)),
                two_days,
                Want {
                    total_spendings: 19.0,
                    average_per_day_spending: 9.5,
                    average_token_consumption: 30,
                    spend_per_active_user: 6.33,
                    heighest_model_used: Some("m1"),
                    trend_days: 2,
                    models: &["m2"],
                    regions: &["EU"],
                    companies: &["Acme"],
                    change_of_spend: Some(150.05),
                },
            ),
        ];
        for (name, scope, inputs, want) in cases {
            let date_range = inputs.date_range.clone();
            let got = assemble(&scope, inputs);
            let k = &got.kpis;
            assert_eq!(k.total_spendings, want.total_spendings, "{name}");
            assert_eq!(k.average_per_day_spending, want.average_per_day_spending, "{name}");
            assert_eq!(k.average_token_consumption, want.average_token_consumption, "{name}");
            assert_eq!(k.spend_per_active_user, want.spend_per_active_user, "{name}");
            assert_eq!(k.heighest_model_used.as_deref(), want.heighest_model_used, "{name}");
            assert_eq!(k.spends_trend.len(), want.trend_days, "{name}");
            let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
            assert_eq!(
                names(got.models_metrics.iter().map(|m| m.model.as_str()).collect()),
                want.models,
                "{name}"
            );
            assert_eq!(
                names(got.region_wise_spends.iter().map(|r| r.region.as_str()).collect()),
                want.regions,
                "{name}"
            );
            assert_eq!(
                names(got.company_wise_spends.iter().map(|c| c.company.as_str()).collect()),
                want.companies,
                "{name}"
            );
            assert_eq!(got.comparison.change_pct.total_spendings, want.change_of_spend, "{name}");
            assert_eq!(got.max_date_range, date_range, "{name}");
            let previous = scope.previous();
            assert_eq!(
                (got.comparison.previous_start_date, got.comparison.previous_end_date),
                (previous.start.to_string(), previous.end.to_string()),
                "{name}"
            );
        }
    }
}
