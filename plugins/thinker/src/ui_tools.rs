//! UI tool calls: the thinker does not run them, it checks that their
//! required arguments are there (so a malformed call is reported in the
//! reply instead of reaching the ui node) and describes each one for the
//! reply's draft. The ui node applies them and checks everything else
//! (that a machine exists, that a state is not a duplicate …).

use serde_json::{Map, Value};
use weft_protocol::ToolCall;

/// Check `call`'s arguments and describe what it does, e.g.
/// `created machine light with states red, green`. The error says what is
/// missing or mistyped.
pub fn check(call: &ToolCall) -> Result<String, String> {
    let args = call
        .args
        .as_object()
        .ok_or_else(|| format!("args must be an object, not {}", call.args))?;
    match call.tool.as_str() {
        "create_machine" => {
            let name = text(args, "name")?;
            let states = list(args, "states")?;
            if states.is_empty() {
                return Err("`states` is empty".to_owned());
            }
            let names: Option<Vec<&str>> = states
                .iter()
                .map(|state| text(state.as_object()?, "name").ok())
                .collect();
            let names = names.ok_or_else(|| "every state needs a `name`".to_owned())?;
            Ok(format!(
                "created machine {name} with states {}",
                names.join(", ")
            ))
        }
        "add_state" => {
            let machine = text(args, "machine")?;
            let state = args
                .get("state")
                .and_then(Value::as_object)
                .ok_or_else(|| "`state` must be an object".to_owned())?;
            let name = text(state, "name").map_err(|e| format!("state: {e}"))?;
            Ok(format!("added state {name} to machine {machine}"))
        }
        "reset_machine" => Ok(format!("reset machine {}", text(args, "machine")?)),
        "destroy_machine" => Ok(format!("removed machine {}", text(args, "machine")?)),
        "transition_machine" => {
            let machine = text(args, "machine")?;
            let to = text(args, "to")?;
            Ok(format!("moved machine {machine} to {to}"))
        }
        "set_state" => {
            let key = text(args, "key")?;
            let value = args
                .get("value")
                .ok_or_else(|| "`value` is missing".to_owned())?;
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            Ok(format!("set {key} to {shown}"))
        }
        "emit_display" => Ok(match args.get("title").and_then(Value::as_str) {
            Some(title) if !title.trim().is_empty() => format!("showed {title}"),
            _ => "showed a display".to_owned(),
        }),
        other => Err(format!("{other:?} is not a UI tool")),
    }
}

/// The non-empty string argument `key`.
fn text<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match args.get(key) {
        Some(Value::String(value)) if !value.trim().is_empty() => Ok(value),
        Some(Value::String(_)) => Err(format!("`{key}` is empty")),
        Some(other) => Err(format!("`{key}` must be a string, not {other}")),
        None => Err(format!("`{key}` is missing")),
    }
}

/// The array argument `key`.
fn list<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], String> {
    match args.get(key) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(format!("`{key}` must be a list, not {other}")),
        None => Err(format!("`{key}` is missing")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn call(tool: &str, args: Value) -> ToolCall {
        ToolCall {
            tool: tool.into(),
            args,
        }
    }

    #[test]
    fn well_formed_calls_are_described() {
        let cases = [
            (
                call(
                    "create_machine",
                    json!({"name": "light", "states": [{"name": "red"}, {"name": "green"}]}),
                ),
                "created machine light with states red, green",
            ),
            (
                call(
                    "add_state",
                    json!({"machine": "light", "state": {"name": "amber"}}),
                ),
                "added state amber to machine light",
            ),
            (
                call("reset_machine", json!({"machine": "light"})),
                "reset machine light",
            ),
            (
                call("destroy_machine", json!({"machine": "light"})),
                "removed machine light",
            ),
            (
                call(
                    "transition_machine",
                    json!({"machine": "light", "to": "green"}),
                ),
                "moved machine light to green",
            ),
            (
                call("set_state", json!({"key": "mode", "value": "dark"})),
                "set mode to dark",
            ),
            (
                call("set_state", json!({"key": "count", "value": 3})),
                "set count to 3",
            ),
            (
                call("emit_display", json!({"title": "devices"})),
                "showed devices",
            ),
            (call("emit_display", json!({})), "showed a display"),
        ];
        for (call, expected) in cases {
            assert_eq!(check(&call).as_deref(), Ok(expected), "{call:?}");
        }
    }

    #[test]
    fn missing_or_mistyped_arguments_are_errors() {
        let cases = [
            (
                call("create_machine", json!({"states": [{"name": "a"}]})),
                "`name` is missing",
            ),
            (
                call("create_machine", json!({"name": "m", "states": []})),
                "`states` is empty",
            ),
            (
                call("create_machine", json!({"name": "m", "states": "a, b"})),
                "`states` must be a list",
            ),
            (
                call(
                    "create_machine",
                    json!({"name": "m", "states": [{"content": "x"}]}),
                ),
                "every state needs a `name`",
            ),
            (
                call("add_state", json!({"machine": "m"})),
                "`state` must be an object",
            ),
            (
                call("add_state", json!({"machine": "m", "state": {}})),
                "state: `name` is missing",
            ),
            (
                call("reset_machine", json!({"machine": ""})),
                "`machine` is empty",
            ),
            (
                call("destroy_machine", json!({"machine": 7})),
                "`machine` must be a string",
            ),
            (
                call("transition_machine", json!({"machine": "m"})),
                "`to` is missing",
            ),
            (
                call("set_state", json!({"key": "mode"})),
                "`value` is missing",
            ),
            (call("emit_display", json!(["x"])), "args must be an object"),
            (call("query_db", json!({})), "is not a UI tool"),
        ];
        for (call, expected) in cases {
            let error = check(&call).unwrap_err();
            assert!(error.contains(expected), "{call:?}: {error}");
        }
    }
}
