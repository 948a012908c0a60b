//! Configuration: defaults, then `sightline.toml`, then `SIGHTLINE_*` environment variables,
//! then command-line overrides. Seed names (`DATABASE_URL`, `MOCK_DB_DIR`) are honoured too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, one per event, with span fields.
    #[default]
    Pretty,
    /// One JSON object per line, with the current span's fields.
    Json,
}

/// HTTP server settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Largest accepted request body, in bytes.
    pub body_limit_bytes: usize,
    /// Requests running longer than this are answered 408.
    pub request_timeout_secs: u64,
    /// Origins allowed by CORS; empty means CORS headers are not sent. `"*"` allows any.
    pub cors_origins: Vec<String>,
    /// How long shutdown waits for in-flight requests and running jobs.
    pub shutdown_grace_secs: u64,
    /// A connection must send a request's whole head within this many seconds of opening or of
    /// its previous answer, or it is closed: the slow-header and the idle keep-alive limit.
    pub header_read_timeout_secs: u64,
    /// Connections open at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client;
    /// from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            cors_origins: Vec::new(),
            shutdown_grace_secs: 30,
            header_read_timeout_secs: 10,
            max_connections: 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Job queue settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// Run queue workers inside `serve` (a `worker` process always runs them).
    pub run_in_server: bool,
    /// Worker loops per process for jobs run in the worker's transaction (short jobs).
    pub concurrency: usize,
    /// Worker loops per process for standalone jobs (imports, backfills, forecasts, exports):
    /// a pool of their own, so long jobs never hold up short ones.
    pub standalone_concurrency: usize,
    /// Jobs claimed and processed per transaction (1..=1000).
    pub batch_size: i64,
    /// How often an idle worker looks for new jobs (it is also woken on local enqueue).
    pub poll_interval_ms: u64,
    /// Attempts before a job is moved to `failed`.
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt.
    pub backoff_base_ms: i64,
    /// Upper bound of the retry delay.
    pub backoff_max_ms: i64,
    /// A claimed job whose worker has not finished it within this time is run again.
    pub lease_secs: i64,
    /// How often each worker process records its heartbeat (and recovers abandoned jobs).
    pub heartbeat_ms: u64,
    /// A process whose heartbeat is older than this is dead: its jobs are run again without
    /// waiting for their lease.
    pub dead_after_secs: i64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            run_in_server: true,
            concurrency: 2,
            standalone_concurrency: 2,
            batch_size: 128,
            poll_interval_ms: 250,
            max_attempts: 5,
            backoff_base_ms: 1_000,
            backoff_max_ms: 300_000,
            lease_secs: 60,
            heartbeat_ms: 2_000,
            dead_after_secs: 10,
        }
    }
}

/// Scheduler settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Run the cron scheduler in this process.
    pub enabled: bool,
    /// How often due schedules are checked.
    pub tick_ms: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self { enabled: true, tick_ms: 1_000 }
    }
}

/// A secret value (the JWT secret, a database URL with its password, a webhook secret): held in
/// a `secrecy::SecretString` (wiped on drop), printed by `Debug` as `Secret(***)` and serialised
/// only as `[redacted]`, so no log line, error or config dump carries it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Whether it is empty (not set).
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl Default for Secret {
    fn default() -> Self {
        Self::new(String::new())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// Identity and access settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 signing secret (≥ 32 characters); generated into `<data_dir>/jwt-secret` when
    /// absent. Several processes sharing a database need the same secret.
    pub jwt_secret: Option<Secret>,
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Access token lifetime.
    pub access_token_ttl_secs: i64,
    /// Refresh token lifetime.
    pub refresh_token_ttl_secs: i64,
    /// Whether `POST /api/v1/auth/register` creates accounts (role `viewer`).
    pub registration_enabled: bool,
    /// Wrong passwords for one account from one client address within the window before that
    /// address is held back on that account (login and change-password count alike).
    #[serde(alias = "login_max_failures_per_user")]
    pub login_max_failures_per_account_address: usize,
    /// Wrong passwords from one client address within the window, whatever the account.
    pub login_max_failures_per_address: usize,
    /// Wrong passwords for one account within the window, from anywhere: a much higher ceiling,
    /// so one attacker cannot lock the owner out.
    pub login_max_failures_per_account: usize,
    /// The throttling window.
    pub login_window_secs: u64,
    /// Registrations (accepted or not) from one client address within the registration window.
    pub registration_max_per_address: usize,
    /// The registration throttling window.
    pub registration_window_secs: u64,
    /// Serve `/metrics` without credentials (for a scraper on a private network).
    pub metrics_public: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            issuer: "sightline".into(),
            audience: "sightline-api".into(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            registration_enabled: false,
            login_max_failures_per_account_address: 5,
            login_max_failures_per_address: 20,
            login_max_failures_per_account: 100,
            login_window_secs: 900,
            registration_max_per_address: 5,
            registration_window_secs: 3600,
            metrics_public: false,
        }
    }
}

