//! `GET /metrics/kpis`: the original's KPIs over a date range and regions, plus company and
//! model filters, top-N lists, spend per active user and the change against the previous period.
//!
//! Without company or model filters everything is read from the daily tables. A company or
//! model filter cannot be answered from them exactly, so the figures it narrows are computed
//! from `transactions` with the same formulas. Subscriber utilisation is a per-region figure and
//! is never narrowed by company or model.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use sightline_platform::db::{Conditions, Db, FilterValue};
use sqlx::Row;
use utoipa::ToSchema;

/// What to compute over.
#[derive(Debug, Clone)]
pub struct KpiScope {
    /// First day (inclusive).
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Regions (all when empty).
    pub regions: Vec<String>,
    /// Companies (all when empty).
    pub companies: Vec<String>,
    /// Models (all when empty).
    pub models: Vec<String>,
    /// Longest list returned for models, regions and companies.
    pub top: Option<usize>,
}

impl KpiScope {
    fn filtered(&self) -> bool {
        !self.companies.is_empty() || !self.models.is_empty()
    }

    /// The period of the same length just before this one.
    fn previous(&self) -> KpiScope {
        let days = (self.end - self.start).num_days() + 1;
        KpiScope {
            start: self.start - chrono::Duration::days(days),
            end: self.start - chrono::Duration::days(1),
            ..self.clone()
        }
    }

    /// Date and region conditions on a table's `date`/`region` columns, plus company and model
    /// filters on the given columns when named.
    fn conditions(&self, company_column: Option<&str>, model_column: Option<&str>) -> Conditions {
        let mut c = Conditions::default();
        c.bind(|n| format!("date >= ${n}"), FilterValue::Text(self.start.to_string()))
            .bind(|n| format!("date <= ${n}"), FilterValue::Text(self.end.to_string()))
            .any_of("region", &self.regions);
        if let Some(column) = company_column {
            c.any_of(column, &self.companies);
        }
        if let Some(column) = model_column {
            c.any_of(column, &self.models);
        }
        c
    }
}

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

struct DayRegion {
    date: String,
    region: String,
    cost: f64,
    tokens: i64,
    conversations: i64,
    transactions: i64,
}

struct DayModel {
    date: String,
    region: String,
    model: String,
    cost: f64,
    conversations: i64,
}

