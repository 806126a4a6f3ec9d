//! The slow tests: the real embedded model (SmolLM2-135M, fetched by the
//! README's commands) through the real binary. Free text, a
//! JSON-Schema-constrained answer that must parse and validate, the
//! README's demo questions through the assistant graph, checked against
//! the sample database itself, and one of them through the
//! OpenAI-compatible endpoint of `weft serve`, whole and streamed.

#![cfg(feature = "local")]
#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

mod common;

use common::{Server, root, temp_dir, text, weft};
use serde_json::Value;

fn model() -> String {
    let path = root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "the model is missing: run `cargo xtask fetch-model` (the README's commands do)"
    );
    path.to_string_lossy().into_owned()
}

#[test]
fn slow_the_local_model_answers_free_text_and_schema_constrained_prompts() {
    let data = temp_dir("local-llm");
    let model = model();
    let out = weft(
        &data,
        &[
            "--model",
            &model,
            "llm",
            "--max-tokens",
            "40",
            "Name one colour of the sky.",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).trim().is_empty());
    let usage = text(&out.stderr);
    assert!(usage.contains("SmolLM2-135M-Instruct.Q4_1:"), "{usage}");
    assert!(usage.contains("prompt +"), "{usage}");

    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "device": {"type": "string", "enum": ["heat meter", "water meter", "heat cost allocator"]},
            "rooms": {"type": "integer", "minimum": 1, "maximum": 20},
            "note": {"type": "string", "maxLength": 60}
        },
        "required": ["device", "rooms", "note"],
        "additionalProperties": false
    });
    let schema_text = schema.to_string();
    let constrained = [
        "--model",
        &model,
        "llm",
        "--schema",
        &schema_text,
        "--max-tokens",
        "80",
        "Describe the metering of a flat with 3 rooms as JSON.",
    ];
    let out = weft(&data, &constrained);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Greedy decoding at a fixed thread count: the same answer every time.
    let again = weft(&data, &constrained);
    assert_eq!(text(&again.stdout), text(&out.stdout));
    let answer: Value = serde_json::from_str(text(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)));
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&answer)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{answer} breaks the schema: {errors:?}");
}

