//! Estimates of what a run will cost before anything is ordered: requests, files, bytes, ONC
//! processing time, the expected wall time under the manifest's limits, and whether the bytes fit
//! on disk.
//!
//! Input: the compiled [`Plan`] and [`Dag`], each node's [`NodeState`] (cached nodes cost
//! nothing), each device's sample rate ([`SampleRates`]) and the free space the caller read
//! ([`Space`]). Output: an [`Estimate`] per fetch stage and in total, with [`LongRequest`]
//! warnings for requests ONC would not finish within `max_wait`, and [`Estimate::no_room`] when
//! the downloads would not fit. No I/O and no errors: this module only computes. What one file
//! costs is in [`model`], with the figures it is calibrated on.
//!
//! Why a model and not ONC's own `request` estimates: every `request` call creates a
//! dpRequestId on ONC's side, a one-month manifest would make 720 of them just to plan, and ONC
//! calls its estimates rough; a model calibrated on ONC's answers is instant, offline and as
//! good (README, "Estimates").

pub mod model;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::dag::state::NodeState;
use crate::dag::{Dag, NodeDetail, NodeKey, NodeKind};
use crate::plan::Plan;
pub use model::{FileCost, Production, file_cost};

/// Bytes per second of one download stream from ONC (UNCONFIRMED: a plain HTTPS transfer across
/// the internet; ONC asks for at most about 3 at once).
pub const STREAM_BYTES_PER_S: f64 = 5_000_000.0;
/// Bytes per second of the whole link, whatever the number of streams (100 Mbit/s).
pub const LINK_BYTES_PER_S: f64 = 12_500_000.0;
/// Seconds for one archive listing (a single JSON answer).
pub const LISTING_S: f64 = 1.0;

/// Each device's audio sample rate in Hz; devices not listed sample at `default_hz`.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRates {
    pub default_hz: u32,
    pub by_device: BTreeMap<String, u32>,
}

impl Default for SampleRates {
    /// ONC's icListen HF: 64 kHz.
    fn default() -> Self {
        SampleRates {
            default_hz: model::REFERENCE_RATE_HZ,
            by_device: BTreeMap::new(),
        }
    }
}

impl SampleRates {
    /// Every device at `hz`.
    pub fn all(hz: u32) -> Self {
        SampleRates {
            default_hz: hz,
            by_device: BTreeMap::new(),
        }
    }

    pub fn of(&self, device: &str) -> u32 {
        self.by_device
            .get(device)
            .copied()
            .unwrap_or(self.default_hz)
    }
}

/// Free bytes of the file systems a run writes to, as the caller read them (`None`: unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Space {
    pub output_free_bytes: Option<u64>,
    pub cache_free_bytes: Option<u64>,
    /// Whether outputs and cache share a file system: outputs are hard links into the cache
    /// then, and their bytes count once.
    pub same_file_system: bool,
}

/// What the estimate needs besides the plan.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub plan: &'a Plan,
    pub dag: &'a Dag,
    pub states: &'a HashMap<NodeKey, NodeState>,
    pub rates: &'a SampleRates,
    pub space: Space,
    /// ONC seconds per simulated second: 1 against ONC, the simulator's `time_scale` against it
    /// (the plan's stagger and max_wait are already scaled the same way).
    pub time_scale: f64,
}

/// One fetch stage's share of a run (requests shared by several stages count for the first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageEstimate {
    pub stage: String,
    /// How ONC makes the stage's files.
    pub production: Production,
    /// The per-file figure used (`plotRes MAT, 4 MB at 64 kHz`).
    pub basis: &'static str,
    /// Set when the stage leaves a choice to ONC (no `options`): what ONC gives then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_product: Option<&'static str>,
    /// Data product requests still to submit (or re-attach).
    pub requests: u64,
    /// Archive listings still to make.
    pub listings: u64,
    /// Five-minute files still to download.
    pub files: u64,
    pub bytes: u64,
    /// ONC's elapsed processing time, summed over the stage's requests.
    pub onc_seconds: f64,
    /// Work on ONC's servers for the on-demand files (ONC's wiki: ~25 s per file).
    pub onc_server_seconds: f64,
    /// The longest single request's processing time.
    pub longest_request_seconds: f64,
}

