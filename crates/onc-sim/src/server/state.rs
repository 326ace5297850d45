//! The simulator's state and its running server.
//!
//! Input: a [`SimConfig`] and a bind address ([`start`]). Output: a [`SimHandle`] (base URL,
//! [`SimStats`], stop), and the state every route reads and changes behind one lock ([`Shared`]):
//! configuration, the data product requests held (each with the [`Output`] files its run
//! delivers), the run model, accounting (global and per token, see [`TokenStats`]) and the
//! generated-file cache.
//! Errors: only binding the port can fail.
//!
//! Tokens are secrets: per-token accounting is keyed by [`token_label`], a short blake3 label,
//! so the stats a test prints or `/_sim/stats` serves never carry a token.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use chrono::DateTime;
use serde::Serialize;

use super::router::handle;
use crate::archive::ArchiveFile;
use crate::config::SimConfig;
use crate::runs::RunModel;
use crate::{mat, picture};
use onc_format::stamp::compact_date;

/// Request counts and volumes, for tests that prove politeness and caching.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct SimStats {
    /// Every HTTP request, stats excluded.
    pub requests_total: u64,
    /// Per endpoint, e.g. `dataProductDelivery/run`.
    pub requests_by_endpoint: BTreeMap<String, u64>,
    /// Successful data product `request` calls.
    pub submissions: u64,
    /// Submissions identical (device, window, product, options) to an earlier one.
    pub duplicate_submissions: u64,
    /// Runs started by a first `run` call.
    pub runs: u64,
    pub files_served: u64,
    pub bytes_served: u64,
    pub faults_injected: u64,
    /// Whole files (no fault injected) served again under a name already served whole: a
    /// client transferring a file twice.
    pub files_served_again: u64,
    /// The names behind `files_served_again`, in the order served again, so a failing test
    /// says which file a client fetched twice.
    #[serde(default)]
    pub names_served_again: Vec<String>,
    /// HEAD answers that named a file without sending it (a client learning which file an
    /// index holds before deciding to transfer it).
    #[serde(default)]
    pub files_named_by_head: u64,
    /// The most runs of one token queued or running at ONC at once.
    pub max_runs_in_flight: u64,
    /// The shortest time between two submissions (`request` calls) of one token, in simulated
    /// seconds; `None` before the second.
    pub min_submission_gap_s: Option<f64>,
    /// `restart` calls that restarted a run.
    pub restarts: u64,
    /// The most file downloads in flight at once, over all tokens: from the file answer's start
    /// until its body is sent or its connection dropped.
    #[serde(default)]
    pub max_downloads_in_flight: u64,
    /// The same accounting per token, keyed by [`token_label`] (never the token itself), so a
    /// test can prove each token polite on its own.
    #[serde(default)]
    pub per_token: BTreeMap<String, TokenStats>,
}

/// Politeness accounting of one token (see [`SimStats::per_token`]).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct TokenStats {
    /// Successful data product `request` calls of this token.
    pub submissions: u64,
    /// The most runs of this token queued or running at ONC at once.
    pub max_runs_in_flight: u64,
    /// The most file downloads of this token in flight at once.
    pub max_downloads_in_flight: u64,
    /// The shortest time between two submissions of this token, in simulated seconds; `None`
    /// before its second.
    pub min_submission_gap_s: Option<f64>,
}

/// The key of `token` in [`SimStats::per_token`]: the first 8 hex digits of its blake3 hash.
/// Short enough to read in a test's output, and no secret: the token cannot be recovered.
pub fn token_label(token: &str) -> String {
    let hex = blake3::hash(token.as_bytes()).to_hex();
    hex.as_str().get(..8).unwrap_or_default().to_owned()
}

/// One file a run delivers.
#[derive(Debug, Clone)]
pub(crate) enum Output {
    Mat {
        file: ArchiveFile,
        downsample: u8,
        diversion: Option<String>,
    },
    Png {
        file: ArchiveFile,
    },
    Audio {
        file: ArchiveFile,
        extension: String,
    },
}

