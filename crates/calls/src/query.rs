//! What the metrics ask of a call source, independent of its SQL dialect: the scope (an
//! organisation's node, a time window, excluded numbers) and conditions on a node output's
//! `flat_data` fields. Each source renders these in its own SQL ([`crate::store::calls`] for the
//! embedded store), so the counting rules are written once ([`crate::metrics`]).
//!
//! Condition values are the rules' own constants, never client input.

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

    /// Whether a node output with `value_of` its fields meets it (the rules' reference
    /// semantics, used by the tests).
    pub fn holds(&self, value_of: &dyn Fn(Field) -> Option<String>) -> bool {
        match self {
            Cond::True => true,
            Cond::Has(f) => value_of(*f).is_some(),
            Cond::Present(f) => crate::flat::present(value_of(*f).as_deref()),
            Cond::Eq(f, v) => value_of(*f).unwrap_or_default() == *v,
            Cond::UpperEq(f, v) => value_of(*f).unwrap_or_default().to_ascii_uppercase() == *v,
            Cond::In(f, vs) => vs.contains(&value_of(*f).unwrap_or_default().as_str()),
            Cond::Not(c) => !c.holds(value_of),
            Cond::And(cs) => cs.iter().all(|c| c.holds(value_of)),
            Cond::Any(cs) => cs.iter().any(|c| c.holds(value_of)),
        }
    }
}

/// How one SQL dialect writes a condition's atoms; [`render`] writes the rest, so both sources
/// read a condition the same way.
pub trait CondSql {
    /// Whether the output has `field`'s key.
    fn has(&mut self, field: Field) -> String;
    /// `field`'s value as text, `''` when absent.
    fn value(&mut self, field: Field) -> String;
    /// `text` as a literal (a bound placeholder, or an escaped literal).
    fn literal(&mut self, text: &str) -> String;
    /// `expr` upper-cased.
    fn upper(&mut self, expr: &str) -> String {
        format!("UPPER({expr})")
    }
}

/// `cond` as SQL in `dialect`.
pub fn render(cond: &Cond, dialect: &mut impl CondSql) -> String {
    match cond {
        Cond::True => "1 = 1".to_owned(),
        Cond::Has(f) => dialect.has(*f),
        Cond::Present(f) => format!("{} NOT IN ('', 'null')", dialect.value(*f)),
        Cond::Eq(f, v) => format!("{} = {}", dialect.value(*f), dialect.literal(v)),
        Cond::UpperEq(f, v) => {
            let value = dialect.value(*f);
            format!("{} = {}", dialect.upper(&value), dialect.literal(v))
        }
        Cond::In(f, vs) => {
            let value = dialect.value(*f);
            let list: Vec<String> = vs.iter().map(|v| dialect.literal(v)).collect();
            format!("{value} IN ({})", list.join(", "))
        }
        Cond::Not(c) => format!("NOT ({})", render(c, dialect)),
        Cond::And(cs) if cs.is_empty() => "1 = 1".to_owned(),
        Cond::And(cs) => {
            let parts: Vec<String> = cs.iter().map(|c| render(c, dialect)).collect();
            format!("({})", parts.join(" AND "))
        }
        Cond::Any(cs) if cs.is_empty() => "1 = 0".to_owned(),
        Cond::Any(cs) => {
            let parts: Vec<String> = cs.iter().map(|c| render(c, dialect)).collect();
            format!("({})", parts.join(" OR "))
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
