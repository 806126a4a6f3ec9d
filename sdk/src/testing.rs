//! Unit-test a node natively, with plain `cargo test`.
//!
//! [`TestHost`] implements [`Host`](crate::Host) with test doubles: a
//! scripted model, an in-memory database, in-memory state per [`Scope`], and
//! recorders for progress, events and logs. [`TestHost::tick`] runs a node's
//! [`Node::tick`] against it exactly as the component glue does, minus the
//! WebAssembly, so a test sees what the node sent, replied, stored and
//! emitted.
//!
//! ```
//! use weft_sdk::testing::TestHost;
//! use weft_sdk::{Capability, Ctx, Message, Node, NodeError, NodeInfo, Scope};
//!
//! struct Counter;
//!
//! impl Node for Counter {
//!     fn describe() -> NodeInfo {
//!         NodeInfo::new("counter", "0.1.0", "Counts messages").capabilities([Capability::Memory])
//!     }
//!
//!     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//!         let seen: u64 = ctx.memory().get_json(Scope::Node, "seen")?.unwrap_or(0);
//!         let seen = seen + inbox.len() as u64;
//!         ctx.memory().set_json(Scope::Node, "seen", &seen)?;
//!         ctx.reply(format!("{seen} so far"));
//!         Ok(())
//!     }
//! }
//!
//! let host = TestHost::for_node::<Counter>();
//! let hello = Message::new("user", "user", &serde_json::json!({"text": "hi"}));
//! host.tick::<Counter>(&[hello.clone()]).unwrap();
//! let output = host.tick::<Counter>(&[hello]).unwrap();
//! assert_eq!(output.reply.as_deref(), Some("2 so far"));
//! assert_eq!(host.memory(Scope::Node, "seen").as_deref(), Some("2"));
//! ```
//!
//! # One example per kind of node
//!
//! The graphs weft ships are made of four kinds of node; each test below is
//! the pattern for one of them. A tick takes microseconds, so a node's
//! whole behaviour, failures included, can be pinned down this way before
//! it is ever built as a component.
//!
//! **An entry node** classifies the user's message with a schema-bound
//! model call, reports what it perceived and hands a command on:
//!
//! ```
//! use serde_json::json;
//! use weft_sdk::testing::TestHost;
//! use weft_sdk::{
//!     Capability, ChatMessage, CompletionRequest, Ctx, EventKind, Message, Node, NodeError,
//!     NodeInfo,
//! };
//!
//! struct Entry;
//!
//! impl Node for Entry {
//!     fn describe() -> NodeInfo {
//!         NodeInfo::new("entry", "0.1.0", "Classifies the user's message")
//!             .capabilities([Capability::Llm, Capability::Hud])
//!     }
//!
//!     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//!         for message in inbox {
//!             let text: String = message.json::<serde_json::Value>()?["text"]
//!                 .as_str()
//!                 .unwrap_or_default()
//!                 .to_owned();
//!             let schema = json!({"type": "object", "properties": {"intent": {"enum": ["question", "social"]}},
//!                 "required": ["intent"]});
//!             let request = CompletionRequest::new([
//!                 ChatMessage::system("Classify the message."),
//!                 ChatMessage::user(text.clone()),
//!             ])
//!             .json_schema(&schema);
//!             let intent: serde_json::Value = serde_json::from_str(&ctx.llm().complete(request)?.text)
//!                 .map_err(|e| NodeError::Failed(format!("unusable classification: {e}")))?;
//!             ctx.hud().emit(EventKind::Perceived, &intent)?;
//!             ctx.send("router", "command", &json!({"text": text, "intent": intent["intent"]}))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let host = TestHost::for_node::<Entry>().answer_json(&json!({"intent": "question"}));
//! let out = host.tick::<Entry>(&[Message::new("user", "user", &json!({"text": "How many meters?"}))]).unwrap();
//! assert_eq!(out.messages[0].to, "router");
//! assert_eq!(serde_json::from_str::<serde_json::Value>(&out.messages[0].body).unwrap()["intent"], "question");
//! assert_eq!(host.events_of(EventKind::Perceived), vec![json!({"intent": "question"})]);
//! // The request was constrained by the schema.
//! assert!(host.llm_requests()[0].json_schema.is_some());
//!
//! // A model answer that is not JSON is the node's error, not a panic.
//! let host = TestHost::for_node::<Entry>().answer("no idea");
//! let err = host.tick::<Entry>(&[Message::new("user", "user", &json!({"text": "hi"}))]).unwrap_err();
//! assert!(err.to_string().contains("unusable classification"));
//! ```
//!
//! **A router** decides where a command goes from its config, without the
//! model, and sends the expert a self-contained job:
//!
//! ```
//! use serde::Deserialize;
//! use serde_json::json;
//! use weft_sdk::testing::TestHost;
//! use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     /// Expert name -> words that send a message there.
//!     experts: std::collections::BTreeMap<String, Vec<String>>,
//!     fallback: String,
//! }
//!
//! struct Router;
//!
//! impl Node for Router {
//!     fn describe() -> NodeInfo {
//!         NodeInfo::new("router", "0.1.0", "Routes commands to experts")
//!     }
//!
//!     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//!         let config: Config = ctx.config()?;
//!         for message in inbox {
//!             let text = message.json::<serde_json::Value>()?["text"].as_str().unwrap_or_default().to_lowercase();
//!             let expert = config
//!                 .experts
//!                 .iter()
//!                 .find(|(_, words)| words.iter().any(|w| text.contains(w.as_str())))
//!                 .map_or(config.fallback.as_str(), |(name, _)| name.as_str());
//!             ctx.send(expert, "job", &json!({"job": text}))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let host = TestHost::for_node::<Router>().config(json!({
//!     "experts": {"eras": ["meter", "customer"], "smalltalk": ["hello"]},
//!     "fallback": "output"
//! }));
//! let route = |text: &str| {
//!     let out = host.tick::<Router>(&[Message::new("input", "command", &json!({"text": text}))]).unwrap();
//!     out.messages[0].to.clone()
//! };
//! assert_eq!(route("How many meters?"), "eras");
//! assert_eq!(route("Hello!"), "smalltalk");
//! assert_eq!(route("What is the weather?"), "output");
//! // No model call was made (an unexpected one would have panicked).
//! assert!(host.llm_requests().is_empty());
//!
//! // A bad config is a typed error that names the problem.
//! let host = TestHost::for_node::<Router>().config(json!({"experts": {}}));
//! let err = host.tick::<Router>(&[Message::new("input", "command", &json!({"text": "x"}))]).unwrap_err();
//! assert!(err.to_string().contains("fallback"), "{err}");
//! ```
//!
//! **An expert with a database** describes a table before it queries it,
//! and reports a failed query to the router instead of failing the tick:
//!
//! ```
//! use serde_json::json;
//! use weft_sdk::testing::TestHost;
//! use weft_sdk::{Capability, Column, Ctx, Error, Message, Node, NodeError, NodeInfo, Rows, Value};
//!
//! struct Expert;
//!
//! impl Node for Expert {
//!     fn describe() -> NodeInfo {
//!         NodeInfo::new("meters", "0.1.0", "Counts a customer's meters").capabilities([Capability::Db])
//!     }
//!
//!     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//!         for message in inbox {
//!             let customer = message.json::<serde_json::Value>()?["customer"].as_i64().unwrap_or_default();
//!             let columns = ctx.db().describe("Geraete")?;
//!             if !columns.iter().any(|c| c.name == "KundenNr") {
//!                 return Err(NodeError::Failed("Geraete has no KundenNr column".into()));
//!             }
//!             match ctx.db().query("SELECT count(*) FROM Geraete WHERE KundenNr = ?", &[Value::Integer(customer)]) {
//!                 Ok(rows) => {
//!                     let n = rows.rows[0][0].as_integer().unwrap_or_default();
//!                     ctx.send("output", "respond", &json!({"draft": format!("Customer {customer} has {n} meters.")}))?;
//!                 }
//!                 Err(e) => ctx.send("router", "expert_failed", &json!({"error": e.to_string()}))?,
//!             }
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let columns = [Column::new("GeraetNr", "INTEGER").primary_key(), Column::new("KundenNr", "INTEGER")];
//! let host = TestHost::for_node::<Expert>()
//!     .table("Geraete", columns.clone(), [])
//!     .on_query(|_sql, params| {
//!         assert_eq!(params, &[Value::Integer(1042)][..]);
//!         Ok(Rows::new(["count(*)"], [vec![Value::Integer(3)]]))
//!     });
//! let out = host.tick::<Expert>(&[Message::new("router", "job", &json!({"customer": 1042}))]).unwrap();
//! assert_eq!(out.messages[0].to, "output");
//! assert!(out.messages[0].body.contains("has 3 meters"));
//! assert_eq!(host.queries().len(), 1);
//!
//! // The database failing is reported to the router, and the tick succeeds.
//! let host = TestHost::for_node::<Expert>()
//!     .table("Geraete", columns, [])
//!     .on_query(|_, _| Err(Error::Unavailable("database is down".into())));
//! let out = host.tick::<Expert>(&[Message::new("router", "job", &json!({"customer": 1}))]).unwrap();
//! assert_eq!((out.messages[0].to.as_str(), out.messages[0].kind.as_str()), ("router", "expert_failed"));
//! assert!(out.messages[0].body.contains("database is down"));
//! ```
//!
//! **An output node** writes the reply with a streamed model call and ends
//! the run; when the model fails it falls back to the draft and warns:
//!
//! ```
//! use serde_json::json;
//! use weft_sdk::testing::TestHost;
//! use weft_sdk::{Capability, ChatMessage, CompletionRequest, Ctx, Error, Message, Node, NodeError, NodeInfo};
//!
//! struct Output;
//!
//! impl Node for Output {
//!     fn describe() -> NodeInfo {
//!         NodeInfo::new("output", "0.1.0", "Writes the reply")
//!             .capabilities([Capability::Llm, Capability::Log])
//!     }
//!
//!     fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
//!         let drafts: Vec<String> = inbox
//!             .iter()
//!             .filter_map(|m| m.json::<serde_json::Value>().ok()?["draft"].as_str().map(str::to_owned))
//!             .collect();
//!         let draft = drafts.join(" ");
//!         let request = CompletionRequest::new([
//!             ChatMessage::system("Rephrase for the user."),
//!             ChatMessage::user(draft.clone()),
//!         ])
//!         .stream(true);
//!         let reply = match ctx.llm().complete(request) {
//!             Ok(answer) if !answer.text.trim().is_empty() => answer.text,
//!             Ok(_) => draft,
//!             Err(e) => {
//!                 ctx.log().warn(format!("the model failed ({e}); replying with the draft"));
//!                 draft
//!             }
//!         };
//!         ctx.reply(reply);
//!         ctx.done();
//!         Ok(())
//!     }
//! }
//!
//! let respond = Message::new("meters", "respond", &json!({"draft": "Customer 1042 has 3 meters."}));
//! let host = TestHost::for_node::<Output>().answer("Customer 1042 has three meters.");
//! let out = host.tick::<Output>(&[respond.clone()]).unwrap();
//! assert_eq!(out.reply.as_deref(), Some("Customer 1042 has three meters."));
//! assert!(out.done);
//! assert!(host.llm_requests()[0].stream);
//!
//! let host = TestHost::for_node::<Output>().answer_error(Error::BudgetExhausted("thread budget".into()));
//! let out = host.tick::<Output>(&[respond]).unwrap();
//! assert_eq!(out.reply.as_deref(), Some("Customer 1042 has 3 meters."));
//! assert!(host.warnings()[0].contains("thread budget"));
//! ```

