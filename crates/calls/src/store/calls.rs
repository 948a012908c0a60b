//! The embedded call store: the original's four ClickHouse tables as `calls_runs`,
//! `calls_sessions`, `calls_node_outputs` (with the metric fields in their own columns) and
//! `calls_nodes`; the ingest upserts; and the metric counts as SQL over them ([`EmbeddedSource`]).

use sightline_platform::db::{placeholders, FilterValue};
use sightline_platform::Db;
use sqlx::{AnyConnection, Row as _};

use crate::error::CallsError;
use crate::flat::Field;
use crate::metrics::{CallSource, SourceTable};
use crate::model::{CallRecord, IngestSummary};
use crate::query::{Cond, CondSql, Scope, Sessions};

/// Writes one batch of records in the caller's transaction; a record whose id exists replaces it.
pub async fn upsert(conn: &mut AnyConnection, records: &[CallRecord]) -> Result<IngestSummary, sqlx::Error> {
    let mut summary = IngestSummary { lines: records.len() as u64, ..IngestSummary::default() };
    for record in records {
        match record {
            CallRecord::Run { id, ts } => {
                sqlx::query(
                    "INSERT INTO calls_runs (id, ts) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET ts = excluded.ts",
                )
                .bind(id)
                .bind(ts)
                .execute(&mut *conn)
                .await?;
                summary.runs += 1;
            }
            CallRecord::Session { run_id, org_id, user_number, duration, ts } => {
                // The duration is bound as a number always, with a flag for none: a NULL bind
                // first would type the cached statement's parameter otherwise on PostgreSQL.
                sqlx::query(
                    "INSERT INTO calls_sessions (run_id, org_id, user_number, duration, ts) \
                     VALUES ($1, $2, $3, CASE WHEN $6 = 1 THEN CAST($4 AS DOUBLE PRECISION) END, $5) \
                     ON CONFLICT (run_id) DO UPDATE SET org_id = excluded.org_id, user_number = excluded.user_number, \
                     duration = excluded.duration, ts = excluded.ts",
                )
                .bind(run_id)
                .bind(org_id)
                .bind(user_number)
                .bind(duration.unwrap_or(0.0))
                .bind(ts)
                .bind(i64::from(duration.is_some()))
                .execute(&mut *conn)
                .await?;
                summary.sessions += 1;
            }
            CallRecord::Node { id, org_id } => {
                sqlx::query(
                    "INSERT INTO calls_nodes (id, org_id) VALUES ($1, $2) \
                     ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id",
                )
                .bind(id)
                .bind(org_id)
                .execute(&mut *conn)
                .await?;
                summary.nodes += 1;
            }
            CallRecord::NodeOutput(o) => {
                let columns = Field::ALL.map(Field::column).join(", ");
                let updates = Field::ALL
                    .iter()
                    .map(|f| format!("{0} = excluded.{0}", f.column()))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "INSERT INTO calls_node_outputs (id, run_id, node_id, node_persistent_id, ts, flat_data, {columns}) \
                     VALUES ({}) ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, node_id = excluded.node_id, \
                     node_persistent_id = excluded.node_persistent_id, ts = excluded.ts, flat_data = excluded.flat_data, \
                     {updates}",
                    placeholders(6 + Field::ALL.len(), 1)
                );
                let mut query = sqlx::query(&sql)
                    .bind(&o.id)
                    .bind(&o.run_id)
                    .bind(&o.node_id)
                    .bind(&o.node_persistent_id)
                    .bind(o.ts)
                    .bind(&o.flat_data);
                for value in &o.fields {
                    query = query.bind(value.as_deref());
                }
                query.execute(&mut *conn).await?;
                summary.node_outputs += 1;
            }
        }
    }
    Ok(summary)
}

/// SQL text with its bound values, built up in order.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<FilterValue>,
}

impl Sql {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Appends a placeholder bound to `value`.
    fn bind(&mut self, value: FilterValue) {
        self.values.push(value);
        self.text.push_str(&format!("${}", self.values.len()));
    }

    fn text(&mut self, value: &str) {
        self.bind(FilterValue::Text(value.to_owned()));
    }

    /// The node outputs of `scope`: of its node, whose node is known, whose run and session
    /// fall in the window, of its organisation and not from an excluded number.
    fn scope(&mut self, scope: &Scope, sessions: Sessions) {
        self.push(
            " FROM calls_node_outputs o JOIN calls_nodes n ON n.id = o.node_id WHERE o.node_persistent_id = ",
        );
        self.text(&scope.node_persistent_id);
        self.push(" AND o.run_id IN (SELECT r.id FROM calls_runs r WHERE r.ts >= ");
        self.bind(FilterValue::Int(scope.start_ms));
        self.push(" AND r.ts < ");
        self.bind(FilterValue::Int(scope.end_ms));
        self.push(") AND o.run_id IN (SELECT s.run_id FROM calls_sessions s WHERE s.org_id = ");
        self.text(&scope.org_id);
        self.push(" AND s.ts >= ");
        self.bind(FilterValue::Int(scope.start_ms));
        self.push(" AND s.ts < ");
        self.bind(FilterValue::Int(scope.end_ms));
        if !scope.excluded_numbers.is_empty() {
            self.push(" AND s.user_number NOT IN (");
            for (i, number) in scope.excluded_numbers.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.text(number);
            }
            self.push(")");
        }
        if sessions == Sessions::WithNumber {
            self.push(" AND s.user_number <> ''");
        }
        self.push(")");
    }

    /// `cond` over the output's field columns (an absent key compares as `''`).
    fn cond(&mut self, cond: &Cond) {
        let text = crate::query::render(cond, self);
        self.push(&text);
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        let mut query = sqlx::query(&self.text);
        for v in &self.values {
            query = match v {
                FilterValue::Text(t) => query.bind(t.as_str()),
                FilterValue::Int(i) => query.bind(*i),
            };
        }
        query
    }
}

