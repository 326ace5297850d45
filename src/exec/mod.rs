//! The incremental executor: a compiled plan, an ONC client and a cache → a [`RunSummary`].
//!
//! Input: [`Compiled`] (plan + DAG), an [`OncClient`], an open [`Cache`], the output folder, an
//! event channel and a cancellation signal. Output: every ONC request and archive listing node
//! either satisfied from the cache (no HTTP at all), re-attached to a journaled run, or submitted,
//! polled and downloaded; files stored by content hash and hard-linked into the output tree; a
//! summary with per-node failures. Errors never abort the run: a failed node is reported and the
//! others go on ("keep going").
//!
//! Limits (SPEC §7) live in [`Limits`]: submissions spaced by `stagger`, at most `max_runs` ONC
//! runs in flight (a slot is held from submission until the run completes, so downloads of early
//! runs overlap the processing of later ones), at most `download_workers` downloads at once.
//!
//! Durability: a dpRequestId is journaled before `run` is called, and the dpRunId as soon as it
//! is known; a coverage entry (what the query covered and which files it returned) is written
//! only after every file is stored and verified, and only then is the journal entry removed.

mod claims;
mod clips;
pub mod events;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore, mpsc, watch};

use crate::cache::{Cache, CoverageEntry, JournalEntry, NodeRecord, StoredFile, link_output};
use crate::clip::cut::Media;
use crate::compile::Compiled;
use crate::dag::state::{DirtyReason, FreshReason, InFlight, NodeState};
use crate::dag::{Node, NodeDetail, NodeKey, NodeKind, describe, window_key};
use crate::onc::{DownloadOutcome, FileIndex, OncClient, OncError, parse_processing_time};
use claims::{Claim, FileClaims};
pub use events::Event;
use onc_format::grid::{FILE_MS, FILE_REACH_MS};
use onc_format::query::{self, OncQuery};
use onc_format::stamp::{onc_date, times_in_name};

/// Politeness limits, owned here and shared by every job so none can bypass them.
pub struct Limits {
    stagger: Duration,
    last_submit: Mutex<Option<Instant>>,
    runs: Semaphore,
    downloads: Semaphore,
    poll_interval: Duration,
    max_wait: Duration,
    /// Clip cutting (decoding, encoding): one blocking thread per CPU.
    cpu: Semaphore,
}

impl Limits {
    pub fn new(settings: &crate::plan::Settings) -> Self {
        let ms = |value: i64| Duration::from_millis(u64::try_from(value.max(0)).unwrap_or(0));
        Self {
            stagger: ms(settings.stagger_ms),
            last_submit: Mutex::new(None),
            runs: Semaphore::new(usize::try_from(settings.max_runs.max(1)).unwrap_or(1)),
            downloads: Semaphore::new(
                usize::try_from(settings.download_workers.max(1)).unwrap_or(1),
            ),
            poll_interval: ms(settings.poll_interval_ms).max(Duration::from_millis(10)),
            max_wait: ms(settings.max_wait_ms),
            cpu: Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            ),
        }
    }

    /// Waits until `stagger` has passed since the previous submission, then claims the moment.
    async fn submit_turn(&self) {
        let mut last = self.last_submit.lock().await;
        if let Some(previous) = *last {
            let ready = previous + self.stagger;
            let now = Instant::now();
            if ready > now {
                tokio::time::sleep(ready - now).await;
            }
        }
        *last = Some(Instant::now());
    }
}

/// A node that failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub node: String,
    pub kind: String,
    pub what: String,
    pub reason: String,
}

/// The run record (SPEC §6).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub manifest: String,
    pub started_at: String,
    /// ONC data product requests in the plan.
    pub runs_total: usize,
    /// Requests whose files were downloaded by this run.
    pub runs_downloaded: usize,
    /// Requests that failed.
    pub runs_errors: usize,
    /// Requests and listings satisfied entirely from the cache.
    pub nodes_cached: usize,
    pub files_downloaded: usize,
    pub files_cached: usize,
    /// Clip files cut by this run (a split clip counts each piece).
    pub clips_written: usize,
    /// Clip nodes whose outputs were already cut from the same source files.
    pub clips_cached: usize,
    /// Clip nodes skipped because of a gap (`gaps = "skip"`).
    pub clips_skipped: usize,
    pub bytes_downloaded: u64,
    /// Data product submissions made by this run (re-attached runs are not submissions).
    pub requests_submitted: usize,
    /// Runs picked up from the journal of an interrupted run.
    pub runs_reattached: usize,
    /// Every HTTP request sent, polls and retries included.
    pub http_requests: u64,
    pub wall_seconds: f64,
    pub interrupted: bool,
    pub failures: Vec<Failure>,
}

/// Counters shared by concurrent jobs.
#[derive(Default)]
struct Counters {
    files_downloaded: AtomicU64,
    files_cached: AtomicU64,
    bytes_downloaded: AtomicU64,
    submitted: AtomicU64,
    reattached: AtomicU64,
    clips_written: AtomicU64,
}

/// What a job needs, shared.
struct Context {
    client: OncClient,
    cache: Cache,
    limits: Limits,
    output_dir: PathBuf,
    events: mpsc::UnboundedSender<Event>,
    cancel: watch::Receiver<bool>,
    counters: Counters,
    base_url: String,
    /// Which job downloads which file, so each file is transferred once per run.
    claims: FileClaims,
    /// Coverage by source identity, read once per run (see [`Context::coverage`]).
    coverages: std::sync::Mutex<HashMap<String, Arc<crate::cache::Coverage>>>,
    /// Spectrogram files decoded by clips, shared by the clips of the run.
    decoded: Arc<crate::clip::cut::DecodedFiles>,
}

