//! The upload contract: the two CSV files' columns, how each cell is read, and why a row is
//! rejected. Files are read in chunks from a byte offset, so an import resumes where its last
//! committed chunk ended.

use std::fs::File;
use std::io::{BufReader, Seek as _, SeekFrom};
use std::path::Path;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::model::{transaction_key, Checkpoint, Reject, TransactionRow, UserRow};
use crate::records::{Found, Record, RecordReader};

/// The users file's columns, in the seed's order (any order is accepted).
pub const USER_COLUMNS: [&str; 7] =
    ["User_ID", "User_Name", "Region", "Is_Active_Sub", "Department", "Company_Name", "Signup_Date"];

/// The transactions file's columns, in the seed's order (any order is accepted).
pub const TRANSACTION_COLUMNS: [&str; 9] = [
    "RowId",
    "User_ID",
    "Model_Name",
    "Conversation_ID",
    "Token_Type",
    "Token_Count",
    "Rate_Per_1k",
    "Calculated_Cost",
    "Timestamp",
];

/// Longest accepted identifier (ids, model names).
const MAX_ID: usize = 128;
/// Longest accepted free text (names, departments, companies).
const MAX_TEXT: usize = 200;

/// A file that cannot be imported: not the expected CSV (for good), or not readable just now.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    /// What is wrong.
    pub message: String,
    /// The file itself is wrong, so no retry can help; else reading failed and may not again.
    pub permanent: bool,
}

impl FileError {
    /// The file is not what it should be.
    fn invalid(message: String) -> Self {
        Self { message, permanent: true }
    }

    /// Reading failed.
    fn unreadable(message: String) -> Self {
        Self { message, permanent: false }
    }

    /// As a job's error: a [`PermanentFailure`] for a wrong file, a retryable error otherwise.
    pub fn into_job_error(self) -> anyhow::Error {
        if self.permanent {
            sightline_platform::queue::PermanentFailure(self.message).into()
        } else {
            anyhow::anyhow!(self.message)
        }
    }
}

/// One chunk of parsed rows.
#[derive(Debug)]
pub struct Chunk<R> {
    /// Good rows with their line numbers.
    pub rows: Vec<(u64, R)>,
    /// Bad rows.
    pub rejects: Vec<Reject>,
    /// Where the next chunk starts.
    pub end: Checkpoint,
}

impl<R> Chunk<R> {
    /// Rows read (good and bad).
    pub fn read(&self) -> u64 {
        (self.rows.len() + self.rejects.len()) as u64
    }
}

/// The cells of one record, by column name.
pub struct Fields<'a> {
    record: Record<'a>,
    map: &'a [usize],
}

impl Fields<'_> {
    /// Column `i` of the expected list, as trimmed UTF-8.
    fn text(&self, i: usize, name: &str) -> Result<&str, Reject> {
        let raw = self.record.get(self.map[i]).unwrap_or_default();
        let text = std::str::from_utf8(raw).map_err(|_| Reject::new(name, "is not valid UTF-8"))?;
        let text = text.trim();
        if text.chars().any(|c| c.is_control()) {
            return Err(Reject::new(name, "contains control characters"));
        }
        Ok(text)
    }

    fn required(&self, i: usize, name: &str, max: usize) -> Result<String, Reject> {
        let text = self.text(i, name)?;
        if text.is_empty() {
            return Err(Reject::new(name, "is required"));
        }
        if text.chars().count() > max {
            return Err(Reject::new(name, format!("is longer than {max} characters")));
        }
        Ok(text.to_owned())
    }

    fn optional(&self, i: usize, name: &str, max: usize) -> Result<Option<String>, Reject> {
        let text = self.text(i, name)?;
        if text.is_empty() {
            return Ok(None);
        }
        if text.chars().count() > max {
            return Err(Reject::new(name, format!("is longer than {max} characters")));
        }
        Ok(Some(text.to_owned()))
    }

    fn amount(&self, i: usize, name: &str) -> Result<f64, Reject> {
        let text = self.text(i, name)?;
        let value: f64 =
            text.parse().map_err(|_| Reject::new(name, format!("'{}' is not a number", clip(text))))?;
        if !value.is_finite() || value < 0.0 {
            return Err(Reject::new(name, format!("{} must be a finite number ≥ 0", clip(text))));
        }
        Ok(value)
    }
}

