//! `flat_data`: a flat JSON object whose keys are dotted paths (`result.call.call_classification`).
//! The metrics read a few of its keys; each is kept at ingest as the text ClickHouse's
//! `visitParamExtractRaw` sees, unquoted: absent → `None`; `""` → `""`; `null` → `"null"`; a string
//! → its unescaped text; a number or boolean → its JSON text. "Present" is then "not absent, not
//! `''`, not `'null'`" on both sources, whether the producer wrote `"k":"v"` or `"k": "v"`.

use serde_json::{Map, Value};

/// The `flat_data` keys the metrics read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `result.call.call_classification`
    CallClassification,
    /// `result.call.call_stage`
    CallStage,
    /// `result.load.load_status`
    LoadStatus,
    /// `result.carrier.carrier_qualification`
    CarrierQualification,
    /// `result.pricing.pricing_notes`
    PricingNotes,
    /// `result.carrier.carrier_end_state`
    CarrierEndState,
    /// `result.transfer.transfer_reason`
    TransferReason,
    /// `result.transfer.transfer_attempt`
    TransferAttempt,
    /// `result.pricing.agreed_upon_rate`
    AgreedUponRate,
    /// `result.load.reference_number`
    ReferenceNumber,
}

impl Field {
    /// Every field, in column order.
    pub const ALL: [Field; 10] = [
        Field::CallClassification,
        Field::CallStage,
        Field::LoadStatus,
        Field::CarrierQualification,
        Field::PricingNotes,
        Field::CarrierEndState,
        Field::TransferReason,
        Field::TransferAttempt,
        Field::AgreedUponRate,
        Field::ReferenceNumber,
    ];

    /// The key in `flat_data`.
    pub fn key(self) -> &'static str {
        match self {
            Field::CallClassification => "result.call.call_classification",
            Field::CallStage => "result.call.call_stage",
            Field::LoadStatus => "result.load.load_status",
            Field::CarrierQualification => "result.carrier.carrier_qualification",
            Field::PricingNotes => "result.pricing.pricing_notes",
            Field::CarrierEndState => "result.carrier.carrier_end_state",
            Field::TransferReason => "result.transfer.transfer_reason",
            Field::TransferAttempt => "result.transfer.transfer_attempt",
            Field::AgreedUponRate => "result.pricing.agreed_upon_rate",
            Field::ReferenceNumber => "result.load.reference_number",
        }
    }

    /// Its column in `calls_node_outputs`.
    pub fn column(self) -> &'static str {
        match self {
            Field::CallClassification => "f_call_classification",
            Field::CallStage => "f_call_stage",
            Field::LoadStatus => "f_load_status",
            Field::CarrierQualification => "f_carrier_qualification",
            Field::PricingNotes => "f_pricing_notes",
            Field::CarrierEndState => "f_carrier_end_state",
            Field::TransferReason => "f_transfer_reason",
            Field::TransferAttempt => "f_transfer_attempt",
            Field::AgreedUponRate => "f_agreed_upon_rate",
            Field::ReferenceNumber => "f_reference_number",
        }
    }
}

/// The text of `key` in a parsed `flat_data` object, as described in the module doc.
pub fn value_text(object: &Map<String, Value>, key: &str) -> Option<String> {
    Some(match object.get(key)? {
        Value::Null => "null".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Not flat; kept as JSON text like ClickHouse's raw extraction.
        other => other.to_string(),
    })
}

/// Whether a stored value counts as present (not absent, `''` or `'null'`).
pub fn present(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "null")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_clickhouse_sees_them() {
        let object: Map<String, Value> = serde_json::from_str(
            r#"{"result.call.call_classification": "success", "result.pricing.agreed_upon_rate": 1500,
                "result.load.reference_number": null, "result.call.call_stage": "", "x": "O'Brien \"q\""}"#,
        )
        .unwrap();
        assert_eq!(value_text(&object, Field::CallClassification.key()).as_deref(), Some("success"));
        assert_eq!(value_text(&object, Field::AgreedUponRate.key()).as_deref(), Some("1500"));
        assert_eq!(value_text(&object, Field::ReferenceNumber.key()).as_deref(), Some("null"));
        assert_eq!(value_text(&object, Field::CallStage.key()).as_deref(), Some(""));
        assert_eq!(value_text(&object, "x").as_deref(), Some("O'Brien \"q\""));
        assert_eq!(value_text(&object, Field::LoadStatus.key()), None);
        assert!(present(Some("1500")) && !present(Some("null")) && !present(Some("")) && !present(None));
    }
}
