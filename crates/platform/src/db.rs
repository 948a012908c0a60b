//! Storage: one SQL dialect subset over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! Both go through sqlx's `Any` driver so services hold one code path. The portable rules:
//! `$1` placeholders; ids and JSON as TEXT; times as BIGINT epoch milliseconds; booleans as
//! BIGINT 0/1 (the `Any` driver cannot decode SQLite booleans); `ON CONFLICT … DO NOTHING` and `RETURNING` (both databases have them). Where the
//! dialects must differ (claiming with `SKIP LOCKED`, identity columns), callers branch on
//! [`Backend`].

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Connection as _, Executor, Transaction};

/// Which database `conn` talks to.
pub fn backend_of(conn: &sqlx::AnyConnection) -> Backend {
    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::exhaustive_enums)]
pub enum Backend {
    /// Embedded SQLite file in WAL mode with `synchronous=FULL`.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Placeholders for a statement whose only parameters are these `n`, bound in order: `?` on
    /// SQLite, `$1, …` on PostgreSQL. sqlx's SQLite driver looks up the name of every `$N`
    /// parameter, which costs time growing with the square of their number, so big statements
    /// use unnamed ones. (sqlx numbers `?` apart from `$N`: never mix them in one statement.)
    pub fn sequential_placeholders(self, n: usize) -> String {
        match self {
            Backend::Sqlite => vec!["?"; n].join(", "),
            Backend::Postgres => placeholders(n, 1),
        }
    }

    /// A multi-row `VALUES` list of `rows` × `cols` parameters for a statement that has no
    /// others (see [`Backend::sequential_placeholders`]).
    pub fn sequential_rows(self, rows: usize, cols: usize) -> String {
        match self {
            Backend::Sqlite => {
                let row = format!("({})", vec!["?"; cols].join(", "));
                vec![row; rows].join(", ")
            }
            Backend::Postgres => row_placeholders(rows, cols, 1),
        }
    }

    /// Lower-case name, as shown in logs and `/health/ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Connection pools. On SQLite all writes go through one connection (SQLite has one writer;
/// queuing in the pool avoids `SQLITE_BUSY` upgrades) while reads use several. On PostgreSQL
/// both pools are the same.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("backend", &self.backend).finish_non_exhaustive()
    }
}

const SQLITE_PRAGMAS: &str =
    "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA temp_store = FILE;";

/// Page cache of the one writing connection (KiB): room for the hot pages of big indexes.
const SQLITE_WRITER_CACHE_KIB: u32 = 32_000;
/// Page cache of each reading connection (KiB): scans go through the OS cache instead.
const SQLITE_READER_CACHE_KIB: u32 = 8_000;

