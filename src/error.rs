//! The errors that end a command before its work, each with the exit code it means (SPEC §2;
//! nextest's `ExpectedError::process_exit_code` is the model).
//!
//! Input: what went wrong while preparing or starting a command. Output: an [`Error`] whose
//! message reads after "onc-pipe: " and whose [`Error::process_exit_code`] the binary returns.
//! Outcomes that are not errors (some nodes failed, an interrupted run) have their codes here
//! too, so every exit code is defined in one place.

use std::path::PathBuf;

use crate::cache::CacheError;
use crate::manifest::Diagnostic;
use crate::onc::ConnectError;
use crate::onc::error::TokenRejected;
use crate::preflight::LocalProblem;

/// Exit code: everything worked.
pub const EXIT_OK: i32 = 0;
/// Exit code: some nodes failed, the others completed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: invalid input (manifest, request file, arguments).
pub const EXIT_INVALID: i32 = 2;
/// Exit code: could not start (cache in use or unwritable, no token, ...).
pub const EXIT_CANNOT_START: i32 = 3;
/// Exit code of a run stopped by Ctrl-C (128 + SIGINT, the shell convention).
pub const EXIT_INTERRUPTED: i32 = 130;
/// Exit code of a run stopped by SIGTERM (a Slurm time limit, `timeout`): 128 + 15.
pub const EXIT_TERMINATED: i32 = 143;
/// Exit code of a run stopped by SIGHUP (its terminal closed): 128 + 1.
pub const EXIT_HANGUP: i32 = 129;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest or request file has errors (each with its place; rendered by the caller).
    #[error("{} problem(s) in the input", .0.len())]
    Invalid(Vec<Diagnostic>),
    /// A command-line value out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// `--shard` names no shard (or `auto` found none in the environment).
    #[error("{0}")]
    InvalidShard(crate::shard::ShardError),
    /// The manifest's limits cannot be shared between the shards; nothing was sent.
    #[error("{manifest}: {error}")]
    ShareRefused {
        manifest: String,
        error: crate::shard::ShardError,
    },
    /// `run --offline`: sources of the shard's clips are not in the cache; nothing was cut.
    #[error(
        "cannot start: --offline needs every source of its clips in the cache, and {total} ONC request(s) or listing(s) are not there: {}{}; run the fetch phase first (`onc-pipe run FILE --fetch-only`, with the same --shard count or none), then this again",
        missing.join("; "),
        if *total > missing.len() { format!("; and {} more", total - missing.len()) } else { String::new() }
    )]
    NotFetched { missing: Vec<String>, total: usize },
    #[error("cannot start: failed to {0}")]
    OpenCache(CacheError),
    /// The team store refused the credentials or the permission during the run (the run record
    /// was written; what the refused reads would have given was fetched again).
    #[error(
        "the team cache refused: {0}. Nothing was treated as a miss silently; check the \
         credentials and the bucket's policy, then run again"
    )]
    StoreRefused(String),
    #[error("cannot start: failed to {0}; wait for it to finish")]
    CacheBusy(CacheError),
    #[error("cannot start: failed to {0}")]
    Connect(#[from] ConnectError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The handlers of SIGINT, SIGTERM and SIGHUP could not be installed: without them a
    /// signal would kill the run without cleaning up or writing its record.
    #[error("cannot start: failed to listen for interrupting signals: {0}")]
    Signals(std::io::Error),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    /// ONC's deployments could not be consulted (ONC unreachable, a strange answer): nothing
    /// was ordered.
    #[error("cannot start: failed to check the plan against ONC's deployments: {0}")]
    Discovery(crate::onc::OncError),
    #[error(
        "cannot start: about {} to download does not fit the {} free on the file system of the cache {}; free some space, choose another --cache-dir, or run with --force",
        crate::report::estimate::bytes_text(*needed_bytes),
        crate::report::estimate::bytes_text(*free_bytes),
        cache.display()
    )]
    NoRoom {
        cache: std::path::PathBuf,
        needed_bytes: u64,
        free_bytes: u64,
    },
    /// ONC refused the token (401), at the first answer: the run stopped there. Whatever asked
    /// (the executor, discovery before it) reports this one error, never one per node.
    #[error(
        "cannot start: ONC refused the token ({0}): set ONC_TOKEN, or put `ONC_TOKEN=...` in a .env file, to your token (copy it from your ONC profile, https://data.oceannetworks.ca/Profile, tab \"Web Services API\"); nothing else was sent to ONC"
    )]
    TokenRejected(TokenRejected),
    /// A folder the run writes to cannot be created or written, found before any request.
    #[error(
        "cannot start: the {folder} cannot be used ({problem}); make it writable or {}",
        .folder.remedy()
    )]
    Unwritable {
        folder: Folder,
        problem: LocalProblem,
    },
    /// A folder's file system is (nearly) full at start, found before any request.
    #[error(
        "cannot start: the {folder} {} has {} free, less than the {} a run needs at the least; free some space or {}",
        .path.display(), mib(*.free), mib(*.needed), .folder.remedy()
    )]
    NoSpace {
        folder: Folder,
        path: PathBuf,
        free: u64,
        needed: u64,
    },
    /// `gc` cannot collect (its own exit code: 2 for what was asked, 3 for what is missing).
    #[error("{0}")]
    Gc(crate::housekeeping::GcError),
}

/// A folder a run writes to, as named to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// Where outputs go (`output.dir`, `--output-dir`).
    Output,
    /// The cache (`output.cache`, `--cache-dir`).
    Cache,
}

impl Folder {
    /// How to point the run elsewhere.
    fn remedy(self) -> &'static str {
        match self {
            Folder::Output => "choose another (`--output-dir`, or `output.dir` in the manifest)",
            Folder::Cache => "choose another (`--cache-dir`, or `output.cache` in the manifest)",
        }
    }
}

impl std::fmt::Display for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Folder::Output => "output folder",
            Folder::Cache => "cache folder",
        })
    }
}

/// Bytes as MiB for messages, one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

impl Error {
    /// The exit code this error means.
    pub fn process_exit_code(&self) -> i32 {
        match self {
            Error::Invalid(_)
            | Error::InvalidArgument(_)
            | Error::InvalidShard(_)
            | Error::ShareRefused { .. } => EXIT_INVALID,
            Error::OpenCache(_)
            | Error::StoreRefused(_)
            | Error::CacheBusy(_)
            | Error::Connect(_)
            | Error::Runtime(_)
            | Error::Signals(_)
            | Error::Listen { .. }
            | Error::Output(_)
            | Error::Discovery(_)
            | Error::NoRoom { .. }
            | Error::TokenRejected(_)
            | Error::Unwritable { .. }
            | Error::NoSpace { .. }
            | Error::NotFetched { .. } => EXIT_CANNOT_START,
            Error::Gc(error) => error.exit_code(),
        }
    }
}
