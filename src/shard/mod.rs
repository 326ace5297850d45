//! Sharding: one compiled DAG run by N processes (a Slurm job array, a Kubernetes Indexed Job),
//! each taking a deterministic part of the work and a share of the politeness limits.
//!
//! Input: the DAG every shard compiles from the same manifest, which shard this process is
//! ([`Shard`], from `--shard k/N` or from the scheduler's environment: [`Shard::from_env`]), the
//! plan's [`Settings`] and the phase ([`Phase`]: everything, the fetch phase, or the offline
//! clip phase). Output: a [`Split`] of the DAG into N parts (what shares source files stays in
//! one part), the node keys this shard executes ([`Split::selection`]), and the [`Share`] of
//! `max_runs`, `download_workers` and `stagger` it may use. Errors: [`ShardError`] — a shard
//! spec or environment that names no valid shard, or more shards than the limits can be shared
//! between (`max_runs` or `download_workers` below N), each saying what would be valid.
//!
//! Why a share and not a shared counter: the shards of one token must together stay within the
//! limits ONC's politeness asks for, and a share (a floor of 1/N of each limit, N times the
//! stagger) needs no coordination and cannot be exceeded, whereas lease slots in a shared store
//! go stale when a worker is killed (README, "Clusters and teams").

mod split;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::plan::Settings;

pub use split::{Part, Split, split};

/// One shard of N: `index` in `1..=count`, as written in `--shard k/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` (1-based) of `count`. Errors: `count` of 0, or `index` outside `1..=count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index == 0 || index > count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The whole DAG as one shard.
    pub fn whole() -> Self {
        Shard { index: 1, count: 1 }
    }

    /// 1-based, as shown.
    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// Which shard the scheduler started this process as: Slurm's job array
    /// (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP` when
    /// set, of `SLURM_ARRAY_TASK_COUNT`), else Kubernetes' Indexed Job (`JOB_COMPLETION_INDEX`,
    /// 0-based, of `ONC_PIPE_SHARDS`: Kubernetes does not put the Job's `completions` in the
    /// environment). `var` reads one environment variable. Errors: neither set, a value that is
    /// not a number, an index outside the count.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        let number = |name: &'static str| -> Result<Option<u32>, ShardError> {
            match var(name).map(|v| v.trim().to_owned()) {
                None => Ok(None),
                Some(value) if value.is_empty() => Ok(None),
                Some(value) => value
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| ShardError::NotANumber { name, value }),
            }
        };
        if let Some(id) = number(SLURM_ID)? {
            let min = number(SLURM_MIN)?.unwrap_or(0);
            let Some(count) = number(SLURM_COUNT)? else {
                return Err(ShardError::Missing {
                    name: SLURM_COUNT,
                    because: "SLURM_ARRAY_TASK_ID is set",
                });
            };
            let step = number(SLURM_STEP)?.unwrap_or(1).max(1);
            let offset = id.checked_sub(min).unwrap_or(u32::MAX);
            if offset % step != 0 || offset / step >= count {
                return Err(ShardError::SlurmNotARange {
                    id,
                    min,
                    step,
                    count,
                });
            }
            return Shard::new(offset / step + 1, count);
        }
        if let Some(index) = number(K8S_INDEX)? {
            let Some(count) = number(K8S_COUNT)? else {
                return Err(ShardError::Missing {
                    name: K8S_COUNT,
                    because: "JOB_COMPLETION_INDEX is set (set it to the Job's `completions`)",
                });
            };
            if index >= count {
                return Err(ShardError::IndexBeyondCount { index, count });
            }
            return Shard::new(index + 1, count);
        }
        Err(ShardError::NoEnvironment)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

const SLURM_ID: &str = "SLURM_ARRAY_TASK_ID";
const SLURM_MIN: &str = "SLURM_ARRAY_TASK_MIN";
const SLURM_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
const SLURM_STEP: &str = "SLURM_ARRAY_TASK_STEP";
const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";
/// The shard count of a Kubernetes Indexed Job: the Job's `completions`, set by its manifest.
pub const K8S_COUNT: &str = "ONC_PIPE_SHARDS";

/// `--shard`: `k/N`, or `auto` (from the scheduler's environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

impl ShardArg {
    /// The shard this names; `auto` reads the process environment.
    pub fn resolve(self) -> Result<Shard, ShardError> {
        match self {
            ShardArg::Fixed(shard) => Ok(shard),
            ShardArg::Auto => Shard::from_env(|name| std::env::var(name).ok()),
        }
    }
}

impl FromStr for ShardArg {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(ShardArg::Auto);
        }
        let bad = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = index.trim().parse().map_err(|_| bad())?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count).map(ShardArg::Fixed)
    }
}

