//! `weft plugin test`: a plugin project's `tests.yaml` cases, run against
//! its built component in the real sandbox (fuel, deadline and memory
//! limits, the host's capability code), with a scripted model and
//! in-memory state. The same cases work for every language.
//!
//! ```yaml
//! cases:
//!   - name: answers and counts turns
//!     config: { max_tokens: 60 }            # the node's config (default {})
//!     llm: ["Hello!", { error: { code: unavailable, detail: "down" } }]
//!     memory: { thread: { k: "v" }, node: { turns: "1" } }   # before the first step
//!     steps:                                 # one tick each; memory carries over
//!       - inbox: [{ kind: user, body: { text: "hi" } }]    # `from` defaults to user
//!         expect:
//!           reply: "Hello!"
//!           done: true
//!           messages: [{ to: output, kind: respond, body: { draft: "Hello!" } }]
//!           memory: { node: { turns: "2" } }
//!       - inbox: [{ kind: user, body: { text: "again" } }]
//!         expect: { error: "down" }          # the tick fails, saying this
//! ```
//!
//! `messages` lists every message sent, in order; a `body` given is
//! compared as JSON, and only the keys it names. `memory` checks only the
//! keys it names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use weft_runtime::capabilities::db::InMemoryDb;
use weft_runtime::capabilities::hud::NullSink;
use weft_runtime::capabilities::llm::{ScriptRule, Scripted};
use weft_runtime::capabilities::memory::{MemoryMap, MemoryStore, MemoryWrite};
use weft_runtime::{
    CallContext, Grants, Invocation, Message, Outcome, Plugin, Runtime, Scope, Services,
};

/// A `tests.yaml` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default = "empty_object")]
    config: Value,
    #[serde(default)]
    llm: Vec<Answer>,
    #[serde(default)]
    memory: State,
    steps: Vec<Step>,
}

/// A scripted model answer: its text, or a full script rule.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Answer {
    Text(String),
    Rule(ScriptRule),
}

/// Memory keys by scope. A value of `null` means "absent": in a case's
/// starting memory the key is not set, in `expect.memory` the node must
/// have left it unset (or deleted it).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    #[serde(default)]
    thread: BTreeMap<String, Option<String>>,
    #[serde(default)]
    node: BTreeMap<String, Option<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    inbox: Vec<Inbound>,
    #[serde(default)]
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Inbound {
    #[serde(default = "user")]
    from: String,
    kind: String,
    body: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    reply: Option<String>,
    done: Option<bool>,
    messages: Option<Vec<Sent>>,
    memory: Option<State>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sent {
    to: String,
    kind: String,
    body: Option<Value>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn user() -> String {
    "user".into()
}

impl Cases {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the test cases {}", path.display()))?;
        // The user-facing rendering names YAML types and positions, not
        // the Rust types the file is read into.
        let cases: Self = serde_saphyr::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid cases file: {}",
                path.display(),
                e.render_with_formatter(&serde_saphyr::UserMessageFormatter)
            )
        })?;
        if cases.cases.is_empty() {
            bail!("{} has no cases", path.display());
        }
        Ok(cases)
    }

    /// How many cases there are.
    pub fn count(&self) -> usize {
        self.cases.len()
    }

    /// Runs every case against `plugin`, printing one line per case;
    /// returns how many failed.
    pub async fn run(&self, runtime: &Runtime, plugin: &Plugin) -> usize {
        let mut failed = 0;
        for case in &self.cases {
            match run_case(runtime, plugin, case).await {
                Ok(()) => println!("ok      {}", case.name),
                Err(e) => {
                    failed += 1;
                    println!("FAILED  {}\n        {e:#}", case.name);
                }
            }
        }
        failed
    }
}

