//! The PA's graph `config`.

use std::collections::BTreeMap;

use serde::Deserialize;
use weft_sdk::{Ctx, NodeError};

use crate::route::NONE;

/// The node's graph `config`; every key is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The experts the PA may route to: peer name → what it knows, in one
    /// line (shown to the model). Empty means the PA always answers itself.
    pub experts: BTreeMap<String, String>,
    /// The peer that writes the reply (`respond`).
    pub output: String,
    /// The peer that shows UI state (`ui`).
    pub ui: String,
    /// How many earlier routing decisions the PA remembers and shows the
    /// model; 0 keeps none.
    pub history: usize,
    /// Who decides the route: the model (`model`, for capable models) or
    /// the experts' `vocabulary` (`grounded`, for small models; the model
    /// only breaks ties between experts).
    pub routing: RoutingMode,
    /// Words that put a message in an expert's domain (grounded routing):
    /// expert → nouns, singular (`customer`, `meter`); plurals match too.
    pub vocabulary: BTreeMap<String, Vec<String>>,
}

/// See [`Config::routing`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoutingMode {
    /// The model picks the expert and writes the job.
    #[default]
    Model,
    /// The vocabulary picks the expert; the job is the user's message.
    Grounded,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            experts: BTreeMap::new(),
            output: "output".to_owned(),
            ui: "ui".to_owned(),
            history: 6,
            routing: RoutingMode::Model,
            vocabulary: BTreeMap::new(),
        }
    }
}

impl Config {
    /// The node's config, checked: expert names must be non-empty and
    /// cannot be [`NONE`], which means "no expert".
    pub fn load(ctx: &Ctx<'_>) -> Result<Self, NodeError> {
        let config: Self = ctx.config()?;
        for name in config.experts.keys() {
            if name.trim().is_empty() || name == NONE {
                return Err(NodeError::InvalidInput(format!(
                    "node `{}` has a bad config: {name:?} cannot name an expert",
                    ctx.node()
                )));
            }
        }
        if let Some(name) = config.vocabulary.keys().find(|n| !config.is_expert(n)) {
            return Err(NodeError::InvalidInput(format!(
                "node `{}` has a bad config: `vocabulary` names {name:?}, which is not an expert",
                ctx.node()
            )));
        }
        Ok(config)
    }

    /// True when `name` is a configured expert.
    pub fn is_expert(&self, name: &str) -> bool {
        self.experts.contains_key(name)
    }
}