/// What a run executes of its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// ONC nodes and the clips that read their files.
    #[default]
    All,
    /// ONC nodes only (`--fetch-only`): nothing is cut.
    Fetch,
    /// Clip nodes only, from the cache (`--offline`): no ONC request at all.
    Offline,
}

impl Phase {
    /// Whether the phase sends anything to ONC (and so takes a share of the limits).
    pub fn asks_onc(self) -> bool {
        self != Phase::Offline
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::All => "all",
            Phase::Fetch => "fetch",
            Phase::Offline => "offline",
        }
    }
}

/// A limit of the manifest that shards share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    MaxRuns,
    DownloadWorkers,
}

impl Limit {
    /// The manifest's name for it.
    pub fn setting(self) -> &'static str {
        match self {
            Limit::MaxRuns => "max_runs",
            Limit::DownloadWorkers => "download_workers",
        }
    }
}

/// The part of the politeness limits one shard of N takes: a floor of 1/N of `max_runs` and of
/// `download_workers`, and N times the `stagger`, so the N shards together never have more runs
/// at ONC, more downloads or more submissions per second than one unsharded run may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Share {
    pub shards: u32,
    pub max_runs: u32,
    pub download_workers: u32,
    pub stagger_ms: i64,
}

impl Share {
    /// The share of `settings` each of `shards` shards takes. Errors:
    /// [`ShardError::ShareTooSmall`] when `max_runs` or `download_workers` is below `shards`:
    /// a shard needs at least one of each, and rounding up would let the shards together exceed
    /// the manifest's limit.
    pub fn of(settings: &Settings, shards: u32) -> Result<Self, ShardError> {
        let shards = shards.max(1);
        for (limit, value) in [
            (Limit::MaxRuns, settings.max_runs),
            (Limit::DownloadWorkers, settings.download_workers),
        ] {
            if value < shards {
                return Err(ShardError::ShareTooSmall {
                    limit,
                    value,
                    shards,
                });
            }
        }
        Ok(Share {
            shards,
            max_runs: settings.max_runs / shards,
            download_workers: settings.download_workers / shards,
            stagger_ms: settings.stagger_ms.saturating_mul(i64::from(shards)),
        })
    }

    /// `settings` with this share in place of the manifest's limits: the executor's limits and
    /// admission ceiling (and the estimate's wall time) are built from them.
    pub fn apply(&self, settings: &mut Settings) {
        settings.max_runs = self.max_runs;
        settings.download_workers = self.download_workers;
        settings.stagger_ms = self.stagger_ms;
    }
}

/// How a run is cut down: which shard (none: the whole DAG) and which phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sharding {
    pub shard: Option<Shard>,
    pub phase: Phase,
}

impl Sharding {
    /// Whether the run executes less than the whole DAG.
    pub fn is_partial(self) -> bool {
        self.shard.is_some_and(|s| s.count > 1) || self.phase != Phase::All
    }

