//! The module's failures: [`UsageError`], returned by its services. [`crate::http`] gives each
//! variant its HTTP status and stable code.

use sightline_platform::error::FieldError;

use crate::model::FileKind;

/// What can go wrong in the module.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// No import job has this id.
    #[error("job not found")]
    JobNotFound,
    /// A file is larger than `usage.max_file_bytes`.
    #[error("{file}: file is larger than the limit of {limit} bytes (usage.max_file_bytes)")]
    FileTooLarge {
        /// The file (its form field).
        file: FileKind,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The upload as a whole is larger than the route accepts.
    #[error("the upload is larger than the limit")]
    UploadTooLarge,
    /// The upload is not a readable multipart form.
    #[error("malformed multipart body: {0}")]
    MalformedUpload(String),
    /// Files the upload must carry and did not.
    #[error("{}", validation_message(&missing_files(.0)))]
    MissingFiles(Vec<FileKind>),
    /// A file with no bytes.
    #[error("{0}: file is empty")]
    EmptyFile(FileKind),
    /// A form field that is not one of the two files.
    #[error("{0}: unknown form field; send the files as `users` and `transactions`")]
    UnknownField(String),
    /// The same file sent twice.
    #[error("{0}: sent twice")]
    RepeatedField(FileKind),
    /// Reading or writing an upload's files failed.
    #[error("could not store the upload")]
    Io(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The import job or its audit entry could not be recorded.
    #[error("could not queue the import")]
    Enqueue(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl UsageError {
    /// The bad form fields of an upload refused as invalid (empty for every other failure).
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            UsageError::MissingFiles(files) => missing_files(files),
            UsageError::EmptyFile(file) => vec![FieldError::new(file.as_str(), "file is empty")],
            UsageError::UnknownField(name) => vec![FieldError::new(
                name.as_str(),
                "unknown form field; send the files as `users` and `transactions`",
            )],
            UsageError::RepeatedField(file) => vec![FieldError::new(file.as_str(), "sent twice")],
            _ => Vec::new(),
        }
    }
}

fn missing_files(files: &[FileKind]) -> Vec<FieldError> {
    files.iter().map(|f| FieldError::new(f.as_str(), "file is required")).collect()
}

/// The message of a refusal naming `errors`, as the platform words validation errors: the one
/// bad field and what is wrong, or how many there are.
fn validation_message(errors: &[FieldError]) -> String {
    match errors {
        [one] => format!("{}: {}", one.field, one.message),
        many => format!("{} fields are invalid", many.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_fields_are_named_in_the_message_and_the_details() {
        let cases = [
            (
                UsageError::MissingFiles(vec![FileKind::Transactions]),
                "transactions: file is required",
                vec![FieldError::new("transactions", "file is required")],
            ),
            (
                UsageError::MissingFiles(vec![FileKind::Users, FileKind::Transactions]),
                "2 fields are invalid",
                vec![
                    FieldError::new("users", "file is required"),
                    FieldError::new("transactions", "file is required"),
                ],
            ),
            (
                UsageError::EmptyFile(FileKind::Users),
                "users: file is empty",
                vec![FieldError::new("users", "file is empty")],
            ),
            (
                UsageError::RepeatedField(FileKind::Users),
                "users: sent twice",
                vec![FieldError::new("users", "sent twice")],
            ),
            (UsageError::JobNotFound, "job not found", vec![]),
        ];
        for (error, message, fields) in cases {
            assert_eq!(error.to_string(), message);
            assert_eq!(error.field_errors(), fields, "{message}");
        }
        let unknown = UsageError::UnknownField("comment".into());
        assert_eq!(unknown.field_errors()[0].field, "comment");
        assert_eq!(unknown.to_string(), format!("comment: {}", unknown.field_errors()[0].message));
    }
}
