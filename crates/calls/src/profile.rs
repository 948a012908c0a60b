//! A scope's calls reduced to what the counting rules read: groups of runs alike in their node
//! outputs' field values and their sessions. A source answers one query for a scope (a few
//! thousand groups, however many calls); every rule is then counted here, the same way for every
//! source ([`crate::metrics`]).

use std::collections::{BTreeSet, HashMap};

use crate::flat::Field;
use crate::query::{Cond, Sessions};

/// The fields a profile keeps, in [`Field::ALL`] order: all but the load reference number (rule
/// 17 asks the source for its distinct values). The agreed rate is kept as its presence only
/// ([`AGREED_RATE_PRESENT`]): the rules ask only whether it is there.
pub const PROFILE_FIELDS: usize = 9;

/// What a source reports for an agreed rate that is present (neither `''` nor `null`).
pub const AGREED_RATE_PRESENT: &str = "present";

/// One node output's values of the first [`PROFILE_FIELDS`] fields (`None`: the key is absent).
pub type OutputValues = [Option<String>; PROFILE_FIELDS];

/// Runs alike: each has exactly these distinct outputs (of the scope's node) and the same
/// caller-number presence.
#[derive(Debug, Clone, PartialEq)]
pub struct CallGroup {
    /// The distinct outputs of each run (one for nearly every run).
    pub outputs: Vec<OutputValues>,
    /// Whether the runs' sessions have a caller number.
    pub with_number: bool,
    /// Runs in the group.
    pub runs: i64,
    /// Their calls (distinct sessions in scope; one per run in the embedded store).
    pub calls: i64,
    /// The calls' summed duration, in seconds.
    pub seconds: f64,
}

/// A scope's calls, as groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    groups: Vec<CallGroup>,
}

/// One row of a source's profile query: either a group of runs with one output each
/// (`run: None`), or one output of a run that has several.
#[derive(Debug, Clone)]
pub struct ProfileRow {
    /// The run, when it has several outputs.
    pub run: Option<String>,
    /// The output's values.
    pub values: OutputValues,
    /// Whether the session has a caller number.
    pub with_number: bool,
    /// Runs (for `run: None`); ignored otherwise.
    pub runs: i64,
    /// Calls of those runs (of the run, for `run: Some`).
    pub calls: i64,
    /// Their summed duration (of the run, for `run: Some`).
    pub seconds: f64,
}

/// The profile values of an output's [`Field::ALL`] values: the agreed rate as its presence, the
/// reference number left out.
pub fn profile_values(fields: &[Option<String>]) -> OutputValues {
    let mut values: OutputValues = Default::default();
    for ((value, field), given) in values.iter_mut().zip(Field::ALL).zip(fields) {
        *value = match (field, given.as_deref()) {
            (Field::AgreedUponRate, Some(v)) if crate::flat::present(Some(v)) => {
                Some(AGREED_RATE_PRESENT.to_owned())
            }
            _ => given.clone(),
        };
    }
    values
}

/// The text that names a kind of output (its values as a JSON array, as SQLite's `json_array`
/// writes them).
pub fn kind_key(values: &OutputValues) -> String {
    serde_json::to_string(values).expect("strings serialise")
}

fn field_index(field: Field) -> Option<usize> {
    Field::ALL[..PROFILE_FIELDS].iter().position(|f| *f == field)
}

/// The value of `field` in `output`, reading an agreed rate as its presence.
fn value_of(output: &OutputValues, field: Field) -> Option<&str> {
    let index = field_index(field);
    debug_assert!(index.is_some(), "{field:?} is not in a profile");
    output[index?].as_deref()
}

impl Profile {
    /// The profile of a source's rows; rows of one run become one group.
    pub fn from_rows(rows: Vec<ProfileRow>) -> Self {
        let mut groups = Vec::new();
        let mut runs: HashMap<String, CallGroup> = HashMap::new();
        for row in rows {
            match row.run {
                None => groups.push(CallGroup {
                    outputs: vec![row.values],
                    with_number: row.with_number,
                    runs: row.runs,
                    calls: row.calls,
                    seconds: row.seconds,
                }),
                Some(run) => {
                    let group = runs.entry(run).or_insert_with(|| CallGroup {
                        outputs: Vec::new(),
                        with_number: row.with_number,
                        runs: 1,
                        calls: row.calls,
                        seconds: row.seconds,
                    });
                    if !group.outputs.contains(&row.values) {
                        group.outputs.push(row.values);
                    }
                }
            }
        }
        groups.extend(runs.into_values());
        Self { groups }
    }

