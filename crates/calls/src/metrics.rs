//! The original's counting rules (FACTS.md, section 001), written once over a [`CallSource`]:
//! each source only counts distinct runs; every share, ratio and shape is made here, so the
//! embedded store and ClickHouse answer alike.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::OnceCell;
use utoipa::ToSchema;

use crate::error::CallsError;
use crate::flat::Field;
use crate::query::{Cond, Scope, Sessions};

/// What a source of calls can count. Every count is of distinct runs in `scope`.
#[async_trait::async_trait]
pub trait CallSource: Send + Sync {
    /// Runs per present value of `field` among node outputs meeting `cond`.
    async fn distribution(
        &self,
        scope: &Scope,
        field: Field,
        cond: &Cond,
    ) -> Result<Vec<(String, i64)>, CallsError>;

    /// Runs with a node output meeting `cond`, drawing on `sessions`.
    async fn count(&self, scope: &Scope, cond: &Cond, sessions: Sessions) -> Result<i64, CallsError>;

    /// Calls with a node output meeting `cond`, and the sum of their durations in seconds
    /// (each distinct run and duration once).
    async fn sessions_duration(&self, scope: &Scope, cond: &Cond) -> Result<(i64, f64), CallsError>;

    /// The distinct present values of `field`, sorted.
    async fn distinct_values(&self, scope: &Scope, field: Field) -> Result<Vec<String>, CallsError>;

    /// The columns of one of the four source tables (`public_runs`, …): name and type.
    async fn describe(&self, table: SourceTable) -> Result<Vec<(String, String)>, CallsError>;

    /// Node outputs of `node_persistent_id` since `since_ms`.
    async fn node_output_count(&self, node_persistent_id: &str, since_ms: i64) -> Result<i64, CallsError>;

    /// Per organisation (of the sessions), runs with an output of `node_persistent_id` since
    /// `since_ms`, most first.
    async fn node_orgs(
        &self,
        node_persistent_id: &str,
        since_ms: i64,
    ) -> Result<Vec<(String, i64)>, CallsError>;

    /// `"clickhouse"` or `"embedded"`.
    fn kind(&self) -> &'static str;
}

/// The original's four tables, the only ones the debug route describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceTable {
    /// `public_runs`.
    Runs,
    /// `public_sessions`.
    Sessions,
    /// `public_node_outputs`.
    NodeOutputs,
    /// `public_nodes`.
    Nodes,
}

impl SourceTable {
    /// The table named `name`, if it is one of the four.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "public_runs" => Some(Self::Runs),
            "public_sessions" => Some(Self::Sessions),
            "public_node_outputs" => Some(Self::NodeOutputs),
            "public_nodes" => Some(Self::Nodes),
            _ => None,
        }
    }

    /// Its ClickHouse name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Runs => "public_runs",
            Self::Sessions => "public_sessions",
            Self::NodeOutputs => "public_node_outputs",
            Self::Nodes => "public_nodes",
        }
    }
}

/// `part` × 100 / `whole`, 2 decimals; 0 when `whole` is 0.
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    round2(part as f64 * 100.0 / whole as f64)
}

/// Rounded to 2 decimals as the original's Python `round(x, 2)`: on the exact binary value, an
/// exact half to even (so 0.175, stored just below, is 0.17). Rust's formatting rounds the same way.
pub fn round2(x: f64) -> f64 {
    format!("{x:.2}").parse().unwrap_or(x)
}

/// Ordered by count (descending), then value, with each value's share of the total.
fn shares(mut rows: Vec<(String, i64)>) -> Vec<(String, i64, f64)> {
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let total: i64 = rows.iter().map(|r| r.1).sum();
    rows.into_iter().map(|(v, c)| (v, c, percent(c, total))).collect()
}

macro_rules! breakdown {
    ($name:ident, $field:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
        pub struct $name {
            /// The value.
            pub $field: String,
            /// Distinct runs with it.
            pub count: i64,
            /// Its share of the counts, in percent (2 decimals).
            pub percentage: f64,
        }

        impl $name {
            fn from_shares(rows: Vec<(String, i64)>) -> Vec<Self> {
                shares(rows)
                    .into_iter()
                    .map(|($field, count, percentage)| Self { $field, count, percentage })
                    .collect()
            }
        }
    };
}

