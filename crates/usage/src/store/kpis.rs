//! The KPI reads, each one query over a scope (dates, regions, companies, models).
//!
//! Without company or model filters they read the daily tables. A company or model filter cannot
//! be answered from them exactly, so the figures it narrows are read from `usage_transactions`
//! with the same formulas. Subscriber utilisation is a per-region figure and is never narrowed by
//! company or model. Each function takes an executor, so that [`crate::kpis`] can run them side by
//! side on the reader pool.

use chrono::NaiveDate;
use sightline_platform::db::{Conditions, FilterValue};
use sqlx::{Any, Executor, Row};

use crate::model::KpiScope;

/// Cost, tokens, conversations and transactions of one day and region.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRegion {
    /// Day.
    pub date: String,
    /// Region.
    pub region: String,
    /// Σ cost.
    pub cost: f64,
    /// Σ tokens.
    pub tokens: i64,
    /// Distinct conversations.
    pub conversations: i64,
    /// Rows.
    pub transactions: i64,
}

/// Cost and conversations of one day, region and model.
#[derive(Debug, Clone, PartialEq)]
pub struct DayModel {
    /// Day.
    pub date: String,
    /// Region.
    pub region: String,
    /// Model.
    pub model: String,
    /// Σ cost.
    pub cost: f64,
    /// Distinct conversations.
    pub conversations: i64,
}

/// Cost of one company over the scope (`''` for users without one).
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyCost {
    /// Company.
    pub company: String,
    /// Σ cost.
    pub cost: f64,
}

/// A day as the `date` columns hold it. They are `YYYY-MM-DD` text compared as text, so a bound
/// outside years 0..=9999 (written with a sign) is clamped to them.
fn day_text(day: NaiveDate) -> String {
    let (first, last) = (NaiveDate::from_ymd_opt(0, 1, 1), NaiveDate::from_ymd_opt(9999, 12, 31));
    let day = first.map_or(day, |f| day.max(f));
    let day = last.map_or(day, |l| day.min(l));
    day.format("%Y-%m-%d").to_string()
}

/// Date and region conditions on a table's `date`/`region` columns, plus company and model
/// filters on the given columns when named.
fn conditions(scope: &KpiScope, company_column: Option<&str>, model_column: Option<&str>) -> Conditions {
    let mut c = Conditions::default();
    c.bind(|n| format!("date >= ${n}"), FilterValue::Text(day_text(scope.start)))
        .bind(|n| format!("date <= ${n}"), FilterValue::Text(day_text(scope.end)))
        .any_of("region", &scope.regions);
    if let Some(column) = company_column {
        c.any_of(column, &scope.companies);
    }
    if let Some(column) = model_column {
        c.any_of(column, &scope.models);
    }
    c
}

/// Per day and region: cost, tokens, conversations, transactions.
pub async fn day_regions<'c>(
    exec: impl Executor<'c, Database = Any>,
    scope: &KpiScope,
) -> Result<Vec<DayRegion>, sqlx::Error> {
    let (sql, c) = if scope.filtered() {
        let c = conditions(scope, Some("company"), Some("model_name"));
        let sql = format!(
            "SELECT date, region, SUM(calculated_cost) AS cost, CAST(SUM(token_count) AS BIGINT) AS tokens, \
             COUNT(DISTINCT conversation_id) AS conversations, COUNT(*) AS n FROM usage_transactions{} \
             GROUP BY date, region",
            c.where_sql()
        );
        (sql, c)
    } else {
        let c = conditions(scope, None, None);
        let sql = format!(
            "SELECT date, region, total_cost AS cost, total_prompt_tokens + total_completion_tokens AS tokens, \
             total_conversations AS conversations, transaction_count AS n FROM usage_daily_metrics{}",
            c.where_sql()
        );
        (sql, c)
    };
    let rows = c.apply(sqlx::query(&sql)).fetch_all(exec).await?;
    rows.iter()
        .map(|r| {
            Ok(DayRegion {
                date: r.try_get("date")?,
                region: r.try_get("region")?,
                cost: r.try_get("cost")?,
                tokens: r.try_get("tokens")?,
                conversations: r.try_get("conversations")?,
                transactions: r.try_get("n")?,
            })
        })
        .collect()
}

