//! Request-body parsing at the edge: a JSON extractor whose rejections use the error body, and an
//! object checker that collects every bad field before answering 422.

use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};

/// JSON body as a raw object, for handlers that check fields with [`ObjectChecker`].
pub struct JsonObject(pub Map<String, Value>);

/// JSON body deserialized into `T`; a type error names the field path.
pub struct ApiJson<T>(pub T);

/// Query string deserialized into `T`; a bad parameter is a 422 naming it, and values with
/// control characters are refused.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::validation(vec![FieldError::new("query", e.to_string())]))?;
        let bad: Vec<FieldError> = pairs
            .iter()
            .filter(|(_, v)| has_control(v))
            .map(|(k, _)| FieldError::new(k.clone(), CONTROL_MESSAGE))
            .collect();
        if !bad.is_empty() {
            return Err(ApiError::validation(bad));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(ApiQuery).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { "query".to_string() } else { field };
            ApiError::validation(vec![FieldError::new(field, e.inner().to_string())])
        })
    }
}

const CONTROL_MESSAGE: &str = "must not contain control characters";

/// Whether `s` holds control characters (NUL and friends), which PostgreSQL TEXT refuses.
pub fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// `s` cut to at most `max_chars` characters (on a character boundary).
pub fn capped(mut s: String, max_chars: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max_chars) {
        s.truncate(at);
    }
    s
}

/// `s` made safe for one log line: control characters (newlines, ESC, NUL…) escaped as Rust
/// escapes them, and cut to 512 characters. For every user-supplied value that reaches the log.
pub fn loggable(s: &str) -> String {
    const MAX_CHARS: usize = 512;
    let mut out = String::with_capacity(s.len().min(MAX_CHARS));
    for (i, c) in s.chars().enumerate() {
        if i == MAX_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn json_content_type(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn body_value<S: Send + Sync>(req: Request, state: &S) -> Result<Value, ApiError> {
    if !json_content_type(&req) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ));
    }
    let bytes = bytes::Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        ApiError::new(status, crate::error::code_for_status(status), rejection.body_text())
    })?;
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", format!("body is not valid JSON: {e}"))
    })?;
    // `Value` keeps the last of repeated keys; a proxy reading the first would see another request.
    if let Some(key) = duplicate_key(&bytes) {
        return Err(ApiError::validation(vec![FieldError::new(key, "appears more than once in the object")]));
    }
    Ok(value)
}

/// The path (`a.b`, `items[2].c`) of the first key repeated within one JSON object, if any.
/// `bytes` must be valid JSON.
pub fn duplicate_key(bytes: &[u8]) -> Option<String> {
    let found = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = serde::de::DeserializeSeed::deserialize(KeyWalk { path: String::new(), found: &found }, &mut de);
    found.into_inner()
}

/// Walks a JSON value, failing at the first repeated key (recorded in `found`).
struct KeyWalk<'a> {
    path: String,
    found: &'a std::cell::RefCell<Option<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for KeyWalk<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyWalk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(KeyWalk { path: format!("{}[{index}]", self.path), found: self.found })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { key.clone() } else { format!("{}.{key}", self.path) };
            if !seen.insert(key) {
                *self.found.borrow_mut() = Some(path);
                return Err(serde::de::Error::custom("duplicate key"));
            }
            map.next_value_seed(KeyWalk { path, found: self.found })?;
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match body_value(req, state).await? {
            Value::Object(map) => Ok(JsonObject(map)),
            _ => Err(ApiError::validation(vec![FieldError::new("body", "must be a JSON object")])),
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let value = body_value(req, state).await?;
        from_value(value).map(ApiJson)
    }
}

/// `Option<ApiJson<T>>`: `None` for a request with no body (no `Content-Type` and nothing sent),
/// else as [`ApiJson`] (for routes whose body is optional, as some clients send none).
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let empty = req.headers().get(axum::http::header::CONTENT_TYPE).is_none()
            && req
                .headers()
                .get(axum::http::header::CONTENT_LENGTH)
                .is_none_or(|v| v.to_str().is_ok_and(|n| n.trim() == "0"));
        if empty {
            return Ok(None);
        }
        let value = body_value(req, state).await?;
        from_value(value).map(|v| Some(ApiJson(v)))
    }
}

/// Deserializes `value` into `T`, turning the first failure into a 422 naming its path.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "body".to_string() } else { path };
        ApiError::validation(vec![FieldError::new(field, e.inner().to_string())])
    })
}

/// Checks a JSON object field by field, collecting every problem.
pub struct ObjectChecker<'a> {
    obj: &'a Map<String, Value>,
    errors: Vec<FieldError>,
}

impl<'a> ObjectChecker<'a> {
    /// Starts checking `obj`.
    pub fn new(obj: &'a Map<String, Value>) -> Self {
        Self { obj, errors: Vec::new() }
    }

    /// Records an error for `field`.
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Refuses keys outside `allowed`.
    pub fn deny_unknown(&mut self, allowed: &[&str]) {
        let unknown: Vec<String> =
            self.obj.keys().filter(|k| !allowed.contains(&k.as_str())).cloned().collect();
        for key in unknown {
            self.error(key, "unknown field");
        }
    }

