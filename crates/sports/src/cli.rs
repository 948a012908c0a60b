//! The module's command-line tools: `sightline sports stand-in` (a local stats.nba.com) and
//! `sightline sports sync` (a day's ingestion, or a stretch of days), `dataset` and `train`.

use chrono::NaiveDate;
use clap::{FromArgMatches as _, Subcommand};
use sightline_platform::CommandContext;

use crate::standin::StandIn;

/// `sightline sports …`.
#[derive(Subcommand)]
pub enum SportsAction {
    /// Serve a stand-in for stats.nba.com (same paths, parameters and answers, over a generated
    /// league) until stopped; point `NBA_STATS_BASE_URL` at `http://ADDR/stats`.
    StandIn {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8790")]
        bind: String,
        /// The day it lives on (games before it are played); default today.
        #[arg(long)]
        today: Option<NaiveDate>,
    },
    /// Build a training dataset of a stat from the stored games: per-player samples with the
    /// original's features, split by time, written as Parquet, CSV and a metadata JSON.
    Dataset {
        /// points, rebounds, assists, steals, blocks, threes, turnovers or minutes.
        #[arg(long, default_value = "points")]
        stat: String,
        /// Players with fewer stored games are left out.
        #[arg(long, default_value_t = 50)]
        min_games: usize,
        /// Directory to write to; default `<data_dir>/sports/datasets`.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Train a model of a stat on its newest dataset and print its test error beside the two
    /// baselines; it is kept for predictions only if it beats both.
    Train {
        /// The stat.
        #[arg(long, default_value = "points")]
        stat: String,
    },
    /// Sync one day's games from stats.nba.com into the store (the daily ingestion) and print
    /// its summary, or a stretch of days (`--from`/`--to`, `--season`) with a progress bar. An
    /// alert it raises is queued: a running `serve` or `worker` delivers it.
    Sync {
        /// The day, YYYY-MM-DD; default yesterday in the sync's zone.
        #[arg(long, conflicts_with_all = ["from", "season"])]
        date: Option<NaiveDate>,
        /// First day of a stretch (with `--to`, default yesterday).
        #[arg(long, conflicts_with = "season")]
        from: Option<NaiveDate>,
        /// Last day of a stretch.
        #[arg(long, requires = "from")]
        to: Option<NaiveDate>,
        /// A whole season, e.g. 2024-25 (1 October to 30 June, not past yesterday).
        #[arg(long)]
        season: Option<String>,
        /// Fetch, audit and validate only: store nothing, alert nobody.
        #[arg(long)]
        dry_run: bool,
    },
}

/// The `sports` command.
pub fn command() -> clap::Command {
    SportsAction::augment_subcommands(clap::Command::new("sports"))
        .about("Basketball-stats tools")
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// Runs `sports …` with its matches.
pub async fn run(matches: &clap::ArgMatches, context: &CommandContext) -> anyhow::Result<()> {
    match SportsAction::from_arg_matches(matches)? {
        SportsAction::StandIn { bind, today } => {
            let today = today.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let listener = tokio::net::TcpListener::bind(&bind).await?;
            eprintln!(
                "stats.nba.com stand-in on http://{}/stats (today: {today}); set NBA_STATS_BASE_URL to it. \
                 Steer it with POST /standin/mode {{\"mode\": \"normal|hang|throttle|error|not_json\", \"latency_ms\": 0}}",
                listener.local_addr()?
            );
            StandIn::new(today).serve(listener).await?;
            Ok(())
        }
        SportsAction::Dataset { stat, min_games, out } => {
            let config = context.load_config()?;
            sightline_platform::module::on_own_runtime(move || dataset(config, stat, min_games, out)).await
        }
        SportsAction::Train { stat } => {
            let config = context.load_config()?;
            sightline_platform::module::on_own_runtime(move || train(config, stat)).await
        }
        SportsAction::Sync { date, from, to, season, dry_run } => {
            let config = context.load_config()?;
            let days = SyncDays::from_args(date, from, to, season)?;
            sightline_platform::module::on_own_runtime(move || sync(config, days, dry_run)).await
        }
    }
}

/// The module's service over `config`'s database, outbound clients and cache, for a command.
async fn command_service(
    config: sightline_platform::config::Config,
) -> anyhow::Result<(crate::service::SportsService, crate::SportsConfig)> {
    let modules: Vec<std::sync::Arc<dyn sightline_platform::Module>> =
        vec![std::sync::Arc::new(crate::SportsModule)];
    let db = sightline_platform::app::connect_and_migrate(&config, &modules).await?;
    let sports = crate::SportsConfig::load(&config)?;
    let queue = sightline_platform::queue::Queue::new(db.clone(), config.queue.clone());
    let cache = sightline_platform::cache::Cache::from_config(&config.cache)?;
    let config = std::sync::Arc::new(config);
    let outbound = sightline_platform::outbound::Outbound::new(config.clone());
    let service = crate::SportsModule::service(&sports, &config, &db, &outbound, cache, queue)?;
    Ok((service, sports))
}

/// The days `sports sync` was asked for.
enum SyncDays {
    /// One day (default yesterday).
    Day(Option<NaiveDate>),
    /// From a day to another (default yesterday).
    Stretch(NaiveDate, Option<NaiveDate>),
}

impl SyncDays {
    fn from_args(
        date: Option<NaiveDate>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        season: Option<String>,
    ) -> anyhow::Result<Self> {
        if let Some(season) = season {
            anyhow::ensure!(crate::nba::valid_season(&season), "--season: a season such as 2024-25");
            let start: i32 = season[..4].parse()?;
            let first = NaiveDate::from_ymd_opt(start, 10, 1).expect("a date");
            let last = NaiveDate::from_ymd_opt(start + 1, 6, 30).expect("a date");
            return Ok(Self::Stretch(first, Some(last)));
        }
        Ok(match from {
            Some(from) => Self::Stretch(from, to),
            None => Self::Day(date),
        })
    }
}

async fn sync(
    config: sightline_platform::config::Config,
    days: SyncDays,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (service, sports) = command_service(config).await?;
    let timezone: chrono_tz::Tz =
        sports.sync_timezone.parse().map_err(|_| anyhow::anyhow!("sports.sync_timezone"))?;
    let yesterday = chrono::Utc::now().with_timezone(&timezone).date_naive() - chrono::Duration::days(1);
    let (from, to) = match days {
        SyncDays::Day(date) => {
            let summary = service.sync(date.unwrap_or(yesterday), dry_run, "cli").await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            return Ok(());
        }
        SyncDays::Stretch(from, to) => (from, to.unwrap_or(yesterday).min(yesterday)),
    };
    anyhow::ensure!(from <= to, "nothing to sync: {from} is after {to}");
    let bar = indicatif::ProgressBar::new((to - from).num_days() as u64 + 1).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} days {msg} ({elapsed})")
            .expect("a template"),
    );
    let started = std::time::Instant::now();
    let summaries =
        service.sync_range(from, to, dry_run, "cli", |done, _| bar.set_position(done as u64)).await;
    bar.finish_and_clear();
    let summaries = summaries?;
    let count = |key: &str| summaries.iter().filter_map(|s| s[key].as_u64()).sum::<u64>();
    let findings = |key: &str| {
        summaries.iter().filter_map(|s| s["validation"][key].as_array().map(Vec::len)).sum::<usize>()
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "days": summaries.len(),
            "player_rows": count("player_rows"),
            "team_rows": count("team_rows"),
            "filtered_out_count": count("filtered_out_count"),
            "predictions_settled": count("predictions_settled"),
            "validation": {"missing": findings("missing"), "type_errors": findings("type_errors"),
                "outliers": findings("outliers")},
            "dry_run": dry_run,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        }))?
    );
    Ok(())
}

