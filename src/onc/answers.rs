//! What the client's calls answer, beyond ONC's JSON types (`api`): which file of a run to ask
//! for, a run's progress, a download's outcome and a downloaded file.
//!
//! Input: built by the client from ONC's answers. Output: plain values for the executor. No
//! errors here: they are [`super::OncError`]'s.

use std::path::PathBuf;

use super::api::RunInfo;

/// Which file of a data-product run to download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileIndex {
    /// 1-based index of a result file.
    Number(u32),
    /// The XML metadata file.
    Meta,
}

impl FileIndex {
    pub(crate) fn query_value(self) -> String {
        match self {
            FileIndex::Number(n) => n.to_string(),
            FileIndex::Meta => "meta".to_string(),
        }
    }
}

/// The answer to a `run` call (which is also how a run is polled).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPoll {
    /// HTTP 200 (complete) rather than 202 (queued or running).
    pub complete: bool,
    pub runs: Vec<RunInfo>,
}

/// What `dataProductDelivery/download` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// 200: the file, in a temporary file the caller renames.
    Ready(Downloaded),
    /// 202: not ready yet; ONC's `status` (`queued`, `running`, `error`) and progress `message`.
    NotReady { status: String, message: String },
    /// 204: no data in the window.
    NoData,
    /// 404: index past the last file (the normal end of the list).
    PastEnd,
    /// 410: deleted from ONC's FTP area; the request must be run again.
    Gone,
    /// 200, but the caller's `wanted` check declined the file ONC named: the body was not read.
    Skipped { filename: String },
    /// 200 to a HEAD ([`crate::onc::OncClient::name_product_file`]): the file ONC holds at that
    /// index, named without transferring it.
    Named { filename: String },
}

/// A downloaded file, complete and fsync'd, still under its temporary name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// `dir/.part-<random>`; the caller renames it (or deletes it).
    pub temp_path: PathBuf,
    /// From `Content-Disposition` (quoted or not), sanitised: no path separators, never `..`.
    pub filename: String,
    pub size: u64,
    /// Lowercase hex blake3 of the content.
    pub blake3: String,
}
