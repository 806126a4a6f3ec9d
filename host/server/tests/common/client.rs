//! An API client for tests: JSON in, `(status, JSON)` out.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use super::Server;

pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub fn new(server: &Server, key: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            key: key.map(str::to_owned),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// PUTs raw bytes (a component upload) on a connection of its own: a refusal (403, 413 …)
    /// may come before the server has read the body, and the server then
    /// closes the connection, which must not be reused for the next request.
    pub async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .put(format!("{}{path}", self.base))
            .header("content-type", "application/wasm")
            .header("connection", "close")
            .body(bytes);
        if let Some(key) = &self.key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Waits for the thread's run and checks it answered the demo question.
    pub async fn answered(&self, thread: &str) -> Value {
        let result = self.finished(thread).await;
        assert_eq!(result["run"]["status"], "completed", "{result}");
        let reply = result["run"]["reply"].as_str().unwrap_or_default();
        assert!(reply.contains("3 metering devices"), "{result}");
        result
    }

    /// Injects `body` (`POST /api/v1/inject`), waits (two minutes at most)
    /// for that run to complete, and returns its thread and reply.
    pub async fn inject_and_wait(&self, body: Value) -> (String, String) {
        let (code, accepted) = self.post("/api/v1/inject", body).await;
        assert_eq!(code, StatusCode::ACCEPTED, "{accepted}");
        let thread = accepted["threadId"].as_str().unwrap().to_owned();
        let run = accepted["runId"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (code, result) = self
                .get(&format!("/api/v1/threads/{thread}/result?run={run}"))
                .await;
            assert_eq!(code, StatusCode::OK, "{result}");
            if result["run"]["status"] == "completed" && result["busy"] == false {
                let reply = result["run"]["reply"].as_str().unwrap().to_owned();
                return (thread, reply);
            }
            assert!(Instant::now() < deadline, "{result}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls the thread's result until its latest run is no longer running.
    pub async fn finished(&self, thread: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, result) = self.get(&format!("/api/v1/threads/{thread}/result")).await;
            assert_eq!(status, StatusCode::OK, "{result}");
            if !result["busy"].as_bool().unwrap() && result["run"]["status"] != "running" {
                return result;
            }
            assert!(
                Instant::now() < deadline,
                "the run did not finish: {result}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// Every error answer has the one shape.
pub fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Creates a key with `role` (and a project scope) and returns its secret.
pub async fn key(admin: &Client, role: &str, project: Option<&str>) -> String {
    let (status, created) = admin
        .post(
            "/api/v1/keys",
            serde_json::json!({"name": format!("{role} key"), "role": role, "project": project}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["secret"].as_str().unwrap().to_owned()
}