/// Totals over every stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub listings: u64,
    pub files: u64,
    pub bytes: u64,
    pub onc_seconds: f64,
    pub onc_server_seconds: f64,
    /// Expected wall time with the manifest's limits (stagger, max_runs, download_workers) and
    /// [`STREAM_BYTES_PER_S`] / [`LINK_BYTES_PER_S`].
    pub wall_seconds: f64,
}

/// A request ONC is expected to process for longer than `max_wait`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LongRequest {
    pub stage: String,
    pub files: u64,
    pub seconds: f64,
    pub max_wait_seconds: f64,
    /// A `per_request` whose requests would fit within `max_wait`.
    pub per_request: u64,
}

/// Downloads that do not fit the cache's file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    pub needed_bytes: u64,
    pub free_bytes: u64,
}

/// The estimate of a plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub stages: Vec<StageEstimate>,
    pub total: Totals,
    pub space: Space,
    pub warnings: Vec<LongRequest>,
    /// The bandwidth the wall time assumes, bytes per second per stream and in all.
    pub stream_bytes_per_second: f64,
    pub link_bytes_per_second: f64,
}

impl Estimate {
    /// `Some` when the bytes still to download exceed the free space of the cache's file system
    /// (outputs are hard links into the cache, so their bytes count once).
    pub fn no_room(&self) -> Option<NoRoom> {
        let free = self.space.cache_free_bytes?;
        (self.total.bytes > free).then_some(NoRoom {
            needed_bytes: self.total.bytes,
            free_bytes: free,
        })
    }
}

/// One ONC node still to run, for the wall-time model.
struct Job {
    product: bool,
    processing_s: f64,
    bytes: u64,
}

/// Estimates what running the plan's nodes that are not cached will cost.
pub fn estimate(inputs: &Inputs) -> Estimate {
    let Inputs {
        plan,
        dag,
        states,
        rates,
        space,
        time_scale,
    } = inputs;
    let mut stages: Vec<StageEstimate> = plan
        .fetches
        .iter()
        .map(|fetch| {
            let cost = file_cost(&fetch.source, model::REFERENCE_RATE_HZ);
            StageEstimate {
                stage: fetch.name.clone(),
                production: cost.production,
                basis: cost.basis,
                default_product: model::default_product_note(&fetch.source),
                requests: 0,
                listings: 0,
                files: 0,
                bytes: 0,
                onc_seconds: 0.0,
                onc_server_seconds: 0.0,
                longest_request_seconds: 0.0,
            }
        })
        .collect();
    let stage_index: HashMap<&str, usize> = plan
        .fetches
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_str(), i))
        .collect();
    let max_wait_s = plan.settings.max_wait_ms as f64 / 1000.0 / time_scale.max(f64::MIN_POSITIVE);
    let mut warnings: Vec<LongRequest> = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    // Request key → (job index, stage index, cost of its files).
    let mut request_of: HashMap<NodeKey, (usize, Option<usize>, FileCost)> = HashMap::new();
    let cached = |key: &NodeKey| matches!(states.get(key), Some(NodeState::Cached(_)));

    // Nodes come in dependency order: requests before the files they bring.
    for node in dag.nodes() {
        match (&node.kind, &node.detail) {
            (
                NodeKind::ProductRequest | NodeKind::ArchiveList,
                NodeDetail::Request {
                    query,
                    fetch,
                    estimated_files,
                    ..
                },
            ) => {
                if cached(&node.key) {
                    continue;
                }
                let stage = fetch
                    .first()
                    .and_then(|name| stage_index.get(name.as_str()).copied());
                let cost = file_cost(&query.source, rates.of(&query.device));
                let files = u64::try_from(*estimated_files).unwrap_or(0);
                let product = node.kind == NodeKind::ProductRequest;
                let processing_s = if product {
                    model::request_seconds(&cost, files)
                } else {
                    0.0
                };
                if let Some(stage) = stage.and_then(|i| stages.get_mut(i)) {
                    if product {
                        stage.requests += 1;
                    } else {
                        stage.listings += 1;
                    }
                    stage.onc_seconds += processing_s;
                    stage.onc_server_seconds += files as f64 * cost.server_seconds();
                    stage.longest_request_seconds = stage.longest_request_seconds.max(processing_s);
                    if product
                        && processing_s > max_wait_s
                        && warnings.iter().all(|w| w.stage != stage.stage)
                    {
                        warnings.push(LongRequest {
                            stage: stage.stage.clone(),
                            files,
                            seconds: processing_s,
                            max_wait_seconds: max_wait_s,
                            per_request: model::files_within(&cost, max_wait_s),
                        });
                    }
                }
                request_of.insert(node.key, (jobs.len(), stage, cost));
                jobs.push(Job {
                    product,
                    processing_s,
                    bytes: 0,
                });
            }
            (NodeKind::File, _) if !cached(&node.key) => {
                // A file shared by two requests is downloaded once: charge its first.
                let Some((job, stage, cost)) =
                    node.inputs.iter().find_map(|input| request_of.get(input))
                else {
                    continue;
                };
                if let Some(job) = jobs.get_mut(*job) {
                    job.bytes = job.bytes.saturating_add(cost.bytes);
                }
                if let Some(stage) = stage.and_then(|i| stages.get_mut(i)) {
                    stage.files += 1;
                    stage.bytes = stage.bytes.saturating_add(cost.bytes);
                }
            }
            _ => {}
        }
    }

    let mut total = Totals::default();
    for stage in &stages {
        total.requests += stage.requests;
        total.listings += stage.listings;
        total.files += stage.files;
        total.bytes = total.bytes.saturating_add(stage.bytes);
        total.onc_seconds += stage.onc_seconds;
        total.onc_server_seconds += stage.onc_server_seconds;
    }
    let link = link_bytes_per_second(plan.settings.download_workers);
    total.wall_seconds = wall_seconds(&jobs, plan, *time_scale, link);
    Estimate {
        stages,
        total,
        space: *space,
        warnings,
        stream_bytes_per_second: STREAM_BYTES_PER_S,
        link_bytes_per_second: LINK_BYTES_PER_S,
    }
}

