//! `onc-pipe cancel FILE`: cancels at ONC the manifest's runs still in flight (those in the
//! cache's journal) and clears them from the journal, so ONC stops working on what nobody will
//! collect and the next `run` submits afresh.
//!
//! Input: a prepared manifest. Output: one [`Cancelled`] per journaled request, with what ONC
//! said. Errors: the cache cannot be opened or a run holds it (a running `run` would see its
//! runs cancelled under it: stop it first), no token, ONC refusing the token. A request ONC no
//! longer knows, or already cancelled, is cleared from the journal all the same; one ONC could
//! not be asked about (network) stays journaled, and the command exits 1.

use crate::cache::Cache;
use crate::dag::{NodeKind, describe};
use crate::error::Error;
use crate::onc::{OncError, SIMULATOR};

use super::{Prepared, connect_options};

/// What became of one journaled request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cancelled {
    /// The node's key, short (12 hex).
    pub node: String,
    pub what: String,
    pub dp_request_id: u64,
    pub dp_run_id: Option<u64>,
    /// `cancelled` (ONC cancelled it), `gone` (ONC no longer knows it, or it had ended: only
    /// cleared), `kept` (ONC could not be asked; still journaled).
    pub outcome: &'static str,
    /// ONC's answer or the error, for people.
    pub detail: String,
}

impl Cancelled {
    fn of(
        key: crate::dag::NodeKey,
        what: String,
        entry: &crate::cache::JournalEntry,
        outcome: &'static str,
        detail: String,
    ) -> Self {
        Cancelled {
            node: key.short(),
            what,
            dp_request_id: entry.dp_request_id,
            dp_run_id: entry.dp_run_id,
            outcome,
            detail,
        }
    }
}

/// Cancels the manifest's journaled runs (see the module doc).
pub fn cancel(prepared: &Prepared) -> Result<Vec<Cancelled>, Error> {
    if !prepared.cache_dir.is_dir() {
        return Ok(Vec::new());
    }
    let cache = Cache::open(&prepared.cache_dir).map_err(Error::OpenCache)?;
    // Alone on the cache: a run in progress polls these runs and would fail on them.
    let _lock = cache.lock().map_err(Error::CacheBusy)?;
    let (checked, _) = super::check_deployments_now(prepared, true, Some(&cache))?;
    let settings = &checked.compiled.plan.settings;
    let mut journaled = Vec::new();
    for node in checked
        .compiled
        .dag
        .nodes()
        .filter(|node| node.kind == NodeKind::ProductRequest)
    {
        if let Ok(Some(entry)) = cache.journal_read(&node.key.to_hex())
            && entry.base_url == settings.base_url
        {
            journaled.push((node.key, describe(node), entry));
        }
    }
    if journaled.is_empty() {
        return Ok(Vec::new());
    }
    let mut done = Vec::new();
    // The in-process simulator's runs ended with the process that started them.
    if settings.base_url == SIMULATOR {
        for (key, what, entry) in journaled {
            let _ = cache.journal_remove(&key.to_hex());
            let detail = "the in-process simulator's runs end with the run that started them";
            done.push(Cancelled::of(key, what, &entry, "gone", detail.into()));
        }
        return Ok(done);
    }
    let token = crate::config::find_token()?;
    let client = crate::onc::connect(&connect_options(settings), token)?;
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    for (key, what, entry) in journaled {
        let answer = runtime.block_on(client.cancel(entry.dp_request_id));
        let (outcome, detail) = match answer {
            Ok(runs) => {
                let statuses: Vec<String> = runs.iter().map(|run| run.status.clone()).collect();
                ("cancelled", format!("ONC: {}", statuses.join(", ")))
            }
            Err(error) => {
                if let Some(rejected) = error.token_rejected() {
                    return Err(Error::TokenRejected(rejected));
                }
                let gone = match &error {
                    // ONC answered: it does not know the request, or it cannot be cancelled
                    // (ended, already cancelled). Nothing to collect either way.
                    OncError::Onc { .. } | OncError::CancelledRun { .. } => true,
                    OncError::Http { status, .. } => (400..500).contains(status),
                    _ => false,
                };
                (if gone { "gone" } else { "kept" }, error.to_string())
            }
        };
        if outcome != "kept" {
            let _ = cache.journal_remove(&key.to_hex());
        }
        done.push(Cancelled::of(key, what, &entry, outcome, detail));
    }
    Ok(done)
}
