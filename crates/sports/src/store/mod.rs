//! The module's SQL: the ingested league (`sports_players`, `sports_games`,
//! `sports_player_stats`, `sports_team_stats`), the ingestion runs (`sports_ingest_runs`), trained
//! models (`sports_models`) and predictions with their outcomes (`sports_predictions`).

pub mod league;
pub mod models;
pub mod predictions;
pub mod runs;

use sightline_platform::migrate::Migration;

/// The module's migrations.
pub const MIGRATIONS: &[Migration] = &[
    Migration::portable(
        1,
        "the ingested league and ingestion runs",
        "CREATE TABLE sports_players (
        id BIGINT PRIMARY KEY,
        name TEXT NOT NULL,
        team TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE sports_games (
        id TEXT PRIMARY KEY,
        game_date TEXT NOT NULL,
        season TEXT NOT NULL,
        home_team TEXT NOT NULL,
        away_team TEXT NOT NULL,
        home_score BIGINT,
        away_score BIGINT,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX sports_games_date ON sports_games (game_date);
    CREATE INDEX sports_games_season ON sports_games (season);
    CREATE TABLE sports_player_stats (
        player_id BIGINT NOT NULL,
        game_id TEXT NOT NULL,
        team TEXT NOT NULL,
        minutes DOUBLE PRECISION,
        points DOUBLE PRECISION,
        rebounds DOUBLE PRECISION,
        assists DOUBLE PRECISION,
        steals DOUBLE PRECISION,
        blocks DOUBLE PRECISION,
        turnovers DOUBLE PRECISION,
        threes DOUBLE PRECISION,
        plus_minus DOUBLE PRECISION,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (player_id, game_id)
    );
    CREATE INDEX sports_player_stats_game ON sports_player_stats (game_id);
    CREATE TABLE sports_team_stats (
        team TEXT NOT NULL,
        season TEXT NOT NULL,
        games_count BIGINT NOT NULL,
        pts_for_avg DOUBLE PRECISION,
        pts_against_avg DOUBLE PRECISION,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (team, season)
    );
    CREATE TABLE sports_ingest_runs (
        id TEXT PRIMARY KEY,
        run_date TEXT NOT NULL,
        trigger TEXT NOT NULL,
        dry_run BIGINT NOT NULL,
        status TEXT NOT NULL,
        summary TEXT,
        error TEXT,
        alert_delivery_id TEXT,
        started_at BIGINT NOT NULL,
        finished_at BIGINT
    );
    CREATE INDEX sports_ingest_runs_started ON sports_ingest_runs (started_at);",
    ),
    Migration::portable(
        2,
        "trained models",
        "CREATE TABLE sports_models (
            id TEXT PRIMARY KEY,
            stat TEXT NOT NULL,
            dataset_version TEXT NOT NULL,
            kind TEXT NOT NULL,
            body TEXT NOT NULL,
            checksum TEXT NOT NULL,
            kept BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX sports_models_stat ON sports_models (stat, created_at);",
    ),
    Migration::portable(
        3,
        "predictions and what came of them",
        "CREATE TABLE sports_predictions (
            id TEXT PRIMARY KEY,
            method TEXT NOT NULL,
            player_key TEXT NOT NULL,
            stat TEXT NOT NULL,
            line DOUBLE PRECISION NOT NULL,
            predicted DOUBLE PRECISION NOT NULL,
            recommendation TEXT,
            made_on TEXT NOT NULL,
            actual DOUBLE PRECISION,
            game_id TEXT,
            game_date TEXT,
            settled_at BIGINT,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX sports_predictions_open ON sports_predictions (made_on) WHERE actual IS NULL;
        CREATE INDEX sports_predictions_method ON sports_predictions (method, stat);",
    ),
];
