//! A chat completion request, read and checked once at the edge.
//!
//! What weft uses: `model` (a graph), the last message (the user's text),
//! `stream`, `stream_options.include_usage` and `metadata.thread_id` (the
//! conversation's thread). Sampling and serving knobs that a graph decides
//! for itself (`temperature`, `max_tokens`, `stop`, `seed` …) are accepted
//! with their types checked and otherwise ignored. What weft cannot give
//! (`n` above 1, tools, log probabilities, audio, a response format other
//! than text) is refused, so that no client believes it got it. Any other
//! field is refused as unknown.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

use super::error::OpenAiError;
use crate::ids::ThreadId;

/// The metadata key that names the conversation's thread.
pub(crate) const THREAD_KEY: &str = "thread_id";

/// A checked chat completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChatRequest {
    /// The model asked for: a graph's name, or the active graph's alias.
    pub model: String,
    /// The last message's text: what the graph's entry node gets.
    pub text: String,
    /// Server-sent chunks instead of one answer.
    pub stream: bool,
    /// A last chunk with the run's usage (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The thread to continue (`metadata.thread_id`).
    pub thread: Option<ThreadId>,
}

/// The request as sent. Fields weft ignores are read only for their type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the ignored knobs are declared so that they are not unknown
struct Raw {
    model: String,
    messages: Vec<RawMessage>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    metadata: Option<BTreeMap<String, String>>,
    // Refused unless they ask for nothing weft lacks.
    n: Option<u32>,
    logprobs: Option<bool>,
    top_logprobs: Option<u32>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    functions: Option<Vec<Value>>,
    function_call: Option<Value>,
    response_format: Option<Value>,
    modalities: Option<Vec<String>>,
    audio: Option<Value>,
    prediction: Option<Value>,
    web_search_options: Option<Value>,
    // Accepted and ignored: each node of the graph has its own model
    // settings.
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    seed: Option<i64>,
    stop: Option<Value>,
    logit_bias: Option<BTreeMap<String, f64>>,
    user: Option<String>,
    store: Option<bool>,
    service_tier: Option<String>,
    parallel_tool_calls: Option<bool>,
    reasoning_effort: Option<String>,
    verbosity: Option<String>,
    prompt_cache_key: Option<String>,
    safety_identifier: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamOptions {
    include_usage: Option<bool>,
    #[allow(dead_code)] // accepted: weft's chunks need no padding
    include_obfuscation: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // only the role and content are read
struct RawMessage {
    role: Role,
    content: Option<Value>,
    name: Option<String>,
    tool_calls: Option<IgnoredAny>,
    tool_call_id: Option<IgnoredAny>,
    refusal: Option<IgnoredAny>,
    audio: Option<IgnoredAny>,
    function_call: Option<IgnoredAny>,
}

/// serde's message, as an OpenAI error naming the parameter when serde
/// does (an unknown or a missing field).
fn from_serde(e: &serde_json::Error) -> OpenAiError {
    let message = e.to_string();
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = quoted("unknown field `") {
        return OpenAiError::invalid(
            &field,
            "unknown_parameter",
            format!("unknown parameter `{field}` ({message})"),
        );
    }
    if let Some(field) = quoted("missing field `") {
        return OpenAiError::invalid(
            &field,
            "missing_required_parameter",
            format!("missing required parameter `{field}`"),
        );
    }
    let code = if e.is_syntax() || e.is_eof() {
        "invalid_json"
    } else {
        "invalid_value"
    };
    OpenAiError::new(
        StatusCode::BAD_REQUEST,
        code,
        format!("the request body is not a chat completion request: {message}"),
    )
}

fn unsupported(param: &str, what: &str) -> OpenAiError {
    OpenAiError::invalid(
        param,
        "unsupported_parameter",
        format!("weft does not support {what}: a graph answers with text only"),
    )
}

/// Refuses what weft cannot give.
fn refuse_unsupported(raw: &Raw) -> Result<(), OpenAiError> {
    if raw.n.is_some_and(|n| n != 1) {
        return Err(unsupported("n", "more than one choice (`n` other than 1)"));
    }
    if raw.logprobs == Some(true) || raw.top_logprobs.is_some_and(|n| n > 0) {
        return Err(unsupported("logprobs", "log probabilities"));
    }
    if raw.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(unsupported(
            "tools",
            "tools (the graph's nodes call their own)",
        ));
    }
    if raw.functions.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err(unsupported("functions", "functions"));
    }
    let no_tool = |choice: &Option<Value>| {
        choice
            .as_ref()
            .is_none_or(|c| c.is_null() || c == "none" || c == "auto")
    };
    if !no_tool(&raw.tool_choice) {
        return Err(unsupported("tool_choice", "a tool choice"));
    }
    if !no_tool(&raw.function_call) {
        return Err(unsupported("function_call", "a function call"));
    }
    if let Some(format) = raw.response_format.as_ref().filter(|f| !f.is_null())
        && format.get("type").and_then(Value::as_str) != Some("text")
    {
        return Err(unsupported(
            "response_format",
            "a response format other than `{\"type\": \"text\"}`",
        ));
    }
    if raw
        .modalities
        .as_ref()
        .is_some_and(|m| m.iter().any(|m| m != "text"))
    {
        return Err(unsupported("modalities", "modalities other than text"));
    }
    for (param, value) in [
        ("audio", &raw.audio),
        ("prediction", &raw.prediction),
        ("web_search_options", &raw.web_search_options),
    ] {
        if value.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported(param, &format!("`{param}`")));
        }
    }
    Ok(())
}