fn clip(text: &str) -> String {
    if text.chars().count() <= 40 {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(40).collect::<String>())
    }
}

/// Reads a users row.
pub fn parse_user(f: &Fields<'_>) -> Result<UserRow, Reject> {
    let signup = f.text(6, "Signup_Date")?;
    Ok(UserRow {
        id: f.required(0, "User_ID", MAX_ID)?,
        username: f.required(1, "User_Name", MAX_TEXT)?,
        region: f.required(2, "Region", MAX_ID)?,
        is_active_sub: parse_bool(f.text(3, "Is_Active_Sub")?)
            .ok_or_else(|| Reject::new("Is_Active_Sub", "must be true or false (also 1/0, yes/no)"))?,
        department: f.optional(4, "Department", MAX_TEXT)?,
        company_name: f.optional(5, "Company_Name", MAX_TEXT)?,
        signup_ms: if signup.is_empty() {
            None
        } else {
            Some(parse_timestamp(signup).ok_or_else(|| bad_time("Signup_Date", signup))?)
        },
    })
}

/// Reads a transactions row.
pub fn parse_transaction(f: &Fields<'_>) -> Result<TransactionRow, Reject> {
    let token_type = match f.text(4, "Token_Type")?.to_ascii_lowercase().as_str() {
        "prompt" => "prompt",
        "completion" => "completion",
        other => {
            return Err(Reject::new("Token_Type", format!("'{}' is not prompt or completion", clip(other))))
        }
    };
    let count = f.text(5, "Token_Count")?;
    let token_count: i64 = count
        .parse()
        .map_err(|_| Reject::new("Token_Count", format!("'{}' is not a whole number", clip(count))))?;
    if token_count < 0 {
        return Err(Reject::new("Token_Count", format!("{token_count} is negative")));
    }
    let stamp = f.text(8, "Timestamp")?;
    let timestamp_ms = parse_timestamp(stamp).ok_or_else(|| bad_time("Timestamp", stamp))?;
    let id = f.required(0, "RowId", MAX_ID)?;
    Ok(TransactionRow {
        key: transaction_key(&id),
        id,
        user_id: f.required(1, "User_ID", MAX_ID)?,
        model_name: f.required(2, "Model_Name", MAX_ID)?,
        conversation_id: f.required(3, "Conversation_ID", MAX_ID)?,
        token_type,
        token_count,
        rate_per_1k: f.amount(6, "Rate_Per_1k")?,
        calculated_cost: f.amount(7, "Calculated_Cost")?,
        timestamp_ms,
        date: utc_date(timestamp_ms),
    })
}

fn bad_time(field: &str, text: &str) -> Reject {
    let reason = if text.is_empty() {
        "is required".to_owned()
    } else {
        format!(
            "'{}' is not a date-time (use 2025-01-31T13:45:00Z, 2025-01-31 13:45:00 or 2025-01-31)",
            clip(text)
        )
    };
    Reject::new(field, reason)
}

/// `true/false`, `1/0`, `yes/no`, `t/f`, `y/n` in any case; empty is `false`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "t" | "y" => Some(true),
        "false" | "0" | "no" | "f" | "n" | "" => Some(false),
        _ => None,
    }
}

/// RFC 3339 (`2025-01-31T13:45:00Z`, any offset), `2025-01-31 13:45:00[.fff][+01:00]`,
/// `2025-01-31T13:45:00[.fff]` (no offset: UTC), or a bare date (midnight UTC); as epoch ms.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// The UTC day of an epoch-ms time, `YYYY-MM-DD`.
pub fn utc_date(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// Most cells a header may have.
const MAX_HEADER_FIELDS: usize = 1024;

/// How a file is read: rows per chunk, and the longest row (bytes of cell data) held.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// Rows (good and bad) per chunk.
    pub chunk_rows: usize,
    /// Longest row; a longer one is rejected with its line.
    pub max_row_bytes: usize,
}

