//! Threads for background work that must keep pace with a critical path without crowding it
//! out: parsing ahead of a database writer, summing what it wrote. They run at a lower
//! scheduling priority (nice [`BACKGROUND_NICENESS`]), so on a machine with few cores the
//! writer, the request handlers and a local database server get the CPU first, and the
//! background threads take what is left, which is usually all they need.

use std::future::Future;

use tokio::sync::oneshot;

/// Niceness of background threads: about a tenth of a normal thread's share of a busy core
/// (Linux weights nice 10 at 110 against 1,024), never starved.
pub const BACKGROUND_NICENESS: i32 = 10;

/// A background thread ended by a panic.
#[derive(Debug, thiserror::Error)]
#[error("background thread `{0}` panicked")]
pub struct BackgroundPanicked(pub String);

/// Runs `work` on a new thread named `name` at background priority; the returned future
/// resolves to its result. Dropping the future does not stop the thread.
pub fn spawn_background<T, F>(
    name: &str,
    work: F,
) -> std::io::Result<impl Future<Output = Result<T, BackgroundPanicked>>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (done, result) = oneshot::channel();
    std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        lower_priority();
        let _ = done.send(work());
    })?;
    let name = name.to_owned();
    Ok(async move { result.await.map_err(|_| BackgroundPanicked(name)) })
}

/// Lowers the calling thread's priority to [`BACKGROUND_NICENESS`]. Failing leaves it as it was:
/// the work still runs, only sooner.
fn lower_priority() {
    // On Linux each thread has its own niceness, and `setpriority(PRIO_PROCESS, 0)` sets the
    // calling thread's. Raising it needs no privilege; the thread ends with its work, so nothing
    // has to lower it back.
    if let Err(e) = rustix::process::setpriority_process(None, BACKGROUND_NICENESS) {
        tracing::debug!(error = %e, "background.priority_unchanged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_named_lower_priority_thread_and_its_result_comes_back() {
        let (name, niceness) = spawn_background("sightline-test", || {
            (std::thread::current().name().map(str::to_owned), rustix::process::getpriority_process(None))
        })
        .unwrap()
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("sightline-test"));
        assert!(niceness.unwrap() >= BACKGROUND_NICENESS, "{niceness:?}");
        let here = rustix::process::getpriority_process(None).unwrap();
        assert!(here < BACKGROUND_NICENESS, "the caller's thread keeps its own niceness ({here})");
    }

    #[tokio::test]
    async fn a_panic_is_an_error_naming_the_thread() {
        let err =
            spawn_background("sightline-panics", || -> u32 { panic!("boom") }).unwrap().await.unwrap_err();
        assert_eq!(err.to_string(), "background thread `sightline-panics` panicked");
    }
}