impl Context {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// The coverage of `identity`, read from the cache once per run and kept current by
    /// [`Context::record_coverage`]. Reading it from disk per job made a no-op re-run of 834
    /// requests (10,000 files) read 834 × 834 JSON files: a minute instead of a fraction of a
    /// second.
    fn coverage(&self, identity: &str) -> Result<Arc<crate::cache::Coverage>, String> {
        let lock = || {
            self.coverages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(coverage) = lock().get(identity) {
            return Ok(Arc::clone(coverage));
        }
        let loaded = Arc::new(
            self.cache
                .coverage(identity)
                .map_err(|error| format!("read the cache: {error}"))?,
        );
        Ok(Arc::clone(
            lock().entry(identity.to_owned()).or_insert(loaded),
        ))
    }

    /// Records a completed query on disk, then in this run's view of the coverage.
    fn record_coverage(&self, identity: &str, entry: &CoverageEntry) -> Result<(), String> {
        self.cache
            .record_coverage(identity, entry)
            .map_err(|error| format!("record the results: {error}"))?;
        let mut coverages = self
            .coverages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(coverage) = coverages.get_mut(identity) {
            Arc::make_mut(coverage).add(entry.clone());
        }
        Ok(())
    }

    /// A permit of one of the limits' semaphores; `Interrupted` once the run is being
    /// cancelled (checked after the wait, which may have been long).
    async fn permit<'a>(
        &self,
        semaphore: &'a Semaphore,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, JobError> {
        let permit = semaphore
            .acquire()
            .await
            .map_err(|_| JobError::Interrupted)?;
        if self.cancelled() {
            return Err(JobError::Interrupted);
        }
        Ok(permit)
    }

    /// Sleeps, returning early (false) when the run is cancelled.
    async fn sleep(&self, duration: Duration) -> bool {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            _ = cancel.wait_for(|stop| *stop) => false,
        }
    }
}

/// One unit of ONC work: a product request or an archive listing node.
#[derive(Debug, Clone)]
struct Job {
    key: NodeKey,
    kind: NodeKind,
    what: String,
    query: OncQuery,
    from_ms: i64,
    to_ms: i64,
    /// Output folders (DEVICE/TAG/SUB) its files are linked into.
    destinations: Vec<PathBuf>,
}

/// How a job ended.
#[derive(Debug)]
enum JobEnd {
    Cached,
    Downloaded,
    Failed(String),
    Interrupted,
}

/// The identity of a source: every query parameter except the time window. Files fetched under
/// one identity serve every window, stage and manifest that needs the same source.
///
/// `server` is the logical server (`simulator` or ONC's URL), so simulated files never stand in
/// for real ones in a shared cache.
pub fn source_identity(server: &str, query: &OncQuery) -> String {
    // The parameters as sent, minus the window: the same text (and so the same identity, which
    // names coverage files on disk) as when queries travelled as parameter maps.
    let params = query.params();
    let mut canonical: BTreeMap<&str, &str> = params
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                query::DATE_FROM | query::DATE_TO | query::RETURN_OPTIONS
            )
        })
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    canonical.insert(
        "kind",
        if query.is_archive() {
            "archive"
        } else {
            "product"
        },
    );
    canonical.insert("server", server);
    let text = serde_json::to_string(&canonical).unwrap_or_default();
    blake3::derive_key("onc-pipe source identity", text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Which output subfolder a source's files go to.
fn subfolder(source: &crate::plan::Source) -> &'static str {
    match (source.product_code(), source.extension()) {
        (Some(query::SPECTROGRAM_PRODUCT), "mat") => "mat",
        (Some(query::SPECTROGRAM_PRODUCT), "png" | "pdf") => "png",
        (Some(query::SPECTROGRAM_PRODUCT), _) => "spectrograms",
        _ => "audio",
    }
}

fn jobs(compiled: &Compiled, output_dir: &Path) -> Vec<Job> {
    let tag_of: HashMap<NodeKey, &str> = compiled
        .plan
        .windows
        .iter()
        .map(|window| (window_key(window), window.tag.as_str()))
        .collect();
    compiled
        .dag
        .nodes()
        .filter(|node| matches!(node.kind, NodeKind::ProductRequest | NodeKind::ArchiveList))
        .filter_map(|node| {
            let NodeDetail::Request { device, query, .. } = &node.detail else {
                return None;
            };
            let (from_ms, to_ms) = (query.from_ms(), query.to_ms());
            let tags: BTreeSet<&str> = node
                .inputs
                .iter()
                .filter_map(|k| tag_of.get(k).copied())
                .collect();
            let sub = subfolder(&query.source);
            let destinations = tags
                .iter()
                .map(|tag| output_dir.join(device).join(tag).join(sub))
                .collect();
            Some(Job {
                key: node.key,
                kind: node.kind,
                what: describe(node),
                query: query.clone(),
                from_ms,
                to_ms,
                destinations,
            })
        })
        .collect()
}

