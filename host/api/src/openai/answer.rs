//! What `/v1` answers, in OpenAI's shapes: models, a chat completion and
//! its chunks. Each carries weft's `thread_id` and `run_id` besides
//! OpenAI's fields (clients keep unknown fields: the Python client's
//! objects have them as attributes).

use serde::Serialize;
use weft_engine::FrameTrace;

use super::run::{RunInfo, finish_reason};

/// A model: a graph this host serves.
#[derive(Debug, Serialize)]
pub(crate) struct Model {
    /// The graph's name (or the active graph's alias).
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// When the host started serving it, Unix seconds.
    pub created: u64,
    /// Always `weft`.
    pub owned_by: &'static str,
}

impl Model {
    /// The model `id`, served since `created`.
    pub fn new(id: &str, created: u64) -> Self {
        Self {
            id: id.to_owned(),
            object: "model",
            created,
            owned_by: "weft",
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(crate) struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models.
    pub data: Vec<Model>,
}

/// Tokens of the run, from weft's metering of its `llm` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl Usage {
    /// Every `llm` call of the run, added up.
    pub fn of(trace: &FrameTrace) -> Self {
        let tokens = trace.tokens();
        Self {
            prompt_tokens: tokens.prompt,
            completion_tokens: tokens.completion,
            total_tokens: tokens.total(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

/// A whole answer (`chat.completion`).
#[derive(Debug, Serialize)]
pub(crate) struct Completion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: [Choice<'a>; 1],
    usage: Usage,
    thread_id: &'a str,
    run_id: &'a str,
}

/// The answer's text: the run's reply without the whitespace around it
/// (the same text the stream's pieces add up to).
pub(crate) fn reply(trace: &FrameTrace) -> &str {
    trace.reply.as_deref().map_or("", str::trim)
}

impl<'a> Completion<'a> {
    /// The answer of a finished run.
    pub fn new(info: &'a RunInfo, trace: &'a FrameTrace) -> Self {
        Self {
            id: id(info),
            object: "chat.completion",
            created: info.created,
            model: &info.graph,
            system_fingerprint: &info.version,
            choices: [Choice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: reply(trace),
                    refusal: None,
                },
                logprobs: None,
                finish_reason: finish_reason(trace),
            }],
            usage: Usage::of(trace),
            thread_id: &info.thread,
            run_id: &info.run,
        }
    }
}

/// The answer's id: the run's, so that it can be looked up under
/// `/api/v1`.
fn id(info: &RunInfo) -> String {
    format!("chatcmpl-{}", info.run)
}

/// A chunk's change to the message.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

impl<'a> Delta<'a> {
    /// The first chunk's: the role, and no text yet.
    pub fn role() -> Self {
        Self {
            role: Some("assistant"),
            content: Some(""),
        }
    }

    /// A piece of text.
    pub fn text(text: &'a str) -> Self {
        Self {
            role: None,
            content: Some(text),
        }
    }
}

#[derive(Debug, Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

/// One server-sent piece of a streamed answer (`chat.completion.chunk`).
#[derive(Debug, Serialize)]
pub(crate) struct Chunk<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    /// Left out unless the client asked for usage; then `null` on every
    /// chunk but the last, which has no choices.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
    thread_id: &'a str,
    run_id: &'a str,
}

impl<'a> Chunk<'a> {
    /// A chunk with `delta` (and `finish_reason` on the last one);
    /// `usage: null` when the client asked for usage.
    pub fn delta(
        info: &'a RunInfo,
        delta: Delta<'a>,
        finish_reason: Option<&'static str>,
        include_usage: bool,
    ) -> Self {
        Self {
            id: id(info),
            object: "chat.completion.chunk",
            created: info.created,
            model: &info.graph,
            system_fingerprint: &info.version,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: include_usage.then_some(None),
            thread_id: &info.thread,
            run_id: &info.run,
        }
    }

    /// The usage chunk, after the last one: no choices.
    pub fn usage(info: &'a RunInfo, usage: Usage) -> Self {
        Self {
            choices: Vec::new(),
            usage: Some(Some(usage)),
            ..Self::delta(info, Delta::default(), None, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use weft_engine::RunStatus;

    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            thread: "t-1".into(),
            run: "t-1.run-2".into(),
            graph: "assistant".into(),
            version: "v1".into(),
            created: 1_700_000_000,
        }
    }

    #[test]
    fn a_completion_and_its_chunks_are_in_openais_shape() {
        let info = info();
        let trace = FrameTrace {
            thread: info.thread.clone(),
            run: info.run.clone(),
            graph: "assistant".into(),
            graph_hash: String::new(),
            status: RunStatus::Completed,
            frames: 4,
            reply: Some("  There are 3 devices.\n".into()),
            records: Vec::new(),
            undelivered: Vec::new(),
            duration_us: 0,
        };
        let body = serde_json::to_value(Completion::new(&info, &trace)).expect("JSON");
        assert_eq!(
            body,
            json!({
                "id": "chatcmpl-t-1.run-2", "object": "chat.completion", "created": 1_700_000_000,
                "model": "assistant", "system_fingerprint": "v1",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "There are 3 devices.", "refusal": null},
                             "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
                "thread_id": "t-1", "run_id": "t-1.run-2",
            })
        );
        let first =
            serde_json::to_value(Chunk::delta(&info, Delta::role(), None, false)).expect("JSON");
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(
            first["choices"][0]["delta"],
            json!({"role": "assistant", "content": ""})
        );
        assert!(first["choices"][0]["finish_reason"].is_null());
        assert!(first.get("usage").is_none(), "no usage unless asked for");
        let last = serde_json::to_value(Chunk::delta(&info, Delta::default(), Some("stop"), true))
            .expect("JSON");
        assert_eq!(last["choices"][0]["delta"], json!({}));
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        assert!(last["usage"].is_null() && last.get("usage").is_some());
        let usage = serde_json::to_value(Chunk::usage(&info, Usage::of(&trace))).expect("JSON");
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 0);
    }
}
