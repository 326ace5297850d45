//! Executor events: what happened, for the reporter to show. The executor never prints.

use serde::Serialize;

use crate::dag::NodeKind;

/// One thing that happened during a run. `node` is the short node key; `what` a one-line
/// description of the node (device, product, window).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A node's outputs were all in the cache: nothing was asked of ONC.
    Cached {
        node: String,
        kind: NodeKind,
        what: String,
        files: usize,
    },
    /// A data product request was submitted (and journaled).
    Submitted {
        node: String,
        what: String,
        dp_request_id: u64,
        estimate: Option<String>,
    },
    /// A journaled submission from an earlier run was picked up instead of submitting again.
    Reattached {
        node: String,
        what: String,
        dp_request_id: u64,
        dp_run_id: Option<u64>,
    },
    /// A run changed status, or ONC sent a new progress message.
    Progress {
        node: String,
        status: String,
        message: String,
    },
    /// A run finished processing; its files are being downloaded.
    RunComplete {
        node: String,
        dp_run_id: u64,
        files: u32,
    },
    /// Archived files were listed.
    Listed {
        node: String,
        what: String,
        files: usize,
        to_download: usize,
    },
    /// One file arrived and was verified.
    Downloaded {
        node: String,
        file: String,
        bytes: u64,
    },
    /// A file a run or listing names was already stored (by an earlier run, or by another job
    /// of this one): not transferred.
    FileReused { node: String, file: String },
    /// A node finished: all its files are stored and linked into the output tree.
    Done {
        node: String,
        kind: NodeKind,
        what: String,
        files: usize,
    },
    /// A node failed; its dependents will not run.
    Failed {
        node: String,
        kind: NodeKind,
        what: String,
        reason: String,
    },
    /// A clip node failed (its own error, or its sources could not be fetched).
    ClipFailed {
        node: String,
        what: String,
        reason: String,
    },
    /// A clip was cut: `pieces` clips (more than one when split at gaps) with their sidecars.
    Clipped {
        node: String,
        what: String,
        pieces: usize,
    },
    /// A clip was already cut from the same source files: only re-linked.
    ClipCached { node: String, what: String },
    /// A clip was not written because its window has a gap (`gaps = "skip"`).
    ClipSkipped {
        node: String,
        what: String,
        reason: String,
    },
    /// A warning that does not fail the node.
    Warning { node: String, message: String },
}
