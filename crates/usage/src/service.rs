//! The module's read side for handlers: job status, the bad-row report; and the handles of the
//! upload and KPI services.

use bytes::Bytes;
use futures::stream::{self, Stream};
use sightline_platform::db::{now_ms, Db};

use crate::kpis::KpiService;
use crate::model::{JobStatus, RejectedRow};
use crate::store;
use crate::upload::Uploads;

/// Rows per page when streaming the bad-row report.
const REPORT_PAGE: i64 = 5_000;

/// Everything the routes need.
#[derive(Clone)]
pub struct UsageService {
    db: Db,
    /// Receives uploads.
    pub uploads: Uploads,
    /// Computes KPIs.
    pub kpis: KpiService,
}

impl UsageService {
    /// The service over `db`.
    pub fn new(db: Db, uploads: Uploads) -> Self {
        Self { kpis: KpiService::new(db.clone()), db, uploads }
    }

    /// One job's status.
    pub async fn job(&self, id: &str) -> Result<Option<JobStatus>, sqlx::Error> {
        let job = store::load_job(self.db.reader(), id).await?;
        Ok(job.map(|j| JobStatus::new(&j, now_ms())))
    }

    /// Jobs, newest first, and their total.
    pub async fn jobs(&self, limit: i64, offset: i64) -> Result<(Vec<JobStatus>, i64), sqlx::Error> {
        let now = now_ms();
        let (jobs, total) = store::list_jobs(&self.db, limit, offset).await?;
        Ok((jobs.iter().map(|j| JobStatus::new(j, now)).collect(), total))
    }

    /// A page of a job's rejected rows and their total.
    pub async fn rejects(
        &self,
        id: &str,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<RejectedRow>, i64), sqlx::Error> {
        let rows = store::rejects_page(&self.db, id, limit, offset).await?;
        let total = store::count_rejects(&self.db, id).await?;
        let items = rows
            .into_iter()
            .map(|(file, r)| RejectedRow { file, line: r.line, field: r.field, reason: r.reason })
            .collect();
        Ok((items, total))
    }

    /// The whole report as CSV (`file,line,field,reason`), read page by page.
    pub fn rejects_csv(&self, id: String) -> impl Stream<Item = Result<Bytes, sqlx::Error>> + Send + 'static {
        let db = self.db.clone();
        stream::try_unfold(Some(0_i64), move |offset| {
            let (db, id) = (db.clone(), id.clone());
            async move {
                let Some(offset) = offset else { return Ok(None) };
                let mut out =
                    if offset == 0 { String::from("file,line,field,reason\n") } else { String::new() };
                let rows = store::rejects_page(&db, &id, REPORT_PAGE, offset).await?;
                for (file, r) in &rows {
                    out.push_str(&format!(
                        "{},{},{},{}\n",
                        csv_cell(file),
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
