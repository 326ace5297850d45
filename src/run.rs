//! `onc-pipe run` as one library call: a compiled manifest and where its outputs and cache go →
//! the run's summary and record.
//!
//! Input: a [`Compiled`] manifest (with the command line's overrides applied by [`prepare`]) and
//! [`RunOptions`]. Output: a [`RunOutcome`] — the summary (the same statistics the progress
//! showed), where the run record was written, and the exit code it means. Errors: [`Error`] for
//! what stops a run before it starts (output or cache folder unwritable or full, cache in use,
//! downloads that cannot fit, no token, no simulator, a window outside ONC's deployments) and
//! for a token ONC refuses (the run stops at that first answer); failed nodes are not errors but
//! part of the outcome.
//!
//! The steps, in order: prove the output and cache folders writable with room to spare (before
//! any request), open the cache and share its lock with other runs, estimate what is not cached and
//! refuse downloads that cannot fit the cache's file system (`estimates`), find the token, start
//! the runtime, connect (or start the in-process simulator), check every window against ONC's
//! deployments (`discover`), show events as they come (bars or plain lines), stop scheduling on
//! the first SIGINT, SIGTERM or SIGHUP (a second one exits at once; [`crate::interrupt`]),
//! execute, write the run record last (with the estimate beside what was done and the signal
//! that stopped it).

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::compile::{self, Compiled, Planned};
use crate::discover::{Discovered, discover};
use crate::error::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, Error, Folder};
use crate::estimate::Estimate;
use crate::exec::{RunStats, RunSummary, Work};
use crate::interrupt::{Interrupt, Signals};
use crate::manifest::Diagnostic;
use crate::onc::{ConnectError, ConnectOptions, OncClient, SIMULATOR};
use crate::plan::{KnownProducts, Settings};
use crate::report;
use crate::simulator::connect_or_simulate;

pub mod cancel;
mod estimates;
mod team;
pub use estimates::{estimate, free_space, record_value, sample_rates};
pub use team::pull_missing;

/// What the command line overrides in a manifest.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// ONC's base URL, or `simulator` (`--base-url`, `ONC_BASE_URL`).
    pub base_url: Option<String>,
    /// The output tree (`--output-dir`).
    pub output_dir: Option<PathBuf>,
    /// The cache: a folder, or a team store's URL (`--cache-dir`, `ONC_PIPE_CACHE`).
    pub cache_dir: Option<PathBuf>,
    /// The local folder in front of a team store (`--local-cache`, `ONC_PIPE_LOCAL_CACHE`).
    pub local_cache: Option<PathBuf>,
}

/// A planned manifest ready to check against ONC's deployments, then plan, inspect or run.
#[derive(Debug)]
pub struct Prepared {
    /// The plan, offline: ONC's deployments not consulted yet, site windows unresolved.
    pub planned: Planned,
    /// Where outputs go: the override, else `output.dir` relative to the manifest's folder.
    pub output_dir: PathBuf,
    /// The cache: the override, else `output.cache` relative to the manifest's folder. With a
    /// team store, the local folder in front of it.
    pub cache_dir: PathBuf,
    /// The team store (`s3://…`, `file://…`) behind `cache_dir`, when the cache is one.
    pub remote: Option<crate::cache::remote::RemoteUrl>,
}

/// Plans `file` (offline) and applies the overrides. Paths in a manifest are relative to its
/// folder; paths on the command line to the shell's. Against the in-process simulator, the
/// client's pacing follows the simulator's clock. Errors: every problem found in the manifest.
pub fn prepare(file: &Path, overrides: &Overrides) -> Result<Prepared, Error> {
    prepare_with(file, overrides, &KnownProducts::built_in())
}