/// Computes KPIs.
#[derive(Clone)]
pub struct KpiService {
    db: Db,
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Trend points keep 4 decimals so that they add up to the rounded total.
fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn change(now: f64, before: f64) -> Option<f64> {
    (before != 0.0).then(|| round2((now - before) / before * 100.0))
}

impl KpiService {
    /// KPIs over `db`.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Computes every figure of `scope`.
    pub async fn compute(&self, scope: &KpiScope) -> Result<KpiData, sqlx::Error> {
        let days = self.day_regions(scope).await?;
        let models = self.day_models(scope).await?;
        let companies = self.companies(scope).await?;
        let utilization = self.utilization(scope).await?;
        let active_users = self.active_users(scope).await?;
        let previous_scope = scope.previous();
        let previous = self.day_regions(&previous_scope).await?;
        let range = sqlx::query("SELECT MIN(date), MAX(date) FROM usage_daily_metrics")
            .fetch_one(self.db.reader())
            .await?;

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
        let mut models_metrics: Vec<ModelSpend> = by_model
            .into_iter()
            .map(|(model, (cost, conversations))| ModelSpend {
                model: model.to_owned(),
                total_cost: round2(cost),
                conversations,
            })
            .collect();
        models_metrics
            .sort_by(|a, b| b.total_cost.total_cmp(&a.total_cost).then_with(|| a.model.cmp(&b.model)));
        models_metrics.truncate(top);
        let mut region_wise_spends: Vec<RegionSpend> = regions
            .into_iter()
            .map(|(region, cost)| RegionSpend { region: region.to_owned(), total_spends: round2(cost) })
            .collect();
        region_wise_spends
            .sort_by(|a, b| b.total_spends.total_cmp(&a.total_spends).then_with(|| a.region.cmp(&b.region)));
        region_wise_spends.truncate(top);
        let mut company_wise_spends: Vec<CompanySpend> = companies
            .into_iter()
            .map(|(company, cost)| CompanySpend {
                company: if company.is_empty() { "(none)".to_owned() } else { company },
                total_spends: round2(cost),
            })
            .collect();
        company_wise_spends.sort_by(|a, b| {
            b.total_spends.total_cmp(&a.total_spends).then_with(|| a.company.cmp(&b.company))
        });
        company_wise_spends.truncate(top);

        let total_spendings = round2(totals.cost);
        Ok(KpiData {
            kpis: Headline {
                total_spendings,
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
            max_date_range: [range.get(0), range.get(1)],
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
        })
    }

    /// Per day and region: cost, tokens, conversations, transactions.
    async fn day_regions(&self, scope: &KpiScope) -> Result<Vec<DayRegion>, sqlx::Error> {
        let (sql, c) = if scope.filtered() {
            let c = scope.conditions(Some("company"), Some("model_name"));
            let sql = format!(
                "SELECT date, region, SUM(calculated_cost) AS cost, CAST(SUM(token_count) AS BIGINT) AS tokens, \
                 COUNT(DISTINCT conversation_id) AS conversations, COUNT(*) AS n FROM usage_transactions{} \
                 GROUP BY date, region",
                c.where_sql()
            );
            (sql, c)
        } else {
            let c = scope.conditions(None, None);
            let sql = format!(
                "SELECT date, region, total_cost AS cost, total_prompt_tokens + total_completion_tokens AS tokens, \
                 total_conversations AS conversations, transaction_count AS n FROM usage_daily_metrics{}",
                c.where_sql()
            );
            (sql, c)
        };
        let rows = c.apply(sqlx::query(&sql)).fetch_all(self.db.reader()).await?;
        Ok(rows
            .iter()
            .map(|r| DayRegion {
                date: r.get("date"),
                region: r.get("region"),
                cost: r.get("cost"),
                tokens: r.get("tokens"),
                conversations: r.get("conversations"),
                transactions: r.get("n"),
            })
            .collect())
    }

    /// Per day, region and model: cost and conversations.
    async fn day_models(&self, scope: &KpiScope) -> Result<Vec<DayModel>, sqlx::Error> {
        let (sql, c) = if scope.companies.is_empty() {
            let c = scope.conditions(None, Some("model_name"));
            let sql = format!(
                "SELECT date, region, model_name, total_cost AS cost, conversation_count AS conversations \
                 FROM usage_daily_model_metrics{}",
                c.where_sql()
            );
            (sql, c)
        } else {
            let c = scope.conditions(Some("company"), Some("model_name"));
            let sql = format!(
                "SELECT date, region, model_name, SUM(calculated_cost) AS cost, \
                 COUNT(DISTINCT conversation_id) AS conversations FROM usage_transactions{} \
                 GROUP BY date, region, model_name",
                c.where_sql()
            );
            (sql, c)
        };
        let rows = c.apply(sqlx::query(&sql)).fetch_all(self.db.reader()).await?;
        Ok(rows
            .iter()
            .map(|r| DayModel {
                date: r.get("date"),
                region: r.get("region"),
                model: r.get("model_name"),
                cost: r.get("cost"),
                conversations: r.get("conversations"),
            })
            .collect())
    }

    /// Cost per company.
    async fn companies(&self, scope: &KpiScope) -> Result<Vec<(String, f64)>, sqlx::Error> {
        let (sql, c) = if scope.models.is_empty() {
            let c = scope.conditions(Some("company_name"), None);
            let sql = format!(
                "SELECT company_name AS company, SUM(total_cost) AS cost FROM usage_daily_company_metrics{} \
                 GROUP BY company_name",
                c.where_sql()
            );
            (sql, c)
        } else {
            let c = scope.conditions(Some("company"), Some("model_name"));
            let sql = format!(
                "SELECT company, SUM(calculated_cost) AS cost FROM usage_transactions{} GROUP BY company",
                c.where_sql()
            );
            (sql, c)
        };
        let rows = c.apply(sqlx::query(&sql)).fetch_all(self.db.reader()).await?;
        Ok(rows.iter().map(|r| (r.get("company"), r.get("cost"))).collect())
    }

    async fn utilization(&self, scope: &KpiScope) -> Result<f64, sqlx::Error> {
        let c = scope.conditions(None, None);
        let sql = format!(
            "SELECT AVG(active_subscriber_utilization_rate) FROM usage_daily_metrics{}",
            c.where_sql()
        );
        let row = c.apply(sqlx::query(&sql)).fetch_one(self.db.reader()).await?;
        Ok(row.get::<Option<f64>, _>(0).unwrap_or(0.0))
    }

    async fn active_users(&self, scope: &KpiScope) -> Result<i64, sqlx::Error> {
        let c = scope.conditions(Some("company"), Some("model_name"));
        let sql = format!("SELECT COUNT(DISTINCT user_id) FROM usage_transactions{}", c.where_sql());
        Ok(c.apply(sqlx::query(&sql)).fetch_one(self.db.reader()).await?.get(0))
    }
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
        let days: std::collections::HashSet<&str> = rows.iter().map(|d| d.date.as_str()).collect();
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
    use super::*;

    fn dm(date: &str, region: &str, model: &str, conversations: i64) -> DayModel {
        DayModel { date: date.into(), region: region.into(), model: model.into(), cost: 1.0, conversations }
    }

    #[test]
    fn the_most_often_top_model_breaks_ties_by_name() {
        let rows =
            [dm("d1", "EU", "b", 5), dm("d1", "EU", "a", 5), dm("d2", "EU", "c", 9), dm("d2", "EU", "a", 1)];
        assert_eq!(most_often_top(&rows).as_deref(), Some("a"));
        assert_eq!(most_often_top(&[]), None);
    }

    #[test]
    fn the_previous_period_has_the_same_length() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let scope = KpiScope {
            start: d("2025-03-01"),
            end: d("2025-03-31"),
            regions: vec![],
            companies: vec![],
            models: vec![],
            top: None,
        };
        let p = scope.previous();
        assert_eq!((p.start, p.end), (d("2025-01-29"), d("2025-02-28")));
        assert_eq!(change(150.0, 100.0), Some(50.0));
        assert_eq!(change(1.0, 0.0), None);
    }
}