impl Output {
    pub(crate) fn filename(&self) -> String {
        match self {
            Output::Mat {
                file,
                downsample,
                diversion,
            } => mat::hsd_mat_filename(file, *downsample, diversion.as_deref()),
            Output::Png { file } => picture::hsd_png_filename(file),
            Output::Audio { file, extension } => audio_product_filename(file, extension),
        }
    }
}

/// Audio data product name: start and end, as ONC names AD files.
fn audio_product_filename(file: &ArchiveFile, extension: &str) -> String {
    let start = DateTime::from_timestamp_millis(file.start_ms).unwrap_or_default();
    let end = DateTime::from_timestamp_millis(file.end_ms()).unwrap_or_default();
    format!(
        "{}_{}_{}.{extension}",
        file.device,
        compact_date(start),
        compact_date(end)
    )
}

#[derive(Debug, Clone)]
pub(crate) struct RequestRecord {
    pub(crate) token: String,
    pub(crate) outputs: Vec<Output>,
    pub(crate) run_id: Option<u64>,
    pub(crate) run_index: Option<usize>,
    pub(crate) fails: bool,
    pub(crate) work_s: f64,
    /// Submission number, for the fault draws of later attempts (restarts).
    pub(crate) submission: u64,
    /// Restarts so far.
    pub(crate) restarts: u64,
    /// ONC removed this run's files early (the `expire` fault): downloads answer 410.
    pub(crate) expired_early: bool,
}

pub(crate) struct Inner {
    pub(crate) config: SimConfig,
    pub(crate) started: Instant,
    pub(crate) next_request_id: u64,
    pub(crate) next_run_id: u64,
    pub(crate) requests: HashMap<u64, RequestRecord>,
    pub(crate) run_to_request: HashMap<u64, u64>,
    pub(crate) seen_submissions: HashMap<String, u64>,
    /// Names of files served whole, for `files_served_again`.
    pub(crate) served_names: std::collections::HashSet<String>,
    /// Per token: when it last submitted, in simulated seconds.
    pub(crate) last_submission: HashMap<String, f64>,
    pub(crate) model: RunModel,
    pub(crate) stats: SimStats,
    pub(crate) counter: u64,
    /// Generated file bytes, most recent last; bounded by `cache_bytes`.
    pub(crate) cache: VecDeque<(String, Arc<Vec<u8>>)>,
    pub(crate) cache_bytes: usize,
    /// File downloads in flight now: all, and per token label (see `files::DownloadGuard`).
    pub(crate) downloads_in_flight: u64,
    pub(crate) token_downloads_in_flight: HashMap<String, u64>,
}

impl Inner {
    /// Notes the runs `token` has at ONC now, for the high-water mark.
    pub(crate) fn note_runs_in_flight(&mut self, token: &str, now: f64) {
        let in_flight = self.model.in_flight(token, now) as u64;
        self.stats.max_runs_in_flight = self.stats.max_runs_in_flight.max(in_flight);
        let own = self.token_stats(token);
        own.max_runs_in_flight = own.max_runs_in_flight.max(in_flight);
    }

    /// The accounting of `token`, created empty on its first use.
    pub(crate) fn token_stats(&mut self, token: &str) -> &mut TokenStats {
        self.stats.per_token.entry(token_label(token)).or_default()
    }

    /// Simulated seconds since start.
    pub(crate) fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64() / self.config.time_scale.max(1e-9)
    }
}

pub(crate) type Shared = Arc<Mutex<Inner>>;

/// A running simulator.
pub struct SimHandle {
    pub base_url: String,
    pub address: SocketAddr,
    shared: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// A copy of the request accounting.
    pub fn stats(&self) -> SimStats {
        self.shared
            .lock()
            .map(|inner| inner.stats.clone())
            .unwrap_or_default()
    }

