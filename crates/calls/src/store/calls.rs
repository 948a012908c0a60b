//! The embedded call store: the original's four ClickHouse tables as `calls_runs`,
//! `calls_sessions`, `calls_node_outputs` (with the metric fields in their own columns, its run's
//! and session's columns copied in, and its kind in `calls_output_kinds`) and `calls_nodes`; the
//! ingest upserts; and the scope's profile as SQL over them ([`EmbeddedSource`]).

use std::collections::HashMap;

use sightline_platform::db::{backend_of, rows_per_statement, FilterValue};
use sightline_platform::Db;
use sqlx::{AnyConnection, Row as _};

use crate::error::CallsError;
use crate::flat::Field;
use crate::metrics::{CallSource, RawOutput, SourceTable};
use crate::model::{CallRecord, IngestSummary, NodeOutput};
use crate::profile::{kind_key, profile_values, OutputValues, Profile, ProfileRow, PROFILE_FIELDS};
use crate::query::Scope;

/// Writes one batch of records in the caller's transaction, in multi-row statements; a record
/// whose id exists replaces it, and of records repeating an id in the batch the last one counts.
pub async fn upsert(conn: &mut AnyConnection, records: &[CallRecord]) -> Result<IngestSummary, sqlx::Error> {
    let mut summary = IngestSummary { lines: records.len() as u64, ..IngestSummary::default() };
    let (mut runs, mut sessions, mut nodes, mut outputs) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for record in records {
        match record {
            CallRecord::Run { .. } => runs.push(record),
            CallRecord::Session { .. } => sessions.push(record),
            CallRecord::Node { .. } => nodes.push(record),
            CallRecord::NodeOutput(o) => outputs.push(o),
        }
    }
    summary.runs = runs.len() as u64;
    summary.sessions = sessions.len() as u64;
    summary.nodes = nodes.len() as u64;
    summary.node_outputs = outputs.len() as u64;
    let key = |r: &&CallRecord| match r {
        CallRecord::Run { id, .. } | CallRecord::Node { id, .. } => id.clone(),
        CallRecord::Session { run_id, .. } => run_id.clone(),
        CallRecord::NodeOutput(o) => o.id.clone(),
    };
    let runs = last_of_each(runs, key);
    let sessions = last_of_each(sessions, key);
    let nodes = last_of_each(nodes, key);
    let outputs = last_of_each(outputs, |o| o.id.clone());
    let backend = backend_of(conn);

    for chunk in runs.chunks(rows_per_statement(2)) {
        let sql = format!(
            "INSERT INTO calls_runs (id, ts) SELECT v.* FROM (VALUES {}) AS v WHERE true \
             ON CONFLICT (id) DO UPDATE SET ts = excluded.ts",
            backend.sequential_rows(chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            if let CallRecord::Run { id, ts } = r {
                query = query.bind(id).bind(ts);
            }
        }
        query.execute(&mut *conn).await?;
    }
    for chunk in sessions.chunks(rows_per_statement(6)) {
        // The duration is bound as a number always, with a flag for none: a NULL bind would
        // type the cached statement's parameter otherwise on PostgreSQL.
        let sql = format!(
            "INSERT INTO calls_sessions (run_id, org_id, user_number, duration, ts) \
             SELECT v.column1, v.column2, v.column3, CASE WHEN v.column6 = 1 THEN v.column4 END, v.column5 \
             FROM (VALUES {}) AS v WHERE true \
             ON CONFLICT (run_id) DO UPDATE SET org_id = excluded.org_id, user_number = excluded.user_number, \
             duration = excluded.duration, ts = excluded.ts",
            backend.sequential_rows(chunk.len(), 6)
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            if let CallRecord::Session { run_id, org_id, user_number, duration, ts } = r {
                query = query
                    .bind(run_id)
                    .bind(org_id)
                    .bind(user_number)
                    .bind(duration.unwrap_or(0.0))
                    .bind(ts)
                    .bind(i64::from(duration.is_some()));
            }
        }
        query.execute(&mut *conn).await?;
    }
    for chunk in nodes.chunks(rows_per_statement(2)) {
        let sql = format!(
            "INSERT INTO calls_nodes (id, org_id) SELECT v.* FROM (VALUES {}) AS v WHERE true \
             ON CONFLICT (id) DO UPDATE SET org_id = excluded.org_id",
            backend.sequential_rows(chunk.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for r in chunk {
            if let CallRecord::Node { id, org_id } = r {
                query = query.bind(id).bind(org_id);
            }
        }
        query.execute(&mut *conn).await?;
    }
    let kinds = upsert_kinds(conn, &outputs).await?;
    let cols = 7 + Field::ALL.len();
    let columns = Field::ALL.map(Field::column).join(", ");
    let updates =
        Field::ALL.iter().map(|f| format!("{0} = excluded.{0}", f.column())).collect::<Vec<_>>().join(", ");
    for chunk in outputs.chunks(rows_per_statement(cols)) {
        // The run's and session's columns are read as the output is written; the refresh below
        // catches a run or session written later.
        let sql = format!(
            "INSERT INTO calls_node_outputs (id, run_id, node_id, node_persistent_id, ts, flat_data, kind_id, {columns}, \
             run_ts, session_org_id, session_ts, session_user_number, session_duration) \
             SELECT v.*, r.ts, s.org_id, s.ts, s.user_number, s.duration FROM (VALUES {}) AS v \
             LEFT JOIN calls_runs r ON r.id = v.column2 LEFT JOIN calls_sessions s ON s.run_id = v.column2 WHERE true \
             ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id, node_id = excluded.node_id, \
             node_persistent_id = excluded.node_persistent_id, ts = excluded.ts, flat_data = excluded.flat_data, \
             kind_id = excluded.kind_id, {updates}, run_ts = excluded.run_ts, session_org_id = excluded.session_org_id, \
             session_ts = excluded.session_ts, session_user_number = excluded.session_user_number, \
             session_duration = excluded.session_duration",
            backend.sequential_rows(chunk.len(), cols)
        );
        let mut query = sqlx::query(&sql);
        for o in chunk {
            let kind = kinds.get(&kind_key(&profile_values(&o.fields))).copied();
            query = query
                .bind(&o.id)
                .bind(&o.run_id)
                .bind(&o.node_id)
                .bind(&o.node_persistent_id)
                .bind(o.ts)
                .bind(&o.flat_data)
                .bind(kind);
            for value in &o.fields {
                query = query.bind(value.as_deref());
            }
        }
        query.execute(&mut *conn).await?;
    }
    let mut touched: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            CallRecord::Run { id, .. } => Some(id.as_str()),
            CallRecord::Session { run_id, .. } => Some(run_id.as_str()),
            CallRecord::NodeOutput(o) => Some(o.run_id.as_str()),
            CallRecord::Node { .. } => None,
        })
        .collect();
    touched.sort_unstable();
    touched.dedup();
    refresh_outputs(conn, &touched).await?;
    Ok(summary)
}

/// `items` with only the last of those sharing a key, in their order: one statement may not
/// write a row twice.
fn last_of_each<T>(items: Vec<T>, key: impl Fn(&T) -> String) -> Vec<T> {
    let mut last = std::collections::HashMap::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    if last.len() == items.len() {
        return items;
    }
    items
        .into_iter()
        .enumerate()
        .filter(|(i, item)| last.get(&key(item)) == Some(i))
        .map(|(_, item)| item)
        .collect()
}

/// Writes the kinds of `outputs` not yet known; returns the id of each kind key.
async fn upsert_kinds(
    conn: &mut AnyConnection,
    outputs: &[&NodeOutput],
) -> Result<HashMap<String, i64>, sqlx::Error> {
    let mut kinds: HashMap<String, OutputValues> = HashMap::new();
    for o in outputs {
        let values = profile_values(&o.fields);
        kinds.entry(kind_key(&values)).or_insert(values);
    }
    let kinds: Vec<(String, OutputValues)> = kinds.into_iter().collect();
    let backend = backend_of(conn);
    let cols = 1 + PROFILE_FIELDS;
    let columns = Field::ALL[..PROFILE_FIELDS].iter().map(|f| f.column()).collect::<Vec<_>>().join(", ");
    let mut ids = HashMap::with_capacity(kinds.len());
    for chunk in kinds.chunks(rows_per_statement(cols)) {
        let sql = format!(
            "INSERT INTO calls_output_kinds (kind_key, {columns}) SELECT v.* FROM (VALUES {}) AS v WHERE true \
             ON CONFLICT (kind_key) DO NOTHING",
            backend.sequential_rows(chunk.len(), cols)
        );
        let mut query = sqlx::query(&sql);
        for (key, values) in chunk {
            query = query.bind(key);
            for value in values {
                query = query.bind(value.as_deref());
            }
        }
        query.execute(&mut *conn).await?;
        let sql = format!(
            "SELECT id, kind_key FROM calls_output_kinds WHERE kind_key IN ({})",
            backend.sequential_placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for (key, _) in chunk {
            query = query.bind(key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            ids.insert(row.try_get("kind_key")?, row.try_get("id")?);
        }
    }
    Ok(ids)
}

/// Brings the run and session columns and the run's output count of the outputs of `runs` up to
/// date, writing only the rows that differ.
async fn refresh_outputs(conn: &mut AnyConnection, runs: &[&str]) -> Result<(), sqlx::Error> {
    const FRESH: [(&str, &str); 6] = [
        ("run_ts", "SELECT r.ts FROM calls_runs r WHERE r.id = calls_node_outputs.run_id"),
        ("session_org_id", "SELECT s.org_id FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id"),
        ("session_ts", "SELECT s.ts FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id"),
        ("session_user_number", "SELECT s.user_number FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id"),
        ("session_duration", "SELECT s.duration FROM calls_sessions s WHERE s.run_id = calls_node_outputs.run_id"),
        (
            "run_outputs",
            "SELECT COUNT(*) FROM calls_node_outputs o2 WHERE o2.node_persistent_id = calls_node_outputs.node_persistent_id \
             AND o2.run_id = calls_node_outputs.run_id",
        ),
    ];
    let set = FRESH.iter().map(|(c, q)| format!("{c} = ({q})")).collect::<Vec<_>>().join(", ");
    let stale =
        FRESH.iter().map(|(c, q)| format!("{c} IS DISTINCT FROM ({q})")).collect::<Vec<_>>().join(" OR ");
    let backend = backend_of(conn);
    for chunk in runs.chunks(rows_per_statement(1)) {
        let sql = format!(
            "UPDATE calls_node_outputs SET {set} WHERE run_id IN ({}) AND ({stale})",
            backend.sequential_placeholders(chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for run in chunk {
            query = query.bind(*run);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
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

    /// ` AND column NOT IN (…)` of `values`; nothing when there are none.
    fn not_in(&mut self, column: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        self.push(&format!(" AND {column} NOT IN ("));
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.text(value);
        }
        self.push(")");
    }

    /// ` FROM … WHERE …` of the node outputs of `scope`: of its node, whose node is known, whose
    /// run and session fall in the window, of its organisation and not from an excluded number
    /// (all read from the output's own columns: one covering index answers).
    fn scope(&mut self, scope: &Scope) {
        self.push(" FROM calls_node_outputs o WHERE o.node_persistent_id = ");
        self.text(&scope.node_persistent_id);
        self.push(" AND o.session_org_id = ");
        self.text(&scope.org_id);
        self.push(" AND o.session_ts >= ");
        self.bind(FilterValue::Int(scope.start_ms));
        self.push(" AND o.session_ts < ");
        self.bind(FilterValue::Int(scope.end_ms));
        self.push(" AND o.run_ts >= ");
        self.bind(FilterValue::Int(scope.start_ms));
        self.push(" AND o.run_ts < ");
        self.bind(FilterValue::Int(scope.end_ms));
        self.push(" AND o.node_id IN (SELECT n.id FROM calls_nodes n)");
        self.not_in("o.session_user_number", &scope.excluded_numbers);
    }

    fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
        // At debug level, so the benchmark can send the same statement to the database alone.
        if tracing::enabled!(tracing::Level::DEBUG) {
            let binds: Vec<serde_json::Value> = self
                .values
                .iter()
                .map(|v| match v {
                    FilterValue::Text(t) => serde_json::Value::from(t.as_str()),
                    FilterValue::Int(i) => serde_json::Value::from(*i),
                })
                .collect();
            tracing::debug!(sql = %self.text, binds = %serde_json::Value::from(binds), "calls.embedded_query");
        }
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

/// `SELECT` of the scope's groups (to which [`Sql::scope`] and `GROUP BY` are added): the run
/// when it has several outputs of the node, the kind, the caller-number flag, the outputs and
/// their summed duration.
const PROFILE_GROUPS: &str = "SELECT CASE WHEN o.run_outputs > 1 THEN o.run_id END AS run, o.kind_id, \
     CAST(CASE WHEN o.session_user_number <> '' THEN 1 ELSE 0 END AS BIGINT) AS with_number, \
     COUNT(*) AS n, COALESCE(SUM(o.session_duration), 0.0) AS seconds";

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
    async fn profile(&self, scope: &Scope) -> Result<Profile, CallsError> {
        let values = Field::ALL[..PROFILE_FIELDS]
            .iter()
            .enumerate()
            .map(|(i, f)| format!("k.{} AS v{i}", f.column()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = Sql::default();
        sql.push(&format!("SELECT g.run, g.with_number, g.n, g.seconds, {values} FROM ("));
        sql.push(PROFILE_GROUPS);
        sql.scope(scope);
        sql.push(" GROUP BY 1, 2, 3) g JOIN calls_output_kinds k ON k.id = g.kind_id");
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        let rows = rows
            .iter()
            .map(|r| {
                let run: Option<String> = r.try_get("run")?;
                let mut values: OutputValues = Default::default();
                for (i, value) in values.iter_mut().enumerate() {
                    *value = r.try_get(format!("v{i}").as_str())?;
                }
                let n: i64 = r.try_get("n")?;
                let seconds: f64 = r.try_get("seconds")?;
                // A run's rows repeat its one session once per output of the kind.
                let (runs, calls, seconds) =
                    if run.is_some() { (1, 1, seconds / n as f64) } else { (n, n, seconds) };
                let with_number = r.try_get::<i64, _>("with_number")? == 1;
                Ok(ProfileRow { run, values, with_number, runs, calls, seconds })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(Profile::from_rows(rows))
    }

    async fn node_outputs(&self, scope: &Scope, limit: i64) -> Result<Vec<RawOutput>, CallsError> {
        let mut sql = Sql::default();
        sql.push(
            "SELECT o.run_id, r.ts AS run_ms, o.node_persistent_id, s.user_number, s.duration, o.flat_data \
             FROM calls_node_outputs o JOIN calls_runs r ON r.id = o.run_id \
             JOIN calls_sessions s ON s.run_id = o.run_id AND s.org_id = ",
        );
        sql.text(&scope.org_id);
        sql.push(" AND s.ts >= ");
        sql.bind(FilterValue::Int(scope.start_ms));
        sql.push(" AND s.ts < ");
        sql.bind(FilterValue::Int(scope.end_ms));
        sql.push(" WHERE o.node_persistent_id = ");
        sql.text(&scope.node_persistent_id);
        sql.push(" AND r.ts >= ");
        sql.bind(FilterValue::Int(scope.start_ms));
        sql.push(" AND r.ts < ");
        sql.bind(FilterValue::Int(scope.end_ms));
        sql.not_in("s.user_number", &scope.excluded_numbers);
        sql.push(" ORDER BY r.ts DESC, o.run_id, o.ts, o.id LIMIT ");
        sql.bind(FilterValue::Int(limit));
        let rows = sql.query().fetch_all(self.db.reader()).await?;
        rows.iter()
            .map(|r| {
                Ok(RawOutput {
                    run_id: r.try_get("run_id")?,
                    run_ms: r.try_get("run_ms")?,
                    node_persistent_id: r.try_get("node_persistent_id")?,
                    user_number: r.try_get("user_number")?,
                    duration: r.try_get("duration")?,
                    flat_data: r.try_get("flat_data")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn distinct_values(&self, scope: &Scope, field: Field) -> Result<Vec<String>, CallsError> {
        let mut sql = Sql::default();
        sql.push(&format!("SELECT DISTINCT o.{0} AS value", field.column()));
        sql.scope(scope);
        sql.push(&format!(" AND o.{0} NOT IN ('', 'null')", field.column()));
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