impl CondSql for Sql {
    fn has(&mut self, field: Field) -> String {
        format!("o.{} IS NOT NULL", field.column())
    }

    fn value(&mut self, field: Field) -> String {
        format!("COALESCE(o.{}, '')", field.column())
    }

    fn literal(&mut self, text: &str) -> String {
        self.values.push(FilterValue::Text(text.to_owned()));
        format!("${}", self.values.len())
    }
}

/// The metric counts over the embedded store.
#[derive(Clone)]
pub struct EmbeddedSource {
    db: Db,
}

impl EmbeddedSource {
    /// Counts over `db`'s call tables.
    pub fn new(db: Db) -> Self {
        Self { db }
    }
}

#[async_trait::async_trait]
impl CallSource for EmbeddedSource {
    async fn distribution(
        &self,
        scope: &Scope,
        field: Field,
        cond: &Cond,
    ) -> Result<Vec<(String, i64)>, CallsError> {
        let mut sql = Sql::default();
        sql.push(&format!("SELECT o.{0} AS value, COUNT(DISTINCT o.run_id) AS runs", field.column()));
        sql.scope(scope, Sessions::All);
        sql.push(" AND ");
        sql.cond(&Cond::all([Cond::Present(field), cond.clone()]));
        sql.push(&format!(" GROUP BY o.{}", field.column()));
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        rows.iter()
            .map(|r| Ok((r.try_get("value")?, r.try_get("runs")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn count(&self, scope: &Scope, cond: &Cond, sessions: Sessions) -> Result<i64, CallsError> {
        let mut sql = Sql::default();
        sql.push("SELECT COUNT(DISTINCT o.run_id) AS runs");
        sql.scope(scope, sessions);
        sql.push(" AND ");
        sql.cond(cond);
        Ok(sql.query().fetch_one(self.db.reader()).await?.try_get("runs")?)
    }

    async fn sessions_duration(&self, scope: &Scope, cond: &Cond) -> Result<(i64, f64), CallsError> {
        let mut sql = Sql::default();
        sql.push("SELECT COUNT(*) AS calls, COALESCE(SUM(d.duration), 0.0) AS seconds FROM (SELECT DISTINCT s.run_id, s.duration FROM calls_sessions s WHERE s.run_id IN (SELECT o.run_id");
        sql.scope(scope, Sessions::All);
        sql.push(" AND ");
        sql.cond(cond);
        sql.push(") AND s.org_id = ");
        sql.text(&scope.org_id);
        sql.push(" AND s.ts >= ");
        sql.bind(FilterValue::Int(scope.start_ms));
        sql.push(" AND s.ts < ");
        sql.bind(FilterValue::Int(scope.end_ms));
        sql.push(") d");
        let row = sql.query().fetch_one(self.db.reader()).await?;
        let seconds: f64 = row.try_get("seconds")?;
        Ok((row.try_get("calls")?, seconds))
    }

    async fn distinct_values(&self, scope: &Scope, field: Field) -> Result<Vec<String>, CallsError> {
        let mut sql = Sql::default();
        sql.push(&format!("SELECT DISTINCT o.{} AS value", field.column()));
        sql.scope(scope, Sessions::All);
        sql.push(" AND ");
        sql.cond(&Cond::Present(field));
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        rows.iter().map(|r| r.try_get("value")).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    async fn describe(&self, table: SourceTable) -> Result<Vec<(String, String)>, CallsError> {
        let columns: &[(&str, &str)] = match table {
            SourceTable::Runs => &[("id", "TEXT"), ("timestamp", "BIGINT (ms, as ts)")],
            SourceTable::Sessions => &[
                ("run_id", "TEXT"),
                ("org_id", "TEXT"),
                ("user_number", "TEXT"),
                ("duration", "DOUBLE PRECISION"),
                ("timestamp", "BIGINT (ms, as ts)"),
            ],
            SourceTable::NodeOutputs => &[
                ("run_id", "TEXT"),
                ("node_id", "TEXT"),
                ("node_persistent_id", "TEXT"),
                ("flat_data", "TEXT (and the metric keys in f_… columns)"),
                ("timestamp", "BIGINT (ms, as ts)"),
            ],
            SourceTable::Nodes => &[("id", "TEXT"), ("org_id", "TEXT")],
        };
        Ok(columns.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect())
    }

    async fn node_output_count(&self, node_persistent_id: &str, since_ms: i64) -> Result<i64, CallsError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM calls_node_outputs WHERE node_persistent_id = $1 AND ts >= $2",
        )
        .bind(node_persistent_id)
        .bind(since_ms)
        .fetch_one(self.db.reader())
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn node_orgs(
        &self,
        node_persistent_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, CallsError> {
        let rows = sqlx::query(
            "SELECT s.org_id AS org_id, COUNT(DISTINCT s.run_id) AS runs FROM calls_sessions s \
             WHERE s.run_id IN (SELECT o.run_id FROM calls_node_outputs o WHERE o.node_persistent_id = $1 AND o.ts >= $2) \
             GROUP BY s.org_id ORDER BY runs DESC, org_id",
        )
        .bind(node_persistent_id)
        .bind(since_ms)
        .fetch_all(self.db.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("org_id")?, r.try_get("runs")?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}
