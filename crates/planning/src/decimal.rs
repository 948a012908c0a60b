//! Fixed-point quantities and money with two decimals, as the original's `Numeric(…, 2)`
//! columns: stored as integer hundredths (exact sums in SQL on both databases), read from a JSON
//! number or numeric string (more decimals rounded half away from zero, as the database did),
//! and written as a JSON string with two decimals (`"500.00"`), as the original's clients expect.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A decimal with two places, as hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec2(pub i64);

impl Dec2 {
    /// Zero.
    pub const ZERO: Dec2 = Dec2(0);

    /// From whole units.
    pub fn units(n: i64) -> Self {
        Dec2(n * 100)
    }

    /// As a float (for ratios).
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// From a float, rounded to hundredths.
    pub fn from_f64(v: f64) -> Self {
        Dec2((v * 100.0).round() as i64)
    }

    /// Parses `"12.345"`, `"-3"`, `"1e3"`; more than two decimals are rounded half away from
    /// zero. `None` when it is not a finite number within ±90 trillion.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        let (negative, digits) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let plain = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.');
        let hundredths: i64 = if plain {
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
            if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) || whole.len() > 14 {
                return None;
            }
            let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
            let mut fraction_digits = fraction.bytes().map(|b| i64::from(b - b'0'));
            let tenths = fraction_digits.next().unwrap_or(0);
            let hundredth = fraction_digits.next().unwrap_or(0);
            let round_up = fraction_digits.next().is_some_and(|d| d >= 5);
            whole * 100 + tenths * 10 + hundredth + i64::from(round_up)
        } else {
            let v: f64 = t.parse().ok()?;
            if !v.is_finite() || v.abs() >= 9e13 {
                return None;
            }
            return Some(Dec2::from_f64(v));
        };
        Some(Dec2(if negative { -hundredths } else { hundredths }))
    }
}

impl std::fmt::Display for Dec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl std::ops::Add for Dec2 {
    type Output = Dec2;
    fn add(self, other: Dec2) -> Dec2 {
        Dec2(self.0 + other.0)
    }
}

impl std::ops::Sub for Dec2 {
    type Output = Dec2;
    fn sub(self, other: Dec2) -> Dec2 {
        Dec2(self.0 - other.0)
    }
}

impl Serialize for Dec2 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dec2 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let text = match &value {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return Err(serde::de::Error::custom("must be a number or a numeric string")),
        };
        Dec2::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a number")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_read_round_and_print_as_the_database_did() {
        for (input, shown) in [
            ("500", "500.00"),
            ("12.5", "12.50"),
            ("12.345", "12.35"),
            ("12.344", "12.34"),
            ("-0.005", "-0.01"),
            ("0.1", "0.10"),
            (".5", "0.50"),
            ("1e3", "1000.00"),
            ("+7.25", "7.25"),
        ] {
            assert_eq!(Dec2::parse(input).map(|d| d.to_string()).as_deref(), Some(shown), "{input}");
        }
        for bad in ["", "abc", "1.2.3", "-", "NaN", "inf", "1e20", "."] {
            assert_eq!(Dec2::parse(bad), None, "{bad}");
        }
        let from_number: Dec2 = serde_json::from_str("12.345").unwrap();
        assert_eq!(serde_json::to_string(&from_number).unwrap(), "\"12.35\"");
        let from_text: Dec2 = serde_json::from_str("\"85.5\"").unwrap();
        assert_eq!(from_text, Dec2(8550));
        assert!(serde_json::from_str::<Dec2>("true").is_err());
    }
}