/// Whole-process configuration. Module sections (e.g. `[actions]`) are read by the modules
/// themselves through [`Config::module_section`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub bind: String,
    /// Directory for the SQLite database and generated files.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; empty means `sqlite://<data_dir>/sightline.db`. A secret:
    /// a PostgreSQL URL carries its password.
    #[serde(skip_serializing_if = "Secret::is_empty")]
    pub database_url: Secret,
    /// Modules to enable; empty means every module built into the binary. A list, or a
    /// comma-separated string (`SIGHTLINE_MODULES=actions,usage`).
    #[serde(deserialize_with = "list_or_comma_separated")]
    pub modules: Vec<String>,
    /// Log output format.
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `sightline=debug,sqlx=warn`.
    pub log_level: String,
    /// HTTP server settings.
    pub http: HttpConfig,
    /// Job queue settings.
    pub queue: QueueConfig,
    /// Scheduler settings.
    pub scheduler: SchedulerConfig,
    /// Identity and access settings.
    pub auth: AuthConfig,
    /// The shared cache: memory, or Redis.
    pub cache: crate::cache::CacheConfig,
    #[serde(skip)]
    figment: Sources,
}

/// Where the configuration came from, kept to read module sections later. Its `Debug` shows no
/// values: they include secrets.
#[derive(Clone, Default)]
struct Sources(Figment);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sources(…)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            data_dir: PathBuf::from("./sightline-data"),
            database_url: Secret::default(),
            modules: Vec::new(),
            log_format: LogFormat::Pretty,
            log_level: "info,sqlx=warn".into(),
            http: HttpConfig::default(),
            queue: QueueConfig::default(),
            scheduler: SchedulerConfig::default(),
            auth: AuthConfig::default(),
            cache: crate::cache::CacheConfig::default(),
            figment: Sources::default(),
        }
    }
}

/// Values given on the command line; they win over every other source. (No `Debug`: the database
/// URL may carry a password.)
#[derive(Default, Clone, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
}