/// `weft run --json QUESTION` on the assistant graph with the local model.
fn ask(data: &std::path::Path, question: &str) -> Value {
    let model = model();
    let out = weft(data, &["--model", &model, "run", "--json", "-q", question]);
    assert!(out.status.success(), "{question}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn reply(trace: &Value) -> String {
    trace["reply"].as_str().unwrap_or_default().to_owned()
}

fn nodes(trace: &Value) -> Vec<String> {
    trace["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["node"].as_str().unwrap().to_owned())
        .collect()
}

/// One value from the sample database the run generated.
fn truth(data: &std::path::Path, sql: &str) -> String {
    let db = rusqlite::Connection::open(data.join("eras.db")).unwrap();
    db.query_row(sql, [], |row| {
        let value: rusqlite::types::Value = row.get(0)?;
        Ok(match value {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Real(r) => r.to_string(),
            rusqlite::types::Value::Text(t) => t,
            other => format!("{other:?}"),
        })
    })
    .unwrap()
}

#[test]
fn slow_the_assistant_answers_the_readme_questions_with_the_embedded_model() {
    let data = temp_dir("local-assistant");
    // (question, the SQL whose answer the reply must contain)
    let cases = [
        (
            "How many devices does customer 1042 have?",
            "SELECT COUNT(*) FROM Geraete g JOIN Nutzeinheiten n USING (NutzeinheitNr) \
             JOIN Objekte o USING (ObjektNr) WHERE o.KundenNr = 1042",
        ),
        (
            "How many properties does customer 1043 own?",
            "SELECT COUNT(*) FROM Objekte WHERE KundenNr = 1043",
        ),
        (
            "How many units does property 5 have?",
            "SELECT COUNT(*) FROM Nutzeinheiten WHERE ObjektNr = 5",
        ),
        (
            "What is the latest reading of device 12?",
            "SELECT Wert FROM Ablesungen WHERE GeraetNr = 12 ORDER BY Datum DESC LIMIT 1",
        ),
        (
            "Where does customer 1042 live?",
            "SELECT Ort FROM Kunden WHERE KundenNr = 1042",
        ),
        (
            "Which customer owns property 8?",
            "SELECT Nachname FROM Kunden JOIN Objekte USING (KundenNr) WHERE ObjektNr = 8",
        ),
    ];
    let mut transcript = String::new();
    for (question, sql) in cases {
        let trace = ask(&data, question);
        let expected = truth(&data, sql);
        let answer = reply(&trace);
        transcript.push_str(&format!("Q: {question}\nA: {answer}\n"));
        assert_eq!(trace["status"], "completed", "{question}");
        assert!(
            nodes(&trace).contains(&"eras".to_owned()),
            "{question}: not routed to eras"
        );
        assert!(
            answer.contains(&expected),
            "{question}: the reply does not contain {expected:?}:\n{answer}"
        );
    }
    // Small talk goes to the Python expert, which asks the same local
    // model, and gets a reply.
    let trace = ask(&data, "Hello, how are you today?");
    let answer = reply(&trace);
    transcript.push_str(&format!("Q: Hello, how are you today?\nA: {answer}\n"));
    assert_eq!(trace["status"], "completed");
    assert!(!nodes(&trace).contains(&"eras".to_owned()));
    assert!(
        nodes(&trace).contains(&"smalltalk".to_owned()),
        "small talk was not routed to the Python expert: {:?}",
        nodes(&trace)
    );
    let smalltalk = trace["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["node"] == "smalltalk")
        .unwrap();
    assert!(smalltalk["error"].is_null(), "{smalltalk}");
    assert!(
        smalltalk["tokens"]["calls"].as_u64() == Some(1),
        "{smalltalk}"
    );
    assert!(!answer.trim().is_empty());
    println!("{transcript}");
}

/// The `data:` lines of a server-sent stream, the last (`[DONE]`) left out.
fn chunks(body: &str) -> Vec<Value> {
    let lines: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(lines.last(), Some(&"[DONE]"), "{body}");
    lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_the_openai_endpoint_answers_with_the_embedded_model() {
    let model = model();
    let data = temp_dir("local-openai");
    let server = Server::start_in(data.clone(), &["--model", &model], &[]);
    let http = reqwest::Client::new();
    let question = "How many devices does customer 1042 have?";
    let answer: Value = http
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&server.admin)
        .json(&serde_json::json!({
            "model": "assistant",
            "messages": [{"role": "user", "content": question}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let expected = truth(
        &data,
        "SELECT COUNT(*) FROM Geraete g JOIN Nutzeinheiten n USING (NutzeinheitNr) \
         JOIN Objekte o USING (ObjektNr) WHERE o.KundenNr = 1042",
    );
    let content = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(content.contains(&expected), "not {expected}: {answer}");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop", "{answer}");
    // The model's own token counts, metered by weft.
    assert!(
        answer["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{answer}"
    );
    let thread = answer["thread_id"].as_str().unwrap();

    // Streamed, on the same thread: the model's tokens as they come, then
    // what of the reply was not streamed, or (the output node replaced a
    // reply that failed its checks) a blank line and the reply.
    let body = http
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(&server.admin)
        .json(&serde_json::json!({
            "model": "assistant",
            "messages": [{"role": "user", "content": question}],
            "stream": true,
            "metadata": {"thread_id": thread},
        }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let chunks = chunks(&body);
    let pieces: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .filter(|p| !p.is_empty())
        .collect();
    let streamed = pieces.concat();
    let result: Value = http
        .get(server.url(&format!("/api/v1/threads/{thread}/result")))
        .bearer_auth(&server.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result["run"]["status"], "completed", "{result}");
    let reply = result["run"]["reply"].as_str().unwrap().trim();
    assert!(
        streamed == reply || streamed.ends_with(&format!("\n\n{reply}")),
        "streamed {streamed:?}, the run's reply {reply:?}"
    );
    assert!(pieces.len() > 1, "one piece: {pieces:?}");
    assert!(streamed.contains(&expected), "not {expected}: {streamed:?}");
    println!("whole: {content}\nstreamed: {streamed}");
}

/// The shipped smoke suite of the assistant (English and German data
/// questions, small talk, a customer that does not exist) passes with the
/// embedded model through `weft test`, every step reported.
#[test]
fn slow_the_assistant_smoke_suite_passes_with_the_embedded_model() {
    let data = temp_dir("local-suite");
    let model = model();
    let out = weft(
        &data,
        &[
            "--model",
            &model,
            "test",
            "graphs/tests/assistant-smoke.md",
            "--graph",
            "graphs/assistant.yaml",
            "--json",
        ],
    );
    let stderr = text(&out.stderr);
    let results: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{stderr}", text(&out.stdout)));
    let suite = &results[0];
    let steps = suite["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6, "{suite:#}");
    for step in steps {
        assert_eq!(step["ok"], true, "{step:#}\n{stderr}");
    }
    assert_eq!(suite["failed"], 0);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("suite Assistant: smoke: 6 passed, 0 failed"),
        "{stderr}"
    );
}
