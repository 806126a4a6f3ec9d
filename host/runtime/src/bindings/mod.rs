//! Generated bindings for each supported `weft:node` contract version and
//! conversions to the domain types in [`crate::types`].
//!
//! Following Zed's `since_v0_x` modules, each released contract version has
//! its own module; the conversions and calls are written once
//! ([`contract!`](contract)) and expanded in each. The rest of the runtime
//! speaks domain types only, through [`Pre`] and [`Instance`]. To release a
//! version: copy `wit/` to `wit/vX.Y.Z/`, add a module here, and keep the
//! older ones loading old plugins.

#[macro_use]
mod contract;
pub(crate) mod v0_1;
pub(crate) mod v0_2;
pub(crate) mod v0_3;
pub(crate) mod v0_4;

use wasmtime::Store;

use crate::sandbox::HostState;
use crate::types as t;

/// What `describe` returned, schemas still as text.
pub(crate) struct RawInfo {
    pub name: String,
    pub version: String,
    pub description: String,
    pub input_schema: String,
    pub output_schema: String,
    pub capabilities: Vec<t::Capability>,
}

/// A component linked for its contract version, ready to instantiate.
pub(crate) enum Pre {
    V0_1(v0_1::NodePre<HostState>),
    V0_2(v0_2::NodePre<HostState>),
    V0_3(v0_3::NodePre<HostState>),
    V0_4(v0_4::NodePre<HostState>),
}

/// An instance of a component.
pub(crate) enum Instance {
    V0_1(v0_1::Node),
    V0_2(v0_2::Node),
    V0_3(v0_3::Node),
    V0_4(v0_4::Node),
}

impl Pre {
    /// Links `pre` as the bindings of contract `version` (one of
    /// [`SUPPORTED`]).
    pub(crate) fn new(
        version: &str,
        pre: wasmtime::component::InstancePre<HostState>,
    ) -> wasmtime::Result<Self> {
        match version {
            v0_1::VERSION => Ok(Self::V0_1(v0_1::NodePre::new(pre)?)),
            v0_2::VERSION => Ok(Self::V0_2(v0_2::NodePre::new(pre)?)),
            v0_3::VERSION => Ok(Self::V0_3(v0_3::NodePre::new(pre)?)),
            v0_4::VERSION => Ok(Self::V0_4(v0_4::NodePre::new(pre)?)),
            other => Err(wasmtime::format_err!(
                "contract version {other} has no bindings in this host"
            )),
        }
    }

    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Instance> {
        Ok(match self {
            Self::V0_1(p) => Instance::V0_1(v0_1::instantiate(p, store).await?),
            Self::V0_2(p) => Instance::V0_2(v0_2::instantiate(p, store).await?),
            Self::V0_3(p) => Instance::V0_3(v0_3::instantiate(p, store).await?),
            Self::V0_4(p) => Instance::V0_4(v0_4::instantiate(p, store).await?),
        })
    }
}

impl Instance {
    pub(crate) async fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<RawInfo> {
        match self {
            Self::V0_1(n) => v0_1::describe(n, store).await,
            Self::V0_2(n) => v0_2::describe(n, store).await,
            Self::V0_3(n) => v0_3::describe(n, store).await,
            Self::V0_4(n) => v0_4::describe(n, store).await,
        }
    }

    pub(crate) async fn tick(
        &self,
        store: &mut Store<HostState>,
        call: &t::CallContext,
        config: &str,
        inbox: &[t::Message],
    ) -> wasmtime::Result<Result<t::TickOutput, t::NodeError>> {
        match self {
            Self::V0_1(n) => v0_1::tick(n, store, call, config, inbox).await,
            Self::V0_2(n) => v0_2::tick(n, store, call, config, inbox).await,
            Self::V0_3(n) => v0_3::tick(n, store, call, config, inbox).await,
            Self::V0_4(n) => v0_4::tick(n, store, call, config, inbox).await,
        }
    }
}

/// Contract versions this host loads side by side, newest first.
pub(crate) const SUPPORTED: &[&str] = &[v0_4::VERSION, v0_3::VERSION, v0_2::VERSION, v0_1::VERSION];