/// [`prepare`] for commands that may ask ONC (`plan`, `run`): a product code the built-in table
/// does not know is looked up in ONC's own `dataProducts` list (from the cache when it is less
/// than a week old) before it is called an error. Only a manifest naming such a code costs a
/// request. Errors: as [`prepare`]; ONC's list that cannot be had leaves the built-in table.
pub fn prepare_online(file: &Path, overrides: &Overrides) -> Result<Prepared, Error> {
    let built_in = KnownProducts::built_in();
    let named_unknown = compile::load(file).ok().and_then(|(loaded, _)| {
        let unknown = loaded
            .manifest
            .fetch
            .values()
            .filter_map(|stage| stage.product.as_deref())
            .any(|code| !built_in.contains(code));
        unknown.then_some(loaded)
    });
    let Some(loaded) = named_unknown else {
        return prepare(file, overrides);
    };
    let mut products = built_in;
    if let Some(codes) = products_listed_by_onc(&loaded, overrides) {
        products.extend(codes);
    }
    prepare_with(file, overrides, &products)
}

/// The product codes in ONC's `dataProducts` list, cached with the deployments; `None` when
/// there is no token or ONC cannot be reached (the built-in table then decides).
fn products_listed_by_onc(
    loaded: &crate::manifest::Loaded,
    overrides: &Overrides,
) -> Option<Vec<String>> {
    let base_url = overrides
        .base_url
        .clone()
        .or_else(|| loaded.manifest.onc.base_url.clone())
        .unwrap_or_else(|| crate::plan::DEFAULT_BASE_URL.to_owned());
    let folder = loaded.path.parent().map(PathBuf::from).unwrap_or_default();
    let from_manifest = match (&loaded.manifest.output.cache, user_cache()) {
        (None, Some(cache)) => cache,
        (cache, _) => PathBuf::from(cache.as_deref().unwrap_or(crate::plan::DEFAULT_CACHE_DIR)),
    };
    // The local folder (in front of a team store, when the cache is one): never a path made of
    // a URL.
    let cache_dir = cache_place(overrides, &folder, &from_manifest).ok()?.0;
    let cache = Cache::open(&cache_dir).ok();
    let query = crate::onc::client::endpoint::DATA_PRODUCTS;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let codes_of = crate::onc::api::data_product_codes;
    if let Some(answer) =
        crate::discover::cached_answer(cache.as_ref(), &base_url, query, now_ms, false)
    {
        return Some(codes_of(&answer));
    }
    let options = ConnectOptions {
        base_url: base_url.clone(),
        timeout: std::time::Duration::from_secs(60),
        max_attempts: 3,
    };
    let token = crate::config::find_token().ok()?;
    let runtime = tokio::runtime::Runtime::new().ok()?;
    let answer = runtime.block_on(async {
        let simulator_config = onc_sim::SimConfig::default();
        let (client, simulator) = connect_or_simulate(&options, token, &simulator_config)
            .await
            .ok()?;
        let answer = client.data_products(&Default::default()).await.ok();
        if let Some(simulator) = simulator {
            simulator.stop().await;
        }
        answer
    })?;
    let codes = codes_of(&answer);
    crate::discover::keep_answer(cache.as_ref(), &base_url, query.to_owned(), now_ms, answer);
    Some(codes)
}

/// [`prepare`] against a given product table.
fn prepare_with(
    file: &Path,
    overrides: &Overrides,
    products: &KnownProducts,
) -> Result<Prepared, Error> {
    let mut planned = compile::plan_file_with(file, products).map_err(Error::Invalid)?;
    if let Some(base_url) = &overrides.base_url {
        planned.plan.settings.base_url = base_url.clone();
    }
    if planned.plan.settings.base_url == SIMULATOR {
        scale_pacing_to_simulator(&mut planned.plan.settings);
    }
    let base_dir = planned
        .loaded
        .path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default();
    let output_dir = overrides
        .output_dir
        .clone()
        .unwrap_or_else(|| base_dir.join(&planned.plan.settings.output_dir));
    // A manifest's own `output.cache` wins over the user config's personal default.
    let from_manifest = match (&planned.loaded.manifest.output.cache, user_cache()) {
        (None, Some(cache)) => cache,
        _ => planned.plan.settings.cache_dir.clone(),
    };
    let (cache_dir, remote) = cache_place(overrides, &base_dir, &from_manifest)?;
    Ok(Prepared {
        planned,
        output_dir,
        cache_dir,
        remote,
    })
}

/// The user config's `cache`, when it has one.
pub fn user_cache() -> Option<PathBuf> {
    crate::config::user().and_then(|config| config.cache.clone())
}

