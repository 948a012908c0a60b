//! The module's domain types: the rows of the two files ([`UserRow`], [`TransactionRow`], a
//! [`Reject`]ed row) and the key of a transaction ([`transaction_key`]); an upload's files
//! ([`FileKind`], [`StoredFile`], [`NewImport`]); an import job and its progress ([`JobRecord`],
//! [`ImportStatus`], [`ImportStage`], [`FileProgress`], [`ChunkCounts`], [`Checkpoint`]); and the
//! KPI query ([`KpiScope`]).

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;
use serde_json::Value;
use sightline_platform::error::FieldError;
use sightline_platform::validate::has_control;
use utoipa::ToSchema;

/// A user row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRow {
    /// `User_ID`.
    pub id: String,
    /// `User_Name` (unique).
    pub username: String,
    /// `Region`.
    pub region: String,
    /// `Is_Active_Sub`.
    pub is_active_sub: bool,
    /// `Department` (optional).
    pub department: Option<String>,
    /// `Company_Name` (optional).
    pub company_name: Option<String>,
    /// `Signup_Date` as epoch ms (optional).
    pub signup_ms: Option<i64>,
}

/// A transaction row as read (region and company come from its user when stored).
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRow {
    /// `RowId`.
    pub id: String,
    /// Home key of `RowId` ([`transaction_key`]), computed while parsing.
    pub key: i64,
    /// `User_ID`.
    pub user_id: String,
    /// `Model_Name`.
    pub model_name: String,
    /// `Conversation_ID`.
    pub conversation_id: String,
    /// `Token_Type`: `prompt` or `completion`.
    pub token_type: &'static str,
    /// `Token_Count` (≥ 0).
    pub token_count: i64,
    /// `Rate_Per_1k` (≥ 0).
    pub rate_per_1k: f64,
    /// `Calculated_Cost` (≥ 0).
    pub calculated_cost: f64,
    /// `Timestamp` as epoch ms (UTC).
    pub timestamp_ms: i64,
    /// UTC day of `Timestamp`, `YYYY-MM-DD`.
    pub date: String,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reject {
    /// 1-based line in the file where the row starts.
    pub line: u64,
    /// Column at fault (empty for a row-level problem).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl Reject {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        Self { line: 0, field: field.to_owned(), reason: reason.into() }
    }
}

/// Where reading stopped: the byte offset and line of the next row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Byte offset of the next row (0: not started, the header comes first).
    pub offset: u64,
    /// Line number of the next row.
    pub line: u64,
}

/// The two files of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// The `users` file.
    Users,
    /// The `transactions` file.
    Transactions,
}

impl FileKind {
    /// Form field and report name.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Users => "users",
            FileKind::Transactions => "transactions",
        }
    }

    /// The file sent under form field `name`, if it is one of the two.
    pub fn from_field(name: &str) -> Option<Self> {
        match name {
            "users" => Some(FileKind::Users),
            "transactions" => Some(FileKind::Transactions),
            _ => None,
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One received file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Name the client gave it.
    pub original_name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Data rows (newlines minus the header).
    pub rows: u64,
}

/// A new import job.
#[derive(Debug, Clone)]
pub struct NewImport {
    /// Job id (UUID).
    pub id: String,
    /// Directory holding `users.csv` and `transactions.csv`.
    pub dir: String,
    /// The users file.
    pub users: StoredFile,
    /// The transactions file.
    pub transactions: StoredFile,
    /// Who uploaded it.
    pub created_by: Option<String>,
}

/// Progress through one file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileProgress {
    /// Where the next chunk starts.
    pub checkpoint: Checkpoint,
    /// Rows read.
    pub read: i64,
    /// New rows stored.
    pub inserted: i64,
    /// Existing rows changed.
    pub updated: i64,
    /// Rows identical to what was stored.
    pub unchanged: i64,
    /// Rows rejected.
    pub rejected: i64,
    /// File size.
    pub bytes: i64,
    /// File checksum.
    pub sha256: String,
}

/// Counts of one committed chunk.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkCounts {
    /// Rows read.
    pub read: i64,
    /// New rows.
    pub inserted: i64,
    /// Changed rows.
    pub updated: i64,
    /// Identical rows.
    pub unchanged: i64,
    /// Rejected rows.
    pub rejected: i64,
}

