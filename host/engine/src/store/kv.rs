//! The projects' `store` state (contract 0.3.0) as invocations read it,
//! from a [`Store`].

use weft_runtime::capabilities::BoxFuture;

use super::{Store, StoreError};

/// The projects' `store` state read from a [`Store`], as invocations see
/// it (a failing store is `unavailable` to the node).
pub(crate) struct StoreKv(pub std::sync::Arc<dyn Store>);

fn unavailable(e: StoreError) -> weft_runtime::CapabilityError {
    weft_runtime::CapabilityError::Unavailable(format!("the store: {e}"))
}

impl weft_runtime::capabilities::store::KvStore for StoreKv {
    fn get<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, weft_runtime::CapabilityError>> {
        Box::pin(async move {
            self.0
                .kv_get(project, namespace, key)
                .await
                .map_err(unavailable)
        })
    }

    fn list<'a>(
        &'a self,
        project: &'a str,
        namespace: &'a str,
        prefix: &'a str,
        after: Option<&'a str>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<String>, weft_runtime::CapabilityError>> {
        Box::pin(async move {
            self.0
                .kv_list(project, namespace, prefix, after, limit)
                .await
                .map_err(unavailable)
        })
    }

    fn count<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<u64, weft_runtime::CapabilityError>> {
        Box::pin(async move { self.0.kv_count(project).await.map_err(unavailable) })
    }
}
