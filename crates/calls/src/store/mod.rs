//! The module's SQL, by table: [`orgs`] (`calls_orgs`), [`calls`] (the embedded call store:
//! `calls_runs`, `calls_sessions`, `calls_node_outputs`, `calls_nodes`, and the metric reads
//! over them), [`reports`] (`calls_reports`, `calls_report_runs`), [`backfills`] (`calls_backfills`).

pub mod backfills;
pub mod calls;
pub mod orgs;
pub mod reports;

use sightline_platform::migrate::Migration;

const FIELDS_AND_INDEXES: &str = "
    CREATE TABLE calls_runs (
        id TEXT PRIMARY KEY,
        ts BIGINT NOT NULL
    );
    CREATE INDEX calls_runs_ts ON calls_runs (ts);
    CREATE TABLE calls_sessions (
        run_id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL,
        user_number TEXT NOT NULL,
        duration DOUBLE PRECISION,
        ts BIGINT NOT NULL
    );
    CREATE INDEX calls_sessions_org_ts ON calls_sessions (org_id, ts);
    CREATE TABLE calls_nodes (
        id TEXT PRIMARY KEY,
        org_id TEXT NOT NULL
    );
    CREATE TABLE calls_node_outputs (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        node_persistent_id TEXT NOT NULL,
        ts BIGINT NOT NULL,
        flat_data TEXT NOT NULL,
        f_call_classification TEXT,
        f_call_stage TEXT,
        f_load_status TEXT,
        f_carrier_qualification TEXT,
        f_pricing_notes TEXT,
        f_carrier_end_state TEXT,
        f_transfer_reason TEXT,
        f_transfer_attempt TEXT,
        f_agreed_upon_rate TEXT,
        f_reference_number TEXT
    );
    CREATE INDEX calls_node_outputs_node_run ON calls_node_outputs (node_persistent_id, run_id);
    CREATE INDEX calls_node_outputs_run ON calls_node_outputs (run_id);
";