/// Where an import job stands. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    /// Waiting for a worker.
    Queued,
    /// Being imported (or waiting to resume).
    Running,
    /// Imported.
    Succeeded,
    /// Gave up (see the job's error); queued again, it resumes from its checkpoint.
    Failed,
}

impl ImportStatus {
    const ALL: [Self; 4] = [Self::Queued, Self::Running, Self::Succeeded, Self::Failed];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// The status stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// True once the job can change no more (unless queued again).
    pub fn finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// The stage an import job is at, in order. Stored as its lowercase name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportStage {
    /// Not started: both headers are checked first.
    Queued,
    /// Importing the users file.
    Users,
    /// Importing the transactions file.
    Transactions,
    /// Recomputing the daily figures of the days touched.
    Aggregates,
    /// Finished.
    Done,
}

impl ImportStage {
    const ALL: [Self; 5] = [Self::Queued, Self::Users, Self::Transactions, Self::Aggregates, Self::Done];

    /// The stored name (also the key of the stage's time in the job's `stage_ms`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Users => "users",
            Self::Transactions => "transactions",
            Self::Aggregates => "aggregates",
            Self::Done => "done",
        }
    }

    /// The stage stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The stage after this one (`done` stays `done`).
    pub fn next(self) -> Self {
        match self {
            Self::Queued => Self::Users,
            Self::Users => Self::Transactions,
            Self::Transactions => Self::Aggregates,
            Self::Aggregates | Self::Done => Self::Done,
        }
    }
}

/// A job row.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Job id.
    pub id: String,
    /// Where it stands.
    pub status: ImportStatus,
    /// Its stage.
    pub stage: ImportStage,
    /// Upload directory.
    pub file_location: String,
    /// `<transactions name>,<users name>` as the original stored it.
    pub filename: String,
    /// The transactions file's original name.
    pub transactions_filename: String,
    /// The users file's original name.
    pub users_filename: String,
    /// Transactions rows in the file.
    pub total_rows: i64,
    /// Transactions rows read so far.
    pub processed_rows: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// Queue job id and stage timings.
    pub metadata: Value,
    /// Users rows in the file.
    pub users_total: i64,
    /// Users file progress.
    pub users: FileProgress,
    /// Transactions file progress.
    pub transactions: FileProgress,
    /// Days whose aggregates are being recomputed.
    pub days_total: i64,
    /// Days recomputed.
    pub days_done: i64,
    /// Upload time (ms).
    pub created_at: i64,
    /// Uploader.
    pub created_by: Option<String>,
    /// First run start (ms).
    pub started_at: Option<i64>,
    /// Transactions stage start (ms), for the rate.
    pub tx_started_at: Option<i64>,
    /// Last change (ms).
    pub updated_at: i64,
    /// Completion (ms).
    pub processed_at: Option<i64>,
}

/// The home key of a `RowId`: the first 62 bits of its SHA-256 (so probing never overflows).
pub fn transaction_key(id: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 2) as i64
}

/// What the KPIs are computed over: a checked `GET /metrics/kpis` query.
#[derive(Debug, Clone, PartialEq)]
pub struct KpiScope {
    /// First day (inclusive).
    pub start: NaiveDate,
    /// Last day (inclusive).
    pub end: NaiveDate,
    /// Regions (all when empty).
    pub regions: Vec<String>,
    /// Companies (all when empty).
    pub companies: Vec<String>,
    /// Models (all when empty).
    pub models: Vec<String>,
    /// Longest list returned for models, regions and companies.
    pub top: Option<usize>,
}