/// Runs every ONC node of a compiled plan.
pub async fn execute(
    compiled: &Compiled,
    client: OncClient,
    cache: Cache,
    output_dir: &Path,
    base_url: &str,
    events: mpsc::UnboundedSender<Event>,
    cancel: watch::Receiver<bool>,
) -> RunSummary {
    let started = Instant::now();
    let started_at = onc_date(Utc::now());
    let all_jobs = jobs(compiled, output_dir);
    let context = Arc::new(Context {
        client,
        cache,
        limits: Limits::new(&compiled.plan.settings),
        output_dir: output_dir.to_path_buf(),
        events,
        cancel,
        counters: Counters::default(),
        base_url: base_url.to_owned(),
        claims: FileClaims::default(),
        coverages: std::sync::Mutex::default(),
        decoded: Arc::new(crate::clip::cut::DecodedFiles::new(DECODED_BUDGET_BYTES)),
    });
    // Each ONC job announces its end (true: its files are stored) to the clips that need it.
    let mut finished: HashMap<NodeKey, watch::Sender<Option<bool>>> = HashMap::new();
    for job in &all_jobs {
        finished.insert(job.key, watch::channel(None).0);
    }
    let clip_jobs = clip_jobs(compiled);
    let mut tasks = tokio::task::JoinSet::new();
    for job in all_jobs.clone() {
        let context = context.clone();
        let done = finished.get(&job.key).cloned();
        tasks.spawn(async move {
            let end = run_job(&context, &job).await;
            if let Some(done) = done {
                done.send_replace(Some(matches!(end, JobEnd::Cached | JobEnd::Downloaded)));
            }
            Task::Onc(Box::new(job), end)
        });
    }
    for job in clip_jobs {
        let context = context.clone();
        let upstream: Vec<watch::Receiver<Option<bool>>> = job
            .upstream
            .iter()
            .filter_map(|key| finished.get(key).map(watch::Sender::subscribe))
            .collect();
        tasks.spawn(async move {
            for mut receiver in upstream {
                match receiver.wait_for(Option::is_some).await.map(|v| *v) {
                    Ok(Some(true)) => {}
                    _ if context.cancelled() => {
                        return Task::Clip(Box::new(job), clips::ClipEnd::Interrupted);
                    }
                    _ => {
                        let reason =
                            "its source files could not be fetched (see the failed ONC node)";
                        return Task::Clip(Box::new(job), clips::ClipEnd::Failed(reason.into()));
                    }
                }
            }
            let end = clips::run_clip(&context, &job).await;
            Task::Clip(Box::new(job), end)
        });
    }
    // Every clip has subscribed: from here on only the ONC tasks hold senders, so a task that
    // panics closes its channel and its clips fail instead of waiting forever.
    drop(finished);
    let mut summary = RunSummary {
        manifest: compiled.loaded.file.clone(),
        started_at,
        runs_total: all_jobs
            .iter()
            .filter(|j| j.kind == NodeKind::ProductRequest)
            .count(),
        ..RunSummary::default()
    };
    while let Some(joined) = tasks.join_next().await {
        let (job, end) = match joined {
            Ok(Task::Onc(job, end)) => (job, end),
            Ok(Task::Clip(job, end)) => {
                match end {
                    clips::ClipEnd::Cached => summary.clips_cached += 1,
                    clips::ClipEnd::Written => {}
                    clips::ClipEnd::Skipped => summary.clips_skipped += 1,
                    clips::ClipEnd::Interrupted => summary.interrupted = true,
                    clips::ClipEnd::Failed(reason) => {
                        report_failure(&context, &mut summary, job.key, "clip", &job.what, reason);
                    }
                }
                continue;
            }
            Err(_) => {
                summary.failures.push(Failure {
                    node: String::new(),
                    kind: "internal".into(),
                    what: String::new(),
                    reason: "a job stopped unexpectedly".into(),
                });
                continue;
            }
        };
        let is_run = job.kind == NodeKind::ProductRequest;
        match end {
            JobEnd::Cached => summary.nodes_cached += 1,
            JobEnd::Downloaded => {
                if is_run {
                    summary.runs_downloaded += 1;
                }
            }
            JobEnd::Failed(reason) => {
                if is_run {
                    summary.runs_errors += 1;
                }
                report_failure(
                    &context,
                    &mut summary,
                    job.key,
                    job.kind.as_str(),
                    &job.what,
                    reason,
                );
            }
            JobEnd::Interrupted => summary.interrupted = true,
        }
    }
    let counters = &context.counters;
    summary.files_downloaded =
        usize::try_from(counters.files_downloaded.load(Ordering::Relaxed)).unwrap_or(0);
    summary.files_cached =
        usize::try_from(counters.files_cached.load(Ordering::Relaxed)).unwrap_or(0);
    summary.bytes_downloaded = counters.bytes_downloaded.load(Ordering::Relaxed);
    summary.requests_submitted =
        usize::try_from(counters.submitted.load(Ordering::Relaxed)).unwrap_or(0);
    summary.runs_reattached =
        usize::try_from(counters.reattached.load(Ordering::Relaxed)).unwrap_or(0);
    summary.clips_written =
        usize::try_from(counters.clips_written.load(Ordering::Relaxed)).unwrap_or(0);
    summary.http_requests = context.client.requests_sent();
    summary.interrupted |= context.cancelled();
    summary.wall_seconds = started.elapsed().as_secs_f64();
    summary
}

/// Shows a failed node and adds it to the run record.
fn report_failure(
    context: &Context,
    summary: &mut RunSummary,
    key: NodeKey,
    kind: &str,
    what: &str,
    reason: String,
) {
    let (node, what_text, reason_text) = (key.short(), what.to_owned(), reason.clone());
    // Clips have their own event so progress counts them as clips, not as ONC requests.
    context.emit(if kind == "clip" {
        Event::ClipFailed {
            node,
            what: what_text,
            reason: reason_text,
        }
    } else {
        Event::Failed {
            node,
            what: what_text,
            reason: reason_text,
        }
    });
    summary.failures.push(Failure {
        node: key.to_hex(),
        kind: kind.to_owned(),
        what: what.to_owned(),
        reason,
    });
}

/// What a spawned task returns.
enum Task {
    Onc(Box<Job>, JobEnd),
    Clip(Box<clips::ClipJob>, clips::ClipEnd),
}

/// The clip jobs of the DAG, each with the ONC nodes that fetch its files (through its file
/// nodes) and one of their queries (they share a source identity), in the order they are cut:
/// by device, media and time, whatever the order of the events in the request file, so clips
/// that share source files run one after the other and the decoded-file cache keeps them.
fn clip_jobs(compiled: &Compiled) -> Vec<clips::ClipJob> {
    let mut jobs: Vec<clips::ClipJob> = compiled
        .dag
        .nodes()
        .filter(|node| node.kind == NodeKind::Clip)
        .filter_map(|node| {
            let mut upstream: Vec<NodeKey> = node
                .inputs
                .iter()
                .filter_map(|file| compiled.dag.node(file))
                .flat_map(|file| file.inputs.iter().copied())
                .collect();
            upstream.sort();
            upstream.dedup();
            let query = upstream
                .iter()
                .find_map(|key| match compiled.dag.node(key) {
                    Some(Node {
                        detail: NodeDetail::Request { query, .. },
                        ..
                    }) => Some(query.clone()),
                    _ => None,
                })?;
            clips::clip_job(node, upstream, query)
        })
        .collect();
    // Stable: clips of one window keep the DAG's order.
    jobs.sort_by(|a, b| {
        (
            &a.spec.device,
            a.spec.media == Media::Audio,
            a.clip_start_ns,
        )
            .cmp(&(
                &b.spec.device,
                b.spec.media == Media::Audio,
                b.clip_start_ns,
            ))
    });
    jobs
}

