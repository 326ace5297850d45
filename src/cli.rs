//! Command-line interface: clap types → calls into the library → what it renders, and an exit
//! code. The work is the library's ([`crate::run`], [`crate::exec`], [`crate::report`]); the
//! codes are [`crate::error`]'s (SPEC §2): 0 success; 1 some nodes failed; 2 invalid input
//! (manifest, request file, arguments); 3 could not start; 130, 143, 129 interrupted by SIGINT (Ctrl-C), SIGTERM, SIGHUP.

use std::io::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cache::Cache;
use crate::error::{EXIT_INVALID, EXIT_OK, Error};
use crate::manifest::diagnostic::{DiagnosticFormat, render_all};
use crate::manifest::{Diagnostic, schema_json};
use crate::report;
use crate::run::{Overrides, Prepared, RunOptions};
pub use housekeeping::CacheCommand;
use housekeeping::{cache_command, gc};
#[cfg(feature = "simulator")]
use onc_sim::SimConfig;

mod housekeeping;

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
    /// Cache: a folder, or a team store `s3://BUCKET/PREFIX` or `file:///FOLDER` (overrides
    /// `output.cache`).
    #[arg(long, global = true, env = "ONC_PIPE_CACHE")]
    pub cache_dir: Option<PathBuf>,
    /// With a team store: the local folder in front of it (default
    /// `.onc-pipe-remote/<store>` beside the manifest; on a cluster, a node-local disk).
    #[arg(long, global = true, env = "ONC_PIPE_LOCAL_CACHE")]
    pub local_cache: Option<PathBuf>,
    /// Print no warnings, only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More on stderr, each line with its UTC time: `-v` every request to ONC (its
    /// parameters without the token, the status, the time it took), `-vv` every request to a
    /// team store too.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Colour `error` and `warning` on stderr: `auto` on a terminal unless NO_COLOR is set.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: crate::style::ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests and request files offline: syntax, schema, times, references, options.
    Validate {
        /// Manifests (.toml) and request files (.json, .csv, .tsv, Raven .txt).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: DiagnosticFormat,
    },
    /// Show the DAG a manifest compiles to: windows, ONC requests (exact query parameters),
    /// files and clips, with each node's state. Orders nothing; checks every window against
    /// ONC's deployments (read-only, cached for a week).
    Plan {
        /// A manifest (.toml) or request file (.json, .csv, .tsv, Raven .txt).
        file: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: PlanFormat,
        /// JSON on stdout (the same as `--format json`; every command spells it `--json`).
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Send no request: ONC's deployments from the cache only, whatever their age.
        #[arg(long)]
        offline: bool,
        /// Show how `run --shard k/N` would split the work into N shards, and the share of the
        /// limits each would get.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        shards: Option<u32>,
    },
    /// Print the manifest's JSON Schema (the same as schemas/manifest.schema.json).
    Schema,
    /// Run a manifest or request file: order, poll and download what is not cached yet. Run it
    /// again to resume after any failure or interruption.
    Run {
        /// A manifest (.toml) or request file (.json, .csv, .tsv, Raven .txt).
        file: PathBuf,
        /// Print the run record as JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Plain log lines instead of progress output.
        #[arg(long)]
        no_progress: bool,
        /// Run even when the estimated downloads do not fit the cache's free space.
        #[arg(long)]
        force: bool,
        /// Run shard k of N (`k/N`, numbered from 1) of the work: what shares source files
        /// stays together, every shard gets 1/N of `max_runs` and `download_workers` and N
        /// times the `stagger`. `auto`: from a Slurm job array (SLURM_ARRAY_TASK_*) or a
        /// Kubernetes Indexed Job (JOB_COMPLETION_INDEX with ONC_PIPE_SHARDS).
        #[arg(long, value_name = "K/N|auto")]
        shard: Option<crate::shard::ShardArg>,
        /// Fetch only: order and download, cut no clips (a cluster's first phase).
        #[arg(long, conflicts_with = "offline")]
        fetch_only: bool,
        /// Cut clips from the cache only: no request to ONC, no token. Fails before anything
        /// when a source is not cached (run `--fetch-only` first).
        #[arg(long)]
        offline: bool,
    },
    /// Show what is cached, in flight (with ONC ids) and still to run, the clips (cut, to cut,
    /// failed, skipped at gaps) and the outputs the manifest no longer produces, without
    /// contacting ONC.
    Status {
        /// A manifest (.toml) or request file (.json, .csv, .tsv, Raven .txt).
        file: PathBuf,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the outputs the manifest no longer produces (a renamed event's clips, a removed
    /// stage's files) in onc-pipe's folders of the output tree; `--apply` removes them. The
    /// cache is not touched.
    Clean {
        /// A manifest (.toml) or request file (.json, .csv, .tsv, Raven .txt).
        file: PathBuf,
        /// Remove them (without it, only list them).
        #[arg(long)]
        apply: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Cancel at ONC the manifest's runs still in flight (those a stopped `run` journaled) and
    /// clear them from the journal; the next `run` submits afresh. Stop a running `run` first.
    Cancel {
        /// A manifest (.toml) or request file (.json, .csv, .tsv, Raven .txt).
        file: PathBuf,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `onc-pipe completions bash > ~/.local/share/bash-completion/completions/onc-pipe`
    /// (zsh: into a folder on `$fpath` as `_onc-pipe`; fish: `~/.config/fish/completions/onc-pipe.fish`).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Free the cache of what the manifests given no longer reference (a removed stage's
    /// files and clips, an old manifest's data): lists what it would remove; `--apply`
    /// removes it. Not while a run holds the cache (exit 3). A later `run` of any manifest
    /// fetches again what it needs.
    Gc {
        /// The manifests (.toml) or request files whose data to keep; with none, only
        /// `--older-than` decides.
        files: Vec<PathBuf>,
        /// Remove only what was stored before this: a date (2026-11-01), an RFC 3339 time, or
        /// an age (30d, 12h). What the manifests reference is kept whatever its age.
        #[arg(long, value_name = "DATE", value_parser = crate::housekeeping::parse_older_than)]
        older_than: Option<std::time::SystemTime>,
        /// Remove them (without it, only list them).
        #[arg(long)]
        apply: bool,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Where the cache is and what it holds.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Check that a team store can hold a shared cache: reach and credentials,
    /// create-if-absent, list-after-write, compare-and-swap; says which mode it can use.
    /// Exit 0 when it can, 3 when not.
    Doctor {
        /// The store: `s3://BUCKET/PREFIX` (credentials from the AWS variables and profile
        /// files) or `file:///FOLDER`.
        #[arg(long)]
        cache: String,
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
    crate::trace::set_level(cli.verbose);
    crate::style::set(cli.color);
    if let Err(code) = housekeeping::load_user_config(&cli) {
        return code;
    }
    match cli.command {
        Command::Validate { ref files, format } => validate(files, format, cli.quiet),
        Command::Plan {
            ref file,
            format,
            json,
            offline,
            shards,
        } => {
            let format = if json { PlanFormat::Json } else { format };
            plan(&cli, file, format, offline, shards)
        }
        Command::Schema => write_stdout(&schema_json()),
        Command::Run {
            ref file,
            json,
            no_progress,
            force,
            shard,
            fetch_only,
            offline,
        } => {
            let phase = match (fetch_only, offline) {
                (true, _) => crate::shard::Phase::Fetch,
                (_, true) => crate::shard::Phase::Offline,
                _ => crate::shard::Phase::All,
            };
            match shard.map(crate::shard::ShardArg::resolve).transpose() {
                Ok(shard) => {
                    let sharding = crate::shard::Sharding { shard, phase };
                    run_manifest(&cli, file, json, no_progress, force, sharding)
                }
                Err(error) => report_error(&Error::InvalidShard(error)),
            }
        }
        Command::Status { ref file, json } => status(&cli, file, json),
        Command::Clean {
            ref file,
            apply,
            json,
        } => clean(&cli, file, apply, json),
        Command::Cancel { ref file, json } => cancel(&cli, file, json),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "onc-pipe", &mut script);
            write_stdout(&String::from_utf8_lossy(&script))
        }
        Command::Doctor { ref cache, json } => doctor(cache, json),
        Command::Gc {
            ref files,
            older_than,
            apply,
            json,
        } => gc(&cli, files, older_than, apply, json),
        Command::Cache(ref what) => cache_command(&cli, what),
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
                    let message = match error {
                        onc_sim::config::SettingError::OutOfRange { problem, .. } => {
                            format!("--{flag} {problem}")
                        }
                        onc_sim::config::SettingError::Faults(message) => {
                            format!("invalid --{flag}: {message}")
                        }
                    };
                    report_error(&Error::InvalidArgument(message));
                }
                return EXIT_INVALID;
            }
            simulate(config, port)
        }
    }
}

