//! Compiled components, cached in memory and on disk.
//!
//! Compiling a component takes milliseconds for a small Rust node and tens
//! of seconds for a Python one, so it never happens on the tick path: the
//! first load compiles and writes a precompiled artifact keyed by the
//! component's content hash and the engine's compatibility hash (which
//! covers the wasmtime version and every setting that affects code); later
//! loads, in this process or the next, only map the artifact.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::RuntimeError;

/// The SHA-256 of a component's bytes: a plugin version's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Full lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The first 12 hex digits, for logs and traces.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl std::fmt::Display for ContentHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Where a component came from when it was compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheHit {
    /// Already compiled in this process.
    Memory,
    /// Mapped from a precompiled artifact on disk.
    Disk,
    /// Compiled now (and written to disk if there is a cache directory).
    Compiled,
}

/// Compiled components by content hash.
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
    memory: Mutex<HashMap<ContentHash, Component>>,
}

impl ComponentCache {
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).map_err(|e| RuntimeError::Cache {
                path: dir.clone(),
                reason: format!("cannot create directory: {e}"),
            })?;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        // The compatibility hash covers the wasmtime version and every engine
        // setting that affects compiled code.
        let engine_key = format!("{:016x}", h.finish());
        Ok(Self {
            dir,
            engine_key,
            memory: Mutex::default(),
        })
    }

    fn artifact_path(&self, hash: &ContentHash) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}-{}.cwasm", hash.to_hex(), self.engine_key)))
    }

    /// Returns the compiled component for `bytes`, compiling at most once.
    /// Blocking: call it off the async executor.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        path: &Path,
        hash: ContentHash,
        bytes: &[u8],
    ) -> Result<(Component, CacheHit), RuntimeError> {
        if let Some(c) = self.lock().get(&hash) {
            return Ok((c.clone(), CacheHit::Memory));
        }
        let artifact = self.artifact_path(&hash);
        if let Some(artifact) = artifact.as_deref().filter(|a| a.exists()) {
            // Read into memory rather than map the file: a mapped artifact
            // that someone truncates or rewrites in place would crash the
            // host with SIGBUS; a copy costs a millisecond.
            let loaded = std::fs::read(artifact)
                .map_err(|e| e.to_string())
                // SAFETY: the bytes were written by `Component::serialize`
                // of an engine with the same compatibility hash (it is in
                // the file name), in a directory owned by this host;
                // `deserialize` still checks the header and version and a
                // corrupt file fails here and is recompiled below.
                .and_then(|bytes| {
                    #[allow(unsafe_code)]
                    let component = unsafe { Component::deserialize(engine, &bytes) };
                    component.map_err(|e| root_message(&e))
                });
            match loaded {
                Ok(c) => {
                    self.lock().insert(hash, c.clone());
                    return Ok((c, CacheHit::Disk));
                }
                Err(e) => {
                    tracing::warn!(artifact = %artifact.display(), error = %e, "discarding unreadable precompiled artifact")
                }
            }
        }
        let component =
            Component::new(engine, bytes).map_err(|e| RuntimeError::InvalidComponent {
                path: path.to_owned(),
                reason: format!("not a valid component: {}", root_message(&e)),
            })?;
        // A cache that cannot be written costs time, not correctness.
        if let Some(artifact) = artifact
            && let Err(e) = write_artifact(&component, &artifact)
        {
            tracing::warn!(artifact = %artifact.display(), error = %e, "cannot write precompiled artifact");
        }
        self.lock().insert(hash, component.clone());
        Ok((component, CacheHit::Compiled))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContentHash, Component>> {
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn write_artifact(component: &Component, artifact: &Path) -> Result<(), String> {
    let bytes = component.serialize().map_err(|e| e.to_string())?;
    let tmp = artifact.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, artifact).map_err(|e| e.to_string())
}

/// The innermost message of a wasmtime error chain, which is the one that
/// says what is wrong with the bytes.
pub(crate) fn root_message(e: &wasmtime::Error) -> String {
    let msgs: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    msgs.join(": ")
}
