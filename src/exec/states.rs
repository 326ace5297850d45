//! Node states for `plan` and `status`, read from the cache without any HTTP request.
//!
//! Input: the DAG and the cache (when it exists). Output: each node's [`NodeState`]
//! with its reason. No errors: an unreadable cache is itself a reason.

use std::collections::HashMap;

use crate::cache::Cache;
use crate::dag::Dag;
use crate::dag::state::{DirtyReason, FreshReason, InFlight, NodeState};
use crate::dag::{Node, NodeDetail, NodeKey, NodeKind};

use super::job::source_identity;

/// Every node's state for `plan` and `status`, read from `cache` (when it exists) without any
/// HTTP request.
///
/// ONC nodes get [`node_status`]; a file node takes the state of the requests that fetch it;
/// windows are computed, not fetched; clips are to run until the clip stage records them.
pub fn node_states(dag: &Dag, cache: Option<&Cache>, server: &str) -> HashMap<NodeKey, NodeState> {
    let mut states: HashMap<NodeKey, NodeState> = HashMap::new();
    // One read of each source's coverage, not one per node: a 10,000-file manifest has
    // hundreds of requests over one source.
    let mut coverages: HashMap<String, Option<crate::cache::Coverage>> = HashMap::new();
    // Nodes come in dependency order (windows, requests, files, clips), so inputs are known.
    for node in dag.nodes() {
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
pub(super) fn node_status(
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

/// What `status` says of the clips, from the cache: how many are cut, still to cut (of which
/// how many failed at the manifest's last run), and skipped at gaps.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ClipStatus {
    pub total: usize,
    pub cut: usize,
    /// Not cut yet, the failed ones included.
    pub to_cut: usize,
    /// Failed at the manifest's last run and not cut since.
    pub failed: usize,
    /// Skipped at a gap (`gaps = "skip"`): stays so until its sources change.
    pub skipped: usize,
    /// The failed ones, with the reason the last run gave.
    pub failures: Vec<super::Failure>,
}

/// The clips of `dag` as the cache and the manifest's last run record (`manifest` as the
/// record names it) say; every clip is to cut without a cache.
pub fn clip_status(dag: &Dag, cache: Option<&Cache>, manifest: &str) -> ClipStatus {
    let last_failures = cache
        .and_then(|cache| last_run_failures(cache, manifest))
        .unwrap_or_default();
    let mut status = ClipStatus::default();
    for node in dag.nodes().filter(|node| node.kind == NodeKind::Clip) {
        status.total += 1;
        let key = node.key.to_hex();
        let record = cache.and_then(|cache| cache.read_node_record(&key).ok().flatten());
        match record {
            Some(record) if record.detail.get("skipped").is_some_and(|v| v.is_string()) => {
                status.skipped += 1;
            }
            Some(_) => status.cut += 1,
            None => {
                status.to_cut += 1;
                if let Some(failure) = last_failures.iter().find(|f| f.node == key) {
                    status.failed += 1;
                    status.failures.push(failure.clone());
                }
            }
        }
    }
    status
}

/// The clip failures of the newest run record of `manifest` in the cache, if there is one.
fn last_run_failures(cache: &Cache, manifest: &str) -> Option<Vec<super::Failure>> {
    let mut records: Vec<std::path::PathBuf> =
        std::fs::read_dir(cache.root().join(crate::cache::RUNS_DIR))
            .ok()?
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "json"))
            .collect();
    // Named by start time: the newest sorts last.
    records.sort();
    records.iter().rev().find_map(|path| {
        let value: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        if value.get("manifest").and_then(serde_json::Value::as_str) != Some(manifest) {
            return None;
        }
        let failures = value.get("failures")?.as_array()?;
        Some(
            failures
                .iter()
                .filter(|f| f.get("kind").and_then(serde_json::Value::as_str) == Some("clip"))
                .filter_map(|f| serde_json::from_value::<super::Failure>(f.clone()).ok())
                .collect(),
        )
    })
}