/// Prints an error the way every command does: `onc-pipe: ` and the message; diagnostics of
/// invalid input with their places. Returns its exit code.
fn report_error(error: &Error) -> i32 {
    match error {
        Error::Invalid(diagnostics) => {
            let mut diagnostics = diagnostics.clone();
            crate::manifest::diagnostic::sort_by_position(&mut diagnostics);
            eprint!("{}", render_all(&diagnostics, DiagnosticFormat::Human));
        }
        other => eprintln!("onc-pipe: {other}"),
    }
    error.process_exit_code()
}

/// Compiles `file` with the command line's overrides, and shows its warnings.
fn prepare(cli: &Cli, file: &std::path::Path, online: bool) -> Result<Prepared, Error> {
    let overrides = Overrides {
        base_url: cli.base_url.clone(),
        output_dir: cli.output_dir.clone(),
        cache_dir: cli.cache_dir.clone(),
        local_cache: cli.local_cache.clone(),
    };
    let prepared = if online {
        crate::run::prepare_online(file, &overrides)?
    } else {
        crate::run::prepare(file, &overrides)?
    };
    if !cli.quiet && !prepared.planned.warnings.is_empty() {
        eprint!(
            "{}",
            render_all(&prepared.planned.warnings, DiagnosticFormat::Human)
        );
    }
    Ok(prepared)
}