/// Where the cache is: the override (a folder or a store's URL), else the manifest's
/// `output.cache` relative to its folder. With a store, the local folder in front of it: the
/// override, else `.onc-pipe-remote/<name of the store>` beside the manifest.
pub fn cache_place(
    overrides: &Overrides,
    base_dir: &Path,
    from_manifest: &Path,
) -> Result<(PathBuf, Option<crate::cache::remote::RemoteUrl>), Error> {
    use crate::cache::remote::CacheLocation;
    let (text, relative_to) = match &overrides.cache_dir {
        Some(dir) => (dir.to_string_lossy().into_owned(), None),
        None => (from_manifest.to_string_lossy().into_owned(), Some(base_dir)),
    };
    let location = CacheLocation::parse(&text).map_err(|error| Error::OpenCache(error.into()))?;
    Ok(match location {
        CacheLocation::Folder(folder) => (
            relative_to.map_or(folder.clone(), |base| base.join(&folder)),
            None,
        ),
        CacheLocation::Remote(url) => {
            let local = overrides
                .local_cache
                .clone()
                .unwrap_or_else(|| base_dir.join(".onc-pipe-remote").join(url.local_name()));
            (local, Some(url))
        }
    })
}

/// The plan checked against ONC's deployments, and its DAG.
#[derive(Debug)]
pub struct Checked {
    pub compiled: Compiled,
    pub discovered: Discovered,
    /// Warnings of the deployment check (the plan's own were shown when it was prepared).
    pub new_warnings: Vec<Diagnostic>,
}

/// Consults ONC's deployments for every device and site of `planned` (the cache first; ONC
/// when `client` is given and the cache has no fresh answer), checks the windows against them
/// and builds the DAG. Errors: [`Error::Invalid`] with the windows outside every deployment
/// (nothing may be ordered), [`Error::Discovery`] when ONC cannot be asked (a rejected token,
/// ONC unreachable).
pub async fn check_deployments(
    planned: Planned,
    client: Option<&OncClient>,
    cache: Option<&Cache>,
) -> Result<Checked, Error> {
    let needed = crate::plan::deployed::needed(&planned.plan);
    let server = planned.plan.settings.base_url.clone();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let discovered = discover(&needed, client, cache, &server, now_ms)
        .await
        .map_err(|error| match error.token_rejected() {
            // The first answer refused the token: one message, nothing else is sent.
            Some(rejected) => Error::TokenRejected(rejected),
            None => Error::Discovery(error),
        })?;
    let shown = planned.warnings.len();
    let checked = compile::apply_deployments(planned, &discovered.known).map_err(Error::Invalid)?;
    let new_warnings = checked.warnings[shown..].to_vec();
    Ok(Checked {
        compiled: compile::build(checked),
        discovered,
        new_warnings,
    })
}

/// [`check_deployments`] for commands that order nothing (`plan`, `status`): connects (or starts
/// the in-process simulator) unless `offline`, and without a token stays offline, saying so in a
/// warning. Errors: as [`check_deployments`]; a token file that cannot be read.
pub fn check_deployments_now(
    prepared: &Prepared,
    offline: bool,
    cache: Option<&Cache>,
) -> Result<(Checked, Option<String>), Error> {
    let settings = &prepared.planned.plan.settings;
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    runtime.block_on(async {
        let planned = prepared.planned.clone();
        if offline {
            return Ok((check_deployments(planned, None, cache).await?, None));
        }
        let token = crate::config::find_token()?;
        let connected =
            connect_or_simulate(&connect_options(settings), token, &settings.simulator).await;
        let (client, simulator) = match connected {
            Ok(pair) => pair,
            Err(ConnectError::NoToken) => {
                let note = "ONC's deployments were not consulted: no ONC token (set ONC_TOKEN, \
                            or use --offline to plan from what is cached)";
                return Ok((
                    check_deployments(planned, None, cache).await?,
                    Some(note.to_owned()),
                ));
            }
            Err(other) => return Err(Error::Connect(other)),
        };
        let checked = check_deployments(planned.clone(), Some(&client), cache).await;
        if let Some(simulator) = simulator {
            simulator.stop().await;
        }
        match checked {
            // ONC unreachable (not a rejected token): a plan is still worth showing, from what
            // is cached, saying that the rest was not checked.
            Err(Error::Discovery(error)) => {
                let note = format!("ONC's deployments were not consulted: {error}");
                Ok((check_deployments(planned, None, cache).await?, Some(note)))
            }
            other => Ok((other?, None)),
        }
    })
}

