//! `sightline calls sample`: realistic, deterministic call data for demos, tests and the
//! benchmark: several organisations (each with its broker node, zone and test number), weeks of
//! days, calls in business hours with the original's classification, stage, transfer, load,
//! carrier and pricing values at plausible frequencies, and a few test calls to exclude.

use std::io::Write;

use chrono::{Duration, NaiveDate, TimeZone as _};
use chrono_tz::Tz;
use rand::distributions::{Distribution as _, WeightedIndex};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Map, Value};

/// An organisation of the sample.
#[derive(Debug, Clone)]
pub struct SampleOrg {
    /// Its id in the call data.
    pub org_id: &'static str,
    /// Name.
    pub name: &'static str,
    /// Broker node persistent id.
    pub node_persistent_id: &'static str,
    /// Zone.
    pub timezone: &'static str,
    /// The test number its calls sometimes come from.
    pub test_number: &'static str,
}

/// The sample's organisations.
pub const ORGS: [SampleOrg; 3] = [
    SampleOrg {
        org_id: "01951f56-8c6e-7a93-a971-3d06a81a1ab0",
        name: "Paul Logistics",
        node_persistent_id: "019b099d-77fd-7e09-9d2b-cd4c476a0a19",
        timezone: "America/Chicago",
        test_number: "+19259898099",
    },
    SampleOrg {
        org_id: "0195a2c4-1d3e-7f00-b1a2-5e6f7a8b9c0d",
        name: "Summit Freight",
        node_persistent_id: "019b1a2b-3c4d-7e5f-8a9b-0c1d2e3f4a5b",
        timezone: "America/New_York",
        test_number: "+12125550100",
    },
    SampleOrg {
        org_id: "0195b3d5-2e4f-7011-c2b3-6f7a8b9c0d1e",
        name: "Pacific Haulers",
        node_persistent_id: "019b2b3c-4d5e-7f60-9b0c-1d2e3f4a5b6c",
        timezone: "America/Los_Angeles",
        test_number: "+14155550100",
    },
];

/// Classification, weight, and the stage a call with it reached.
const CLASSIFICATIONS: [(&str, u32, &str); 15] = [
    ("success", 15, "TRANSFER_SUCCEEDED"),
    ("carrier_not_qualified", 24, "CARRIER_QUALIFICATION"),
    ("rate_too_high", 12, "PRICING"),
    ("caller_hung_up_no_explanation", 10, "CALL_START"),
    ("user_declined_load", 6, "LOAD_DISCUSSION"),
    ("covered", 5, "LOAD_DISCUSSION"),
    ("load_not_ready", 3, "LOAD_DISCUSSION"),
    ("load_past_due", 2, "LOAD_DISCUSSION"),
    ("alternate_equipment", 3, "LOAD_DISCUSSION"),
    ("alternate_date_or_time", 2, "LOAD_DISCUSSION"),
    ("checking_with_driver", 4, "PRICING"),
    ("carrier_cannot_see_reference_number", 2, "LOAD_LOOKUP"),
    ("caller_put_on_hold_assistant_hung_up", 1, "CALL_START"),
    ("after_hours", 3, "CALL_START"),
    ("other", 8, "CALL_START"),
];

const LOAD_STATUSES: [(&str, u32); 4] = [("ACTIVE", 70), ("NOT_FOUND", 12), ("COVERED", 12), ("PAST_DUE", 6)];

/// What was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleSummary {
    /// Calls (runs).
    pub calls: u64,
    /// Lines written.
    pub lines: u64,
}

