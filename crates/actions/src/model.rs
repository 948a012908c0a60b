//! Checked domain types of the NBA module: calculation events, NBAs, decisions.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sightline_platform::validate::ObjectChecker;
use sightline_platform::ApiError;
use utoipa::ToSchema;

/// NBA lifecycle states.
pub const NBA_STATUSES: [&str; 3] = ["new", "accepted", "rejected"];

/// A calculation event as the calculators send it (documentation and serialisation type; the
/// endpoint checks fields one by one with [`CalculationEvent::parse`]).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "event_id": "9f6849e6-6110-4bd8-8397-a8f9a6ec7d5a",
    "occurred_at": "2026-02-09T13:59:00Z",
    "source": "calculator.customer-segmentation.v1",
    "nba_definition_id": "def_42",
    "account_id": "acc_123",
    "enterprise_number": "0123456789",
    "contact_id": "con_456",
    "context": {"score": 0.92, "reason": "high upsell propensity"}
}))]
pub struct CalculationEvent {
    /// Unique id of the event (UUID); a repeat has no second effect.
    pub event_id: String,
    /// When the calculator produced it (RFC 3339; without offset means UTC).
    pub occurred_at: String,
    /// Producing calculator, e.g. `calculator.income.v1`.
    pub source: String,
    /// NBA definition (what to propose), e.g. `optimization`.
    pub nba_definition_id: String,
    /// Client enterprise number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_number: Option<String>,
    /// Client account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// Contact person id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    /// `false` makes this a delete event: only `deactivate_nba_ids` are applied.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub create_nba: bool,
    /// NBAs to deactivate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deactivate_nba_ids: Vec<String>,
    /// Free-form calculator context, copied to the NBA.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

const EVENT_FIELDS: [&str; 10] = [
    "event_id",
    "occurred_at",
    "source",
    "nba_definition_id",
    "enterprise_number",
    "account_id",
    "contact_id",
    "create_nba",
    "deactivate_nba_ids",
    "context",
];

/// What an accepted event may carry at most.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Seconds `occurred_at` may lie past the server's clock.
    pub max_future_secs: i64,
    /// Bytes of JSON in `context`.
    pub max_context_bytes: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        Self { max_future_secs: 300, max_context_bytes: 64 * 1024 }
    }
}

impl CalculationEvent {
    /// Checks every field of a request body, reporting all bad fields at once; normalises the
    /// event id and time.
    pub fn parse(body: &Map<String, Value>, limits: &EventLimits) -> Result<(Self, DateTime<Utc>), ApiError> {
        let mut c = ObjectChecker::new(body);
        c.deny_unknown(&EVENT_FIELDS);
        let event_id = c.required_uuid("event_id");
        let occurred_at = c.datetime("occurred_at", true);
        let source = c.required_str("source", 256);
        let nba_definition_id = c.required_str("nba_definition_id", 256);
        let enterprise_number = c.optional_str("enterprise_number", 64);
        let account_id = c.optional_str("account_id", 128);
        let contact_id = c.optional_str("contact_id", 128);
        let create_nba = c.bool_or("create_nba", true);
        let deactivate_nba_ids = c.string_list("deactivate_nba_ids");
        let context = c.object_or_empty("context");
        let latest = Utc::now() + chrono::Duration::seconds(limits.max_future_secs);
        if occurred_at.is_some_and(|at| at > latest) {
            c.error("occurred_at", format!("is more than {} s in the future", limits.max_future_secs));
        }
        let context_bytes = serde_json::to_vec(&context).map_or(usize::MAX, |v| v.len());
        if context_bytes > limits.max_context_bytes {
            c.error(
                "context",
                format!("is {context_bytes} bytes; at most {} are accepted", limits.max_context_bytes),
            );
        }
        let no_target = [&enterprise_number, &account_id, &contact_id].iter().all(|v| v.is_none());
        let target_fields_ok = ["enterprise_number", "account_id", "contact_id"]
            .iter()
            .all(|f| matches!(body.get(*f), None | Some(Value::Null) | Some(Value::String(_))));
        if no_target && target_fields_ok {
            c.error(
                "enterprise_number",
                "At least one target identifier is required: enterprise_number, account_id or contact_id",
            );
        }
        c.finish()?;
        let (Some(event_id), Some(occurred_at), Some(source), Some(nba_definition_id)) =
            (event_id, occurred_at, source, nba_definition_id)
        else {
            unreachable!("finish() reports missing required fields")
        };
        let event = Self {
            event_id: event_id.hyphenated().to_string(),
            occurred_at: occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            source,
            nba_definition_id,
            enterprise_number,
            account_id,
            contact_id,
            create_nba,
            deactivate_nba_ids,
            context,
        };
        Ok((event, occurred_at))
    }

