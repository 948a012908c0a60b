//! The `sightline` binary: serve, worker, migrate and the calculators.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use sightline_platform::config::{Config, LogFormat, Overrides};
use sightline_platform::{app, telemetry, Module};

/// Sightline: one backend for next-best-actions, call analytics, sports stats, usage analytics
/// and S&OP planning.
#[derive(Parser)]
#[command(name = "sightline", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct GlobalArgs {
    /// Configuration file (default: ./sightline.toml when present).
    #[arg(long, global = true, env = "SIGHTLINE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory for the SQLite database and generated files [env: SIGHTLINE_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL, sqlite://… or postgres://… [env: SIGHTLINE_DATABASE_URL, DATABASE_URL].
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Log format [env: SIGHTLINE_LOG_FORMAT].
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Pretty,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server with in-process workers and scheduler.
    Serve {
        /// Listen address [env: SIGHTLINE_BIND] (default 127.0.0.1:8000).
        #[arg(long, value_name = "ADDR:PORT")]
        bind: Option<String>,
    },
    /// Run queue workers and the scheduler only (no HTTP), sharing the database with servers.
    Worker,
    /// Apply pending migrations of the platform and the enabled modules, then exit.
    Migrate,
    /// Run a calculator.
    Calc {
        #[command(subcommand)]
        calculator: Calculator,
    },
}

#[derive(Subcommand)]
enum Calculator {
    /// Income rule: monthly_income > 2000 emits an `optimization` NBA event; with --api, clients
    /// that no longer qualify get a delete event for their current NBAs of that definition.
    Income {
        /// Input JSON: a mapping {"<enterprise_number>": income} or a list of
        /// {"enterprise_number", "monthly_income", "account_id"?}.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Base URL of the Sightline API to post events to.
        #[arg(
            long,
            value_name = "URL",
            conflicts_with = "dry_run",
            required_unless_present = "dry_run"
        )]
        api: Option<String>,
        /// Print the events as JSON lines instead of posting them.
        #[arg(long)]
        dry_run: bool,
        /// NBA definition to emit.
        #[arg(long, default_value = "optimization")]
        definition: String,
        /// Event source name.
        #[arg(long, default_value = "calculator.income.v1")]
        source: String,
        /// API key or token, sent as `Authorization: Bearer`.
        #[arg(long, env = "SIGHTLINE_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Attempts per request (retries on connection errors, 429 and 5xx).
        #[arg(long, default_value_t = 4)]
        attempts: u32,
    },
}

/// Every module built into this binary.
fn all_modules() -> Vec<Arc<dyn Module>> {
    vec![Arc::new(sightline_actions::ActionsModule)]
}

fn enabled_modules(config: &Config) -> Result<Vec<Arc<dyn Module>>, String> {
    let all = all_modules();
    if let Some(unknown) = config
        .modules
        .iter()
        .find(|m| !all.iter().any(|a| a.name() == m.as_str()))
    {
        let known: Vec<&str> = all.iter().map(|m| m.name()).collect();
        return Err(format!(
            "configuration error: key `modules`: unknown module `{unknown}` (built: {})",
            known.join(", ")
        ));
    }
    Ok(all
        .into_iter()
        .filter(|m| config.module_enabled(m.name()))
        .collect())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Calc { calculator } = cli.command {
        return run_calculator(calculator).await;
    }
    let overrides = Overrides {
        bind: match &cli.command {
            Command::Serve { bind } => bind.clone(),
            _ => None,
        },
        data_dir: cli.global.data_dir,
        database_url: cli.global.database_url,
        log_format: cli.global.log_format.map(|f| match f {
            LogFormatArg::Pretty => LogFormat::Pretty,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let config = Config::load(cli.global.config.as_deref(), &overrides)?;
    let modules = enabled_modules(&config).map_err(anyhow::Error::msg)?;
    telemetry::init_logging(config.log_format, &config.log_level);
    match cli.command {
        Command::Serve { .. } => {
            let app = app::Application::build(config, &modules).await?;
            app.run_until_stopped().await
        }
        Command::Worker => app::run_worker(config, &modules).await,
        Command::Migrate => {
            app::connect_and_migrate(&config, &modules).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Calc { .. } => unreachable!("handled above"),
    }
}

async fn run_calculator(calculator: Calculator) -> anyhow::Result<()> {
    match calculator {
        Calculator::Income {
            input,
            api,
            dry_run,
            definition,
            source,
            api_key,
            attempts,
        } => {
            let run = sightline_actions::calculator::IncomeRun {
                input,
                api,
                dry_run,
                definition,
                source,
                api_key,
                attempts,
            };
            let s = sightline_actions::calculator::run_income(&run).await?;
            eprintln!(
                "emitted {}, skipped {}, delete events {}, failed {}",
                s.emitted, s.skipped, s.delete_events, s.failed
            );
            if s.failed > 0 {
                anyhow::bail!("{} request(s) failed", s.failed);
            }
            Ok(())
        }
    }
}