/// The module's migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "organisations",
        sqlite: "CREATE TABLE calls_orgs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            org_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            node_persistent_id TEXT NOT NULL,
            timezone TEXT NOT NULL,
            is_active BIGINT NOT NULL,
            excluded_numbers TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
        postgres: "CREATE TABLE calls_orgs (
            id BIGSERIAL PRIMARY KEY,
            org_id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            node_persistent_id TEXT NOT NULL,
            timezone TEXT NOT NULL,
            is_active BIGINT NOT NULL,
            excluded_numbers TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
    },
    Migration::portable(2, "the embedded call store", FIELDS_AND_INDEXES),
    Migration {
        version: 3,
        name: "stored daily reports and generation runs",
        sqlite: "CREATE TABLE calls_reports (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            org_id TEXT NOT NULL,
            report_date TEXT NOT NULL,
            report_data TEXT NOT NULL,
            total_calls BIGINT NOT NULL,
            success_rate_percent DOUBLE PRECISION,
            non_convertible_percent DOUBLE PRECISION,
            created_at BIGINT NOT NULL,
            UNIQUE (org_id, report_date)
        );
        CREATE TABLE calls_report_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_type TEXT NOT NULL,
            status TEXT NOT NULL,
            org_id TEXT,
            started_at BIGINT NOT NULL,
            completed_at BIGINT NOT NULL,
            reports_generated BIGINT NOT NULL,
            error_message TEXT
        );
        CREATE INDEX calls_report_runs_started ON calls_report_runs (started_at)",
        postgres: "CREATE TABLE calls_reports (
            id BIGSERIAL PRIMARY KEY,
            org_id TEXT NOT NULL,
            report_date TEXT NOT NULL,
            report_data TEXT NOT NULL,
            total_calls BIGINT NOT NULL,
            success_rate_percent DOUBLE PRECISION,
            non_convertible_percent DOUBLE PRECISION,
            created_at BIGINT NOT NULL,
            UNIQUE (org_id, report_date)
        );
        CREATE TABLE calls_report_runs (
            id BIGSERIAL PRIMARY KEY,
            run_type TEXT NOT NULL,
            status TEXT NOT NULL,
            org_id TEXT,
            started_at BIGINT NOT NULL,
            completed_at BIGINT NOT NULL,
            reports_generated BIGINT NOT NULL,
            error_message TEXT
        );
        CREATE INDEX calls_report_runs_started ON calls_report_runs (started_at)",
    },
    Migration::portable(
        4,
        "backfills with their progress",
        "CREATE TABLE calls_backfills (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL,
            start_date TEXT NOT NULL,
            end_date TEXT NOT NULL,
            force_regenerate BIGINT NOT NULL,
            next_date TEXT NOT NULL,
            days_total BIGINT NOT NULL,
            days_done BIGINT NOT NULL,
            generated BIGINT NOT NULL,
            failed BIGINT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            created_by TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )",
    ),    // Each output carries its run's time, its session's organisation, time, number and duration,
    // how many outputs of its node its run has, and its kind (the values the metrics group by):
    // a scope's profile is then one scan of one covering index.
    Migration {
        version: 5,
        name: "outputs carry their run, session and kind",
        sqlite: "CREATE TABLE calls_output_kinds (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind_key TEXT NOT NULL UNIQUE,
            f_call_classification TEXT,
            f_call_stage TEXT,
            f_load_status TEXT,
            f_carrier_qualification TEXT,
            f_pricing_notes TEXT,
            f_carrier_end_state TEXT,
            f_transfer_reason TEXT,
            f_transfer_attempt TEXT,
            f_agreed_upon_rate TEXT
        );
        ALTER TABLE calls_node_outputs ADD COLUMN kind_id BIGINT;
        ALTER TABLE calls_node_outputs ADD COLUMN run_outputs BIGINT NOT NULL DEFAULT 1;
        ALTER TABLE calls_node_outputs ADD COLUMN run_ts BIGINT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_org_id TEXT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_ts BIGINT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_user_number TEXT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_duration DOUBLE PRECISION;
        INSERT INTO calls_output_kinds (kind_key, f_call_classification, f_call_stage, f_load_status,
            f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt,
            f_agreed_upon_rate)
            SELECT DISTINCT json_array(f_call_classification, f_call_stage, f_load_status, f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt, CASE WHEN f_agreed_upon_rate IS NULL OR f_agreed_upon_rate IN ('', 'null') THEN f_agreed_upon_rate ELSE 'present' END), f_call_classification, f_call_stage, f_load_status, f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt, CASE WHEN f_agreed_upon_rate IS NULL OR f_agreed_upon_rate IN ('', 'null') THEN f_agreed_upon_rate ELSE 'present' END
            FROM calls_node_outputs WHERE true ON CONFLICT (kind_key) DO NOTHING;
        UPDATE calls_node_outputs SET
            kind_id = (SELECT k.id FROM calls_output_kinds k WHERE k.kind_key = json_array(f_call_classification, f_call_stage, f_load_status, f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt, CASE WHEN f_agreed_upon_rate IS NULL OR f_agreed_upon_rate IN ('', 'null') THEN f_agreed_upon_rate ELSE 'present' END)),
            run_outputs = (SELECT COUNT(*) FROM calls_node_outputs o2
                WHERE o2.node_persistent_id = calls_node_outputs.node_persistent_id AND o2.run_id = calls_node_outputs.run_id),
            run_ts = (SELECT r.ts FROM calls_runs r WHERE r.id = calls_node_outputs.run_id),
            session_org_id = (SELECT s.org_id FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id),
            session_ts = (SELECT s.ts FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id),
            session_user_number = (SELECT s.user_number FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id),
            session_duration = (SELECT s.duration FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id);
        CREATE INDEX calls_node_outputs_scope ON calls_node_outputs (node_persistent_id, session_org_id, session_ts,
            run_ts, node_id, session_user_number, session_duration, run_outputs, kind_id, run_id, f_reference_number)",
        postgres: "CREATE TABLE calls_output_kinds (
            id BIGSERIAL PRIMARY KEY,
            kind_key TEXT NOT NULL UNIQUE,
            f_call_classification TEXT,
            f_call_stage TEXT,
            f_load_status TEXT,
            f_carrier_qualification TEXT,
            f_pricing_notes TEXT,
            f_carrier_end_state TEXT,
            f_transfer_reason TEXT,
            f_transfer_attempt TEXT,
            f_agreed_upon_rate TEXT
        );
        ALTER TABLE calls_node_outputs ADD COLUMN kind_id BIGINT;
        ALTER TABLE calls_node_outputs ADD COLUMN run_outputs BIGINT NOT NULL DEFAULT 1;
        ALTER TABLE calls_node_outputs ADD COLUMN run_ts BIGINT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_org_id TEXT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_ts BIGINT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_user_number TEXT;
        ALTER TABLE calls_node_outputs ADD COLUMN session_duration DOUBLE PRECISION;
        INSERT INTO calls_output_kinds (kind_key, f_call_classification, f_call_stage, f_load_status,
            f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt,
            f_agreed_upon_rate)
            SELECT DISTINCT json_build_array(f_call_classification, f_call_stage, f_load_status, f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt, CASE WHEN f_agreed_upon_rate IS NULL OR f_agreed_upon_rate IN ('', 'null') THEN f_agreed_upon_rate ELSE 'present' END)::text, f_call_classification, f_call_stage, f_load_status, f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt, CASE WHEN f_agreed_upon_rate IS NULL OR f_agreed_upon_rate IN ('', 'null') THEN f_agreed_upon_rate ELSE 'present' END
            FROM calls_node_outputs WHERE true ON CONFLICT (kind_key) DO NOTHING;
        UPDATE calls_node_outputs SET
            kind_id = (SELECT k.id FROM calls_output_kinds k WHERE k.kind_key = json_build_array(f_call_classification, f_call_stage, f_load_status, f_carrier_qualification, f_pricing_notes, f_carrier_end_state, f_transfer_reason, f_transfer_attempt, CASE WHEN f_agreed_upon_rate IS NULL OR f_agreed_upon_rate IN ('', 'null') THEN f_agreed_upon_rate ELSE 'present' END)::text),
            run_outputs = (SELECT COUNT(*) FROM calls_node_outputs o2
                WHERE o2.node_persistent_id = calls_node_outputs.node_persistent_id AND o2.run_id = calls_node_outputs.run_id),
            run_ts = (SELECT r.ts FROM calls_runs r WHERE r.id = calls_node_outputs.run_id),
            session_org_id = (SELECT s.org_id FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id),
            session_ts = (SELECT s.ts FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id),
            session_user_number = (SELECT s.user_number FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id),
            session_duration = (SELECT s.duration FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id);
        CREATE INDEX calls_node_outputs_scope ON calls_node_outputs (node_persistent_id, session_org_id, session_ts,
            run_ts, node_id, session_user_number, session_duration, run_outputs, kind_id, run_id, f_reference_number)",
    },
];
