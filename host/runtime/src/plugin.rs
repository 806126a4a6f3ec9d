//! Loading a plugin: reading, validating, compiling (off the tick path) and
//! pre-instantiating a component, then asking it to `describe` itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::bindings::Pre;
use crate::cache::{CacheHit, ContentHash};
use crate::error::RuntimeError;
use crate::types::NodeInfo;

/// Contract versions this host loads side by side.
pub const SUPPORTED_CONTRACTS: &[&str] = crate::bindings::SUPPORTED;

/// The export every weft node has, without its version.
const PLUGIN_EXPORT: &str = "weft:node/plugin";

/// A loaded plugin version: compiled, linked, described, ready to be
/// instantiated fresh for every invocation. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

/// What a [`Plugin`] holds; built by the runtime when loading.
pub(crate) struct PluginInner {
    pub path: PathBuf,
    pub hash: ContentHash,
    /// `hash` in hex, written once: every frame record names it.
    pub hash_hex: String,
    pub size: usize,
    pub contract: String,
    pub info: NodeInfo,
    pub cache_hit: CacheHit,
    pub pre: Pre,
}

impl From<PluginInner> for Plugin {
    fn from(inner: PluginInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl Plugin {
    /// The file the plugin was loaded from.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }
    /// The content hash of the component bytes: this version's identity.
    pub fn hash(&self) -> ContentHash {
        self.inner.hash
    }
    /// [`hash`](Self::hash) in lowercase hex.
    pub fn hash_hex(&self) -> &str {
        &self.inner.hash_hex
    }
    /// Size of the component in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }
    /// The `weft:node` contract version the plugin was built against.
    pub fn contract(&self) -> &str {
        &self.inner.contract
    }
    /// What the plugin said about itself in `describe`.
    pub fn info(&self) -> &NodeInfo {
        &self.inner.info
    }
    /// Whether loading compiled the component or found it cached.
    pub fn cache_hit(&self) -> CacheHit {
        self.inner.cache_hit
    }
    pub(crate) fn pre(&self) -> &Pre {
        &self.inner.pre
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.info.name)
            .field("version", &self.inner.info.version)
            .field("hash", &self.inner.hash.short())
            .field("contract", &self.inner.contract)
            .finish()
    }
}

/// What kind of file the bytes are, from the 8-byte WebAssembly header.
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    let invalid = |reason: &str| RuntimeError::InvalidComponent {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() < 8 {
        return Err(invalid(&format!(
            "{} bytes is too short to be a WebAssembly component (truncated or empty file)",
            bytes.len()
        )));
    }
    if &bytes[..4] != b"\0asm" {
        return Err(invalid(
            "not a WebAssembly file (no `\\0asm` magic number); build plugins with `weft plugin build` (in weft's repository: `cargo xtask build-plugins`)",
        ));
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => Err(invalid(
            "a core WebAssembly module, not a component; build for `wasm32-wasip2` (or wrap the module with `wasm-tools component new`)",
        )),
        [a, b, c, d] => Err(invalid(&format!(
            "unsupported WebAssembly version/layer {a:#04x} {b:#04x} {c:#04x} {d:#04x}"
        ))),
        _ => unreachable!("slice of length 4"),
    }
}

/// A component's exports: each name, and whether it is an instance.
pub(crate) fn exports(engine: &Engine, component: &Component) -> Vec<(String, bool)> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, item)| {
            (
                name.to_owned(),
                matches!(item.ty, ComponentItem::ComponentInstance(_)),
            )
        })
        .collect()
}

/// The version `X` of a component's `weft:node/plugin@X` export (an
/// instance), given its exports as (name, is an instance).
pub(crate) fn exported_contract(exports: &[(String, bool)]) -> Option<String> {
    exports.iter().find_map(|(name, is_instance)| {
        let (iface, version) = name.split_once('@').unwrap_or((name.as_str(), ""));
        (iface == PLUGIN_EXPORT && *is_instance).then(|| version.to_owned())
    })
}

/// Finds the contract version from the component's `weft:node/plugin@X`
/// export; refuses components of other worlds and unsupported versions.
pub(crate) fn contract_version(
    engine: &Engine,
    path: &Path,
    component: &Component,
) -> Result<String, RuntimeError> {
    let exports = exports(engine, component);
    let found = exported_contract(&exports);
    match found {
        Some(v) if SUPPORTED_CONTRACTS.contains(&v.as_str()) => Ok(v),
        Some(v) => Err(RuntimeError::IncompatibleContract {
            path: path.to_owned(),
            found: if v.is_empty() {
                "(unversioned)".into()
            } else {
                v
            },
            supported: SUPPORTED_CONTRACTS.to_vec(),
        }),
        None => {
            let names: Vec<&str> = exports.iter().map(|(n, _)| n.as_str()).collect();
            Err(RuntimeError::WrongWorld {
                path: path.to_owned(),
                reason: format!(
                    "it does not export `{PLUGIN_EXPORT}` (it exports: {})",
                    if names.is_empty() {
                        "nothing".to_owned()
                    } else {
                        names.join(", ")
                    }
                ),
            })
        }
    }
}