breakdown!(CallStageShare, call_stage, "Runs per call stage.");
breakdown!(CallClassificationShare, call_classification, "Runs per call classification.");
breakdown!(CarrierQualificationShare, carrier_qualification, "Runs per carrier qualification.");
breakdown!(PricingShare, pricing_notes, "Runs per pricing outcome.");
breakdown!(CarrierEndStateShare, carrier_end_state, "Runs per carrier end state.");

/// Runs per load status.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LoadStatusShare {
    /// The status.
    pub load_status: String,
    /// Distinct runs with it.
    pub count: i64,
    /// Runs with any load status.
    pub total_calls: i64,
    /// `count` × 100 / `total_calls`.
    pub load_status_percentage: f64,
}

/// Loads not found.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LoadNotFound {
    /// Runs whose load status is `NOT_FOUND`.
    pub load_not_found_count: i64,
    /// Runs with any load status.
    pub total_calls: i64,
    /// Percent.
    pub load_not_found_percentage: f64,
}

/// Carrier-asked transfers over all transfer attempts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransferOverAttempts {
    /// Runs whose transfer reason is `CARRIER_ASKED_FOR_TRANSFER`.
    pub carrier_asked_count: i64,
    /// Runs with a transfer attempt and a reason other than `NO_TRANSFER_INVOLVED`.
    pub total_transfer_attempts: i64,
    /// Percent.
    pub carrier_asked_percentage: f64,
}

/// Carrier-asked transfers over all classified calls.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransferOverCalls {
    /// Runs whose transfer reason is exactly `CARRIER_ASKED_FOR_TRANSFER`.
    pub carrier_asked_count: i64,
    /// Classified calls.
    pub total_call_attempts: i64,
    /// Percent.
    pub carrier_asked_percentage: f64,
}

/// Calls transferred for booking after a price agreement.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TransferredForBooking {
    /// Runs with a transfer attempt, an agreed rate and an agreement reached.
    pub successfully_transferred_for_booking_count: i64,
    /// Runs with all three keys.
    pub total_calls: i64,
    /// Percent.
    pub successfully_transferred_for_booking_percentage: f64,
}

/// Non-convertible calls.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NonConvertible {
    /// Runs classified with one of the non-convertible outcomes.
    pub non_convertible_calls_count: i64,
    /// Classified calls.
    pub total_calls: i64,
    /// Percent.
    pub non_convertible_calls_percentage: f64,
}

/// Calls whose carrier was not qualified.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CarrierNotQualified {
    /// Runs classified `carrier_not_qualified`.
    pub carrier_not_qualified_count: i64,
    /// Classified calls.
    pub total_calls: i64,
    /// Percent.
    pub carrier_not_qualified_percentage: f64,
}

/// Call volume and talk time.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallsAndDuration {
    /// Calls.
    pub total_calls: i64,
    /// Their summed duration, in **hours** (as the original's endpoint answers).
    pub total_duration: f64,
    /// Minutes per call, 2 decimals (0 without calls).
    pub avg_minutes_per_call: f64,
}

/// Talk time of carrier-asked transfers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DurationCarrierAsked {
    /// Hours of the calls whose transfer reason is `CARRIER_ASKED_FOR_TRANSFER` (any case).
    pub duration_carrier_asked_for_transfer: f64,
}

/// Distinct loads asked about.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UniqueLoads {
    /// Distinct load reference numbers.
    pub number_of_unique_loads: i64,
    /// Calls.
    pub total_calls_count: i64,
    /// Calls per distinct load (the original's name), 2 decimals; 0 without loads.
    pub number_of_unique_loads_percentage: f64,
}

/// The legacy non-convertible share.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LegacyNonConvertible {
    /// Classified calls whose load was covered or past due, whose carrier could not or would not
    /// take it, or that were too expensive.
    pub non_convertible_calls_count: i64,
    /// Calls.
    pub total_calls_count: i64,
    /// Percent.
    pub non_convertible_calls_percentage: f64,
}

