//! The `llm` capability: chat completion through a backend.
//!
//! Backends implement [`LlmBackend`]. The capability hands each call an
//! [`LlmCall`]: who is calling, the model the graph assigned to the node, and
//! where streamed text deltas go. [`Scripted`] is a real backend with canned
//! answers, for tests and for running graphs without a model.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::hud::EventSink;
use super::{BoxFuture, CapView};
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError, Completion, CompletionRequest};

/// Who is asking, for which model, and where streamed text goes.
#[derive(Clone, Copy)]
pub struct LlmCall<'a> {
    /// Thread, run, frame and node of the invocation.
    pub ctx: &'a CallContext,
    /// The model the graph assigned to the node (`None`: the provider's default).
    pub model: Option<&'a str>,
    /// Receives text deltas while the answer is generated, when the request
    /// asked for streaming. The final text is still returned whole.
    pub deltas: &'a dyn Deltas,
}

impl std::fmt::Debug for LlmCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmCall")
            .field("ctx", self.ctx)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

/// A receiver of streamed text. Implementations must not block.
pub trait Deltas: Send + Sync {
    /// Called with each new piece of generated text, in order.
    fn delta(&self, text: &str);
}

/// Drops every delta (for requests that did not ask to stream).
#[derive(Debug, Default)]
pub struct NoDeltas;

impl Deltas for NoDeltas {
    fn delta(&self, _: &str) {}
}

/// Forwards deltas to an [`EventSink`], tagged with the invocation.
struct SinkDeltas<'a> {
    sink: &'a dyn EventSink,
    ctx: &'a CallContext,
}

impl Deltas for SinkDeltas<'_> {
    fn delta(&self, text: &str) {
        self.sink.delta(self.ctx, text);
    }
}

/// A source of completions: the local model, an HTTP provider, or a script.
pub trait LlmBackend: Send + Sync {
    /// Answers one request on behalf of the node in `call`.
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>>;
}

/// A backend that is always `unavailable`.
#[derive(Debug, Default)]
pub struct Unavailable;

impl LlmBackend for Unavailable {
    fn complete<'a>(
        &'a self,
        _call: LlmCall<'a>,
        _request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        Box::pin(async {
            Err(CapabilityError::Unavailable(
                "no LLM provider is configured".into(),
            ))
        })
    }
}

/// One canned answer of a [`Scripted`] provider and when it applies.
///
/// A rule matches a request when its `node` (if set) is the calling node and
/// its `contains` (if set) occurs in one of the request's messages. Rules are
/// tried in order; a rule without `repeat` is used once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptRule {
    /// Only for this node (graph name); any node when absent.
    #[serde(default)]
    pub node: Option<String>,
    /// Only when a message of the prompt contains this text.
    #[serde(default)]
    pub contains: Option<String>,
    /// The answer text (ignored when `error` is set).
    #[serde(default)]
    pub answer: String,
    /// Answer with this error instead.
    #[serde(default)]
    pub error: Option<CapabilityError>,
    /// Keep the rule after it is used.
    #[serde(default)]
    pub repeat: bool,
    /// Wait this long before answering (simulated latency).
    #[serde(default)]
    pub delay_ms: u64,
}

impl ScriptRule {
    /// A rule answering `answer` to any request, once.
    pub fn answer(answer: impl Into<String>) -> Self {
        Self {
            node: None,
            contains: None,
            answer: answer.into(),
            error: None,
            repeat: false,
            delay_ms: 0,
        }
    }

    /// A rule failing any request with `error`, once.
    pub fn error(error: CapabilityError) -> Self {
        Self {
            error: Some(error),
            ..Self::answer("")
        }
    }

    /// Only for calls from `node`.
    pub fn node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// Only when a prompt message contains `text`.
    pub fn contains(mut self, text: impl Into<String>) -> Self {
        self.contains = Some(text.into());
        self
    }

    /// Keep the rule after use.
    pub fn repeat(mut self) -> Self {
        self.repeat = true;
        self
    }

    /// Answer after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = delay.as_millis() as u64;
        self
    }

    fn matches(&self, node: &str, request: &CompletionRequest) -> bool {
        self.node.as_deref().is_none_or(|n| n == node)
            && self
                .contains
                .as_deref()
                .is_none_or(|c| request.messages.iter().any(|m| m.content.contains(c)))
    }
}

/// A canned-answer provider for tests, demos and `weft run --script`: each
/// request is answered by the first matching [`ScriptRule`]; a request no
/// rule matches is `unavailable`, naming the node. Token counts are
/// whitespace-separated word counts, so tests can assert exact usage;
/// streaming requests get their answer word by word as deltas.
#[derive(Debug, Default)]
pub struct Scripted {
    rules: Mutex<Vec<ScriptRule>>,
    requests: Mutex<std::collections::VecDeque<(CallContext, CompletionRequest)>>,
}

/// Requests a [`Scripted`] model keeps for [`Scripted::requests`] (the
/// newest): a long-running host on a script must not grow with traffic.
pub const SCRIPTED_REQUESTS_KEPT: usize = 4096;

