//! The ordered writer of operators' changes (budgets, pauses): each is
//! written to the store in the background, one at a time in the order they
//! were made (a pause then a resume must not land the other way round).

use std::sync::{Arc, Mutex};

use weft_runtime::capabilities::BoxFuture;

use crate::store::{Store, StoreError};

/// A write of an operator's change, given the store.
type PersistJob =
    Box<dyn for<'a> FnOnce(&'a dyn Store) -> BoxFuture<'a, Result<(), StoreError>> + Send>;

/// Told the outcome of a write, when its caller waits for it.
type Ack = Option<tokio::sync::oneshot::Sender<Result<(), StoreError>>>;

/// Operators' changes waiting to be written, in order.
#[derive(Default)]
pub(crate) struct Writer {
    queue: Mutex<Option<tokio::sync::mpsc::UnboundedSender<(String, PersistJob, Ack)>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Writer {
    /// Writes an operator's decision (budget, pause) to the store in the
    /// background (a thread without a stored run yet gets its token limit
    /// with its first run).
    pub fn persist<K: std::fmt::Display + Send + Sync + 'static>(
        &self,
        write: impl for<'a> FnOnce(&'a dyn Store, &'a K) -> BoxFuture<'a, Result<(), StoreError>>
        + Send
        + 'static,
        key: K,
    ) {
        let _ = self.enqueue(write, key, None);
    }

    /// Writes an operator's decision in the same order as
    /// [`persist`](Self::persist), and resolves once it is stored (or
    /// refused): what answers an operator waits for this. `Ok` at once
    /// without a store.
    pub async fn persist_acked<K: std::fmt::Display + Send + Sync + 'static>(
        &self,
        write: impl for<'a> FnOnce(&'a dyn Store, &'a K) -> BoxFuture<'a, Result<(), StoreError>>
        + Send
        + 'static,
        key: K,
    ) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if !self.enqueue(write, key, Some(tx))? {
            return Ok(());
        }
        rx.await
            .map_err(|_| StoreError::Backend("the store's writer stopped".into()))?
    }

    /// Queues a write; false without a store.
    fn enqueue<K: std::fmt::Display + Send + Sync + 'static>(
        &self,
        write: impl for<'a> FnOnce(&'a dyn Store, &'a K) -> BoxFuture<'a, Result<(), StoreError>>
        + Send
        + 'static,
        key: K,
        ack: Ack,
    ) -> Result<bool, StoreError> {
        let queue = lock(&self.queue);
        let Some(queue) = queue.as_ref() else {
            return Ok(false);
        };
        let label = key.to_string();
        let job: PersistJob =
            Box::new(move |store| Box::pin(async move { write(store, &key).await }));
        if let Err(unsent) = queue.send((label, job, ack)) {
            let key = unsent.0.0;
            tracing::error!(key, "operator change not stored: the writer has stopped");
            return Err(StoreError::Backend("the store's writer has stopped".into()));
        }
        Ok(true)
    }

    /// Starts the task that writes operators' changes to the store, one at
    /// a time in the order they were made (a pause then a resume must not
    /// land the other way round).
    pub fn start(&self, store: Arc<dyn Store>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, PersistJob, Ack)>();
        *lock(&self.queue) = Some(tx);
        // Weak: an idle writer must not keep the store (and its lock) open
        // after the engine is gone.
        let store = Arc::downgrade(&store);
        tokio::spawn(async move {
            while let Some((key, write, ack)) = rx.recv().await {
                let Some(store) = store.upgrade() else {
                    tracing::error!(key, "operator change not stored: the store is closed");
                    if let Some(ack) = ack {
                        let _ = ack.send(Err(StoreError::Backend("the store is closed".into())));
                    }
                    continue;
                };
                let result = match write(store.as_ref()).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
                    Err(error) => {
                        tracing::error!(key, %error, "operator change not stored");
                        Err(error)
                    }
                };
                if let Some(ack) = ack {
                    let _ = ack.send(result);
                }
            }
        });
    }
}