fn run_manifest(
    cli: &Cli,
    file: &std::path::Path,
    json: bool,
    no_progress: bool,
    force: bool,
    sharding: crate::shard::Sharding,
) -> i32 {
    // Offline asks ONC nothing, not even its list of product codes.
    let online = sharding.phase.asks_onc();
    let outcome = prepare(cli, file, online).and_then(|prepared| {
        let options = RunOptions {
            bars: !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            quiet: cli.quiet,
            force,
            sharding,
        };
        crate::run::run(&prepared, options)
    });
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return report_error(&error),
    };
    let summary = &outcome.summary;
    // An interrupted run always says how to resume, even with --quiet: a batch job's log is
    // where its user looks after a time limit.
    if !cli.quiet || !summary.failures.is_empty() || summary.interrupted {
        eprint!(
            "{}",
            report::summary_text(summary, outcome.record.as_deref())
        );
        if summary.interrupted {
            let args: Vec<String> = std::env::args().collect();
            eprintln!("{}", report::resume_line(&args));
        }
        eprint!(
            "{}",
            report::estimate::comparison_line(&outcome.estimate, summary)
        );
    }
    // The catalog's line, and the gap-filled clips' warning even with --quiet: silence in a
    // clip is data a model trains on.
    eprint!("{}", report::catalog_lines(&outcome.catalog, cli.quiet));
    if json {
        let text = serde_json::to_string_pretty(&outcome.value).unwrap_or_default() + "\n";
        write_stdout(&text);
    }
    outcome.exit_code()
}

fn status(cli: &Cli, file: &std::path::Path, json: bool) -> i32 {
    let prepared = match prepare(cli, file, false) {
        Ok(prepared) => prepared,
        Err(error) => return report_error(&error),
    };
    let cache = if prepared.cache_dir.is_dir() {
        Cache::open(&prepared.cache_dir).ok()
    } else {
        None
    };
    // Offline, as `status` promises: deployments from the cache (site stages need them).
    let checked = match crate::run::check_deployments_now(&prepared, true, cache.as_ref()) {
        Ok((checked, _)) => checked,
        Err(error) => return report_error(&error),
    };
    let compiled = checked.compiled;
    let server = compiled.plan.settings.base_url.clone();
    let states = crate::exec::node_states(&compiled.dag, cache.as_ref(), &server);
    let clips =
        crate::exec::states::clip_status(&compiled.dag, cache.as_ref(), &compiled.loaded.file);
    let stale = cache
        .as_ref()
        .map(|cache| {
            crate::exec::outputs::stale_outputs(
                &compiled.plan,
                &compiled.dag,
                cache,
                &prepared.output_dir,
            )
        })
        .unwrap_or_default();
    if json {
        write_stdout(&report::status::status_json(
            &compiled, &states, &clips, &stale,
        ))
    } else {
        write_stdout(&report::status::status_text(
            &compiled, &states, &clips, &stale,
        ))
    }
}