/// Per day, region and model: cost and conversations.
pub async fn day_models<'c>(
    exec: impl Executor<'c, Database = Any>,
    scope: &KpiScope,
) -> Result<Vec<DayModel>, sqlx::Error> {
    let (sql, c) = if scope.companies.is_empty() {
        let c = conditions(scope, None, Some("model_name"));
        let sql = format!(
            "SELECT date, region, model_name, total_cost AS cost, conversation_count AS conversations \
             FROM usage_daily_model_metrics{}",
            c.where_sql()
        );
        (sql, c)
    } else {
        let c = conditions(scope, Some("company"), Some("model_name"));
        let sql = format!(
            "SELECT date, region, model_name, SUM(calculated_cost) AS cost, \
             COUNT(DISTINCT conversation_id) AS conversations FROM usage_transactions{} \
             GROUP BY date, region, model_name",
            c.where_sql()
        );
        (sql, c)
    };
    let rows = c.apply(sqlx::query(&sql)).fetch_all(exec).await?;
    rows.iter()
        .map(|r| {
            Ok(DayModel {
                date: r.try_get("date")?,
                region: r.try_get("region")?,
                model: r.try_get("model_name")?,
                cost: r.try_get("cost")?,
                conversations: r.try_get("conversations")?,
            })
        })
        .collect()
}

/// Cost per company.
pub async fn companies<'c>(
    exec: impl Executor<'c, Database = Any>,
    scope: &KpiScope,
) -> Result<Vec<CompanyCost>, sqlx::Error> {
    let (sql, c) = if scope.models.is_empty() {
        let c = conditions(scope, Some("company_name"), None);
        let sql = format!(
            "SELECT company_name AS company, SUM(total_cost) AS cost FROM usage_daily_company_metrics{} \
             GROUP BY company_name",
            c.where_sql()
        );
        (sql, c)
    } else {
        let c = conditions(scope, Some("company"), Some("model_name"));
        let sql = format!(
            "SELECT company, SUM(calculated_cost) AS cost FROM usage_transactions{} GROUP BY company",
            c.where_sql()
        );
        (sql, c)
    };
    let rows = c.apply(sqlx::query(&sql)).fetch_all(exec).await?;
    rows.iter()
        .map(|r| Ok(CompanyCost { company: r.try_get("company")?, cost: r.try_get("cost")? }))
        .collect()
}

/// Mean of the daily active-subscriber utilisation over the dates and regions (0 without data).
pub async fn utilization<'c>(
    exec: impl Executor<'c, Database = Any>,
    scope: &KpiScope,
) -> Result<f64, sqlx::Error> {
    let c = conditions(scope, None, None);
    let sql =
        format!("SELECT AVG(active_subscriber_utilization_rate) FROM usage_daily_metrics{}", c.where_sql());
    let row = c.apply(sqlx::query(&sql)).fetch_one(exec).await?;
    Ok(row.try_get::<Option<f64>, _>(0)?.unwrap_or(0.0))
}

/// Distinct users with a transaction in the scope.
pub async fn active_users<'c>(
    exec: impl Executor<'c, Database = Any>,
    scope: &KpiScope,
) -> Result<i64, sqlx::Error> {
    let c = conditions(scope, Some("company"), Some("model_name"));
    let sql = format!("SELECT COUNT(DISTINCT user_id) FROM usage_transactions{}", c.where_sql());
    c.apply(sqlx::query(&sql)).fetch_one(exec).await?.try_get(0)
}

/// First and last day with data, over the whole data set.
pub async fn date_range<'c>(
    exec: impl Executor<'c, Database = Any>,
) -> Result<[Option<String>; 2], sqlx::Error> {
    let row = sqlx::query("SELECT MIN(date), MAX(date) FROM usage_daily_metrics").fetch_one(exec).await?;
    Ok([row.try_get(0)?, row.try_get(1)?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_outside_four_digit_years_are_clamped_to_them() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(day_text(d(2025, 3, 1)), "2025-03-01");
        assert_eq!(day_text(d(12_000, 1, 1)), "9999-12-31");
        assert_eq!(day_text(d(-5, 1, 1)), "0000-01-01");
    }
}
