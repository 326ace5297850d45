//! `onc-pipe run` as one library call: a compiled manifest and where its outputs and cache go →
//! the run's summary and record.
//!
//! Input: a [`Compiled`] manifest (with the command line's overrides applied by [`prepare`]) and
//! [`RunOptions`]. Output: a [`RunOutcome`] — the summary (the same statistics the progress
//! showed), where the run record was written, and the exit code it means. Errors: [`Error`] for
//! what stops a run before it starts (output or cache folder unwritable or full, cache in use, no
//! token, no simulator) and for a token ONC refuses (the run stops at that first answer);
//! failed nodes are not errors but part of the outcome.
//!
//! The steps, in order: prove the output and cache folders writable with room to spare (before
//! any request), open and lock the cache (one run per cache), find the token, start the runtime,
//! connect (or start the in-process simulator), show events as they come (bars or plain lines),
//! stop scheduling on the first Ctrl-C (a second one exits at once), execute, write the run
//! record last.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::compile::{self, Compiled};
use crate::error::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Error, Folder};
use crate::exec::{RunStats, RunSummary, Work};
use crate::onc::{ConnectOptions, SIMULATOR, find_token};
use crate::plan::Settings;
use crate::report;
use crate::simulator::connect_or_simulate;

/// What the command line overrides in a manifest.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// ONC's base URL, or `simulator` (`--base-url`, `ONC_BASE_URL`).
    pub base_url: Option<String>,
    /// The output tree (`--output-dir`).
    pub output_dir: Option<PathBuf>,
    /// The cache folder (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
}

/// A compiled manifest ready to plan, inspect or run.
#[derive(Debug)]
pub struct Prepared {
    pub compiled: Compiled,
    /// Where outputs go: the override, else `output.dir` relative to the manifest's folder.
    pub output_dir: PathBuf,
    /// The cache: the override, else `output.cache` relative to the manifest's folder.
    pub cache_dir: PathBuf,
}

/// Compiles `file` and applies the overrides. Paths in a manifest are relative to its folder;
/// paths on the command line to the shell's. Against the in-process simulator, the client's
/// pacing follows the simulator's clock. Errors: every problem found in the manifest.
pub fn prepare(file: &Path, overrides: &Overrides) -> Result<Prepared, Error> {
    let mut compiled = compile::compile(file).map_err(Error::Invalid)?;
    if let Some(base_url) = &overrides.base_url {
        compiled.plan.settings.base_url = base_url.clone();
    }
    if compiled.plan.settings.base_url == SIMULATOR {
        scale_pacing_to_simulator(&mut compiled.plan.settings);
    }
    let base_dir = compiled
        .loaded
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let output_dir = overrides
        .output_dir
        .clone()
        .unwrap_or_else(|| base_dir.join(&compiled.plan.settings.output_dir));
    let cache_dir = overrides
        .cache_dir
        .clone()
        .unwrap_or_else(|| base_dir.join(&compiled.plan.settings.cache_dir));
    Ok(Prepared {
        compiled,
        output_dir,
        cache_dir,
    })
}

/// The in-process simulator runs ONC's clock `time_scale` times faster; the client's pacing
/// (stagger, poll interval, max wait) follows, so a manifest written for ONC behaves the same
/// against the simulator, only faster. `max_wait` keeps at least 30 real seconds, so a busy
/// machine does not time a simulated run out.
fn scale_pacing_to_simulator(settings: &mut Settings) {
    let scale = settings.simulator.time_scale;
    let scaled = |ms: i64| (ms as f64 * scale).round() as i64;
    settings.stagger_ms = scaled(settings.stagger_ms);
    settings.poll_interval_ms = scaled(settings.poll_interval_ms).max(10);
    settings.max_wait_ms = scaled(settings.max_wait_ms).max(30_000);
}

/// The free space a run needs on the output and cache file systems at the least: about two
/// 64 kHz five-minute FLAC files (~25 MB each) or a dozen plotRes MAT files (~4 MB each) plus
/// the journal and records. Below it the first downloads would fail with "no space" after
/// their requests were processed by ONC; whether the whole run fits is the plan's estimate, not
/// this floor.
pub const MIN_FREE_BYTES: u64 = 64 << 20;

