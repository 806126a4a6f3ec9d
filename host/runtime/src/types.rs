//! Domain types of the node contract, independent of any WIT version.
//!
//! They are defined once, in `weft-contract`, for the host and the SDK
//! alike; the generated bindings of each supported contract version convert
//! into them (see `bindings/`), so the rest of weft never depends on one
//! version's generated code. All of them serialize, because host-call
//! requests and responses are journaled for replay. [`Grants`] is the
//! host's own: which capabilities a graph gives a node.

pub use weft_contract::{
    CallContext, Capability, CapabilityError, ChatMessage, Column, Completion, CompletionRequest,
    EventKind, Interrupt, Level, Message, NodeError, NodeInfo, Outbound, Role, Rows, Scope,
    TickOutput, Value,
};

/// The set of capabilities granted to a node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Grants(u8);

impl Grants {
    /// No capability at all.
    pub const NONE: Grants = Grants(0);

    /// Every capability.
    pub fn all() -> Self {
        Self::from_iter(Capability::ALL)
    }

    /// Whether `cap` is granted.
    pub fn allows(self, cap: Capability) -> bool {
        self.0 & (1 << cap as u8) != 0
    }

    /// The granted capabilities, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.allows(*c))
    }
}

impl FromIterator<Capability> for Grants {
    fn from_iter<I: IntoIterator<Item = Capability>>(iter: I) -> Self {
        Grants(iter.into_iter().fold(0, |bits, c| bits | (1 << c as u8)))
    }
}