impl Db {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`), creating the SQLite
    /// file's directory when needed.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = rest.split('?').next().unwrap_or_default();
            if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("Failed to create data directory {}", dir.display()))?;
            }
            let url = if url.contains('?') { url.to_string() } else { format!("{url}?mode=rwc") };
            let options: AnyConnectOptions = url.parse().context("Failed to parse the SQLite URL")?;
            let write = sqlite_pool(1, SQLITE_WRITER_CACHE_KIB)
                .connect_with(options.clone())
                .await
                .context("Failed to open SQLite")?;
            let read = sqlite_pool(8, SQLITE_READER_CACHE_KIB)
                .connect_with(options)
                .await
                .context("Failed to open SQLite")?;
            Ok(Self { backend: Backend::Sqlite, read, write })
        } else {
            let options: AnyConnectOptions = url.parse().context("Failed to parse the PostgreSQL URL")?;
            // One direct connection first: an unreachable server is reported at once with its
            // cause, where the pool would retry until its acquire timeout and say only that.
            let first = tokio::time::timeout(Duration::from_secs(10), AnyConnection::connect_with(&options))
                .await
                .context("PostgreSQL did not answer within 10 s")?
                .context("Failed to connect to PostgreSQL")?;
            first.close().await.ok();
            let pool = AnyPoolOptions::new()
                .max_connections(32)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("Failed to connect to PostgreSQL")?;
            Ok(Self { backend: Backend::Postgres, read: pool.clone(), write: pool })
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Pool for writes (one connection on SQLite).
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.write.begin().await
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.read).await.map(|_| ())
    }

    /// Closes both pools, waiting for connections to be returned.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn sqlite_pool(max: u32, cache_kib: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                conn.execute(format!("PRAGMA cache_size = -{cache_kib}").as_str()).await?;
                Ok(())
            })
        })
}

/// The rows of `sql`, whose `{}` stands for an `IN` list, over `values` in batches that stay far
/// below both databases' parameter limits (`SELECT id FROM t WHERE id IN ({})`).
pub async fn rows_where_in(
    conn: &mut AnyConnection,
    sql: &str,
    values: &[&str],
) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
    let mut rows = Vec::new();
    for batch in values.chunks(rows_per_statement(1)) {
        let text = sql.replace("{}", &backend_of(conn).sequential_placeholders(batch.len()));
        let mut query = sqlx::query(&text);
        for value in batch {
            query = query.bind(*value);
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// `$first, $first+1, …` for an `IN (…)` list of `n` bound values.
pub fn placeholders(n: usize, first: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// `($first, …), (…), …` for a multi-row `VALUES` of `rows` × `cols` bound values.
pub fn row_placeholders(rows: usize, cols: usize, first: usize) -> String {
    (0..rows).map(|r| format!("({})", placeholders(cols, first + r * cols))).collect::<Vec<_>>().join(", ")
}

/// Rows per multi-row statement, so `cols` bound values per row stay far below both databases'
/// parameter limits.
pub fn rows_per_statement(cols: usize) -> usize {
    (8_000 / cols.max(1)).max(1)
}

/// A value of a run-time filter.
#[derive(Debug, Clone)]
pub enum FilterValue {
    /// Bound as TEXT.
    Text(String),
    /// Bound as BIGINT.
    Int(i64),
}

/// A `WHERE` clause built at run time from optional filters: fixed SQL fragments with numbered
/// placeholders, every value bound.
#[derive(Debug, Default)]
pub struct Conditions {
    sql: Vec<String>,
    values: Vec<FilterValue>,
}

impl Conditions {
    /// `column = $n` when `value` is given.
    pub fn eq(&mut self, column: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.bind(|n| format!("{column} = ${n}"), FilterValue::Text(v.to_owned()));
        }
        self
    }

    /// A condition on one bound value; `make` gets the value's placeholder number.
    pub fn bind(&mut self, make: impl FnOnce(usize) -> String, value: FilterValue) -> &mut Self {
        self.values.push(value);
        self.sql.push(make(self.values.len()));
        self
    }

    /// `column IN (…)` over `values`, when there are any.
    pub fn any_of(&mut self, column: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            let first = self.values.len() + 1;
            self.values.extend(values.iter().cloned().map(FilterValue::Text));
            self.sql.push(format!("{column} IN ({})", placeholders(values.len(), first)));
        }
        self
    }

    /// A condition without a value.
    pub fn fixed(&mut self, condition: &str) -> &mut Self {
        self.sql.push(condition.to_owned());
        self
    }

    /// ` WHERE a AND b`, or nothing.
    pub fn where_sql(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }

    /// The number of the first placeholder after the conditions' (for LIMIT/OFFSET).
    pub fn next_placeholder(&self) -> usize {
        self.values.len() + 1
    }

    /// Binds the conditions' values, in order, to `query`.
    pub fn apply<'q>(
        &'q self,
        mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
        for v in &self.values {
            query = match v {
                FilterValue::Text(t) => query.bind(t.as_str()),
                FilterValue::Int(i) => query.bind(*i),
            };
        }
        query
    }
}

/// Milliseconds since the Unix epoch, the portable time column type.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Converts epoch milliseconds to an RFC 3339 UTC string (`2026-02-09T13:59:00.000Z`).
pub fn ms_to_rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Whether `err` is a unique-key violation (so callers can answer 409 instead of 500).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || db.code().is_some_and(|c| c == "23505" || c == "2067" || c == "1555")
        }
        _ => false,
    }
}
