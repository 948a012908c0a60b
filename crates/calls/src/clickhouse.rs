//! ClickHouse as the call source, over its HTTP interface through the platform's outbound
//! client (timeouts, retries, breaker). The SQL runs on Debian's 18.16 and on modern servers
//! (`../shared/CLICKHOUSE.md`): no CTEs, `visitParam*` functions, times as epoch seconds, every
//! string inlined through [`quote`], the one escaping function, and numbers from typed values.
//!
//! Queries run read-only with the original's limits; an error, even one that arrives after the
//! first rows, is an error (`wait_end_of_query=1` turns it into an HTTP error, and the body is
//! scanned for ClickHouse's `Code: ` lines besides), never a silent empty answer.

use std::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use sightline_platform::config::Secret;
use sightline_platform::outbound::{OutboundClient, OutboundError};

use crate::error::CallsError;
use crate::flat::Field;
use crate::metrics::{CallSource, RawOutput, SourceTable};
use crate::profile::{OutputValues, Profile, ProfileRow, AGREED_RATE_PRESENT, PROFILE_FIELDS};
use crate::query::Scope;

/// A string as a ClickHouse literal: in single quotes, with `\` and `'` escaped by a backslash.
/// ClickHouse reads backslash escapes in literals, so SQL-standard quote doubling alone would let
/// `\'` through; escaping both characters is what makes any text (control bytes included) a
/// literal of itself.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// How to reach ClickHouse.
#[derive(Debug, Clone)]
pub struct ClickHouseSettings {
    /// `CLICKHOUSE_DATABASE`.
    pub database: String,
    /// `CLICKHOUSE_USERNAME` / `CLICKHOUSE_USER`.
    pub user: String,
    /// `CLICKHOUSE_PASSWORD`.
    pub password: Secret,
}

/// The metric counts over ClickHouse's four tables.
#[derive(Clone)]
pub struct ClickHouseSource {
    client: OutboundClient,
    settings: ClickHouseSettings,
}

/// The settings every query runs with (the original's limits, read-only, errors at the end
/// turned into HTTP errors, 64-bit numbers unquoted on old servers too).
const QUERY_SETTINGS: [(&str, &str); 6] = [
    // 2: read-only, yet these settings may still be set (modern servers refuse them under 1).
    ("readonly", "2"),
    ("max_execution_time", "180"),
    ("max_memory_usage", "10000000000"),
    ("max_threads", "16"),
    ("wait_end_of_query", "1"),
    ("output_format_json_quote_64bit_integers", "0"),
];

impl ClickHouseSource {
    /// A source over `client` (its base URL is the server's HTTP interface).
    pub fn new(client: OutboundClient, settings: ClickHouseSettings) -> Self {
        Self { client, settings }
    }

    /// Runs `sql` and reads its rows.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, CallsError> {
        // The query text holds no secret (values are the scope's ids); at debug level only.
        tracing::debug!(sql = %sql, "calls.clickhouse_query");
        let mut query: Vec<(&str, &str)> = QUERY_SETTINGS.to_vec();
        query.push(("database", &self.settings.database));
        let user = http_header(&self.settings.user)?;
        let key = http_header(self.settings.password.expose())?;
        let answer = self
            .client
            .post("/")
            .query(&query)
            .header(reqwest::header::HeaderName::from_static("x-clickhouse-user"), user)
            .header(reqwest::header::HeaderName::from_static("x-clickhouse-key"), key)
            .body(format!("{sql}\nFORMAT JSONEachRow"), "text/plain; charset=utf-8")
            // Not retried once sent: ClickHouse may still be running a query whose answer was
            // lost, and a heavy one sent again doubles its load.
            .send()
            .await
            .map_err(|e| match e {
                // ClickHouse's own error text (`Code: 159 …` for its timeout): said as such.
                OutboundError::Status { body, .. } if body.starts_with("Code: ") => {
                    CallsError::SourceFailed(clip(&body))
                }
                other => CallsError::Source(other),
            })?;
        let text =
            std::str::from_utf8(&answer.body).map_err(|_| undecodable(self, "the answer is not UTF-8"))?;
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                if line.starts_with("Code: ") {
                    return Err(CallsError::SourceFailed(clip(line)));
                }
                serde_json::from_str(line).map_err(|e| undecodable(self, &format!("{e} in {}", clip(line))))
            })
            .collect()
    }
}

