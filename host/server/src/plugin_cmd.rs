//! `weft plugin inspect FILE`: what a component is and whether this host
//! loads it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use crate::{Common, setup};

/// `weft plugin …`.
#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Prints a component's world (imports, exports), contract version,
    /// size, hash, compile time and `describe` output; for a file that is
    /// not a weft node, what it is instead.
    Inspect {
        /// The component file (`.wasm`).
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(common: &Common, cmd: PluginCommand) -> Result<ExitCode> {
    let PluginCommand::Inspect { file, json } = cmd;
    let runtime = setup::runtime(common)?;
    let report = runtime.inspect(&file).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let kib = report.size as f64 / 1024.0;
        println!("file        {}", report.path.display());
        println!("size        {kib:.1} KiB   sha256 {}", report.hash);
        let supported = report
            .supported
            .iter()
            .map(|v| format!("weft:node@{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        match &report.contract {
            Some(v) => println!("contract    weft:node@{v}   (this host loads {supported})"),
            None => println!("contract    none: not a weft node   (this host loads {supported})"),
        }
        println!("exports     {}", report.exports.join(", "));
        let (wasi, other): (Vec<&String>, Vec<&String>) =
            report.imports.iter().partition(|i| i.starts_with("wasi:"));
        let mut imports: Vec<String> = other.into_iter().cloned().collect();
        if !wasi.is_empty() {
            imports.push(format!(
                "{} wasi interfaces (--json lists them)",
                wasi.len()
            ));
        }
        println!("imports     {}", imports.join(", "));
        if !report.capability_imports.is_empty() {
            println!("can call    {}", report.capability_imports.join(", "));
        }
        if report.cache_hit {
            println!("compile     cached");
        } else {
            println!("compile     {} ms", report.compile_ms);
        }
        if let Some(info) = &report.describe {
            println!(
                "describe    {} {} — {}",
                info.name, info.version, info.description
            );
            let caps: Vec<String> = info.capabilities.iter().map(|c| c.to_string()).collect();
            println!(
                "asks for    {}",
                if caps.is_empty() {
                    "nothing".into()
                } else {
                    caps.join(", ")
                }
            );
            println!("input       {}", shorten(&info.input_schema.to_string()));
            println!("output      {}", shorten(&info.output_schema.to_string()));
        }
    }
    Ok(match report.problem {
        None => ExitCode::SUCCESS,
        Some(problem) => {
            eprintln!("error: this host does not load it: {problem}");
            ExitCode::FAILURE
        }
    })
}

/// A schema on one line: the first 100 characters (`--json` has it whole).
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
