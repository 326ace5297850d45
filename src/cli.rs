//! Command-line interface: clap types → calls into the library → exit codes. No logic here.
//!
//! Exit codes (SPEC §2): 0 success; 1 some nodes failed; 2 invalid input (manifest, request
//! file, arguments); 3 could not start.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cache::Cache;
use crate::compile::{self, Compiled};
use crate::manifest::diagnostic::{DiagnosticFormat, render_all};
use crate::manifest::{Diagnostic, schema_json};
use crate::onc::{ConnectOptions, find_token};
use crate::report;
use crate::simulator::connect_or_simulate;
#[cfg(feature = "simulator")]
use onc_sim::SimConfig;

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
    /// Run a manifest or request file: order, poll and download what is not cached yet. Run it
    /// again to resume after any failure or interruption.
    Run {
        /// A manifest (.toml) or request file (.json, .csv).
        file: PathBuf,
        /// Print the run record as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Plain log lines instead of progress output.
        #[arg(long)]
        no_progress: bool,
    },
    /// Show what is cached, in flight (with ONC ids) and still to run, without contacting ONC.
    Status {
        /// A manifest (.toml) or request file (.json, .csv).
        file: PathBuf,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    #[cfg(feature = "simulator")]
    /// Start the built-in ONC simulator on 127.0.0.1; prints its base URL on the first line of
    /// stdout and serves until Ctrl-C.
    Simulate {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Audio sample rate of the simulated hydrophones, Hz (ONC's icListen HF: 64000).
        #[arg(long, default_value_t = 64_000)]
        sample_rate: u32,
        /// Real seconds per simulated second: 0.01 makes a 35 s ONC job take 0.35 s.
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Data product runs processed at once per token; more queue.
        #[arg(long, default_value_t = 8)]
        capacity: usize,
        /// Processing seconds per on-demand file (ONC: about 25 s for plotRes/fullRes).
        #[arg(long)]
        per_file_seconds: Option<f64>,
        /// Faults to inject, e.g. `5xx=0.1,reset=0.05,truncate=0.05,failed-run=0.1,429=0.02,slow-ms=50,throttle=1000000,seed=7` (throttle: file bytes per second).
        #[arg(long, default_value = "")]
        faults: String,
    },
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
        Command::Run {
            ref file,
            json,
            no_progress,
        } => run_manifest(&cli, file, json, no_progress),
        Command::Status { ref file, json } => status(&cli, file, json),
        #[cfg(feature = "simulator")]
        Command::Simulate {
            port,
            sample_rate,
            time_scale,
            capacity,
            per_file_seconds,
            ref faults,
        } => {
            let mut config = SimConfig::default();
            let errors = config.apply(&onc_sim::config::SimSettings {
                sample_rate: Some(sample_rate),
                time_scale: Some(time_scale),
                capacity: Some(capacity as u64),
                per_file_seconds,
                faults: Some(faults.clone()),
            });
            if !errors.is_empty() {
                for error in errors {
                    let flag = error.setting().replace('_', "-");
                    match error {
                        onc_sim::config::SettingError::OutOfRange { problem, .. } => {
                            eprintln!("onc-pipe: --{flag} {problem}");
                        }
                        onc_sim::config::SettingError::Faults(message) => {
                            eprintln!("onc-pipe: invalid --{flag}: {message}");
                        }
                    }
                }
                return EXIT_INVALID;
            }
            simulate(config, port)
        }
    }
}

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT, the shell convention).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code: some nodes failed, others completed.
pub const EXIT_FAILED: i32 = 1;

/// Compiles `file` and applies the command line's overrides; prints diagnostics on failure.
fn compile_for_run(cli: &Cli, file: &std::path::Path) -> Result<(Compiled, PathBuf, PathBuf), i32> {
    let mut compiled = match compile::compile(file) {
        Ok(compiled) => compiled,
        Err(diagnostics) => {
            eprint!("{}", render_all(&diagnostics, DiagnosticFormat::Human));
            return Err(EXIT_INVALID);
        }
    };
    if !cli.quiet && !compiled.warnings.is_empty() {
        eprint!(
            "{}",
            render_all(&compiled.warnings, DiagnosticFormat::Human)
        );
    }
    if let Some(base_url) = &cli.base_url {
        compiled.plan.settings.base_url = base_url.clone();
    }
    if compiled.plan.settings.base_url == crate::onc::SIMULATOR {
        scale_pacing_to_simulator(&mut compiled.plan.settings);
    }
    // Paths in a manifest are relative to its folder; paths on the command line to the shell's.
    let base_dir = compiled
        .loaded
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let output_dir = cli
        .output_dir
        .clone()
        .unwrap_or_else(|| base_dir.join(&compiled.plan.settings.output_dir));
    let cache_dir = cli
        .cache_dir
        .clone()
        .unwrap_or_else(|| base_dir.join(&compiled.plan.settings.cache_dir));
    Ok((compiled, output_dir, cache_dir))
}

/// The in-process simulator runs ONC's clock `time_scale` times faster; the client's pacing
/// (stagger, poll interval, max wait) follows, so a manifest written for ONC behaves the same
/// against the simulator, only faster. `max_wait` keeps at least 30 real seconds, so a busy
/// machine does not time a simulated run out.
fn scale_pacing_to_simulator(settings: &mut crate::plan::Settings) {
    let scale = settings.simulator.time_scale;
    let scaled = |ms: i64| (ms as f64 * scale).round() as i64;
    settings.stagger_ms = scaled(settings.stagger_ms);
    settings.poll_interval_ms = scaled(settings.poll_interval_ms).max(10);
    settings.max_wait_ms = scaled(settings.max_wait_ms).max(30_000);
}

