//! `weft plugin build|test|inspect` and `weft new`: a plugin author's
//! loop, in any language weft builds (`weft-build`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use weft_build::{Lang, Project, Toolchains};

use crate::plugin_cases::Cases;
use crate::progress::Progress;
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
    /// Builds a plugin project (Rust, Python or JavaScript, told by its
    /// Cargo.toml, app.py or app.js) into a component, then loads it to
    /// check that it is a node this host runs.
    Build(BuildArgs),
    /// Builds a plugin project, then runs the cases of its `tests.yaml`
    /// against the component in the sandbox, with a scripted model.
    Test {
        #[command(flatten)]
        build: BuildArgs,
        /// The cases file (default: tests.yaml in the project).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Test this built component instead of building the project
        /// (`--output` and `--tools` are then not used).
        #[arg(long)]
        component: Option<PathBuf>,
    },
}

/// What `weft plugin build` and `weft plugin test` build.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Where to write the component (default: build/<folder name>.wasm in
    /// the project).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Where the Python and JavaScript toolchains are installed on first
    /// use (componentize-py from PyPI, componentize-js from npm).
    #[arg(long, env = "WEFT_TOOLS")]
    tools: Option<PathBuf>,
}

/// Arguments of `weft new`.
#[derive(Args, Debug)]
pub struct NewArgs {
    /// The node's name (lowercase letters, digits, `-`, `_`).
    name: String,
    /// The language: rust, python or js.
    #[arg(long, default_value = "rust")]
    lang: Lang,
    /// The project folder (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The weft SDK a Rust project depends on (default: the `sdk` folder of
    /// the checkout this weft was built from, if it is there).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

/// `weft new`: scaffolds a plugin project.
pub fn new(args: NewArgs) -> Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = args.sdk.or_else(|| {
        let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
        built_from
            .join("Cargo.toml")
            .is_file()
            .then_some(built_from)
    });
    let files = weft_build::scaffold::create(
        &dir,
        &args.name,
        args.lang,
        &weft_build::scaffold::Options { sdk },
    )?;
    println!("created {} ({} plugin):", dir.display(), args.lang);
    for file in files {
        println!("  {}", file.display());
    }
    println!(
        "next: cd {} && weft plugin build && weft plugin test",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Builds the project of `args`; returns the component's path.
fn build(args: &BuildArgs) -> Result<PathBuf> {
    let project = Project::open(&args.dir)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| project.default_output());
    let tools = Toolchains::at(args.tools.clone().unwrap_or_else(Toolchains::default_dir));
    let what = format!("building {} ({})", project.dir.display(), project.lang);
    // cargo draws its own progress; the Python and JavaScript toolchains
    // are silent for seconds, so a spinner shows that the build goes on.
    let built = if project.lang == weft_build::Lang::Rust {
        eprintln!("{what}");
        weft_build::build(&project, &output, &tools, &weft_build::Stderr)
    } else {
        let progress = Progress::spinner(what.clone());
        if !progress.is_drawn() {
            eprintln!("{what}");
        }
        weft_build::build(&project, &output, &tools, &progress)
    }
    .with_context(|| format!("building {}", project.dir.display()))?;
    eprintln!(
        "{} {} ({:.1} MiB{})",
        if built.rebuilt {
            "built"
        } else {
            "up to date:"
        },
        built.path.display(),
        built.size as f64 / (1024.0 * 1024.0),
        if built.rebuilt {
            format!(", {:.1} s", built.took.as_secs_f64())
        } else {
            String::new()
        }
    );
    Ok(built.path)
}

/// Builds the project of `args` (off the executor) and loads the component
/// in a runtime, to check that it is a node this host runs.
async fn build_and_load(
    common: &Common,
    args: BuildArgs,
) -> Result<(std::sync::Arc<weft_runtime::Runtime>, weft_runtime::Plugin)> {
    let path = tokio::task::spawn_blocking(move || build(&args)).await??;
    let runtime = setup::runtime(common, &Default::default())?;
    let plugin = runtime.load_file(&path).await.with_context(|| {
        format!(
            "the build produced {}, but it does not load",
            path.display()
        )
    })?;
    Ok((runtime, plugin))
}

pub async fn run(common: &Common, cmd: PluginCommand) -> Result<ExitCode> {
    let (file, json) = match cmd {
        PluginCommand::Inspect { file, json } => (file, json),
        PluginCommand::Build(args) => {
            let (_, plugin) = build_and_load(common, args).await?;
            let info = plugin.info();
            println!(
                "{}: {} {} (weft:node@{}), loads in this host",
                plugin.path().display(),
                info.name,
                info.version,
                plugin.contract()
            );
            return Ok(ExitCode::SUCCESS);
        }
        PluginCommand::Test {
            build: args,
            cases,
            component,
        } => {
            let cases_path = cases.unwrap_or_else(|| args.dir.join("tests.yaml"));
            let cases = Cases::read(&cases_path)?;
            let (runtime, plugin) = match component {
                Some(file) => {
                    let runtime = setup::runtime(common, &Default::default())?;
                    let plugin = runtime
                        .load_file(&file)
                        .await
                        .with_context(|| format!("loading the component {}", file.display()))?;
                    (runtime, plugin)
                }
                None => build_and_load(common, args).await?,
            };
            let failed = cases.run(&runtime, &plugin).await;
            if failed > 0 {
                println!("{failed} of {} cases failed", cases.count());
                return Ok(ExitCode::FAILURE);
            }
            println!("all {} cases passed", cases.count());
            return Ok(ExitCode::SUCCESS);
        }
    };
    let runtime = setup::runtime(common, &Default::default())?;
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