async fn run_job(context: &Context, job: &Job) -> JobEnd {
    if context.cancelled() {
        return JobEnd::Interrupted;
    }
    let identity = source_identity(&context.base_url, &job.query);
    // Cached? A query is covered when earlier queries of the same source covered its window,
    // and every file they returned is still in the store.
    let coverage = match context.coverage(&identity) {
        Ok(coverage) => coverage,
        Err(reason) => return JobEnd::Failed(reason),
    };
    for problem in &coverage.problems {
        context.emit(Event::Warning {
            node: job.key.short(),
            message: format!("ignoring a damaged cache entry: {problem}"),
        });
    }
    let uncovered = coverage.uncovered(job.from_ms, job.to_ms);
    let files = coverage.files_overlapping(job.from_ms, job.to_ms);
    let missing: Vec<&StoredFile> = files
        .iter()
        .filter(|f| !context.cache.has_object(&f.blake3, f.size))
        .collect();
    if uncovered.is_empty() && missing.is_empty() {
        return match finish(context, job, &files, false) {
            Ok(()) => {
                context
                    .counters
                    .files_cached
                    .fetch_add(files.len() as u64, Ordering::Relaxed);
                context.emit(Event::Cached {
                    node: job.key.short(),
                    what: job.what.clone(),
                    files: files.len(),
                });
                JobEnd::Cached
            }
            Err(reason) => JobEnd::Failed(reason),
        };
    }
    // Fetch only what is not covered; if stored files went missing, fetch their whole window.
    let (from_ms, to_ms) = if missing.is_empty() {
        let first = uncovered.first().map_or(job.from_ms, |u| u.0);
        let last = uncovered.last().map_or(job.to_ms, |u| u.1);
        (first, last)
    } else {
        (job.from_ms, job.to_ms)
    };
    if !missing.is_empty() {
        context.emit(Event::Warning {
            node: job.key.short(),
            message: format!(
                "{} cached file(s) missing or damaged (e.g. {}): fetching again",
                missing.len(),
                missing[0].name
            ),
        });
    }
    let result = match job.kind {
        NodeKind::ArchiveList => {
            archive_job(context, job, &identity, from_ms, to_ms, &coverage).await
        }
        _ => product_job(context, job, &identity, from_ms, to_ms, &coverage).await,
    };
    match result {
        Ok(()) => {
            let coverage = match context.coverage(&identity) {
                Ok(coverage) => coverage,
                Err(reason) => return JobEnd::Failed(reason),
            };
            let files = coverage.files_overlapping(job.from_ms, job.to_ms);
            match finish(context, job, &files, true) {
                Ok(()) => {
                    context.emit(Event::Done {
                        node: job.key.short(),
                        what: job.what.clone(),
                        files: files.len(),
                    });
                    JobEnd::Downloaded
                }
                Err(reason) => JobEnd::Failed(reason),
            }
        }
        Err(JobError::Interrupted) => JobEnd::Interrupted,
        Err(JobError::Failed(reason)) => JobEnd::Failed(reason),
    }
}

/// Links a node's files into the output tree and records the node.
fn finish(context: &Context, job: &Job, files: &[StoredFile], record: bool) -> Result<(), String> {
    for destination in &job.destinations {
        for file in files {
            let object = context.cache.object_path(&file.blake3);
            let name = crate::manifest::requests::sanitise_name(&file.name)
                .unwrap_or_else(|| file.blake3.clone());
            let target = crate::cache::safe_join(destination, Path::new(&name))
                .map_err(|error| format!("place {} in the output tree: {error}", file.name))?;
            link_output(&object, &target)
                .map_err(|error| format!("link {} into the output tree: {error}", file.name))?;
        }
    }
    if record {
        let node_record = NodeRecord {
            key: job.key.to_hex(),
            kind: job.kind.as_str().into(),
            outputs: files.to_vec(),
            completed_at: onc_date(Utc::now()),
            detail: serde_json::json!({ "query": job.query.params() }),
        };
        context
            .cache
            .write_node_record(&node_record)
            .map_err(|error| format!("record the node: {error}"))?;
    }
    Ok(())
}

#[derive(Debug)]
enum JobError {
    Failed(String),
    Interrupted,
}

impl From<OncError> for JobError {
    fn from(error: OncError) -> Self {
        JobError::Failed(error.to_string())
    }
}