fn run_manifest(cli: &Cli, file: &std::path::Path, json: bool, no_progress: bool) -> i32 {
    let (compiled, output_dir, cache_dir) = match compile_for_run(cli, file) {
        Ok(parts) => parts,
        Err(code) => return code,
    };
    let cache = match Cache::open(&cache_dir) {
        Ok(cache) => cache,
        Err(error) => {
            eprintln!("onc-pipe: cannot start: failed to {error}");
            return EXIT_CANNOT_START;
        }
    };
    let lock = match cache.lock() {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!(
                "onc-pipe: cannot start: another onc-pipe run is using this cache ({error}); wait for it to finish"
            );
            return EXIT_CANNOT_START;
        }
    };
    let _ = cache.clear_tmp(&lock);
    let token = match find_token(
        std::env::var("ONC_TOKEN").ok(),
        std::path::Path::new(".env"),
    ) {
        Ok(token) => token,
        Err(error) => {
            eprintln!("onc-pipe: cannot start: failed to {error}");
            return EXIT_CANNOT_START;
        }
    };
    let settings = compiled.plan.settings.clone();
    let options = ConnectOptions {
        base_url: settings.base_url.clone(),
        timeout: std::time::Duration::from_millis(
            u64::try_from(settings.timeout_ms.max(1)).unwrap_or(60_000),
        ),
        max_attempts: settings.max_attempts,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("onc-pipe: cannot start the async runtime: {error}");
            return EXIT_CANNOT_START;
        }
    };
    let started = chrono::Utc::now();
    let bars = !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut reporter =
        report::progress::Reporter::new(bars, cli.quiet, crate::exec::RunStats::default());
    let outcome = runtime.block_on(async {
        let (client, simulator) =
            match connect_or_simulate(&options, token, &settings.simulator).await {
            Ok(connected) => connected,
            Err(error) => {
                eprintln!("onc-pipe: cannot start: failed to {error}");
                return Err(EXIT_CANNOT_START);
            }
        };
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let reporter = tokio::spawn(async move {
            while let Some(event) = received.recv().await {
                reporter.update(&event);
            }
            reporter.finish();
        });
        let (stop, cancel) = tokio::sync::watch::channel(false);
        let interrupts = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("onc-pipe: stopping: no new work; partial downloads are removed, the journal is kept (Ctrl-C again to quit now)");
                let _ = stop.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        });
        let summary = crate::exec::execute(&compiled, client, cache.clone(), &output_dir, &settings.base_url, events, cancel).await;
        interrupts.abort();
        let _ = reporter.await;
        if let Some(simulator) = simulator {
            simulator.stop().await;
        }
        Ok(summary)
    });
    let summary = match outcome {
        Ok(summary) => summary,
        Err(code) => return code,
    };
    let value = serde_json::to_value(&summary).unwrap_or_default();
    let record = cache.write_run_record(&value, started).ok();
    drop(lock);
    if !cli.quiet || !summary.failures.is_empty() {
        eprint!("{}", report::summary_text(&summary, record.as_deref()));
    }
    if json {
        let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
        write_stdout(&text);
    }
    if summary.interrupted {
        EXIT_INTERRUPTED
    } else if summary.failures.is_empty() {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

fn status(cli: &Cli, file: &std::path::Path, json: bool) -> i32 {
    let (compiled, _, cache_dir) = match compile_for_run(cli, file) {
        Ok(parts) => parts,
        Err(code) => return code,
    };
    let server = compiled.plan.settings.base_url.clone();
    let cache = if cache_dir.is_dir() {
        Cache::open(&cache_dir).ok()
    } else {
        None
    };
    let states = crate::exec::node_states(&compiled, cache.as_ref(), &server);
    if json {
        write_stdout(&report::status_json(&compiled, &states))
    } else {
        write_stdout(&report::status_text(&compiled, &states))
    }
}

#[cfg(feature = "simulator")]
fn simulate(config: SimConfig, port: u16) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("onc-pipe: cannot start the async runtime: {error}");
            return EXIT_CANNOT_START;
        }
    };
    runtime.block_on(async {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let handle = match onc_sim::start(config, address).await {
            Ok(handle) => handle,
            Err(error) => {
                eprintln!("onc-pipe: cannot listen on {address}: {error}");
                return EXIT_CANNOT_START;
            }
        };
        // The URL alone on the first line, so scripts can read it.
        if write_stdout(&format!("{}\n", handle.base_url)) != EXIT_OK {
            return EXIT_CANNOT_START;
        }
        eprintln!(
            "onc-pipe: ONC simulator serving at {} (stats at {}_sim/stats); Ctrl-C stops it",
            handle.base_url, handle.base_url
        );
        let _ = tokio::signal::ctrl_c().await;
        handle.stop().await;
        EXIT_OK
    })
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
    let (mut compiled, output_dir, cache_dir) = match compile_for_run(cli, file) {
        Ok(parts) => parts,
        Err(code) => return code,
    };
    compiled.plan.settings.output_dir = output_dir;
    compiled.plan.settings.cache_dir = cache_dir.clone();
    // Read-only: `plan` never creates the cache or takes its lock.
    let cache = cache_dir
        .is_dir()
        .then(|| Cache::open(&cache_dir).ok())
        .flatten();
    let server = compiled.plan.settings.base_url.clone();
    let states = crate::exec::node_states(&compiled, cache.as_ref(), &server);
    let text = match format {
        PlanFormat::Text => report::plan_text(&compiled, &states),
        PlanFormat::Json => report::plan_json(&compiled, &states),
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
