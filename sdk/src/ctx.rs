//! [`Ctx`]: what a node gets on each tick.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::capabilities::{Db, Hud, Llm, Log, Memory, Store, Tools};
use crate::host::Host;
use crate::{
    BUDGET_WARNING_KIND, BudgetWarning, Context, Interrupt, Message, NodeError, Outbound,
    RESUME_KIND, Resume, SYSTEM_SENDER, TickOutput, UNDELIVERABLE_KIND, Undeliverable,
};

/// The per-tick context: where the invocation sits, handles to the host
/// capabilities, and the output being built.
///
/// A node reads its position with [`thread`](Self::thread),
/// [`run`](Self::run), [`frame`](Self::frame) and [`node`](Self::node); calls
/// the host through [`llm`](Self::llm), [`db`](Self::db),
/// [`memory`](Self::memory), [`hud`](Self::hud) and [`log`](Self::log); and
/// produces its output with [`send`](Self::send), [`reply`](Self::reply) and
/// [`done`](Self::done). The output is returned to the host only when
/// [`Node::tick`](crate::Node::tick) returns `Ok`.
pub struct Ctx<'h> {
    host: &'h dyn Host,
    context: Context,
    output: TickOutput,
    undelivered: Vec<Undeliverable>,
    budget_warnings: Vec<BudgetWarning>,
    resumed: Option<Resume>,
}

impl<'h> Ctx<'h> {
    /// A context for one tick against `host`. The export glue and
    /// [`TestHost`](crate::testing::TestHost) build it; nodes never need to.
    pub fn new(host: &'h dyn Host, context: Context) -> Self {
        Self {
            host,
            context,
            output: TickOutput::default(),
            undelivered: Vec::new(),
            budget_warnings: Vec::new(),
            resumed: None,
        }
    }

    /// Splits a raw inbox as the host delivered it: host notices (sender
    /// `system`) leave the inbox. Notices about messages this node sent in
    /// the previous frame that were rejected become
    /// [`undelivered`](Self::undelivered); budget warnings become
    /// [`budget_warnings`](Self::budget_warnings); the end of this node's
    /// interrupt becomes [`resumed`](Self::resumed). The rest is returned as
    /// the inbox the node sees.
    pub fn take_notices(&mut self, inbox: Vec<Message>) -> Vec<Message> {
        let (notices, inbox): (Vec<Message>, Vec<Message>) =
            inbox.into_iter().partition(|m| m.from == SYSTEM_SENDER);
        for notice in notices {
            match notice.kind.as_str() {
                UNDELIVERABLE_KIND => {
                    self.undelivered
                        .push(
                            notice
                                .json::<Undeliverable>()
                                .unwrap_or_else(|e| Undeliverable {
                                    to: String::new(),
                                    kind: String::new(),
                                    code: "unknown".into(),
                                    message: format!("unreadable notice from the host: {e}"),
                                }),
                        )
                }
                BUDGET_WARNING_KIND => {
                    if let Ok(warning) = notice.json::<BudgetWarning>() {
                        self.budget_warnings.push(warning);
                    }
                }
                RESUME_KIND => {
                    if let Ok(resume) = notice.json::<Resume>() {
                        self.resumed = Some(resume);
                    }
                }
                _ => {}
            }
        }
        inbox
    }

    /// Budget thresholds (75, 90, 95 % of the thread's tokens) crossed since
    /// this node's last tick, from calls this node made.
    pub fn budget_warnings(&self) -> &[BudgetWarning] {
        &self.budget_warnings
    }

    /// How the interrupt this node raised ended, in the frame after a person
    /// answered it, rejected it, or it timed out (contract 0.3.0). `None` in
    /// every other frame.
    pub fn resumed(&self) -> Option<&Resume> {
        self.resumed.as_ref()
    }

    /// Messages this node sent in the previous frame that the host did not
    /// deliver (no edge to the receiver, or a body that does not match the
    /// receiver's input schema), with the reason.
    pub fn undelivered(&self) -> &[Undeliverable] {
        &self.undelivered
    }

    /// The conversation (thread) id.
    pub fn thread(&self) -> &str {
        &self.context.thread
    }

