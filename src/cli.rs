//! Command-line interface: clap types → calls into the library → exit codes. No logic here.
//!
//! Exit codes (SPEC §2): 0 success; 1 some nodes failed; 2 invalid input (manifest, request
//! file, arguments); 3 could not start.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::compile::{self, Compiled};
use crate::manifest::diagnostic::{DiagnosticFormat, render_all};
use crate::manifest::{Diagnostic, schema_json};
use crate::report;

/// Exit code: everything worked.
pub const EXIT_OK: i32 = 0;
/// Exit code: invalid input (manifest, request file, arguments).
pub const EXIT_INVALID: i32 = 2;
/// Exit code: could not start (unwritable output, ...).
pub const EXIT_CANNOT_START: i32 = 3;

/// Declarative, resumable pipelines for Ocean Networks Canada hydrophone data.
#[derive(Debug, Parser)]
#[command(name = "onc-pipe", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// ONC base URL, or `simulator` for the built-in simulator (overrides the manifest).
    #[arg(long, global = true, env = "ONC_BASE_URL")]
    pub base_url: Option<String>,
    /// Output tree (overrides `output.dir`).
    #[arg(long, global = true)]
    pub output_dir: Option<PathBuf>,
    /// Cache folder (overrides `output.cache`).
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Print no warnings, only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests and request files offline: syntax, schema, times, references, options.
    Validate {
        /// Manifests (.toml) and request files (.json, .csv).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: DiagnosticFormat,
    },
    /// Show the DAG a manifest compiles to: windows, ONC requests (exact query parameters),
    /// files and clips, with each node's state. Orders nothing.
    Plan {
        /// A manifest (.toml) or request file (.json, .csv).
        file: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
    },
    /// Print the manifest's JSON Schema (the same as schemas/manifest.schema.json).
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Dot,
}

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Validate { ref files, format } => validate(files, format, cli.quiet),
        Command::Plan { ref file, format } => plan(&cli, file, format),
        Command::Schema => write_stdout(&schema_json()),
    }
}

fn validate(files: &[PathBuf], format: DiagnosticFormat, quiet: bool) -> i32 {
    let mut all = Vec::new();
    let mut invalid = 0;
    for file in files {
        let diagnostics = match compile::compile(file) {
            Ok(compiled) => compiled.warnings,
            Err(diagnostics) => diagnostics,
        };
        if diagnostics.iter().any(Diagnostic::is_error) {
            invalid += 1;
        }
        all.extend(diagnostics.into_iter().filter(|d| !quiet || d.is_error()));
    }
    let errors = all.iter().filter(|d| d.is_error()).count();
    let warnings = all.len() - errors;
    match format {
        DiagnosticFormat::Human => {
            if !all.is_empty() {
                eprint!("{}", render_all(&all, format));
                eprintln!();
            }
            let summary = format!(
                "{} valid, {invalid} invalid ({errors} errors, {warnings} warnings)\n",
                plural(files.len() - invalid, "file"),
            );
            write_stdout(&summary);
        }
        DiagnosticFormat::Json | DiagnosticFormat::Github => {
            write_stdout(&render_all(&all, format));
        }
    }
    if invalid > 0 { EXIT_INVALID } else { EXIT_OK }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn plan(cli: &Cli, file: &std::path::Path, format: PlanFormat) -> i32 {
    let mut compiled: Compiled = match compile::compile(file) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            eprint!("{}", render_all(&diagnostics, DiagnosticFormat::Human));
            return EXIT_INVALID;
        }
    };
    if let Some(base_url) = &cli.base_url {
        compiled.plan.settings.base_url = base_url.clone();
    }
    if let Some(dir) = &cli.output_dir {
        compiled.plan.settings.output_dir = dir.clone();
    }
    if let Some(dir) = &cli.cache_dir {
        compiled.plan.settings.cache_dir = dir.clone();
    }
    if !cli.quiet && !compiled.warnings.is_empty() {
        eprint!(
            "{}",
            render_all(&compiled.warnings, DiagnosticFormat::Human)
        );
    }
    let text = match format {
        PlanFormat::Text => report::plan_text(&compiled),
        PlanFormat::Json => report::plan_json(&compiled),
        PlanFormat::Dot => compiled.dag.to_dot(),
    };
    write_stdout(&text)
}

/// Writes to stdout; a closed pipe (`onc-pipe plan x | head`) is not an error worth a panic.
fn write_stdout(text: &str) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => EXIT_OK,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(error) => {
            eprintln!("onc-pipe: cannot write output: {error}");
            EXIT_CANNOT_START
        }
    }
}