    /// The groups with an output meeting `cond` (and a caller number, if `sessions` asks).
    fn meeting<'a>(&'a self, cond: &'a Cond, sessions: Sessions) -> impl Iterator<Item = &'a CallGroup> + 'a {
        self.groups.iter().filter(move |g| {
            (sessions == Sessions::All || g.with_number)
                && g.outputs.iter().any(|o| cond.holds(&|f| value_of(o, f)))
        })
    }

    /// Runs with an output meeting `cond`.
    pub fn count(&self, cond: &Cond, sessions: Sessions) -> i64 {
        self.meeting(cond, sessions).map(|g| g.runs).sum()
    }

    /// Calls of the runs with an output meeting `cond`, and their summed duration in seconds.
    pub fn calls(&self, cond: &Cond) -> (i64, f64) {
        self.meeting(cond, Sessions::All).fold((0, 0.0), |(c, s), g| (c + g.calls, s + g.seconds))
    }

    /// Runs per present value of `field` among outputs meeting `cond` (a run once per value).
    pub fn distribution(&self, field: Field, cond: &Cond) -> Vec<(String, i64)> {
        let mut counts: HashMap<&str, i64> = HashMap::new();
        for group in &self.groups {
            let values: BTreeSet<&str> = group
                .outputs
                .iter()
                .filter(|o| cond.holds(&|f| value_of(o, f)))
                .filter_map(|o| value_of(o, field))
                .filter(|v| crate::flat::present(Some(v)))
                .collect();
            for value in values {
                *counts.entry(value).or_default() += group.runs;
            }
        }
        counts.into_iter().map(|(v, n)| (v.to_owned(), n)).collect()
    }

    /// Per group meeting `within`: its runs, calls, seconds and the values of `field` its outputs
    /// have (with the key), for rules that bucket runs by value.
    pub fn by_values<'a>(
        &'a self,
        within: &'a Cond,
        field: Field,
    ) -> impl Iterator<Item = (&'a CallGroup, BTreeSet<&'a str>)> + 'a {
        self.meeting(within, Sessions::All).map(move |g| {
            let values = g.outputs.iter().filter_map(|o| value_of(o, field)).collect();
            (g, values)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(classification: Option<&str>, stage: Option<&str>) -> OutputValues {
        let mut o: OutputValues = Default::default();
        o[0] = classification.map(str::to_owned);
        o[1] = stage.map(str::to_owned);
        o
    }

    fn row(run: Option<&str>, o: OutputValues, runs: i64) -> ProfileRow {
        ProfileRow {
            run: run.map(str::to_owned),
            values: o,
            with_number: true,
            runs,
            calls: runs.max(1),
            seconds: 60.0 * runs.max(1) as f64,
        }
    }

    #[test]
    fn a_run_with_several_outputs_counts_once_per_value_and_once_overall() {
        let profile = Profile::from_rows(vec![
            row(None, output(Some("success"), Some("end")), 3),
            row(Some("r1"), output(Some("success"), None), 0),
            row(Some("r1"), output(Some("covered"), Some("end")), 0),
        ]);
        let mut classes = profile.distribution(Field::CallClassification, &Cond::True);
        classes.sort();
        assert_eq!(classes, vec![("covered".into(), 1), ("success".into(), 4)]);
        assert_eq!(profile.count(&Cond::Present(Field::CallClassification), Sessions::All), 4);
        assert_eq!(profile.count(&Cond::Eq(Field::CallStage, "end"), Sessions::All), 4);
        assert_eq!(profile.calls(&Cond::True), (4, 240.0), "the run's call and duration once");
        // The condition and the value must hold on the same output.
        let covered_stage =
            profile.distribution(Field::CallStage, &Cond::Eq(Field::CallClassification, "covered"));
        assert_eq!(covered_stage, vec![("end".into(), 1)]);
    }
}
