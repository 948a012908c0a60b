//! The module's SQL: categories and products (`planning_categories`, `planning_products`),
//! demand and supply plans (`planning_demand_plans`, `planning_supply_plans`), inventory
//! positions (`planning_inventory`) and demand history (`planning_demand_actuals`). Quantities and
//! money are integer hundredths ([`crate::decimal::Dec2`]); ids are integers, as the original's.

pub mod actuals;
pub mod demand;
pub mod forecasts;
pub mod inventory;
pub mod kpis;
pub mod products;
pub mod runs;
pub mod scenarios;
pub mod sop;
pub mod supply;

use sightline_platform::migrate::Migration;

/// The first migration's tables, with `$id` the backend's auto-increment key.
macro_rules! first_tables {
    ($id:literal) => {
        concat!(
            "CREATE TABLE planning_categories (
                id ",
            $id,
            ",
                name TEXT NOT NULL,
                parent_id BIGINT,
                level BIGINT NOT NULL,
                description TEXT,
                created_at BIGINT NOT NULL
            );
            CREATE TABLE planning_products (
                id ",
            $id,
            ",
                sku TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                description TEXT,
                category_id BIGINT,
                product_family TEXT,
                unit_of_measure TEXT NOT NULL,
                unit_cost BIGINT,
                selling_price BIGINT,
                lead_time_days BIGINT NOT NULL,
                min_order_qty BIGINT NOT NULL,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT
            );
            CREATE INDEX planning_products_family ON planning_products (product_family);
            CREATE TABLE planning_demand_plans (
                id ",
            $id,
            ",
                product_id BIGINT NOT NULL,
                period TEXT NOT NULL,
                region TEXT NOT NULL,
                channel TEXT NOT NULL,
                forecast_qty BIGINT NOT NULL,
                adjusted_qty BIGINT,
                actual_qty BIGINT,
                consensus_qty BIGINT,
                confidence BIGINT,
                notes TEXT,
                status TEXT NOT NULL,
                created_by TEXT,
                approved_by TEXT,
                version BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT,
                UNIQUE (product_id, period, region, channel, version)
            );
            CREATE INDEX planning_demand_plans_period ON planning_demand_plans (period, id);
            CREATE TABLE planning_supply_plans (
                id ",
            $id,
            ",
                product_id BIGINT NOT NULL,
                period TEXT NOT NULL,
                location TEXT NOT NULL,
                planned_prod_qty BIGINT,
                actual_prod_qty BIGINT,
                capacity_max BIGINT,
                capacity_used BIGINT,
                supplier_name TEXT,
                lead_time_days BIGINT,
                cost_per_unit BIGINT,
                constraints TEXT,
                status TEXT NOT NULL,
                created_by TEXT,
                version BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT,
                UNIQUE (product_id, period, location, version)
            );
            CREATE INDEX planning_supply_plans_period ON planning_supply_plans (period, id);"
        )
    };
}

/// The second migration's tables.
macro_rules! inventory_tables {
    ($id:literal) => {
        concat!(
            "CREATE TABLE planning_inventory (
                id ",
            $id,
            ",
                product_id BIGINT NOT NULL,
                location TEXT NOT NULL,
                on_hand_qty BIGINT NOT NULL,
                allocated_qty BIGINT NOT NULL,
                in_transit_qty BIGINT NOT NULL,
                safety_stock BIGINT NOT NULL,
                reorder_point BIGINT NOT NULL,
                max_stock BIGINT,
                last_receipt_date TEXT,
                last_issue_date TEXT,
                status TEXT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (product_id, location)
            );
            CREATE INDEX planning_inventory_status ON planning_inventory (status);
            CREATE TABLE planning_demand_actuals (
                product_id BIGINT NOT NULL,
                period TEXT NOT NULL,
                region TEXT NOT NULL,
                channel TEXT NOT NULL,
                actual_qty BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                PRIMARY KEY (product_id, period, region, channel)
            );"
        )
    };
}

/// The third migration's table.
macro_rules! forecast_tables {
    ($id:literal) => {
        concat!(
            "CREATE TABLE planning_forecasts (
                id ",
            $id,
            ",
                product_id BIGINT NOT NULL,
                model_type TEXT NOT NULL,
                model TEXT NOT NULL,
                period TEXT NOT NULL,
                predicted_qty BIGINT NOT NULL,
                lower_bound BIGINT NOT NULL,
                upper_bound BIGINT NOT NULL,
                confidence BIGINT NOT NULL,
                mape DOUBLE PRECISION,
                rmse DOUBLE PRECISION,
                mase DOUBLE PRECISION,
                smape DOUBLE PRECISION,
                history_points BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                UNIQUE (product_id, model_type, period)
            );
            CREATE INDEX planning_forecasts_period ON planning_forecasts (period);"
        )
    };
}

/// Forecast runs over every product (portable: text ids).
const FORECAST_RUNS: &str = "CREATE TABLE planning_forecast_runs (
        id TEXT PRIMARY KEY,
        model_type TEXT NOT NULL,
        horizon BIGINT NOT NULL,
        status TEXT NOT NULL,
        total BIGINT NOT NULL,
        done BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        last_product_id BIGINT NOT NULL,
        error TEXT,
        created_by TEXT,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT
    );
    CREATE INDEX planning_forecast_runs_created ON planning_forecast_runs (created_at);";