/// Reads one CSV file in chunks, from a checkpoint, in memory bounded by the longest row
/// allowed: a longer row is rejected with its line, and reading goes on.
pub struct CsvChunks {
    reader: RecordReader<BufReader<File>>,
    map: Vec<usize>,
    width: usize,
    chunk_rows: usize,
    max_row_bytes: usize,
}

impl CsvChunks {
    /// Opens `path` (called `label` in errors), checks its header against `expected`, and
    /// positions it at `from` (the first row when `from` is the default).
    pub fn open(
        path: &Path,
        label: &str,
        expected: &[&str],
        from: Checkpoint,
        limits: ReadLimits,
    ) -> Result<Self, FileError> {
        let ReadLimits { chunk_rows, max_row_bytes } = limits;
        let unreadable =
            |e: std::io::Error| FileError::unreadable(format!("{label} file cannot be read: {e}"));
        let mut file = File::open(path).map_err(unreadable)?;
        let input = BufReader::with_capacity(256 * 1024, file.try_clone().map_err(unreadable)?);
        let mut reader = RecordReader::new(input, 0, 1, max_row_bytes, MAX_HEADER_FIELDS);
        let (map, width) = match reader.read().map_err(unreadable)? {
            Found::Record { .. } => {
                let header = reader.record();
                (column_map(header, label, expected)?, header.len())
            }
            Found::End => {
                return Err(FileError::invalid(format!(
                    "{label} file is empty: expected a header row ({})",
                    expected.join(",")
                )))
            }
            Found::TooLong { .. } => {
                return Err(FileError::invalid(format!(
                    "{label} file is not a CSV with the expected header: its first row is longer than \
                     {max_row_bytes} bytes (usage.max_row_bytes)"
                )))
            }
            Found::TooManyFields { fields, .. } => {
                return Err(FileError::invalid(format!(
                    "{label} file is not a CSV with the expected header: its first row has {fields} \
                     cells, more than {MAX_HEADER_FIELDS}"
                )))
            }
        };
        if from.offset > 0 {
            file.seek(SeekFrom::Start(from.offset)).map_err(unreadable)?;
            let input = BufReader::with_capacity(256 * 1024, file);
            reader = RecordReader::new(input, from.offset, from.line, max_row_bytes, width);
        } else {
            reader.set_max_fields(width);
        }
        Ok(Self { reader, width, map, chunk_rows: chunk_rows.max(1), max_row_bytes })
    }

