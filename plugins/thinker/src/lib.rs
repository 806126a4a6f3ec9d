//! The thinker node: executes the director's plan. It does not think (it
//! has no `llm` capability); it runs the plan's tools in order.
//!
//! For each `plan` ([`PlanMessage`]):
//!
//! - UI tools ([`UI_TOOLS`]) are checked for their required arguments and
//!   collected, in order, into one `ui` message ([`UiActions`]) for the ui
//!   node. A malformed call is left out and reported as a [`ToolOutput`]
//!   error.
//! - Data tools ([`DATA_TOOLS`]) run through the `db` capability, each
//!   preceded by a progress text and a `tool_call` HUD event `{tool, args}`.
//!   A database error becomes the [`ToolOutput`]'s error and the plan goes
//!   on (a denied `db` fails the tick: the graph is wrong). Query results keep at most `max_rows` rows.
//!
//! - MCP tools (named `<server>.<tool>` by the plan, see
//!   [`weft_protocol::external_tool`]) run through the `tools` capability,
//!   preceded like data tools by a progress text and a `tool_call` event.
//!   What the tool answered (its structured content when it gives one,
//!   else its text) is the output's result; the tool's own error, a denied
//!   tool or an unreachable server is the output's error, and the plan
//!   goes on.
//!
//! Then, if any data or MCP tool ran, the outputs go to the interpreter as
//! `interpret` ([`Interpret`]); otherwise a `respond` ([`Respond`]) goes to
//! output, its draft saying what the UI tools did ("created machine light
//! with states red, green") and its error listing the malformed calls. The
//! `ui` message, if any, is sent in the same tick, first.
//!
//! Config: `{"ui": "ui", "interpreter": "interpreter", "output": "output",
//! "max_rows": 50}`.

#![warn(missing_docs)]

mod data_tools;
#[cfg(test)]
mod tests;
mod ui_tools;

use serde::Deserialize;
use serde_json::json;
use weft_protocol::{
    DATA_TOOLS, Interpret, PlanMessage, Respond, ToolCall, ToolOutput, UI_TOOLS, UiActions, any_of,
    external_tool, kind,
};
use weft_sdk::{Capability, Ctx, Error, EventKind, Message, Node, NodeError, NodeInfo};

pub use data_tools::DataCall;

/// The node's `config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The peer that applies UI tool calls.
    pub ui: String,
    /// The peer that summarises data tool output.
    pub interpreter: String,
    /// The peer that writes the reply when no data tool ran.
    pub output: String,
    /// The most rows of one query handed on (at least 1).
    pub max_rows: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ui: "ui".to_owned(),
            interpreter: "interpreter".to_owned(),
            output: "output".to_owned(),
            max_rows: 50,
        }
    }
}

impl Config {
    /// The node's config from `ctx`, checked.
    fn load(ctx: &Ctx<'_>) -> Result<Self, NodeError> {
        let config: Self = ctx.config()?;
        let bad = |problem: &str| {
            NodeError::InvalidInput(format!("node `{}` has a bad config: {problem}", ctx.node()))
        };
        for (key, peer) in [
            ("ui", &config.ui),
            ("interpreter", &config.interpreter),
            ("output", &config.output),
        ] {
            if peer.trim().is_empty() {
                return Err(bad(&format!("`{key}` is empty")));
            }
        }
        if config.max_rows == 0 {
            return Err(bad("`max_rows` must be at least 1"));
        }
        Ok(config)
    }
}

/// The thinker node; see the [crate docs](crate).
pub struct Thinker;

impl Node for Thinker {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "thinker",
            env!("CARGO_PKG_VERSION"),
            "Executes the director's plan: data tools through the database, MCP tools through the tools capability, UI tools for the ui node",
        )
        .input_schema(PlanMessage::schema())
        .output_schema(any_of([
            UiActions::schema(),
            Interpret::schema(),
            Respond::schema(),
        ]))
        .capabilities([
            Capability::Db,
            Capability::Tools,
            Capability::Hud,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config = Config::load(ctx)?;
        for message in inbox {
            if message.kind != kind::PLAN {
                ctx.ignore(message);
                continue;
            }
            let plan: PlanMessage = message.json()?;
            handle(ctx, &config, plan)?;
        }
        Ok(())
    }
}

/// What running a plan's tools left behind.
#[derive(Debug, Default)]
struct Execution {
    /// Well-formed UI calls, for the ui node.
    ui: Vec<ToolCall>,
    /// Every call's output, in plan order.
    outputs: Vec<ToolOutput>,
    /// What the UI calls do, for the draft.
    done: Vec<String>,
    /// What went wrong with malformed calls, for the reply.
    errors: Vec<String>,
    /// True once a data tool reached the database or an MCP tool was called.
    data_ran: bool,
}

