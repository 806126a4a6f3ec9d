//! OpenTelemetry over OTLP: `weft serve` with `telemetry.otlp_endpoint`
//! exports its spans to a receiver this test runs (an OTLP/HTTP endpoint
//! decoding the protobuf with the official `opentelemetry-proto` types).
//! A request carrying a W3C `traceparent` starts a run; every span of the
//! run is in the caller's trace, and the parent links go request › run ›
//! frame › node › host call, with the GenAI attributes on the `llm` calls.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use common::client::Client;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";
const QUESTION: &str = "How many devices does customer 1042 have?";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";

type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn traces(State(received): State<Received>, body: Bytes) -> impl IntoResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new()).into_response();
    };
    let mut all = received.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.clone())
            .map(|v| match v {
                Any::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                all.push((service.clone(), span));
            }
        }
    }
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        ExportTraceServiceResponse::default().encode_to_vec(),
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<Any> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_spans_reach_the_collector_in_the_callers_trace() {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(Arc::clone(&received));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let data = temp_dir("telemetry");
    let config = data.join("weft.yaml");
    std::fs::write(
        &config,
        format!("telemetry:\n  otlp_endpoint: \"{collector}\"\n  service_name: weft-test\n"),
    )
    .unwrap();
    let server = Server::start_in(
        data,
        &["--config", config.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let http = reqwest::Client::new();
    let answer = http
        .post(server.url("/api/v1/inject"))
        .bearer_auth(&server.admin)
        .header("traceparent", format!("00-{TRACE}-{CALLER}-01"))
        .json(&json!({"text": QUESTION}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let accepted: serde_json::Value = answer.json().await.unwrap();
    let admin = Client::new(&server, Some(&server.admin));
    admin.answered(accepted["threadId"].as_str().unwrap()).await;
    // Stopping the host flushes the batched spans.
    let status = server.terminate();
    assert!(status.success(), "{status}");

    let spans = received.lock().unwrap().clone();
    assert!(!spans.is_empty(), "the collector received no span");
    assert!(spans.iter().all(|(service, _)| service == "weft-test"));
    let ours: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| hex(&s.trace_id) == TRACE)
        .collect();
    let by_id: HashMap<String, &Span> = ours.iter().map(|s| (hex(&s.span_id), *s)).collect();
    let named =
        |name: &str| -> Vec<&Span> { ours.iter().copied().filter(|s| s.name == name).collect() };
    let parent = |s: &Span| by_id.get(&hex(&s.parent_span_id)).map(|p| p.name.as_str());
    // The request continues the caller's span …
    let request = named("POST /api/v1/inject");
    assert_eq!(
        request.len(),
        1,
        "{:?}",
        ours.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert_eq!(hex(&request[0].parent_span_id), CALLER);
    // … the run is its child, the frames the run's, the nodes a frame's,
    // the host calls a node's.
    let run = named("weft.run");
    assert_eq!(run.len(), 1);
    assert_eq!(parent(run[0]), Some("POST /api/v1/inject"));
    let frames = named("weft.frame");
    assert!(frames.len() >= 3, "{} frames", frames.len());
    assert!(frames.iter().all(|f| parent(f) == Some("weft.run")));
    let nodes = named("weft.node");
    assert!(nodes.len() >= frames.len());
    assert!(nodes.iter().all(|n| parent(n) == Some("weft.frame")));
    let calls = named("weft.llm.complete");
    assert_eq!(calls.len(), 3, "input, memorizer and output call the model");
    for call in &calls {
        assert_eq!(parent(call), Some("weft.node"));
        assert_eq!(
            attribute(call, "gen_ai.operation.name"),
            Some(Any::StringValue("chat".into()))
        );
        assert_eq!(
            attribute(call, "gen_ai.request.model"),
            Some(Any::StringValue("small".into()))
        );
        assert_eq!(
            attribute(call, "gen_ai.provider.name"),
            Some(Any::StringValue("scripted".into()))
        );
        for tokens in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
            match attribute(call, tokens) {
                Some(Any::IntValue(n)) => assert!(n > 0, "{tokens} = {n}"),
                other => panic!("{tokens}: {other:?}"),
            }
        }
    }
    let db = named("weft.db.query");
    assert!(!db.is_empty(), "the expert's SQL is a host call");
    assert!(db.iter().all(|c| parent(c) == Some("weft.node")));
}

/// An endpoint that is not an http(s) URL stops `weft serve` at start,
/// naming the setting.
#[test]
fn an_otlp_endpoint_that_is_not_a_url_stops_the_start() {
    let data = temp_dir("telemetry-bad");
    let config = data.join("weft.yaml");
    std::fs::write(&config, "telemetry:\n  otlp_endpoint: \"collector:4318\"\n").unwrap();
    let out = weft(
        &data,
        &[
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--script",
            SCRIPT,
        ],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("telemetry.otlp_endpoint is not an http(s) URL"),
        "{stderr}"
    );
}