/// A configuration problem, worded as one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads configuration from `file` (or `./sightline.toml` when present), the environment
    /// and `overrides`, and checks it.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!("config file {} does not exist", path.display())))
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("sightline.toml").exists() => {
                figment = figment.merge(Toml::file_exact("sightline.toml"))
            }
            None => {}
        }
        // The seed systems' own variable names.
        figment = figment.merge(Env::raw().only(&["DATABASE_URL"]).map(|_| "database_url".into()));
        figment = figment.merge(Env::raw().only(&["REDIS_URL"]).map(|_| "cache.redis_url".into()));
        figment = figment.merge(
            Env::prefixed("SIGHTLINE_")
                .ignore(&["CONFIG", "ADMIN_PASSWORD"])
                .filter(|k| !k.as_str().starts_with("test_"))
                .split("__"),
        );
        figment = figment.merge(Serialized::defaults(overrides));
        Self::from_figment(figment)
    }

    /// Builds a configuration from an already-assembled figment (used by tests).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let mut config: Config = figment.extract().map_err(|e| ConfigError(one_line(&e)))?;
        config.figment = Sources(figment);
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.bind
            .parse::<SocketAddr>()
            .map_err(|_| ConfigError(format!("key `bind`: `{}` is not an ADDR:PORT", self.bind)))?;
        crate::client_address::TrustedProxies::parse(&self.http.trusted_proxies)
            .map_err(|e| ConfigError(format!("key `http.trusted_proxies`: {e}")))?;
        let url = self.database_url.expose();
        if !url.is_empty()
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(ConfigError(
                "key `database_url`: must start with sqlite:, postgres:// or postgresql://".into(),
            ));
        }
        let checks: [(&str, bool); 17] = [
            ("queue.standalone_concurrency", self.queue.standalone_concurrency >= 1),
            ("queue.heartbeat_ms", self.queue.heartbeat_ms >= 50),
            (
                "queue.dead_after_secs",
                self.queue.dead_after_secs * 1000 >= 3 * self.queue.heartbeat_ms as i64,
            ),
            ("queue.backoff_base_ms", self.queue.backoff_base_ms >= 1),
            ("queue.backoff_max_ms", self.queue.backoff_max_ms >= self.queue.backoff_base_ms),
            ("http.request_timeout_secs", self.http.request_timeout_secs >= 2),
            ("queue.concurrency", self.queue.concurrency >= 1),
            ("auth.access_token_ttl_secs", self.auth.access_token_ttl_secs >= 1),
            (
                "auth.refresh_token_ttl_secs",
                self.auth.refresh_token_ttl_secs >= self.auth.access_token_ttl_secs,
            ),
            (
                "auth.login_max_failures_per_account_address",
                self.auth.login_max_failures_per_account_address >= 1,
            ),
            (
                "auth.login_max_failures_per_account",
                self.auth.login_max_failures_per_account >= self.auth.login_max_failures_per_account_address,
            ),
            ("auth.registration_max_per_address", self.auth.registration_max_per_address >= 1),
            ("queue.batch_size", (1..=1000).contains(&self.queue.batch_size)),
            ("queue.max_attempts", self.queue.max_attempts >= 1),
            ("queue.lease_secs", self.queue.lease_secs >= 1),
            ("http.body_limit_bytes", self.http.body_limit_bytes >= 1024),
            ("scheduler.tick_ms", self.scheduler.tick_ms >= 10),
        ];
        for (key, ok) in checks {
            if !ok {
                return Err(ConfigError(format!("key `{key}`: value out of range")));
            }
        }
        Ok(())
    }

    /// The listen address (validated at load).
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind.parse().expect("validated at load")
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn effective_database_url(&self) -> Secret {
        if self.database_url.is_empty() {
            Secret::new(format!("sqlite://{}?mode=rwc", self.data_dir.join("sightline.db").display()))
        } else {
            self.database_url.clone()
        }
    }

    /// Extracts a module's own section (`[name]` in the file, `SIGHTLINE_NAME__KEY` in the
    /// environment), falling back to the type's defaults when the section is absent.
    pub fn module_section<T>(&self, name: &str) -> Result<T, ConfigError>
    where
        T: serde::de::DeserializeOwned + Default,
    {
        match self.figment.0.find_value(name) {
            Ok(_) => self
                .figment
                .0
                .extract_inner(name)
                .map_err(|e| ConfigError(format!("section `[{name}]`: {}", e.kind))),
            Err(_) => Ok(T::default()),
        }
    }

    /// Extracts the section at `key` (dotted, e.g. `outbound.nba`) over `defaults`: keys the
    /// section sets win, the others keep the defaults' values.
    pub fn section_over<T>(&self, key: &str, defaults: T) -> Result<T, ConfigError>
    where
        T: Serialize + serde::de::DeserializeOwned,
    {
        let mut figment = Figment::from(Serialized::defaults(defaults));
        if self.figment.0.find_value(key).is_ok() {
            figment = figment.merge(self.figment.0.focus(key));
        }
        figment.extract().map_err(|e| ConfigError(format!("section `[{key}]`: {}", one_line(&e))))
    }

    /// Whether `module` is enabled by the `modules` list.
    pub fn module_enabled(&self, module: &str) -> bool {
        self.modules.is_empty() || self.modules.iter().any(|m| m == module)
    }
}

fn list_or_comma_separated<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrString {
        List(Vec<String>),
        String(String),
    }
    Ok(match ListOrString::deserialize(d)? {
        ListOrString::List(list) => list,
        ListOrString::String(s) => {
            s.split(',').map(str::trim).filter(|m| !m.is_empty()).map(String::from).collect()
        }
    })
}

