//! The `log` capability: diagnostic lines into the host's structured log,
//! tagged with the invocation's thread, run, frame and node.

use serde::{Deserialize, Serialize};
use wasmtime::component::{HasData, Linker};

use super::CapView;
use crate::sandbox::HostState;
use crate::types::{Capability, CapabilityError, Level};

/// Most log bytes one invocation may write; further lines are refused.
/// Each line counts [`LOG_LINE_OVERHEAD`] bytes besides its text, so that
/// empty lines cannot be written without end.
pub const MAX_LOG_BYTES: usize = 256 << 10;

/// What each log line counts besides its text.
pub const LOG_LINE_OVERHEAD: usize = 64;

/// One line a node logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// Text.
    pub message: String,
}

/// Per-invocation state of the `log` capability.
#[derive(Default)]
pub(crate) struct LogState {
    pub lines: Vec<LogLine>,
    pub bytes: usize,
}

struct HasLog;
impl HasData for HasLog {
    type Data<'a> = CapView<'a, LogState>;
}

/// Adds the `log` interface to `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use crate::bindings::{v0_1, v0_2, v0_3, v0_4};
    v0_4::weft::node::log::add_to_linker::<HostState, HasLog>(linker, |s| CapView {
        state: &mut s.log,
        shared: &mut s.shared,
    })?;
    v0_3::weft::node::log::add_to_linker::<HostState, HasLog>(linker, |s| CapView {
        state: &mut s.log,
        shared: &mut s.shared,
    })?;
    v0_2::weft::node::log::add_to_linker::<HostState, HasLog>(linker, |s| CapView {
        state: &mut s.log,
        shared: &mut s.shared,
    })?;
    v0_1::weft::node::log::add_to_linker::<HostState, HasLog>(linker, |s| CapView {
        state: &mut s.log,
        shared: &mut s.shared,
    })
}

/// The `log` host functions, for each contract version's bindings.
macro_rules! host {
    ($wit:path, $err:path) => {
        const _: () = {
            use $wit as wit;
            use $err as WitError;

            impl wit::Host for CapView<'_, LogState> {
                fn write(&mut self, level: wit::Level, message: String) -> Result<(), WitError> {
                    self.shared.admit(Capability::Log, "write")?;
                    let cost = message.len() + LOG_LINE_OVERHEAD;
                    if self.state.bytes + cost > MAX_LOG_BYTES {
                        // Not journaled: logging does not influence the node's outputs
                        // beyond this error, which is deterministic given the inputs.
                        return Err(CapabilityError::LimitExceeded(format!(
                            "at most {MAX_LOG_BYTES} bytes of log per invocation \
                             ({LOG_LINE_OVERHEAD} per line besides its text)"
                        ))
                        .into());
                    }
                    let level = Level::from(level);
                    let call = &self.shared.call;
                    match level {
                        Level::Trace => {
                            tracing::trace!(thread = %call.thread, run = %call.run, frame = call.frame, node = %call.node, "{message}")
                        }
                        Level::Debug => {
                            tracing::debug!(thread = %call.thread, run = %call.run, frame = call.frame, node = %call.node, "{message}")
                        }
                        Level::Info => {
                            tracing::info!(thread = %call.thread, run = %call.run, frame = call.frame, node = %call.node, "{message}")
                        }
                        Level::Warn => {
                            tracing::warn!(thread = %call.thread, run = %call.run, frame = call.frame, node = %call.node, "{message}")
                        }
                        Level::Error => {
                            tracing::error!(thread = %call.thread, run = %call.run, frame = call.frame, node = %call.node, "{message}")
                        }
                    }
                    self.state.bytes += cost;
                    self.state.lines.push(LogLine { level, message });
                    Ok(())
                }
            }
        };
    };
}
host!(
    crate::bindings::v0_4::weft::node::log,
    crate::bindings::v0_4::wit::Error
);
host!(
    crate::bindings::v0_3::weft::node::log,
    crate::bindings::v0_3::wit::Error
);
host!(
    crate::bindings::v0_2::weft::node::log,
    crate::bindings::v0_2::wit::Error
);
host!(
    crate::bindings::v0_1::weft::node::log,
    crate::bindings::v0_1::wit::Error
);
