//! The plugins an engine can put in graphs: loaded components by name and
//! by file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use weft_runtime::{NodeInfo, Plugin, Runtime, RuntimeError};

use crate::graph::PluginRef;

/// Loaded plugins, found by their `describe` name (`pa`) or by the file they
/// came from. Loading compiles off the executor and goes through the
/// runtime's cache, so a directory of known plugins loads in milliseconds.
#[derive(Default)]
pub struct PluginSet {
    by_name: RwLock<BTreeMap<String, Plugin>>,
    by_path: RwLock<BTreeMap<PathBuf, Plugin>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet")
            .field("names", &self.names())
            .finish()
    }
}

/// One file of a directory that could not be loaded.
#[derive(Debug)]
pub struct SkippedPlugin {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub error: RuntimeError,
}

impl PluginSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads every `*.wasm` file in `dir` (sorted by name), registering each
    /// under its `describe` name. Files that fail to load, or whose name a
    /// plugin from another file has already, are returned, not fatal: one
    /// broken plugin must not keep the others from serving.
    pub async fn load_dir(
        &self,
        runtime: &Runtime,
        dir: &Path,
    ) -> Result<Vec<SkippedPlugin>, RuntimeError> {
        let io = |source| RuntimeError::Io {
            path: dir.to_owned(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        let mut skipped = Vec::new();
        for path in files {
            match runtime.load_file(&path).await {
                Ok(plugin) => {
                    let name = &plugin.info().name;
                    let taken = read(&self.by_name)
                        .get(name)
                        .filter(|p| p.path() != plugin.path())
                        .map(|p| p.path().to_owned());
                    if let Some(holder) = taken {
                        let error = RuntimeError::Config(format!(
                            "plugin name `{name}` is taken by {} (loaded first); swap versions with a reload instead",
                            holder.display()
                        ));
                        tracing::warn!(path = %path.display(), %error, "plugin skipped");
                        skipped.push(SkippedPlugin { path, error });
                        continue;
                    }
                    self.insert(plugin);
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "plugin skipped");
                    skipped.push(SkippedPlugin { path, error });
                }
            }
        }
        Ok(skipped)
    }

    /// Loads one file (if not loaded yet) and registers it.
    pub async fn load_file(&self, runtime: &Runtime, path: &Path) -> Result<Plugin, RuntimeError> {
        if let Some(p) = read(&self.by_path).get(path) {
            return Ok(p.clone());
        }
        let plugin = runtime.load_file(path).await?;
        self.insert(plugin.clone());
        Ok(plugin)
    }

    /// Registers `plugin` under its name and path, replacing an older
    /// version; returns the one it replaced.
    pub fn insert(&self, plugin: Plugin) -> Option<Plugin> {
        write(&self.by_path).insert(plugin.path().to_owned(), plugin.clone());
        write(&self.by_name).insert(plugin.info().name.clone(), plugin)
    }

    /// The plugin a graph's `plugin:` field refers to.
    pub fn get(&self, reference: &PluginRef) -> Option<Plugin> {
        match reference {
            PluginRef::Name(name) => read(&self.by_name).get(name).cloned(),
            PluginRef::File(path) => read(&self.by_path).get(path).cloned(),
        }
    }

    /// What a plugin's `describe` said; the graph loader's resolver.
    pub fn info(&self, reference: &PluginRef) -> Option<NodeInfo> {
        self.get(reference).map(|p| p.info().clone())
    }

    /// Names of the registered plugins, sorted.
    pub fn names(&self) -> Vec<String> {
        read(&self.by_name).keys().cloned().collect()
    }

    /// Every registered plugin, by name.
    pub fn all(&self) -> Vec<Plugin> {
        read(&self.by_name).values().cloned().collect()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