mod doubles;
mod host;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use crate::{
    CallContext, Capability, Column, CompletionRequest, Context, Error, EventKind, Level, Message,
    NodeError, NodeInfo, Rows, Scope, TickOutput, Tool, ToolResult, Value,
};
use crate::{Ctx, Node};
use doubles::{FakeDb, ScriptedLlm, Table};

/// The [`NodeInfo`] a node declares, as the host would see it at load time.
pub fn describe<N: Node>() -> NodeInfo {
    N::describe()
}

/// One event a node emitted through `hud.emit`.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The event's kind.
    pub kind: EventKind,
    /// The event's data, parsed (the host rejects data that is not JSON).
    pub data: serde_json::Value,
}

/// Everything a tick left behind besides its output.
#[derive(Default)]
struct Records {
    progress: Vec<String>,
    events: Vec<Event>,
    logs: Vec<(Level, String)>,
    denied: Vec<Capability>,
    tool_calls: Vec<(String, String, serde_json::Value)>,
}

/// A host made of test doubles; see the [module docs](self).
///
/// Build it with the chaining methods (`TestHost::new().answer("…")`), run
/// ticks with [`tick`](Self::tick), then inspect what the node did. State
/// (memory, recordings, the model's script) carries over between ticks, like
/// a thread's state in the real host. Memory writes are kept even when a
/// tick fails, so a test sees everything the node attempted.
pub struct TestHost {
    context: Context,
    grants: BTreeSet<Capability>,
    llm: RefCell<ScriptedLlm>,
    db: RefCell<FakeDb>,
    memory: RefCell<BTreeMap<(Scope, String), String>>,
    /// The project's `store` state: (namespace, key) → value.
    kv: RefCell<BTreeMap<(String, String), String>>,
    /// The MCP tools offered (and granted): (server, name) → the tool and
    /// what every call answers.
    tools: RefCell<BTreeMap<(String, String), (Tool, ToolResult)>>,
    records: RefCell<Records>,
}

