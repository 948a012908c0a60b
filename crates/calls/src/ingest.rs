//! Reading an ingest batch: newline-delimited JSON, one record per line, each with a `type`
//! (`run`, `session`, `node_output`, `node`) and the original's column names. Every line is
//! checked before anything is written: one bad line refuses the whole batch, naming each bad
//! line, and nothing is applied.

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};
use sightline_platform::error::FieldError;

use crate::model::{CallRecord, NodeOutput};

/// Most lines reported when a batch is refused.
const MAX_REPORTED: usize = 50;

/// The records of `body`, or every bad line (up to 50) named `line N` with what is wrong.
pub fn parse_batch(body: &str) -> Result<Vec<CallRecord>, Vec<FieldError>> {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in body.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(record) => records.push(record),
            Err(message) if errors.len() < MAX_REPORTED => {
                errors.push(FieldError::new(format!("line {}", i + 1), message));
            }
            Err(_) => {}
        }
    }
    if records.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("body", "no records: send one JSON object per line"));
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(errors)
    }
}

/// One line's record, or what is wrong with it.
pub fn parse_line(line: &str) -> Result<CallRecord, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = value else { return Err("not a JSON object".into()) };
    let kind = o
        .get("type")
        .and_then(Value::as_str)
        .ok_or("`type` is missing (run, session, node_output or node)")?;
    let allowed: &[&str] = match kind {
        "run" => &["type", "id", "timestamp"],
        "session" => &["type", "run_id", "org_id", "user_number", "duration", "timestamp"],
        "node_output" => &["type", "id", "run_id", "node_id", "node_persistent_id", "flat_data", "timestamp"],
        "node" => &["type", "id", "org_id"],
        other => return Err(format!("`type` {other:?} is not run, session, node_output or node")),
    };
    if let Some(unknown) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("`{unknown}` is not a field of a {kind}"));
    }
    Ok(match kind {
        "run" => CallRecord::Run { id: text(&o, "id")?, ts: timestamp(&o)? },
        "session" => CallRecord::Session {
            run_id: text(&o, "run_id")?,
            org_id: text(&o, "org_id")?,
            user_number: match o.get("user_number") {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return Err("`user_number` must be a string".into()),
            },
            duration: match o.get("duration") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_f64()
                        .filter(|d| d.is_finite() && *d >= 0.0)
                        .ok_or("`duration` must be seconds ≥ 0")?,
                ),
            },
            ts: timestamp(&o)?,
        },
        "node" => CallRecord::Node { id: text(&o, "id")?, org_id: text(&o, "org_id")? },
        _ => {
            let flat = match o.get("flat_data") {
                Some(Value::Object(m)) => m.clone(),
                Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                    Ok(Value::Object(m)) => m,
                    _ => return Err("`flat_data` must be a JSON object (or its text)".into()),
                },
                _ => return Err("`flat_data` must be a JSON object (or its text)".into()),
            };
            let id = match o.get("id") {
                None | Some(Value::Null) => None,
                Some(_) => Some(text(&o, "id")?),
            };
            CallRecord::NodeOutput(NodeOutput::new(
                id,
                text(&o, "run_id")?,
                text(&o, "node_id")?,
                text(&o, "node_persistent_id")?,
                timestamp(&o)?,
                &flat,
            ))
        }
    })
}

/// A required, non-empty string of at most 200 characters.
fn text(o: &Map<String, Value>, key: &str) -> Result<String, String> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 200 => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!("`{key}` must be 1 to 200 characters")),
        Some(_) => Err(format!("`{key}` must be a string")),
        None => Err(format!("`{key}` is missing")),
    }
}

/// `timestamp`: RFC 3339, ClickHouse's `YYYY-MM-DD hh:mm:ss[.fff]` (UTC), or epoch seconds.
fn timestamp(o: &Map<String, Value>) -> Result<i64, String> {
    let value = o.get("timestamp").ok_or("`timestamp` is missing")?;
    parse_timestamp(value).ok_or_else(|| {
        format!("`timestamp` {value} is not a time (RFC 3339, `YYYY-MM-DD hh:mm:ss` UTC, or epoch seconds)")
    })
}

/// A time as epoch ms.
pub fn parse_timestamp(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|s| s.is_finite() && (0.0..1e11).contains(s))
            .map(|s| (s * 1000.0).round() as i64),
        Value::String(s) => {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t.timestamp_millis());
            }
            ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| t.and_utc().timestamp_millis())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_read_whole_or_refused_naming_each_bad_line() {
        let good = concat!(
            r#"{"type":"run","id":"r1","timestamp":"2025-12-15 14:00:00"}"#,
            "\n",
            r#"{"type":"session","run_id":"r1","org_id":"o1","user_number":"+1555","duration":90,"timestamp":1765807200}"#,
            "\n",
            "\n",
            r#"{"type":"node_output","run_id":"r1","node_id":"n1","node_persistent_id":"p1","flat_data":"{\"result.call.call_classification\": \"success\"}","timestamp":"2025-12-15T14:00:01Z"}"#,
            "\n",
            r#"{"type":"node","id":"n1","org_id":"o1"}"#,
        );
        let records = parse_batch(good).unwrap();
        assert_eq!(records.len(), 4);
        assert_eq!(records[0], CallRecord::Run { id: "r1".into(), ts: 1_765_807_200_000 });
        let CallRecord::NodeOutput(o) = &records[2] else { panic!() };
        assert!(o.id.starts_with("r1:n1:"), "{}", o.id);
        assert_eq!(o.fields[0].as_deref(), Some("success"));

        let bad = concat!(
            r#"{"type":"run","id":"r1","timestamp":"2025-12-15 14:00:00"}"#,
            "\n",
            r#"{"type":"run","id":"r2","timestamp":"yesterday"}"#,
            "\n",
            "not json\n",
            r#"{"type":"call","id":"x"}"#,
            "\n",
            r#"{"type":"node","id":"n1","org_id":"o1","extra":1}"#,
        );
        let errors = parse_batch(bad).unwrap_err();
        let lines: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(lines, ["line 2", "line 3", "line 4", "line 5"]);
        assert!(errors[0].message.contains("timestamp"), "{errors:?}");
        assert!(errors[3].message.contains("extra"), "{errors:?}");
    }
}
