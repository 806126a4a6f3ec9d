//! Applying a frame: each invocation's outcome becomes its record, its
//! messages are routed (edges checked, payloads validated against the
//! receiver's input schema) into the next frame's inboxes, and its memory
//! writes and reply are collected. Plain functions over a [`Topology`], so
//! they are tested without plugins.

use serde_json::json;
use weft_runtime::capabilities::memory::MemoryWrite;
use weft_runtime::contract::{SYSTEM_SENDER, UNDELIVERABLE_KIND};
use weft_runtime::{Message, Outcome};

use crate::loaded::LoadedGraph;
use crate::store::RecordedOutput;
use crate::trace::{FrameRecord, MessageSummary, RouteSummary, Tokens, TraceError};

/// What applying a frame's outcomes produces besides the records.
#[derive(Default)]
pub(crate) struct FrameOut {
    /// Memory writes to commit.
    pub writes: Vec<MemoryWrite>,
    /// `store` writes (the project's key/value state) to commit.
    pub kv: Vec<weft_runtime::capabilities::store::KvWrite>,
    /// Messages routed in the frame, with their receivers' names.
    pub sent: Vec<(String, Message)>,
    /// Messages the frame consumed, with their receivers' names.
    pub delivered: Vec<(String, Message)>,
    /// The last reply given in the frame (nodes applied in graph order).
    pub reply: Option<String>,
    /// Interrupts raised in the frame, in graph order: the node's index,
    /// the interrupt's id, and the question.
    pub interrupts: Vec<(usize, String, weft_runtime::Interrupt)>,
}

/// What routing needs to know of a graph.
pub(crate) trait Topology {
    /// The index of node `name`.
    fn position(&self, name: &str) -> Option<usize>;
    /// Whether an edge lets `from` send to `to`.
    fn may_send(&self, from: &str, to: &str) -> bool;
    /// The nodes `from` may send to.
    fn peers(&self, from: &str) -> &[String];
    /// Checks `body` against node `i`'s input schema.
    fn check_payload(&self, i: usize, body: &str) -> Result<(), String>;
}

/// Checks that an interrupt's answer schema is a JSON Schema a validator
/// can be built from (what an answer is checked against).
pub(crate) fn check_answer_schema(schema: &serde_json::Value) -> Result<(), String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err(format!(
            "the answer schema must be a JSON Schema (an object or a boolean), not {schema}"
        ));
    }
    jsonschema::validator_for(schema)
        .map(drop)
        .map_err(|e| format!("the answer schema is not a valid JSON Schema: {e}"))
}

impl Topology for LoadedGraph {
    fn position(&self, name: &str) -> Option<usize> {
        LoadedGraph::position(self, name)
    }
    fn may_send(&self, from: &str, to: &str) -> bool {
        self.graph().may_send(from, to)
    }
    fn peers(&self, from: &str) -> &[String] {
        self.graph().peers(from)
    }
    fn check_payload(&self, i: usize, body: &str) -> Result<(), String> {
        LoadedGraph::check_payload(self, i, body)
    }
}

/// The invocation being applied: where it ran and what ran it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeRef<'a> {
    /// Thread id.
    pub thread: &'a str,
    /// Run id.
    pub run: &'a str,
    /// Frame within the run.
    pub frame: u32,
    /// The node's index in the graph.
    pub index: usize,
    /// The node's name.
    pub name: &'a str,
    /// Its plugin's `describe` name.
    pub plugin: &'a str,
    /// Its plugin's content hash, hex.
    pub plugin_hash: &'a str,
}

/// One applied invocation.
pub(crate) struct Applied {
    /// Its record.
    pub record: FrameRecord,
    /// What it produced, whole (what replay compares).
    pub output: RecordedOutput,
    /// The node's error and the rejections of its messages, to publish.
    pub errors: Vec<TraceError>,
}

