//! Tenant isolation in the operators' API, over a real socket: keys limited
//! to a project (API keys and OIDC tokens, admins included) stay in their
//! project and never act host-wide; event streams are per project (their
//! own history, numbering and `missed` counts) and capped per key; event
//! ids survive a restart; OIDC claims fail closed; the chat socket is
//! rate-limited and closes when its key is revoked or its token expires;
//! no key reaches the logs or the config; metrics labels come from routes,
//! not from clients.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

mod common;

use std::time::Duration;

use common::client::{Client, assert_error, key};
use common::*;
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

const QUESTION: &str = "How many devices does customer 1042 have?";
const SCRIPT: &str = "graphs/scripts/assistant-demo.json";

/// A server with `config` (YAML) as its config file.
fn with_config(name: &str, config: &str) -> Server {
    let data = temp_dir(name);
    let path = data.join("weft.yaml");
    std::fs::write(&path, config).unwrap();
    Server::start_in(
        data,
        &["--config", path.to_str().unwrap()],
        &["--script", SCRIPT],
    )
}

/// One server-sent event: id, type, data.
type Sse = (Option<u64>, String, Value);

/// Reads server-sent events from `resp` until `done` says so.
async fn read_until(resp: reqwest::Response, mut done: impl FnMut(&Sse) -> bool) -> Vec<Sse> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap_or_else(|_| panic!("no end in time; got {events:?}"))
            .expect("stream open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut kind = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_owned();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !kind.is_empty() {
                let event = (id, kind, serde_json::from_str(&data).unwrap_or(Value::Null));
                let end = done(&event);
                events.push(event);
                if end {
                    return events;
                }
            }
        }
    }
}

/// `GET /api/v1/events` with `key`, resuming after `last` when given.
async fn sse(server: &Server, key: &str, last: Option<u64>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(server.url("/api/v1/events"))
        .bearer_auth(key);
    if let Some(last) = last {
        req = req.header("Last-Event-ID", last.to_string());
    }
    req.send().await.unwrap()
}

/// Injects the demo question with `client` and waits for the answer.
async fn ask(client: &Client) -> String {
    let (status, accepted) = client
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    client.answered(&thread).await;
    thread
}

fn ws_base(server: &Server) -> String {
    server.base.replace("http://", "ws://")
}

/// The next text message of `socket` as JSON, or the close frame's code
/// and reason as `{"close": code, "reason": …}`.
async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("a message in time")
            .expect("open");
        match msg {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).unwrap(),
            Ok(Message::Close(frame)) => {
                let frame = frame.expect("a close frame with a code");
                return json!({"close": u16::from(frame.code), "reason": frame.reason.as_str()});
            }
            Ok(_) => {}
            Err(e) => panic!("socket error: {e}"),
        }
    }
}

/// Waits for the close frame, skipping other messages.
async fn closed_with<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        let v = next_json(socket).await;
        if v.get("close").is_some() {
            return v;
        }
    }
}

