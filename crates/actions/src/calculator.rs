//! The income calculator (`sightline calc income`): clients whose monthly income is above 2000
//! get an `optimization` NBA event; in API mode, clients that no longer qualify get a delete
//! event for their current NBAs of that definition.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

/// The rule's threshold: strictly above it emits an event.
pub const INCOME_THRESHOLD: f64 = 2000.0;

/// One input row.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomeRecord {
    /// Client enterprise number.
    pub enterprise_number: String,
    /// Monthly income.
    pub monthly_income: f64,
    /// Account id, when the input has it.
    pub account_id: Option<String>,
}

/// Parses either input format: a mapping `{"<enterprise_number>": income}` or a list of
/// `{"enterprise_number", "monthly_income", "account_id"?}`. Errors name the entry.
pub fn parse_input(text: &str) -> anyhow::Result<Vec<IncomeRecord>> {
    let value: Value = serde_json::from_str(text).context("input is not valid JSON")?;
    match value {
        Value::Object(map) => map
            .into_iter()
            .map(|(en, v)| {
                let income = v.as_f64().with_context(|| format!("entry {en}: income must be a number"))?;
                Ok(IncomeRecord { enterprise_number: en, monthly_income: income, account_id: None })
            })
            .collect(),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let n = i + 1;
                let en = item
                    .get("enterprise_number")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .with_context(|| format!("entry {n}: enterprise_number is required"))?;
                let income = item
                    .get("monthly_income")
                    .and_then(Value::as_f64)
                    .with_context(|| format!("entry {n}: monthly_income must be a number"))?;
                let account_id = item.get("account_id").and_then(Value::as_str).map(str::to_owned);
                Ok(IncomeRecord { enterprise_number: en.to_owned(), monthly_income: income, account_id })
            })
            .collect(),
        _ => bail!("input must be a JSON object (mapping) or array (list)"),
    }
}

