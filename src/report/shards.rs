//! `plan --shards N`: a compiled manifest → how `run --shard k/N` would split it, as text and as
//! the `shards` object of `plan --format json`.
//!
//! Input: the [`Compiled`] manifest, each device's sample rate and N. Output: a [`ShardsView`]
//! (per shard: requests, listings, files, clips, estimated bytes, node keys; the share of the
//! limits each shard gets, or why N shards cannot share them) and its text. No errors: a share
//! that would be refused is shown, not raised.

use std::fmt::Write as _;

use serde::Serialize;

use crate::compile::Compiled;
use crate::dag::NodeKey;
use crate::estimate::SampleRates;
use crate::shard::{Phase, Share, split};

use super::estimate::bytes_text;

/// The manifest's own limits, which the shards share.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    pub max_runs: u32,
    pub download_workers: u32,
    pub stagger_ms: i64,
}

/// One shard of the split.
#[derive(Debug, Clone, Serialize)]
pub struct PartView {
    pub index: u32,
    pub product_requests: usize,
    pub archive_lists: usize,
    pub files: u64,
    pub clips: usize,
    pub estimated_bytes: u64,
    /// Groups of nodes sharing source files.
    pub components: usize,
    /// ONC and clip node keys, in DAG order.
    pub nodes: Vec<NodeKey>,
}

/// The split of a plan into N shards.
#[derive(Debug, Clone, Serialize)]
pub struct ShardsView {
    pub count: u32,
    /// What a shard's load is measured in.
    pub weight: &'static str,
    pub limits: Limits,
    /// What each shard of a run that asks ONC (everything, or `--fetch-only`) gets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<Share>,
    /// Why N shards cannot share the limits (such runs are refused); `--offline` is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    pub parts: Vec<PartView>,
}

impl ShardsView {
    pub fn new(compiled: &Compiled, rates: &SampleRates, count: u32) -> Self {
        let settings = &compiled.plan.settings;
        let split = split(&compiled.dag, rates, count);
        let order: std::collections::HashMap<NodeKey, usize> = compiled
            .dag
            .nodes()
            .enumerate()
            .map(|(i, n)| (n.key, i))
            .collect();
        let (share, refused) = match Share::of(settings, split.count) {
            Ok(share) => (Some(share), None),
            Err(error) => (None, Some(error.to_string())),
        };
        ShardsView {
            count: split.count,
            weight: "estimated bytes of the source files",
            limits: Limits {
                max_runs: settings.max_runs,
                download_workers: settings.download_workers,
                stagger_ms: settings.stagger_ms,
            },
            share,
            refused,
            parts: split
                .parts
                .iter()
                .map(|part| PartView {
                    index: part.index,
                    product_requests: part.product_requests.len(),
                    archive_lists: part.archive_lists.len(),
                    files: part.files,
                    clips: part.clips.len(),
                    estimated_bytes: part.estimated_bytes,
                    components: part.components,
                    nodes: part.selection(Phase::All).into_iter().collect::<Vec<_>>(),
                })
                .map(|mut view| {
                    // DAG order, as the rest of the plan lists nodes.
                    view.nodes
                        .sort_by_key(|key| order.get(key).copied().unwrap_or(usize::MAX));
                    view
                })
                .collect(),
        }
    }
}

fn ms_text(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{} ms", ms)
    }
}

/// The split as `plan --shards N` shows it, after the plan.
pub fn shards_text(view: &ShardsView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nshards ({}): groups sharing source files kept whole, balanced by {}",
        view.count, view.weight
    );
    let limits = &view.limits;
    match (&view.share, &view.refused) {
        (Some(share), _) => {
            let _ = writeln!(
                out,
                "  each shard's share of the limits: max_runs {} of {}, download_workers {} of {}, stagger {} ({} x {})",
                share.max_runs,
                limits.max_runs,
                share.download_workers,
                limits.download_workers,
                ms_text(share.stagger_ms),
                ms_text(limits.stagger_ms),
                view.count
            );
        }
        (None, Some(refused)) => {
            let _ = writeln!(
                out,
                "  `run --shard k/{}` is refused: {refused}",
                view.count
            );
        }
        (None, None) => {}
    }
    let _ = writeln!(
        out,
        "  `run --offline` (clips from the cache) sends nothing to ONC: any number of shards"
    );
    for part in &view.parts {
        let _ = writeln!(
            out,
            "  shard {}/{}: {} product requests, {} archive listings, {} files, {} clips, ~{} ({} groups)",
            part.index,
            view.count,
            part.product_requests,
            part.archive_lists,
            part.files,
            part.clips,
            bytes_text(part.estimated_bytes),
            part.components
        );
    }
    out
}
