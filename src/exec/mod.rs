//! The incremental executor: a compiled plan, an ONC client and a cache → a [`RunSummary`].
//!
//! Input: a [`crate::compile::Compiled`] (plan + DAG), an [`crate::onc::OncClient`], an open
//! [`crate::cache::Cache`], the output folder, an
//! event channel and a cancellation signal. Output: every ONC request and archive listing node
//! either satisfied from the cache (no HTTP at all), re-attached to a journaled run, or submitted,
//! polled and downloaded; files stored by content hash and hard-linked into the output tree; a
//! summary with per-node failures. Errors never abort the run: a failed node is reported and the
//! others go on ("keep going") — but for a refused token (401), which no node can get past: the
//! run's first ONC call goes alone, and a 401 stops scheduling as Ctrl-C does, so a bad token
//! costs one request and is reported once ([`RunSummary::token_rejected`]).
//!
//! Limits (SPEC §7) live in [`Limits`]: submissions spaced by `stagger`, at most
//! `download_workers` downloads at once; how many ONC runs are in flight is found from ONC's
//! answers, up to `max_runs` (`admission`: a run is submitted while ONC starts ours at once,
//! held while one is queued, fewer after a 429/503; a run holds its place from submission until
//! it completes, so downloads of early runs overlap the processing of later ones). Against the
//! simulator every timer is multiplied by its time scale ([`crate::onc::OncClient::time_scale`]).
//!
//! Durability: a dpRequestId is journaled before `run` is called, and the dpRunId as soon as it
//! is known; a coverage entry (what the query covered and which files it returned) is written
//! only after every file is stored and verified, and only then is the journal entry removed.
//!
//! Files by responsibility: [`scheduler`] (spawns and gathers every job), [`limits`], `context`
//! (what jobs share, with the coverage memo), `job` (one ONC node), `product` (submit, poll),
//! `archive` (listings), `download` (files of a run, claims), `clips` (clip jobs), [`events`],
//! [`states`] (node states for `plan` and `status`).

mod admission;
mod archive;
mod claims;
mod clips;
mod context;
mod download;
pub mod error;
pub mod events;
mod job;
pub mod limits;
pub mod outputs;
mod product;
pub mod scheduler;
pub mod states;
pub mod stats;

use serde::Serialize;

pub use error::ExecError;
pub use events::Event;
pub use stats::{RunStats, StatsKeeper, Update};

/// A node that failed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Failure {
    pub node: String,
    pub kind: String,
    pub what: String,
    pub reason: String,
}

/// The end of a run: its statistics (the same counters the progress bars showed), failures and
/// timing. Serialised as the run record (SPEC §6).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub manifest: String,
    pub started_at: String,
    pub stats: RunStats,
    /// Every HTTP request sent, polls and retries included.
    pub http_requests: u64,
    pub wall_seconds: f64,
    /// Stopped before the end: a signal (Ctrl-C, SIGTERM, SIGHUP), or ONC refused the token.
    pub interrupted: bool,
    /// The signal that stopped the run, when one did (set by the caller, which hears them).
    pub interrupted_by: Option<crate::interrupt::Interrupt>,
    pub failures: Vec<Failure>,
    /// ONC refused the token (401): the run stopped at that answer; nothing after it was sent.
    pub token_rejected: Option<crate::onc::error::TokenRejected>,
    /// The shard and phase this run was (set by the caller; `None` for a whole, unsharded run).
    pub shard: Option<crate::shard::ShardRecord>,
}

/// The run record's fields: the summary with its statistics inline.
#[derive(Serialize)]
struct RunRecord<'a> {
    manifest: &'a str,
    started_at: &'a str,
    /// ONC data product requests in the plan.
    runs_total: u64,
    /// Requests whose files were downloaded by this run.
    runs_downloaded: u64,
    /// Requests that failed.
    runs_errors: u64,
    /// Requests and listings satisfied entirely from the cache.
    nodes_cached: u64,
    files_downloaded: u64,
    files_cached: u64,
    /// Clip files cut by this run (a split clip counts each piece).
    clips_written: u64,
    /// Clip nodes whose outputs were already cut from the same source files.
    clips_cached: u64,
    /// Clip nodes skipped because of a gap (`gaps = "skip"`).
    clips_skipped: u64,
    bytes_downloaded: u64,
    /// Data product submissions made by this run (re-attached runs are not submissions).
    requests_submitted: u64,
    /// Runs picked up from the journal of an interrupted run.
    runs_reattached: u64,
    http_requests: u64,
    wall_seconds: f64,
    interrupted: bool,
    /// The signal that stopped the run (`SIGINT`, `SIGTERM`, `SIGHUP`), when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    interrupted_by: Option<&'static str>,
    failures: &'a [Failure],
    /// ONC's refusal of the token, when it stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_rejected: Option<String>,
    /// Which shard of how many, the phase, what it ran and the share of the limits it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<crate::shard::ShardRecord>,
}

impl Serialize for RunSummary {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = &self.stats;
        RunRecord {
            manifest: &self.manifest,
            started_at: &self.started_at,
            runs_total: s.runs_total,
            runs_downloaded: s.runs_downloaded,
            runs_errors: s.runs_errors,
            nodes_cached: s.nodes_cached,
            files_downloaded: s.files_downloaded,
            files_cached: s.files_cached,
            clips_written: s.clips_written,
            clips_cached: s.clips_cached,
            clips_skipped: s.clips_skipped,
            bytes_downloaded: s.bytes_downloaded,
            requests_submitted: s.requests_submitted,
            runs_reattached: s.runs_reattached,
            http_requests: self.http_requests,
            wall_seconds: self.wall_seconds,
            interrupted: self.interrupted,
            interrupted_by: self.interrupted_by.map(crate::interrupt::Interrupt::name),
            failures: &self.failures,
            token_rejected: self.token_rejected.as_ref().map(ToString::to_string),
            shard: self.shard,
        }
        .serialize(serializer)
    }
}

pub use job::source_identity;
pub use limits::Limits;
pub use scheduler::{Work, execute};
pub use states::node_states;
