//! Routes of the usage module, on the seed's paths: `POST /upload-csv`, `GET|WS /jobs/{job_id}`,
//! `GET /metrics/kpis`, plus the job list, the bad-row report and the two pages.

use std::time::Duration;

use axum::body::Body;
use axum::extract::multipart::{Multipart, MultipartError};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures::stream;
use serde::Deserialize;
use serde_json::{json, Value};
use sightline_platform::db::now_ms;
use sightline_platform::error::{ApiError, ApiResult, ErrorBody, ErrorCode, FieldError};
use sightline_platform::validate::{has_control, ApiQuery};
use sightline_platform::{paging, Access, Page, RequestContext, SecureRouter};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;

pub mod dto;

use crate::error::UsageError;
use crate::http::dto::{JobStatus, KpiAnswer, RejectedRow, UploadAccepted};
use crate::model::{FileKind, ImportStage, ImportStatus, KpiScope};
use crate::service::UsageService;
use crate::upload::Upload;

/// Each failure's status and stable code: `?` in a handler turns it into the one error body
/// (storage failures into a logged 500). A refused upload names its fields in `details`.
impl ErrorCode for UsageError {
    fn status(&self) -> StatusCode {
        match self {
            UsageError::JobNotFound => StatusCode::NOT_FOUND,
            UsageError::FileTooLarge { .. } | UsageError::UploadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UsageError::MalformedUpload(_) => StatusCode::BAD_REQUEST,
            UsageError::MissingFiles(_)
            | UsageError::EmptyFile(_)
            | UsageError::UnknownField(_)
            | UsageError::RepeatedField(_) => StatusCode::UNPROCESSABLE_ENTITY,
            UsageError::Io(_) | UsageError::Database(_) | UsageError::Enqueue(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn code(&self) -> &'static str {
        match self {
            UsageError::JobNotFound => "not_found",
            UsageError::FileTooLarge { .. } | UsageError::UploadTooLarge => "payload_too_large",
            UsageError::MalformedUpload(_) => "bad_request",
            UsageError::MissingFiles(_)
            | UsageError::EmptyFile(_)
            | UsageError::UnknownField(_)
            | UsageError::RepeatedField(_) => "validation_failed",
            UsageError::Io(_) | UsageError::Database(_) | UsageError::Enqueue(_) => "internal",
        }
    }

    fn details(&self) -> Value {
        match self {
            UsageError::FileTooLarge { file, limit } => json!({"field": file.as_str(), "limit_bytes": limit}),
            UsageError::MissingFiles(_)
            | UsageError::EmptyFile(_)
            | UsageError::UnknownField(_)
            | UsageError::RepeatedField(_) => json!(self.field_errors()),
            _ => Value::Null,
        }
    }
}

/// The module's routes.
pub fn router(service: UsageService) -> SecureRouter {
    // The upload route accepts bodies up to two files plus form overhead.
    let limit = (2 * service.max_file_bytes() + 1024 * 1024).min(usize::MAX as u64) as usize;
    let (schemas, paths, upload) = routes!(upload_csv);
    SecureRouter::new()
        .route(
            Access::Permission("usage:upload"),
            (schemas, paths, upload.layer(DefaultBodyLimit::max(limit))),
        )
        .route(Access::Permission("usage:read"), routes!(list_jobs))
        .route(Access::Permission("usage:read"), routes!(get_job))
        .route(Access::Permission("usage:read"), routes!(job_rejects))
        .route(Access::Permission("usage:read"), routes!(kpis))
        // The pages are static shells: they sign in and read data through the API above.
        .route(Access::Public, routes!(upload_page))
        .route(Access::Public, routes!(dashboard_page))
        .with_state(service)
}

/// The two files of an upload (OpenAPI only; the body is streamed).
#[derive(ToSchema)]
#[allow(dead_code)]
struct UploadForm {
    /// Users CSV: User_ID, User_Name, Region, Is_Active_Sub, Department, Company_Name, Signup_Date.
    #[schema(format = Binary, content_media_type = "text/csv")]
    users: String,
    /// Transactions CSV: RowId, User_ID, Model_Name, Conversation_ID, Token_Type, Token_Count,
    /// Rate_Per_1k, Calculated_Cost, Timestamp.
    #[schema(format = Binary, content_media_type = "text/csv")]
    transactions: String,
}

/// Uploads a users file and a transactions file and queues their import. Both are streamed to
/// disk with their SHA-256; the answer (202) comes once the job is durable. Importing the same
/// files again changes no figure: transactions are keyed by `RowId`, users by `User_ID`.
#[utoipa::path(post, path = "/upload-csv", tag = "usage",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, body = UploadAccepted),
        (status = 413, description = "a file is larger than usage.max_file_bytes", body = ErrorBody),
        (status = 422, description = "a file is missing, empty or sent under an unknown field", body = ErrorBody),
    ))]
