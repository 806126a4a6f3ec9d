//! `weft plugin inspect`: what a component file is — its world (imports and
//! exports), contract version, size and hash, what it says of itself in
//! `describe`, and how long it takes to compile — or, for a file that is
//! not a weft node, what it is instead.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::cache::{CacheHit, ContentHash};
use crate::error::RuntimeError;
use crate::plugin::{SUPPORTED_CONTRACTS, check_header, exported_contract, exports};
use crate::runtime::Runtime;
use crate::types::NodeInfo;

/// What a component file is.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: usize,
    /// SHA-256 of its bytes (hex): the version's identity.
    pub hash: String,
    /// What the component imports (interfaces and functions), by name.
    pub imports: Vec<String>,
    /// What it exports, by name.
    pub exports: Vec<String>,
    /// The `weft:node` contract version it was built for, if it exports the
    /// plugin interface.
    pub contract: Option<String>,
    /// The contract versions this host loads.
    pub supported: Vec<String>,
    /// The weft capabilities it imports (`llm`, `db`, …).
    pub capability_imports: Vec<String>,
    /// What `describe` said (when the component loads).
    pub describe: Option<NodeInfo>,
    /// Why it does not load as a weft node, if it does not.
    pub problem: Option<String>,
    /// Compile time in milliseconds (0 when found in the cache).
    pub compile_ms: u64,
    /// Whether the precompiled artifact was in the cache.
    pub cache_hit: bool,
}

impl Runtime {
    /// Inspects the component at `path`. A file that is not a WebAssembly
    /// component at all is an error that says what it is; a component that
    /// is not a loadable weft node is described, with the problem.
    pub async fn inspect(&self, path: &Path) -> Result<Inspection, RuntimeError> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| RuntimeError::Io {
                path: path.to_owned(),
                source,
            })?;
        check_header(path, &bytes)?;
        let hash = ContentHash::of(&bytes);
        let started = Instant::now();
        let size = bytes.len();
        let (component, hit) = self.compile(path, hash, bytes.clone()).await?;
        let compile_ms = started.elapsed().as_millis() as u64;
        let engine = self.wasmtime();
        let ty = component.component_type();
        let mut imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_owned()).collect();
        let mut exports = exports(engine, &component);
        imports.sort();
        exports.sort();
        let contract = exported_contract(&exports);
        let exports: Vec<String> = exports.into_iter().map(|(n, _)| n).collect();
        let capability_imports = imports
            .iter()
            .filter_map(|i| i.strip_prefix("weft:node/"))
            .map(|i| i.split('@').next().unwrap_or(i).to_owned())
            .filter(|i| i != "types")
            .collect();
        let (describe, problem) = match self.load_bytes(path.to_owned(), bytes).await {
            Ok(plugin) => (Some(plugin.info().clone()), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(Inspection {
            path: path.to_owned(),
            size,
            hash: hash.to_hex(),
            imports,
            exports,
            contract,
            supported: SUPPORTED_CONTRACTS
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
            capability_imports,
            describe,
            problem,
            compile_ms: if hit == CacheHit::Compiled {
                compile_ms
            } else {
                0
            },
            cache_hit: hit != CacheHit::Compiled,
        })
    }
}
