//! The `hud` capability: progress text and typed events for traces, the
//! event streams and the UI.

use serde::{Deserialize, Serialize};
use serde_json::json;
use wasmtime::component::{HasData, Linker};

use super::CapView;
use crate::sandbox::HostState;
use crate::types::{CallContext, Capability, CapabilityError, EventKind};

/// Most HUD calls one invocation may make.
pub const MAX_EVENTS: usize = 256;
/// Largest progress text or event payload, in bytes.
pub const MAX_EVENT_BYTES: usize = 64 << 10;

/// Something a node showed while it worked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HudEvent {
    /// Progress text for the end user.
    Progress {
        /// The text.
        text: String,
    },
    /// A typed event with a JSON payload.
    Event {
        /// The event kind.
        kind: EventKind,
        /// The payload.
        data: serde_json::Value,
    },
}

/// Receives HUD output live, while the invocation runs (progress must reach
/// the user before the frame ends). Implementations must not block.
pub trait EventSink: Send + Sync {
    /// Called for each progress text or event as it happens.
    fn emit(&self, ctx: &CallContext, event: &HudEvent);

    /// Called with each piece of text an `llm` call streams (requests with
    /// `stream` set). Deltas are live only: the whole answer is in the
    /// journal. The default drops them.
    fn delta(&self, _ctx: &CallContext, _text: &str) {}
}

/// A sink that drops everything.
#[derive(Debug, Default)]
pub struct NullSink;

impl EventSink for NullSink {
    fn emit(&self, _: &CallContext, _: &HudEvent) {}
}

/// Per-invocation state of the `hud` capability.
pub(crate) struct HudState {
    pub sink: std::sync::Arc<dyn EventSink>,
    pub events: Vec<HudEvent>,
}

impl CapView<'_, HudState> {
    fn push(
        &mut self,
        op: &str,
        event: Result<HudEvent, CapabilityError>,
    ) -> Result<(), CapabilityError> {
        self.shared.admit(Capability::Hud, op)?;
        let event = event.and_then(|e| {
            if self.state.events.len() >= MAX_EVENTS {
                Err(CapabilityError::LimitExceeded(format!(
                    "at most {MAX_EVENTS} hud calls per invocation"
                )))
            } else {
                Ok(e)
            }
        });
        let request = match &event {
            Ok(e) => json!(e),
            Err(_) => json!(null),
        };
        let result = event.map(|e| {
            self.state.sink.emit(&self.shared.call, &e);
            self.state.events.push(e);
        });
        self.shared.record(Capability::Hud, op, request, result)
    }
}

fn check_size(len: usize) -> Result<(), CapabilityError> {
    if len > MAX_EVENT_BYTES {
        return Err(CapabilityError::LimitExceeded(format!(
            "hud payload is {len} bytes, over the limit of {MAX_EVENT_BYTES}"
        )));
    }
    Ok(())
}

struct HasHud;
impl HasData for HasHud {
    type Data<'a> = CapView<'a, HudState>;
}

/// Adds the `hud` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::{v0_1, v0_2, v0_3, v0_4};
    v0_4::weft::node::hud::add_to_linker::<HostState, HasHud>(linker, |s| CapView {
        state: &mut s.hud,
        shared: &mut s.shared,
    })?;
    v0_3::weft::node::hud::add_to_linker::<HostState, HasHud>(linker, |s| CapView {
        state: &mut s.hud,
        shared: &mut s.shared,
    })?;
    v0_2::weft::node::hud::add_to_linker::<HostState, HasHud>(linker, |s| CapView {
        state: &mut s.hud,
        shared: &mut s.shared,
    })?;
    v0_1::weft::node::hud::add_to_linker::<HostState, HasHud>(linker, |s| CapView {
        state: &mut s.hud,
        shared: &mut s.shared,
    })
}

/// The `hud` host functions, for each contract version's bindings.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $err as WitError;
            use $wit as wit;

            impl wit::Host for CapView<'_, HudState> {
                fn progress(&mut self, text: String) -> Result<(), WitError> {
                    let event = check_size(text.len()).map(|()| HudEvent::Progress { text });
                    self.push("progress", event).map_err(Into::into)
                }

                fn emit(&mut self, kind: wit::EventKind, data: String) -> Result<(), WitError> {
                    let event = check_size(data.len()).and_then(|()| {
                        let data = serde_json::from_str(&data).map_err(|e| {
                            CapabilityError::InvalidInput(format!("event data is not JSON: {e}"))
                        })?;
                        Ok(HudEvent::Event {
                            kind: kind.into(),
                            data,
                        })
                    });
                    self.push("emit", event).map_err(Into::into)
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::hud,
    crate::bindings::v0_4::wit::Error
);
host!(
    crate::bindings::v0_3::weft::node::hud,
    crate::bindings::v0_3::wit::Error
);
host!(
    crate::bindings::v0_2::weft::node::hud,
    crate::bindings::v0_2::wit::Error
);
host!(
    crate::bindings::v0_1::weft::node::hud,
    crate::bindings::v0_1::wit::Error
);