/// Submits (or re-attaches to) an ONC data product request, polls it, downloads its files and
/// records what it covered.
async fn product_job(
    context: &Context,
    job: &Job,
    identity: &str,
    from_ms: i64,
    to_ms: i64,
    coverage: &crate::cache::Coverage,
) -> Result<(), JobError> {
    let node_key = job.key.to_hex();
    let mut query = job.query.with_window(from_ms, to_ms);
    let mut resubmissions = 0;
    loop {
        // A slot for the whole time ONC works on the run; released once it completes, so
        // downloads of this run overlap the processing of later ones.
        let run_slot = context.permit(&context.limits.runs).await?;
        let journaled = context
            .cache
            .journal_read(&node_key)
            .map_err(|error| JobError::Failed(format!("read the journal: {error}")))?
            .filter(|entry| entry.base_url == context.base_url);
        let (request_id, estimate, entry) = match journaled {
            Some(entry) => {
                context.counters.reattached.fetch_add(1, Ordering::Relaxed);
                context.emit(Event::Reattached {
                    node: job.key.short(),
                    what: job.what.clone(),
                    dp_request_id: entry.dp_request_id,
                    dp_run_id: entry.dp_run_id,
                });
                // The query as it was submitted (its window may differ from today's): what
                // its files will be recorded as covering.
                if let Some(submitted) = OncQuery::from_params(&entry.query) {
                    query = submitted;
                }
                (entry.dp_request_id, None, entry)
            }
            None => {
                context.limits.submit_turn().await;
                if context.cancelled() {
                    return Err(JobError::Interrupted);
                }
                let request = context.client.request_product(&query.params()).await?;
                context.counters.submitted.fetch_add(1, Ordering::Relaxed);
                let entry = JournalEntry {
                    query: query.params(),
                    dp_request_id: request.dp_request_id,
                    dp_run_id: None,
                    submitted_at: onc_date(Utc::now()),
                    base_url: context.base_url.clone(),
                };
                // Durable before the id is used: a crash from here on re-attaches, never resubmits.
                context
                    .cache
                    .journal_write(&node_key, &entry)
                    .map_err(|error| JobError::Failed(format!("write the journal: {error}")))?;
                let estimate = request
                    .estimated_processing_time
                    .as_deref()
                    .and_then(parse_processing_time);
                context.emit(Event::Submitted {
                    node: job.key.short(),
                    what: job.what.clone(),
                    dp_request_id: request.dp_request_id,
                    estimate: request.estimated_processing_time.clone(),
                });
                (request.dp_request_id, estimate, entry)
            }
        };
        match poll_until_complete(context, job, request_id, estimate, entry).await {
            Ok((run_id, file_count)) => {
                drop(run_slot);
                let source = Source { identity, coverage };
                match download_run(context, job, &source, run_id, file_count).await {
                    Ok(mut files) => {
                        fill_file_ends(&mut files);
                        let (run_from, run_to) = (query.from_ms(), query.to_ms());
                        // The files' own extents count as covered too: ONC returns the file
                        // straddling each edge of a query, so a later query that starts where
                        // this one ended need not fetch that file again.
                        let coverage = CoverageEntry {
                            key: node_key.clone(),
                            from_ms: files
                                .iter()
                                .filter_map(|f| f.start_ms)
                                .fold(run_from, i64::min),
                            to_ms: files.iter().filter_map(|f| f.end_ms).fold(run_to, i64::max),
                            files,
                            dp_request_id: Some(request_id),
                            dp_run_id: Some(run_id),
                            completed_at: onc_date(Utc::now()),
                        };
                        context
                            .record_coverage(identity, &coverage)
                            .map_err(JobError::Failed)?;
                        let _ = context.cache.journal_remove(&node_key);
                        return Ok(());
                    }
                    Err(DownloadError::Gone) if resubmissions == 0 => {
                        resubmissions += 1;
                        context.emit(Event::Warning {
                            node: job.key.short(),
                            message:
                                "ONC no longer has the results (410): submitting the request again"
                                    .into(),
                        });
                        let _ = context.cache.journal_remove(&node_key);
                        continue;
                    }
                    Err(DownloadError::Gone) => {
                        return Err(JobError::Failed(
                            "ONC deleted the results twice (410)".into(),
                        ));
                    }
                    Err(DownloadError::Job(error)) => return Err(error),
                }
            }
            Err(PollError::UnknownRun) if resubmissions == 0 => {
                resubmissions += 1;
                context.emit(Event::Warning {
                    node: job.key.short(),
                    message: format!(
                        "ONC does not know dpRequestId {request_id} any more: submitting again"
                    ),
                });
                let _ = context.cache.journal_remove(&node_key);
            }
            Err(PollError::UnknownRun) => {
                return Err(JobError::Failed(format!(
                    "ONC does not know dpRequestId {request_id}"
                )));
            }
            Err(PollError::Job(error)) => return Err(error),
        }
    }
}

#[derive(Debug)]
enum PollError {
    UnknownRun,
    Job(JobError),
}

/// Polls `run` until ONC says complete: once at once (it gives the dpRunId to journal), then
/// at ONC's estimate of completion (never more than `poll_interval` apart), then, if the run is
/// late, after a twentieth of the estimate, doubling up to `poll_interval`. A run that finishes
/// on time is seen within a twentieth of its estimate; a late one costs a few polls, not one
/// per second.
async fn poll_until_complete(
    context: &Context,
    job: &Job,
    request_id: u64,
    estimate: Option<Duration>,
    mut entry: JournalEntry,
) -> Result<(u64, u32), PollError> {
    let node_key = job.key.to_hex();
    let started = Instant::now();
    let interval = context.limits.poll_interval;
    let mut wait = Duration::ZERO;
    let expected = estimate.unwrap_or(Duration::from_secs(1));
    let due = started + expected;
    let first_late_wait = (expected / 20).max(Duration::from_millis(20));
    let mut late_wait = Duration::ZERO;
    let mut last_status = String::new();
    loop {
        if !wait.is_zero() && !context.sleep(wait).await {
            return Err(PollError::Job(JobError::Interrupted));
        }
        let poll = match context.client.run_product(request_id).await {
            Ok(poll) => poll,
            Err(error) if error.is_unknown_id() => return Err(PollError::UnknownRun),
            Err(error) => return Err(PollError::Job(error.into())),
        };
        let Some(run) = poll.runs.first() else {
            return Err(PollError::Job(JobError::Failed(
                "ONC answered `run` with no run".into(),
            )));
        };
        if entry.dp_run_id != Some(run.dp_run_id) {
            entry.dp_run_id = Some(run.dp_run_id);
            context
                .cache
                .journal_write(&node_key, &entry)
                .map_err(|error| {
                    PollError::Job(JobError::Failed(format!("write the journal: {error}")))
                })?;
        }
        match run.status.as_str() {
            "complete" if poll.complete => {
                context.emit(Event::RunComplete {
                    node: job.key.short(),
                    dp_run_id: run.dp_run_id,
                    files: run.file_count,
                });
                return Ok((run.dp_run_id, run.file_count));
            }
            "error" | "failed" => {
                let message = last_error_message(context, run.dp_run_id).await;
                // The run is dead: the next `run` submits the request again instead of
                // re-attaching to a failure.
                let _ = context.cache.journal_remove(&node_key);
                return Err(PollError::Job(JobError::Failed(format!(
                    "ONC's run {} failed: {message}",
                    run.dp_run_id
                ))));
            }
            "cancelled" => {
                return Err(PollError::Job(JobError::Failed(format!(
                    "ONC's run {} was cancelled (dpRequestId {request_id}); restart it or delete the journal entry",
                    run.dp_run_id
                ))));
            }
            status => {
                if status != last_status {
                    context.emit(Event::Progress {
                        node: job.key.short(),
                        status: status.to_owned(),
                        message: String::new(),
                    });
                    last_status = status.to_owned();
                }
            }
        }
        if started.elapsed() > context.limits.max_wait {
            return Err(PollError::Job(JobError::Failed(format!(
                "ONC's run {} was still `{}` after max_wait ({} s); run again to resume it",
                run.dp_run_id,
                run.status,
                context.limits.max_wait.as_secs()
            ))));
        }
        let now = Instant::now();
        wait = if now + Duration::from_millis(1) < due {
            (due - now).min(interval)
        } else {
            late_wait = if late_wait.is_zero() {
                first_late_wait
            } else {
                (late_wait * 2).min(interval)
            };
            late_wait.min(interval)
        };
    }
}

