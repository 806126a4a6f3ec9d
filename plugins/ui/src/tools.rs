//! The UI tools of [`weft_protocol::UI_TOOLS`] and the `go:` button action,
//! applied to a [`UiState`]. Each returns the problem as text, so the node
//! can collect it and go on with the next call.
//!
//! Names (of machines, states and state keys) are trimmed; an empty one is
//! an error. Arguments the tools do not know are ignored, so a model's
//! extra `description` does not cost the call.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use weft_protocol::{ToolCall, UiAction};

use crate::state::{Button, Display, Machine, MachineState, UiState};

/// The action prefix that moves a machine to a state.
pub const GO_PREFIX: &str = "go:";

/// `create_machine {name, states: [{name, content?, buttons?}], initial?}`.
#[derive(Deserialize)]
struct CreateMachine {
    name: String,
    states: Vec<StateSpec>,
    #[serde(default)]
    initial: Option<String>,
}

/// One state as the tools describe it.
#[derive(Deserialize)]
struct StateSpec {
    name: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    buttons: Option<Vec<Button>>,
}

/// `add_state {machine, state}`.
#[derive(Deserialize)]
struct AddState {
    machine: String,
    state: StateSpec,
}

/// `reset_machine {machine}` and `destroy_machine {machine}`.
#[derive(Deserialize)]
struct MachineRef {
    machine: String,
}

/// `transition_machine {machine, to}`.
#[derive(Deserialize)]
struct Transition {
    machine: String,
    to: String,
}

/// `set_state {key, value}`; `value` may be any JSON, `null` included,
/// but must be there.
#[derive(Deserialize)]
struct SetState {
    key: String,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
}

/// `Some` for any value that is there, `null` too (absent is the default, `None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

impl StateSpec {
    /// The state's name and the state, checked.
    fn build(self) -> Result<(String, MachineState), String> {
        let name = required(&self.name, "state name")?;
        let buttons = self.buttons.unwrap_or_default();
        for button in &buttons {
            if button.label.trim().is_empty() || button.action.trim().is_empty() {
                return Err(format!(
                    "state `{name}` has a button without a label or an action"
                ));
            }
        }
        let state = MachineState {
            content: self.content.unwrap_or_default(),
            buttons,
        };
        Ok((name, state))
    }
}

impl UiState {
    /// Apply one UI tool call.
    pub fn apply(&mut self, call: &ToolCall) -> Result<(), String> {
        match call.tool.as_str() {
            "create_machine" => self.create_machine(args(call)?),
            "add_state" => self.add_state(args(call)?),
            "reset_machine" => {
                let MachineRef { machine } = args(call)?;
                let machine = self.machine_mut(&machine)?;
                machine.current = machine.initial.clone();
                Ok(())
            }
            "destroy_machine" => {
                let MachineRef { machine } = args(call)?;
                let name = required(&machine, "machine")?;
                self.machines
                    .remove(&name)
                    .map(drop)
                    .ok_or_else(|| format!("no machine named `{name}`"))
            }
            "transition_machine" => {
                let Transition { machine, to } = args(call)?;
                self.transition(&machine, &to)
            }
            "set_state" => {
                let SetState { key, value } = args(call)?;
                let key = required(&key, "key")?;
                let value = value.ok_or_else(|| "missing field `value`".to_owned())?;
                self.state.insert(key, value);
                Ok(())
            }
            "emit_display" => {
                let display: Display = args(call)?;
                self.display = vec![display];
                Ok(())
            }
            other => Err(format!("{other:?} is not a UI tool")),
        }
    }

    /// Handle a button press: `go:<state>` moves the machine named in the
    /// action, or else the only machine that has `<state>`, to it.
    pub fn press(&mut self, action: &UiAction) -> Result<(), String> {
        let Some(target) = action.action.strip_prefix(GO_PREFIX) else {
            return Err(format!("only {GO_PREFIX}<state> actions are handled"));
        };
        let target = required(target, "state")?;
        let machine = match action.machine.as_deref().map(str::trim) {
            Some(machine) if !machine.is_empty() => machine.to_owned(),
            _ => self.owner_of(&target)?,
        };
        self.transition(&machine, &target)
    }

    fn create_machine(&mut self, spec: CreateMachine) -> Result<(), String> {
        let name = required(&spec.name, "name")?;
        if self.machines.contains_key(&name) {
            return Err(format!("machine `{name}` already exists"));
        }
        let mut states = BTreeMap::new();
        let mut first = None;
        for state in spec.states {
            let (state_name, state) = state.build()?;
            if states.insert(state_name.clone(), state).is_some() {
                return Err(format!("state `{state_name}` is listed twice"));
            }
            first.get_or_insert(state_name);
        }
        let Some(first) = first else {
            return Err("`states` is empty".to_owned());
        };
        // A model often writes `"initial": ""` for "the first one".
        let initial = match spec.initial.as_deref().map(str::trim) {
            Some(initial) if !initial.is_empty() => {
                if !states.contains_key(initial) {
                    return Err(format!(
                        "initial state `{initial}` is not one of the states"
                    ));
                }
                initial.to_owned()
            }
            _ => first,
        };
        let machine = Machine {
            states,
            current: initial.clone(),
            initial,
        };
        self.machines.insert(name, machine);
        Ok(())
    }

    fn add_state(&mut self, spec: AddState) -> Result<(), String> {
        let (state_name, state) = spec.state.build()?;
        let machine_name = required(&spec.machine, "machine")?;
        let machine = self.machine_mut(&machine_name)?;
        if machine.states.contains_key(&state_name) {
            return Err(format!(
                "machine `{machine_name}` already has state `{state_name}`"
            ));
        }
        machine.states.insert(state_name, state);
        Ok(())
    }

    /// Move `machine` to its state `to`.
    fn transition(&mut self, machine: &str, to: &str) -> Result<(), String> {
        let to = required(to, "to")?;
        let name = required(machine, "machine")?;
        let machine = self.machine_mut(&name)?;
        if !machine.states.contains_key(&to) {
            return Err(format!("machine `{name}` has no state `{to}`"));
        }
        machine.current = to;
        Ok(())
    }

    /// The machine named `name` (trimmed).
    fn machine_mut(&mut self, name: &str) -> Result<&mut Machine, String> {
        let name = required(name, "machine")?;
        self.machines
            .get_mut(&name)
            .ok_or_else(|| format!("no machine named `{name}`"))
    }

    /// The only machine that has state `state`.
    fn owner_of(&self, state: &str) -> Result<String, String> {
        let owners: Vec<&str> = self
            .machines
            .iter()
            .filter(|(_, machine)| machine.states.contains_key(state))
            .map(|(name, _)| name.as_str())
            .collect();
        match owners[..] {
            [owner] => Ok(owner.to_owned()),
            [] => Err(format!("no machine has state `{state}`")),
            _ => Err(format!(
                "state `{state}` is ambiguous: machines {} have it",
                owners.join(", ")
            )),
        }
    }
}

/// The call's arguments as `T`; serde's message names the bad field.
fn args<T: DeserializeOwned>(call: &ToolCall) -> Result<T, String> {
    serde_json::from_value(call.args.clone()).map_err(|error| error.to_string())
}

/// `value` trimmed, or an error naming `what` when that leaves nothing.
fn required(value: &str, what: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        Err(format!("`{what}` is empty"))
    } else {
        Ok(value.to_owned())
    }
}
