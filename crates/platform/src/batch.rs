//! Group commit: requests that arrive while a batch is being written are written together in
//! the next one, so many small writes share one transaction (and one fsync).

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Sends inputs to one task that handles them in batches of up to `max_batch`.
pub struct Batcher<I, O> {
    tx: mpsc::Sender<(I, oneshot::Sender<O>)>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone() }
    }
}

/// The batching task stopped (it panicked, or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the batch writer is not running")]
pub struct BatcherStopped;

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the task. `handle` gets every input waiting (at least one, at most `max_batch`)
    /// and must answer one output per input, in order.
    pub fn spawn<F, Fut>(max_batch: usize, handle: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<O>> + Send,
    {
        let max_batch = max_batch.max(1);
        let (tx, mut rx) = mpsc::channel::<(I, oneshot::Sender<O>)>(max_batch * 4);
        tokio::spawn(async move {
            let mut waiting = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut waiting, max_batch).await > 0 {
                let (inputs, replies): (Vec<I>, Vec<oneshot::Sender<O>>) = waiting.drain(..).unzip();
                let outputs = handle(inputs).await;
                debug_assert_eq!(outputs.len(), replies.len());
                for (reply, output) in replies.into_iter().zip(outputs) {
                    let _ = reply.send(output); // the caller may have gone away
                }
            }
        });
        Self { tx }
    }

    /// Hands `input` to the next batch and waits for its output.
    pub async fn submit(&self, input: I) -> Result<O, BatcherStopped> {
        let (reply, answer) = oneshot::channel();
        self.tx.send((input, reply)).await.map_err(|_| BatcherStopped)?;
        answer.await.map_err(|_| BatcherStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn concurrent_inputs_share_batches_and_get_their_own_outputs() {
        let batches = Arc::new(AtomicUsize::new(0));
        let seen = batches.clone();
        let batcher = Batcher::spawn(64, move |inputs: Vec<u32>| {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                inputs.into_iter().map(|i| i * 2).collect()
            }
        });
        let answers = futures::future::join_all((0..200).map(|i| {
            let b = batcher.clone();
            async move { b.submit(i).await.unwrap() }
        }))
        .await;
        assert_eq!(answers, (0..200).map(|i| i * 2).collect::<Vec<_>>());
        // 200 inputs waiting together, 64 a batch: 4 batches, a few more if the writer starts
        // before they all arrive; one per input would be 200.
        let n = batches.load(Ordering::SeqCst);
        assert!(n <= 20, "inputs were batched: {n} batches for 200 inputs");
    }
}
