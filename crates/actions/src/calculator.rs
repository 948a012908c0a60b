//! The income calculator (`sightline calc income`): clients whose monthly income is above 2000
//! get an `optimization` NBA event; in API mode, clients that no longer qualify get a delete
//! event for their current NBAs of that definition.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use sightline_platform::config::Secret;
use sightline_platform::outbound::{OutboundClient, OutboundConfig, OutboundRequest};

use crate::model::CalculationEvent;

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
    mut context: Map<String, Value>,
) -> CalculationEvent {
    let present = |v: &Option<String>| v.as_ref().filter(|v| !v.is_empty()).cloned();
    let hash = context_hash(&context);
    context.insert("hash".into(), json!(hash));
    CalculationEvent {
        event_id: uuid::Uuid::new_v4().to_string(),
        occurred_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        source: source.to_owned(),
        nba_definition_id: definition.to_owned(),
        enterprise_number: present(&target.enterprise_number),
        account_id: present(&target.account_id),
        contact_id: present(&target.contact_id),
        create_nba: true,
        deactivate_nba_ids: Vec::new(),
        context,
    }
}

/// A create event.
pub fn create_event(
    definition: &str,
    source: &str,
    target: &Target,
    context: Map<String, Value>,
) -> CalculationEvent {
    base_event(definition, source, target, context)
}

/// A delete event: `create_nba=false` with the NBAs to deactivate.
pub fn create_delete_event(
    definition: &str,
    source: &str,
    target: &Target,
    nba_ids: &[String],
    context: Map<String, Value>,
) -> CalculationEvent {
    CalculationEvent {
        create_nba: false,
        deactivate_nba_ids: nba_ids.to_vec(),
        ..base_event(definition, source, target, context)
    }
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
    pub api_key: Option<Secret>,
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
                    let line = serde_json::to_string(&event)?;
                    bar.suspend(|| println!("{line}"));
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

/// Talks to the Sightline API through the platform's outbound client (timeouts, retries with
/// backoff, circuit breaker).
struct ApiClient {
    http: OutboundClient,
    api_key: Option<Secret>,
}

impl ApiClient {
    fn new(base: &str, api_key: Option<Secret>, attempts: u32) -> anyhow::Result<Self> {
        let settings = OutboundConfig {
            base_url: base.trim_end_matches('/').to_owned(),
            connect_timeout_ms: 5_000,
            timeout_ms: 15_000,
            budget_ms: 120_000,
            max_retries: attempts.max(1) - 1,
            // A long run stops posting once the server is plainly down, rather than failing
            // every remaining client after its own retries.
            breaker_failures: 10,
            ..OutboundConfig::default()
        };
        Ok(Self { http: OutboundClient::new("sightline_api", settings)?, api_key })
    }

    fn auth(&self, request: OutboundRequest) -> OutboundRequest {
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// Posts one event. A repeat is harmless (the server keys events by `event_id`), so the
    /// POST is retried like a GET.
    async fn post_event(&self, event: &CalculationEvent) -> anyhow::Result<()> {
        let request = self.http.post("/api/v1/internal/events/nba-calculation").json(event);
        self.auth(request).retry_non_idempotent().send().await?;
        Ok(())
    }

    /// Ids of the client's current `new` NBAs of `definition` (pages through the list).
    async fn active_nbas(&self, enterprise_number: &str, definition: &str) -> anyhow::Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Page {
            items: Vec<Listed>,
            total: i64,
        }
        #[derive(serde::Deserialize)]
        struct Listed {
            id: String,
        }
        let mut ids = Vec::new();
        loop {
            let query = [
                ("enterprise_number", enterprise_number.to_owned()),
                ("nba_definition_id", definition.to_owned()),
                ("status", "new".to_owned()),
                ("limit", "200".to_owned()),
                ("offset", ids.len().to_string()),
            ];
            let page: Page = self.auth(self.http.get("/api/v1/nba").query(&query)).send_json().await?;
            let done = page.items.is_empty() || ids.len() + page.items.len() >= page.total as usize;
            ids.extend(page.items.into_iter().map(|item| item.id));
            if done {
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
        let e = serde_json::to_value(create_event("optimization", "calc", &target, Map::new())).unwrap();
        assert!(
            e.get("create_nba").is_none()
                && e.get("deactivate_nba_ids").is_none()
                && e.get("account_id").is_none(),
            "defaults are left out, as the original's calculator does: {e}"
        );
        assert_eq!(e["context"]["hash"].as_str().unwrap().len(), 64);
        let d = create_delete_event("optimization", "calc", &target, &["nba_1".into()], Map::new());
        let d = serde_json::to_value(d).unwrap();
        assert_eq!(d["create_nba"], json!(false));
        assert_eq!(d["deactivate_nba_ids"], json!(["nba_1"]));
    }

    #[test]
    fn the_context_hash_is_sha256_of_compact_json_with_sorted_keys() {
        // The original's hash: sha256 of `json.dumps(context, sort_keys=True, separators=(",", ":"))`,
        // here of `{"a":{"x":1,"y":2},"b":1}`, whatever order the keys arrive in.
        let expected = "babccc4807906b8cd636958f2fc1002a56b6684160e6aefa017e46eeea26666c";
        for text in [r#"{"b":1,"a":{"y":2,"x":1}}"#, r#"{"a":{"x":1,"y":2},"b":1}"#] {
            let context: Map<String, Value> = serde_json::from_str(text).unwrap();
            assert_eq!(context_hash(&context), expected, "{text}");
        }
    }
}