/// ONC's message for a failed run, from a download attempt (202 with status `error`).
async fn last_error_message(context: &Context, run_id: u64) -> String {
    let tmp = context.cache.tmp_dir();
    match context
        .client
        .download_product(run_id, FileIndex::Number(1), &tmp)
        .await
    {
        Ok(DownloadOutcome::NotReady { message, .. }) if !message.is_empty() => message,
        Ok(DownloadOutcome::Ready(file)) => {
            let _ = std::fs::remove_file(&file.temp_path);
            "status `error`".into()
        }
        _ => "status `error`".into(),
    }
}

#[derive(Debug)]
enum DownloadError {
    Gone,
    Job(JobError),
}

/// Where a job's files come from: the source identity and what the cache held when it started.
struct Source<'a> {
    identity: &'a str,
    coverage: &'a crate::cache::Coverage,
}

impl Source<'_> {
    /// The file if it is already stored, from an earlier run or from this one.
    fn stored(&self, context: &Context, name: &str) -> Option<StoredFile> {
        self.coverage
            .file_named(name)
            .filter(|f| context.cache.has_object(&f.blake3, f.size))
            .or_else(|| context.claims.stored(self.identity, name))
    }
}

/// Gives files without an end time one: the next file's start, else a nominal five minutes
/// (ONC's hydrophone files are five-minute files). Files are sorted by start.
fn fill_file_ends(files: &mut [StoredFile]) {
    files.sort_by(|a, b| (a.start_ms, &a.name).cmp(&(b.start_ms, &b.name)));
    let starts: Vec<Option<i64>> = files.iter().map(|f| f.start_ms).collect();
    for (i, file) in files.iter_mut().enumerate() {
        if let (Some(start), None) = (file.start_ms, file.end_ms) {
            let next = starts.get(i + 1).copied().flatten().filter(|&n| n > start);
            file.end_ms = Some(next.unwrap_or(start + FILE_MS).min(start + FILE_MS));
        }
    }
}

/// Memory for decoded spectrogram files kept between clips: about seven 5-minute plotRes files.
const DECODED_BUDGET_BYTES: usize = 96 << 20;

/// Downloads files 1..=count of a run, concurrently within the download limit; stores each.
/// A file already stored (ONC names it in its headers) is not transferred again.
async fn download_run(
    context: &Context,
    job: &Job,
    source: &Source<'_>,
    run_id: u64,
    count: u32,
) -> Result<Vec<StoredFile>, DownloadError> {
    let downloads = (1..=count).map(|index| download_one(context, job, source, run_id, index));
    let results = futures_util::future::join_all(downloads).await;
    let mut files = Vec::new();
    for result in results {
        if let Some(file) = result? {
            files.push(file);
        }
    }
    Ok(files)
}

/// What the `wanted` check of one download decided, for after the answer.
enum Known<'a> {
    Stored(StoredFile),
    Claimed(claims::TheirClaim),
    Mine(claims::MyClaim<'a>),
}

async fn download_one(
    context: &Context,
    job: &Job,
    source: &Source<'_>,
    run_id: u64,
    index: u32,
) -> Result<Option<StoredFile>, DownloadError> {
    let started = Instant::now();
    loop {
        if context.cancelled() {
            return Err(DownloadError::Job(JobError::Interrupted));
        }
        // Decided when ONC's headers name the file: stored already, being fetched by another
        // job, or ours to fetch. Retries of the same request see their own claim.
        let known: std::sync::Mutex<Option<Known<'_>>> = std::sync::Mutex::new(None);
        let wanted = |name: &str| -> bool {
            let mut known = known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(Known::Mine(claim)) = &*known
                && claim.name() == name
            {
                return true;
            }
            if let Some(file) = source.stored(context, name) {
                *known = Some(Known::Stored(file));
                return false;
            }
            match context.claims.claim(source.identity, name) {
                Claim::Mine(claim) => {
                    *known = Some(Known::Mine(claim));
                    true
                }
                Claim::Theirs(claim) => {
                    *known = Some(Known::Claimed(claim));
                    false
                }
            }
        };
        let outcome = {
            let _permit = context
                .permit(&context.limits.downloads)
                .await
                .map_err(DownloadError::Job)?;
            let mut cancel = context.cancel.clone();
            let tmp = context.cache.tmp_dir();
            tokio::select! {
                outcome = context.client.download_product_if(run_id, FileIndex::Number(index), &tmp, &wanted) => outcome,
                // Dropping the download removes its partial file.
                _ = cancel.wait_for(|stop| *stop) => return Err(DownloadError::Job(JobError::Interrupted)),
            }
        };
        let known = known
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome.map_err(|error| DownloadError::Job(error.into()))? {
            DownloadOutcome::Ready(file) => {
                let stored = store(
                    context,
                    job,
                    &file.temp_path,
                    &file.filename,
                    &file.blake3,
                    file.size,
                )?;
                if let Some(Known::Mine(claim)) = known {
                    claim.stored(&stored);
                }
                return Ok(Some(stored));
            }
            DownloadOutcome::Skipped { filename } => {
                let file = match known {
                    Some(Known::Stored(file)) => Some(file),
                    Some(Known::Claimed(claim)) => claim.wait().await,
                    _ => None,
                };
                match file {
                    Some(file) => {
                        context
                            .counters
                            .files_cached
                            .fetch_add(1, Ordering::Relaxed);
                        return Ok(Some(file));
                    }
                    // The job fetching it gave up: fetch it ourselves.
                    None => context.emit(Event::Warning {
                        node: job.key.short(),
                        message: format!(
                            "{filename}: another job failed to fetch it; fetching it here"
                        ),
                    }),
                }
            }
            DownloadOutcome::NotReady { .. } => {
                // ONC is still moving the file to its FTP area.
                if started.elapsed() > context.limits.max_wait {
                    return Err(DownloadError::Job(JobError::Failed(format!(
                        "file {index} of run {run_id} never became ready"
                    ))));
                }
                if !context
                    .sleep(Duration::from_millis(500).min(context.limits.poll_interval))
                    .await
                {
                    return Err(DownloadError::Job(JobError::Interrupted));
                }
            }
            DownloadOutcome::NoData | DownloadOutcome::PastEnd => return Ok(None),
            DownloadOutcome::Gone => return Err(DownloadError::Gone),
        }
    }
}