async fn run_case(runtime: &Runtime, plugin: &Plugin, case: &Case) -> Result<()> {
    let node = plugin.info().name.clone();
    let rules = case.llm.iter().map(|answer| match answer {
        Answer::Text(text) => ScriptRule::answer(text.clone()),
        Answer::Rule(rule) => rule.clone(),
    });
    let memory = Arc::new(MemoryMap::default());
    memory.apply(&writes("test", &node, &case.memory));
    let services = Services {
        llm: Arc::new(Scripted::from_rules(rules)),
        db: Arc::new(InMemoryDb::default()),
        memory: memory.clone(),
        kv: Arc::new(weft_runtime::capabilities::store::KvMap::default()),
        tools: Arc::new(weft_runtime::capabilities::tools::NoTools),
        events: Arc::new(NullSink),
    };
    let config = case.config.to_string();
    for (i, step) in case.steps.iter().enumerate() {
        let run = format!("test.run-{}", i + 1);
        let inbox: Vec<Message> = step
            .inbox
            .iter()
            .enumerate()
            .map(|(j, m)| Message {
                id: format!("{run}/in/{j}"),
                from: m.from.clone(),
                kind: m.kind.clone(),
                body: m.body.to_string(),
            })
            .collect();
        let (call, outcome) = tick_alone(
            runtime,
            plugin,
            &services,
            ("test", &run),
            &inbox,
            &config,
            None,
        )
        .await;
        let step_name = format!("step {}", i + 1);
        let expect = &step.expect;
        let output = match (&outcome.result, &expect.error) {
            (Err(e), Some(wanted)) if e.to_string().contains(wanted.as_str()) => continue,
            (Err(e), Some(wanted)) => bail!("{step_name}: failed with `{e}`, not with `{wanted}`"),
            (Err(e), None) => {
                let stderr = outcome.stderr.trim();
                if stderr.is_empty() {
                    bail!("{step_name}: the tick failed: {e}");
                }
                bail!("{step_name}: the tick failed: {e}\n        stderr: {stderr}");
            }
            (Ok(_), Some(wanted)) => {
                bail!("{step_name}: succeeded, expected an error with `{wanted}`")
            }
            (Ok(output), None) => output,
        };
        if let Some(reply) = &expect.reply
            && output.reply.as_ref() != Some(reply)
        {
            bail!("{step_name}: reply {:?}, expected {reply:?}", output.reply);
        }
        if let Some(done) = expect.done
            && output.done != done
        {
            bail!("{step_name}: done is {}, expected {done}", output.done);
        }
        if let Some(sent) = &expect.messages {
            let got: Vec<String> = output
                .messages
                .iter()
                .map(|m| format!("{}:{}", m.to, m.kind))
                .collect();
            let wanted: Vec<String> = sent
                .iter()
                .map(|m| format!("{}:{}", m.to, m.kind))
                .collect();
            if got != wanted {
                bail!(
                    "{step_name}: sent [{}], expected [{}]",
                    got.join(", "),
                    wanted.join(", ")
                );
            }
            for (m, want) in output.messages.iter().zip(sent) {
                if let Some(body) = &want.body {
                    let actual: Value = serde_json::from_str(&m.body)
                        .with_context(|| format!("{step_name}: a body to {} is not JSON", m.to))?;
                    if let Some(diff) = differs(body, &actual, "body") {
                        bail!("{step_name}: message to {}: {diff}", m.to);
                    }
                }
            }
        }
        memory.apply(&outcome.memory_writes);
        if let Some(state) = &expect.memory {
            for (scope, key, wanted) in entries(state) {
                let got = memory
                    .get(&call, scope, key)
                    .await
                    .map_err(|e| anyhow::anyhow!("reading memory: {e}"))?;
                if got.as_deref() != wanted.as_deref() {
                    let shown =
                        |v: Option<&str>| v.map_or("absent".to_owned(), |v| format!("{v:?}"));
                    bail!(
                        "{step_name}: memory {scope:?} `{key}` is {}, expected {}",
                        shown(got.as_deref()),
                        shown(wanted.as_deref())
                    );
                }
            }
        }
    }
    Ok(())
}

/// One tick of `plugin` on its own, outside any graph: on `(thread, run)`,
/// with every capability it declares granted and the runtime's default
/// limits, in a kept instance of `reuse` if there is one.
pub(crate) async fn tick_alone(
    runtime: &Runtime,
    plugin: &Plugin,
    services: &Services,
    (thread, run): (&str, &str),
    inbox: &[Message],
    config: &str,
    reuse: Option<&weft_runtime::ReuseScope>,
) -> (CallContext, Outcome) {
    let call = CallContext {
        thread: thread.to_owned(),
        run: run.to_owned(),
        frame: 0,
        node: plugin.info().name.clone(),
        project: "default".into(),
    };
    let grants: Grants = plugin.info().capabilities.iter().copied().collect();
    let outcome = runtime
        .invoke(
            plugin,
            Invocation {
                call: call.clone(),
                inbox,
                config,
                model: None,
                grants,
                tools: &weft_runtime::capabilities::tools::NO_TOOLS,
                services,
                limits: None,
                wall_time: None,
                reuse,
            },
        )
        .await;
    (call, outcome)
}

/// The entries of `state` with their scopes.
fn entries(state: &State) -> impl Iterator<Item = (Scope, &String, &Option<String>)> {
    let thread = state.thread.iter().map(|(k, v)| (Scope::Thread, k, v));
    thread.chain(state.node.iter().map(|(k, v)| (Scope::Node, k, v)))
}

fn writes(thread: &str, node: &str, state: &State) -> Vec<MemoryWrite> {
    entries(state)
        .filter_map(|(scope, key, value)| {
            Some(MemoryWrite {
                thread: thread.into(),
                node: (scope == Scope::Node).then(|| node.to_owned()),
                key: key.clone(),
                value: Some(value.clone()?),
            })
        })
        .collect()
}

/// Where `actual` differs from `wanted`: objects compare only the keys
/// `wanted` names, everything else exactly.
fn differs(wanted: &Value, actual: &Value, at: &str) -> Option<String> {
    match (wanted, actual) {
        (Value::Object(w), Value::Object(a)) => w.iter().find_map(|(k, v)| match a.get(k) {
            Some(got) => differs(v, got, &format!("{at}.{k}")),
            None => Some(format!("{at}.{k} is missing")),
        }),
        _ if wanted == actual => None,
        _ => Some(format!("{at} is {actual}, expected {wanted}")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_compare_the_keys_the_case_names() {
        let actual = json!({"draft": "hi", "language": "en", "n": [1, 2]});
        assert_eq!(differs(&json!({"draft": "hi"}), &actual, "body"), None);
        assert_eq!(
            differs(&json!({"draft": "ho"}), &actual, "body").unwrap(),
            "body.draft is \"hi\", expected \"ho\""
        );
        assert!(
            differs(&json!({"x": 1}), &actual, "body")
                .unwrap()
                .contains("missing")
        );
        assert!(differs(&json!({"n": [1]}), &actual, "body").is_some());
    }

    #[test]
    fn the_template_cases_parse() {
        let text = include_str!("../../build/templates/common/tests.yaml");
        let cases: Cases = serde_saphyr::from_str(text).unwrap();
        assert_eq!(cases.cases.len(), 2);
        assert!(matches!(cases.cases[1].llm[0], Answer::Rule(_)));
        assert_eq!(
            cases.cases[0].steps[1].expect.reply.as_deref(),
            Some("Still here.")
        );
    }
}
