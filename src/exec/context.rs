//! What every job of a run shares: the client, the cache, the limits, the event channel, the
//! cancellation signal, the run's counters, the file claims and the coverage memo.
//!
//! Input: built once by the scheduler. Output: [`Context`] and its helpers (events, permits,
//! cancellable sleeps, coverage read once per run and kept current, ONC calls through the
//! first-answer gate). Errors: reading or recording coverage, as text for the node's failure; a
//! refused token stops the whole run (recorded once, every job ends interrupted).

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};

use super::error::ExecError;
use super::events::Event;
use super::stats::{RunStats, StatsKeeper, Update};
use crate::cache::{Cache, CoverageEntry};
use crate::onc::error::TokenRejected;
use crate::onc::{OncClient, OncError};

use super::admission::Admission;
use super::claims::FileClaims;
use super::download::SharedEdges;
use super::job::JobError;
use super::limits::Limits;
use crate::dag::NodeKey;
use onc_format::query::OncQuery;

/// What a job needs, shared.
pub(super) struct Context {
    pub(super) client: OncClient,
    pub(super) cache: Cache,
    pub(super) limits: Limits,
    /// How many runs may be at ONC at once, found from its answers.
    pub(super) admission: Admission,
    pub(super) output_dir: PathBuf,
    pub(super) events: mpsc::UnboundedSender<Update>,
    /// True once the run stops scheduling: Ctrl-C (forwarded by the scheduler) or a refused token.
    pub(super) cancel: watch::Receiver<bool>,
    /// Stops the run from inside (a refused token); the sender of `cancel`.
    pub(super) stop: watch::Sender<bool>,
    /// ONC's first refusal of the token, which stopped the run.
    pub(super) rejected: OnceLock<TokenRejected>,
    /// The run's statistics, counted from the events as they are sent.
    pub(super) stats: std::sync::Mutex<StatsKeeper>,
    pub(super) base_url: String,
    /// Which job downloads which file, so each file is transferred once per run.
    pub(super) claims: FileClaims,
    /// Coverage by source identity, read once per run (see [`Context::coverage`]).
    pub(super) coverages: std::sync::Mutex<HashMap<String, Arc<crate::cache::Coverage>>>,
    /// Spectrogram files decoded by clips, shared by the clips of the run.
    pub(super) decoded: Arc<crate::clip::cut::DecodedFiles>,
    /// The window of every data product request of the whole DAG (every shard's), by source
    /// identity, for [`Context::shared_edges`].
    pub(super) product_windows: HashMap<String, Vec<(NodeKey, i64, i64)>>,
}

impl Context {
    /// Counts an event and sends it with the statistics it leads to. Counting and sending
    /// happen under one lock, so the reporter sees the statistics in the order they changed.
    pub(super) fn emit(&self, event: Event) {
        let mut keeper = self
            .stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keeper.apply(&event);
        let stats = keeper.stats();
        let _ = self.events.send(Update { event, stats });
    }

    /// The statistics so far.
    pub(super) fn stats(&self) -> RunStats {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .stats()
    }

