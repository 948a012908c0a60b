//! The original's counting rules (FACTS.md, section 001), written once over a scope's
//! [`Profile`]: a source only groups its calls; every count, share, ratio and shape is made here,
//! so the embedded store and ClickHouse answer alike.

use serde::Serialize;
use tokio::sync::OnceCell;
use utoipa::ToSchema;

use crate::error::CallsError;
use crate::flat::Field;
use crate::profile::Profile;
use crate::query::{Cond, Scope, Sessions};

/// What a source of calls answers. The counting rules need only a scope's [`Profile`] and the
/// distinct load numbers; the rest serves the debug and node-output routes.
#[async_trait::async_trait]
pub trait CallSource: Send + Sync {
    /// The scope's calls, grouped (see [`Profile`]).
    async fn profile(&self, scope: &Scope) -> Result<Profile, CallsError>;

    /// Up to `limit` outputs of the scope's node whose run falls in its window, newest run first,
    /// each with its session (of the scope's organisation, in the window, not from an excluded
    /// number; runs without one are left out).
    async fn node_outputs(&self, scope: &Scope, limit: i64) -> Result<Vec<RawOutput>, CallsError>;

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

/// A node output as read for `/daily-node-outputs`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutput {
    /// Its run.
    pub run_id: String,
    /// The run's time (epoch ms).
    pub run_ms: i64,
    /// Its node's persistent id.
    pub node_persistent_id: String,
    /// The session's caller number.
    pub user_number: Option<String>,
    /// The session's duration in seconds.
    pub duration: Option<f64>,
    /// The `flat_data` text.
    pub flat_data: String,
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

/// Calls whose transfer reason is set and is not the carrier's asking (rule 18): how many and how
/// long, bucketed by outcome. Durations in hours; `…_percentage` fields are fractions (0–1) of
/// the calls or of their duration, as the original answers (0 where there are none).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WithoutCarrierAsked {
    /// Hours of these calls.
    pub total_duration_no_carrier_asked_for_transfer: f64,
    /// These calls.
    pub total_calls_no_carrier_asked_for_transfer: i64,
    /// Of them, runs with a non-convertible outcome (the 11 outcomes, `rate_too_high` apart).
    pub non_convertible_calls_count: i64,
    /// Their hours.
    pub non_convertible_calls_duration: f64,
    /// Runs classified `rate_too_high`.
    pub rate_too_high_calls_count: i64,
    /// Their hours.
    pub rate_too_high_calls_duration: f64,
    /// Runs classified `success` or `after_hours`.
    pub success_calls_count: i64,
    /// Their hours.
    pub success_calls_duration: f64,
    /// Runs classified `other`.
    pub other_calls_count: i64,
    /// Their hours.
    pub other_calls_duration: f64,
    /// `non_convertible_calls_count` over the calls.
    pub non_convertible_calls_percentage: f64,
    /// `rate_too_high_calls_count` over the calls.
    pub rate_too_high_calls_percentage: f64,
    /// `success_calls_count` over the calls.
    pub success_calls_percentage: f64,
    /// `other_calls_count` over the calls.
    pub other_calls_percentage: f64,
    /// Non-convertible hours over all hours.
    pub duration_non_convertible_calls_percentage: f64,
    /// `rate_too_high` hours over all hours.
    pub duration_rate_too_high_calls_percentage: f64,
    /// Success hours over all hours.
    pub duration_success_calls_percentage: f64,
    /// `other` hours over all hours.
    pub duration_other_calls_percentage: f64,
    /// Runs classified `alternate_equipment`.
    pub alternate_equipment_count: i64,
    /// Runs classified `caller_hung_up_no_explanation`.
    pub caller_hung_up_no_explanation_count: i64,
    /// Runs classified `load_not_ready`.
    pub load_not_ready_count: i64,
    /// Runs classified `load_past_due`.
    pub load_past_due_count: i64,
    /// Runs classified `covered`.
    pub covered_count: i64,
    /// Runs classified `carrier_not_qualified`.
    pub carrier_not_qualified_count: i64,
    /// Runs classified `alternate_date_or_time`.
    pub alternate_date_or_time_count: i64,
    /// Runs classified `user_declined_load`.
    pub user_declined_load_count: i64,
    /// Runs classified `checking_with_driver`.
    pub checking_with_driver_count: i64,
    /// Runs classified `carrier_cannot_see_reference_number`.
    pub carrier_cannot_see_reference_number_count: i64,
    /// Runs classified `caller_put_on_hold_assistant_hung_up`.
    pub caller_put_on_hold_assistant_hung_up_count: i64,
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

/// The counting rules over one source and scope: the scope's profile is asked of the source once,
/// however many rules are counted.
pub struct Metrics<'a> {
    source: &'a dyn CallSource,
    scope: &'a Scope,
    profile: OnceCell<Profile>,
}

impl<'a> Metrics<'a> {
    /// The rules over `source` in `scope`.
    pub fn new(source: &'a dyn CallSource, scope: &'a Scope) -> Self {
        Self { source, scope, profile: OnceCell::new() }
    }