    /// The next chunk of at most `chunk_rows` rows, each read with `parse`; `None` at the end.
    pub fn next_chunk<R>(
        &mut self,
        parse: impl Fn(&Fields<'_>) -> Result<R, Reject>,
    ) -> Result<Option<Chunk<R>>, FileError> {
        let mut rows = Vec::with_capacity(self.chunk_rows);
        let mut rejects = Vec::new();
        while rows.len() + rejects.len() < self.chunk_rows {
            let (_, at) = self.reader.position();
            let found = self
                .reader
                .read()
                .map_err(|e| FileError::unreadable(format!("line {at}: the file cannot be read: {e}")))?;
            let line = match found {
                Found::End => break,
                Found::Record { line } => line,
                Found::TooLong { line, bytes } => {
                    let reason = format!(
                        "is {bytes} bytes long, more than the limit of {} (usage.max_row_bytes)",
                        self.max_row_bytes
                    );
                    rejects.push(Reject { line, field: String::new(), reason });
                    continue;
                }
                Found::TooManyFields { line, fields } => {
                    let reason = format!("has {fields} fields, the header has {}", self.width);
                    rejects.push(Reject { line, field: String::new(), reason });
                    continue;
                }
            };
            let record = self.reader.record();
            // A blank line is no row.
            if record.len() == 1 && record.get(0).unwrap_or_default().iter().all(|b| b.is_ascii_whitespace())
            {
                continue;
            }
            if record.len() != self.width {
                rejects.push(Reject {
                    line,
                    field: String::new(),
                    reason: format!("has {} fields, the header has {}", record.len(), self.width),
                });
                continue;
            }
            match parse(&Fields { record, map: &self.map }) {
                Ok(row) => rows.push((line, row)),
                Err(mut reject) => {
                    reject.line = line;
                    rejects.push(reject);
                }
            }
        }
        if rows.is_empty() && rejects.is_empty() {
            return Ok(None);
        }
        let (offset, line) = self.reader.position();
        Ok(Some(Chunk { rows, rejects, end: Checkpoint { offset, line } }))
    }
}

/// Where each expected column is in the file's header.
fn column_map(header: Record<'_>, label: &str, expected: &[&str]) -> Result<Vec<usize>, FileError> {
    let names: Vec<String> = (0..header.len())
        .filter_map(|i| header.get(i))
        .enumerate()
        .map(|(i, raw)| {
            let raw = if i == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
            String::from_utf8_lossy(raw).trim().to_owned()
        })
        .collect();
    let mut map = Vec::with_capacity(expected.len());
    let mut missing = Vec::new();
    for want in expected {
        match names.iter().position(|n| n == want) {
            Some(i) => map.push(i),
            None => missing.push(*want),
        }
    }
    if !missing.is_empty() {
        let shown: String = names.join(",").chars().take(120).collect();
        return Err(FileError::invalid(format!(
            "{label} file is not a CSV with the expected header: missing column(s) {} (header read: \"{shown}\")",
            missing.join(", ")
        )));
    }
    Ok(map)
}

/// Counts the rows of a CSV file as it streams by: newlines, minus the header.
#[derive(Debug, Default)]
pub struct LineCounter {
    newlines: u64,
    last: Option<u8>,
}

impl LineCounter {
    /// Feeds the next bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.newlines += bytes.iter().filter(|b| **b == b'\n').count() as u64;
        if let Some(b) = bytes.last() {
            self.last = Some(*b);
        }
    }

    /// Data rows seen (an estimate when quoted cells hold newlines).
    pub fn rows(&self) -> u64 {
        let lines = self.newlines + u64::from(self.last.is_some_and(|b| b != b'\n'));
        lines.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn file(text: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text).unwrap();
        f
    }

    fn limits(chunk_rows: usize) -> ReadLimits {
        ReadLimits { chunk_rows, max_row_bytes: 4096 }
    }

    const HEADER: &str =
        "RowId,User_ID,Model_Name,Conversation_ID,Token_Type,Token_Count,Rate_Per_1k,Calculated_Cost,Timestamp\n";