fn pick<'a>(rng: &mut StdRng, items: &'a [(&'a str, u32)]) -> &'a str {
    let index = WeightedIndex::new(items.iter().map(|i| i.1)).expect("positive weights");
    items[index.sample(rng)].0
}

/// One call's `flat_data`.
fn flat_data(rng: &mut StdRng, call: u64) -> Map<String, Value> {
    let weights = WeightedIndex::new(CLASSIFICATIONS.iter().map(|c| c.1)).expect("positive weights");
    let (classification, _, stage) = CLASSIFICATIONS[weights.sample(rng)];
    let mut f = Map::new();
    let mut put = |k: &str, v: Value| {
        f.insert(k.to_owned(), v);
    };
    put("result.call.call_classification", json!(classification));
    put("result.call.call_stage", json!(stage));
    put("result.call.notes", json!(format!("call {call}")));
    if classification != "caller_hung_up_no_explanation" && classification != "after_hours" {
        let status = pick(rng, &LOAD_STATUSES);
        put("result.load.load_status", json!(status));
        put("result.load.reference_number", json!(format!("LD{}", 100_000 + rng.gen_range(0..40_000))));
        let qualification = match classification {
            "carrier_not_qualified" => "NOT_QUALIFIED",
            _ if rng.gen_bool(0.1) => "NOT_CHECKED",
            _ => "QUALIFIED",
        };
        put("result.carrier.carrier_qualification", json!(qualification));
        put("result.carrier.carrier_name", json!(format!("Carrier {}", rng.gen_range(1..400))));
    }
    match classification {
        "success" => {
            let negotiated = rng.gen_bool(0.6);
            let notes = if negotiated {
                "AGREEMENT_REACHED_WITH_NEGOTIATION"
            } else {
                "AGREEMENT_REACHED_WITHOUT_NEGOTIATION"
            };
            put("result.pricing.pricing_notes", json!(notes));
            put("result.pricing.agreed_upon_rate", json!(rng.gen_range(900..3500)));
            put("result.transfer.transfer_attempt", json!("YES"));
            let asked = rng.gen_bool(0.55);
            put(
                "result.transfer.transfer_reason",
                json!(if asked { "CARRIER_ASKED_FOR_TRANSFER" } else { "BOOKING_READY" }),
            );
            put("result.transfer.transfer_success", json!(rng.gen_bool(0.9)));
            put("result.carrier.carrier_end_state", json!("booking_started"));
        }
        "rate_too_high" | "checking_with_driver" => {
            put("result.pricing.pricing_notes", json!("NO_AGREEMENT"));
            put("result.pricing.agreed_upon_rate", Value::Null);
            let attempt = rng.gen_bool(0.3);
            put("result.transfer.transfer_attempt", json!(if attempt { "YES" } else { "NO" }));
            put(
                "result.transfer.transfer_reason",
                json!(if attempt { "CARRIER_ASKED_FOR_TRANSFER" } else { "NO_TRANSFER_INVOLVED" }),
            );
            put("result.carrier.carrier_end_state", json!("CARRIER_OFFER_TOO_HIGH"));
        }
        "carrier_not_qualified" => {
            put("result.transfer.transfer_attempt", json!("NO"));
            put("result.transfer.transfer_reason", json!("NO_TRANSFER_INVOLVED"));
            put("result.carrier.carrier_end_state", json!("CARRIER_NOT_QUALIFIED"));
        }
        _ => {
            if rng.gen_bool(0.2) {
                put("result.transfer.transfer_attempt", json!("YES"));
                put("result.transfer.transfer_reason", json!("CARRIER_ASKED_FOR_TRANSFER"));
            }
            if rng.gen_bool(0.5) {
                put("result.carrier.carrier_end_state", json!("CARRIER_DID_NOT_WANT_LOAD"));
            }
        }
    }
    f
}

/// Writes `days` days from `first` of calls for the sample's organisations, about
/// `calls_per_day` each a day, as ingest lines (nodes first). The same arguments always give
/// the same bytes.
pub fn write_sample(
    out: &mut impl Write,
    first: NaiveDate,
    days: u32,
    calls_per_day: u32,
    mut progress: impl FnMut(u64),
) -> std::io::Result<SampleSummary> {
    let mut rng = StdRng::seed_from_u64(0x0001_CA11_5EED);
    let mut summary = SampleSummary::default();
    let line = |out: &mut dyn Write, value: Value, summary: &mut SampleSummary| -> std::io::Result<()> {
        serde_json::to_writer(&mut *out, &value)?;
        out.write_all(b"\n")?;
        summary.lines += 1;
        Ok(())
    };
    for (i, org) in ORGS.iter().enumerate() {
        line(out, json!({"type": "node", "id": format!("node-{i}"), "org_id": org.org_id}), &mut summary)?;
    }
    for day in 0..days {
        let date = first + Duration::days(i64::from(day));
        for (i, org) in ORGS.iter().enumerate() {
            let tz: Tz = org.timezone.parse().expect("a sample zone");
            let weekend =
                matches!(chrono::Datelike::weekday(&date), chrono::Weekday::Sat | chrono::Weekday::Sun);
            let base = if weekend { calls_per_day / 4 } else { calls_per_day };
            let calls = base + rng.gen_range(0..=base / 5 + 1);
            let opening =
                tz.from_local_datetime(&date.and_hms_opt(7, 0, 0).expect("a time")).earliest().expect("7:00");
            for _ in 0..calls {
                summary.calls += 1;
                let run = format!("run-{i}-{}", summary.calls);
                let at = opening + Duration::seconds(rng.gen_range(0..11 * 3600));
                let ts = at.timestamp();
                let number = if rng.gen_bool(0.02) {
                    org.test_number.to_owned()
                } else if rng.gen_bool(0.03) {
                    String::new()
                } else {
                    format!("+1{}", rng.gen_range(2_000_000_000u64..9_999_999_999))
                };
                let duration = rng.gen_range(15..900);
                line(out, json!({"type": "run", "id": run, "timestamp": ts}), &mut summary)?;
                line(
                    out,
                    json!({"type": "session", "run_id": run, "org_id": org.org_id, "user_number": number,
                        "duration": duration, "timestamp": ts}),
                    &mut summary,
                )?;
                line(
                    out,
                    json!({"type": "node_output", "id": format!("{run}-broker"), "run_id": run, "node_id": format!("node-{i}"),
                        "node_persistent_id": org.node_persistent_id, "flat_data": flat_data(&mut rng, summary.calls),
                        "timestamp": ts + 5}),
                    &mut summary,
                )?;
            }
        }
        progress(u64::from(day) + 1);
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_deterministic_and_every_line_ingests() {
        let first = NaiveDate::from_ymd_opt(2025, 11, 3).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let summary = write_sample(&mut a, first, 7, 40, |_| {}).unwrap();
        write_sample(&mut b, first, 7, 40, |_| {}).unwrap();
        assert_eq!(a, b);
        let text = String::from_utf8(a).unwrap();
        let records = crate::ingest::parse_batch(&text).unwrap();
        assert_eq!(records.len() as u64, summary.lines);
        assert_eq!(summary.lines, 3 + 3 * summary.calls);
        let successes = text.matches("\"result.call.call_classification\":\"success\"").count() as f64;
        let share = successes / summary.calls as f64;
        assert!((0.08..0.25).contains(&share), "success share {share}");
    }
}