    /// The scope an NBA of this event belongs to: definition plus the exact target identifiers
    /// (absent ones included, so they compare equal).
    pub fn scope_key(&self) -> String {
        serde_json::json!([self.nba_definition_id, self.enterprise_number, self.account_id, self.contact_id])
            .to_string()
    }
}

/// An NBA as `GET /api/v1/nba` lists it (the original's item shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NbaItem {
    /// `nba_` + 10 hex.
    pub id: String,
    /// Definition.
    pub nba_definition_id: String,
    /// Client enterprise number.
    pub enterprise_number: Option<String>,
    /// Client account id.
    pub account_id: Option<String>,
    /// Contact id.
    pub contact_id: Option<String>,
    /// Whether it is still current.
    pub active: bool,
    /// `new`, `accepted` or `rejected`.
    pub status: String,
    /// Priority (0 by default).
    pub priority: i64,
    /// Calculator context.
    #[schema(value_type = Object)]
    pub context: Value,
}

/// An NBA with its timestamps and origin (`GET /api/v1/nba/{id}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NbaDetail {
    /// The listed fields.
    #[serde(flatten)]
    pub item: NbaItem,
    /// Event that created it.
    pub source_event_id: String,
    /// When the calculator saw the reason for it (RFC 3339).
    pub occurred_at: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

/// A decision on an NBA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The client took it up.
    Accepted,
    /// The client declined.
    Rejected,
}

impl Decision {
    /// The status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Rejected => "rejected",
        }
    }
}

/// Body of `POST /api/v1/nba/{id}/actions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "accepted", "comment": "called the client"}))]
pub struct ActionRequest {
    /// `accepted` or `rejected`.
    pub status: Decision,
    /// When it was decided (RFC 3339; default now).
    #[serde(default)]
    pub action_at: Option<String>,
    /// Note, at most 1000 characters.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A recorded decision (the original's response shape).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionRecord {
    /// Event-log id, `evt_` + 10 hex.
    pub event_id: String,
    /// The NBA.
    pub nba_id: String,
    /// `accepted` or `rejected`.
    pub status: String,
    /// Who decided.
    pub acted_by: Option<String>,
    /// When (RFC 3339).
    pub action_at: String,
}

/// One entry of an NBA's history.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EventLogEntry {
    /// `evt_` + 10 hex.
    pub id: String,
    /// The NBA.
    pub nba_id: String,
    /// Status recorded (`new` for the calculation, `accepted` or `rejected` for a decision).
    pub status: String,
    /// Details: source and occurred_at for calculations, comment for decisions.
    #[schema(value_type = Object)]
    pub context: Value,
    /// Who (null for calculator events).
    pub acted_by: Option<String>,
    /// When (RFC 3339).
    pub action_at: String,
    /// Request that caused it.
    pub request_id: Option<String>,
    /// Calculation event that caused it, if any.
    pub event_id: Option<String>,
}

/// `nba_` / `evt_` + 10 random hex characters, as the original formats ids.
pub fn short_id(prefix: &str) -> String {
    use rand::Rng as _;
    let n: u64 = rand::thread_rng().gen::<u64>() & 0xff_ffff_ffff;
    format!("{prefix}{n:010x}")
}