/// The text of a message's content: a string, or text parts.
fn text_of(content: Option<&Value>, param: &str) -> Result<String, OpenAiError> {
    let parts = match content {
        Some(Value::String(text)) => return Ok(text.clone()),
        Some(Value::Array(parts)) => parts,
        None | Some(Value::Null) => return Ok(String::new()),
        Some(_) => {
            return Err(OpenAiError::invalid(
                param,
                "invalid_value",
                "a message's content is a string or an array of text parts",
            ));
        }
    };
    let mut text = String::new();
    for (i, part) in parts.iter().enumerate() {
        match (
            part.get("type").and_then(Value::as_str),
            part.get("text").and_then(Value::as_str),
        ) {
            (Some("text"), Some(piece)) => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(piece);
            }
            (Some("text"), None) => {
                return Err(OpenAiError::invalid(
                    &format!("{param}[{i}].text"),
                    "invalid_value",
                    "a text part needs its `text`",
                ));
            }
            (kind, _) => {
                return Err(unsupported(
                    &format!("{param}[{i}].type"),
                    &format!("content parts of type {}", kind.unwrap_or("(none)")),
                ));
            }
        }
    }
    Ok(text)
}

/// Reads and checks a request body.
pub(crate) fn parse(body: &[u8]) -> Result<ChatRequest, OpenAiError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| from_serde(&e))?;
    refuse_unsupported(&raw)?;
    let Some(last) = raw.messages.last() else {
        return Err(OpenAiError::invalid(
            "messages",
            "empty_array",
            "`messages` is empty: send at least the user's message",
        ));
    };
    if !raw.messages.iter().any(|m| m.role == Role::User) {
        return Err(OpenAiError::invalid(
            "messages",
            "invalid_value",
            "`messages` has no user message: weft answers the last one",
        ));
    }
    let at = raw.messages.len() - 1;
    if last.role != Role::User {
        return Err(OpenAiError::invalid(
            &format!("messages[{at}].role"),
            "invalid_value",
            "the last message must be the user's: weft answers it (the thread keeps the conversation)",
        ));
    }
    let param = format!("messages[{at}].content");
    let text = text_of(last.content.as_ref(), &param)?;
    if text.trim().is_empty() {
        return Err(OpenAiError::invalid(
            &param,
            "invalid_value",
            "the last user message is empty",
        ));
    }
    let stream = raw.stream.unwrap_or(false);
    if raw.stream_options.is_some() && !stream {
        return Err(OpenAiError::invalid(
            "stream_options",
            "invalid_value",
            "`stream_options` is only allowed with `stream: true`",
        ));
    }
    let thread = raw
        .metadata
        .as_ref()
        .and_then(|m| m.get(THREAD_KEY))
        .map(|id| {
            ThreadId::parse(id.as_str()).map_err(|e| {
                OpenAiError::invalid(
                    &format!("metadata.{THREAD_KEY}"),
                    "invalid_value",
                    e.to_string(),
                )
            })
        })
        .transpose()?;
    Ok(ChatRequest {
        model: raw.model,
        text,
        stream,
        include_usage: raw
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        thread,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(body: Value) -> ChatRequest {
        parse(body.to_string().as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    /// The refusal's (code, param).
    fn refused(body: &str) -> (String, Option<String>) {
        let e = parse(body.as_bytes()).expect_err(body);
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST, "{body}");
        assert!(!e.message.is_empty());
        (e.code, e.param)
    }

    fn user(text: &str) -> Value {
        json!({"role": "user", "content": text})
    }

    #[test]
    fn the_last_user_message_is_the_text_and_the_rest_is_read() {
        let r = ok(json!({
            "model": "assistant",
            "messages": [
                {"role": "system", "content": "be brief"},
                user("first"),
                {"role": "assistant", "content": "an answer", "refusal": null},
                user("How many devices does customer 1042 have?"),
            ],
        }));
        assert_eq!(
            r,
            ChatRequest {
                model: "assistant".into(),
                text: "How many devices does customer 1042 have?".into(),
                stream: false,
                include_usage: false,
                thread: None,
            }
        );
        let r = ok(json!({
            "model": "weft",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "one"}, {"type": "text", "text": "two"}
            ]}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "metadata": {"thread_id": "chat-42", "other": "kept out"},
        }));
        assert_eq!(r.text, "one\ntwo");
        assert!(r.stream && r.include_usage);
        assert_eq!(r.thread.as_ref().map(ThreadId::as_str), Some("chat-42"));
    }

    #[test]
    fn knobs_a_graph_decides_are_accepted_and_type_checked() {
        let r = ok(json!({
            "model": "assistant", "messages": [user("hi")],
            "temperature": 0.2, "top_p": 1, "max_tokens": 50, "max_completion_tokens": 50,
            "presence_penalty": 0, "frequency_penalty": 0, "seed": 7, "stop": ["\n"],
            "logit_bias": {"42": -100}, "user": "u-1", "store": false, "n": 1,
            "logprobs": false, "tools": [], "tool_choice": "none", "response_format": {"type": "text"},
            "modalities": ["text"], "parallel_tool_calls": false, "service_tier": "auto",
            "stream": false,
        }));
        assert_eq!(r.text, "hi");
        let (code, param) = refused(
            r#"{"model": "a", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#,
        );
        assert_eq!((code.as_str(), param), ("invalid_value", None));
    }

    #[test]
    fn bad_requests_name_their_parameter() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("not json", "invalid_json", None),
            (
                r#"{"model": "a"}"#,
                "missing_required_parameter",
                Some("messages"),
            ),
            (
                r#"{"messages": []}"#,
                "missing_required_parameter",
                Some("model"),
            ),
            (
                r#"{"model": "a", "messages": []}"#,
                "empty_array",
                Some("messages"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "hi"}], "frobnicate": 1}"#,
                "unknown_parameter",
                Some("frobnicate"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "hi", "mood": "x"}]}"#,
                "unknown_parameter",
                Some("mood"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "wizard", "content": "hi"}]}"#,
                "invalid_value",
                None,
            ),
            (
                r#"{"model": "a", "messages": [{"role": "system", "content": "be brief"}]}"#,
                "invalid_value",
                Some("messages"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Sure"}]}"#,
                "invalid_value",
                Some("messages[1].role"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "  \n"}]}"#,
                "invalid_value",
                Some("messages[0].content"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user"}]}"#,
                "invalid_value",
                Some("messages[0].content"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": 42}]}"#,
                "invalid_value",
                Some("messages[0].content"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}"#,
                "unsupported_parameter",
                Some("messages[0].content[0].type"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": true}}"#,
                "invalid_value",
                Some("stream_options"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "hi"}], "metadata": {"thread_id": "a/b"}}"#,
                "invalid_value",
                Some("metadata.thread_id"),
            ),
            (
                r#"{"model": "a", "messages": [{"role": "user", "content": "hi"}], "metadata": {"thread_id": 5}}"#,
                "invalid_value",
                None,
            ),
        ];
        for (body, code, param) in cases {
            let (got_code, got_param) = refused(body);
            assert_eq!(
                (got_code.as_str(), got_param.as_deref()),
                (*code, *param),
                "{body}"
            );
        }
    }

    #[test]
    fn what_weft_cannot_give_is_refused_not_ignored() {
        let base = |extra: Value| {
            let mut body = json!({"model": "a", "messages": [user("hi")]});
            for (k, v) in extra.as_object().expect("an object") {
                body[k] = v.clone();
            }
            body.to_string()
        };
        for (extra, param) in [
            (json!({"n": 2}), "n"),
            (json!({"logprobs": true}), "logprobs"),
            (json!({"top_logprobs": 3}), "logprobs"),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f"}}]}),
                "tools",
            ),
            (json!({"tool_choice": "required"}), "tool_choice"),
            (json!({"functions": [{"name": "f"}]}), "functions"),
            (json!({"function_call": {"name": "f"}}), "function_call"),
            (
                json!({"response_format": {"type": "json_object"}}),
                "response_format",
            ),
            (json!({"modalities": ["text", "audio"]}), "modalities"),
            (
                json!({"audio": {"voice": "alloy", "format": "wav"}}),
                "audio",
            ),
            (
                json!({"prediction": {"type": "content", "content": "x"}}),
                "prediction",
            ),
            (json!({"web_search_options": {}}), "web_search_options"),
        ] {
            let body = base(extra);
            let (code, got) = refused(&body);
            assert_eq!(
                (code.as_str(), got.as_deref()),
                ("unsupported_parameter", Some(param)),
                "{body}"
            );
        }
    }
}
