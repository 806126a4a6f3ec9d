//! The director node: plans how to answer a user message.
//!
//! For each `command` (a [`Command`] from `input`) it shows "planning…",
//! makes one schema-constrained model call that produces a [`DirectorPlan`]
//! (the prompt lists every tool of [`UI_TOOLS`] and [`DATA_TOOLS`] with its
//! arguments, the analysis and the user's message), emits the plan as a
//! `decided` HUD event and sends it to the thinker as a `plan`
//! ([`PlanMessage`]).
//!
//! When the graph grants it MCP tools (capability `tools`), the prompt
//! lists them too, as `server.tool` with their arguments and description,
//! and the schema admits their names; the thinker calls them. A node
//! without the grant, or whose servers do not answer, plans with the
//! built-in tools only.
//!
//! The model's answer is checked before it leaves: a tool call naming an
//! unknown tool, or whose `args` is not an object, is dropped with a
//! warning (the schema's enum should prevent the first already). An answer
//! that does not parse is not fatal either: the node logs a warning and
//! sends [`fallback_plan`], which runs no tool and asks for a direct answer.
//! A failing `llm` call fails the tick with the capability error, so the
//! trace shows why.
//!
//! Config: `{"thinker": "thinker"}`, the peer that receives the plan.

#![warn(missing_docs)]

mod prompt;
#[cfg(test)]
mod tests;

use serde::Deserialize;
use serde_json::json;
use weft_protocol::{Command, DATA_TOOLS, DirectorPlan, PlanMessage, ToolCall, UI_TOOLS, kind};
use weft_sdk::{Capability, Ctx, Error, EventKind, Message, Node, NodeError, NodeInfo, Tool};

pub use prompt::TOOL_GUIDE;

/// The progress text shown while the model plans.
pub const PLANNING_PROGRESS: &str = "planning…";

/// The `response_hint` of [`fallback_plan`].
pub const FALLBACK_HINT: &str = "answer directly";

/// The node's `config`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The peer that receives the plan.
    pub thinker: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            thinker: "thinker".to_owned(),
        }
    }
}

/// The plan used when the model's answer is unusable: no tools, and a hint
/// asking the output node to answer directly.
pub fn fallback_plan() -> DirectorPlan {
    DirectorPlan {
        goal: "answer the user's message directly".to_owned(),
        steps: Vec::new(),
        present_as: "text".to_owned(),
        tool_sequence: Vec::new(),
        reasoning: "the planner's answer was unusable".to_owned(),
        response_hint: FALLBACK_HINT.to_owned(),
    }
}

/// The director node; see the [crate docs](crate).
pub struct Director;

impl Node for Director {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "director",
            env!("CARGO_PKG_VERSION"),
            "Plans the tools that answer a user message and hands the plan to the thinker",
        )
        .input_schema(Command::schema())
        .output_schema(PlanMessage::schema())
        .capabilities([
            Capability::Llm,
            Capability::Tools,
            Capability::Hud,
            Capability::Log,
        ])
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let config: Config = ctx.config()?;
        if config.thinker.trim().is_empty() {
            return Err(NodeError::InvalidInput(format!(
                "node `{}` has a bad config: `thinker` is empty",
                ctx.node()
            )));
        }
        for message in inbox {
            if message.kind != kind::COMMAND {
                ctx.ignore(message);
                continue;
            }
            let command: Command = message.json()?;
            handle(ctx, &config, command)?;
        }
        Ok(())
    }
}

/// Plan the answer to one command and send the plan to the thinker.
fn handle(ctx: &mut Ctx<'_>, config: &Config, command: Command) -> Result<(), NodeError> {
    ctx.hud().progress(PLANNING_PROGRESS)?;
    let plan = plan(ctx, &command)?;
    ctx.hud()
        .emit(EventKind::Decided, &json!({ "plan": plan }))?;
    ctx.log().debug(format!(
        "plan with {} tool call(s) for {:?}",
        plan.tool_sequence.len(),
        command.analysis.topic
    ));
    let message = PlanMessage {
        plan,
        request: command.source_text,
        language: command.analysis.language,
    };
    ctx.send(config.thinker.as_str(), kind::PLAN, &message)
}

/// Ask the model for the plan, falling back when its answer does not parse,
/// and drop the tool calls the thinker could not run. Only an `llm` error fails.
fn plan(ctx: &Ctx<'_>, command: &Command) -> Result<DirectorPlan, NodeError> {
    let external = external_tools(ctx);
    let completion = ctx.llm().complete(prompt::request(command, &external))?;
    let mut plan = match serde_json::from_str::<DirectorPlan>(&completion.text) {
        Ok(plan) => plan,
        Err(error) => {
            let start: String = completion.text.chars().take(80).collect();
            ctx.log().warn(format!(
                "unusable plan from {} ({error}): {start:?}; using the fallback plan",
                completion.model
            ));
            return Ok(fallback_plan());
        }
    };
    plan.tool_sequence
        .retain(|call| match check_call(call, &external) {
            Ok(()) => true,
            Err(problem) => {
                ctx.log()
                    .warn(format!("dropping tool call {:?}: {problem}", call.tool));
                false
            }
        });
    Ok(plan)
}

/// The MCP tools the graph grants this node; none without the grant, and
/// none (with a warning) when its servers do not answer.
fn external_tools(ctx: &Ctx<'_>) -> Vec<Tool> {
    match ctx.tools().list() {
        Ok(tools) => tools,
        Err(Error::Denied(_)) => Vec::new(),
        Err(error) => {
            ctx.log()
                .warn(format!("planning without MCP tools: {error}"));
            Vec::new()
        }
    }
}

/// Whether the thinker can run `call`: a known tool (built-in, or one of
/// the `external` ones) with an object of args.
fn check_call(call: &ToolCall, external: &[Tool]) -> Result<(), String> {
    let tool = call.tool.as_str();
    if !UI_TOOLS.contains(&tool)
        && !DATA_TOOLS.contains(&tool)
        && !external.iter().any(|t| prompt::external_name(t) == tool)
    {
        return Err("unknown tool".to_owned());
    }
    if !call.args.is_object() {
        return Err(format!("args must be an object, not {}", call.args));
    }
    Ok(())
}

weft_sdk::export_node!(Director);