/// The non-convertible outcomes, `carrier_not_qualified` first.
pub const NON_CONVERTIBLE: [&str; 12] = [
    "carrier_not_qualified",
    "caller_hung_up_no_explanation",
    "user_declined_load",
    "carrier_cannot_see_reference_number",
    "alternate_equipment",
    "load_not_ready",
    "load_past_due",
    "covered",
    "alternate_date_or_time",
    "checking_with_driver",
    "caller_put_on_hold_assistant_hung_up",
    "rate_too_high",
];

const AGREEMENT_REACHED: [&str; 2] =
    ["AGREEMENT_REACHED_WITH_NEGOTIATION", "AGREEMENT_REACHED_WITHOUT_NEGOTIATION"];

/// The counting rules over one source and scope. The counts several rules share (classified
/// calls, calls and their duration, a field's distribution) are asked of the source once.
pub struct Metrics<'a> {
    source: &'a dyn CallSource,
    scope: &'a Scope,
    classified: OnceCell<i64>,
    calls: OnceCell<(i64, f64)>,
    distributions: Mutex<HashMap<Field, Vec<(String, i64)>>>,
}

impl<'a> Metrics<'a> {
    /// The rules over `source` in `scope`.
    pub fn new(source: &'a dyn CallSource, scope: &'a Scope) -> Self {
        Self {
            source,
            scope,
            classified: OnceCell::new(),
            calls: OnceCell::new(),
            distributions: Mutex::new(HashMap::new()),
        }
    }

    async fn distribution(&self, field: Field) -> Result<Vec<(String, i64)>, CallsError> {
        if let Some(rows) = self.distributions.lock().expect("metrics lock").get(&field) {
            return Ok(rows.clone());
        }
        let rows = self.source.distribution(self.scope, field, &Cond::True).await?;
        self.distributions.lock().expect("metrics lock").insert(field, rows.clone());
        Ok(rows)
    }

    /// Calls (with an output of the scope's node) and their summed duration in seconds.
    async fn calls(&self) -> Result<(i64, f64), CallsError> {
        self.calls.get_or_try_init(|| self.source.sessions_duration(self.scope, &Cond::True)).await.copied()
    }

    async fn count(&self, cond: Cond) -> Result<i64, CallsError> {
        self.source.count(self.scope, &cond, Sessions::All).await
    }

    /// Classified calls: runs whose output has a call classification (even an empty one).
    pub async fn classified_calls(&self) -> Result<i64, CallsError> {
        self.classified.get_or_try_init(|| self.count(Cond::Has(Field::CallClassification))).await.copied()
    }

    /// Rule 1.
    pub async fn call_stage(&self) -> Result<Vec<CallStageShare>, CallsError> {
        Ok(CallStageShare::from_shares(self.distribution(Field::CallStage).await?))
    }

    /// Rule 2.
    pub async fn call_classification(&self) -> Result<Vec<CallClassificationShare>, CallsError> {
        Ok(CallClassificationShare::from_shares(self.distribution(Field::CallClassification).await?))
    }

    /// Rule 3: successes over all classified values; `None` without any.
    pub fn success_rate(classification: &[CallClassificationShare]) -> Option<f64> {
        if classification.is_empty() {
            return None;
        }
        let total: i64 = classification.iter().map(|c| c.count).sum();
        let success: i64 =
            classification.iter().filter(|c| c.call_classification == "success").map(|c| c.count).sum();
        Some(percent(success, total))
    }

    /// Rule 4.
    pub async fn load_status(&self) -> Result<Vec<LoadStatusShare>, CallsError> {
        let rows = shares(self.distribution(Field::LoadStatus).await?);
        let total: i64 = rows.iter().map(|r| r.1).sum();
        Ok(rows
            .into_iter()
            .map(|(load_status, count, _)| LoadStatusShare {
                load_status,
                count,
                total_calls: total,
                load_status_percentage: percent(count, total),
            })
            .collect())
    }

