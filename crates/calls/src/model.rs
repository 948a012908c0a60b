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
