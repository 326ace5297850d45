//! The incremental executor: a compiled plan, an ONC client and a cache → a [`RunSummary`].
//!
//! Input: a [`crate::compile::Compiled`] (plan + DAG), an [`crate::onc::OncClient`], an open
//! [`crate::cache::Cache`], the output folder, an
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
//!
//! Files by responsibility: [`scheduler`] (spawns and gathers every job), [`limits`], `context`
//! (what jobs share, with the coverage memo), `job` (one ONC node), `product` (submit, poll),
//! `archive` (listings), `download` (files of a run, claims), `clips` (clip jobs), [`events`],
//! [`states`] (node states for `plan` and `status`).

mod archive;
mod claims;
mod clips;
mod context;
mod download;
pub mod error;
pub mod events;
mod job;
pub mod limits;
mod product;
pub mod scheduler;
pub mod states;

use serde::Serialize;

pub use error::ExecError;
pub use events::Event;

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

pub use job::source_identity;
pub use limits::Limits;
pub use scheduler::execute;
pub use states::node_states;
