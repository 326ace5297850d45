//! A node's state against the cache, and why: the answer `plan`, `status` and a run give to "will
//! this node run, and why?" (cargo's `DirtyReason` is the model).
//!
//! Input: nothing here computes a state; `exec::node_states` reads the cache (no HTTP request)
//! and answers with these values. Output: typed states and reasons, rendered to words only by
//! `report`. No errors: a cache that cannot be read is itself a reason.

/// Where a node stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeState {
    /// A window: computed from the manifest, never fetched or stored.
    Planned,
    /// Nothing to do: its outputs are in the cache.
    Cached(FreshReason),
    /// Submitted to ONC by an earlier run that did not see it through.
    InFlight(InFlight),
    /// It will run, and why.
    ToRun(DirtyReason),
}

/// Why a node is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshReason {
    /// An ONC node: earlier queries covered its window and every file they returned is stored.
    AllFilesCached,
    /// A file node whose requests are all cached.
    RequestCached,
    /// A clip node with a record of its outputs.
    AlreadyCut,
}

/// What is known of a node in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// An ONC node with a journal entry: the next run re-attaches to these ids.
    Submitted {
        dp_request_id: u64,
        dp_run_id: Option<u64>,
    },
    /// A file node whose request is in flight.
    RequestInFlight,
}

/// Why a node must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirtyReason {
    /// There is no cache yet.
    NoCache,
    /// Nothing of its source is cached.
    New,
    /// The cache's records of its source could not be read.
    CacheUnreadable,
    /// An output it needs is missing or damaged (a file name or what is wrong).
    OutputDamaged(String),
    /// Earlier queries covered part of its window; this many seconds were never fetched.
    PartlyCached { missing_seconds: i64 },
    /// A file node: one of the requests that bring it must run.
    RequestMustRun,
    /// A clip node without a record: a new window, padding or format.
    NewClip,
}

impl NodeState {
    /// ONC's ids for a node in flight: (dpRequestId, dpRunId).
    pub fn onc_ids(&self) -> (Option<u64>, Option<u64>) {
        match self {
            NodeState::InFlight(InFlight::Submitted {
                dp_request_id,
                dp_run_id,
            }) => (Some(*dp_request_id), *dp_run_id),
            _ => (None, None),
        }
    }
}
