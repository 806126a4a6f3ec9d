//! [`ModelRouter`]: each node's `model` (from its graph) picks a backend.

use std::collections::BTreeMap;
use std::sync::Arc;

use weft_runtime::capabilities::BoxFuture;
use weft_runtime::capabilities::llm::{LlmBackend, LlmCall};
use weft_runtime::{CapabilityError, Completion, CompletionRequest};

/// Routes calls by the calling node's model name: `small` to the local
/// model, `large` to a hosted provider (with failover inside a route, see
/// [`Failover`](crate::Failover)), anything else to the default route.
pub struct ModelRouter {
    routes: BTreeMap<String, Arc<dyn LlmBackend>>,
    default: Option<Arc<dyn LlmBackend>>,
}

impl std::fmt::Debug for ModelRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelRouter")
            .field("models", &self.routes.keys().collect::<Vec<_>>())
            .field("default", &self.default.is_some())
            .finish()
    }
}

impl ModelRouter {
    /// A router with no routes; `default` answers every model not routed
    /// (none: such calls are `unavailable`).
    pub fn new(default: Option<Arc<dyn LlmBackend>>) -> Self {
        Self {
            routes: BTreeMap::new(),
            default,
        }
    }

    /// Sends calls for `model` to `backend`.
    pub fn route(mut self, model: impl Into<String>, backend: Arc<dyn LlmBackend>) -> Self {
        self.routes.insert(model.into(), backend);
        self
    }

    /// The model names with a route of their own.
    pub fn models(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }
}

impl LlmBackend for ModelRouter {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        let backend = call
            .model
            .and_then(|m| self.routes.get(m))
            .or(self.default.as_ref());
        match backend {
            Some(backend) => backend.complete(call, request),
            None => {
                let model = call.model.unwrap_or("(none)").to_owned();
                Box::pin(async move {
                    Err(CapabilityError::Unavailable(format!(
                        "no LLM provider is configured for model `{model}`"
                    )))
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_runtime::CallContext;
    use weft_runtime::capabilities::llm::{NoDeltas, Scripted};

    async fn ask(router: &ModelRouter, model: Option<&str>) -> Result<String, CapabilityError> {
        let ctx = CallContext {
            thread: "t".into(),
            run: "r".into(),
            frame: 0,
            node: "n".into(),
            project: "default".into(),
        };
        let call = LlmCall {
            ctx: &ctx,
            model,
            deltas: &NoDeltas,
        };
        let request = CompletionRequest {
            messages: vec![],
            max_tokens: 5,
            json_schema: None,
            stream: false,
        };
        router.complete(call, request).await.map(|c| c.text)
    }

    #[tokio::test]
    async fn calls_go_to_their_models_route_or_the_default() {
        let small: Arc<dyn LlmBackend> = Arc::new(Scripted::new(["from small"]));
        let fallback: Arc<dyn LlmBackend> = Arc::new(Scripted::new(["from default"]));
        let router = ModelRouter::new(Some(fallback)).route("small", small);
        assert_eq!(ask(&router, Some("small")).await.unwrap(), "from small");
        assert_eq!(ask(&router, Some("large")).await.unwrap(), "from default");
        let bare = ModelRouter::new(None);
        let err = ask(&bare, Some("large")).await.unwrap_err();
        assert!(matches!(err, CapabilityError::Unavailable(m) if m.contains("`large`")));
    }
}
