//! The chat WebSocket checks `?thread=` with the rule REST requests use
//! (the check runs only on an upgrade, so it needs a real socket).

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use common::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Error;

const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_websocket_refuses_thread_ids_rest_refuses() {
    use futures_util::StreamExt;
    let server = Server::start("ws-thread-ids", &[], &["--script", SCRIPT]);
    let ws = server.base.replace("http://", "ws://");
    let long = "x".repeat(129);
    for id in ["a%2Fb", "tab%09here", long.as_str()] {
        let url = format!("{ws}/api/v1/ws?thread={id}&access_token={}", server.admin);
        let Err(Error::Http(response)) = tokio_tungstenite::connect_async(url).await else {
            panic!("thread `{id}`: no refusal");
        };
        assert_eq!(response.status(), 400, "{id}");
        let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        assert_eq!(body["error"]["code"], "invalid_request", "{body}");
        assert_eq!(body["error"]["field"], "thread", "{body}");
        assert_eq!(
            body["error"]["message"],
            "a thread id has 1 to 128 characters, no `/` and no control characters"
        );
    }
    let url = format!("{ws}/api/v1/ws?thread=t-ws-1&access_token={}", server.admin);
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a valid id connects");
    let first = socket.next().await.expect("open").expect("a message");
    let session: Value = serde_json::from_str(first.into_text().unwrap().as_str()).unwrap();
    assert_eq!(session["type"], "session");
    assert_eq!(session["threadId"], "t-ws-1");
}