    /// The run id: the processing of one inbound message on the thread.
    pub fn run(&self) -> &str {
        &self.context.run
    }

    /// The frame (superstep) number within the run, starting at 0.
    pub fn frame(&self) -> u32 {
        self.context.frame
    }

    /// This node's name in the graph (not the plugin's name); peers use it
    /// to address messages.
    pub fn node(&self) -> &str {
        &self.context.node
    }

    /// The project (tenant) of the thread: `default` unless an operator
    /// gave one (contract 0.2.0; hosts give it to every node).
    pub fn project(&self) -> &str {
        &self.context.project
    }

    /// The node's `config` from the graph file, deserialized into `T`
    /// (typically a struct with `#[serde(default)]` fields). A config that
    /// does not fit `T` is [`NodeError::InvalidInput`] naming the problem.
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, NodeError> {
        let raw = if self.context.config.trim().is_empty() {
            "{}"
        } else {
            &self.context.config
        };
        serde_json::from_str(raw).map_err(|e| {
            NodeError::InvalidInput(format!(
                "node `{}` has a bad config: {e}",
                self.context.node
            ))
        })
    }

    /// Logs, at warning level, that `message` is of a kind this node does
    /// not handle and was skipped (the one wording every node uses).
    pub fn ignore(&self, message: &Message) {
        self.log().warn(format!(
            "ignoring message {} of kind {:?} from {}",
            message.id, message.kind, message.from
        ));
    }

    /// The whole invocation context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Chat completion.
    pub fn llm(&self) -> Llm<'h> {
        Llm::new(self.host)
    }

    /// Read-only database access.
    pub fn db(&self) -> Db<'h> {
        Db::new(self.host)
    }

    /// Durable key/value state.
    pub fn memory(&self) -> Memory<'h> {
        Memory::new(self.host)
    }

    /// Key/value state shared by every thread of the project (contract
    /// 0.3.0).
    pub fn store(&self) -> Store<'h> {
        Store::new(self.host)
    }

    /// Tools of the operator's MCP servers, as the graph grants them
    /// (contract 0.4.0).
    pub fn tools(&self) -> Tools<'h> {
        Tools::new(self.host)
    }

    /// Progress text and typed events.
    pub fn hud(&self) -> Hud<'h> {
        Hud::new(self.host)
    }

    /// Diagnostic logging.
    pub fn log(&self) -> Log<'h> {
        Log::new(self.host)
    }

    /// Send `body` (serialized to JSON) to the peer named `to`; it is
    /// delivered in the next frame if the graph has an edge to `to`.
    pub fn send(
        &mut self,
        to: impl Into<String>,
        kind: impl Into<String>,
        body: &impl Serialize,
    ) -> Result<(), NodeError> {
        let body = serde_json::to_string(body)?;
        self.output.messages.push(Outbound {
            to: to.into(),
            kind: kind.into(),
            body,
        });
        Ok(())
    }

    /// Set the text for the end user (the chat reply); a later call replaces it.
    pub fn reply(&mut self, text: impl Into<String>) {
        self.output.reply = Some(text.into());
    }

    /// Ask a person `question`: after this frame the run stops, with status
    /// `interrupted`, until the answer (valid against `answer_schema`, a
    /// JSON Schema) arrives, the question is rejected, or the node's
    /// `interrupt_timeout_ms` passes; this node then sees the outcome in
    /// [`resumed`](Self::resumed) in the run's next frame. Messages sent and
    /// memory written in this tick are committed as usual. A later call
    /// replaces the question (contract 0.3.0).
    pub fn interrupt(&mut self, question: impl Into<String>, answer_schema: serde_json::Value) {
        self.output.interrupt = Some(Interrupt::new(question, answer_schema));
    }

    /// Mark the run as finished from this node's point of view.
    pub fn done(&mut self) {
        self.output.done = true;
    }

    /// The output built so far.
    pub fn output(&self) -> &TickOutput {
        &self.output
    }

    /// Consume the context, returning the output it built.
    pub fn into_output(self) -> TickOutput {
        self.output
    }
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("context", &self.context)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}