/// What `workers` download streams move together, capped by the link.
fn link_bytes_per_second(workers: u32) -> f64 {
    (f64::from(workers.max(1)) * STREAM_BYTES_PER_S).min(LINK_BYTES_PER_S)
}

/// The run's expected wall time, in the plan's seconds: requests submitted in plan order,
/// `stagger` apart, each holding one of `max_runs` slots while ONC processes it (scaled by
/// `time_scale`); each finished request's files then go through one download pipe of `link`
/// bytes per second, in the order the requests finish; listings take [`LISTING_S`].
fn wall_seconds(jobs: &[Job], plan: &Plan, time_scale: f64, link: f64) -> f64 {
    let settings = &plan.settings;
    let stagger_s = settings.stagger_ms.max(0) as f64 / 1000.0;
    let mut slots = vec![0.0_f64; usize::try_from(settings.max_runs.max(1)).unwrap_or(1)];
    let mut next_submit = 0.0_f64;
    let mut ready: Vec<(f64, u64)> = Vec::with_capacity(jobs.len());
    for job in jobs {
        if job.product {
            let (slot, free_at) = slots
                .iter()
                .copied()
                .enumerate()
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .unwrap_or((0, 0.0));
            let submit = next_submit.max(free_at);
            next_submit = submit + stagger_s;
            let done = submit + job.processing_s * time_scale;
            if let Some(slot) = slots.get_mut(slot) {
                *slot = done;
            }
            ready.push((done, job.bytes));
        } else {
            ready.push((LISTING_S * time_scale, job.bytes));
        }
    }
    ready.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut pipe_free = 0.0_f64;
    let mut end = 0.0_f64;
    for (done, bytes) in ready {
        let start = pipe_free.max(done);
        pipe_free = start + bytes as f64 / link;
        end = end.max(pipe_free);
    }
    end
}

#[cfg(test)]
mod tests;