/// Applies one invocation's outcome: routes its messages into `pending`,
/// collects its memory writes, takes its reply, and returns its record with
/// what it produced.
///
/// Errors (the node's, and each message rejected) are returned for the
/// caller to publish.
pub(crate) fn apply(
    graph: &impl Topology,
    node: &NodeRef<'_>,
    inbox: &[Message],
    outcome: Outcome,
    pending: &mut [Vec<Message>],
    out: &mut FrameOut,
) -> Applied {
    let NodeRef {
        thread,
        run,
        frame,
        index: i,
        ..
    } = *node;
    let recorded = RecordedOutput::of(&outcome);
    let mut errors = Vec::new();
    let mut record = FrameRecord {
        thread: thread.to_owned(),
        run: run.to_owned(),
        frame,
        node: node.name.to_owned(),
        plugin: node.plugin.to_owned(),
        plugin_hash: node.plugin_hash.to_owned(),
        duration_us: outcome.duration.as_micros() as u64,
        instantiate_us: outcome.instantiate_time.as_micros() as u64,
        reused_instance: outcome.reused,
        fuel_used: outcome.fuel_used,
        tokens: Tokens::from_journal(&outcome.journal),
        inbox: inbox.iter().map(MessageSummary::from).collect(),
        sent: Vec::new(),
        reply: None,
        done: false,
        interrupt: None,
        events: outcome.events.len(),
        memory_writes: 0,
        journal: outcome.journal,
        logs: outcome.logs,
        denied: outcome.denied,
        error: None,
    };
    let output = match outcome.result {
        Ok(output) => output,
        Err(error) => {
            let error = TraceError::of(&error);
            tracing::warn!(thread, run, frame, node = %node.name, code = %error.code, message = %error.message, "node failed");
            errors.push(error.clone());
            record.error = Some(error);
            return Applied {
                record,
                output: recorded,
                errors,
            };
        }
    };
    for (k, out_msg) in output.messages.into_iter().enumerate() {
        let out_to = out_msg.to;
        let mut summary = RouteSummary {
            to: out_to.clone(),
            kind: out_msg.kind.clone(),
            bytes: out_msg.body.len(),
            delivered_as: None,
            rejected: None,
        };
        match route(graph, node.name, &out_to, &out_msg.body) {
            Ok(target) => {
                let id = format!("{run}/{frame}/{}/{k}", node.name);
                summary.delivered_as = Some(id.clone());
                let message = Message {
                    id,
                    from: node.name.to_owned(),
                    kind: out_msg.kind,
                    body: out_msg.body,
                };
                out.sent.push((out_to.clone(), message.clone()));
                pending[target].push(message);
            }
            Err(rejection) => {
                tracing::warn!(thread, run, frame, node = %node.name, to = %out_to, code = rejection.trace.code, "message rejected");
                errors.push(rejection.trace.clone());
                let notice = Message {
                    id: format!("{run}/{frame}/{}/{k}/undeliverable", node.name),
                    from: SYSTEM_SENDER.into(),
                    kind: UNDELIVERABLE_KIND.into(),
                    body: json!({
                        "to": out_to,
                        "kind": out_msg.kind,
                        "code": rejection.code_to_sender,
                        "message": rejection.to_sender,
                    })
                    .to_string(),
                };
                out.sent.push((node.name.to_owned(), notice.clone()));
                pending[i].push(notice);
                summary.rejected = Some(rejection.trace);
            }
        }
        record.sent.push(summary);
    }
    if let Some(text) = output.reply {
        out.reply = Some(text.clone());
        record.reply = Some(text);
    }
    if let Some(interrupt) = output.interrupt {
        let id = format!("{run}/f{frame}/{}", node.name);
        match check_answer_schema(&interrupt.answer_schema) {
            Ok(()) => {
                record.interrupt = Some(id.clone());
                out.interrupts.push((i, id, interrupt));
            }
            Err(why) => {
                // The node learns at once, as if the question were
                // rejected: the run does not wait for an answer that
                // could never be checked.
                let error = TraceError {
                    code: "invalid_interrupt".into(),
                    message: format!(
                        "`{}` asked a question the host cannot check answers to: {why}",
                        node.name
                    ),
                };
                tracing::warn!(thread, run, frame, node = %node.name, message = %error.message, "interrupt refused");
                errors.push(error);
                let notice = resume_notice(
                    &id,
                    &weft_runtime::contract::ResumeOutcome::Rejected { reason: why },
                );
                out.sent.push((node.name.to_owned(), notice.clone()));
                pending[i].push(notice);
            }
        }
    }
    record.done = output.done;
    record.memory_writes = outcome.memory_writes.len();
    out.writes.extend(outcome.memory_writes);
    out.kv.extend(outcome.kv_writes);
    Applied {
        record,
        output: recorded,
        errors,
    }
}

/// The host notice that tells a node how its interrupt `id` ended.
pub(crate) fn resume_notice(id: &str, outcome: &weft_runtime::contract::ResumeOutcome) -> Message {
    let body = weft_runtime::contract::Resume {
        interrupt: id.to_owned(),
        outcome: outcome.clone(),
    };
    Message {
        id: format!("{id}/resume"),
        from: SYSTEM_SENDER.into(),
        kind: weft_runtime::contract::RESUME_KIND.into(),
        body: serde_json::to_string(&body).expect("a resume notice serializes"),
    }
}

/// A rejected message: the full story for the trace, and what the sender
/// is told (no topology: it never learns who its peers are).
pub(crate) struct Rejection {
    pub trace: TraceError,
    /// The code the sender is told: `not_a_peer` for an unknown node too,
    /// so that a node cannot probe which nodes exist.
    pub code_to_sender: &'static str,
    pub to_sender: String,
}

/// Checks one outgoing message: an edge must allow it and the body must fit
/// the receiver's input schema. Returns the receiver's index.
pub(crate) fn route(
    graph: &impl Topology,
    from: &str,
    to: &str,
    body: &str,
) -> Result<usize, Rejection> {
    let target = graph.position(to).filter(|_| graph.may_send(from, to));
    let Some(target) = target else {
        let peers = graph.peers(from).join(", ");
        let (code, why) = if graph.position(to).is_some() {
            ("not_a_peer", "there is no edge to it")
        } else {
            ("unknown_node", "the graph has no such node")
        };
        return Err(Rejection {
            trace: TraceError {
                code: code.into(),
                message: format!("`{from}` may not send to `{to}`: {why} (its peers: [{peers}])"),
            },
            code_to_sender: "not_a_peer",
            to_sender: format!("the message to `{to}` was not delivered: no route"),
        });
    };
    graph.check_payload(target, body).map_err(|message| {
        let message = format!("the body does not match the input schema of `{to}`: {message}");
        Rejection {
            trace: TraceError {
                code: "invalid_payload".into(),
                message: message.clone(),
            },
            code_to_sender: "invalid_payload",
            to_sender: message,
        }
    })?;
    Ok(target)
}

#[cfg(test)]
mod tests;