    /// Rule 5; `None` without any load status.
    pub async fn load_not_found(&self) -> Result<Option<LoadNotFound>, CallsError> {
        let rows = self.distribution(Field::LoadStatus).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let total: i64 = rows.iter().map(|r| r.1).sum();
        let count = rows.iter().filter(|r| r.0 == "NOT_FOUND").map(|r| r.1).sum();
        Ok(Some(LoadNotFound {
            load_not_found_count: count,
            total_calls: total,
            load_not_found_percentage: percent(count, total),
        }))
    }

    /// Rule 6.
    pub async fn carrier_qualification(&self) -> Result<Vec<CarrierQualificationShare>, CallsError> {
        Ok(CarrierQualificationShare::from_shares(self.distribution(Field::CarrierQualification).await?))
    }

    /// Rule 7.
    pub async fn pricing(&self) -> Result<Vec<PricingShare>, CallsError> {
        Ok(PricingShare::from_shares(self.distribution(Field::PricingNotes).await?))
    }

    /// Rule 8.
    pub async fn carrier_end_state(&self) -> Result<Vec<CarrierEndStateShare>, CallsError> {
        Ok(CarrierEndStateShare::from_shares(self.distribution(Field::CarrierEndState).await?))
    }

    /// Rule 9; `None` when no transfer attempt was the carrier's asking.
    pub async fn transfer_over_attempts(&self) -> Result<Option<TransferOverAttempts>, CallsError> {
        let attempts = Cond::all([
            Cond::Present(Field::TransferReason),
            !Cond::UpperEq(Field::TransferReason, "NO_TRANSFER_INVOLVED"),
            Cond::UpperEq(Field::TransferAttempt, "YES"),
        ]);
        let reasons = self.source.distribution(self.scope, Field::TransferReason, &attempts).await?;
        let Some(asked) = reasons.iter().find(|r| r.0 == "CARRIER_ASKED_FOR_TRANSFER").map(|r| r.1) else {
            return Ok(None);
        };
        let total: i64 = reasons.iter().map(|r| r.1).sum();
        Ok(Some(TransferOverAttempts {
            carrier_asked_count: asked,
            total_transfer_attempts: total,
            carrier_asked_percentage: percent(asked, total),
        }))
    }

    /// Rule 10.
    pub async fn transfer_over_calls(&self) -> Result<TransferOverCalls, CallsError> {
        let asked = self.count(Cond::Eq(Field::TransferReason, "CARRIER_ASKED_FOR_TRANSFER")).await?;
        let total = self.classified_calls().await?;
        Ok(TransferOverCalls {
            carrier_asked_count: asked,
            total_call_attempts: total,
            carrier_asked_percentage: percent(asked, total),
        })
    }

    /// Rule 11.
    pub async fn transferred_for_booking(&self) -> Result<TransferredForBooking, CallsError> {
        let base = || {
            vec![
                Cond::Has(Field::TransferAttempt),
                Cond::Has(Field::AgreedUponRate),
                Cond::Has(Field::PricingNotes),
            ]
        };
        let total = self.count(Cond::all(base())).await?;
        let mut success = base();
        success.extend([
            Cond::Eq(Field::TransferAttempt, "YES"),
            Cond::Present(Field::AgreedUponRate),
            Cond::In(Field::PricingNotes, &AGREEMENT_REACHED),
        ]);
        let count = self.count(Cond::all(success)).await?;
        Ok(TransferredForBooking {
            successfully_transferred_for_booking_count: count,
            total_calls: total,
            successfully_transferred_for_booking_percentage: percent(count, total),
        })
    }

