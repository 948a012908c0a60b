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
        parse_scaled(text, 2).map(Dec2)
    }
}

/// `text` as an integer count of 10^-`places` (rounded half away from zero); `None` when it is
/// not a finite number within ±90 trillion.
fn parse_scaled(text: &str, places: u32) -> Option<i64> {
    let t = text.trim();
    let (negative, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let unit = 10i64.pow(places);
    let plain = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit() || c == '.');
    if !plain {
        let v: f64 = t.parse().ok()?;
        if !v.is_finite() || v.abs() >= 9e13 {
            return None;
        }
        return Some((v * unit as f64).round() as i64);
    }
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) || whole.len() > 14 {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut fraction_digits = fraction.bytes().map(|b| i64::from(b - b'0'));
    let mut scaled = whole;
    for _ in 0..places {
        scaled = scaled * 10 + fraction_digits.next().unwrap_or(0);
    }
    scaled += i64::from(fraction_digits.next().is_some_and(|d| d >= 5));
    Some(if negative { -scaled } else { scaled })
}

/// Writes `value` 10^-`places` with its `places` decimals.
fn write_scaled(f: &mut std::fmt::Formatter<'_>, value: i64, places: u32) -> std::fmt::Result {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let unit = 10u64.pow(places);
    write!(f, "{sign}{}.{:0width$}", abs / unit, abs % unit, width = places as usize)
}

/// A JSON number or numeric string as text, for the decimal types' `Deserialize`.
fn numeric_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) => Ok(s),
        _ => Err(serde::de::Error::custom("must be a number or a numeric string")),
    }
}

impl std::fmt::Display for Dec2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_scaled(f, self.0, 2)
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
        let text = numeric_text(deserializer)?;
        Dec2::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a number")))
    }
}

/// A decimal with four places, as ten-thousandths (the original's `Numeric(12, 4)` KPI values),
/// read and written as [`Dec2`] is (`"92.5000"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dec4(pub i64);

impl Dec4 {
    /// Parses as [`Dec2::parse`], to four places.
    pub fn parse(text: &str) -> Option<Self> {
        parse_scaled(text, 4).map(Dec4)
    }

    /// As a float.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / 10_000.0
    }

    /// From a float, rounded to four places.
    pub fn from_f64(v: f64) -> Self {
        Dec4((v * 10_000.0).round() as i64)
    }
}

impl std::fmt::Display for Dec4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write_scaled(f, self.0, 4)
    }
}

impl Serialize for Dec4 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dec4 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = numeric_text(deserializer)?;
        Dec4::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a number")))
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

    #[test]
    fn four_place_decimals_read_and_print_with_four_places() {
        for (input, shown) in
            [("92.5", "92.5000"), ("0.12345", "0.1235"), ("-1.00004", "-1.0000"), ("1e2", "100.0000")]
        {
            assert_eq!(Dec4::parse(input).map(|d| d.to_string()).as_deref(), Some(shown), "{input}");
        }
        let v: Dec4 = serde_json::from_str("70").unwrap();
        assert_eq!((serde_json::to_string(&v).unwrap(), v.to_f64()), ("\"70.0000\"".to_owned(), 70.0));
    }
}