impl Scripted {
    /// A script that gives `answers` in order, whichever node asks.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(answers: I) -> Self {
        Self::from_rules(answers.into_iter().map(ScriptRule::answer))
    }

    /// A script of `rules`.
    pub fn from_rules(rules: impl IntoIterator<Item = ScriptRule>) -> Self {
        Self {
            rules: Mutex::new(rules.into_iter().collect()),
            requests: Mutex::default(),
        }
    }

    /// Parses a script file: a JSON (or YAML-as-JSON) list of [`ScriptRule`]s.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        Ok(Self::from_rules(serde_json::from_str::<Vec<ScriptRule>>(
            text,
        )?))
    }

    /// Appends a rule.
    pub fn push(&self, rule: ScriptRule) {
        lock(&self.rules).push(rule);
    }

    /// Rules not used up yet.
    pub fn remaining(&self) -> usize {
        lock(&self.rules).iter().filter(|r| !r.repeat).count()
    }

    /// The requests received so far (the last [`SCRIPTED_REQUESTS_KEPT`]).
    pub fn requests(&self) -> Vec<CompletionRequest> {
        lock(&self.requests)
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// The requests received so far (the last [`SCRIPTED_REQUESTS_KEPT`])
    /// with the node that made each.
    pub fn requests_by_node(&self) -> Vec<(String, CompletionRequest)> {
        lock(&self.requests)
            .iter()
            .map(|(c, r)| (c.node.clone(), r.clone()))
            .collect()
    }

    fn take(&self, node: &str, request: &CompletionRequest) -> Option<ScriptRule> {
        let mut rules = lock(&self.rules);
        let at = rules.iter().position(|r| r.matches(node, request))?;
        Some(if rules[at].repeat {
            rules[at].clone()
        } else {
            rules.remove(at)
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Words of `text`, each with the whitespace that follows it, so that the
/// deltas concatenate to exactly `text`.
fn word_pieces(text: &str) -> impl Iterator<Item = &str> {
    text.split_inclusive(char::is_whitespace)
}

impl LlmBackend for Scripted {
    fn complete<'a>(
        &'a self,
        call: LlmCall<'a>,
        request: CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, CapabilityError>> {
        let prompt_tokens = request
            .messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u32)
            .sum();
        let rule = self.take(&call.ctx.node, &request);
        let stream = request.stream;
        {
            let mut requests = lock(&self.requests);
            if requests.len() == SCRIPTED_REQUESTS_KEPT {
                requests.pop_front();
            }
            requests.push_back((call.ctx.clone(), request));
        }
        Box::pin(async move {
            let Some(rule) = rule else {
                return Err(CapabilityError::Unavailable(format!(
                    "the scripted provider has no answer for node `{}` and this prompt",
                    call.ctx.node
                )));
            };
            if rule.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(rule.delay_ms)).await;
            }
            if let Some(error) = rule.error {
                return Err(error);
            }
            let text = rule.answer;
            if stream {
                for piece in word_pieces(&text) {
                    call.deltas.delta(piece);
                }
            }
            Ok(Completion {
                completion_tokens: text.split_whitespace().count() as u32,
                text,
                prompt_tokens,
                model: call.model.unwrap_or("scripted").to_owned(),
                provider: "scripted".to_owned(),
                usage_estimated: false,
            })
        })
    }
}

/// Per-invocation state of the `llm` capability.
pub(crate) struct LlmState {
    pub backend: Arc<dyn LlmBackend>,
    pub model: Option<String>,
    pub sink: Arc<dyn EventSink>,
}

struct HasLlm;
impl HasData for HasLlm {
    type Data<'a> = CapView<'a, LlmState>;
}

/// Adds the `llm` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::{v0_1, v0_2, v0_3, v0_4};
    v0_4::weft::node::llm::add_to_linker::<HostState, HasLlm>(linker, |s| CapView {
        state: &mut s.llm,
        shared: &mut s.shared,
    })?;
    v0_3::weft::node::llm::add_to_linker::<HostState, HasLlm>(linker, |s| CapView {
        state: &mut s.llm,
        shared: &mut s.shared,
    })?;
    v0_2::weft::node::llm::add_to_linker::<HostState, HasLlm>(linker, |s| CapView {
        state: &mut s.llm,
        shared: &mut s.shared,
    })?;
    v0_1::weft::node::llm::add_to_linker::<HostState, HasLlm>(linker, |s| CapView {
        state: &mut s.llm,
        shared: &mut s.shared,
    })
}

