//! The `sightline` binary: serve, worker, migrate and the calculators.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgMatches, Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use sightline_platform::audit::{self, EventBus};
use sightline_platform::auth::AuthService;
use sightline_platform::config::{Config, LogFormat, Overrides};
use sightline_platform::{app, telemetry, CommandContext, Module, RequestContext};

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
    /// Manage users (the first start creates `admin`).
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Manage API keys for services (calculators, feeds).
    Apikey {
        #[command(subcommand)]
        action: KeyAction,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create a user; the password is read from stdin with --password-stdin, else generated and
    /// printed once.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Email.
        #[arg(long)]
        email: Option<String>,
        /// Display name.
        #[arg(long)]
        full_name: Option<String>,
        /// Role (repeat for several; default viewer). See GET /api/v1/auth/roles.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (ends their sessions); read from stdin or generated and printed.
    SetPassword {
        /// Login name or email.
        #[arg(long)]
        username: String,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List,
}

#[derive(Subcommand)]
enum KeyAction {
    /// Create an API key; the key is printed once and stored only as a hash.
    Create {
        /// What the key is for.
        #[arg(long)]
        name: String,
        /// Permission to grant (repeat for several), e.g. events:write.
        #[arg(long = "permission", required = true)]
        permissions: Vec<String>,
    },
    /// Revoke an API key by id; it is refused from the next request on.
    Revoke {
        /// Key id (`key_…`), as `apikey list` shows it.
        id: String,
    },
    /// List API keys (never the keys themselves).
    List,
}

/// Every module built into this binary.
fn all_modules() -> Vec<Arc<dyn Module>> {
    vec![
        Arc::new(sightline_actions::ActionsModule),
        Arc::new(sightline_usage::UsageModule),
        Arc::new(sightline_calls::CallsModule),
        Arc::new(sightline_sports::SportsModule),
        Arc::new(sightline_planning::PlanningModule),
    ]
}

fn enabled_modules(config: &Config) -> Result<Vec<Arc<dyn Module>>, String> {
    let all = all_modules();
    if let Some(unknown) = config.modules.iter().find(|m| !all.iter().any(|a| a.name() == m.as_str())) {
        let known: Vec<&str> = all.iter().map(|m| m.name()).collect();
        return Err(format!(
            "configuration error: key `modules`: unknown module `{unknown}` (built: {})",
            known.join(", ")
        ));
    }
    Ok(all.into_iter().filter(|m| config.module_enabled(m.name())).collect())
}

fn main() -> ExitCode {
    // The platform's commands, then each module's own (`calc`, `usage`, …).
    let modules = all_modules();
    let mut command = Cli::command();
    for module in &modules {
        for sub in module.commands() {
            if command.find_subcommand(sub.get_name()).is_some() {
                eprintln!("error: module {} defines command `{}` twice", module.name(), sub.get_name());
                return ExitCode::FAILURE;
            }
            command = command.subcommand(sub);
        }
    }
    let matches = command.get_matches();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(&modules, &matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a module's command, or one of the platform's.
async fn dispatch(modules: &[Arc<dyn Module>], matches: &ArgMatches) -> anyhow::Result<()> {
    let global = GlobalArgs::from_arg_matches(matches)?;
    if let Some((name, sub)) = matches.subcommand() {
        let owner = modules.iter().find(|m| m.commands().iter().any(|c| c.get_name() == name));
        if let Some(module) = owner {
            let context =
                CommandContext { config_file: global.config.clone(), overrides: overrides(&global, None) };
            return module.run_command(name, sub, &context).await;
        }
    }
    run(Cli::from_arg_matches(matches)?).await
}

fn overrides(global: &GlobalArgs, bind: Option<String>) -> Overrides {
    Overrides {
        bind,
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
        log_format: global.log_format.map(|f| match f {
            LogFormatArg::Pretty => LogFormat::Pretty,
            LogFormatArg::Json => LogFormat::Json,
        }),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let bind = match &cli.command {
        Command::Serve { bind } => bind.clone(),
        _ => None,
    };
    let overrides = overrides(&cli.global, bind);
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
        Command::User { action } => run_user(action, &config, &modules).await,
        Command::Apikey { action } => run_apikey(action, &config, &modules).await,
    }
}

async fn identity(config: &Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<AuthService> {
    let db = app::connect_and_migrate(config, modules).await?;
    app::identity(config, &db, &EventBus::standard(), modules).await
}

fn password_from(stdin: bool) -> anyhow::Result<(String, bool)> {
    if stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok((line.trim_end_matches(['\r', '\n']).to_owned(), false))
    } else {
        Ok((sightline_platform::auth::tokens::random_hex(12), true))
    }
}

/// The CLI as the actor of the changes it makes.
fn cli_context() -> RequestContext {
    RequestContext::new(None, audit::Actor { kind: "system".into(), id: None, name: "cli".into() })
}

async fn run_user(action: UserAction, config: &Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<()> {
    let auth = identity(config, modules).await?;
    match action {
        UserAction::Create { username, email, full_name, roles, password_stdin } => {
            let (password, generated) = password_from(password_stdin)?;
            let roles = if roles.is_empty() { vec!["viewer".to_owned()] } else { roles };
            let user = auth
                .create_user(
                    &cli_context(),
                    &username,
                    email.as_deref(),
                    full_name.as_deref(),
                    &password,
                    roles,
                )
                .await?;
            println!("created {} ({}) with roles {}", user.username, user.id, user.roles.join(", "));
            if generated {
                println!("password: {password}");
            }
        }
        UserAction::SetPassword { username, password_stdin } => {
            let wanted = username.trim().to_lowercase();
            let users = auth.list_users().await?;
            let user = users
                .iter()
                .find(|u| u.username == wanted || u.email.as_deref() == Some(wanted.as_str()))
                .ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
            let (password, generated) = password_from(password_stdin)?;
            auth.set_password(&cli_context(), &user.id, &password, "user.password_reset").await?;
            println!("password of {} set; their sessions are ended", user.username);
            if generated {
                println!("password: {password}");
            }
        }
        UserAction::List => {
            for u in auth.list_users().await? {
                let state = if u.is_active { "active" } else { "disabled" };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id,
                    u.username,
                    u.email.unwrap_or_default(),
                    u.roles.join(","),
                    state
                );
            }
        }
    }
    Ok(())
}

async fn run_apikey(action: KeyAction, config: &Config, modules: &[Arc<dyn Module>]) -> anyhow::Result<()> {
    let auth = identity(config, modules).await?;
    match action {
        KeyAction::Create { name, permissions } => {
            let created = auth.create_api_key(&cli_context(), &name, permissions, Some("cli")).await?;
            eprintln!("created {} ({}); the key is shown once:", created.record.name, created.record.id);
            println!("{}", created.key);
        }
        KeyAction::Revoke { id } => {
            let key = auth.revoke_api_key(&cli_context(), &id).await?;
            println!("revoked {} ({})", key.id, key.name);
        }
        KeyAction::List => {
            for k in auth.list_api_keys().await? {
                let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}…\t{}\t{}", k.id, k.name, k.prefix, k.permissions.join(","), state);
            }
        }
    }
    Ok(())
}
