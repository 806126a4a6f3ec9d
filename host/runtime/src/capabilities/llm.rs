//! The `llm` capability: chat completion through a backend.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::{BoxFuture, CapView};
use crate::bindings::weft::node::llm as wit;
use crate::bindings::wit::Error as WitError;
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError, Completion, CompletionRequest};

/// A source of completions: the local model, an HTTP provider, or a script.
pub trait LlmBackend: Send + Sync {
    /// Answers one request on behalf of the node in `ctx`.
    fn complete<'a>(
        &'a self,
        ctx: &'a CallContext,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>>;
}

/// A backend that is always `unavailable`.
#[derive(Debug, Default)]
pub struct Unavailable;

impl LlmBackend for Unavailable {
    fn complete<'a>(
        &'a self,
        _ctx: &'a CallContext,
        _request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async {
            Err(CapabilityError::Unavailable(
                "no LLM provider is configured".into(),
            ))
        })
    }
}

/// A canned-answer backend for tests and demos: answers are taken in order;
/// when they run out, every call is `unavailable`. Token counts are the
/// whitespace-separated word counts, so tests can assert exact usage.
#[derive(Debug, Default)]
pub struct Scripted {
    answers: Mutex<VecDeque<Result<String, CapabilityError>>>,
    requests: Mutex<Vec<CompletionRequest>>,
}

impl Scripted {
    /// A script that gives `answers` in order.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(answers: I) -> Self {
        Self {
            answers: Mutex::new(answers.into_iter().map(|a| Ok(a.into())).collect()),
            requests: Mutex::default(),
        }
    }

    /// Appends an answer.
    pub fn push(&self, answer: Result<String, CapabilityError>) {
        lock(&self.answers).push_back(answer);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<CompletionRequest> {
        lock(&self.requests).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LlmBackend for Scripted {
    fn complete<'a>(
        &'a self,
        _ctx: &'a CallContext,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        let prompt_tokens = request
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u32)
            .sum();
        lock(&self.requests).push(request);
        let next = lock(&self.answers).pop_front();
        Box::pin(async move {
            let text = next.unwrap_or_else(|| {
                Err(CapabilityError::Unavailable(
                    "the scripted provider has no answers left".into(),
                ))
            })?;
            Ok(Completion {
                completion_tokens: text.split_whitespace().count() as u32,
                text,
                prompt_tokens,
                model: "scripted".into(),
            })
        })
    }
}

/// Per-invocation state of the `llm` capability.
pub(crate) struct LlmState {
    pub backend: std::sync::Arc<dyn LlmBackend>,
}

struct HasLlm;
impl HasData for HasLlm {
    type Data<'a> = CapView<'a, LlmState>;
}

/// Adds the `llm` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wit::add_to_linker::<HostState, HasLlm>(linker, |s| CapView {
        state: &mut s.llm,
        shared: &mut s.shared,
    })
}

impl wit::Host for CapView<'_, LlmState> {
    #[tracing::instrument(name = "weft.llm.complete", skip_all)]
    async fn complete(
        &mut self,
        request: wit::CompletionRequest,
    ) -> Result<wit::Completion, WitError> {
        self.shared.admit(Capability::Llm, "complete")?;
        let request = CompletionRequest::from(request);
        let journal_req = json!(request);
        let result = self
            .state
            .backend
            .complete(&self.shared.call, request)
            .await;
        self.shared
            .record(Capability::Llm, "complete", journal_req, &result);
        result.map(Into::into).map_err(Into::into)
    }
}