    /// A required non-empty string of at most `max_len` characters.
    pub fn required_str(&mut self, field: &str, max_len: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => {
                self.error(field, "field required");
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.error(field, "must not be empty");
                None
            }
            Some(Value::String(s)) if s.chars().count() > max_len => {
                self.error(field, format!("must be at most {max_len} characters"));
                None
            }
            Some(Value::String(s)) if has_control(s) => {
                self.error(field, CONTROL_MESSAGE);
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// An optional string; `null` and absent are `None`, an empty string counts as absent.
    pub fn optional_str(&mut self, field: &str, max_len: usize) -> Option<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > max_len => {
                self.error(field, format!("must be at most {max_len} characters"));
                None
            }
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if has_control(s) => {
                self.error(field, CONTROL_MESSAGE);
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.error(field, "must be a string or null");
                None
            }
        }
    }

    /// A required UUID (any version), returned in canonical hyphenated lower case.
    pub fn required_uuid(&mut self, field: &str) -> Option<uuid::Uuid> {
        let s = self.required_str(field, 64)?;
        match uuid::Uuid::parse_str(s.trim()) {
            Ok(u) => Some(u),
            Err(_) => {
                self.error(field, "must be a UUID");
                None
            }
        }
    }

    /// A date-time: RFC 3339, or without offset (taken as UTC). `None` when absent and optional.
    pub fn datetime(&mut self, field: &str, required: bool) -> Option<chrono::DateTime<chrono::Utc>> {
        let raw = if required { self.required_str(field, 64)? } else { self.optional_str(field, 64)? };
        match parse_datetime(&raw) {
            Some(dt) => Some(dt),
            None => {
                self.error(field, "must be an RFC 3339 date-time, e.g. 2026-02-09T13:59:00Z");
                None
            }
        }
    }

    /// A boolean with a default when absent.
    pub fn bool_or(&mut self, field: &str, default: bool) -> bool {
        match self.obj.get(field) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.error(field, "must be a boolean");
                default
            }
        }
    }

    /// A list of non-empty strings, empty when absent.
    pub fn string_list(&mut self, field: &str) -> Vec<String> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if !s.is_empty() && s.len() <= 128 && !has_control(s) => {
                            out.push(s.clone())
                        }
                        _ => self.error(
                            format!("{field}.{i}"),
                            "must be a non-empty string of at most 128 printable characters",
                        ),
                    }
                }
                out
            }
            Some(_) => {
                self.error(field, "must be a list of strings");
                Vec::new()
            }
        }
    }

    /// A JSON object, empty when absent.
    pub fn object_or_empty(&mut self, field: &str) -> Map<String, Value> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                self.error(field, "must be a JSON object");
                Map::new()
            }
        }
    }

    /// Ends the check: `Ok` when nothing was wrong, else a 422 listing every field.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}

/// Parses RFC 3339, or a naive `YYYY-MM-DDTHH:MM:SS[.f]` taken as UTC.
pub fn parse_datetime(raw: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let raw = raw.trim();
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Some(dt.with_timezone(&chrono::Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(raw, f).ok())
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_repeated_in_any_object_is_found_with_its_path() {
        assert_eq!(duplicate_key(br#"{"status":"accepted","status":"rejected"}"#).as_deref(), Some("status"));
        assert_eq!(duplicate_key(br#"{"a":{"b":1,"c":[{"d":1,"d":2}]}}"#).as_deref(), Some("a.c[0].d"));
        assert_eq!(duplicate_key(br#"{"a":{"b":1},"c":{"b":2},"e":[1,"x",null,true,1.5]}"#), None);
    }

    #[test]
    fn logged_values_cannot_forge_lines_or_send_terminal_escapes() {
        let forged = "zz\n2026-12-02T00:00:00Z  INFO auth.login_succeeded FORGED\u{1b}[2J\r\0";
        let logged = loggable(forged);
        assert!(!logged.chars().any(char::is_control), "{logged:?}");
        assert_eq!(logged, "zz\\n2026-12-02T00:00:00Z  INFO auth.login_succeeded FORGED\\u{1b}[2J\\r\\u{0}");
        assert_eq!(loggable(&"w".repeat(10_000)).chars().count(), 513, "cut, with a mark");
        assert_eq!(capped("ééé".to_owned(), 2), "éé");
        assert_eq!(capped("ab".to_owned(), 5), "ab");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let v = json!({"source": "", "extra": 1, "when": "yesterday", "ids": ["a", 3]});
        let mut c = ObjectChecker::new(v.as_object().unwrap());
        c.deny_unknown(&["source", "when", "ids"]);
        c.required_str("source", 256);
        c.datetime("when", true);
        c.string_list("ids");
        let err = c.finish().unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let fields: Vec<&str> =
            err.details().as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["extra", "source", "when", "ids.1"]);
    }

    #[test]
    fn naive_datetimes_are_utc() {
        let dt = parse_datetime("2026-02-09T13:59:00").unwrap();
        assert_eq!(dt.to_rfc3339(), "2026-02-09T13:59:00+00:00");
        assert!(parse_datetime("2026-02-09T13:59:00+02:00").is_some());
        assert!(parse_datetime("09/02/2026").is_none());
    }
}