    /// Rules 12 and 13: with or without `carrier_not_qualified` among the outcomes.
    pub async fn non_convertible(
        &self,
        with_carrier_not_qualified: bool,
    ) -> Result<NonConvertible, CallsError> {
        let outcomes: &'static [&'static str] =
            if with_carrier_not_qualified { &NON_CONVERTIBLE } else { &NON_CONVERTIBLE[1..] };
        let cond = Cond::In(Field::CallClassification, outcomes);
        let count = self.source.count(self.scope, &cond, Sessions::WithNumber).await?;
        let total = self.classified_calls().await?;
        Ok(NonConvertible {
            non_convertible_calls_count: count,
            total_calls: total,
            non_convertible_calls_percentage: percent(count, total),
        })
    }

    /// Rule 15.
    pub async fn carrier_not_qualified(&self) -> Result<CarrierNotQualified, CallsError> {
        let count = self.count(Cond::Eq(Field::CallClassification, "carrier_not_qualified")).await?;
        let total = self.classified_calls().await?;
        Ok(CarrierNotQualified {
            carrier_not_qualified_count: count,
            total_calls: total,
            carrier_not_qualified_percentage: percent(count, total),
        })
    }

    /// Rule 14, the legacy share (counted in distinct runs, as every newer rule is).
    pub async fn legacy_non_convertible(&self) -> Result<LegacyNonConvertible, CallsError> {
        const END_STATES: [&str; 4] = [
            "CARRIER_OFFER_TOO_HIGH",
            "CARRIER_UNABLE_TO_MEET_PICKUP_DELIVERY_APPT",
            "CARRIER_UNABLE_TO_MEET_EQUIPMENT_REQ",
            "CARRIER_DID_NOT_WANT_LOAD",
        ];
        let cond = Cond::all([
            Cond::Present(Field::CallClassification),
            Cond::Any(vec![
                Cond::In(Field::LoadStatus, &["COVERED", "PAST_DUE"]),
                Cond::In(Field::CarrierEndState, &END_STATES),
                Cond::Eq(Field::CallClassification, "rate_too_high"),
            ]),
        ]);
        let count = self.count(cond).await?;
        let (calls, _) = self.calls().await?;
        Ok(LegacyNonConvertible {
            non_convertible_calls_count: count,
            total_calls_count: calls,
            non_convertible_calls_percentage: percent(count, calls),
        })
    }

    /// Rule 17: the distinct load reference numbers, sorted.
    pub async fn unique_load_list(&self) -> Result<Vec<String>, CallsError> {
        let mut loads = self.source.distinct_values(self.scope, Field::ReferenceNumber).await?;
        loads.sort();
        Ok(loads)
    }

    /// Rule 17: distinct loads and calls per load.
    pub async fn unique_loads(&self) -> Result<UniqueLoads, CallsError> {
        let loads = self.unique_load_list().await?.len() as i64;
        let (calls, _) = self.calls().await?;
        Ok(UniqueLoads {
            number_of_unique_loads: loads,
            total_calls_count: calls,
            number_of_unique_loads_percentage: if loads == 0 {
                0.0
            } else {
                round2(calls as f64 / loads as f64)
            },
        })
    }

    /// Rule 19, in hours.
    pub async fn duration_carrier_asked(&self) -> Result<DurationCarrierAsked, CallsError> {
        let asked = Cond::UpperEq(Field::TransferReason, "CARRIER_ASKED_FOR_TRANSFER");
        let (_, seconds) = self.source.sessions_duration(self.scope, &asked).await?;
        Ok(DurationCarrierAsked { duration_carrier_asked_for_transfer: round2(seconds / 3600.0) })
    }

    /// Rule 16, the duration in hours.
    pub async fn calls_and_duration(&self) -> Result<CallsAndDuration, CallsError> {
        let (calls, seconds) = self.calls().await?;
        Ok(CallsAndDuration {
            total_calls: calls,
            total_duration: round2(seconds / 3600.0),
            avg_minutes_per_call: if calls == 0 { 0.0 } else { round2(seconds / calls as f64 / 60.0) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_ordered_and_rounded_and_a_zero_total_is_zero() {
        let rows = vec![("b".into(), 1), ("a".into(), 1), ("c".into(), 4)];
        let got = shares(rows);
        assert_eq!(got, vec![("c".into(), 4, 66.67), ("a".into(), 1, 16.67), ("b".into(), 1, 16.67)]);
        assert_eq!(percent(1, 0), 0.0);
        assert_eq!(percent(1, 8), 12.5);
        assert_eq!(round2(0.125), 0.12, "an exact half goes to the even neighbour");
        assert_eq!(round2(0.375), 0.38);
        assert_eq!(round2(630.0 / 3600.0), 0.17, "0.175 is stored just below the half");
        assert_eq!(round2(2.0 / 3.0 * 100.0), 66.67);
    }
}
