//! The module's domain types: organisations, the call records fed to the embedded store, and the
//! answers' shapes (the original's field names).

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::flat::{self, Field};

/// An organisation whose calls are analysed and reported on.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Org {
    /// Row id.
    pub id: i64,
    /// The organisation id in the call data (`public_sessions.org_id`).
    pub org_id: String,
    /// Display name.
    pub name: String,
    /// The broker node whose outputs carry the call outcomes.
    pub node_persistent_id: String,
    /// IANA time zone of its days and its report schedule.
    pub timezone: String,
    /// Whether its reports are generated.
    pub is_active: bool,
    /// Caller numbers left out of every figure (test calls).
    pub excluded_numbers: Vec<String>,
    /// Created (RFC 3339).
    pub created_at: String,
}

/// One record of an ingest batch: a line of the newline-delimited JSON body.
#[derive(Debug, Clone, PartialEq)]
pub enum CallRecord {
    /// `public_runs(id, timestamp)`.
    Run {
        /// Run id.
        id: String,
        /// Epoch ms.
        ts: i64,
    },
    /// `public_sessions(run_id, org_id, user_number, duration, timestamp)`.
    Session {
        /// Its run.
        run_id: String,
        /// Organisation.
        org_id: String,
        /// Caller number (`''` when none).
        user_number: String,
        /// Seconds.
        duration: Option<f64>,
        /// Epoch ms.
        ts: i64,
    },
    /// `public_node_outputs(run_id, node_id, node_persistent_id, flat_data, timestamp)`.
    NodeOutput(NodeOutput),
    /// `public_nodes(id, org_id)`.
    Node {
        /// Node id.
        id: String,
        /// Organisation.
        org_id: String,
    },
}

/// A node output, with the fields the metrics read taken out of its `flat_data`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeOutput {
    /// Its id: given, or `<run_id>:<node_id>:` and a digest of its node, time and `flat_data`
    /// (the original's table has no id: a second output of a run is another row, and only an
    /// exact repeat is the same one).
    pub id: String,
    /// Its run.
    pub run_id: String,
    /// The node that wrote it.
    pub node_id: String,
    /// The node's persistent id.
    pub node_persistent_id: String,
    /// Epoch ms.
    pub ts: i64,
    /// The object as sent.
    pub flat_data: String,
    /// [`Field::ALL`]'s values, in order ([`flat::value_text`]).
    pub fields: Vec<Option<String>>,
}

impl NodeOutput {
    /// Takes the metric fields out of `flat_data`.
    pub fn new(
        id: Option<String>,
        run_id: String,
        node_id: String,
        node_persistent_id: String,
        ts: i64,
        flat_data: &Map<String, Value>,
    ) -> Self {
        Self {
            fields: Field::ALL.iter().map(|f| flat::value_text(flat_data, f.key())).collect(),
            flat_data: Value::Object(flat_data.clone()).to_string(),
            id: id.unwrap_or_else(|| {
                use sha2::{Digest as _, Sha256};
                let text = Value::Object(flat_data.clone()).to_string();
                let digest = Sha256::digest(format!("{node_persistent_id}\n{ts}\n{text}").as_bytes());
                let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("{run_id}:{node_id}:{short}")
            }),
            run_id,
            node_id,
            node_persistent_id,
            ts,
        }
    }
}

/// What an ingest batch did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct IngestSummary {
    /// Lines read.
    pub lines: u64,
    /// Runs written (new or changed).
    pub runs: u64,
    /// Sessions written.
    pub sessions: u64,
    /// Node outputs written.
    pub node_outputs: u64,
    /// Nodes written.
    pub nodes: u64,
}

/// A node output as `/daily-node-outputs` shows it: the run, the session and the `flat_data`
/// fields a new client looks at first (`null` when the key is absent; numbers as their text).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NodeOutputRow {
    /// Its run.
    pub run_id: String,
    /// The run's time (RFC 3339, UTC).
    pub run_timestamp: String,
    /// Its node's persistent id.
    pub node_persistent_id: String,
    /// The caller's number (`null` when the call has none).
    pub user_number: Option<String>,
    /// The call's length in whole seconds.
    pub duration_seconds: Option<i64>,
    /// `result.metadata.processing_timestamp`.
    pub processing_timestamp: Option<String>,
    /// `result.call.call_classification`.
    pub call_classification: Option<String>,
    /// `result.call.call_stage`.
    pub call_stage: Option<String>,
    /// `result.call.notes`.
    pub call_notes: Option<String>,
    /// `result.transfer.transfer_attempt`.
    pub transfer_attempt: Option<String>,
    /// `result.transfer.transfer_reason`.
    pub transfer_reason: Option<String>,
    /// `result.transfer.transfer_success`.
    pub transfer_success: Option<String>,
    /// `result.load.load_status`.
    pub load_status: Option<String>,
    /// `result.load.reference_number`.
    pub reference_number: Option<String>,
    /// `result.carrier.carrier_name`.
    pub carrier_name: Option<String>,
    /// `result.carrier.carrier_mc`.
    pub carrier_mc: Option<String>,
    /// `result.carrier.carrier_qualification`.
    pub carrier_qualification: Option<String>,
    /// `result.carrier.carrier_end_state`.
    pub carrier_end_state: Option<String>,
    /// `result.pricing.pricing_notes`.
    pub pricing_notes: Option<String>,
    /// `result.pricing.agreed_upon_rate`.
    pub agreed_upon_rate: Option<String>,
    /// The whole `flat_data` object (`null` when not asked for; `{"_raw": text}` if it is not JSON).
    pub flat_data: Option<Value>,
}

impl NodeOutputRow {
    /// The row of `raw`, with its `flat_data` object when `include_flat_data`.
    pub fn new(raw: crate::metrics::RawOutput, include_flat_data: bool) -> Self {
        let parsed: Option<Map<String, Value>> = serde_json::from_str(&raw.flat_data).ok();
        let empty = Map::new();
        let object = parsed.as_ref().unwrap_or(&empty);
        let get = |key: &str| flat::value_text(object, key);
        Self {
            run_timestamp: chrono::DateTime::from_timestamp_millis(raw.run_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                .unwrap_or_default(),
            user_number: raw.user_number.filter(|n| !n.is_empty()),
            duration_seconds: raw.duration.map(|d| d.trunc() as i64),
            processing_timestamp: get("result.metadata.processing_timestamp"),
            call_classification: get(Field::CallClassification.key()),
            call_stage: get(Field::CallStage.key()),
            call_notes: get("result.call.notes"),
            transfer_attempt: get(Field::TransferAttempt.key()),
            transfer_reason: get(Field::TransferReason.key()),
            transfer_success: get("result.transfer.transfer_success"),
            load_status: get(Field::LoadStatus.key()),
            reference_number: get(Field::ReferenceNumber.key()),
            carrier_name: get("result.carrier.carrier_name"),
            carrier_mc: get("result.carrier.carrier_mc"),
            carrier_qualification: get(Field::CarrierQualification.key()),
            carrier_end_state: get(Field::CarrierEndState.key()),
            pricing_notes: get(Field::PricingNotes.key()),
            agreed_upon_rate: get(Field::AgreedUponRate.key()),
            flat_data: include_flat_data.then(|| match parsed {
                Some(object) => Value::Object(object),
                None => serde_json::json!({"_raw": raw.flat_data}),
            }),
            run_id: raw.run_id,
            node_persistent_id: raw.node_persistent_id,
        }
    }
}
