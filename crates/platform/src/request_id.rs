//! Request ids: taken from `X-Request-Id` or generated (`req_` + 10 hex, as the NBA seed does),
//! echoed on the response, attached to every log line of the request and carried by the jobs it
//! enqueues.

use rand::Rng as _;

/// Header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The request id of the request or job being handled on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Runs `fut` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// Generates `req_` + 10 lowercase hex characters.
pub fn generate() -> String {
    let n: u64 = rand::thread_rng().gen::<u64>() & 0xff_ffff_ffff;
    format!("req_{n:010x}")
}

/// Whether a client-supplied request id is acceptable (printable, bounded).
pub fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
}
