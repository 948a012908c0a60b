//! The module's command-line tools: `sightline calls sample` (realistic call data as ingest
//! lines) and `sightline calls import FILE` (those lines into the embedded store).

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::NaiveDate;
use clap::{FromArgMatches as _, Subcommand};
use sightline_platform::audit::{Actor, EventBus};
use sightline_platform::queue::Queue;
use sightline_platform::{CommandContext, RequestContext};

use crate::model::CallRecord;
use crate::service::{parse_timezone, CallsService, DefaultOrg, NewOrg, ReportSchedule};
use crate::{ingest, sample, store, CallsModule};

/// Lines written per transaction by `import`.
const IMPORT_BATCH_LINES: usize = 5_000;

/// `sightline calls …`.
#[derive(Subcommand)]
pub enum CallsAction {
    /// Write realistic, deterministic call data (three organisations) as ingest lines.
    Sample {
        /// File to write (newline-delimited JSON).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// First day, YYYY-MM-DD.
        #[arg(long, default_value = "2025-11-03")]
        from: NaiveDate,
        /// Days to write.
        #[arg(long, default_value_t = 28)]
        days: u32,
        /// Calls per organisation on a weekday (about a quarter at weekends).
        #[arg(long, default_value_t = 200)]
        calls_per_day: u32,
    },
    /// Make (and store) one organisation's daily reports of a range of days, with a progress
    /// bar; stored days are kept unless --force.
    Backfill {
        /// The organisation's id.
        #[arg(long)]
        org: String,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: NaiveDate,
        /// Last day, inclusive.
        #[arg(long)]
        to: NaiveDate,
        /// Make stored days again.
        #[arg(long)]
        force: bool,
    },
    /// Load ingest lines into the embedded store: every line is checked first, and a bad one
    /// stops the import naming its line, before anything is written.
    Import {
        /// The newline-delimited JSON file.
        file: PathBuf,
        /// Also create the sample's organisations when missing.
        #[arg(long)]
        sample_orgs: bool,
    },
}

/// The `calls` command.
pub fn command() -> clap::Command {
    CallsAction::augment_subcommands(clap::Command::new("calls"))
        .about("Call-analytics tools")
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// Runs `calls …` with its matches.
pub async fn run(matches: &clap::ArgMatches, context: &CommandContext) -> anyhow::Result<()> {
    match CallsAction::from_arg_matches(matches)? {
        CallsAction::Sample { out, from, days, calls_per_day } => {
            let bar = progress(u64::from(days), "days");
            let file =
                std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let mut writer = BufWriter::new(file);
            let summary =
                sample::write_sample(&mut writer, from, days, calls_per_day, |n| bar.set_position(n))?;
            writer.flush()?;
            bar.finish_and_clear();
            eprintln!("wrote {} calls ({} lines) to {}", summary.calls, summary.lines, out.display());
            Ok(())
        }
        CallsAction::Backfill { org, from, to, force } => {
            anyhow::ensure!(from <= to, "--from must not be after --to");
            let config = context.load_config()?;
            sightline_platform::module::on_own_runtime(move || backfill(org, from, to, force, config)).await
        }
        CallsAction::Import { file, sample_orgs } => {
            let config = context.load_config()?;
            sightline_platform::module::on_own_runtime(move || import(file, sample_orgs, config)).await
        }
    }
}

fn progress(len: u64, unit: &str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {unit} {{per_sec}} eta {{eta}}"
        ))
        .expect("valid template"),
    )
}

/// The module's services over `config`'s database and call source, for a command.
async fn services(config: sightline_platform::config::Config) -> anyhow::Result<CallsService> {
    let modules: Vec<Arc<dyn sightline_platform::Module>> = vec![Arc::new(CallsModule)];
    let db = sightline_platform::app::connect_and_migrate(&config, &modules).await?;
    let calls = crate::CallsConfig::load(&config)?;
    let queue = Queue::new(db.clone(), config.queue.clone());
    let outbound = sightline_platform::outbound::Outbound::new(Arc::new(config));
    let source = calls.source(&db, &outbound)?;
    Ok(CallsService::new(
        db,
        EventBus::standard(),
        queue,
        source,
        DefaultOrg::default(),
        ReportSchedule::default(),
    ))
}

