//! Routing and applying without plugins: a fake topology stands in for a
//! loaded graph.

use std::time::Duration;

use weft_runtime::{InvokeError, NodeError, Outbound, TickOutput};

use super::*;

/// `a → b → c`; `c` accepts only bodies containing `ok`.
struct Chain {
    names: Vec<&'static str>,
    peers: Vec<Vec<String>>,
}

impl Chain {
    fn new() -> Self {
        Self {
            names: vec!["a", "b", "c"],
            peers: vec![vec!["b".into()], vec!["c".into()], vec![]],
        }
    }
}

impl Topology for Chain {
    fn position(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == name)
    }
    fn may_send(&self, from: &str, to: &str) -> bool {
        self.position(from)
            .is_some_and(|i| self.peers[i].iter().any(|p| p == to))
    }
    fn peers(&self, from: &str) -> &[String] {
        self.position(from).map_or(&[], |i| &self.peers[i])
    }
    fn check_payload(&self, i: usize, body: &str) -> Result<(), String> {
        if i == 2 && !body.contains("ok") {
            return Err("\"ok\" is required".into());
        }
        Ok(())
    }
}

fn node(index: usize, name: &'static str) -> NodeRef<'static> {
    NodeRef {
        thread: "t",
        run: "t.run-1",
        frame: 3,
        index,
        name,
        plugin: "p",
        plugin_hash: "00ff",
    }
}

fn outcome(result: Result<TickOutput, InvokeError>) -> Outcome {
    Outcome {
        result,
        fuel_used: 7,
        instantiate_time: Duration::from_micros(5),
        reused: false,
        duration: Duration::from_micros(40),
        journal: Vec::new(),
        memory_writes: Vec::new(),
        kv_writes: Vec::new(),
        events: Vec::new(),
        logs: Vec::new(),
        denied: Vec::new(),
        denied_calls: 0,
        stdout: String::new(),
        stderr: String::new(),
    }
}

fn out(to: &str, body: &str) -> Outbound {
    Outbound {
        to: to.into(),
        kind: "job".into(),
        body: body.into(),
    }
}

#[test]
fn a_peer_is_routed_and_anything_else_is_refused_without_showing_the_topology() {
    let g = Chain::new();
    assert_eq!(route(&g, "a", "b", "{}").ok(), Some(1));
    let no_edge = route(&g, "a", "c", "{}")
        .err()
        .map(|r| (r.trace, r.to_sender));
    let (trace, told) = no_edge.unwrap_or_else(|| panic!("a → c has no edge"));
    assert_eq!(trace.code, "not_a_peer");
    assert!(
        trace.message.contains("there is no edge to it"),
        "{}",
        trace.message
    );
    assert!(
        trace.message.contains("its peers: [b]"),
        "{}",
        trace.message
    );
    assert_eq!(told, "the message to `c` was not delivered: no route");
    let nowhere = route(&g, "a", "zz", "{}")
        .err()
        .map(|r| (r.trace, r.code_to_sender, r.to_sender));
    let (trace, code, told) = nowhere.unwrap_or_else(|| panic!("zz does not exist"));
    assert_eq!(trace.code, "unknown_node");
    assert!(trace.message.contains("the graph has no such node"));
    // The sender cannot tell an unknown node from one it has no edge to.
    assert_eq!(code, "not_a_peer");
    assert_eq!(told, "the message to `zz` was not delivered: no route");
}

#[test]
fn a_body_the_receiver_does_not_accept_is_refused_with_the_reason() {
    let g = Chain::new();
    let refused = route(&g, "b", "c", "{}")
        .err()
        .map(|r| (r.trace, r.to_sender));
    let (trace, told) = refused.unwrap_or_else(|| panic!("the body lacks `ok`"));
    assert_eq!(trace.code, "invalid_payload");
    assert!(told.contains("input schema of `c`") && told.contains("\"ok\" is required"));
    assert_eq!(route(&g, "b", "c", "{\"ok\":1}").ok(), Some(2));
}

#[test]
fn applying_routes_messages_returns_rejections_to_the_sender_and_takes_the_reply() {
    let g = Chain::new();
    let mut pending = vec![Vec::new(); 3];
    let mut frame = FrameOut::default();
    let tick = TickOutput {
        messages: vec![out("b", "{}"), out("c", "{}")],
        reply: Some("hi".into()),
        done: true,
        interrupt: None,
    };
    let applied = apply(
        &g,
        &node(0, "a"),
        &[],
        outcome(Ok(tick)),
        &mut pending,
        &mut frame,
    );
    // Delivered next frame, with an id naming run, frame, node and index.
    assert_eq!(pending[1].len(), 1);
    assert_eq!(pending[1][0].id, "t.run-1/3/a/0");
    assert_eq!(pending[1][0].from, "a");
    // The rejected message comes back to its sender as a notice.
    assert_eq!(pending[0].len(), 1);
    assert_eq!(pending[0][0].from, SYSTEM_SENDER);
    assert_eq!(pending[0][0].kind, UNDELIVERABLE_KIND);
    assert_eq!(pending[0][0].id, "t.run-1/3/a/1/undeliverable");
    assert!(pending[2].is_empty());
    assert_eq!(applied.errors.len(), 1);
    assert_eq!(applied.errors[0].code, "not_a_peer");
    let record = &applied.record;
    assert_eq!(
        (record.frame, record.fuel_used, record.duration_us),
        (3, 7, 40)
    );
    assert_eq!(record.sent.len(), 2);
    assert_eq!(
        record.sent[0].delivered_as.as_deref(),
        Some("t.run-1/3/a/0")
    );
    assert!(record.sent[1].rejected.is_some());
    assert_eq!(record.reply.as_deref(), Some("hi"));
    assert!(record.done);
    assert_eq!(frame.reply.as_deref(), Some("hi"));
    assert_eq!(frame.sent.len(), 2);
    // What replay compares is what the node produced, routed or not.
    assert_eq!(applied.output.messages.len(), 2);
}

#[test]
fn a_failed_node_routes_nothing_and_its_error_is_returned() {
    let g = Chain::new();
    let mut pending = vec![Vec::new(); 3];
    let mut frame = FrameOut::default();
    let failed = Err(InvokeError::Node(NodeError::InvalidInput("no".into())));
    let applied = apply(
        &g,
        &node(1, "b"),
        &[],
        outcome(failed),
        &mut pending,
        &mut frame,
    );
    assert!(pending.iter().all(Vec::is_empty));
    let error = applied.record.error.as_ref().map(|e| e.code.as_str());
    assert_eq!(error, Some("node_error"));
    assert_eq!(applied.errors.len(), 1);
    assert_eq!(applied.output.error.as_deref(), Some("node_error"));
    assert!(frame.reply.is_none());
}
