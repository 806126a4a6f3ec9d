//! `OpenAiProvider` and `Failover` against an in-process server speaking the
//! OpenAI wire format, scripted per test.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use weft_llm::{Failover, LlmError, OpenAiConfig, OpenAiProvider, UsageSource};
use weft_runtime::capabilities::llm::{Deltas, LlmBackend, LlmCall, NoDeltas};
use weft_runtime::{CallContext, CapabilityError, ChatMessage, CompletionRequest, Role};

/// One scripted answer of the test server.
#[derive(Clone)]
enum Reply {
    /// A status, headers and body.
    Plain {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// An SSE stream of `data:` events, then a pause before closing.
    Sse { events: Vec<String>, hang: Duration },
    /// Sleeps, then answers.
    Slow(Duration, Box<Reply>),
}

fn ok(body: Value) -> Reply {
    Reply::Plain {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: body.to_string(),
    }
}

fn status(status: u16, body: &str) -> Reply {
    Reply::Plain {
        status,
        headers: vec![],
        body: body.into(),
    }
}

fn completion(text: &str, usage: Option<(u32, u32)>) -> Value {
    let mut body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop"}],
    });
    if let Some((p, c)) = usage {
        body["usage"] = json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c});
    }
    body
}

/// What the server received.
struct Received {
    headers: HeaderMap,
    body: Value,
}

/// A scripted server: answers with the queued replies in order, repeating
/// the last one once the queue is down to it.
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    received: Mutex<Vec<Received>>,
}

impl Script {
    fn received(&self) -> Vec<Value> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.body.clone())
            .collect()
    }
}

async fn chat(State(script): State<Arc<Script>>, headers: HeaderMap, body: String) -> Response {
    let body = serde_json::from_str(&body).unwrap_or(Value::Null);
    script
        .received
        .lock()
        .unwrap()
        .push(Received { headers, body });
    let reply = {
        let mut replies = script.replies.lock().unwrap();
        if replies.len() > 1 {
            replies.pop_front()
        } else {
            replies.front().cloned()
        }
    };
    answer(reply.expect("the test scripted no reply")).await
}

async fn answer(mut reply: Reply) -> Response {
    while let Reply::Slow(wait, then) = reply {
        tokio::time::sleep(wait).await;
        reply = *then;
    }
    match reply {
        Reply::Plain {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::Sse { events, hang } => {
            let frames = events
                .into_iter()
                .map(|e| Ok::<_, std::convert::Infallible>(format!("data: {e}\n\n")));
            let tail = futures_util::stream::once(async move {
                tokio::time::sleep(hang).await;
                Ok::<_, std::convert::Infallible>(String::new())
            });
            let stream = futures_util::StreamExt::chain(futures_util::stream::iter(frames), tail);
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Reply::Slow(..) => unreachable!(),
    }
}

/// Starts a server answering with `replies`; returns its `/v1` URL.
async fn serve(replies: Vec<Reply>) -> (String, Arc<Script>) {
    let script = Arc::new(Script {
        replies: Mutex::new(replies.into()),
        received: Mutex::default(),
    });
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), script)
}

/// A URL where nothing listens.
async fn dead_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/v1")
}

fn config(url: &str) -> OpenAiConfig {
    OpenAiConfig {
        default_model: Some("default-model".into()),
        backoff_base: Duration::from_millis(5),
        ..OpenAiConfig::new("test", url)
    }
}

fn provider(config: OpenAiConfig) -> OpenAiProvider {
    OpenAiProvider::new(config).unwrap()
}

fn ctx() -> CallContext {
    CallContext {
        thread: "t".into(),
        run: "r".into(),
        frame: 0,
        node: "answer".into(),
        project: "default".into(),
    }
}

fn ask(text: &str, stream: bool) -> CompletionRequest {
    CompletionRequest {
        messages: vec![
            ChatMessage {
                role: Role::System,
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: Role::User,
                content: text.into(),
            },
        ],
        max_tokens: 64,
        json_schema: None,
        stream,
    }
}

#[derive(Default)]
struct Collect(Mutex<Vec<String>>);
impl Deltas for Collect {
    fn delta(&self, text: &str) {
        self.0.lock().unwrap().push(text.to_owned());
    }
}