/// S&OP cycles.
macro_rules! sop_tables {
    ($id:literal) => {
        concat!(
            "CREATE TABLE planning_sop_cycles (
        id ",
            $id,
            ",
        cycle_name TEXT NOT NULL,
        period TEXT NOT NULL,
        step_1_due_date TEXT,
        step_1_owner_id TEXT,
        step_1_status TEXT NOT NULL,
        step_2_due_date TEXT,
        step_2_owner_id TEXT,
        step_2_status TEXT NOT NULL,
        step_3_due_date TEXT,
        step_3_owner_id TEXT,
        step_3_status TEXT NOT NULL,
        step_4_due_date TEXT,
        step_4_owner_id TEXT,
        step_4_status TEXT NOT NULL,
        step_5_due_date TEXT,
        step_5_owner_id TEXT,
        step_5_status TEXT NOT NULL,
        current_step BIGINT NOT NULL,
        notes TEXT,
        decisions TEXT,
        action_items TEXT,
        overall_status TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT
    );
    CREATE INDEX planning_sop_cycles_period ON planning_sop_cycles (period, id);"
        )
    };
}

/// Scenarios and their runs' product lines.
macro_rules! scenario_tables {
    ($id:literal) => {
        concat!(
            "CREATE TABLE planning_scenarios (
        id ",
            $id,
            ",
        name TEXT NOT NULL,
        description TEXT,
        scenario_type TEXT NOT NULL,
        parameters TEXT NOT NULL,
        results TEXT,
        revenue_impact BIGINT,
        margin_impact BIGINT,
        inventory_impact BIGINT,
        service_level_impact BIGINT,
        status TEXT NOT NULL,
        created_by TEXT,
        approved_by TEXT,
        promoted_at BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT
    );
    CREATE INDEX planning_scenarios_created ON planning_scenarios (created_at, id);
    CREATE TABLE planning_scenario_lines (
        scenario_id BIGINT NOT NULL,
        product_id BIGINT NOT NULL,
        unit_cost DOUBLE PRECISION NOT NULL,
        baseline TEXT NOT NULL,
        scenario TEXT NOT NULL,
        PRIMARY KEY (scenario_id, product_id)
    );"
        )
    };
}

/// KPI metrics.
macro_rules! kpi_tables {
    ($id:literal) => {
        concat!(
            "CREATE TABLE planning_kpi_metrics (
        id ",
            $id,
            ",
        metric_name TEXT NOT NULL,
        metric_category TEXT NOT NULL,
        period TEXT NOT NULL,
        value BIGINT NOT NULL,
        target BIGINT,
        previous_value BIGINT,
        unit TEXT,
        variance BIGINT,
        variance_pct BIGINT,
        trend TEXT,
        created_at BIGINT NOT NULL,
        UNIQUE (metric_name, period)
    );
    CREATE INDEX planning_kpi_metrics_period ON planning_kpi_metrics (period, id);"
        )
    };
}

/// The module's migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "categories, products, demand and supply plans",
        sqlite: first_tables!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres: first_tables!("BIGSERIAL PRIMARY KEY"),
    },
    Migration {
        version: 2,
        name: "inventory positions and demand actuals",
        sqlite: inventory_tables!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres: inventory_tables!("BIGSERIAL PRIMARY KEY"),
    },
    Migration {
        version: 3,
        name: "forecasts",
        sqlite: forecast_tables!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres: forecast_tables!("BIGSERIAL PRIMARY KEY"),
    },
    Migration::portable(4, "forecast runs", FORECAST_RUNS),
    Migration {
        version: 5,
        name: "S&OP cycles",
        sqlite: sop_tables!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres: sop_tables!("BIGSERIAL PRIMARY KEY"),
    },
    Migration {
        version: 6,
        name: "scenarios",
        sqlite: scenario_tables!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres: scenario_tables!("BIGSERIAL PRIMARY KEY"),
    },
    Migration {
        version: 7,
        name: "KPI metrics",
        sqlite: kpi_tables!("INTEGER PRIMARY KEY AUTOINCREMENT"),
        postgres: kpi_tables!("BIGSERIAL PRIMARY KEY"),
    },
];

/// A nullable hundredths column as a decimal.
pub(crate) fn dec(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<Option<crate::decimal::Dec2>, sqlx::Error> {
    use sqlx::Row as _;
    Ok(row.try_get::<Option<i64>, _>(column)?.map(crate::decimal::Dec2))
}

/// A `YYYY-MM-DD` column as a date.
pub(crate) fn date(row: &sqlx::any::AnyRow, column: &str) -> Result<chrono::NaiveDate, sqlx::Error> {
    use sqlx::Row as _;
    let text: String = row.try_get(column)?;
    chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A nullable `YYYY-MM-DD` column as a date.
pub(crate) fn optional_date(
    row: &sqlx::any::AnyRow,
    column: &str,
) -> Result<Option<chrono::NaiveDate>, sqlx::Error> {
    use sqlx::Row as _;
    row.try_get::<Option<String>, _>(column)?
        .map(|t| {
            chrono::NaiveDate::parse_from_str(&t, "%Y-%m-%d").map_err(|e| sqlx::Error::Decode(Box::new(e)))
        })
        .transpose()
}

/// A nullable epoch-milliseconds column as the original's naive time.
pub(crate) fn time(row: &sqlx::any::AnyRow, column: &str) -> Result<Option<String>, sqlx::Error> {
    use sqlx::Row as _;
    Ok(row.try_get::<Option<i64>, _>(column)?.map(crate::model::naive_time))
}