async fn backfill(
    org_id: String,
    from: NaiveDate,
    to: NaiveDate,
    force: bool,
    config: sightline_platform::config::Config,
) -> anyhow::Result<()> {
    let service = services(config).await?;
    let org = service.org(&org_id).await?;
    service.check_days(&org, "--to", from, to)?;
    let days = (to - from).num_days() + 1;
    let bar = progress(days as u64, "days");
    let started = sightline_platform::db::now_ms();
    let (mut written, mut kept, mut failed) = (0, 0, Vec::new());
    let mut day = from;
    while day <= to {
        match service.generate_report(&org, day, force).await {
            Ok((_, true)) => written += 1,
            Ok((_, false)) => kept += 1,
            Err(e) => failed.push(format!("{day}: {e}")),
        }
        bar.inc(1);
        day += chrono::Duration::days(1);
    }
    bar.finish_and_clear();
    let status = match (failed.len(), written + kept) {
        (0, _) => "success",
        (_, 0) => "error",
        _ => "partial",
    };
    let error = (!failed.is_empty()).then(|| failed.join("; "));
    service
        .record_run(
            crate::service::RunType::Backfill,
            status,
            Some(&org.org_id),
            started,
            written,
            error.as_deref(),
        )
        .await?;
    eprintln!("{}: {written} reports made, {kept} kept, {} failed", org.name, failed.len());
    anyhow::ensure!(failed.is_empty(), "some days failed:\n  {}", failed.join("\n  "));
    Ok(())
}

async fn import(
    path: PathBuf,
    sample_orgs: bool,
    config: sightline_platform::config::Config,
) -> anyhow::Result<()> {
    let open = || std::fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()));
    // Pass 1: every line checked, nothing held.
    let mut lines = 0usize;
    let mut bad = Vec::new();
    for (i, line) in BufReader::new(open()?).lines().enumerate() {
        let line = line.with_context(|| format!("line {}: cannot be read", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        if let Err(message) = ingest::parse_line(&line) {
            bad.push(format!("line {}: {message}", i + 1));
            if bad.len() == 20 {
                break;
            }
        }
    }
    if !bad.is_empty() {
        anyhow::bail!("{} is refused, nothing was imported:\n  {}", path.display(), bad.join("\n  "));
    }
    let modules: Vec<Arc<dyn sightline_platform::Module>> = vec![Arc::new(CallsModule)];
    let db = sightline_platform::app::connect_and_migrate(&config, &modules).await?;
    let actor = RequestContext::new(None, Actor { kind: "system".into(), id: None, name: "cli".into() });
    if sample_orgs {
        let service = services(config.clone()).await?;
        for org in sample::ORGS {
            let new = NewOrg {
                org_id: org.org_id.into(),
                name: org.name.into(),
                node_persistent_id: org.node_persistent_id.into(),
                timezone: parse_timezone(org.timezone)?,
                excluded_numbers: vec![org.test_number.into()],
            };
            match service.create_org(&actor, new).await {
                Ok(_) => eprintln!("created organisation {} ({})", org.name, org.org_id),
                Err(crate::error::CallsError::Conflict(_)) => {}
                Err(e) => return Err(anyhow::Error::new(e).context(format!("organisation {}", org.org_id))),
            }
        }
    }
    // Pass 2: written in batches, each one transaction.
    let bar = progress(lines as u64, "lines");
    let mut batch: Vec<CallRecord> = Vec::with_capacity(IMPORT_BATCH_LINES);
    let mut written = 0u64;
    let mut reader = BufReader::new(open()?).lines();
    loop {
        let next = reader.next().transpose()?;
        if let Some(line) = &next {
            if !line.trim().is_empty() {
                batch.push(ingest::parse_line(line).map_err(|m| anyhow::anyhow!("{m}"))?);
            }
        }
        if batch.len() >= IMPORT_BATCH_LINES || (next.is_none() && !batch.is_empty()) {
            let mut tx = db.begin().await?;
            store::calls::upsert(&mut tx, &batch).await?;
            tx.commit().await?;
            written += batch.len() as u64;
            bar.set_position(written);
            batch.clear();
        }
        if next.is_none() {
            break;
        }
    }
    bar.finish_and_clear();
    eprintln!("imported {written} records from {}", path.display());
    Ok(())
}