/// The `llm` host functions, for each contract version's bindings.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $err as WitError;
            use $wit as wit;

            impl wit::Host for CapView<'_, LlmState> {
                // The GenAI semantic conventions of OpenTelemetry:
                // what the exporter turns into the span's attributes.
                #[tracing::instrument(name = "weft.llm.complete", skip_all, fields(
                            gen_ai.operation.name = "chat",
                            gen_ai.request.model = self.state.model.as_deref().unwrap_or("default"),
                            gen_ai.request.max_tokens = i64::from(request.max_tokens),
                            gen_ai.provider.name = tracing::field::Empty,
                            gen_ai.response.model = tracing::field::Empty,
                            gen_ai.usage.input_tokens = tracing::field::Empty,
                            gen_ai.usage.output_tokens = tracing::field::Empty,
                            error.type = tracing::field::Empty,
                        ))]
                async fn complete(
                    &mut self,
                    request: wit::CompletionRequest,
                ) -> Result<wit::Completion, WitError> {
                    self.shared.admit(Capability::Llm, "complete")?;
                    let request = CompletionRequest::from(request);
                    let journal_req = json!({ "model": self.state.model, "request": request });
                    let sink_deltas = SinkDeltas {
                        sink: &*self.state.sink,
                        ctx: &self.shared.call,
                    };
                    let deltas: &dyn Deltas = if request.stream {
                        &sink_deltas
                    } else {
                        &NoDeltas
                    };
                    let call = LlmCall {
                        ctx: &self.shared.call,
                        model: self.state.model.as_deref(),
                        deltas,
                    };
                    let result = self.state.backend.complete(call, request).await;
                    let span = tracing::Span::current();
                    match &result {
                        Ok(c) => {
                            span.record("gen_ai.provider.name", c.provider.as_str());
                            span.record("gen_ai.response.model", c.model.as_str());
                            span.record("gen_ai.usage.input_tokens", i64::from(c.prompt_tokens));
                            span.record(
                                "gen_ai.usage.output_tokens",
                                i64::from(c.completion_tokens),
                            );
                        }
                        Err(e) => {
                            span.record("error.type", e.code());
                        }
                    }
                    self.shared
                        .record(Capability::Llm, "complete", journal_req, result)
                        .map(Into::into)
                        .map_err(Into::into)
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::llm,
    crate::bindings::v0_4::wit::Error
);
host!(
    crate::bindings::v0_3::weft::node::llm,
    crate::bindings::v0_3::wit::Error
);
host!(
    crate::bindings::v0_2::weft::node::llm,
    crate::bindings::v0_2::wit::Error
);
host!(
    crate::bindings::v0_1::weft::node::llm,
    crate::bindings::v0_1::wit::Error
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChatMessage, Role};

    fn ctx(node: &str) -> CallContext {
        CallContext {
            thread: "t".into(),
            run: "r".into(),
            frame: 0,
            node: node.into(),
            project: "default".into(),
        }
    }

    fn ask(text: &str, stream: bool) -> CompletionRequest {
        CompletionRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: text.into(),
            }],
            max_tokens: 10,
            json_schema: None,
            stream,
        }
    }

    struct Collect(Mutex<String>);
    impl Deltas for Collect {
        fn delta(&self, text: &str) {
            lock(&self.0).push_str(text);
        }
    }

    async fn complete(s: &Scripted, node: &str, text: &str) -> Result<String, CapabilityError> {
        let ctx = ctx(node);
        let call = LlmCall {
            ctx: &ctx,
            model: None,
            deltas: &NoDeltas,
        };
        s.complete(call, ask(text, false)).await.map(|c| c.text)
    }

    #[tokio::test]
    async fn rules_match_by_node_and_prompt_in_order() {
        let s = Scripted::from_rules([
            ScriptRule::answer("pa-weather")
                .node("pa")
                .contains("weather"),
            ScriptRule::answer("pa-any").node("pa").repeat(),
            ScriptRule::error(CapabilityError::Failed("boom".into())).node("eras"),
        ]);
        assert_eq!(
            complete(&s, "pa", "the weather?").await.unwrap(),
            "pa-weather"
        );
        assert_eq!(complete(&s, "pa", "the weather?").await.unwrap(), "pa-any");
        assert_eq!(complete(&s, "pa", "x").await.unwrap(), "pa-any");
        assert_eq!(
            complete(&s, "eras", "x").await,
            Err(CapabilityError::Failed("boom".into()))
        );
        let none = complete(&s, "eras", "x").await.unwrap_err();
        assert!(matches!(&none, CapabilityError::Unavailable(m) if m.contains("`eras`")));
        assert_eq!(s.requests_by_node().len(), 5);
        assert_eq!(s.remaining(), 0);
    }

    #[tokio::test]
    async fn streaming_requests_get_deltas_that_add_up_to_the_answer() {
        let s = Scripted::new(["Kunde 1042 hat  drei Geräte.\n"]);
        let ctx = ctx("output");
        let collect = Collect(Mutex::default());
        let call = LlmCall {
            ctx: &ctx,
            model: Some("small"),
            deltas: &collect,
        };
        let done = s.complete(call, ask("hi there", true)).await.unwrap();
        assert_eq!(*lock(&collect.0), done.text);
        assert_eq!(done.completion_tokens, 5);
        assert_eq!(done.prompt_tokens, 2);
        assert_eq!(done.model, "small");
    }

    #[test]
    fn script_files_parse_and_reject_unknown_keys() {
        let s = Scripted::from_json(
            r#"[{"node": "pa", "contains": "hi", "answer": "hello", "delay_ms": 5},
                {"error": {"code": "unavailable", "detail": "down"}}]"#,
        )
        .unwrap();
        assert_eq!(s.remaining(), 2);
        assert!(Scripted::from_json(r#"[{"nod": "pa"}]"#).is_err());
    }
}