fn one_line(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let msg = e.kind.to_string();
    let origin = e.metadata.as_ref().map(|m| m.name.to_string()).unwrap_or_default();
    match (key.is_empty(), origin.is_empty()) {
        (true, _) => msg,
        (false, true) => format!("key `{key}`: {msg}"),
        (false, false) => format!("key `{key}`: {msg} (from {origin})"),
    }
}

/// `url` without its user, password and query (which may carry a password), for logs and status
/// pages; `(not a URL)` when it does not parse.
pub fn url_without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback_8000_with_sqlite_in_data_dir() {
        let c = Config::from_figment(Figment::from(Serialized::defaults(Config::default()))).unwrap();
        assert_eq!(c.bind_addr().to_string(), "127.0.0.1:8000");
        assert!(c.effective_database_url().expose().starts_with("sqlite://./sightline-data/sightline.db"));
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let f = Figment::from(Serialized::defaults(Config::default())).merge(("queue.concurrency", "lots"));
        let err = Config::from_figment(f).unwrap_err().to_string();
        assert!(err.contains("queue.concurrency"), "{err}");
        let f = Figment::from(Serialized::defaults(Config::default())).merge(("bind", "nowhere"));
        let err = Config::from_figment(f).unwrap_err().to_string();
        assert!(err.contains("`bind`"), "{err}");
    }

    #[test]
    fn secrets_never_print_or_serialise_in_clear() {
        let f = Figment::from(Serialized::defaults(Config::default()))
            .merge(("database_url", "postgres://app:hunter2@db/sightline"))
            .merge(("auth.jwt_secret", "0123456789abcdef0123456789abcdef-secret"));
        let c = Config::from_figment(f).unwrap();
        assert_eq!(c.effective_database_url().expose(), "postgres://app:hunter2@db/sightline");
        let debug = format!("{c:?}");
        let json = serde_json::to_string(&c).unwrap();
        for text in [&debug, &json] {
            assert!(!text.contains("hunter2") && !text.contains("abcdef-secret"), "{text}");
        }
        assert!(json.contains("[redacted]"));
    }

    #[test]
    fn modules_can_be_a_comma_separated_string() {
        let f = Figment::from(Serialized::defaults(Config::default())).merge(("modules", "actions, usage"));
        assert_eq!(Config::from_figment(f).unwrap().modules, ["actions", "usage"]);
    }

    #[test]
    fn a_section_overrides_defaults_key_by_key() {
        #[derive(Serialize, Deserialize, Default, PartialEq, Debug)]
        #[serde(default, deny_unknown_fields)]
        struct S {
            a: u32,
            b: String,
        }
        let f = Figment::from(Serialized::defaults(Config::default())).merge(("outbound.feed.a", 7));
        let c = Config::from_figment(f).unwrap();
        let defaults = S { a: 1, b: "kept".into() };
        assert_eq!(c.section_over("outbound.feed", defaults).unwrap(), S { a: 7, b: "kept".into() });
        let f = Figment::from(Serialized::defaults(Config::default())).merge(("outbound.feed.c", 7));
        let err = Config::from_figment(f).unwrap().section_over("outbound.feed", S::default()).unwrap_err();
        assert!(err.to_string().contains("outbound.feed"), "{err}");
    }

    #[test]
    fn module_sections_default_when_absent() {
        #[derive(Deserialize, Default, PartialEq, Debug)]
        struct S {
            x: Option<String>,
        }
        let c = Config::from_figment(Figment::from(Serialized::defaults(Config::default()))).unwrap();
        assert_eq!(c.module_section::<S>("actions").unwrap(), S::default());
    }

    #[test]
    fn trusted_proxies_are_checked_at_load() {
        let f = Figment::from(Serialized::defaults(Config::default()))
            .merge(("http.trusted_proxies", vec!["10.0.0.0/8", "proxy.local"]));
        let err = Config::from_figment(f).unwrap_err().to_string();
        assert!(err.contains("http.trusted_proxies") && err.contains("proxy.local"), "{err}");
    }
}