async fn dataset(
    config: sightline_platform::config::Config,
    stat: String,
    min_games: usize,
    out: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let (service, _) = command_service(config).await?;
    let spinner = indicatif::ProgressBar::new_spinner().with_message(format!("building the {stat} dataset"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let meta = service.build_dataset(&stat, min_games, out.as_deref()).await;
    spinner.finish_and_clear();
    println!("{}", serde_json::to_string_pretty(&meta?)?);
    Ok(())
}

async fn train(config: sightline_platform::config::Config, stat: String) -> anyhow::Result<()> {
    let (service, _) = command_service(config).await?;
    let training = service.train_model(&stat).await?;
    let m = &training.model.metrics;
    println!(
        "{stat} model {} (ridge, alpha {}), dataset {}",
        training.id, training.model.alpha, training.model.dataset_version
    );
    println!("samples: {} train, {} val, {} test", m.train_rows, m.val_rows, m.test_rows);
    println!("{:<28} {:>8} {:>8}", "test split", "MAE", "RMSE");
    println!("{:<28} {:>8.3} {:>8.3}", "model", m.test_mae, m.test_rmse);
    println!(
        "{:<28} {:>8.3} {:>8.3}",
        "season average so far", m.baseline_season_avg.0, m.baseline_season_avg.1
    );
    println!("{:<28} {:>8.3} {:>8.3}", "last-5 average", m.baseline_last_5.0, m.baseline_last_5.1);
    println!(
        "{}",
        if training.kept {
            "kept: /api/predict uses it"
        } else {
            "not kept: it does not beat both baselines"
        }
    );
    Ok(())
}
