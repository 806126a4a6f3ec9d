//! The UI state the node keeps in node-scope memory under
//! [`UI_STATE_KEY`](crate::UI_STATE_KEY), as the UI reads it:
//!
//! ```json
//! {
//!   "machines": {"light": {"states": {"red": {"content": "Stop", "buttons": [
//!       {"label": "Go", "action": "go:green"}]}, "green": {"content": "", "buttons": []}},
//!     "initial": "red", "current": "red"}},
//!   "state": {"mode": "dark"},
//!   "display": [{"title": "summary", "items": ["2 devices"]}],
//!   "controls": [{"machine": "light", "label": "Go", "action": "go:green"}]
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The whole UI state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UiState {
    /// The state machines, by name.
    pub machines: BTreeMap<String, Machine>,
    /// Key/value state shown by the UI (`set_state`).
    pub state: BTreeMap<String, Value>,
    /// The latest `emit_display` (empty before the first one).
    pub display: Vec<Display>,
    /// The buttons of each machine's current state, machines by name;
    /// derived from `machines` by [`UiState::refresh_controls`].
    pub controls: Vec<Control>,
}

/// One state machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Its states, by name.
    pub states: BTreeMap<String, MachineState>,
    /// The state `reset_machine` goes back to.
    pub initial: String,
    /// The state it is in.
    pub current: String,
}

/// One state of a machine: what it shows and its buttons.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MachineState {
    /// The text shown in this state.
    #[serde(default)]
    pub content: String,
    /// The buttons shown in this state.
    #[serde(default)]
    pub buttons: Vec<Button>,
}

/// A button: its label and the action pressing it sends (`go:<state>`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// The text on the button.
    pub label: String,
    /// The action sent back as an `action` message, e.g. `go:details`.
    pub action: String,
}

/// A button the UI shows now, with the machine it belongs to (so the UI
/// can send `{action, machine}` back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Control {
    /// The machine whose current state has the button.
    pub machine: String,
    /// The text on the button.
    pub label: String,
    /// The action it sends.
    pub action: String,
}

/// What `emit_display` shows: a titled list, a table, or both. Absent
/// parts are left out of the JSON, so the stored value is the call's args.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Display {
    /// A heading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// List items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// Table column headings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<Value>>,
    /// Table rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<Vec<Value>>>,
}

impl UiState {
    /// Recompute [`controls`](Self::controls) from the machines.
    pub fn refresh_controls(&mut self) {
        self.controls = self
            .machines
            .iter()
            .filter_map(|(name, machine)| Some((name, machine.states.get(&machine.current)?)))
            .flat_map(|(name, state)| {
                state.buttons.iter().map(|button| Control {
                    machine: name.clone(),
                    label: button.label.clone(),
                    action: button.action.clone(),
                })
            })
            .collect();
    }
}