impl KpiScope {
    /// Reads a KPI query string (list parameters may repeat or hold commas), naming every bad
    /// parameter. Any date range is accepted: the answer is bounded by the data, not the range.
    pub fn parse(query: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let (mut start, mut end, mut top) = (None, None, None);
        let (mut regions, mut companies, mut models) = (Vec::new(), Vec::new(), Vec::new());
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let key = key.trim_end_matches("[]").to_owned();
            if has_control(&value) || value.len() > 200 {
                errors
                    .push(FieldError::new(key, "must be at most 200 characters without control characters"));
                continue;
            }
            let list = |into: &mut Vec<String>| {
                into.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned))
            };
            match key.as_str() {
                "start_date" | "end_date" => match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
                    Ok(d) if key == "start_date" => start = Some(d),
                    Ok(d) => end = Some(d),
                    Err(_) => errors.push(FieldError::new(key, "must be a date YYYY-MM-DD")),
                },
                "regions" => list(&mut regions),
                "companies" => list(&mut companies),
                "models" => list(&mut models),
                "top" => match value.parse::<usize>() {
                    Ok(n) if (1..=1000).contains(&n) => top = Some(n),
                    _ => errors.push(FieldError::new("top", "must be a whole number from 1 to 1000")),
                },
                other => errors.push(FieldError::new(other, "unknown parameter")),
            }
        }
        for (name, value) in [("start_date", start), ("end_date", end)] {
            if value.is_none() && !errors.iter().any(|e| e.field == name) {
                errors.push(FieldError::new(name, "is required (YYYY-MM-DD)"));
            }
        }
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                errors.push(FieldError::new("end_date", "must not be before start_date"));
            }
        }
        for (name, list) in [("regions", &regions), ("companies", &companies), ("models", &models)] {
            if list.len() > 100 {
                errors.push(FieldError::new(name, "at most 100 values"));
            }
        }
        match (start, end) {
            (Some(start), Some(end)) if errors.is_empty() => {
                Ok(Self { start, end, regions, companies, models, top })
            }
            _ => Err(errors),
        }
    }

    /// True when a company or model filter narrows the figures (so they cannot all come from the
    /// daily tables).
    pub fn filtered(&self) -> bool {
        !self.companies.is_empty() || !self.models.is_empty()
    }

    /// The period of the same length just before this one (cut at the earliest day chrono knows).
    pub fn previous(&self) -> KpiScope {
        let days = (self.end - self.start).num_days() + 1;
        KpiScope {
            start: self.start.checked_sub_signed(TimeDelta::days(days)).unwrap_or(NaiveDate::MIN),
            end: self.start.pred_opt().unwrap_or(NaiveDate::MIN),
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn statuses_and_stages_are_stored_by_their_lowercase_names() {
        for status in ImportStatus::ALL {
            assert_eq!(ImportStatus::parse(status.as_str()), Some(status));
            assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
        }
        for stage in ImportStage::ALL {
            assert_eq!(ImportStage::parse(stage.as_str()), Some(stage));
            assert_eq!(serde_json::to_value(stage).unwrap(), stage.as_str());
        }
        assert_eq!(ImportStage::parse("Users"), None);
        for pair in ImportStage::ALL.windows(2) {
            assert_eq!(pair[0].next(), pair[1]);
        }
        assert_eq!(ImportStage::Done.next(), ImportStage::Done);
    }

    #[test]
    fn kpi_query_takes_repeated_and_comma_separated_lists() {
        let s = KpiScope::parse("start_date=2025-01-01&end_date=2025-01-31&regions=EU&regions=US,JP&top=3")
            .unwrap();
        assert_eq!(s.regions, ["EU", "US", "JP"]);
        assert_eq!(s.top, Some(3));
        assert_eq!((s.start, s.end), (day("2025-01-01"), day("2025-01-31")));
    }

    #[test]
    fn kpi_query_errors_name_each_parameter() {
        let errors = KpiScope::parse("end_date=2025-13-01&top=0&region=EU").unwrap_err();
        assert_eq!(fields(&errors), ["end_date", "top", "region", "start_date"]);
        assert_eq!(errors[0].message, "must be a date YYYY-MM-DD");
        assert_eq!(errors[3].message, "is required (YYYY-MM-DD)");
        let errors = KpiScope::parse("start_date=2025-02-01&end_date=2025-01-01").unwrap_err();
        assert_eq!(errors, [FieldError::new("end_date", "must not be before start_date")]);
    }

    #[test]
    fn a_kpi_query_may_span_any_range() {
        let s = KpiScope::parse("start_date=2015-01-01&end_date=2034-12-31").unwrap();
        assert_eq!((s.end - s.start).num_days(), 7304);
        let s = KpiScope::parse("start_date=0001-01-01&end_date=9999-12-31").unwrap();
        let p = s.previous();
        assert!(p.start < p.end && p.end < s.start, "{p:?}");
    }

    #[test]
    fn the_previous_period_has_the_same_length() {
        let scope = KpiScope::parse("start_date=2025-03-01&end_date=2025-03-31").unwrap();
        let p = scope.previous();
        assert_eq!((p.start, p.end), (day("2025-01-29"), day("2025-02-28")));
        let first = KpiScope { start: NaiveDate::MIN, end: NaiveDate::MIN, ..scope };
        assert_eq!((first.previous().start, first.previous().end), (NaiveDate::MIN, NaiveDate::MIN));
    }
}
