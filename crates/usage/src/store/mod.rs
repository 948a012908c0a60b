//! The module's tables and their SQL, one file per sub-domain: [`jobs`] (`usage_jobs`, one per
//! upload with its checkpoints and counts, and `usage_rejects`, the bad-row report), [`users`],
//! [`transactions`], [`days`] (`usage_job_days`, the days an import touched, whose aggregates it
//! must recompute), [`daily`] (the three daily tables) and [`kpis`] (the KPI reads). This file
//! holds the migrations.

pub mod daily;
pub mod days;
pub mod jobs;
pub mod kpis;
pub mod transactions;
pub mod users;

use sightline_platform::migrate::Migration;

/// Migration 2's renames: every table of the module carries its `usage_` prefix (rows kept), and
/// the two original file names get columns of their own.
macro_rules! USAGE_PREFIXES {
    () => {
        "ALTER TABLE users RENAME TO usage_users;
        ALTER TABLE transactions RENAME TO usage_transactions;
        ALTER TABLE jobs RENAME TO usage_jobs;
        ALTER TABLE daily_metrics RENAME TO usage_daily_metrics;
        ALTER TABLE daily_company_metrics RENAME TO usage_daily_company_metrics;
        ALTER TABLE daily_model_metrics RENAME TO usage_daily_model_metrics;
        ALTER TABLE usage_jobs ADD COLUMN transactions_filename TEXT;
        ALTER TABLE usage_jobs ADD COLUMN users_filename TEXT;
        "
    };
}

/// The module's migrations (never edited once landed: their checksums are checked).
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        1,
        "usage tables",
        "CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        region TEXT NOT NULL,
        is_active_sub BIGINT NOT NULL DEFAULT 0,
        department TEXT,
        company_name TEXT,
        signup_date BIGINT,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX users_active_region ON users (region, is_active_sub);
    CREATE TABLE transactions (
        id_key BIGINT PRIMARY KEY,
        id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        region TEXT NOT NULL,
        company TEXT NOT NULL,
        model_name TEXT NOT NULL,
        conversation_id TEXT NOT NULL,
        token_type TEXT NOT NULL,
        token_count BIGINT NOT NULL,
        rate_per_1k DOUBLE PRECISION NOT NULL,
        calculated_cost DOUBLE PRECISION NOT NULL,
        date TEXT NOT NULL,
        timestamp BIGINT NOT NULL
    );
    CREATE INDEX transactions_day ON transactions (date, region);
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        file_location TEXT NOT NULL,
        filename TEXT NOT NULL,
        total_rows BIGINT NOT NULL,
        processed_rows BIGINT NOT NULL DEFAULT 0,
        error TEXT,
        job_metadata TEXT NOT NULL,
        processed_at BIGINT,
        created_at BIGINT NOT NULL,
        created_by TEXT,
        status TEXT NOT NULL,
        stage TEXT NOT NULL,
        started_at BIGINT,
        updated_at BIGINT NOT NULL,
        users_bytes BIGINT NOT NULL,
        users_sha256 TEXT NOT NULL,
        users_total BIGINT NOT NULL,
        users_offset BIGINT NOT NULL DEFAULT 0,
        users_line BIGINT NOT NULL DEFAULT 0,
        users_read BIGINT NOT NULL DEFAULT 0,
        users_inserted BIGINT NOT NULL DEFAULT 0,
        users_updated BIGINT NOT NULL DEFAULT 0,
        users_unchanged BIGINT NOT NULL DEFAULT 0,
        users_rejected BIGINT NOT NULL DEFAULT 0,
        tx_bytes BIGINT NOT NULL,
        tx_sha256 TEXT NOT NULL,
        tx_offset BIGINT NOT NULL DEFAULT 0,
        tx_line BIGINT NOT NULL DEFAULT 0,
        tx_read BIGINT NOT NULL DEFAULT 0,
        tx_inserted BIGINT NOT NULL DEFAULT 0,
        tx_updated BIGINT NOT NULL DEFAULT 0,
        tx_unchanged BIGINT NOT NULL DEFAULT 0,
        tx_rejected BIGINT NOT NULL DEFAULT 0,
        tx_started_at BIGINT,
        days_total BIGINT NOT NULL DEFAULT 0,
        days_done BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE TABLE usage_rejects (
        job_id TEXT NOT NULL,
        file TEXT NOT NULL,
        line BIGINT NOT NULL,
        field TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (job_id, file, line)
    );
    CREATE TABLE usage_job_days (
        job_id TEXT NOT NULL,
        date TEXT NOT NULL,
        PRIMARY KEY (job_id, date)
    );
    CREATE TABLE daily_metrics (
        date TEXT NOT NULL,
        region TEXT NOT NULL,
        highest_model_used TEXT NOT NULL,
        avg_spending DOUBLE PRECISION NOT NULL,
        costliest_model TEXT NOT NULL,
        least_used_model TEXT NOT NULL,
        avg_token_consumption DOUBLE PRECISION NOT NULL,
        total_prompt_tokens BIGINT NOT NULL,
        total_completion_tokens BIGINT NOT NULL,
        active_subscriber_utilization_rate DOUBLE PRECISION NOT NULL,
        total_cost DOUBLE PRECISION NOT NULL,
        total_conversations BIGINT NOT NULL,
        transaction_count BIGINT NOT NULL,
        active_users BIGINT NOT NULL,
        active_subscribers BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (date, region)
    );
    CREATE TABLE daily_company_metrics (
        date TEXT NOT NULL,
        region TEXT NOT NULL,
        company_name TEXT NOT NULL,
        highest_used_model TEXT NOT NULL,
        least_used_model TEXT NOT NULL,
        total_cost DOUBLE PRECISION NOT NULL,
        conversation_count BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (date, region, company_name)
    );
    CREATE TABLE daily_model_metrics (
        date TEXT NOT NULL,
        region TEXT NOT NULL,
        model_name TEXT NOT NULL,
        total_cost DOUBLE PRECISION NOT NULL,
        conversation_count BIGINT NOT NULL,
        token_consumption BIGINT NOT NULL,
        transaction_count BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (date, region, model_name)
    );",
    ),
    Migration {
        version: 2,
        name: "usage table prefixes and separate file names",
        sqlite: concat!(
            USAGE_PREFIXES!(),
            "UPDATE usage_jobs SET transactions_filename = substr(filename, 1, instr(filename, ',') - 1),
                users_filename = substr(filename, instr(filename, ',') + 1) WHERE instr(filename, ',') > 0;"
        ),
        postgres: concat!(
            USAGE_PREFIXES!(),
            "UPDATE usage_jobs SET transactions_filename = split_part(filename, ',', 1),
                users_filename = substr(filename, strpos(filename, ',') + 1) WHERE strpos(filename, ',') > 0;"
        ),
    },
];
