//! The module's command-line tools: `sightline usage sample`.

use std::path::PathBuf;

use clap::{FromArgMatches as _, Subcommand};

use crate::sample::write_sample;

/// `sightline usage …`.
#[derive(Subcommand)]
pub enum UsageAction {
    /// Write a realistic, deterministic pair of upload files (users.csv, transactions.csv).
    Sample {
        /// Transactions rows to write.
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        /// Directory to write them to (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// The `usage` command.
pub fn command() -> clap::Command {
    UsageAction::augment_subcommands(clap::Command::new("usage"))
        .about("Usage analytics tools")
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// Runs `usage …` with its matches.
pub fn run(matches: &clap::ArgMatches) -> anyhow::Result<()> {
    match UsageAction::from_arg_matches(matches)? {
        UsageAction::Sample { rows, out } => {
            let bar = indicatif::ProgressBar::new(rows).with_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} eta {eta}")
                    .expect("valid template"),
            );
            let summary = write_sample(&out, rows, |n| bar.set_position(n))
                .map_err(|e| anyhow::anyhow!("cannot write the sample to {}: {e}", out.display()))?;
            bar.finish_and_clear();
            eprintln!(
                "wrote {} users and {} transactions ({} to {}, total cost {:.2}, {} tokens) to {}",
                summary.users,
                summary.rows,
                summary.days.0,
                summary.days.1,
                summary.total_cost,
                summary.total_tokens,
                out.display()
            );
            Ok(())
        }
    }
}