/// Moves a downloaded temp file into the store and describes it.
fn store(
    context: &Context,
    job: &Job,
    temp: &Path,
    name: &str,
    blake3: &str,
    size: u64,
) -> Result<StoredFile, DownloadError> {
    context
        .cache
        .store_object(temp, blake3, size, false)
        .map_err(|error| DownloadError::Job(JobError::Failed(format!("store {name}: {error}"))))?;
    context
        .counters
        .files_downloaded
        .fetch_add(1, Ordering::Relaxed);
    context
        .counters
        .bytes_downloaded
        .fetch_add(size, Ordering::Relaxed);
    context.emit(Event::Downloaded {
        node: job.key.short(),
        file: name.to_owned(),
        bytes: size,
    });
    let (start_ms, end_ms) = times_in_name(name);
    Ok(StoredFile {
        name: name.to_owned(),
        blake3: blake3.to_owned(),
        size,
        start_ms,
        end_ms,
    })
}

/// Lists archived files for the window (from a file-length earlier, since listings select by
/// start time), downloads those not already stored, and records the coverage.
async fn archive_job(
    context: &Context,
    job: &Job,
    identity: &str,
    from_ms: i64,
    to_ms: i64,
    coverage: &crate::cache::Coverage,
) -> Result<(), JobError> {
    let list_to = if to_ms > from_ms { to_ms } else { from_ms + 1 };
    let listing = job.query.with_window(from_ms - FILE_REACH_MS, list_to);
    let entries = context.client.list_archive_files(&listing.params()).await?;
    // Keep files overlapping the window: a file runs from its start to the next file's start
    // (or its own end when ONC says, or a nominal five minutes).
    let mut starts: Vec<(i64, String, Option<i64>)> = entries
        .iter()
        .filter_map(|entry| Some((entry.start_ms()?, entry.filename.clone(), entry.end_ms())))
        .collect();
    starts.sort();
    let mut wanted = Vec::new();
    for (i, (start, name, end)) in starts.iter().enumerate() {
        let end = end
            .or_else(|| starts.get(i + 1).map(|next| next.0))
            .unwrap_or(start + FILE_MS);
        let overlaps = if to_ms > from_ms {
            *start < to_ms && end > from_ms
        } else {
            *start <= from_ms && from_ms < end
        };
        if overlaps {
            wanted.push((name.clone(), *start, end));
        }
    }
    let to_download = wanted
        .iter()
        .filter(|(name, _, _)| {
            coverage
                .file_named(name)
                .is_none_or(|f| !context.cache.has_object(&f.blake3, f.size))
        })
        .count();
    context.emit(Event::Listed {
        node: job.key.short(),
        what: job.what.clone(),
        files: wanted.len(),
        to_download,
    });
    let source = Source { identity, coverage };
    let fetches = wanted.iter().map(|(name, start, end)| {
        let source = &source;
        async move {
            let mut stored = loop {
                if let Some(file) = source.stored(context, name) {
                    context
                        .counters
                        .files_cached
                        .fetch_add(1, Ordering::Relaxed);
                    break file;
                }
                let claim = match context.claims.claim(identity, name) {
                    Claim::Mine(claim) => claim,
                    // Another window's job is fetching it: use its file, or retry if it failed.
                    Claim::Theirs(claim) => match claim.wait().await {
                        Some(file) => {
                            context
                                .counters
                                .files_cached
                                .fetch_add(1, Ordering::Relaxed);
                            break file;
                        }
                        None => continue,
                    },
                };
                let _permit = context.permit(&context.limits.downloads).await?;
                let file = context
                    .client
                    .download_archive(name, &context.cache.tmp_dir())
                    .await?;
                let stored = store(context, job, &file.temp_path, name, &file.blake3, file.size)
                    .map_err(|error| match error {
                        DownloadError::Job(error) => error,
                        DownloadError::Gone => JobError::Failed(format!("{name} is gone")),
                    })?;
                claim.stored(&stored);
                break stored;
            };
            stored.start_ms = Some(*start);
            stored.end_ms = Some(*end);
            Ok::<StoredFile, JobError>(stored)
        }
    });
    let mut files = Vec::new();
    for result in futures_util::future::join_all(fetches).await {
        files.push(result?);
    }
    // As for products, the listed files' own extents count as covered.
    let to_ms = if to_ms > from_ms { to_ms } else { from_ms + 1 };
    let entry = CoverageEntry {
        key: job.key.to_hex(),
        from_ms: files
            .iter()
            .filter_map(|f| f.start_ms)
            .fold(from_ms, i64::min),
        to_ms: files.iter().filter_map(|f| f.end_ms).fold(to_ms, i64::max),
        files,
        dp_request_id: None,
        dp_run_id: None,
        completed_at: onc_date(Utc::now()),
    };
    context
        .record_coverage(identity, &entry)
        .map_err(JobError::Failed)
}

/// Every node's state for `plan` and `status`, read from `cache` (when it exists) without any
/// HTTP request.
///
/// ONC nodes get [`node_status`]; a file node takes the state of the requests that fetch it;
/// windows are computed, not fetched; clips are to run until the clip stage records them.
pub fn node_states(
    compiled: &Compiled,
    cache: Option<&Cache>,
    server: &str,
) -> HashMap<NodeKey, NodeState> {
    let mut states: HashMap<NodeKey, NodeState> = HashMap::new();
    // One read of each source's coverage, not one per node: a 10,000-file manifest has
    // hundreds of requests over one source.
    let mut coverages: HashMap<String, Option<crate::cache::Coverage>> = HashMap::new();
    // Nodes come in dependency order (windows, requests, files, clips), so inputs are known.
    for node in compiled.dag.nodes() {
        let state = match node.kind {
            NodeKind::Window => NodeState::Planned,
            NodeKind::ProductRequest | NodeKind::ArchiveList => match cache {
                Some(cache) => node_status(cache, server, node, &mut coverages),
                None => NodeState::ToRun(DirtyReason::NoCache),
            },
            NodeKind::File => {
                let inputs: Vec<&NodeState> =
                    node.inputs.iter().filter_map(|k| states.get(k)).collect();
                if !inputs.is_empty() && inputs.iter().all(|s| matches!(s, NodeState::Cached(_))) {
                    NodeState::Cached(FreshReason::RequestCached)
                } else if inputs.iter().any(|s| matches!(s, NodeState::InFlight(_))) {
                    NodeState::InFlight(InFlight::RequestInFlight)
                } else {
                    NodeState::ToRun(DirtyReason::RequestMustRun)
                }
            }
            NodeKind::Clip => match cache.map(|c| c.node_record_lookup(&node.key.to_hex())) {
                Some(Ok(crate::cache::Lookup::Found(_))) => {
                    NodeState::Cached(FreshReason::AlreadyCut)
                }
                Some(Ok(crate::cache::Lookup::Corrupt(reason))) => {
                    NodeState::ToRun(DirtyReason::OutputDamaged(reason))
                }
                _ => NodeState::ToRun(DirtyReason::NewClip),
            },
        };
        states.insert(node.key, state);
    }
    states
}

