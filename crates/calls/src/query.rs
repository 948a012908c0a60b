//! The scope of the metrics (an organisation's node, a time window, excluded numbers), which every
//! source filters its calls by, and the conditions the counting rules put on a node output's
//! `flat_data` fields ([`crate::profile`] evaluates them).

use crate::flat::Field;

/// Whose calls, and when: the original's common filters.
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    /// `public_sessions.org_id`.
    pub org_id: String,
    /// `public_node_outputs.node_persistent_id` of the organisation's broker node.
    pub node_persistent_id: String,
    /// Window start (epoch ms, inclusive), on run and session timestamps.
    pub start_ms: i64,
    /// Window end (epoch ms, exclusive).
    pub end_ms: i64,
    /// Caller numbers left out (the organisation's test numbers).
    pub excluded_numbers: Vec<String>,
}

/// A condition on one node output's fields. Comparisons read an absent key as `''`, as
/// ClickHouse's extraction functions do.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// Always.
    True,
    /// The key exists (whatever its value, `null` included).
    Has(Field),
    /// The key exists with a value other than `''` and `null`.
    Present(Field),
    /// The value is exactly this.
    Eq(Field, &'static str),
    /// The value, upper-cased (ASCII), is this.
    UpperEq(Field, &'static str),
    /// The value is one of these.
    In(Field, &'static [&'static str]),
    /// Not the inner condition.
    Not(Box<Cond>),
    /// All of these.
    And(Vec<Cond>),
    /// Any of these.
    Any(Vec<Cond>),
}

impl Cond {
    /// All of `conds`.
    pub fn all(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond::And(conds.into_iter().collect())
    }

    /// Whether a node output with `value_of` its fields meets it.
    pub fn holds<'v>(&self, value_of: &dyn Fn(Field) -> Option<&'v str>) -> bool {
        match self {
            Cond::True => true,
            Cond::Has(f) => value_of(*f).is_some(),
            Cond::Present(f) => crate::flat::present(value_of(*f)),
            Cond::Eq(f, v) => value_of(*f).unwrap_or_default() == *v,
            Cond::UpperEq(f, v) => value_of(*f).unwrap_or_default().eq_ignore_ascii_case(v),
            Cond::In(f, vs) => vs.contains(&value_of(*f).unwrap_or_default()),
            Cond::Not(c) => !c.holds(value_of),
            Cond::And(cs) => cs.iter().all(|c| c.holds(value_of)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(value_of)),
        }
    }
}

impl std::ops::Not for Cond {
    type Output = Cond;

    fn not(self) -> Cond {
        Cond::Not(Box::new(self))
    }
}

/// Which sessions a count draws on, beyond the scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sessions {
    /// Every session in scope.
    All,
    /// Only sessions with a caller number (the non-convertible counts).
    WithNumber,
}
