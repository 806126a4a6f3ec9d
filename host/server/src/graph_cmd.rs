//! `weft graph …`: graph files.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use weft_engine::{LoadError, LoadedGraph, Severity};

use crate::{Common, setup};

/// Graph file commands.
#[derive(Subcommand, Debug)]
pub enum GraphCommand {
    /// Checks a graph file against the available plugins and prints every
    /// problem with its location; exits non-zero if there are errors.
    Validate {
        /// The graph file.
        file: PathBuf,
    },
    /// Prints the JSON Schema of graph files (`schemas/graph.schema.json`),
    /// for editors and CI checks; with `--markdown`, the reference of
    /// docs/graph-file.md.
    Schema {
        /// Print the markdown reference instead of the schema.
        #[arg(long)]
        markdown: bool,
    },
}

pub async fn run(common: &Common, cmd: GraphCommand) -> Result<ExitCode> {
    let file = match cmd {
        GraphCommand::Validate { file } => file,
        GraphCommand::Schema { markdown } => {
            let schema = weft_engine::graph::json_schema();
            if markdown {
                print!("{}", crate::schema_doc::markdown(&schema));
            } else {
                println!("{}", serde_json::to_string_pretty(&schema)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let runtime = setup::runtime(common, &setup::config(common)?.runtime)?;
    let plugins = setup::plugins(common, &runtime).await?;
    match LoadedGraph::load_file(&file, &plugins, &runtime).await {
        Ok(loaded) => {
            let graph = loaded.graph();
            for w in graph.warnings() {
                println!("{w}");
            }
            let edges: usize = graph.nodes().iter().map(|n| n.peers.len()).sum();
            println!(
                "{}: graph `{}` is valid: {} nodes, {} edges, entry `{}`, {} warning(s)",
                file.display(),
                graph.name(),
                graph.nodes().len(),
                edges,
                graph.entry().name,
                graph.warnings().len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Graph(e)) => {
            let problems = e.problems();
            if problems.is_empty() {
                println!("{e}");
            }
            for p in problems {
                println!("{p}");
            }
            let errors = problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            println!(
                "{}: {} error(s), {} warning(s)",
                file.display(),
                errors.max(1),
                problems.len() - errors
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            println!("{}: {e}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}