async fn upload_csv(
    State(s): State<UsageService>,
    context: RequestContext,
    multipart: Multipart,
) -> ApiResult<(StatusCode, Json<UploadAccepted>)> {
    let mut upload = s.start_upload();
    if let Err(e) = receive_files(multipart, &mut upload).await {
        upload.discard().await;
        return Err(e.into());
    }
    let accepted = s.accept_upload(&context, upload).await?;
    Ok((StatusCode::ACCEPTED, Json(UploadAccepted::queued(accepted))))
}

/// Hands each file of the form to `upload` as its bytes arrive.
async fn receive_files(mut multipart: Multipart, upload: &mut Upload) -> Result<(), UsageError> {
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default();
        let kind = FileKind::from_field(name).ok_or_else(|| UsageError::UnknownField(name.to_owned()))?;
        let file_name = field.file_name().map(str::to_owned);
        let chunks = stream::try_unfold(field, |mut field| async move {
            Ok(field.chunk().await.map_err(multipart_error)?.map(|chunk| (chunk, field)))
        });
        upload.save(kind, file_name.as_deref(), chunks).await?;
    }
    Ok(())
}

/// What a multipart body that cannot be read means for the upload.
fn multipart_error(e: MultipartError) -> UsageError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UsageError::UploadTooLarge
    } else {
        UsageError::MalformedUpload(e.body_text())
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size, 1..=200 (default 50).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// Import jobs, newest first.
#[utoipa::path(get, path = "/jobs", tag = "usage", params(ListQuery),
    responses((status = 200, body = Page<JobStatus>)))]
async fn list_jobs(
    State(s): State<UsageService>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Page<JobStatus>>> {
    let (limit, offset) = paging(q.limit, q.offset)?;
    let (jobs, total) = s.jobs(limit, offset).await?;
    let now = now_ms();
    let items = jobs.iter().map(|job| JobStatus::new(job, now)).collect();
    Ok(Json(Page { items, total, limit, offset }))
}

/// A WebSocket upgrade when the request asks for one.
struct MaybeUpgrade(Option<WebSocketUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let wants = parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if !wants {
            return Ok(Self(None));
        }
        WebSocketUpgrade::from_request_parts(parts, state).await.map(|u| Self(Some(u))).map_err(|rejection| {
            let status = rejection.status();
            ApiError::new(status, sightline_platform::error::code_for_status(status), rejection.body_text())
                .into_response()
        })
    }
}

/// A job id from the path: one with control characters or too long can't exist.
fn known_job(id: &str) -> Result<&str, UsageError> {
    if has_control(id) || id.len() > 64 {
        Err(UsageError::JobNotFound)
    } else {
        Ok(id)
    }
}

/// An import job's state, counts, rate and ETA. As a WebSocket (`WS /jobs/{job_id}`; browsers
/// pass the token as `?access_token=`), it sends the current state at once, then
/// `{"event":"progress","data":…}` on every change and `{"event":"done","data":…}` at the end,
/// and closes.
#[utoipa::path(get, path = "/jobs/{job_id}", tag = "usage",
    params(("job_id" = String, Path, description = "Job id from the upload")),
    responses((status = 200, body = JobStatus), (status = 101, description = "WebSocket progress stream"),
        (status = 404, body = ErrorBody)))]
async fn get_job(
    State(s): State<UsageService>,
    Path(job_id): Path<String>,
    MaybeUpgrade(upgrade): MaybeUpgrade,
) -> ApiResult<Response> {
    let job = s.job(known_job(&job_id)?).await?;
    match upgrade {
        Some(ws) => Ok(ws.on_upgrade(move |socket| watch(socket, s, job_id))),
        None => Ok(Json(JobStatus::new(&job, now_ms())).into_response()),
    }
}