/// The state of an ONC node and why it must run; `coverages` memoises each source's coverage
/// (`None`: unreadable).
fn node_status(
    cache: &Cache,
    server: &str,
    node: &Node,
    coverages: &mut HashMap<String, Option<crate::cache::Coverage>>,
) -> NodeState {
    let NodeDetail::Request { query, .. } = &node.detail else {
        return NodeState::ToRun(DirtyReason::New);
    };
    if let Ok(Some(entry)) = cache.journal_read(&node.key.to_hex())
        && entry.base_url == server
    {
        return NodeState::InFlight(InFlight::Submitted {
            dp_request_id: entry.dp_request_id,
            dp_run_id: entry.dp_run_id,
        });
    }
    let (from, to) = (query.from_ms(), query.to_ms());
    let identity = source_identity(server, query);
    let coverage = coverages
        .entry(identity)
        .or_insert_with_key(|identity| cache.coverage(identity).ok());
    let Some(coverage) = coverage else {
        return NodeState::ToRun(DirtyReason::CacheUnreadable);
    };
    let uncovered = coverage.uncovered(from, to);
    if !uncovered.is_empty()
        && let Some(problem) = coverage.problems.first()
    {
        // Damaged entries are dropped from coverage, so their time reads as uncovered.
        return NodeState::ToRun(DirtyReason::OutputDamaged(problem.to_string()));
    }
    if let Some(file) = coverage
        .files_overlapping(from, to)
        .iter()
        .find(|f| !cache.has_object(&f.blake3, f.size))
    {
        return NodeState::ToRun(DirtyReason::OutputDamaged(file.name.clone()));
    }
    if coverage.entries.is_empty() {
        return NodeState::ToRun(DirtyReason::New);
    }
    if !uncovered.is_empty() {
        let ms: i64 = uncovered.iter().map(|(a, b)| b - a).sum();
        return NodeState::ToRun(DirtyReason::PartlyCached {
            missing_seconds: ms / 1000,
        });
    }
    NodeState::Cached(FreshReason::AllFilesCached)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    #[test]
    fn clips_are_cut_in_time_order_per_device_and_media() {
        let dir = tempfile::tempdir().unwrap();
        // Events deliberately out of time order, on two devices.
        let csv = "deviceCode,timestamp,label,download_audio,clip\n\
                   ICLISTENHF6324,2024-04-01T03:00:00Z,c,true,true\n\
                   ICLISTENHF6406,2024-04-01T02:00:00Z,x,true,true\n\
                   ICLISTENHF6324,2024-04-01T01:00:00Z,a,true,true\n\
                   ICLISTENHF6324,2024-04-01T02:00:00Z,b,true,true\n";
        std::fs::write(dir.path().join("events.csv"), csv).unwrap();
        let manifest = r#"version = 1
[plan.events]
requests = "events.csv"
[fetch.plotres]
plan = "events"
product = "HSD"
extension = "mat"
[fetch.audio]
plan = "events"
archive = "flac"
[clip.events]
plan = "events"
fetch = ["plotres", "audio"]
"#;
        let path = dir.path().join("m.toml");
        std::fs::write(&path, manifest).unwrap();
        let compiled = crate::compile::compile(&path).unwrap();
        let order: Vec<(String, bool, String)> = clip_jobs(&compiled)
            .iter()
            .map(|job| {
                let label = job.spec.label.as_deref().unwrap_or_default().to_owned();
                (
                    job.spec.device.to_string(),
                    job.spec.media == Media::Audio,
                    label,
                )
            })
            .collect();
        let mut want = Vec::new();
        for (device, labels) in [("ICLISTENHF6324", "abc"), ("ICLISTENHF6406", "x")] {
            for audio in [false, true] {
                for label in labels.chars() {
                    want.push((device.to_owned(), audio, label.to_string()));
                }
            }
        }
        assert_eq!(order, want);
    }

    fn hsd_query() -> OncQuery {
        OncQuery {
            device: "D".into(),
            source: crate::plan::Source::Product {
                code: "HSD".into(),
                extension: "mat".into(),
                options: BTreeMap::new(),
            },
            from: DateTime::from_timestamp_millis(1_711_929_600_000).unwrap(),
            to: DateTime::from_timestamp_millis(1_711_929_900_000).unwrap(),
        }
    }

    #[test]
    fn identity_ignores_the_window_only() {
        let first = source_identity("simulator", &hsd_query());
        let moved = hsd_query().with_window(0, 1_000);
        assert_eq!(source_identity("simulator", &moved), first);
        assert_ne!(
            source_identity("https://data.oceannetworks.ca/", &moved),
            first
        );
        let mut options = hsd_query();
        if let crate::plan::Source::Product { options, .. } = &mut options.source {
            options.insert("dpo_spectralDataDownsample".into(), "2".into());
        }
        assert_ne!(source_identity("simulator", &options), first);
    }

    /// Identities name coverage files in existing caches: they must not change with the types.
    #[test]
    fn identity_is_the_text_of_the_parameters_minus_the_window() {
        let canonical = r#"{"dataProductCode":"HSD","deviceCode":"D","extension":"mat","kind":"product","server":"simulator"}"#;
        let expected: String = blake3::derive_key("onc-pipe source identity", canonical.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(source_identity("simulator", &hsd_query()), expected);
    }
}
