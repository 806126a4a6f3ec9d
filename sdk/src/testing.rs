//! Unit-test a node natively, with plain `cargo test`.
//!
//! [`TestHost`] implements [`Host`] with test doubles: a scripted model, an
//! in-memory database, in-memory state per [`Scope`], and recorders for
//! progress, events and logs. [`TestHost::tick`] runs a node's
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

mod doubles;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;

use crate::types::{
    Capability, Column, Completion, CompletionRequest, Context, Error, EventKind, Level, Message,
    NodeError, NodeInfo, Rows, Scope, TickOutput, Value,
};
use crate::{Ctx, Host, Node};
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
                thread: "thread-1".to_owned(),
                run: "run-1".to_owned(),
                frame: 0,
                node: "node".to_owned(),
                project: "default".to_owned(),
                config: "{}".to_owned(),
            },
            grants: Capability::ALL.into_iter().collect(),
            llm: RefCell::default(),
            db: RefCell::default(),
            memory: RefCell::default(),
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

    /// `Ok` if `capability` is granted, else record the denial.
    fn check(&self, capability: Capability) -> Result<(), Error> {
        if self.grants.contains(&capability) {
            Ok(())
        } else {
            self.records.borrow_mut().denied.push(capability);
            Err(Error::Denied(capability))
        }
    }
}

impl Host for TestHost {
    fn llm_complete(&self, request: &CompletionRequest) -> Result<Completion, Error> {
        self.check(Capability::Llm)?;
        self.llm.borrow_mut().complete(request)
    }

    fn db_list_tables(&self) -> Result<Vec<String>, Error> {
        self.check(Capability::Db)?;
        Ok(self.db.borrow().list_tables())
    }

    fn db_describe(&self, table: &str) -> Result<Vec<Column>, Error> {
        self.check(Capability::Db)?;
        self.db.borrow().describe(table)
    }

    fn db_query(&self, sql: &str, params: &[Value]) -> Result<Rows, Error> {
        self.check(Capability::Db)?;
        self.db.borrow_mut().query(sql, params)
    }

    fn memory_get(&self, scope: Scope, key: &str) -> Result<Option<String>, Error> {
        self.check(Capability::Memory)?;
        Ok(self.memory(scope, key))
    }

    fn memory_set(&self, scope: Scope, key: &str, value: &str) -> Result<(), Error> {
        self.check(Capability::Memory)?;
        self.memory
            .borrow_mut()
            .insert((scope, key.to_owned()), value.to_owned());
        Ok(())
    }

    fn memory_delete(&self, scope: Scope, key: &str) -> Result<(), Error> {
        self.check(Capability::Memory)?;
        self.memory.borrow_mut().remove(&(scope, key.to_owned()));
        Ok(())
    }

    fn hud_progress(&self, text: &str) -> Result<(), Error> {
        self.check(Capability::Hud)?;
        self.records.borrow_mut().progress.push(text.to_owned());
        Ok(())
    }

    fn hud_emit(&self, kind: EventKind, data: &str) -> Result<(), Error> {
        self.check(Capability::Hud)?;
        let data = serde_json::from_str(data)
            .map_err(|error| Error::InvalidInput(format!("event data is not JSON: {error}")))?;
        self.records.borrow_mut().events.push(Event { kind, data });
        Ok(())
    }

    fn log(&self, level: Level, message: &str) -> Result<(), Error> {
        self.check(Capability::Log)?;
        self.records
            .borrow_mut()
            .logs
            .push((level, message.to_owned()));
        Ok(())
    }
}