    /// The share of the limits this run may use: `None` when it has them all (one shard) or
    /// sends nothing to ONC (offline). Errors: [`ShardError::ShareTooSmall`].
    pub fn share(self, settings: &Settings) -> Result<Option<Share>, ShardError> {
        match self.shard {
            Some(shard) if shard.count > 1 && self.phase.asks_onc() => {
                Share::of(settings, shard.count).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// The node keys this run executes in `dag` (`None`: every node).
    pub fn selection(
        self,
        dag: &crate::dag::Dag,
        rates: &crate::estimate::SampleRates,
    ) -> Option<std::collections::BTreeSet<crate::dag::NodeKey>> {
        if !self.is_partial() {
            return None;
        }
        let shard = self.shard.unwrap_or_else(Shard::whole);
        let split = split(dag, rates, shard.count);
        Some(
            split
                .part(shard.index)
                .map(|part| part.selection(self.phase))
                .unwrap_or_default(),
        )
    }

    /// The run record's note of it.
    pub fn record(
        self,
        selection: &std::collections::BTreeSet<crate::dag::NodeKey>,
        dag: &crate::dag::Dag,
        share: Option<Share>,
    ) -> ShardRecord {
        let shard = self.shard.unwrap_or_else(Shard::whole);
        let clip_nodes = selection
            .iter()
            .filter(|key| {
                dag.node(key)
                    .is_some_and(|n| n.kind == crate::dag::NodeKind::Clip)
            })
            .count();
        ShardRecord {
            index: shard.index,
            count: shard.count,
            phase: self.phase,
            onc_nodes: selection.len() - clip_nodes,
            clip_nodes,
            share,
        }
    }
}

/// The ONC nodes (requests, listings) whose files the clips in `selection` read and that
/// `cached` does not say are in the cache, in DAG order: what an offline run lacks.
pub fn missing_sources<'a>(
    dag: &'a crate::dag::Dag,
    selection: &std::collections::BTreeSet<crate::dag::NodeKey>,
    cached: impl Fn(&crate::dag::NodeKey) -> bool,
) -> Vec<&'a crate::dag::Node> {
    let mut needed = std::collections::BTreeSet::new();
    for clip in dag
        .nodes()
        .filter(|n| n.kind == crate::dag::NodeKind::Clip && selection.contains(&n.key))
    {
        for file in clip.inputs.iter().filter_map(|key| dag.node(key)) {
            needed.extend(file.inputs.iter().copied());
        }
    }
    dag.nodes()
        .filter(|n| {
            matches!(
                n.kind,
                crate::dag::NodeKind::ProductRequest | crate::dag::NodeKind::ArchiveList
            ) && needed.contains(&n.key)
                && !cached(&n.key)
        })
        .collect()
}

/// Marks the ONC nodes outside `selection` as cached in `states`, so the estimate counts only
/// what this shard or phase will fetch.
pub fn leave_out(
    dag: &crate::dag::Dag,
    selection: &std::collections::BTreeSet<crate::dag::NodeKey>,
    states: &mut std::collections::HashMap<crate::dag::NodeKey, crate::dag::state::NodeState>,
) {
    for node in dag.nodes().filter(|n| {
        matches!(
            n.kind,
            crate::dag::NodeKind::ProductRequest | crate::dag::NodeKind::ArchiveList
        ) && !selection.contains(&n.key)
    }) {
        states.insert(
            node.key,
            crate::dag::state::NodeState::Cached(crate::dag::state::FreshReason::AllFilesCached),
        );
    }
}

/// What a sharded run did, for its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShardRecord {
    pub index: u32,
    pub count: u32,
    pub phase: Phase,
    /// ONC request and listing nodes this shard executed.
    pub onc_nodes: usize,
    /// Clip nodes this shard executed.
    pub clip_nodes: usize,
    /// The share of the limits it ran under (none offline, or unsharded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
}

/// Why a shard cannot run as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error(
        "invalid shard `{0}`: write `k/N` (shard k of N, numbered 1 to N, e.g. `1/4`), or `auto` under a Slurm job array or a Kubernetes Indexed Job"
    )]
    Syntax(String),
    #[error(
        "invalid shard `{index}/{count}`: shards are numbered 1 to {count} (`1/{count}` … `{count}/{count}`)"
    )]
    OutOfRange { index: u32, count: u32 },
    #[error("invalid shard count 0: N in `k/N` must be at least 1 (`1/1` is the whole DAG)")]
    NoShards,
    #[error(
        "`--shard auto` found no shard in the environment: under Slurm run it in a job array (`sbatch --array=0-3`: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT), under Kubernetes in an Indexed Job (JOB_COMPLETION_INDEX) with ONC_PIPE_SHARDS set to its `completions`; or give `--shard k/N`"
    )]
    NoEnvironment,
    #[error("`--shard auto`: {name} is not set, but {because}")]
    Missing {
        name: &'static str,
        because: &'static str,
    },
    #[error("`--shard auto`: {name} = `{value}` is not a whole number of 0 or more")]
    NotANumber { name: &'static str, value: String },
    #[error(
        "`--shard auto`: task {id} is not one of {count} evenly spaced tasks from {min} (step {step}); submit the array as one range, e.g. `--array=0-{}`",
        count.saturating_sub(1)
    )]
    SlurmNotARange {
        id: u32,
        min: u32,
        step: u32,
        count: u32,
    },
    #[error(
        "`--shard auto`: JOB_COMPLETION_INDEX {index} is not below ONC_PIPE_SHARDS = {count}; set ONC_PIPE_SHARDS to the Job's `completions`"
    )]
    IndexBeyondCount { index: u32, count: u32 },
    #[error(
        "{shards} shards cannot share `onc.{} = {value}`: each shard takes a whole part of it (shards together never exceed the limit, and ONC blocks users who do); use at most {value} shards, raise `onc.{}` in the manifest, or run the fetch phase (`--fetch-only`) with fewer tasks and the clip phase (`--offline`, which sends nothing to ONC) with as many as you like",
        limit.setting(),
        limit.setting()
    )]
    ShareTooSmall {
        limit: Limit,
        value: u32,
        shards: u32,
    },
}

#[cfg(test)]
mod tests;
