//! `weft serve --watch`: swaps plugins whose component files change and
//! reloads graphs whose files change, while serving.
//!
//! File events (inotify through `notify`) are collected until the folder
//! has been quiet for a moment, so a file copied in several writes is read
//! once, whole. A component that fails to load or fit its graphs is
//! logged and leaves the old version serving; the next change tries again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use weft_api::Api;
use weft_engine::Catalog;

/// How long a folder must be quiet before its changes are applied.
const QUIET: Duration = Duration::from_millis(300);

/// Watches the folder `plugins` (component files), the folders
/// `graph_dirs` (graph files) and the config file, until the returned
/// watcher is dropped. Plugin and graph changes go to `catalog`; config
/// changes to `api`, which shows operators the config.
pub fn start(
    api: Arc<Api>,
    catalog: Arc<Catalog>,
    plugins: &Path,
    graph_dirs: &[PathBuf],
    config: Option<&Path>,
) -> Result<notify::RecommendedWatcher> {
    let (tx, rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if matches!(event.kind, EventKind::Create(_) | EventKind::Modify(_)) => {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "file watch error"),
        })
        .context("starting the file watcher")?;
    let config = match config {
        Some(file) => Some(
            file.canonicalize()
                .with_context(|| format!("watching {}", file.display()))?,
        ),
        None => None,
    };
    let watched = Watched {
        plugins: plugins
            .canonicalize()
            .unwrap_or_else(|_| plugins.to_owned()),
        graphs: graph_dirs
            .iter()
            .filter_map(|d| d.canonicalize().ok())
            .collect(),
        config,
    };
    // Watched by their canonical paths, so that events name files the way
    // `classify` compares them.
    watcher
        .watch(&watched.plugins, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", plugins.display()))?;
    let mut dirs = watched.graphs.clone();
    if let Some(dir) = watched.config.as_ref().and_then(|c| c.parent()) {
        dirs.insert(dir.to_owned());
    }
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", dir.display()))?;
    }
    tracing::info!(plugins = %plugins.display(), folders = ?dirs, config = ?watched.config, "watching for changed plugins, graphs and config");
    tokio::spawn(apply(api, catalog, rx, watched));
    Ok(watcher)
}

/// What is watched, as canonical paths.
struct Watched {
    /// The plugin folder (`*.wasm`).
    plugins: PathBuf,
    /// Graph folders (`*.yaml`, `*.yml`).
    graphs: BTreeSet<PathBuf>,
    /// The config file.
    config: Option<PathBuf>,
}

/// What a changed file is.
enum Change {
    Config,
    Plugin,
    Graph,
    Other,
}

impl Watched {
    fn classify(&self, path: &Path) -> Change {
        let parent = path.parent().unwrap_or(path);
        let ext = path.extension().and_then(|e| e.to_str());
        if self.config.as_deref() == Some(path) {
            Change::Config
        } else if ext == Some("wasm") && parent == self.plugins {
            Change::Plugin
        } else if matches!(ext, Some("yaml" | "yml")) && self.graphs.contains(parent) {
            Change::Graph
        } else {
            Change::Other
        }
    }
}

/// Applies batches of changed files, each once the folder is quiet.
async fn apply(
    api: Arc<Api>,
    catalog: Arc<Catalog>,
    mut rx: mpsc::UnboundedReceiver<PathBuf>,
    watched: Watched,
) {
    while let Some(first) = rx.recv().await {
        let mut changed = BTreeSet::from([first]);
        loop {
            match tokio::time::timeout(QUIET, rx.recv()).await {
                Ok(Some(path)) => {
                    changed.insert(path);
                }
                Ok(None) => return,
                Err(_) => break,
            }
        }
        // Success is logged where the change is applied.
        let mut graphs_changed = Vec::new();
        for path in changed {
            match watched.classify(&path) {
                Change::Config => {
                    if let Err(e) = api.reload_config().await {
                        tracing::error!(code = %e.code, message = %e.message, "config file changed but was not reloaded; the old config stays");
                    }
                }
                Change::Plugin => swap(&catalog, &path).await,
                Change::Graph => graphs_changed.push(path),
                Change::Other => {}
            }
        }
        if !graphs_changed.is_empty() {
            // The catalog logs each graph reloaded, added or refused.
            catalog.reload_files(&graphs_changed).await;
        }
    }
}

async fn swap(catalog: &Catalog, path: &Path) {
    let Ok(path) = path.canonicalize() else {
        return; // removed again
    };
    // A file that held a plugin must keep holding that plugin; a new file
    // adds a plugin.
    let expected = catalog
        .engine()
        .plugins()
        .all()
        .into_iter()
        .find(|p| p.path().canonicalize().is_ok_and(|p| p == path))
        .map(|p| p.info().name.clone());
    match catalog.swap_plugin_file(&path, expected.as_deref()).await {
        Ok(report) if report.swap.unchanged => {}
        Ok(report) => tracing::info!(
            plugin = %report.swap.plugin,
            version = %report.swap.version,
            to = %report.swap.to,
            graphs = ?report.swap.graph_names(),
            load_ms = report.load_ms,
            "plugin file changed: swapped in"
        ),
        Err(error) => tracing::error!(
            file = %path.display(),
            code = error.code(),
            message = %error,
            "plugin file changed but the new component was refused; the old version keeps serving"
        ),
    }
}
