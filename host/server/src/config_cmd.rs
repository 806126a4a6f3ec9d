//! `weft config …`: the config file's schema, and checking a file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::config::Config;

/// Config file commands.
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Prints the JSON Schema of config files
    /// (`schemas/config.schema.json`), for editors and CI checks; with
    /// `--markdown`, the reference of docs/config-file.md.
    Schema {
        /// Print the markdown reference instead of the schema.
        #[arg(long)]
        markdown: bool,
    },
    /// Checks a config file the way `weft serve` reads it (every key, the
    /// providers and routes, prices, durations) without starting anything;
    /// exits 1 with the problem and its location if it does not load.
    Validate {
        /// The config file.
        file: PathBuf,
    },
}

/// The JSON Schema (draft 2020-12) of the config file, generated from the
/// types [`Config::parse`] reads it into.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(Config).to_value()
}

pub fn run(cmd: ConfigCommand) -> Result<ExitCode> {
    match cmd {
        ConfigCommand::Schema { markdown } => {
            let schema = json_schema();
            if markdown {
                print!("{}", crate::schema_doc::markdown(&schema));
            } else {
                println!("{}", serde_json::to_string_pretty(&schema)?);
            }
        }
        ConfigCommand::Validate { file } => {
            let config = Config::read(&file)?;
            // Routes and providers are checked as `weft serve` checks them,
            // without loading a model or reaching a provider.
            config.check_routes()?;
            config
                .webhooks
                .settings()
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            println!("{}: the config is valid", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
