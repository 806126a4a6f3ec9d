//! The ordered writer of operators' changes (budgets, pauses): each is
//! written to the store in the background, one at a time in the order they
//! were made (a pause then a resume must not land the other way round).

use std::sync::{Arc, Mutex};

use weft_runtime::capabilities::BoxFuture;

use crate::store::{Store, StoreError};

/// A write of an operator's change, given the store.
type PersistJob =
    Box<dyn for<'a> FnOnce(&'a dyn Store) -> BoxFuture<'a, Result<(), StoreError>> + Send>;

/// Operators' changes waiting to be written, in order.
#[derive(Default)]
pub(crate) struct Writer {
    queue: Mutex<Option<tokio::sync::mpsc::UnboundedSender<(String, PersistJob)>>>,
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
        let queue = lock(&self.queue);
        let Some(queue) = queue.as_ref() else {
            return;
        };
        let label = key.to_string();
        let job: PersistJob =
            Box::new(move |store| Box::pin(async move { write(store, &key).await }));
        if let Err(unsent) = queue.send((label, job)) {
            let key = unsent.0.0;
            tracing::error!(key, "operator change not stored: the writer has stopped");
        }
    }

    /// Starts the task that writes operators' changes to the store, one at
    /// a time in the order they were made (a pause then a resume must not
    /// land the other way round).
    pub fn start(&self, store: Arc<dyn Store>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, PersistJob)>();
        *lock(&self.queue) = Some(tx);
        // Weak: an idle writer must not keep the store (and its lock) open
        // after the engine is gone.
        let store = Arc::downgrade(&store);
        tokio::spawn(async move {
            while let Some((key, write)) = rx.recv().await {
                let Some(store) = store.upgrade() else {
                    tracing::error!(key, "operator change not stored: the store is closed");
                    continue;
                };
                match write(store.as_ref()).await {
                    Ok(()) | Err(StoreError::NotFound(_)) => {}
                    Err(error) => tracing::error!(key, %error, "operator change not stored"),
                }
            }
        });
    }
}
