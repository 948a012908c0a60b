//! Threads for background work that must keep pace with a critical path without crowding it
//! out: parsing ahead of a database writer, summing what it wrote. They run at a lower
//! scheduling priority ([`BACKGROUND_NICENESS`] above the thread that starts them), so on a
//! machine with few cores the writer, the request handlers and a local database server get the
//! CPU first, and the background threads take what is left, which is usually all they need.

use std::future::Future;

use tokio::sync::oneshot;

/// How much nicer background threads are than the thread that starts them: about a tenth of its
/// share of a busy core (Linux weights nice 10 at 110 against 1,024), never starved. Relative,
/// so a server run under `nice -n 15` still has its background threads behind it.
pub const BACKGROUND_NICENESS: i32 = 10;

/// The highest niceness Linux allows.
const MAX_NICENESS: i32 = 19;

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

/// Raises the calling thread's niceness by [`BACKGROUND_NICENESS`] (up to 19). Failing leaves
/// it as it was: the work still runs, only sooner.
fn lower_priority() {
    // On Linux each thread has its own niceness, inherited from the thread that spawned it, and
    // `setpriority(PRIO_PROCESS, 0)` sets the calling thread's. Raising it needs no privilege;
    // the thread ends with its work, so nothing has to lower it back.
    let inherited = rustix::process::getpriority_process(None).unwrap_or(0);
    let niceness = (inherited + BACKGROUND_NICENESS).min(MAX_NICENESS);
    if let Err(e) = rustix::process::setpriority_process(None, niceness) {
        tracing::debug!(error = %e, "background.priority_unchanged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_on_a_named_lower_priority_thread_and_its_result_comes_back() {
        let here = rustix::process::getpriority_process(None).unwrap();
        let (name, niceness) = spawn_background("sightline-test", || {
            (std::thread::current().name().map(str::to_owned), rustix::process::getpriority_process(None))
        })
        .unwrap()
        .await
        .unwrap();
        assert_eq!(name.as_deref(), Some("sightline-test"));
        let expected = (here + BACKGROUND_NICENESS).min(MAX_NICENESS);
        assert_eq!(niceness.unwrap(), expected, "nicer than the caller ({here})");
        if here < MAX_NICENESS {
            assert!(expected > here, "behind the caller even when it runs under nice");
        }
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), here, "the caller keeps its own");
    }

    #[tokio::test]
    async fn a_panic_is_an_error_naming_the_thread() {
        let err =
            spawn_background("sightline-panics", || -> u32 { panic!("boom") }).unwrap().await.unwrap_err();
        assert_eq!(err.to_string(), "background thread `sightline-panics` panicked");
    }
}