    #[test]
    fn timestamps_in_the_documented_formats_parse_to_utc() {
        let want = 1_738_331_100_000; // 2025-01-31T13:45:00Z
        for text in [
            "2025-01-31T13:45:00Z",
            "2025-01-31T14:45:00+01:00",
            "2025-01-31 13:45:00",
            "2025-01-31T13:45:00",
            "2025-01-31 13:45:00.000",
            "2025-01-31 13:45:00+00:00",
            "2025-01-31 13:45",
        ] {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
        assert_eq!(parse_timestamp("2025-01-31"), Some(1_738_281_600_000));
        assert_eq!(parse_timestamp("31/01/2025"), None);
        assert_eq!(utc_date(want), "2025-01-31");
    }

    #[test]
    fn bad_rows_are_rejected_one_by_one_with_line_and_reason() {
        let mut text = HEADER.as_bytes().to_vec();
        text.extend_from_slice(b"r1,u1,gpt-4o,c1,prompt,100,0.01,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r2,u1,gpt-4o,c1,prompt,-5,0.01,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r3,u1,gpt-4o,c1,answer,5,0.01,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r4,u1,gpt-4o\n");
        text.extend_from_slice(b"r5,u1,gpt-\xff,c1,prompt,5,0.01,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r6,u1,=SUM(A1),c1,completion,5,0.01,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r7,,gpt-4o,c1,prompt,5,0.01,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r8,u1,gpt-4o,c1,prompt,5,abc,0.001,2025-01-31T10:00:00Z\n");
        text.extend_from_slice(b"r9,u1,gpt-4o,c1,prompt,5,0.01,0.001,yesterday\n");
        let f = file(&text);
        let mut chunks = CsvChunks::open(
            f.path(),
            "transactions",
            &TRANSACTION_COLUMNS,
            Checkpoint::default(),
            limits(100),
        )
        .unwrap();
        let chunk = chunks.next_chunk(parse_transaction).unwrap().unwrap();
        let ids: Vec<&str> = chunk.rows.iter().map(|(_, r)| r.id.as_str()).collect();
        assert_eq!(ids, ["r1", "r6"]);
        assert_eq!(chunk.rows[1].1.model_name, "=SUM(A1)", "formula-like text is kept as text");
        let rejects: Vec<(u64, &str)> = chunk.rejects.iter().map(|r| (r.line, r.field.as_str())).collect();
        assert_eq!(
            rejects,
            [
                (3, "Token_Count"),
                (4, "Token_Type"),
                (5, ""),
                (6, "Model_Name"),
                (8, "User_ID"),
                (9, "Rate_Per_1k"),
                (10, "Timestamp")
            ]
        );
        assert!(chunk.rejects[0].reason.contains("negative"));
        assert!(chunk.rejects[2].reason.contains("3 fields"));
        assert!(chunk.rejects[3].reason.contains("UTF-8"));
        assert!(chunks.next_chunk(parse_transaction).unwrap().is_none());
    }

    #[test]
    fn reading_resumes_from_a_checkpoint() {
        let mut text = HEADER.to_owned();
        for i in 0..10 {
            text.push_str(&format!("r{i},u1,m,c{i},prompt,{i},0.01,0.1,2025-01-0{}T00:00:00Z\n", i % 9 + 1));
        }
        let f = file(text.as_bytes());
        let mut chunks =
            CsvChunks::open(f.path(), "t", &TRANSACTION_COLUMNS, Checkpoint::default(), limits(4)).unwrap();
        let first = chunks.next_chunk(parse_transaction).unwrap().unwrap();
        assert_eq!(first.rows.len(), 4);
        assert_eq!(first.end.line, 6);
        let mut again = CsvChunks::open(f.path(), "t", &TRANSACTION_COLUMNS, first.end, limits(100)).unwrap();
        let rest = again.next_chunk(parse_transaction).unwrap().unwrap();
        let ids: Vec<&str> = rest.rows.iter().map(|(_, r)| r.id.as_str()).collect();
        assert_eq!(ids, ["r4", "r5", "r6", "r7", "r8", "r9"]);
        assert_eq!(rest.rows[0].0, 6, "line numbers continue");
    }

    #[test]
    fn a_file_that_is_not_the_expected_csv_is_refused_with_the_missing_columns() {
        let f = file(b"\x89PNG\r\n\x1a\n\x00\x00binary");
        let err = CsvChunks::open(
            f.path(),
            "transactions",
            &TRANSACTION_COLUMNS,
            Checkpoint::default(),
            limits(10),
        )
        .err()
        .unwrap();
        assert!(err.message.contains("missing column(s) RowId") && err.permanent, "{err}");
        let f =
            file(b"\xEF\xBB\xBFUser_ID,User_Name,Region,Is_Active_Sub,Department,Company_Name,Signup_Date\n");
        assert!(
            CsvChunks::open(f.path(), "users", &USER_COLUMNS, Checkpoint::default(), limits(10)).is_ok(),
            "BOM is skipped"
        );
        let f = file(b"");
        assert!(CsvChunks::open(f.path(), "users", &USER_COLUMNS, Checkpoint::default(), limits(10)).is_err());
    }

    #[test]
    fn line_counter_counts_data_rows() {
        let mut c = LineCounter::default();
        c.feed(b"a,b\n1,2\n3,");
        c.feed(b"4");
        assert_eq!(c.rows(), 2);
        c.feed(b"\n");
        assert_eq!(c.rows(), 2);
    }
}