async fn complete(
    backend: &dyn LlmBackend,
    model: Option<&str>,
    request: CompletionRequest,
) -> Result<weft_runtime::Completion, CapabilityError> {
    let ctx = ctx();
    let call = LlmCall {
        ctx: &ctx,
        model,
        deltas: &NoDeltas,
    };
    backend.complete(call, request).await
}

#[tokio::test]
async fn completes_with_mapped_model_and_json_schema() {
    let (url, script) = serve(vec![ok(completion("{\"n\": 3}", Some((21, 5))))]).await;
    let mut config = config(&url);
    config.model_map.insert("small".into(), "qwen3-4b".into());
    let p = provider(config);
    let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}});
    let mut request = ask("how many?", false);
    request.json_schema = Some(schema.to_string());
    let ctx = ctx();
    let call = LlmCall {
        ctx: &ctx,
        model: Some("small"),
        deltas: &NoDeltas,
    };
    let (done, report) = p.complete_detailed(call, request).await.unwrap();
    assert_eq!(done.text, "{\"n\": 3}");
    assert_eq!((done.prompt_tokens, done.completion_tokens), (21, 5));
    assert_eq!(done.model, "served-model");
    assert_eq!(report.usage, UsageSource::Reported);
    assert_eq!((report.attempts, report.provider.as_str()), (1, "test"));

    let sent = &script.received()[0];
    assert_eq!(sent["model"], "qwen3-4b");
    assert_eq!(sent["max_tokens"], 64);
    assert_eq!(sent["stream"], false);
    assert!(sent.get("stream_options").is_none());
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "how many?"}])
    );
    assert_eq!(
        sent["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": true}})
    );
    // Unmapped names pass through; no name means the default model.
    complete(&p, Some("exotic"), ask("x", false)).await.unwrap();
    complete(&p, None, ask("x", false)).await.unwrap();
    let models: Vec<_> = script
        .received()
        .iter()
        .map(|b| b["model"].clone())
        .collect();
    assert_eq!(models, ["qwen3-4b", "exotic", "default-model"]);
}