/// Pushes the job's state until it is finished or the client leaves.
async fn watch(mut socket: WebSocket, s: UsageService, job_id: String) {
    let mut last_sent: Option<(ImportStatus, ImportStage, String)> = None;
    loop {
        let job = match s.job(&job_id).await {
            Ok(job) => JobStatus::new(&job, now_ms()),
            Err(UsageError::JobNotFound) => return,
            Err(e) => {
                tracing::warn!(error = %e, "usage.watch_failed");
                return;
            }
        };
        let key = (job.status, job.stage, job.updated_at.clone());
        if last_sent.as_ref() != Some(&key) {
            let event = if job.finished() { "done" } else { "progress" };
            let text = json!({"event": event, "data": job}).to_string();
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
            if job.finished() {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            last_sent = Some(key);
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            message = socket.recv() => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct RejectsQuery {
    /// `csv` (default, the whole report as a download) or `json` (a page).
    format: Option<String>,
    /// Page size for `json`, 1..=200 (default 50).
    limit: Option<i64>,
    /// Rows to skip for `json`.
    offset: Option<i64>,
}

/// The bad-row report: file, line, field and reason of every rejected row.
#[utoipa::path(get, path = "/jobs/{job_id}/rejects", tag = "usage",
    params(("job_id" = String, Path, description = "Job id"), RejectsQuery),
    responses((status = 200, description = "CSV report (or a JSON page with format=json)", content_type = "text/csv"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn job_rejects(
    State(s): State<UsageService>,
    Path(job_id): Path<String>,
    ApiQuery(q): ApiQuery<RejectsQuery>,
) -> ApiResult<Response> {
    let job_id = known_job(&job_id)?.to_owned();
    s.job(&job_id).await?;
    match q.format.as_deref().unwrap_or("csv") {
        "json" => {
            let (limit, offset) = paging(q.limit, q.offset)?;
            let (rejects, total) = s.rejects(&job_id, limit, offset).await?;
            let items = rejects.into_iter().map(|(file, reject)| RejectedRow::new(file, reject)).collect();
            Ok(Json(Page::<RejectedRow> { items, total, limit, offset }).into_response())
        }
        "csv" => {
            let stream = s.rejects_csv(job_id.clone());
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, format!("attachment; filename=\"rejects-{job_id}.csv\"")),
                ],
                Body::from_stream(stream),
            )
                .into_response())
        }
        _ => Err(ApiError::validation(vec![FieldError::new("format", "must be csv or json")])),
    }
}

/// The KPI query (OpenAPI only; list parameters may repeat: `?regions=EU&regions=US`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct KpiParams {
    /// First day, `YYYY-MM-DD` (required).
    start_date: String,
    /// Last day, inclusive, `YYYY-MM-DD` (required).
    end_date: String,
    /// Regions (repeat the parameter, or separate with commas); all when absent.
    regions: Option<Vec<String>>,
    /// Companies; all when absent. Narrows spends, trend, models and tokens.
    companies: Option<Vec<String>>,
    /// Models; all when absent. Narrows spends, trend, companies and tokens.
    models: Option<Vec<String>>,
    /// Longest list returned for models, regions and companies (1..=1000).
    top: Option<usize>,
}

/// Usage KPIs over a date range: the original's `kpis` (the `heighest_model_used` key keeps
/// its spelling), `models_metrics`, `region_wise_spends`, `company_wise_spends` and
/// `max_date_range`, plus company/model filters, `top`, spend per active user and the change
/// against the previous period of the same length.
#[utoipa::path(get, path = "/metrics/kpis", tag = "usage", params(KpiParams),
    responses((status = 200, body = KpiAnswer), (status = 422, body = ErrorBody)))]
async fn kpis(State(s): State<UsageService>, RawQuery(query): RawQuery) -> ApiResult<Json<KpiAnswer>> {
    let scope = KpiScope::parse(query.as_deref().unwrap_or_default()).map_err(ApiError::validation)?;
    let data = s.kpis(&scope).await?;
    Ok(Json(KpiAnswer { message: "success", data }))
}

/// The upload page: choose the two files, watch the import's progress live.
#[utoipa::path(get, path = "/ui/usage", tag = "usage",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn upload_page() -> Html<&'static str> {
    Html(include_str!("../../ui/upload.html"))
}

/// The KPI dashboard: spend per day, tokens by model, top companies.
#[utoipa::path(get, path = "/ui/usage/dashboard", tag = "usage",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn dashboard_page() -> Html<&'static str> {
    Html(include_str!("../../ui/dashboard.html"))
}
