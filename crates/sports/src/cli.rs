//! The module's command-line tools: `sightline sports stand-in` (a local stats.nba.com).

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
}

/// The `sports` command.
pub fn command() -> clap::Command {
    SportsAction::augment_subcommands(clap::Command::new("sports"))
        .about("Basketball-stats tools")
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// Runs `sports …` with its matches.
pub async fn run(matches: &clap::ArgMatches, _context: &CommandContext) -> anyhow::Result<()> {
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
    }
}
