//! Stored forecasts: a row per product, model and month; a new forecast replaces the old one of
//! the same three (the original's rule).

use chrono::NaiveDate;
use sightline_platform::db::{now_ms, Conditions, FilterValue};
use sqlx::{AnyConnection, Row as _};

use super::{date, time};
use crate::decimal::Dec2;
use crate::model::ForecastRow;

const COLUMNS: &str = "id, product_id, model_type, model, period, predicted_qty, lower_bound, upper_bound, \
    confidence, mape, rmse, mase, smape, history_points, created_at";

fn row(r: &sqlx::any::AnyRow) -> Result<ForecastRow, sqlx::Error> {
    Ok(ForecastRow {
        id: r.try_get("id")?,
        product_id: r.try_get("product_id")?,
        model_type: r.try_get("model_type")?,
        model: r.try_get("model")?,
        period: date(r, "period")?,
        predicted_qty: Dec2(r.try_get("predicted_qty")?),
        lower_bound: Dec2(r.try_get("lower_bound")?),
        upper_bound: Dec2(r.try_get("upper_bound")?),
        confidence: Dec2(r.try_get("confidence")?),
        mape: r.try_get("mape")?,
        rmse: r.try_get("rmse")?,
        mase: r.try_get("mase")?,
        smape: r.try_get("smape")?,
        history_points: r.try_get("history_points")?,
        created_at: time(r, "created_at")?.unwrap_or_default(),
    })
}

/// Replaces the forecasts of `rows`' product, model and months with `rows`.
pub async fn replace(conn: &mut AnyConnection, rows: &[ForecastRow]) -> Result<(), sqlx::Error> {
    let now = now_ms();
    for f in rows {
        sqlx::query(
            "DELETE FROM planning_forecasts WHERE product_id = $1 AND model_type = $2 AND period = $3",
        )
        .bind(f.product_id)
        .bind(&f.model_type)
        .bind(f.period.to_string())
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO planning_forecasts (product_id, model_type, model, period, predicted_qty, lower_bound, \
             upper_bound, confidence, mape, rmse, mase, smape, history_points, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(f.product_id)
        .bind(&f.model_type)
        .bind(&f.model)
        .bind(f.period.to_string())
        .bind(f.predicted_qty.0)
        .bind(f.lower_bound.0)
        .bind(f.upper_bound.0)
        .bind(f.confidence.0)
        .bind(f.mape)
        .bind(f.rmse)
        .bind(f.mase)
        .bind(f.smape)
        .bind(f.history_points)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// What a forecast list is filtered by.
#[derive(Debug, Clone, Default)]
pub struct ForecastFilter {
    /// The product.
    pub product_id: Option<i64>,
    /// The model asked for.
    pub model_type: Option<String>,
    /// Months from (inclusive).
    pub period_from: Option<NaiveDate>,
    /// Months to (inclusive).
    pub period_to: Option<NaiveDate>,
}

/// Forecasts matching `f`, by product, model and month (at most `limit`).
pub async fn list(
    conn: &mut AnyConnection,
    f: &ForecastFilter,
    limit: i64,
) -> Result<Vec<ForecastRow>, sqlx::Error> {
    let mut c = Conditions::default();
    if let Some(product) = f.product_id {
        c.bind(|n| format!("product_id = ${n}"), FilterValue::Int(product));
    }
    c.eq("model_type", f.model_type.as_deref());
    if let Some(from) = f.period_from {
        c.bind(|n| format!("period >= ${n}"), FilterValue::Text(from.to_string()));
    }
    if let Some(to) = f.period_to {
        c.bind(|n| format!("period <= ${n}"), FilterValue::Text(to.to_string()));
    }
    let n = c.next_placeholder();
    let sql = format!(
        "SELECT {COLUMNS} FROM planning_forecasts{} ORDER BY product_id, model_type, period LIMIT ${n}",
        c.where_sql()
    );
    c.apply(sqlx::query(&sql)).bind(limit).fetch_all(conn).await?.iter().map(row).collect()
}

/// Backtest accuracy per model asked for: (model_type, forecasts, mean MAPE, RMSE, MASE, sMAPE).
pub async fn accuracy(
    conn: &mut AnyConnection,
    product_id: Option<i64>,
) -> Result<Vec<(String, i64, Option<f64>, Option<f64>, Option<f64>, Option<f64>)>, sqlx::Error> {
    let mut c = Conditions::default();
    if let Some(product) = product_id {
        c.bind(|n| format!("product_id = ${n}"), FilterValue::Int(product));
    }
    let sql = format!(
        "SELECT model_type, COUNT(*) AS n, AVG(mape) AS mape, AVG(rmse) AS rmse, AVG(mase) AS mase, \
         AVG(smape) AS smape FROM planning_forecasts{} GROUP BY model_type ORDER BY model_type",
        c.where_sql()
    );
    c.apply(sqlx::query(&sql))
        .fetch_all(conn)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("model_type")?,
                r.try_get("n")?,
                r.try_get("mape")?,
                r.try_get("rmse")?,
                r.try_get("mase")?,
                r.try_get("smape")?,
            ))
        })
        .collect()
}