/// The estimate of `compiled` against the cache's records, or [`Error::NoRoom`] when its
/// downloads cannot fit the cache's file system (unless `force`).
fn refuse_what_cannot_fit(
    compiled: &Compiled,
    prepared: &Prepared,
    cache: &Cache,
    force: bool,
    sharding: crate::shard::Sharding,
) -> Result<Estimate, Error> {
    let mut states =
        crate::exec::node_states(&compiled.dag, Some(cache), &compiled.plan.settings.base_url);
    // A shard or phase estimates its own part: the ONC nodes it does not run cost it nothing.
    let rates = sample_rates(&compiled.plan.settings);
    if let Some(only) = sharding.selection(&compiled.dag, &rates) {
        crate::shard::leave_out(&compiled.dag, &only, &mut states);
    }
    let estimate = estimate(compiled, &prepared.output_dir, &prepared.cache_dir, &states);
    if let Some(no_room) = estimate.no_room().filter(|_| !force) {
        return Err(Error::NoRoom {
            cache: prepared.cache_dir.clone(),
            needed_bytes: no_room.needed_bytes,
            free_bytes: no_room.free_bytes,
        });
    }
    Ok(estimate)
}

fn connect_options(settings: &Settings) -> ConnectOptions {
    ConnectOptions {
        base_url: settings.base_url.clone(),
        timeout: std::time::Duration::from_millis(
            u64::try_from(settings.timeout_ms.max(1)).unwrap_or(60_000),
        ),
        max_attempts: settings.max_attempts,
    }
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

/// The client of an offline run, which must never send anything: its jobs are clips, read from
/// the cache. It points at a name that cannot resolve (RFC 2606 `.invalid`) with a placeholder
/// token, so even a mistake could not reach ONC with a real token.
fn offline_client(connect: &ConnectOptions) -> Result<OncClient, Error> {
    connect
        .client(
            "http://offline.invalid/",
            crate::onc::Token::new("offline".to_owned()),
        )
        .map_err(|error| Error::Connect(ConnectError::Client(error)))
}

/// Before an offline run: every ONC node whose files its clips read must be satisfied by the
/// cache (the same check as `plan` and `status`). Errors: [`Error::NotFetched`] naming the first
/// few that are not.
fn offline_sources_cached(
    compiled: &Compiled,
    cache: &Cache,
    selection: Option<&std::collections::BTreeSet<crate::dag::NodeKey>>,
) -> Result<(), Error> {
    let states =
        crate::exec::node_states(&compiled.dag, Some(cache), &compiled.plan.settings.base_url);
    let all;
    let selection = match selection {
        Some(selection) => selection,
        None => {
            all = compiled.dag.nodes().map(|n| n.key).collect();
            &all
        }
    };
    let missing = crate::shard::missing_sources(&compiled.dag, selection, |key| {
        matches!(
            states.get(key),
            Some(crate::dag::state::NodeState::Cached(_))
        )
    });
    if missing.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 3;
    Err(Error::NotFetched {
        total: missing.len(),
        missing: missing
            .iter()
            .take(SHOWN)
            .map(|node| {
                let state = states.get(&node.key).map_or_else(
                    || "new".into(),
                    |state| report::reason_text(state).into_owned(),
                );
                format!("{} ({state})", crate::dag::describe(node))
            })
            .collect(),
    })
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
    /// Run even when the estimated downloads do not fit the cache's free space (`--force`).
    pub force: bool,
    /// Which shard of the DAG, and which phase (`--shard`, `--fetch-only`, `--offline`).
    pub sharding: crate::shard::Sharding,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunOutcome {
    pub summary: RunSummary,
    /// The run record, when it could be written.
    pub record: Option<PathBuf>,
    /// What the run was estimated to cost before it started.
    pub estimate: Estimate,
    /// The run record as written (what `--json` prints).
    pub value: serde_json::Value,
    /// `OUTPUT/catalog.csv` as written at the end of the run, or why it could not be.
    pub catalog: Result<crate::catalog::Catalog, crate::catalog::CatalogError>,
}

impl RunOutcome {
    /// When interrupted, 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM, 129 for
    /// SIGHUP); 1 when some node failed; else 0.
    pub fn exit_code(&self) -> i32 {
        if self.summary.interrupted {
            self.summary
                .interrupted_by
                .map_or(EXIT_INTERRUPTED, Interrupt::exit_code)
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
    let sharding = options.sharding;
    let offline_phase = sharding.phase == crate::shard::Phase::Offline;
    // A shard runs under its share of the limits, refused here, before anything is sent.
    let share = sharding
        .share(&prepared.planned.plan.settings)
        .map_err(|error| Error::ShareRefused {
            manifest: prepared.planned.loaded.file.clone(),
            error,
        })?;
    let shared;
    let prepared = match share {
        Some(share) => {
            let mut planned = prepared.planned.clone();
            share.apply(&mut planned.plan.settings);
            shared = Prepared {
                planned,
                output_dir: prepared.output_dir.clone(),
                cache_dir: prepared.cache_dir.clone(),
                remote: prepared.remote.clone(),
            };
            &shared
        }
        None => prepared,
    };
    let Prepared {
        planned,
        output_dir,
        cache_dir,
        remote,
    } = prepared;
    check_folders(
        &[(Folder::Output, output_dir), (Folder::Cache, cache_dir)],
        MIN_FREE_BYTES,
    )?;
    let mut cache = Cache::open(cache_dir).map_err(Error::OpenCache)?;
    // A team store: one request proves the credentials before anything is ordered.
    if let Some(url) = remote {
        let remote = // The lease is set from ONC's pace before the first claim (`exec::job::claim_node`).
        crate::cache::remote::Remote::open(url, crate::cache::remote::DEFAULT_LEASE)
            .map_err(|error| Error::OpenCache(error.into()))?;
        remote
            .probe()
            .map_err(|error| Error::OpenCache(error.into()))?;
        cache = cache.with_remote(std::sync::Arc::new(remote));
    }
    // Runs share a cache (each ONC node is claimed by one of them, `cache::NodeClaim`); the
    // first one in clears what dead runs left in `tmp/`, then lets the others in.
    let lock = cache.lock_for_run().map_err(Error::CacheBusy)?;
    if lock.alone() {
        let _ = cache.clear_tmp(&lock);
        cache.share(&lock).map_err(Error::CacheBusy)?;
    }
    // Before any request: downloads that cannot fit are refused (the cache is open, so its
    // records tell what is already stored). Site windows wait for ONC's deployments, so they
    // are estimated again once those are known (below), still before anything is submitted.
    let offline = compile::build(planned.clone());
    let estimate = refuse_what_cannot_fit(&offline, prepared, &cache, options.force, sharding)?;
    if !options.quiet {
        eprint!("{}", report::estimate::warning_lines(&estimate));
    }
    // Offline, no token is needed: nothing is sent.
    let token = if offline_phase {
        None
    } else {
        crate::config::find_token()?
    };
    let settings = &planned.plan.settings;
    let connect = connect_options(settings);
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let started = chrono::Utc::now();
    let mut reporter =
        report::progress::Reporter::new(options.bars, options.quiet, RunStats::default());
    let (summary, estimate, catalog) = runtime.block_on(async {
        // Signals first, before anything is sent: from here on SIGINT, SIGTERM and SIGHUP stop
        // the run cleanly instead of killing it mid-write (one heard during the deployment
        // check lets that finish, then nothing is scheduled).
        let mut signals = Signals::listen().map_err(Error::Signals)?;
        let (stop, cancel) = tokio::sync::watch::channel(false);
        let heard = std::sync::Arc::new(std::sync::OnceLock::new());
        let interrupts = tokio::spawn({
            let heard = heard.clone();
            async move {
                if let Some(first) = signals.next().await {
                    let _ = heard.set(first);
                    report::stopping_notice(first);
                    let _ = stop.send(true);
                    if let Some(second) = signals.next().await {
                        // The second signal: the user (or the scheduler) wants out now. The
                        // journal is durable, so the next run resumes whatever was in flight;
                        // partial downloads in the cache's tmp/ are swept by that run.
                        std::process::exit(second.exit_code());
                    }
                }
            }
        });
        let (client, simulator) = if offline_phase {
            (offline_client(&connect)?, None)
        } else {
            connect_or_simulate(&connect, token, &settings.simulator).await?
        };
        // Know before ordering: every window against ONC's deployments. A window outside them
        // stops the run here, before anything is submitted. Offline, from the cache only.
        let asked = (!offline_phase).then_some(&client);
        let checked = match check_deployments(planned.clone(), asked, Some(&cache)).await {
            Ok(checked) => checked,
            Err(error) => {
                if let Some(simulator) = simulator {
                    simulator.stop().await;
                }
                return Err(error);
            }
        };
        if !options.quiet && !checked.new_warnings.is_empty() {
            eprint!("{}", report::diagnostics_text(&checked.new_warnings));
        }
        let compiled = &checked.compiled;
        let estimate = if planned.plan.site_windows.is_empty() {
            estimate
        } else {
            match refuse_what_cannot_fit(compiled, prepared, &cache, options.force, sharding) {
                Ok(estimate) => estimate,
                Err(error) => {
                    if let Some(simulator) = simulator {
                        simulator.stop().await;
                    }
                    return Err(error);
                }
            }
        };
        let selection = sharding.selection(&compiled.dag, &sample_rates(settings));
        // A team store: what this folder lacks comes from it first, so the offline check, the
        // executor and the clips see the team's work (nothing is asked of a warm folder).
        if let Err(error) = team::pull_missing(
            &compiled.dag,
            selection.as_ref(),
            &cache,
            &settings.base_url,
        ) {
            if let Some(simulator) = simulator {
                simulator.stop().await;
            }
            return Err(Error::OpenCache(error));
        }
        if offline_phase
            && let Err(error) = offline_sources_cached(compiled, &cache, selection.as_ref())
        {
            if let Some(simulator) = simulator {
                simulator.stop().await;
            }
            return Err(error);
        }
        let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
        let reporter = tokio::spawn(async move {
            while let Some(update) = received.recv().await {
                reporter.update(&update);
            }
            reporter.finish();
        });
        let work = Work {
            plan: &compiled.plan,
            dag: &compiled.dag,
            manifest: &compiled.loaded.file,
            only: selection.as_ref(),
            alone_on_cache: lock.alone(),
        };
        let mut summary = crate::exec::execute(
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
        summary.shard = selection
            .as_ref()
            .map(|only| sharding.record(only, &compiled.dag, share));
        // Every run, no-op and interrupted ones included, leaves the catalog of every clip the
        // manifest has cut so far (whichever shard cut it).
        let catalog = crate::catalog::write(&compiled.dag, &cache, output_dir);
        if summary.interrupted {
            summary.interrupted_by = heard.get().copied();
        }
        let _ = reporter.await;
        if let Some(simulator) = simulator {
            simulator.stop().await;
        }
        Ok::<_, Error>((summary, estimate, catalog))
    })?;
    let mut value = record_value(&summary, &estimate);
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "catalog".into(),
            match &catalog {
                Ok(catalog) => serde_json::to_value(catalog).unwrap_or_default(),
                Err(error) => serde_json::json!({ "error": error.to_string() }),
            },
        );
    }
    if let (Some(remote), Some(object)) = (cache.remote(), value.as_object_mut()) {
        object.insert(
            "store".into(),
            serde_json::json!({ "url": remote.url(), "requests": remote.totals() }),
        );
    }
    let record = cache.write_run_record(&value, started).ok();
    if let Some(written) = &record {
        // Best effort: a record left over is only history.
        let _ = cache.prune_run_records(crate::config::keep_runs(), written);
    }
    drop(lock);
    // A refusal by the team store during the run (after the probe passed: credentials expired,
    // a policy changed) is never a silent miss: the run says so and exits 3.
    if let Some(refused) = cache.remote().and_then(|remote| remote.refused()) {
        return Err(Error::StoreRefused(refused));
    }
    if let Some(rejected) = summary.token_rejected {
        return Err(Error::TokenRejected(rejected));
    }
    Ok(RunOutcome {
        catalog,
        summary,
        record,
        estimate,
        value,
    })
}