fn http_header(value: &str) -> Result<reqwest::header::HeaderValue, CallsError> {
    let mut v = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
        CallsError::Internal(anyhow::anyhow!("a ClickHouse credential holds characters a header cannot"))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

fn undecodable(source: &ClickHouseSource, reason: &str) -> CallsError {
    CallsError::Source(OutboundError::Undecodable {
        client: source.client.name().to_owned(),
        reason: reason.to_owned(),
    })
}

fn clip(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The value of `field` as ClickHouse reads it: strings unescaped (whether the producer wrote a
/// space after the colon or not), numbers and booleans as written, `''` when absent.
fn value(field: Field) -> String {
    let key = quote(field.key());
    let raw = format!("replaceRegexpOne(visitParamExtractRaw(o.flat_data, {key}), '^\\\\s+', '')");
    format!("if(substring({raw}, 1, 1) = '\"', visitParamExtractString(concat('{{\"v\":', {raw}, '}}'), 'v'), {raw})")
}

/// Window bounds in whole seconds: a row at second `s` is in `[start, end)` (in ms) when
/// `s >= ceil(start / 1000)` and `s < ceil(end / 1000)`.
fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000) + i64::from(ms.rem_euclid(1000) != 0)
}

/// The scope's sessions filter (inside `public_sessions`). A session without a number (`''` or
/// NULL) is one without a caller number, as in the embedded store.
fn sessions_sql(scope: &Scope) -> String {
    let (start, end) = (seconds(scope.start_ms), seconds(scope.end_ms));
    let mut sql = format!(
        "org_id = {} AND timestamp >= toDateTime({start}) AND timestamp < toDateTime({end})",
        quote(&scope.org_id)
    );
    if !scope.excluded_numbers.is_empty() {
        let list: Vec<String> = scope.excluded_numbers.iter().map(|n| quote(n)).collect();
        let _ = write!(sql, " AND ifNull(user_number, '') NOT IN ({})", list.join(", "));
    }
    sql
}

/// ` FROM … WHERE …` of the scope's node outputs: of its node, whose node is known, whose run
/// falls in the window (the sessions are joined or filtered by the caller).
fn outputs_sql(scope: &Scope) -> String {
    let (start, end) = (seconds(scope.start_ms), seconds(scope.end_ms));
    format!(
        " FROM public_node_outputs AS o WHERE o.node_persistent_id = {node} \
         AND o.node_id IN (SELECT id FROM public_nodes) \
         AND o.run_id IN (SELECT id FROM public_runs WHERE timestamp >= toDateTime({start}) AND timestamp < toDateTime({end}))",
        node = quote(&scope.node_persistent_id),
    )
}

/// The profile query: per run, its distinct outputs (a bit mask of the keys present, then the
/// values) joined to its sessions in scope (distinct `(run, duration)` pairs, as the original
/// counts calls), then runs alike grouped; a run with several distinct outputs stays alone.
fn profile_sql(scope: &Scope) -> String {
    let mut mask = Vec::new();
    let mut values = Vec::new();
    for (i, field) in Field::ALL[..PROFILE_FIELDS].iter().enumerate() {
        mask.push(format!("{} * visitParamHas(o.flat_data, {})", 1u32 << i, quote(field.key())));
        let v = value(*field);
        values.push(if *field == Field::AgreedUponRate {
            format!("if({v} IN ('', 'null'), {v}, {})", quote(AGREED_RATE_PRESENT))
        } else {
            v
        });
    }
    format!(
        "SELECT if(length(outs) > 1, run_id, '') AS run, outs, with_number, count() AS runs, \
         sum(calls) AS calls, sum(seconds) AS seconds FROM (\
         SELECT o.run_id AS run_id, groupUniqArray(({mask}, {values})) AS outs{outputs} GROUP BY o.run_id) AS o \
         ALL INNER JOIN (SELECT run_id, max(has_number) AS with_number, count() AS calls, sum(duration) AS seconds \
         FROM (SELECT run_id, duration, max(ifNull(user_number, '') != '') AS has_number FROM public_sessions \
         WHERE {sessions} GROUP BY run_id, duration) AS d GROUP BY run_id) AS s USING run_id \
         GROUP BY run, outs, with_number",
        mask = mask.join(" + "),
        values = values.join(", "),
        outputs = outputs_sql(scope),
        sessions = sessions_sql(scope),
    )
}

type Output = (u32, String, String, String, String, String, String, String, String, String);

#[derive(Deserialize)]
struct GroupRow {
    run: String,
    outs: Vec<Output>,
    with_number: Option<u8>,
    runs: i64,
    calls: i64,
    seconds: Option<f64>,
}

impl GroupRow {
    fn into_rows(self) -> impl Iterator<Item = ProfileRow> {
        let run = (!self.run.is_empty()).then_some(self.run);
        let (with_number, runs, calls, seconds) =
            (self.with_number == Some(1), self.runs, self.calls, self.seconds.unwrap_or(0.0));
        self.outs.into_iter().map(move |(mask, v0, v1, v2, v3, v4, v5, v6, v7, v8)| {
            let mut values: OutputValues = [v0, v1, v2, v3, v4, v5, v6, v7, v8].map(Some);
            for (i, value) in values.iter_mut().enumerate() {
                if mask & (1 << i) == 0 {
                    *value = None;
                }
            }
            ProfileRow { run: run.clone(), values, with_number, runs, calls, seconds }
        })
    }
}

#[derive(Deserialize)]
struct Runs {
    runs: i64,
}

#[async_trait::async_trait]
impl CallSource for ClickHouseSource {
    async fn profile(&self, scope: &Scope) -> Result<Profile, CallsError> {
        let groups = self.rows::<GroupRow>(&profile_sql(scope)).await?;
        Ok(Profile::from_rows(groups.into_iter().flat_map(GroupRow::into_rows).collect()))
    }

    async fn node_outputs(&self, scope: &Scope, limit: i64) -> Result<Vec<RawOutput>, CallsError> {
        #[derive(Deserialize)]
        struct Row {
            run_id: String,
            run_s: i64,
            node_persistent_id: String,
            user_number: Option<String>,
            duration: Option<f64>,
            flat_data: String,
        }
        // 18.16 joins one table per SELECT: the runs inside, the sessions around.
        let sql = format!(
            "SELECT run_id, run_s, node_persistent_id, user_number, duration, flat_data FROM (\
             SELECT o.run_id AS run_id, r.run_s AS run_s, o.node_persistent_id AS node_persistent_id, \
             toUnixTimestamp(o.timestamp) AS output_s, o.flat_data AS flat_data \
             FROM public_node_outputs AS o ALL INNER JOIN (SELECT id AS run_id, toUnixTimestamp(timestamp) AS run_s \
             FROM public_runs WHERE timestamp >= toDateTime({start}) AND timestamp < toDateTime({end})) AS r USING run_id \
             WHERE o.node_persistent_id = {node}) AS x \
             ANY INNER JOIN (SELECT run_id, user_number, duration FROM public_sessions WHERE {sessions}) AS s \
             USING run_id ORDER BY run_s DESC, run_id, output_s LIMIT {limit}",
            start = seconds(scope.start_ms),
            end = seconds(scope.end_ms),
            node = quote(&scope.node_persistent_id),
            sessions = sessions_sql(scope),
        );
        Ok(self
            .rows::<Row>(&sql)
            .await?
            .into_iter()
            .map(|r| RawOutput {
                run_id: r.run_id,
                run_ms: r.run_s * 1000,
                node_persistent_id: r.node_persistent_id,
                user_number: r.user_number,
                duration: r.duration,
                flat_data: r.flat_data,
            })
            .collect())
    }

    async fn distinct_values(&self, scope: &Scope, field: Field) -> Result<Vec<String>, CallsError> {
        #[derive(Deserialize)]
        struct Value {
            value: String,
        }
        let sql = format!(
            "SELECT DISTINCT {value} AS value{outputs} AND o.run_id IN (SELECT run_id FROM public_sessions WHERE {sessions}) \
             AND value NOT IN ('', 'null')",
            value = value(field),
            outputs = outputs_sql(scope),
            sessions = sessions_sql(scope),
        );
        Ok(self.rows::<Value>(&sql).await?.into_iter().map(|v| v.value).collect())
    }

    async fn describe(&self, table: SourceTable) -> Result<Vec<(String, String)>, CallsError> {
        #[derive(Deserialize)]
        struct Column {
            name: String,
            #[serde(rename = "type")]
            kind: String,
        }
        // The name comes from a fixed list, never from the request.
        let sql = format!("DESCRIBE TABLE {}", table.name());
        Ok(self.rows::<Column>(&sql).await?.into_iter().map(|c| (c.name, c.kind)).collect())
    }

    async fn node_output_count(&self, node_persistent_id: &str, since_ms: i64) -> Result<i64, CallsError> {
        let sql = format!(
            "SELECT count() AS runs FROM public_node_outputs WHERE node_persistent_id = {} AND timestamp >= toDateTime({})",
            quote(node_persistent_id),
            seconds(since_ms)
        );
        Ok(self.rows::<Runs>(&sql).await?.first().map_or(0, |r| r.runs))
    }

    async fn node_orgs(
        &self,
        node_persistent_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, CallsError> {
        #[derive(Deserialize)]
        struct OrgRuns {
            org_id: String,
            runs: i64,
        }
        let sql = format!(
            "SELECT org_id, uniqExact(run_id) AS runs FROM public_sessions WHERE run_id IN \
             (SELECT run_id FROM public_node_outputs WHERE node_persistent_id = {} AND timestamp >= toDateTime({})) \
             GROUP BY org_id ORDER BY runs DESC, org_id",
            quote(node_persistent_id),
            seconds(since_ms)
        );
        Ok(self.rows::<OrgRuns>(&sql).await?.into_iter().map(|r| (r.org_id, r.runs)).collect())
    }

    fn kind(&self) -> &'static str {
        "clickhouse"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_escapes_exactly_backslash_and_quote() {
        assert_eq!(quote("O'Brien"), r"'O\'Brien'");
        assert_eq!(quote(r"\' OR 1=1 --"), r"'\\\' OR 1=1 --'");
        assert_eq!(quote(r"back\slash\"), r"'back\\slash\\'");
        assert_eq!(quote("{p:String} ? $1 ` \" ;"), "'{p:String} ? $1 ` \" ;'");
        assert_eq!(quote("line\nbreak\0"), "'line\nbreak\0'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn window_bounds_are_whole_seconds_that_keep_the_same_rows() {
        assert_eq!(seconds(1_765_807_200_000), 1_765_807_200);
        assert_eq!(seconds(1_765_807_200_001), 1_765_807_201);
        assert_eq!(seconds(-1), 0);
    }
}