/// `clean`: the outputs the manifest no longer produces, listed (a dry run) or removed with
/// `--apply`, under the cache lock so no run is placing files meanwhile. The cache is not
/// touched: `onc-pipe gc` frees it.
fn clean(cli: &Cli, file: &std::path::Path, apply: bool, json: bool) -> i32 {
    let prepared = match prepare(cli, file, false) {
        Ok(prepared) => prepared,
        Err(error) => return report_error(&error),
    };
    if !prepared.cache_dir.is_dir() {
        // No cache: nothing of the tree is known to be onc-pipe's, so nothing is stale.
        return write_stdout(&clean_text(
            &prepared.output_dir,
            &Default::default(),
            apply,
            json,
            0,
        ));
    }
    let cache = match Cache::open(&prepared.cache_dir) {
        Ok(cache) => cache,
        Err(error) => return report_error(&Error::OpenCache(error)),
    };
    // Held for the whole clean: a run links a node's files before it records them, so a file
    // placed meanwhile could look stale.
    let _lock = match cache.lock() {
        Ok(lock) => lock,
        Err(error) => return report_error(&Error::CacheBusy(error)),
    };
    let checked = match crate::run::check_deployments_now(&prepared, true, Some(&cache)) {
        Ok((checked, _)) => checked,
        Err(error) => return report_error(&error),
    };
    let compiled = checked.compiled;
    let stale = crate::exec::outputs::stale_outputs(
        &compiled.plan,
        &compiled.dag,
        &cache,
        &prepared.output_dir,
    );
    if !apply {
        return write_stdout(&clean_text(&prepared.output_dir, &stale, false, json, 0));
    }
    let (removed, failed) = crate::exec::outputs::remove_stale(&prepared.output_dir, &stale);
    for (file, error) in &failed {
        eprintln!(
            "onc-pipe: could not remove {}: {error}",
            prepared.output_dir.join(file).display()
        );
    }
    let code = write_stdout(&clean_text(
        &prepared.output_dir,
        &stale,
        true,
        json,
        removed,
    ));
    if failed.is_empty() {
        code
    } else {
        crate::error::EXIT_FAILED
    }
}

/// `cancel`: one line per journaled request and what ONC said; exit 1 when one could not be
/// asked (it stays journaled).
fn cancel(cli: &Cli, file: &std::path::Path, json: bool) -> i32 {
    let prepared = match prepare(cli, file, false) {
        Ok(prepared) => prepared,
        Err(error) => return report_error(&error),
    };
    let done = match crate::run::cancel::cancel(&prepared) {
        Ok(done) => done,
        Err(error) => return report_error(&error),
    };
    let kept = done.iter().filter(|c| c.outcome == "kept").count();
    let text = if json {
        serde_json::to_string_pretty(&done).unwrap_or_default() + "\n"
    } else {
        let mut text = String::new();
        for c in &done {
            let run = c
                .dp_run_id
                .map(|id| format!(", dpRunId {id}"))
                .unwrap_or_default();
            text.push_str(&format!(
                "{:<10} {} {} (dpRequestId {}{run}): {}\n",
                c.outcome, c.node, c.what, c.dp_request_id, c.detail
            ));
        }
        let cancelled = done.iter().filter(|c| c.outcome == "cancelled").count();
        text.push_str(&if done.is_empty() {
            format!("{}: no run in flight\n", file.display())
        } else {
            format!(
                "{}: {cancelled} cancelled at ONC, {} cleared, {kept} kept (ONC could not be asked: run `cancel` again)\n",
                file.display(),
                done.len() - cancelled - kept
            )
        });
        text
    };
    let code = write_stdout(&text);
    if kept > 0 {
        crate::error::EXIT_FAILED
    } else {
        code
    }
}

/// What `clean` says: the stale files, and whether they were removed.
fn clean_text(
    output_dir: &std::path::Path,
    stale: &crate::exec::outputs::StaleOutputs,
    applied: bool,
    json: bool,
    removed: usize,
) -> String {
    if json {
        let value = serde_json::json!({
            "output_dir": output_dir.display().to_string(),
            "files": stale.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "bytes": stale.bytes,
            "applied": applied,
            "removed": removed,
        });
        return serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
    }
    let mut text = String::new();
    for file in &stale.files {
        let verb = if applied { "removed" } else { "would remove" };
        text.push_str(&format!("{verb} {}\n", output_dir.join(file).display()));
    }
    let files = if stale.files.len() == 1 {
        "file"
    } else {
        "files"
    };
    let bytes = report::estimate::bytes_text(stale.bytes);
    text.push_str(&match (stale.files.is_empty(), applied) {
        (true, _) => format!("{}: nothing stale\n", output_dir.display()),
        (false, false) => format!(
            "{} {files} ({bytes}) the manifest no longer produces; run again with --apply to remove them\n",
            stale.files.len()
        ),
        (false, true) => format!("removed {removed} of {} {files} ({bytes})\n", stale.files.len()),
    });
    text
}

