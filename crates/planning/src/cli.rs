//! `sightline planning sample` (a realistic data set as CSV files, optionally loaded) and
//! `sightline planning forecast` (every product, with a progress bar, resumable).

use clap::{FromArgMatches as _, Subcommand};
use sightline_platform::CommandContext;

use crate::sample::{generate, to_csv, SampleSpec};

/// `sightline planning …`.
#[derive(Subcommand)]
pub enum PlanningAction {
    /// Write a sample data set (products in families, monthly demand with trend, seasons,
    /// promotions and intermittent items, stock at three locations) as products.csv,
    /// demand_actuals.csv and inventory.csv; with --load, also load it into the database.
    Sample {
        /// Directory to write to.
        #[arg(long, default_value = "planning-sample")]
        out: std::path::PathBuf,
        /// Products.
        #[arg(long, default_value_t = 300)]
        products: usize,
        /// Months of demand history, ending last month.
        #[arg(long, default_value_t = 42)]
        months: usize,
        /// Random seed (the same seed, the same data).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Load it into the configured database too (idempotent).
        #[arg(long)]
        load: bool,
    },
    /// Forecast every product (a run with a progress bar; an unfinished run of the same model
    /// and horizon, stopped or killed, goes on from its last product).
    Forecast {
        /// A method id: auto, ets, exp_smoothing, prophet, decomposition, seasonal_naive,
        /// moving_average, croston, sba, tsb, combination.
        #[arg(long, default_value = "auto")]
        model: String,
        /// Months ahead, 1–24.
        #[arg(long, default_value_t = 6)]
        horizon: i64,
    },
}

/// The `planning` command.
pub fn command() -> clap::Command {
    PlanningAction::augment_subcommands(clap::Command::new("planning"))
        .about("S&OP planning tools")
        .subcommand_required(true)
        .arg_required_else_help(true)
}

/// Runs `planning …` with its matches.
pub async fn run(matches: &clap::ArgMatches, context: &CommandContext) -> anyhow::Result<()> {
    match PlanningAction::from_arg_matches(matches)? {
        PlanningAction::Sample { out, products, months, seed, load } => {
            anyhow::ensure!((1..=100_000).contains(&products), "--products: 1 to 100000");
            anyhow::ensure!((3..=240).contains(&months), "--months: 3 to 240");
            let until = crate::service::inventory::this_month();
            let sample = generate(SampleSpec { products, months, until, seed });
            std::fs::create_dir_all(&out)?;
            for (name, text) in to_csv(&sample) {
                std::fs::write(out.join(name), text)?;
            }
            eprintln!(
                "wrote {} products, {} months of demand ({} rows) and {} stock positions to {}",
                sample.products.len(),
                months,
                sample.actuals.len(),
                sample.inventory.len(),
                out.display()
            );
            if load {
                let config = context.load_config()?;
                sightline_platform::module::on_own_runtime(move || load_sample(config, sample)).await?;
            }
            Ok(())
        }
        PlanningAction::Forecast { model, horizon } => {
            let config = context.load_config()?;
            sightline_platform::module::on_own_runtime(move || forecast_all(config, model, horizon)).await
        }
    }
}

/// The module's service over `config`'s database, for a command.
async fn command_service(
    config: sightline_platform::config::Config,
) -> anyhow::Result<crate::service::PlanningService> {
    let modules: Vec<std::sync::Arc<dyn sightline_platform::Module>> =
        vec![std::sync::Arc::new(crate::PlanningModule)];
    let db = sightline_platform::app::connect_and_migrate(&config, &modules).await?;
    let queue = sightline_platform::queue::Queue::new(db.clone(), config.queue.clone());
    Ok(crate::service::PlanningService::new(db, sightline_platform::audit::EventBus::standard(), queue))
}

async fn forecast_all(
    config: sightline_platform::config::Config,
    model: String,
    horizon: i64,
) -> anyhow::Result<()> {
    let service = command_service(config).await?;
    let run = service.create_forecast_run(&model, horizon).await?;
    let bar = indicatif::ProgressBar::new(u64::try_from(run.total).unwrap_or(0)).with_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} products {msg} ({elapsed}, {eta} left)",
        )
        .expect("a template"),
    );
    bar.set_position(u64::try_from(run.done + run.failed).unwrap_or(0));
    if run.done + run.failed > 0 {
        bar.println(format!("resuming run {} after product {}", run.id, run.last_product_id));
    }
    let started = std::time::Instant::now();
    service
        .run_forecasts(&run.id, &|| false, &mut |r| {
            bar.set_position(u64::try_from(r.done + r.failed).unwrap_or(0));
        })
        .await?;
    bar.finish_and_clear();
    let run = service.forecast_run(&run.id).await?;
    eprintln!(
        "run {}: {} products forecast, {} with too little history, in {:.1} s (model {model}, {horizon} months)",
        run.id,
        run.done,
        run.failed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn load_sample(
    config: sightline_platform::config::Config,
    sample: crate::sample::Sample,
) -> anyhow::Result<()> {
    use crate::service::bulk::{csv_row, UnknownSku};
    let modules: Vec<std::sync::Arc<dyn sightline_platform::Module>> =
        vec![std::sync::Arc::new(crate::PlanningModule)];
    let db = sightline_platform::app::connect_and_migrate(&config, &modules).await?;
    let queue = sightline_platform::queue::Queue::new(db.clone(), config.queue.clone());
    let service =
        crate::service::PlanningService::new(db, sightline_platform::audit::EventBus::standard(), queue);
    let context = sightline_platform::RequestContext::system();
    let bar = indicatif::ProgressBar::new(3).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("a template"),
    );
    bar.set_message("products");
    let products = service.load_products(&context, sample.products, csv_row, false).await?;
    bar.inc(1);
    bar.set_message("demand history");
    let actuals = service.load_actuals(&context, sample.actuals, csv_row, UnknownSku::Refuse, false).await?;
    bar.inc(1);
    bar.set_message("stock");
    let stock =
        service.load_inventory(&context, sample.inventory, csv_row, UnknownSku::Refuse, false).await?;
    bar.finish_and_clear();
    eprintln!(
        "loaded: products {} new, {} updated; demand {} rows; stock {} new, {} updated",
        products.created, products.updated, actuals.updated, stock.created, stock.updated
    );
    Ok(())
}
