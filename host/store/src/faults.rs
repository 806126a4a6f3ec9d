//! Fault injection into frame commits, for tests of all-or-nothing
//! commits and of the engine's retries; any backend can honour it.

use std::sync::Mutex;

use weft_engine::StoreError;
use weft_engine::store::StoreResult;

/// The parts of a frame's commit, in the order they are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// The frame row.
    Frame,
    /// Invocation records and their journals.
    Invocations,
    /// Messages delivered and sent.
    Messages,
    /// Memory writes.
    Memory,
    /// Usage events.
    Usage,
    /// Run and thread state.
    Run,
}

/// Faults to inject into frame commits (tests).
#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: Mutex<Option<Fault>>,
}

#[derive(Debug)]
struct Fault {
    part: FramePart,
    /// Frame commits to let through first.
    skip: u32,
    /// Frame commits to fail.
    times: u32,
}

impl Faults {
    /// Lets `skip` frame commits through, then fails the next `times`
    /// right after writing `part`.
    pub(crate) fn set(&self, part: FramePart, skip: u32, times: u32) {
        *self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (times > 0).then_some(Fault { part, skip, times });
    }

    /// Called once at the start of each frame commit: the part after which
    /// this commit is to fail, if it is.
    pub(crate) fn arm(&self) -> Armed {
        Armed(self.next())
    }

    fn next(&self) -> Option<FramePart> {
        let mut armed = self
            .armed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fault = armed.as_mut()?;
        if fault.skip > 0 {
            fault.skip -= 1;
            return None;
        }
        fault.times -= 1;
        let part = fault.part;
        if fault.times == 0 {
            *armed = None;
        }
        Some(part)
    }
}

/// The fault armed for one commit.
pub(crate) struct Armed(Option<FramePart>);

impl Armed {
    /// No fault.
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// Whether a fault is armed.
    pub(crate) fn is_armed(&self) -> bool {
        self.0.is_some()
    }

    /// Fails if this commit is to fail after writing `part`.
    pub(crate) fn check(&self, part: FramePart) -> StoreResult<()> {
        if self.0 == Some(part) {
            return Err(StoreError::Backend(format!(
                "injected fault after writing {part:?}"
            )));
        }
        Ok(())
    }
}
