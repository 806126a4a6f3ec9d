//! One-plugin demo: load the `input` node, tick it once with a user message,
//! and print its output with the frame's fuel and time.
//!
//! `cargo xtask demo [TEXT]` builds the plugins and runs this. Until the LLM
//! providers land, the `llm` capability is answered by the scripted
//! provider with one canned classification, and the demo says so.

use std::path::PathBuf;
use std::sync::Arc;

use weft_runtime::capabilities::llm::Scripted;
use weft_runtime::{CallContext, Grants, Invocation, Message, Runtime, RuntimeConfig, Services};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let text = if text.is_empty() {
        "How many heating meters does customer 42 have?".to_owned()
    } else {
        text
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let plugin_path = root.join("artifacts/plugins/weft-plugin-input.wasm");

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(root.join("artifacts/cache")),
        ..RuntimeConfig::default()
    })?;
    let started = std::time::Instant::now();
    let plugin = runtime.load_file(&plugin_path).await?;
    let info = plugin.info();
    println!(
        "loaded {} {} ({} bytes, contract weft:node@{}, hash {}, {:?} in {:.1?})",
        info.name,
        info.version,
        plugin.size(),
        plugin.contract(),
        plugin.hash().short(),
        plugin.cache_hit(),
        started.elapsed()
    );
    println!("  {}", info.description);

    let llm = Arc::new(Scripted::new([serde_json::json!({
        "intent": "question", "topic": "heating meters", "language": "en",
        "tone": "neutral", "complexity": "complex", "reflex": false
    })
    .to_string()]));
    let mut services = Services::unavailable();
    services.llm = llm;
    println!(
        "llm: scripted provider with one canned classification (the local model comes with the LLM providers)"
    );

    let inbox = [Message {
        id: "m1".into(),
        from: "user".into(),
        kind: "user".into(),
        body: serde_json::json!({ "text": text }).to_string(),
    }];
    let outcome = runtime
        .invoke(
            &plugin,
            Invocation {
                call: CallContext {
                    thread: "demo".into(),
                    run: "run-1".into(),
                    frame: 0,
                    node: "input".into(),
                    project: "default".into(),
                },
                inbox: &inbox,
                config: "{}",
                model: None,
                grants: Grants::from_iter(info.capabilities.iter().copied()),
                tools: &weft_runtime::capabilities::tools::NO_TOOLS,
                services: &services,
                limits: None,
                wall_time: None,
                reuse: None,
            },
        )
        .await;

    println!("\nuser: {text}");
    match &outcome.result {
        Ok(output) => {
            for m in &output.messages {
                println!("→ {} [{}] {}", m.to, m.kind, m.body);
            }
            if let Some(reply) = &output.reply {
                println!("reply: {reply}");
            }
        }
        Err(e) => println!("error: {e}"),
    }
    for e in &outcome.events {
        println!("event: {}", serde_json::to_string(e)?);
    }
    for w in &outcome.memory_writes {
        println!(
            "memory: {} = {}",
            w.key,
            w.value.as_deref().unwrap_or("(deleted)")
        );
    }
    println!(
        "\nframe 0: fuel {} · instantiate {:.1?} · total {:.1?} · {} host call(s)",
        outcome.fuel_used,
        outcome.instantiate_time,
        outcome.duration,
        outcome.journal.len()
    );
    if outcome.result.is_err() {
        std::process::exit(1);
    }
    Ok(())
}
