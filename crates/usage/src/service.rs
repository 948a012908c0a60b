//! What the routes call: receiving uploads, the KPIs, import jobs and their bad-row report. It
//! speaks domain types and [`UsageError`]; the answers' shapes are [`crate::http`]'s.

use bytes::Bytes;
use futures::stream::{self, Stream};
use sightline_platform::db::Db;
use sightline_platform::RequestContext;

use crate::error::UsageError;
use crate::kpis::{self, KpiData};
use crate::model::{FileKind, JobRecord, KpiScope, Reject};
use crate::store;
use crate::upload::{AcceptedUpload, Upload, Uploads};

/// Rows per page when streaming the bad-row report.
const REPORT_PAGE: i64 = 5_000;

/// Everything the routes need.
#[derive(Clone)]
pub struct UsageService {
    db: Db,
    uploads: Uploads,
}

impl UsageService {
    /// The service over `db`, taking uploads with `uploads`.
    pub fn new(db: Db, uploads: Uploads) -> Self {
        Self { db, uploads }
    }

    /// Largest accepted file.
    pub fn max_file_bytes(&self) -> u64 {
        self.uploads.max_file_bytes()
    }

    /// Starts receiving an upload: hand it each file with [`Upload::save`], then
    /// [`UsageService::accept_upload`] (or [`Upload::discard`]).
    pub fn start_upload(&self) -> Upload {
        self.uploads.start()
    }

    /// Queues the import of a received upload, within the request that sent it.
    pub async fn accept_upload(
        &self,
        context: &RequestContext,
        upload: Upload,
    ) -> Result<AcceptedUpload, UsageError> {
        self.uploads.accept(context, upload).await
    }

    /// The KPIs of `scope`.
    pub async fn kpis(&self, scope: &KpiScope) -> Result<KpiData, UsageError> {
        Ok(kpis::assemble(scope, kpis::fetch(&self.db, scope).await?))
    }

    /// One job.
    pub async fn job(&self, id: &str) -> Result<JobRecord, UsageError> {
        store::jobs::load_job(self.db.reader(), id).await?.ok_or(UsageError::JobNotFound)
    }

    /// Jobs, newest first, and their total.
    pub async fn jobs(&self, limit: i64, offset: i64) -> Result<(Vec<JobRecord>, i64), UsageError> {
        Ok(store::jobs::list_jobs(&self.db, limit, offset).await?)
    }

    /// A page of a job's rejected rows, each with its file, and their total.
    pub async fn rejects(
        &self,
        id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<(FileKind, Reject)>, i64), UsageError> {
        let rows = store::jobs::rejects_page(&self.db, id, limit, offset).await?;
        let total = store::jobs::count_rejects(&self.db, id).await?;
        Ok((rows, total))
    }

    /// The whole report as CSV (`file,line,field,reason`), read page by page.
    pub fn rejects_csv(&self, id: String) -> impl Stream<Item = Result<Bytes, UsageError>> + Send + 'static {
        let db = self.db.clone();
        stream::try_unfold(Some(0_i64), move |offset| {
            let (db, id) = (db.clone(), id.clone());
            async move {
                let Some(offset) = offset else { return Ok(None) };
                let mut out =
                    if offset == 0 { String::from("file,line,field,reason\n") } else { String::new() };
                let rows = store::jobs::rejects_page(&db, &id, REPORT_PAGE, offset).await?;
                for (file, r) in &rows {
                    out.push_str(&format!(
                        "{},{},{},{}\n",
                        csv_cell(file.as_str()),
                        r.line,
                        csv_cell(&r.field),
                        csv_cell(&r.reason)
                    ));
                }
                let next = (rows.len() as i64 == REPORT_PAGE).then_some(offset + REPORT_PAGE);
                Ok(Some((Bytes::from(out), next)))
            }
        })
    }
}

/// A CSV cell: quoted when needed, and prefixed with `'` when a spreadsheet would read it as a
/// formula (`=`, `+`, `-`, `@`).
pub fn csv_cell(text: &str) -> String {
    let text =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn report_cells_are_quoted_and_defused() {
        assert_eq!(super::csv_cell("plain"), "plain");
        assert_eq!(super::csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(super::csv_cell("a,b"), "\"a,b\"");
        assert_eq!(super::csv_cell("-5 is negative"), "'-5 is negative");
    }
}