/// Run one plan and send its results on.
fn handle(ctx: &mut Ctx<'_>, config: &Config, message: PlanMessage) -> Result<(), NodeError> {
    let PlanMessage {
        plan,
        request,
        language,
    } = message;
    let mut execution = Execution::default();
    for call in plan.tool_sequence {
        execute(ctx, config, call, &mut execution)?;
    }
    ctx.log().debug(format!(
        "ran {} tool call(s): {} for the ui, {} problem(s)",
        execution.outputs.len(),
        execution.ui.len(),
        execution.errors.len()
    ));
    if !execution.ui.is_empty() {
        let actions = UiActions {
            actions: execution.ui,
        };
        ctx.send(config.ui.as_str(), kind::UI, &actions)?;
    }
    if execution.data_ran {
        let interpret = Interpret {
            request,
            language,
            response_hint: plan.response_hint,
            outputs: execution.outputs,
        };
        ctx.send(config.interpreter.as_str(), kind::INTERPRET, &interpret)
    } else {
        let respond = Respond {
            request,
            language,
            response_hint: plan.response_hint,
            draft: joined(&execution.done),
            result: None,
            error: joined(&execution.errors),
        };
        ctx.send(config.output.as_str(), kind::RESPOND, &respond)
    }
}

/// Run or collect one call, recording its output.
fn execute(
    ctx: &Ctx<'_>,
    config: &Config,
    call: ToolCall,
    execution: &mut Execution,
) -> Result<(), NodeError> {
    let tool = call.tool.as_str();
    let checked = if UI_TOOLS.contains(&tool) {
        ui_tools::check(&call).map(|description| {
            execution.done.push(description.clone());
            execution.ui.push(call.clone());
            description.into()
        })
    } else if DATA_TOOLS.contains(&tool) {
        match DataCall::parse(&call) {
            Ok(data_call) => return run_data(ctx, config, call, &data_call, execution),
            Err(problem) => Err(problem),
        }
    } else if let Some((server, name)) = external_tool(tool) {
        let (server, name) = (server.to_owned(), name.to_owned());
        return run_external(ctx, call, &server, &name, execution);
    } else {
        Err("unknown tool".to_owned())
    };
    let output = match checked {
        Ok(result) => ToolOutput {
            tool: call.tool,
            args: call.args,
            result: Some(result),
            error: None,
        },
        Err(problem) => {
            ctx.log()
                .warn(format!("malformed {tool} call ({problem}): {}", call.args));
            execution.errors.push(format!("{tool}: {problem}"));
            ToolOutput {
                tool: call.tool,
                args: call.args,
                result: None,
                error: Some(problem),
            }
        }
    };
    execution.outputs.push(output);
    Ok(())
}

/// Run a checked data call against the database. A database error (bad
/// SQL, a limit, an unavailable database) is an outcome for the interpreter
/// to explain, so it is recorded, not raised; a denied `db` or `hud` call
/// fails the tick.
fn run_data(
    ctx: &Ctx<'_>,
    config: &Config,
    call: ToolCall,
    data_call: &DataCall,
    execution: &mut Execution,
) -> Result<(), NodeError> {
    execution.data_ran = true;
    ctx.hud().progress(&data_call.progress())?;
    ctx.hud().emit(
        EventKind::ToolCall,
        &json!({"tool": call.tool, "args": call.args}),
    )?;
    let (result, error) = match data_call.run(ctx.db(), config.max_rows) {
        Ok(result) => (Some(result), None),
        // Not granted `db`: the graph is wrong, and the trace should say so.
        Err(error @ Error::Denied(_)) => return Err(error.into()),
        Err(error) => {
            ctx.log().warn(format!("{} failed: {error}", call.tool));
            (None, Some(error.to_string()))
        }
    };
    execution.outputs.push(ToolOutput {
        tool: call.tool,
        args: call.args,
        result,
        error,
    });
    Ok(())
}

/// Call an MCP tool. Whatever goes wrong (the tool's own error, a tool the
/// node is not granted, a server that does not answer) is an outcome for
/// the interpreter to explain; a denied `hud` call fails the tick.
fn run_external(
    ctx: &Ctx<'_>,
    call: ToolCall,
    server: &str,
    name: &str,
    execution: &mut Execution,
) -> Result<(), NodeError> {
    execution.data_ran = true;
    ctx.hud().progress(&format!("asking {server} ({name})…"))?;
    ctx.hud().emit(
        EventKind::ToolCall,
        &json!({"tool": call.tool, "args": call.args}),
    )?;
    let args = if call.args.is_object() {
        call.args.clone()
    } else {
        json!({})
    };
    let (result, error) = match ctx.tools().call(server, name, &args) {
        Ok(answer) if answer.is_error => {
            ctx.log()
                .warn(format!("{} reported an error: {}", call.tool, answer.text));
            (None, Some(answer.text))
        }
        Ok(answer) => {
            let result = match answer.content.get("structuredContent") {
                Some(structured) => structured.clone(),
                None => answer.text.into(),
            };
            (Some(result), None)
        }
        Err(error) => {
            ctx.log().warn(format!("{} failed: {error}", call.tool));
            (None, Some(error.to_string()))
        }
    };
    execution.outputs.push(ToolOutput {
        tool: call.tool,
        args: call.args,
        result,
        error,
    });
    Ok(())
}

/// The parts joined with `; `, or `None` when there are none.
fn joined(parts: &[String]) -> Option<String> {
    (!parts.is_empty()).then(|| parts.join("; "))
}

weft_sdk::export_node!(Thinker);