    /// File downloads in flight now (0 once every body was sent or its connection dropped), so a
    /// test can wait for a dropped download to be let go before it measures the next.
    pub fn downloads_in_flight(&self) -> u64 {
        self.shared
            .lock()
            .map(|inner| inner.downloads_in_flight)
            .unwrap_or_default()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Where this instance's dpRequestIds and dpRunIds start above ONC-like bases: a different
/// place for every instance (the clock and the process id, in steps of a million ids). ONC
/// never hands out an id twice; a simulator restarted with the same ids would let a client's
/// journal from an earlier instance re-attach to another request that happens to have its id
/// (the in-process simulator of `base_url = "simulator"` starts anew with every run).
fn id_offset() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 20);
    // A million ids per instance, a million places: below 2^53, so JSON keeps them exact.
    (mixed % 1_000_000) * 1_000_000
}

/// Starts the simulator on `address` (port 0 = any free port) inside the current tokio runtime.
pub async fn start(config: SimConfig, address: SocketAddr) -> std::io::Result<SimHandle> {
    let shared: Shared = Arc::new(Mutex::new(Inner {
        model: RunModel::new(config.capacity),
        config,
        started: Instant::now(),
        next_request_id: 28_900_001 + id_offset(),
        next_run_id: 56_100_001 + id_offset(),
        requests: HashMap::new(),
        run_to_request: HashMap::new(),
        seen_submissions: HashMap::new(),
        served_names: std::collections::HashSet::new(),
        last_submission: HashMap::new(),
        stats: SimStats::default(),
        counter: 0,
        cache: VecDeque::new(),
        cache_bytes: 0,
        downloads_in_flight: 0,
        token_downloads_in_flight: HashMap::new(),
    }));
    let listener = tokio::net::TcpListener::bind(address).await?;
    let address = listener.local_addr()?;
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let (shutdown, on_shutdown) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = on_shutdown.await;
            })
            .await;
    });
    Ok(SimHandle {
        base_url: format!("http://{address}/"),
        address,
        shared,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

#[cfg(test)]
mod tests {
    // Test code panics on purpose: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn instances_started_apart_hand_out_different_ids() {
        let first = id_offset();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = id_offset();
        assert_ne!(first, second);
        assert_eq!(first % 1_000_000, 0);
        assert!(28_900_001 + first < 1 << 53);
    }

    #[test]
    fn a_token_label_is_8_hex_digits_stable_and_apart_from_the_token() {
        let token = "5e1f0c8a-test-token-9d2b";
        let label = token_label(token);
        assert_eq!(label.len(), 8);
        assert!(label.bytes().all(|b| b.is_ascii_hexdigit()), "{label}");
        assert_eq!(label, token_label(token));
        assert_ne!(label, token_label("5e1f0c8a-test-token-9d2c"));
        // Not the token's own first characters: those would be a part of the secret.
        assert_ne!(label, token[..8]);
    }

    #[test]
    fn stats_written_before_per_token_accounting_still_parse() {
        let old = r#"{"requests_total":3,"requests_by_endpoint":{},"submissions":1,
            "duplicate_submissions":0,"runs":1,"files_served":1,"bytes_served":10,
            "faults_injected":0,"files_served_again":0,"max_runs_in_flight":1,
            "min_submission_gap_s":null,"restarts":0}"#;
        let stats: SimStats = serde_json::from_str(old).unwrap();
        assert_eq!(stats.submissions, 1);
        assert_eq!(stats.max_downloads_in_flight, 0);
        assert!(stats.per_token.is_empty());
        // A token's entry missing fields parses too (`#[serde(default)]` on the struct).
        let entry: TokenStats = serde_json::from_str(r#"{"submissions":2}"#).unwrap();
        assert_eq!(entry.submissions, 2);
        assert_eq!(entry.min_submission_gap_s, None);
    }
}