impl Default for TestHost {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for TestHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestHost")
            .field("context", &self.context)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl TestHost {
    /// A host granting every capability, with context thread `thread-1`,
    /// run `run-1`, frame 0, node `node`, project `default`, and nothing
    /// scripted.
    pub fn new() -> Self {
        Self {
            context: Context {
                call: CallContext {
                    thread: "thread-1".to_owned(),
                    run: "run-1".to_owned(),
                    frame: 0,
                    node: "node".to_owned(),
                    project: "default".to_owned(),
                },
                config: "{}".to_owned(),
            },
            grants: Capability::ALL.into_iter().collect(),
            llm: RefCell::default(),
            db: RefCell::default(),
            memory: RefCell::default(),
            kv: RefCell::default(),
            tools: RefCell::default(),
            records: RefCell::default(),
        }
    }

    /// A host granting exactly what `N` declares in `describe`, as a graph
    /// file that grants a node its requested capabilities would.
    pub fn for_node<N: Node>() -> Self {
        Self::new().grant_only(N::describe().capabilities)
    }

    /// Grant only `capabilities`; calls to any other return [`Error::Denied`].
    pub fn grant_only(mut self, capabilities: impl IntoIterator<Item = Capability>) -> Self {
        self.grants = capabilities.into_iter().collect();
        self
    }

    /// Use `context` for the following ticks.
    pub fn context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// Give the node `config`, as a graph file's `config:` key would.
    pub fn config(mut self, config: serde_json::Value) -> Self {
        self.context.config = config.to_string();
        self
    }

    /// Replace the context between ticks (say, to advance the frame).
    pub fn set_context(&mut self, context: Context) {
        self.context = context;
    }

    /// Queue a model answer.
    pub fn answer(self, text: impl Into<String>) -> Self {
        self.llm.borrow_mut().queue.push_back(Ok(text.into()));
        self
    }

    /// Queue a model answer that is this JSON document.
    pub fn answer_json(self, value: &serde_json::Value) -> Self {
        self.answer(value.to_string())
    }

    /// Queue an error as the result of the next unanswered model request.
    pub fn answer_error(self, error: Error) -> Self {
        self.llm.borrow_mut().queue.push_back(Err(error));
        self
    }

    /// Answer every request the queue does not cover by calling `respond`.
    ///
    /// Without queued answers or a responder, an LLM request panics: the node
    /// made a call the test did not expect.
    pub fn answer_with(
        self,
        respond: impl FnMut(&CompletionRequest) -> Result<String, Error> + 'static,
    ) -> Self {
        self.llm.borrow_mut().responder = Some(Box::new(respond));
        self
    }

    /// Add (or replace) a table with its columns and rows.
    pub fn table(
        self,
        name: impl Into<String>,
        columns: impl IntoIterator<Item = Column>,
        rows: impl IntoIterator<Item = Vec<Value>>,
    ) -> Self {
        let table = Table {
            columns: columns.into_iter().collect(),
            rows: rows.into_iter().collect(),
        };
        self.db.borrow_mut().tables.insert(name.into(), table);
        self
    }

    /// Answer queries with `handler(sql, params)`. Without a handler only
    /// `SELECT * FROM <table>` is understood; anything else is
    /// [`Error::InvalidInput`], as unparsable SQL would be.
    pub fn on_query(
        self,
        handler: impl FnMut(&str, &[Value]) -> Result<Rows, Error> + 'static,
    ) -> Self {
        self.db.borrow_mut().handler = Some(Box::new(handler));
        self
    }

    /// Pre-set a memory value, as an earlier frame would have.
    pub fn with_memory(
        self,
        scope: Scope,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.memory
            .borrow_mut()
            .insert((scope, key.into()), value.into());
        self
    }

    /// Pre-set a `store` value, as another thread of the project would have.
    pub fn with_store(
        self,
        namespace: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.kv
            .borrow_mut()
            .insert((namespace.into(), key.into()), value.into());
        self
    }

    /// Offer (and grant) an MCP tool whose every call answers `answer`.
    pub fn with_tool(self, tool: Tool, answer: ToolResult) -> Self {
        self.tools
            .borrow_mut()
            .insert((tool.server.clone(), tool.name.clone()), (tool, answer));
        self
    }

    /// The tool calls the node made, in order: (server, tool, arguments).
    pub fn tool_calls(&self) -> Vec<(String, String, serde_json::Value)> {
        self.records.borrow().tool_calls.clone()
    }

    /// Run one tick of `N` with `inbox`, exactly as the component glue would.
    pub fn tick<N: Node>(&self, inbox: &[Message]) -> Result<TickOutput, NodeError> {
        let mut ctx = Ctx::new(self, self.context.clone());
        let inbox = ctx.take_notices(inbox.to_vec());
        N::tick(&mut ctx, &inbox)?;
        Ok(ctx.into_output())
    }

    /// The lines the node logged at warning level, in order.
    pub fn warnings(&self) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|(level, _)| *level == Level::Warn)
            .map(|(_, line)| line)
            .collect()
    }

    /// Every model request the node made (granted ones), in order.
    pub fn llm_requests(&self) -> Vec<CompletionRequest> {
        self.llm.borrow().requests.clone()
    }

    /// Every query the node ran, with its parameters, in order.
    pub fn queries(&self) -> Vec<(String, Vec<Value>)> {
        self.db.borrow().queries.clone()
    }

    /// The current value of a `store` key.
    pub fn store(&self, namespace: &str, key: &str) -> Option<String> {
        self.kv
            .borrow()
            .get(&(namespace.to_owned(), key.to_owned()))
            .cloned()
    }

    /// The current value of a memory key.
    pub fn memory(&self, scope: Scope, key: &str) -> Option<String> {
        self.memory.borrow().get(&(scope, key.to_owned())).cloned()
    }

    /// The current value of a memory key, parsed as `T`.
    ///
    /// # Panics
    ///
    /// If the stored value is not a JSON `T`.
    pub fn memory_json<T: DeserializeOwned>(&self, scope: Scope, key: &str) -> Option<T> {
        let text = self.memory(scope, key)?;
        match serde_json::from_str(&text) {
            Ok(value) => Some(value),
            Err(error) => {
                panic!("TestHost: memory {scope:?}/{key} is not the expected JSON: {error}")
            }
        }
    }

    /// Every progress text, in order.
    pub fn progress(&self) -> Vec<String> {
        self.records.borrow().progress.clone()
    }

    /// Every event, in order.
    pub fn events(&self) -> Vec<Event> {
        self.records.borrow().events.clone()
    }

    /// The data of every event of `kind`, in order.
    pub fn events_of(&self, kind: EventKind) -> Vec<serde_json::Value> {
        let records = self.records.borrow();
        records
            .events
            .iter()
            .filter(|event| event.kind == kind)
            .map(|e| e.data.clone())
            .collect()
    }

    /// Every log line, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.records.borrow().logs.clone()
    }

    /// The capability of every call that was denied, in order.
    pub fn denied(&self) -> Vec<Capability> {
        self.records.borrow().denied.clone()
    }
}

/// The host notice a node gets in the frame after its interrupt ended
/// (kind [`RESUME_KIND`](crate::RESUME_KIND), sender `system`), to put in
/// an inbox given to [`TestHost::tick`]; the SDK hands it to the node as
/// [`Ctx::resumed`].
///
/// ```
/// use weft_sdk::testing::resume_notice;
/// use weft_sdk::{ResumeOutcome, SYSTEM_SENDER};
/// let notice = resume_notice("run-1/f0/node", ResumeOutcome::TimedOut);
/// assert_eq!(notice.from, SYSTEM_SENDER);
/// ```
pub fn resume_notice(interrupt: &str, outcome: crate::ResumeOutcome) -> Message {
    let resume = crate::Resume {
        interrupt: interrupt.to_owned(),
        outcome,
    };
    Message::new(crate::SYSTEM_SENDER, crate::RESUME_KIND, &resume)
        .with_id(format!("{interrupt}/resume"))
}
