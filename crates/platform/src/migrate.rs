//! Embedded, per-module, numbered migrations, applied at start and by `sightline migrate`.
//!
//! Each module owns an ordered list of [`Migration`]s. Applied versions are recorded in
//! `sightline_migrations` with a checksum; editing a migration after it was applied is refused.

use anyhow::{bail, Context as _};
use fnv::checksum;
use sqlx::Row;

use crate::db::{now_ms, Backend, Db};

/// One schema change, with its SQL for each backend (usually the same text).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Increasing version, unique within the module.
    pub version: i64,
    /// Short description.
    pub name: &'static str,
    /// SQL run on SQLite.
    pub sqlite: &'static str,
    /// SQL run on PostgreSQL.
    pub postgres: &'static str,
}

impl Migration {
    /// A migration whose SQL is the same on both backends.
    pub const fn portable(version: i64, name: &'static str, sql: &'static str) -> Self {
        Self { version, name, sqlite: sql, postgres: sql }
    }

    fn sql(&self, backend: Backend) -> &'static str {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }
}

const LEDGER: &str = "CREATE TABLE IF NOT EXISTS sightline_migrations (
    module TEXT NOT NULL,
    version BIGINT NOT NULL,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (module, version)
)";

/// Applies `module`'s pending migrations in order; returns how many ran.
pub async fn apply(db: &Db, module: &str, migrations: &[Migration]) -> anyhow::Result<usize> {
    let mut conn = db.writer().acquire().await.context("Failed to get a database connection")?;
    if db.backend() == Backend::Postgres {
        // Serialise concurrent starts of several processes, the ledger's creation included.
        sqlx::raw_sql("SELECT pg_advisory_lock(7305541)").execute(&mut *conn).await?;
    }
    let result = match sqlx::raw_sql(LEDGER).execute(&mut *conn).await {
        Ok(_) => apply_locked(db.backend(), &mut conn, module, migrations).await,
        Err(e) => Err(anyhow::Error::new(e).context("Failed to create the migration ledger")),
    };
    if db.backend() == Backend::Postgres {
        sqlx::raw_sql("SELECT pg_advisory_unlock(7305541)").execute(&mut *conn).await?;
    }
    result
}

async fn apply_locked(
    backend: Backend,
    conn: &mut sqlx::AnyConnection,
    module: &str,
    migrations: &[Migration],
) -> anyhow::Result<usize> {
    use sqlx::Connection as _;
    let applied = sqlx::query("SELECT version, checksum FROM sightline_migrations WHERE module = $1")
        .bind(module)
        .fetch_all(&mut *conn)
        .await?;
    let applied: Vec<(i64, String)> =
        applied.iter().map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1))).collect();
    let mut ran = 0;
    let mut last = i64::MIN;
    for m in migrations {
        if m.version <= last {
            bail!("migrations of module {module} are not in increasing order at {}", m.version);
        }
        last = m.version;
        let sum = checksum(m.sql(backend));
        if let Some((_, existing)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *existing != sum {
                bail!("migration {module}/{:04} ({}) was edited after it was applied", m.version, m.name);
            }
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(m.sql(backend))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("Failed to apply migration {module}/{:04} ({})", m.version, m.name))?;
        sqlx::query(
            "INSERT INTO sightline_migrations (module, version, name, checksum, applied_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(module)
        .bind(m.version)
        .bind(m.name)
        .bind(sum)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(module, version = m.version, name = m.name, "migrate.applied");
        ran += 1;
    }
    Ok(ran)
}

/// A small, dependency-free FNV-1a digest: enough to notice an edited migration.
mod fnv {
    pub fn checksum(s: &str) -> String {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in s.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("{h:016x}")
    }
}
