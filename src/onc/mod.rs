//! The ONC layer: the only code that knows ONC's URLs and JSON.
//!
//! Input: a [`ClientConfig`] (base URL, [`Token`], timeout, [`Backoff`]) and typed arguments.
//! Output: typed answers from [`OncClient`] — [`ProductRequest`], [`RunPoll`], [`RunInfo`],
//! [`DownloadOutcome`] / [`Downloaded`] (fsync'd temporary files with size and blake3),
//! [`ArchiveEntry`] lists, raw JSON for discovery.
//! Errors: [`OncError`], with ONC's own `errorMessage`/`parameter` when it sent them, and never
//! the token (see [`redact`]).
//!
//! Files: `client` (calls and the retry loop), `api` (serde types of ONC's JSON), `answers` (what
//! calls return), `error` (the layer's error), `retry` (the policy table),
//! `redact` (token hiding), `download` (streaming a body to a temporary file), `connect` (token
//! lookup and a client for a real server).

pub mod answers;
pub mod api;
pub mod client;
pub mod connect;
pub mod discovery;
pub mod download;
pub mod error;
pub mod redact;
pub mod retry;

pub use answers::{DownloadOutcome, Downloaded, FileIndex, RunPoll};
pub use api::{
    ArchiveEntry, OncErrorDetail, ProcessingEstimate, ProductRequest, RunInfo,
    parse_processing_estimate, parse_processing_time,
};
pub use client::{ClientConfig, DEFAULT_BASE_URL, OncClient};
pub use connect::{ConnectError, ConnectOptions, SIMULATOR, connect, find_token};
pub use discovery::DeploymentFilter;
pub use download::TEMP_PREFIX;
pub use error::OncError;
pub use redact::{Token, redact_text, redact_url};
pub use retry::{Backoff, Transience, classify_io, classify_status};

#[cfg(test)]
mod tests;