fn key_id(keys: &Value, name: &str) -> String {
    keys.as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == name)
        .unwrap_or_else(|| panic!("no key `{name}` in {keys}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn named_key(admin: &Client, name: &str, role: &str, project: Option<&str>) -> String {
    let (status, created) = admin
        .post(
            "/api/v1/keys",
            json!({"name": name, "role": role, "project": project}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["secret"].as_str().unwrap().to_owned()
}

/// Every host-wide act a project key must be refused, as (method, path,
/// JSON body).
fn host_wide_acts(plugin: &str) -> Vec<(reqwest::Method, String, Option<Value>)> {
    use reqwest::Method as M;
    vec![
        (
            M::PUT,
            "/api/v1/graphs/active".into(),
            Some(json!({"name": "assistant"})),
        ),
        (M::POST, "/api/v1/organism/reload".into(), Some(json!({}))),
        (
            M::POST,
            "/api/v1/organism/config/reload".into(),
            Some(json!({})),
        ),
        (
            M::POST,
            format!("/api/v1/plugins/{plugin}/reload"),
            Some(json!({})),
        ),
        (M::POST, "/api/v1/usage/reset".into(), Some(json!({}))),
        (M::GET, "/api/v1/organism/config".into(), None),
        (M::POST, "/api/v1/organism/stop".into(), Some(json!({}))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_keys_stay_in_their_project_whatever_their_role() {
    let server = Server::start("tenancy-keys", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let acme_admin = named_key(&admin, "acme admin", "admin", Some("acme")).await;
    named_key(&admin, "globex viewer", "viewer", Some("globex")).await;
    named_key(&admin, "host viewer", "viewer", None).await;
    let acme = Client::new(&server, Some(&acme_admin));
    let (_, all) = admin.get("/api/v1/keys").await;

    // Keys: only its project's, listed, created and revoked.
    for project in [json!("globex"), Value::Null] {
        let (status, body) = acme
            .post(
                "/api/v1/keys",
                json!({"name": "escape", "role": "admin", "project": project}),
            )
            .await;
        assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("acme"),
            "{body}"
        );
    }
    let (status, created) = acme
        .post(
            "/api/v1/keys",
            json!({"name": "acme ci", "role": "operator", "project": "acme"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, listed) = acme.get("/api/v1/keys").await;
    assert_eq!(status, StatusCode::OK);
    let projects: Vec<&Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["project"])
        .collect();
    assert_eq!(projects.len(), 2, "{listed}");
    assert!(projects.iter().all(|p| *p == "acme"), "{listed}");
    for other in ["globex viewer", "host viewer", "bootstrap admin"] {
        let id = key_id(&all, other);
        let (status, body) = acme
            .send(reqwest::Method::DELETE, &format!("/api/v1/keys/{id}"), None)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "not_found");
    }
    let (_, still) = admin.get("/api/v1/keys").await;
    assert_eq!(
        still.as_array().unwrap().len(),
        5,
        "nothing revoked: {still}"
    );
    let ci = created["key"]["id"].as_str().unwrap();
    let (status, _) = acme
        .send(reqwest::Method::DELETE, &format!("/api/v1/keys/{ci}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // Nothing host-wide, not even for a project's admin.
    let (_, plugins) = admin.get("/api/v1/plugins").await;
    let plugin = plugins[0]["name"].as_str().unwrap().to_owned();
    for (method, path, body) in host_wide_acts(&plugin) {
        let (status, answer) = acme.send(method.clone(), &path, body).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("every project"),
            "{method} {path}: {answer}"
        );
    }
    let (status, answer) = acme
        .put_bytes(&format!("/api/v1/plugins/{plugin}"), b"\0asm".to_vec())
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");

    // Switching the active graph is an unscoped admin's: an unscoped
    // operator is refused too; the host admin may.
    let operator = Client::new(&server, Some(&key(&admin, "operator", None).await));
    let (status, answer) = operator
        .put("/api/v1/graphs/active", json!({"name": "assistant"}))
        .await;
    assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    let (status, answer) = admin
        .put("/api/v1/graphs/active", json!({"name": "assistant"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        Client::new(&server, None).get("/ready").await.0,
        StatusCode::OK,
        "the project admin did not stop the host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_claims_fail_closed_and_project_tokens_stay_in_their_project() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    const SECRET: &[u8] = b"weft-test-oidc-secret-0123456789abcdef";
    let data = temp_dir("tenancy-oidc");
    let jwks = data.join("jwks.json");
    std::fs::write(
        &jwks,
        json!({"keys": [{"kty": "oct", "kid": "k1", "alg": "HS256",
            "k": "d2VmdC10ZXN0LW9pZGMtc2VjcmV0LTAxMjM0NTY3ODlhYmNkZWY"}]})
        .to_string(),
    )
    .unwrap();
    let config = format!(
        "api:\n  oidc: {{ issuer: \"https://id.example\", audience: weft, jwks_file: \"{}\" }}\n",
        jwks.display()
    );
    let path = data.join("weft.yaml");
    std::fs::write(&path, config).unwrap();
    let server = Server::start_in(
        data,
        &["--config", path.to_str().unwrap()],
        &["--script", SCRIPT],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |role: Value, project: Option<Value>, exp: u64| {
        let mut claims = json!({"iss": "https://id.example", "aud": "weft", "sub": "ada", "exp": exp, "weft_role": role});
        if let Some(p) = project {
            claims["weft_project"] = p;
        }
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k1".into());
        encode(&header, &claims, &EncodingKey::from_secret(SECRET)).unwrap()
    };
    // A project claim that is not a project name never means every project.
    for project in [
        None,
        Some(Value::Null),
        Some(json!(42)),
        Some(json!(["acme", "globex"])),
        Some(json!({"name": "acme"})),
        Some(json!("")),
    ] {
        let shown = format!("{project:?}");
        let client = Client::new(&server, Some(&token(json!("admin"), project, now + 600)));
        let (status, body) = client.get("/api/v1/keys").await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("weft_project"),
            "{shown}: {body}"
        );
    }
    for role in [
        Value::Null,
        json!(3),
        json!(["admin"]),
        json!({"r": "admin"}),
    ] {
        let shown = role.to_string();
        let client = Client::new(&server, Some(&token(role, Some(json!("acme")), now + 600)));
        let (status, body) = client.get("/api/v1/threads").await;
        assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("weft_role"),
            "{shown}: {body}"
        );
    }
    // A project's admin token: its project's keys only, nothing host-wide.
    let acme = Client::new(
        &server,
        Some(&token(json!("admin"), Some(json!("acme")), now + 600)),
    );
    let (status, body) = acme
        .post("/api/v1/keys", json!({"name": "escape", "role": "admin"}))
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, keys) = acme.get("/api/v1/keys").await;
    assert_eq!((status, keys), (StatusCode::OK, json!([])), "no host keys");
    for (method, path, body) in host_wide_acts("weft-plugin-eras") {
        let (status, answer) = acme.send(method.clone(), &path, body).await;
        assert_error(status, &answer, StatusCode::FORBIDDEN, "forbidden");
    }
    // `*` is every project, said explicitly.
    let host = Client::new(
        &server,
        Some(&token(json!("admin"), Some(json!("*")), now + 600)),
    );
    let (status, keys) = host.get("/api/v1/keys").await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(
        keys.as_array().unwrap().len(),
        1,
        "the bootstrap key: {keys}"
    );

    // A chat socket on a token closes once the token expires.
    let short = token(json!("operator"), Some(json!("acme")), now + 3);
    let (mut socket, _) = tokio_tungstenite::connect_async(format!(
        "{}/api/v1/ws?access_token={short}",
        ws_base(&server)
    ))
    .await
    .expect("the token is valid yet");
    assert_eq!(next_json(&mut socket).await["type"], "session");
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= now + 3
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = socket
        .send(Message::Text(json!({"type": "cancel"}).to_string().into()))
        .await;
    let closed = closed_with(&mut socket).await;
    assert_eq!(closed["close"], 4401, "{closed}");
    assert!(
        closed["reason"].as_str().unwrap().contains("expired"),
        "{closed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_are_per_project_with_their_own_history_and_numbers() {
    let server = with_config("tenancy-events", "api: { event_history: 200 }\n");
    let admin = Client::new(&server, Some(&server.admin));
    let acme_key = key(&admin, "operator", Some("acme")).await;
    let globex = Client::new(
        &server,
        Some(&key(&admin, "operator", Some("globex")).await),
    );
    let acme = Client::new(&server, Some(&acme_key));
    ask(&globex).await;
    let thread = ask(&acme).await;
    let run_done = |e: &Sse| e.1 == "frame_trace";

    // From the start: acme's own run, numbered in acme's stream.
    let mine = read_until(sse(&server, &acme_key, Some(0)).await, run_done).await;
    assert_eq!(mine[0].1, "run_started", "{mine:?}");
    assert!(
        mine.iter().all(|e| e.2["thread"] == thread.as_str()),
        "{mine:?}"
    );
    assert!(
        mine.windows(2)
            .all(|w| w[1].0.unwrap() == w[0].0.unwrap() + 1),
        "acme's numbers have no gaps where globex's events went: {mine:?}"
    );
    assert!(mine.iter().all(|e| e.2["seq"].as_u64() == e.0), "{mine:?}");
    // The host's stream numbers every event: acme's run comes after
    // globex's there, so its ids are larger than in acme's own stream.
    let host = read_until(sse(&server, &server.admin, Some(0)).await, |e| {
        e.1 == "frame_trace" && e.2["thread"] == thread.as_str()
    })
    .await;
    let host_last = host.last().unwrap().0.unwrap();
    let acme_last = mine.last().unwrap().0.unwrap();
    assert!(
        host_last > acme_last,
        "acme's ids tell nothing of globex's traffic: host {host_last}, acme {acme_last}"
    );

    // globex's traffic overflows the host's history but not acme's: acme
    // resumes from the start without a `missed` (which would count
    // globex's events).
    for _ in 0..40 {
        let first = read_until(sse(&server, &server.admin, Some(0)).await, |_| true).await;
        if first[0].1 == "missed" {
            break;
        }
        ask(&globex).await;
    }
    let first = read_until(sse(&server, &server.admin, Some(0)).await, |_| true).await;
    assert_eq!(first[0].1, "missed", "the host's history overflowed");
    let again = read_until(sse(&server, &acme_key, Some(0)).await, run_done).await;
    assert_eq!(
        again.iter().map(|e| e.0).collect::<Vec<_>>(),
        mine.iter().map(|e| e.0).collect::<Vec<_>>(),
        "acme's history is untouched by globex: {again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_may_have_only_so_many_streams_open() {
    let server = with_config("tenancy-streams", "api: { streams_per_key: 2 }\n");
    let admin = Client::new(&server, Some(&server.admin));
    let viewer = key(&admin, "viewer", Some("acme")).await;
    let first = sse(&server, &viewer, None).await;
    let second = sse(&server, &viewer, None).await;
    assert_eq!(
        (first.status(), second.status()),
        (StatusCode::OK, StatusCode::OK)
    );
    let third = sse(&server, &viewer, None).await;
    let status = third.status();
    let body: Value = third.json().await.unwrap();
    assert_error(
        status,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_streams",
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("streams_per_key"),
        "{body}"
    );
    let url = format!(
        "{}/api/v1/ws/events?access_token={viewer}",
        ws_base(&server)
    );
    let Err(WsError::Http(response)) = tokio_tungstenite::connect_async(url).await else {
        panic!("a third stream as a socket was accepted");
    };
    assert_eq!(response.status(), 429);
    // Other keys are not affected.
    assert_eq!(
        sse(&server, &server.admin, None).await.status(),
        StatusCode::OK
    );
    drop((first, second));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_id_from_before_a_restart_gets_a_reset_not_silence() {
    let server = Server::start("tenancy-restart", &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let live = sse(&server, &server.admin, None).await;
    let thread = {
        let (_, accepted) = admin
            .post("/api/v1/inject", json!({"text": QUESTION}))
            .await;
        accepted["threadId"].as_str().unwrap().to_owned()
    };
    let before = read_until(live, |e| e.1 == "frame_trace").await;
    admin.answered(&thread).await;
    let last = before.last().unwrap().0.unwrap();
    let data = server.data.clone();
    assert!(server.terminate().success());

    let server = Server::start_in(data, &[], &["--script", SCRIPT]);
    let admin = Client::new(&server, Some(&server.admin));
    let resumed = sse(&server, &server.admin, Some(last)).await;
    let (_, accepted) = admin
        .post("/api/v1/inject", json!({"text": QUESTION}))
        .await;
    let thread = accepted["threadId"].as_str().unwrap().to_owned();
    let after = read_until(resumed, |e| e.1 == "frame_trace").await;
    assert_eq!(after[0].1, "reset", "{after:?}");
    assert_eq!(after[0].2["lastEventId"], last, "{after:?}");
    let started = after.iter().find(|e| e.1 == "run_started").unwrap();
    assert_eq!(started.2["thread"], thread.as_str());
    assert!(
        started.0.unwrap() > last,
        "this boot's ids are above the last boot's"
    );
    // The same over the event socket.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!(
        "{}/api/v1/ws/events?lastEventId={last}&access_token={}",
        ws_base(&server),
        server.admin
    ))
    .await
    .unwrap();
    let reset = next_json(&mut socket).await;
    assert_eq!(
        (&reset["type"], &reset["lastEventId"]),
        (&json!("reset"), &json!(last))
    );
    let next = next_json(&mut socket).await;
    assert_eq!(
        next["type"], "run_started",
        "everything kept follows: {next}"
    );
    // An id beyond the last event is reset too.
    let ahead = sse(&server, &server.admin, Some(u64::MAX / 2)).await;
    let got = read_until(ahead, |_| true).await;
    assert_eq!(got[0].1, "reset", "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_socket_is_rate_limited_and_closes_when_its_key_is_revoked() {
    let server = with_config("tenancy-chat", "api: { rate_per_minute: 1, burst: 6 }\n");
    let admin = Client::new(&server, Some(&server.admin));
    let ws = ws_base(&server);
    let chatty = named_key(&admin, "chatty", "operator", Some("acme")).await;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws}/api/v1/ws?access_token={chatty}"))
            .await
            .unwrap();
    assert_eq!(next_json(&mut socket).await["type"], "session");
    let mut limited = 0;
    for _ in 0..8 {
        socket
            .send(Message::Text(json!({"type": "cancel"}).to_string().into()))
            .await
            .unwrap();
        let reply = next_json(&mut socket).await;
        assert_eq!(reply["type"], "error", "{reply}");
        if reply["code"] == "rate_limited" {
            limited += 1;
        }
    }
    assert!(
        limited >= 3,
        "messages count against the key's rate: {limited}"
    );
    drop(socket);

    // A thread of the host's default project is refused like REST's 404;
    // the key's own session works until the key is revoked.
    let (mut host_socket, _) =
        tokio_tungstenite::connect_async(format!("{ws}/api/v1/ws?access_token={}", server.admin))
            .await
            .unwrap();
    let other = next_json(&mut host_socket).await["threadId"]
        .as_str()
        .unwrap()
        .to_owned();
    let doomed = named_key(&admin, "doomed", "operator", Some("acme")).await;
    let Err(WsError::Http(response)) = tokio_tungstenite::connect_async(format!(
        "{ws}/api/v1/ws?thread={other}&access_token={doomed}"
    ))
    .await
    else {
        panic!("another project's thread was opened");
    };
    assert_eq!(response.status(), 404);
    let (mut chat, _) =
        tokio_tungstenite::connect_async(format!("{ws}/api/v1/ws?access_token={doomed}"))
            .await
            .unwrap();
    assert_eq!(next_json(&mut chat).await["type"], "session");
    let (mut events, _) =
        tokio_tungstenite::connect_async(format!("{ws}/api/v1/ws/events?access_token={doomed}"))
            .await
            .unwrap();
    let (_, keys) = admin.get("/api/v1/keys").await;
    let id = key_id(&keys, "doomed");
    let (status, _) = admin
        .send(reqwest::Method::DELETE, &format!("/api/v1/keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    chat.send(Message::Text(json!({"type": "cancel"}).to_string().into()))
        .await
        .unwrap();
    let closed = closed_with(&mut chat).await;
    assert_eq!(closed["close"], 4401, "{closed}");
    assert!(
        closed["reason"].as_str().unwrap().contains("revoked"),
        "{closed}"
    );
    let closed = closed_with(&mut events).await;
    assert_eq!(
        closed["close"], 4401,
        "the event socket closes too: {closed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_reaches_the_logs_or_the_config() {
    let server = with_config(
        "tenancy-secrets",
        "llm:\n  providers:\n    - { kind: openai, name: proxy, base_url: \"http://ops:pw-SECRET-ONE@127.0.0.1:9/v1?api-key=SECRET-TWO\", default_model: m }\n  default: [proxy]\n",
    );
    let admin = Client::new(&server, Some(&server.admin));
    let (status, config) = admin.get("/api/v1/organism/config").await;
    assert_eq!(status, StatusCode::OK, "{config}");
    let text = config.to_string();
    assert!(
        !text.contains("SECRET-ONE") && !text.contains("SECRET-TWO"),
        "{text}"
    );
    assert!(text.contains("127.0.0.1:9/v1"), "{text}");
    let viewer = key(&admin, "viewer", None).await;
    let http = reqwest::Client::new();
    for path in [
        format!("/api/v1/events?access_token={viewer}&lastEventId=nope"),
        format!("/api/v1/events?thread=..%2Fx&access_token={viewer}"),
        format!("/api/v1/ws?access_token={viewer}&thread=a%2Fb"),
        format!("/api/v1/ws/events?access_token={viewer}&bogus=1"),
    ] {
        let status = http.get(server.url(&path)).send().await.unwrap().status();
        assert!(status.is_client_error(), "{path}: {status}");
    }
    let log = server.log();
    assert!(!log.contains(&viewer), "the key is in the log:\n{log}");
    assert!(!log.contains(&server.admin), "the admin key is in the log");
    assert!(!log.contains("access_token="), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_add_no_metric_labels() {
    let server = Server::start("tenancy-metrics", &[], &["--script", SCRIPT]);
    let http = reqwest::Client::new();
    for i in 0..5 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let _ = http
            .request(method, server.url("/api/v1/organism"))
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap();
        let _ = http
            .get(server.url(&format!("/made-up-{i}/path")))
            .send()
            .await
            .unwrap();
    }
    let metrics = http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("BREW"), "{metrics}");
    assert!(!metrics.contains("made-up"), "{metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}