    pub(super) fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    /// The coverage of `identity`, read from the cache once per run and kept current by
    /// [`Context::record_coverage`]. Reading it from disk per job made a no-op re-run of 834
    /// requests (10,000 files) read 834 × 834 JSON files: a minute instead of a fraction of a
    /// second.
    pub(super) fn coverage(
        &self,
        identity: &str,
    ) -> Result<Arc<crate::cache::Coverage>, ExecError> {
        let lock = || {
            self.coverages
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(coverage) = lock().get(identity) {
            return Ok(Arc::clone(coverage));
        }
        let loaded = Arc::new(
            self.cache
                .coverage(identity)
                .map_err(|error| ExecError::cache("read the cache", error))?,
        );
        Ok(Arc::clone(
            lock().entry(identity.to_owned()).or_insert(loaded),
        ))
    }

    /// The coverage of `identity` read from the cache again, replacing this run's view: another
    /// run sharing the cache may have recorded queries since it was read.
    pub(super) fn reload_coverage(
        &self,
        identity: &str,
    ) -> Result<Arc<crate::cache::Coverage>, ExecError> {
        let loaded = Arc::new(
            self.cache
                .coverage(identity)
                .map_err(|error| ExecError::cache("read the cache", error))?,
        );
        self.coverages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(identity.to_owned(), Arc::clone(&loaded));
        Ok(loaded)
    }

    /// Records a completed query on disk (on a blocking thread: it fsyncs), then in this run's
    /// view of the coverage.
    pub(super) async fn record_coverage(
        &self,
        identity: &str,
        entry: &CoverageEntry,
    ) -> Result<(), ExecError> {
        let (cache, id, written) = (self.cache.clone(), identity.to_owned(), entry.clone());
        super::job::blocking(move || {
            cache
                .record_coverage(&id, &written)
                .map_err(|error| ExecError::cache("record the results", error))
        })
        .await?;
        let mut coverages = self
            .coverages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(coverage) = coverages.get_mut(identity) {
            Arc::make_mut(coverage).add(entry.clone());
        }
        Ok(())
    }

    /// A permit of one of the limits' semaphores; `Interrupted` once the run is being
    /// cancelled (checked after the wait, which may have been long).
    pub(super) async fn permit<'a>(
        &self,
        semaphore: &'a Semaphore,
    ) -> Result<tokio::sync::SemaphorePermit<'a>, JobError> {
        let permit = semaphore
            .acquire()
            .await
            .map_err(|_| JobError::Interrupted)?;
        if self.cancelled() {
            return Err(JobError::Interrupted);
        }
        Ok(permit)
    }

    /// Makes one ONC call through the first-answer gate (see [`super::limits::FirstAnswer`]).
    /// A 401 stops the run: the refusal is recorded (the first one only), scheduling stops as
    /// on Ctrl-C, and the job ends interrupted rather than failed, so the run reports one
    /// refused token, not one failure per node. `call` is not started until the gate lets it.
    pub(super) async fn onc<T>(
        &self,
        call: impl Future<Output = Result<T, OncError>>,
    ) -> Result<T, JobError> {
        let gate = &self.limits.first_answer;
        let result = if gate.is_open() {
            call.await
        } else {
            let _turn = gate.turn.lock().await;
            // The call before this one may have been refused (or Ctrl-C pressed meanwhile).
            if self.cancelled() {
                return Err(JobError::Interrupted);
            }
            let result = call.await;
            if !matches!(&result, Err(error) if error.token_rejected().is_some()) {
                gate.open();
            }
            result
        };
        match result {
            Ok(value) => Ok(value),
            Err(error) => match error.token_rejected() {
                Some(rejected) => {
                    let _ = self.rejected.set(rejected);
                    self.stop.send_replace(true);
                    Err(JobError::Interrupted)
                }
                None => Err(JobError::Failed(error.into())),
            },
        }
    }

    /// Which edges of `query`'s window (job `key`'s request) another request of the DAG for the
    /// same source comes near: the files there may be fetched by either (see [`SharedEdges`]).
    pub(super) fn shared_edges(
        &self,
        identity: &str,
        key: NodeKey,
        query: &OncQuery,
    ) -> SharedEdges {
        let others: Vec<(i64, i64)> = self
            .product_windows
            .get(identity)
            .into_iter()
            .flatten()
            .filter(|(other, _, _)| *other != key)
            .map(|&(_, from, to)| (from, to))
            .collect();
        SharedEdges::of(query.from_ms(), query.to_ms(), &others)
    }

    /// Sleeps, returning early (false) when the run is cancelled.
    pub(super) async fn sleep(&self, duration: Duration) -> bool {
        let mut cancel = self.cancel.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            _ = cancel.wait_for(|stop| *stop) => false,
        }
    }
}