/// Whether the rule fires for `record`.
pub fn qualifies(record: &IncomeRecord) -> bool {
    record.monthly_income > INCOME_THRESHOLD
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// SHA-256 of the context as compact JSON with sorted keys (the original's context hash).
pub fn context_hash(context: &Map<String, Value>) -> String {
    let text = canonical(&Value::Object(context.clone())).to_string();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Target of an event.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Enterprise number.
    pub enterprise_number: Option<String>,
    /// Account id.
    pub account_id: Option<String>,
    /// Contact id.
    pub contact_id: Option<String>,
}

fn base_event(
    definition: &str,
    source: &str,
    target: &Target,
    context: Map<String, Value>,
) -> Map<String, Value> {
    let mut event = Map::new();
    event.insert("event_id".into(), json!(uuid::Uuid::new_v4().to_string()));
    event.insert(
        "occurred_at".into(),
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    );
    event.insert("source".into(), json!(source));
    event.insert("nba_definition_id".into(), json!(definition));
    for (key, value) in [
        ("enterprise_number", &target.enterprise_number),
        ("account_id", &target.account_id),
        ("contact_id", &target.contact_id),
    ] {
        if let Some(v) = value.as_ref().filter(|v| !v.is_empty()) {
            event.insert(key.into(), json!(v));
        }
    }
    let mut context = context;
    let hash = context_hash(&context);
    context.insert("hash".into(), json!(hash));
    event.insert("context".into(), Value::Object(context));
    event
}

/// A create event (`create_nba` omitted, as it defaults to true).
pub fn create_event(definition: &str, source: &str, target: &Target, context: Map<String, Value>) -> Value {
    Value::Object(base_event(definition, source, target, context))
}

/// A delete event: `create_nba=false` with the NBAs to deactivate.
pub fn create_delete_event(
    definition: &str,
    source: &str,
    target: &Target,
    nba_ids: &[String],
    context: Map<String, Value>,
) -> Value {
    let mut event = base_event(definition, source, target, context);
    event.insert("create_nba".into(), json!(false));
    event.insert("deactivate_nba_ids".into(), json!(nba_ids));
    Value::Object(event)
}

/// Options of `sightline calc income` (no `Debug`: it holds the API key).
#[derive(Clone)]
pub struct IncomeRun {
    /// Input file.
    pub input: PathBuf,
    /// Base URL of a Sightline server; `None` with `dry_run`.
    pub api: Option<String>,
    /// Print events instead of posting them.
    pub dry_run: bool,
    /// NBA definition to emit.
    pub definition: String,
    /// Source name.
    pub source: String,
    /// API key or token sent as `Authorization: Bearer`.
    pub api_key: Option<String>,
    /// Attempts per request.
    pub attempts: u32,
}

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IncomeSummary {
    /// Create events accepted.
    pub emitted: usize,
    /// Clients under the threshold.
    pub skipped: usize,
    /// Delete events sent for clients that no longer qualify.
    pub delete_events: usize,
    /// Requests that failed after retries.
    pub failed: usize,
}

/// Runs the calculator over a file.
pub async fn run_income(run: &IncomeRun) -> anyhow::Result<IncomeSummary> {
    let text = std::fs::read_to_string(&run.input)
        .with_context(|| format!("Failed to read {}", run.input.display()))?;
    let records = parse_input(&text).with_context(|| format!("{}", run.input.display()))?;
    let client = match (&run.api, run.dry_run) {
        (_, true) => None,
        (Some(api), false) => Some(ApiClient::new(api, run.api_key.clone(), run.attempts)?),
        (None, false) => bail!("give --api URL to post events, or --dry-run to print them"),
    };
    let bar = indicatif::ProgressBar::new(records.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} clients {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut summary = IncomeSummary::default();
    for record in &records {
        bar.inc(1);
        let target = Target {
            enterprise_number: Some(record.enterprise_number.clone()),
            account_id: record.account_id.clone(),
            contact_id: None,
        };
        let mut context = Map::new();
        context.insert("monthly_income".into(), json!(record.monthly_income));
        context.insert("rule".into(), json!(format!("monthly_income > {INCOME_THRESHOLD}")));
        if qualifies(record) {
            let event = create_event(&run.definition, &run.source, &target, context);
            match &client {
                None => {
                    bar.suspend(|| println!("{event}"));
                    summary.emitted += 1;
                }
                Some(api) => match api.post_event(&event).await {
                    Ok(()) => summary.emitted += 1,
                    Err(e) => {
                        bar.suspend(|| eprintln!("{}: {e:#}", record.enterprise_number));
                        summary.failed += 1;
                    }
                },
            }
        } else {
            summary.skipped += 1;
            let Some(api) = &client else { continue };
            match api.active_nbas(&record.enterprise_number, &run.definition).await {
                Ok(ids) if ids.is_empty() => {}
                Ok(ids) => {
                    context.insert("reason".into(), json!("monthly income no longer above threshold"));
                    let event = create_delete_event(&run.definition, &run.source, &target, &ids, context);
                    match api.post_event(&event).await {
                        Ok(()) => summary.delete_events += 1,
                        Err(e) => {
                            bar.suspend(|| eprintln!("{}: {e:#}", record.enterprise_number));
                            summary.failed += 1;
                        }
                    }
                }
                Err(e) => {
                    bar.suspend(|| eprintln!("{}: {e:#}", record.enterprise_number));
                    summary.failed += 1;
                }
            }
        }
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// Talks to the Sightline API with timeouts and retries.
struct ApiClient {
    http: reqwest::Client,
    base: String,
    api_key: Option<String>,
    attempts: u32,
}

impl ApiClient {
    fn new(base: &str, api_key: Option<String>, attempts: u32) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self { http, base: base.trim_end_matches('/').to_owned(), api_key, attempts: attempts.max(1) })
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    /// Sends with retries on connection errors, 429 and 5xx; 4xx are final.
    async fn send(&self, build: impl Fn() -> reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let mut delay = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            match self.auth(build()).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body: Value = resp.json().await.unwrap_or(Value::Null);
                    if status.is_success() {
                        return Ok(body);
                    }
                    last = format!("HTTP {status}: {body}");
                    if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                        bail!(last);
                    }
                }
                Err(e) => last = e.to_string(),
            }
            if attempt < self.attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        bail!("after {} attempts: {last}", self.attempts)
    }

    async fn post_event(&self, event: &Value) -> anyhow::Result<()> {
        let url = format!("{}/api/v1/internal/events/nba-calculation", self.base);
        self.send(|| self.http.post(&url).json(event)).await.map(|_| ())
    }

    /// Ids of the client's current `new` NBAs of `definition` (pages through the list).
    async fn active_nbas(&self, enterprise_number: &str, definition: &str) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut offset = 0;
        loop {
            let url = format!("{}/api/v1/nba", self.base);
            let query = [
                ("enterprise_number", enterprise_number.to_owned()),
                ("nba_definition_id", definition.to_owned()),
                ("status", "new".to_owned()),
                ("limit", "200".to_owned()),
                ("offset", offset.to_string()),
            ];
            let page = self.send(|| self.http.get(&url).query(&query)).await?;
            let items = page.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            ids.extend(items.iter().filter_map(|i| i.get("id").and_then(Value::as_str)).map(str::to_owned));
            let total = page.get("total").and_then(Value::as_i64).unwrap_or(0);
            offset += items.len() as i64;
            if items.is_empty() || offset >= total {
                return Ok(ids);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_input_formats_parse() {
        let mapping = parse_input(r#"{"0123456789": 3200, "1111111111": 1800}"#).unwrap();
        assert_eq!(mapping.len(), 2);
        assert!(mapping.iter().any(|r| r.enterprise_number == "0123456789" && qualifies(r)));
        let list = parse_input(
            r#"[{"enterprise_number": "0123456789", "monthly_income": 3200, "account_id": "acc_123"},
                {"enterprise_number": "1111111111", "monthly_income": 1800}]"#,
        )
        .unwrap();
        assert_eq!(list[0].account_id.as_deref(), Some("acc_123"));
        assert!(!qualifies(&list[1]));
    }

    #[test]
    fn the_threshold_is_strict() {
        let at = IncomeRecord { enterprise_number: "1".into(), monthly_income: 2000.0, account_id: None };
        assert!(!qualifies(&at));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = parse_input(r#"[{"enterprise_number": "1", "monthly_income": "lots"}]"#).unwrap_err();
        assert!(format!("{err:#}").contains("entry 1"), "{err:#}");
    }

    #[test]
    fn events_omit_defaults_and_delete_events_set_them() {
        let target = Target { enterprise_number: Some("0123456789".into()), ..Default::default() };
        let e = create_event("optimization", "calc", &target, Map::new());
        assert!(
            e.get("create_nba").is_none()
                && e.get("deactivate_nba_ids").is_none()
                && e.get("account_id").is_none()
        );
        assert_eq!(e["context"]["hash"].as_str().unwrap().len(), 64);
        let d = create_delete_event("optimization", "calc", &target, &["nba_1".into()], Map::new());
        assert_eq!(d["create_nba"], json!(false));
        assert_eq!(d["deactivate_nba_ids"], json!(["nba_1"]));
    }

    #[test]
    fn the_context_hash_ignores_key_order() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"a":1,"b":{"y":2,"x":1}}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"b":{"x":1,"y":2},"a":1}"#).unwrap();
        assert_eq!(context_hash(&a), context_hash(&b));
    }
}
