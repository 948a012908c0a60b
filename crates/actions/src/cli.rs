//! The module's command-line tools: `sightline calc income`.

use std::path::PathBuf;

use clap::{FromArgMatches as _, Subcommand};

use crate::calculator::{run_income, IncomeRun};

/// `sightline calc …`.
#[derive(Subcommand)]
pub enum Calculator {
    /// Income rule: monthly_income > 2000 emits an `optimization` NBA event; with --api, clients
    /// that no longer qualify get a delete event for their current NBAs of that definition.
    Income {
        /// Input JSON: a mapping {"<enterprise_number>": income} or a list of
        /// {"enterprise_number", "monthly_income", "account_id"?}.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Base URL of the Sightline API to post events to.
        #[arg(long, value_name = "URL", conflicts_with = "dry_run", required_unless_present = "dry_run")]
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

/// The `calc` command.
pub fn command() -> clap::Command {
    Calculator::augment_subcommands(clap::Command::new("calc"))
        .about("Run a calculator")
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// Runs `calc …` with its matches.
pub async fn run(matches: &clap::ArgMatches) -> anyhow::Result<()> {
    match Calculator::from_arg_matches(matches)? {
        Calculator::Income { input, api, dry_run, definition, source, api_key, attempts } => {
            let api_key = api_key.map(sightline_platform::config::Secret::new);
            let run = IncomeRun { input, api, dry_run, definition, source, api_key, attempts };
            let s = run_income(&run).await?;
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
