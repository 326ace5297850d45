//! Why a node of a run failed: one error type for the executor, structured, rendered once (into
//! the failure line and the run record) by its `Display`.
//!
//! Input: ONC's answers, the cache's and the clip cutter's errors, and the executor's own checks.
//! Output: [`ExecError`], whose messages read after "failed: <node>: " and name what to do where
//! there is something to do.

use crate::cache::CacheError;
use crate::clip::cut::CutError;
use crate::onc::OncError;

/// Why one node failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Onc(#[from] OncError),
    /// A cache operation failed; `action` says which ("write the journal", "store NAME", …).
    #[error("{action}: {source}")]
    Cache {
        action: String,
        #[source]
        source: CacheError,
    },
    #[error("ONC answered `run` with no run")]
    NoRun,
    #[error("ONC's run {run_id} failed: {message}")]
    RunFailed { run_id: u64, message: String },
    #[error(
        "ONC's run {run_id} failed again after {restarts} restart(s) (dpRequestId {request_id}): {message}; {next}"
    )]
    RunFailedAfterRestarts {
        run_id: u64,
        request_id: u64,
        restarts: u32,
        message: String,
        /// What the next `run` does about it.
        next: &'static str,
    },
    #[error(
        "ONC's run {run_id} was cancelled (dpRequestId {request_id}); restart it or delete the journal entry"
    )]
    RunCancelled { run_id: u64, request_id: u64 },
    #[error(
        "ONC's run {run_id} was still `{status}` after max_wait ({seconds} s); run again to resume it"
    )]
    MaxWait {
        run_id: u64,
        status: String,
        seconds: u64,
    },
    #[error("ONC deleted the results twice (410)")]
    GoneTwice,
    #[error("ONC does not know dpRequestId {request_id}")]
    UnknownRequest { request_id: u64 },
    #[error("file {index} of run {run_id} never became ready")]
    NeverReady { index: u32, run_id: u64 },
    #[error("{name} is gone")]
    ArchiveFileGone { name: String },
    /// ONC's run returned a file nowhere near the request's window: the run is not this
    /// request's (or ONC misbehaved). Nothing is recorded, so the time is not marked covered.
    #[error(
        "ONC's run {run_id} (dpRequestId {request_id}) returned {name}, which lies outside the request's window {from} – {to}; nothing was recorded (run again: the request is submitted anew)"
    )]
    ForeignFile {
        request_id: u64,
        run_id: u64,
        name: String,
        from: String,
        to: String,
    },
    #[error("its source files could not be fetched (see the failed ONC node)")]
    SourcesNotFetched,
    #[error("no source file covers {start} – {end}")]
    NoSourceFile { start: String, end: String },
    #[error(transparent)]
    Cut(#[from] CutError),
    #[error("the clip worker stopped unexpectedly")]
    ClipWorkerStopped,
    /// A task panicked: a bug in onc-pipe, reported against its node.
    #[error("the job stopped unexpectedly (a bug in onc-pipe; please report it): {0}")]
    Panicked(String),
}

impl ExecError {
    /// A cache error with what was being done.
    pub fn cache(action: impl Into<String>, source: CacheError) -> Self {
        ExecError::Cache {
            action: action.into(),
            source,
        }
    }
}