#[tokio::test]
async fn streams_deltas_and_takes_usage_from_the_final_chunk() {
    let chunk = |content: &str| {
        json!({"choices": [{"index": 0, "delta": {"content": content}}]}).to_string()
    };
    let events = vec![
        json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}).to_string(),
        chunk("Kunde "),
        chunk("1042 hat "),
        chunk("drei Geräte."),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}).to_string(),
        json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 6}}).to_string(),
        "[DONE]".into(),
    ];
    let (url, script) = serve(vec![Reply::Sse {
        events,
        // The provider must stop at [DONE], not wait for the connection.
        hang: Duration::from_secs(30),
    }])
    .await;
    let p = provider(config(&url));
    let collect = Collect::default();
    let ctx = ctx();
    let call = LlmCall {
        ctx: &ctx,
        model: None,
        deltas: &collect,
    };
    let started = Instant::now();
    let (done, report) = p
        .complete_detailed(call, ask("Geräte?", true))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let deltas = collect.0.lock().unwrap().clone();
    assert_eq!(deltas, ["Kunde ", "1042 hat ", "drei Geräte."]);
    assert_eq!(deltas.concat(), done.text);
    assert_eq!((done.prompt_tokens, done.completion_tokens), (12, 6));
    assert_eq!(report.usage, UsageSource::Reported);
    let sent = &script.received()[0];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn missing_usage_is_estimated_and_flagged() {
    let (url, _) = serve(vec![ok(completion("twelve chars", None))]).await;
    let p = provider(config(&url));
    let ctx = ctx();
    let call = LlmCall {
        ctx: &ctx,
        model: None,
        deltas: &NoDeltas,
    };
    // "Be brief." + "hello there, friend" = 9 + 19 = 28 chars → 7 tokens.
    let (done, report) = p
        .complete_detailed(call, ask("hello there, friend", false))
        .await
        .unwrap();
    assert_eq!(report.usage, UsageSource::Estimated);
    assert_eq!((done.prompt_tokens, done.completion_tokens), (7, 3));

    let (url, _) = serve(vec![ok(completion("", None))]).await;
    let p = provider(config(&url));
    let done = complete(&p, None, ask("hi", false)).await.unwrap();
    assert_eq!(
        done.completion_tokens, 1,
        "an estimate is at least one token"
    );
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let (url, script) = serve(vec![
        Reply::Plain {
            status: 429,
            headers: vec![("retry-after", "1".into())],
            body: json!({"error": {"message": "slow down"}}).to_string(),
        },
        ok(completion("finally", Some((1, 1)))),
    ])
    .await;
    let p = provider(config(&url));
    let ctx = ctx();
    let call = LlmCall {
        ctx: &ctx,
        model: None,
        deltas: &NoDeltas,
    };
    let started = Instant::now();
    let (done, report) = p.complete_detailed(call, ask("x", false)).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(done.text, "finally");
    assert_eq!(report.attempts, 2);
    assert_eq!(script.received().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_then_unavailable() {
    let (url, script) = serve(vec![status(500, "{\"error\": {\"message\": \"boom\"}}")]).await;
    let p = provider(OpenAiConfig {
        max_retries: 2,
        ..config(&url)
    });
    let err = complete(&p, None, ask("x", false)).await.unwrap_err();
    assert!(
        matches!(&err, CapabilityError::Unavailable(m) if m.contains("500") && m.contains("boom") && m.contains("3 attempts")),
        "{err}"
    );
    assert_eq!(script.received().len(), 3);
}

#[tokio::test]
async fn a_slow_server_is_unavailable_within_the_timeout() {
    let (url, _) = serve(vec![Reply::Slow(
        Duration::from_secs(10),
        Box::new(ok(completion("late", None))),
    )])
    .await;
    let p = provider(OpenAiConfig {
        timeout: Duration::from_millis(500),
        ..config(&url)
    });
    let started = Instant::now();
    let err = complete(&p, None, ask("x", false)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(
        err,
        CapabilityError::Unavailable("provider `test` did not answer within 500ms".into())
    );
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    let (url, _) = serve(vec![Reply::Sse {
        events: vec![json!({"choices": [{"delta": {"content": "Hal"}}]}).to_string()],
        hang: Duration::from_secs(10),
    }])
    .await;
    let p = provider(OpenAiConfig {
        stream_idle_timeout: Duration::from_millis(300),
        ..config(&url)
    });
    let started = Instant::now();
    let err = complete(&p, None, ask("x", true)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(&err, CapabilityError::Unavailable(m) if m.contains("sent nothing for 300ms")),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_answers_fail_with_an_excerpt() {
    let (url, _) = serve(vec![
        status(200, "{\"choices\": [oops"),
        ok(json!({"object": "chat.completion"})),
    ])
    .await;
    let p = provider(config(&url));
    let err = complete(&p, None, ask("x", false)).await.unwrap_err();
    assert!(
        matches!(&err, CapabilityError::Failed(m) if m.contains("[oops")),
        "{err}"
    );
    let err = complete(&p, None, ask("x", false)).await.unwrap_err();
    assert!(
        matches!(&err, CapabilityError::Failed(m) if m.contains("choices")),
        "{err}"
    );
}

#[tokio::test]
async fn bad_requests_are_invalid_input_and_not_retried() {
    let body =
        json!({"error": {"message": "max_tokens is too large", "type": "invalid_request_error"}});
    let (url, script) = serve(vec![status(400, &body.to_string())]).await;
    let p = provider(config(&url));
    let err = complete(&p, None, ask("x", false)).await.unwrap_err();
    assert!(
        matches!(&err, CapabilityError::InvalidInput(m) if m.contains("max_tokens is too large")),
        "{err}"
    );
    assert_eq!(script.received().len(), 1);

    let mut request = ask("x", false);
    request.json_schema = Some("{not json".into());
    let err = complete(&p, None, request).await.unwrap_err();
    assert!(matches!(err, CapabilityError::InvalidInput(m) if m.contains("schema")));
    assert_eq!(script.received().len(), 1, "a bad schema is never sent");
}

#[tokio::test]
async fn a_rejected_key_fails() {
    let (url, script) = serve(vec![status(401, "{\"error\": {\"message\": \"bad key\"}}")]).await;
    let p = provider(config(&url));
    let err = complete(&p, None, ask("x", false)).await.unwrap_err();
    assert!(
        matches!(&err, CapabilityError::Failed(m) if m.contains("provider `test` rejected the API key")),
        "{err}"
    );
    assert_eq!(script.received().len(), 1);
}

#[test]
fn a_missing_key_variable_is_a_config_error() {
    let err = OpenAiProvider::new(OpenAiConfig {
        api_key_env: Some("WEFT_LLM_TEST_KEY_THAT_IS_NEVER_SET".into()),
        ..OpenAiConfig::new("hosted", "https://api.example.invalid/v1")
    })
    .unwrap_err();
    assert!(
        matches!(&err, LlmError::MissingApiKey { provider, var } if provider == "hosted" && var == "WEFT_LLM_TEST_KEY_THAT_IS_NEVER_SET"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("WEFT_LLM_TEST_KEY_THAT_IS_NEVER_SET")
    );
    let err = OpenAiProvider::new(OpenAiConfig::new("x", "ftp://host/v1")).unwrap_err();
    assert!(matches!(err, LlmError::InvalidConfig { .. }), "{err}");
}

#[tokio::test]
async fn sends_the_key_as_a_bearer_token() {
    // Cargo sets CARGO_PKG_NAME for test processes; mutating the environment
    // of a multi-threaded test binary would be unsound.
    let (url, script) = serve(vec![ok(completion("ok", Some((1, 1))))]).await;
    let p = provider(OpenAiConfig {
        api_key_env: Some("CARGO_PKG_NAME".into()),
        ..config(&url)
    });
    assert!(
        !format!("{p:?}").contains("weft-llm"),
        "the key leaks into Debug"
    );
    complete(&p, None, ask("x", false)).await.unwrap();
    let authorization = script.received.lock().unwrap()[0].headers["authorization"].clone();
    assert_eq!(authorization, "Bearer weft-llm");

    let (url, script) = serve(vec![ok(completion("ok", Some((1, 1))))]).await;
    complete(&provider(config(&url)), None, ask("x", false))
        .await
        .unwrap();
    assert!(
        script.received.lock().unwrap()[0]
            .headers
            .get("authorization")
            .is_none()
    );
}

#[tokio::test]
async fn fails_over_from_a_dead_backend_to_a_live_one() {
    let dead = provider(OpenAiConfig {
        max_retries: 1,
        ..config(&dead_url().await)
    });
    let (url, script) = serve(vec![ok(completion("from the spare", Some((1, 1))))]).await;
    let failover = Failover::new(vec![Arc::new(dead), Arc::new(provider(config(&url)))]);
    let done = complete(&failover, None, ask("x", false)).await.unwrap();
    assert_eq!(done.text, "from the spare");
    assert_eq!(script.received().len(), 1);

    let all_dead = Failover::new(vec![
        Arc::new(provider(config(&dead_url().await))),
        Arc::new(provider(config(&dead_url().await))),
    ]);
    let err = complete(&all_dead, None, ask("x", false))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CapabilityError::Unavailable(m) if m.contains("every LLM backend failed") && m.contains("unreachable")),
        "{err}"
    );
}

#[tokio::test]
async fn does_not_fail_over_on_invalid_input() {
    let (bad_url, _) = serve(vec![status(422, "{\"error\": {\"message\": \"no\"}}")]).await;
    let (spare_url, spare) = serve(vec![ok(completion("spare", Some((1, 1))))]).await;
    let failover = Failover::new(vec![
        Arc::new(provider(config(&bad_url))),
        Arc::new(provider(config(&spare_url))),
    ]);
    let err = complete(&failover, None, ask("x", false))
        .await
        .unwrap_err();
    assert!(matches!(err, CapabilityError::InvalidInput(m) if m.contains("no")));
    assert!(spare.received().is_empty());
}

#[tokio::test]
async fn does_not_fail_over_once_deltas_were_streamed() {
    let (stall_url, _) = serve(vec![Reply::Sse {
        events: vec![json!({"choices": [{"delta": {"content": "Hal"}}]}).to_string()],
        hang: Duration::from_secs(10),
    }])
    .await;
    let (spare_url, spare) = serve(vec![ok(completion("spare", Some((1, 1))))]).await;
    let failover = Failover::new(vec![
        Arc::new(provider(OpenAiConfig {
            stream_idle_timeout: Duration::from_millis(300),
            ..config(&stall_url)
        })),
        Arc::new(provider(config(&spare_url))),
    ]);
    let collect = Collect::default();
    let ctx = ctx();
    let call = LlmCall {
        ctx: &ctx,
        model: None,
        deltas: &collect,
    };
    let err = failover.complete(call, ask("x", true)).await.unwrap_err();
    assert!(matches!(err, CapabilityError::Unavailable(_)));
    assert_eq!(*collect.0.lock().unwrap(), ["Hal"]);
    assert!(spare.received().is_empty());
}