/// Proves each folder (created if missing) writable and its file system not below `min_free`
/// free bytes. Errors: [`Error::Unwritable`] or [`Error::NoSpace`], naming the folder.
pub fn check_folders(folders: &[(Folder, &Path)], min_free: u64) -> Result<(), Error> {
    for &(folder, path) in folders {
        let free = crate::preflight::check_writable(path)
            .map_err(|problem| Error::Unwritable { folder, problem })?;
        if free < min_free {
            return Err(Error::NoSpace {
                folder,
                path: path.to_path_buf(),
                free,
                needed: min_free,
            });
        }
    }
    Ok(())
}

/// How a run reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Progress bars (on a terminal) instead of plain lines.
    pub bars: bool,
    /// Only failures and the summary of a failed run.
    pub quiet: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: RunSummary,
    /// The run record, when it could be written.
    pub record: Option<PathBuf>,
}

impl RunOutcome {
    /// 130 when interrupted, 1 when some node failed, else 0.
    pub fn exit_code(&self) -> i32 {
        if self.summary.interrupted {
            EXIT_INTERRUPTED
        } else if self.summary.failures.is_empty() {
            EXIT_OK
        } else {
            EXIT_FAILED
        }
    }
}

/// Runs a prepared manifest: orders, polls and downloads what is not cached, cuts clips, and
/// writes the run record. Events are shown as they come (bars or plain lines on stderr).
pub fn run(prepared: &Prepared, options: RunOptions) -> Result<RunOutcome, Error> {
    let Prepared {
        compiled,
        output_dir,
        cache_dir,
    } = prepared;
    check_folders(
        &[(Folder::Output, output_dir), (Folder::Cache, cache_dir)],
        MIN_FREE_BYTES,
    )?;
    let cache = Cache::open(cache_dir).map_err(Error::OpenCache)?;
    let lock = cache.lock().map_err(Error::CacheBusy)?;
    let _ = cache.clear_tmp(&lock);
    let token = find_token(std::env::var("ONC_TOKEN").ok(), Path::new(".env"))?;
    let settings = &compiled.plan.settings;
    let connect = ConnectOptions {
        base_url: settings.base_url.clone(),
        timeout: std::time::Duration::from_millis(
            u64::try_from(settings.timeout_ms.max(1)).unwrap_or(60_000),
        ),
        max_attempts: settings.max_attempts,
    };
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let started = chrono::Utc::now();
    let mut reporter =
        report::progress::Reporter::new(options.bars, options.quiet, RunStats::default());
    let summary = runtime.block_on(async {
        let (client, simulator) = connect_or_simulate(&connect, token, &settings.simulator).await?;
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let reporter = tokio::spawn(async move {
            while let Some(update) = received.recv().await {
                reporter.update(&update);
            }
            reporter.finish();
        });
        let (stop, cancel) = tokio::sync::watch::channel(false);
        let interrupts = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                report::stopping_notice();
                let _ = stop.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    // The second Ctrl-C: the user wants out now. The journal is durable, so
                    // the next run resumes whatever was in flight.
                    std::process::exit(EXIT_INTERRUPTED);
                }
            }
        });
        let work = Work {
            plan: &compiled.plan,
            dag: &compiled.dag,
            manifest: &compiled.loaded.file,
        };
        let summary = crate::exec::execute(
            work,
            client,
            cache.clone(),
            output_dir,
            &settings.base_url,
            events,
            cancel,
        )
        .await;
        interrupts.abort();
        let _ = reporter.await;
        if let Some(simulator) = simulator {
            simulator.stop().await;
        }
        Ok::<RunSummary, Error>(summary)
    })?;
    let value = serde_json::to_value(&summary).unwrap_or_default();
    let record = cache.write_run_record(&value, started).ok();
    drop(lock);
    if let Some(rejected) = summary.token_rejected {
        return Err(Error::TokenRejected(rejected));
    }
    Ok(RunOutcome { summary, record })
}