    async fn profile(&self) -> Result<&Profile, CallsError> {
        self.profile.get_or_try_init(|| self.source.profile(self.scope)).await
    }

    async fn distribution(&self, field: Field) -> Result<Vec<(String, i64)>, CallsError> {
        Ok(self.profile().await?.distribution(field, &Cond::True))
    }

    /// Calls (with an output of the scope's node) and their summed duration in seconds.
    async fn calls(&self) -> Result<(i64, f64), CallsError> {
        Ok(self.profile().await?.calls(&Cond::True))
    }

    async fn count(&self, cond: Cond) -> Result<i64, CallsError> {
        Ok(self.profile().await?.count(&cond, Sessions::All))
    }

    /// Classified calls: runs whose output has a call classification (even an empty one).
    pub async fn classified_calls(&self) -> Result<i64, CallsError> {
        self.count(Cond::Has(Field::CallClassification)).await
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
        let reasons = self.profile().await?.distribution(Field::TransferReason, &attempts);
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
        let count = self.profile().await?.count(&cond, Sessions::WithNumber);
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
        let (_, seconds) = self.profile().await?.calls(&asked);
        Ok(DurationCarrierAsked { duration_carrier_asked_for_transfer: round2(seconds / 3600.0) })
    }

    /// Rule 18: among runs whose transfer reason is set and is not `CARRIER_ASKED_FOR_TRANSFER`
    /// (any case), their calls and hours, and runs (with their hours) per outcome bucket. A run
    /// counts once in a bucket, whichever of its outputs' classifications put it there.
    pub async fn without_carrier_asked(&self) -> Result<WithoutCarrierAsked, CallsError> {
        let eligible = Cond::all([
            Cond::Present(Field::TransferReason),
            !Cond::UpperEq(Field::TransferReason, "CARRIER_ASKED_FOR_TRANSFER"),
        ]);
        let profile = self.profile().await?;
        let (calls, seconds) = profile.calls(&eligible);
        let reasons = &NON_CONVERTIBLE[..11];
        let mut per_reason = [0i64; 11];
        // (runs, seconds) of: non-convertible, rate too high, success, other.
        let mut buckets = [(0i64, 0.0f64); 4];
        for (group, classes) in profile.by_values(&eligible, Field::CallClassification) {
            for (i, reason) in reasons.iter().enumerate() {
                if classes.contains(reason) {
                    per_reason[i] += group.runs;
                }
            }
            let hits = [
                classes.iter().any(|c| reasons.contains(c)),
                classes.contains("rate_too_high"),
                classes.contains("success") || classes.contains("after_hours"),
                classes.contains("other"),
            ];
            for (bucket, hit) in buckets.iter_mut().zip(hits) {
                if hit {
                    bucket.0 += group.runs;
                    bucket.1 += group.seconds;
                }
            }
        }
        let share = |part: f64, whole: f64| if whole == 0.0 { 0.0 } else { part / whole };
        let [nc, rth, success, other] = buckets;
        let of_calls = |runs: i64| share(runs as f64, calls as f64);
        let of_time = |s: f64| share(s, seconds);
        let hours = |s: f64| s / 3600.0;
        let count = |reason: &str| per_reason[reasons.iter().position(|r| *r == reason).unwrap_or_default()];
        Ok(WithoutCarrierAsked {
            total_duration_no_carrier_asked_for_transfer: hours(seconds),
            total_calls_no_carrier_asked_for_transfer: calls,
            non_convertible_calls_count: nc.0,
            non_convertible_calls_duration: hours(nc.1),
            rate_too_high_calls_count: rth.0,
            rate_too_high_calls_duration: hours(rth.1),
            success_calls_count: success.0,
            success_calls_duration: hours(success.1),
            other_calls_count: other.0,
            other_calls_duration: hours(other.1),
            non_convertible_calls_percentage: of_calls(nc.0),
            rate_too_high_calls_percentage: of_calls(rth.0),
            success_calls_percentage: of_calls(success.0),
            other_calls_percentage: of_calls(other.0),
            duration_non_convertible_calls_percentage: of_time(nc.1),
            duration_rate_too_high_calls_percentage: of_time(rth.1),
            duration_success_calls_percentage: of_time(success.1),
            duration_other_calls_percentage: of_time(other.1),
            alternate_equipment_count: count("alternate_equipment"),
            caller_hung_up_no_explanation_count: count("caller_hung_up_no_explanation"),
            load_not_ready_count: count("load_not_ready"),
            load_past_due_count: count("load_past_due"),
            covered_count: count("covered"),
            carrier_not_qualified_count: count("carrier_not_qualified"),
            alternate_date_or_time_count: count("alternate_date_or_time"),
            user_declined_load_count: count("user_declined_load"),
            checking_with_driver_count: count("checking_with_driver"),
            carrier_cannot_see_reference_number_count: count("carrier_cannot_see_reference_number"),
            caller_put_on_hold_assistant_hung_up_count: count("caller_put_on_hold_assistant_hung_up"),
        })
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