#[cfg(feature = "simulator")]
fn simulate(config: SimConfig, port: u16) -> i32 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return report_error(&Error::Runtime(error)),
    };
    runtime.block_on(async {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let handle = match onc_sim::start(config, address).await {
            Ok(handle) => handle,
            Err(source) => return report_error(&Error::Listen { address, source }),
        };
        // The URL alone on the first line, so scripts can read it.
        if write_stdout(&format!("{}\n", handle.base_url)) != EXIT_OK {
            return crate::error::EXIT_CANNOT_START;
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
        let mut diagnostics = match crate::compile::compile(file) {
            Ok(compiled) => compiled.warnings,
            Err(diagnostics) => diagnostics,
        };
        crate::manifest::diagnostic::sort_by_position(&mut diagnostics);
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
                "{} valid, {invalid} invalid ({}, {})\n",
                report::count(files.len() - invalid, "file"),
                report::count(errors, "error"),
                report::count(warnings, "warning"),
            );
            write_stdout(&summary);
        }
        DiagnosticFormat::Json | DiagnosticFormat::Github => {
            write_stdout(&render_all(&all, format));
        }
    }
    if invalid > 0 { EXIT_INVALID } else { EXIT_OK }
}

fn plan(
    cli: &Cli,
    file: &std::path::Path,
    format: PlanFormat,
    offline: bool,
    shards: Option<u32>,
) -> i32 {
    let prepared = match prepare(cli, file, !offline) {
        Ok(prepared) => prepared,
        Err(error) => return report_error(&error),
    };
    // `plan` never takes the cache's lock; it creates the cache only to keep ONC's deployments,
    // so a second `plan` or `plan --offline` asks nothing.
    let cache = if offline {
        prepared
            .cache_dir
            .is_dir()
            .then(|| Cache::open(&prepared.cache_dir).ok())
            .flatten()
    } else {
        Cache::open(&prepared.cache_dir).ok()
    };
    let (checked, note) =
        match crate::run::check_deployments_now(&prepared, offline, cache.as_ref()) {
            Ok(found) => found,
            Err(error) => return report_error(&error),
        };
    if !cli.quiet {
        if !checked.new_warnings.is_empty() {
            eprint!("{}", report::diagnostics_text(&checked.new_warnings));
        }
        if let Some(note) = note {
            eprintln!("onc-pipe: {note}");
        }
        for who in &checked.discovered.not_consulted {
            eprintln!("onc-pipe: {}", report::not_consulted_text(who));
        }
    }
    let mut compiled = checked.compiled;
    compiled.plan.settings.output_dir = prepared.output_dir.clone();
    compiled.plan.settings.cache_dir = prepared.cache_dir.clone();
    let server = compiled.plan.settings.base_url.clone();
    let states = crate::exec::node_states(&compiled.dag, cache.as_ref(), &server);
    let estimate = crate::run::estimate(
        &compiled,
        &prepared.output_dir,
        &prepared.cache_dir,
        &states,
    );
    let shards = shards.map(|count| {
        let rates = crate::run::sample_rates(&compiled.plan.settings);
        report::shards::ShardsView::new(&compiled, &rates, count)
    });
    let text = match format {
        PlanFormat::Text => {
            let mut text = report::plan_text(&compiled, &states, &estimate);
            if let Some(shards) = &shards {
                text.push_str(&report::shards::shards_text(shards));
            }
            text
        }
        PlanFormat::Json => report::plan_json_with(&compiled, &states, &estimate, shards.as_ref()),
        PlanFormat::Dot => compiled.dag.to_dot(),
    };
    write_stdout(&text)
}

/// `doctor --cache URL`: the store's capabilities, and the mode a team cache can use there.
fn doctor(cache: &str, json: bool) -> i32 {
    use crate::cache::remote::{DEFAULT_LEASE, Remote, RemoteUrl, doctor::diagnose};
    let opened = RemoteUrl::parse(cache).and_then(|url| Remote::open(&url, DEFAULT_LEASE));
    let remote = match opened {
        Ok(remote) => remote,
        Err(error) => return report_error(&Error::OpenCache(error.into())),
    };
    let diagnosis = diagnose(&remote);
    let text = if json {
        serde_json::to_string_pretty(&diagnosis).unwrap_or_default() + "\n"
    } else {
        diagnosis.text()
    };
    let written = write_stdout(&text);
    if written != EXIT_OK {
        return written;
    }
    if diagnosis.usable {
        EXIT_OK
    } else {
        crate::error::EXIT_CANNOT_START
    }
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
        Err(error) => report_error(&Error::Output(error)),
    }
}
