//! Config reload while serving (`POST /api/v1/organism/config/reload`,
//! `--watch`, SIGHUP): providers, model routes, prices and budgets are
//! applied at once; `store` and `api` changes are reported as needing a
//! restart.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use weft_api::{ConfigReload, ConfigReloader};
use weft_engine::Engine;
use weft_runtime::capabilities::BoxFuture;

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
        let (llm, budget, prices, store, api) = {
            let old = self.current.lock().unwrap_or_else(|e| e.into_inner());
            let same = |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
                format!("{a:?}") == format!("{b:?}")
            };
            (
                !same(&old.llm, &new.llm),
                !same(&old.budget, &new.budget),
                !same(&old.prices, &new.prices),
                !same(&old.store, &new.store),
                !same(&old.api, &new.api),
            )
        };
        let mut report = ConfigReload {
            file: self.path.display().to_string(),
            ..ConfigReload::default()
        };
        // A new backend may load a model (seconds): off the executor. A
        // provider that fails to build fails the reload; nothing changes.
        let (new, backend) = if llm && !self.scripted {
            let common = self.common.clone();
            tokio::task::spawn_blocking(move || {
                let backend = match new.llm_backend() {
                    Ok(Some(b)) => Ok(b),
                    Ok(None) => crate::setup::local_default(&common),
                    Err(e) => Err(e),
                };
                (new, backend)
            })
            .await?
        } else {
            (new, Err(anyhow::anyhow!("unchanged")))
        };
        let backend = match (llm, self.scripted, backend) {
            (true, false, Ok(b)) => Some(b),
            (true, false, Err(e)) => return Err(e.context("the llm section")),
            (true, true, _) => {
                report.notes.push(
                    "llm: --script answers llm calls; the configured providers are not used".into(),
                );
                None
            }
            _ => None,
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
            ("store", store, false),
            ("api", api, false),
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
