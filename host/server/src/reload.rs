//! Config reload while serving (`POST /api/v1/organism/config/reload`,
//! `--watch`, SIGHUP): providers, model routes, prices and budgets are
//! applied at once; `store` and `api` changes are reported as needing a
//! restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use weft_api::{BoxFuture, ConfigReload, ConfigReloader};
use weft_engine::Engine;

use crate::Common;
use crate::config::Config;

/// Reloads the file at `path` into `engine`.
pub struct Reloader {
    path: PathBuf,
    engine: Arc<Engine>,
    common: Common,
    /// `--script` answers `llm` calls: configured providers are not used.
    scripted: bool,
    current: Mutex<Config>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `path`, whose contents `current` the host runs now.
    pub fn new(
        path: PathBuf,
        engine: Arc<Engine>,
        common: Common,
        scripted: bool,
        current: Config,
    ) -> Self {
        Self {
            path,
            engine,
            common,
            scripted,
            current: Mutex::new(current),
        }
    }

    async fn apply(&self) -> anyhow::Result<ConfigReload> {
        let new = Config::load(&self.path)?;
        let old = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (llm, budget, prices) = (
            old.llm != new.llm,
            old.budget != new.budget,
            old.prices != new.prices,
        );
        let mut report = ConfigReload {
            file: self.path.display().to_string(),
            ..ConfigReload::default()
        };
        // A new backend may load a model (seconds): off the executor. A
        // provider that fails to build fails the reload; nothing changes.
        let backend = if llm && self.scripted {
            report.notes.push(
                "llm: --script answers llm calls; the configured providers are not used".into(),
            );
            None
        } else if llm {
            let (common, config) = (self.common.clone(), new.clone());
            let backend =
                tokio::task::spawn_blocking(move || crate::setup::llm(&common, None, &config))
                    .await?;
            Some(backend.context("the llm section")?)
        } else {
            None
        };
        self.engine.reload_settings(
            backend,
            prices.then(|| new.prices()),
            budget.then(|| new.budget.clone()),
        );
        for (name, changed, live) in [
            ("llm", llm, true),
            ("budget", budget, true),
            ("prices", prices, true),
            ("store", old.store != new.store, false),
            ("api", old.api != new.api, false),
            ("runtime", old.runtime != new.runtime, false),
            ("bus", old.bus != new.bus, false),
            ("tools", old.tools != new.tools, false),
        ] {
            match (changed, live) {
                (false, _) => report.unchanged.push(name.into()),
                (true, true) => report.changed.push(name.into()),
                (true, false) => report.restart_needed.push(name.into()),
            }
        }
        report.public = new.public();
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(report)
    }
}

impl ConfigReloader for Reloader {
    fn reload(&self) -> BoxFuture<'_, Result<ConfigReload, String>> {
        Box::pin(async move { self.apply().await.map_err(|e| format!("{e:#}")) })
    }
}
