//! Swapping a plugin while serving: the catalog loads the component
//! (validating and compiling it), checks its name, hands it to
//! [`Engine::swap_plugin`](crate::Engine::swap_plugin) with every served
//! graph, and serves the graphs' new versions.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use super::{Catalog, CatalogError};
use crate::{PluginRef, PluginSwap};

/// What a plugin swap did.
#[derive(Debug, Clone)]
pub struct SwapReport {
    /// The engine's account of the swap (versions, the graphs that got new
    /// versions, whether anything changed).
    pub swap: PluginSwap,
    /// Time to validate, compile (or find in the cache) and describe the
    /// component, in milliseconds.
    pub load_ms: u64,
}

impl Catalog {
    /// The file the plugin called `name` was loaded from.
    pub fn plugin_file(&self, name: &str) -> Result<PathBuf, CatalogError> {
        self.engine
            .plugins()
            .get(&PluginRef::Name(name.to_owned()))
            .map(|p| p.path().to_owned())
            .ok_or_else(|| CatalogError::UnknownPlugin(name.to_owned()))
    }

    /// Loads the component at `path` (validating and compiling it) and
    /// swaps it in for the plugin of the same name; the served graphs that
    /// run it get new versions. `expected` is the name the component must
    /// describe itself with. A component that does not load or fit leaves
    /// the old version serving.
    pub async fn swap_plugin_file(
        &self,
        path: &Path,
        expected: Option<&str>,
    ) -> Result<SwapReport, CatalogError> {
        let bytes =
            tokio::fs::read(path)
                .await
                .map_err(|source| CatalogError::PluginUnreadable {
                    path: path.to_owned(),
                    source,
                })?;
        self.swap_plugin_bytes(path.to_owned(), bytes, expected)
            .await
    }

    /// Swaps in a new version of the plugin called `name` from uploaded
    /// component bytes, checked like [`swap_plugin_file`](Self::swap_plugin_file).
    /// The bytes are written to a file of their own beside the plugin's
    /// and handed to [`upload_plugin_file`](Self::upload_plugin_file).
    pub async fn upload_plugin(
        &self,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<SwapReport, CatalogError> {
        static STAGED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let path = self.plugin_file(name)?;
        let n = STAGED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staged = path.with_extension(format!("wasm.upload-{}-{n}", std::process::id()));
        tokio::fs::write(&staged, &bytes).await.map_err(|source| {
            CatalogError::PluginUnwritable {
                path: staged.clone(),
                source,
            }
        })?;
        let result = self.upload_plugin_file(name, &staged).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&staged).await;
        }
        result
    }

    /// Swaps in the component at `staged` (an upload written beside the
    /// plugin's file) for the plugin called `name`, checked like
    /// [`swap_plugin_file`](Self::swap_plugin_file); once it serves,
    /// `staged` is renamed over the plugin's file, so a restart keeps it.
    /// Uploads are applied one at a time, each swap with its rename, so the
    /// file on disk is always the version that serves. A refused component
    /// leaves the file as it was; a rename that fails puts the previous
    /// version (still in the file) back and is an error
    /// (`plugin_unwritable`), never a success.
    pub async fn upload_plugin_file(
        &self,
        name: &str,
        staged: &Path,
    ) -> Result<SwapReport, CatalogError> {
        static UPLOADS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _one_at_a_time = UPLOADS.lock().await;
        let path = self.plugin_file(name)?;
        let bytes =
            tokio::fs::read(staged)
                .await
                .map_err(|source| CatalogError::PluginUnreadable {
                    path: staged.to_owned(),
                    source,
                })?;
        let report = self
            .swap_plugin_bytes(path.clone(), bytes, Some(name))
            .await?;
        if let Err(source) = tokio::fs::rename(staged, &path).await {
            if !report.swap.unchanged
                && let Err(e) = self.swap_plugin_file(&path, Some(name)).await
            {
                tracing::error!(plugin = %name, file = %path.display(), error = %e, "the uploaded plugin's file was not written and the previous version could not be put back: the upload serves until the next start");
            }
            return Err(CatalogError::PluginUnwritable { path, source });
        }
        Ok(report)
    }

    async fn swap_plugin_bytes(
        &self,
        path: PathBuf,
        bytes: Vec<u8>,
        expected: Option<&str>,
    ) -> Result<SwapReport, CatalogError> {
        let started = Instant::now();
        let plugin = self
            .engine
            .runtime()
            .load_bytes(path, bytes.clone())
            .await
            .map_err(CatalogError::PluginInvalid)?;
        let load_ms = started.elapsed().as_millis() as u64;
        if let Some(expected) = expected
            && plugin.info().name != expected
        {
            return Err(CatalogError::PluginMismatch {
                expected: expected.to_owned(),
                found: plugin.info().name.clone(),
            });
        }
        let swap = self.engine.swap_plugin(plugin, bytes, &self.all()).await?;
        for (old, new) in &swap.graphs {
            self.replace(old, Arc::clone(new));
            self.keep_version(new).await;
        }
        Ok(SwapReport { swap, load_ms })
    }
}
