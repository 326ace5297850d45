//! Claims on ONC nodes in the store: which run, on which machine, orders which ONC node.
//!
//! Input: a node key and this run's [`Holder`]. Output: [`ClaimAttempt`] — held (possibly taken
//! over from a dead run, with the ONC ids its journal had reached), or busy with who holds it.
//! Errors: [`RemoteError`] when the store refuses or cannot be reached.
//!
//! A claim is the object `claims-v1/<node key>.json`, created with create-if-absent (one
//! creator wins however many race), carrying the holder, its lease and, once ONC has answered,
//! the journal entry (dpRequestId, dpRunId). A live run renews it by compare-and-swap every
//! third of the lease; it is deleted when the node's records are in the store. A run that meets
//! a claim waits and polls; it takes the claim over, by compare-and-swap so only one taker
//! wins, when
//! * the holder wrote from this very cache folder: this run holds the folder's OS lock on the
//!   node, so that holder is dead (a killed shard re-run on its machine re-attaches at once), or
//! * the claim has not changed for a whole lease, measured on this run's own clock, so that the
//!   machines' clocks never need to agree (Bazel's and DVC's users' worst bugs are stale locks
//!   judged by timestamps written by another machine).
//!
//! The taker writes the claim's journal entry into its own journal, and the executor then
//! re-attaches to the dead run's ONC request instead of submitting it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Created, Remote, RemoteError};
use crate::cache::JournalEntry;

/// Folder of claims in the store.
pub const CLAIMS_PREFIX: &str = "claims-v1";

/// Who holds a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The id of the local cache folder the run uses ([`crate::cache::Cache::cache_id`]).
    pub cache_id: String,
    /// RFC 3339 UTC start of the claim, for messages.
    pub since: String,
}

impl Holder {
    /// "pid 1234 on node17 since …", for messages.
    pub fn describe(&self) -> String {
        format!("pid {} on {} since {}", self.pid, self.host, self.since)
    }
}

/// The claim object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub node: String,
    pub holder: Holder,
    /// How long the claim lives unrenewed, in ms.
    pub lease_ms: u64,
    /// Renewals so far: every renewal changes the object, which is what waiters watch.
    pub renewals: u64,
    /// The submission ONC accepted, once it has (token-free, like the journal).
    pub journal: Option<JournalEntry>,
}

/// The outcome of a claim attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimAttempt {
    /// This run holds the node. `taken_over` carries the journal entry of a dead holder's
    /// submission, when it had reached ONC.
    Held { taken_over: Option<JournalEntry> },
    /// Another live run holds it: who.
    Busy(String),
}

/// A claim this run holds in the store; released (deleted, or left to expire when the node's
/// submission is still journaled) when dropped.
#[derive(Debug)]
pub struct RemoteClaim {
    pub(crate) remote: Arc<Remote>,
    pub(crate) node: String,
    /// The local journal entry's path: if it still exists at release, the node's ONC
    /// submission is in flight and the claim is left (unrenewed) for a taker to re-attach.
    pub(crate) journal: std::path::PathBuf,
}

impl Drop for RemoteClaim {
    fn drop(&mut self) {
        let keep = self.journal.exists();
        self.remote.release(&self.node, keep);
    }
}

/// The claims this run holds and the ones it watches.
#[derive(Debug, Default)]
pub(crate) struct ClaimBook {
    held: Mutex<HashMap<String, HeldClaim>>,
    /// Claims of others as last seen: their version and since when it has not changed.
    watched: Mutex<HashMap<String, (Option<String>, Instant)>>,
    renewing: std::sync::OnceLock<()>,
    /// On a `file://` store: the OS locks held, by node.
    locks: Mutex<HashMap<String, std::fs::File>>,
    /// Held while a claim is rewritten (see [`Remote::rewrite`]).
    rewriting: Mutex<()>,
}

#[derive(Debug, Clone)]
struct HeldClaim {
    record: ClaimRecord,
    version: object_store::UpdateVersion,
}

fn claim_key(node: &str) -> String {
    format!("{CLAIMS_PREFIX}/{node}.json")
}

fn version_text(version: &object_store::UpdateVersion) -> Option<String> {
    version.e_tag.clone().or_else(|| version.version.clone())
}

impl Remote {
    /// Tries to claim `node` for `me`. Call it while holding the local cache's OS lock on the
    /// node: a claim written from the same cache folder is then known to be dead.
    pub fn try_claim(
        self: &Arc<Self>,
        node: &str,
        me: &Holder,
    ) -> Result<ClaimAttempt, RemoteError> {
        let key = claim_key(node);
        if let Some(folder) = &self.lock_folder {
            return self.try_claim_by_lock(folder, node, me);
        }
        let record = ClaimRecord {
            node: node.to_owned(),
            holder: me.clone(),
            lease_ms: u64::try_from(self.lease().as_millis()).unwrap_or(u64::MAX),
            renewals: 0,
            journal: None,
        };
        // A claim seen busy before is read first: a waiting run then costs the store one
        // read per poll, not a refused write and a read.
        let watched = self
            .claims
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(node);
        // A claim deleted between our create and our read: try again, a few times.
        for attempt in 0..4 {
            if !(watched && attempt == 0)
                && let Created::New(version) = self.put_create(&key, json(&record))?
            {
                self.hold(node, record, version);
                return Ok(ClaimAttempt::Held { taken_over: None });
            }
            let Some((bytes, version)) = self.get(&key)? else {
                continue;
            };
            let theirs: Option<ClaimRecord> = serde_json::from_slice(&bytes).ok();
            let stale = match &theirs {
                // Same cache folder: we hold its lock on the node, so that run is dead.
                // (The host too: a folder copied to another machine carries the same id.)
                Some(theirs)
                    if theirs.holder.cache_id == me.cache_id && theirs.holder.host == me.host =>
                {
                    true
                }
                // Judged by the lease its holder promised to renew within (it knew ONC's pace;
                // this run may not yet), or this run's own when the claim is unreadable.
                Some(theirs) => self.unchanged_for(
                    node,
                    &version,
                    Duration::from_millis(theirs.lease_ms).max(Duration::from_millis(100)),
                ),
                None => self.unchanged_for(node, &version, self.lease()),
            };
            if !stale {
                let who = theirs.map_or_else(
                    || "another run (its claim is unreadable)".to_owned(),
                    |t| t.holder.describe(),
                );
                return Ok(ClaimAttempt::Busy(who));
            }
            let taken_over = theirs.and_then(|t| t.journal);
            let mine = ClaimRecord {
                journal: taken_over.clone(),
                ..record.clone()
            };
            match self.put_update(&key, json(&mine), version)? {
                Some(version) => {
                    self.hold(node, mine, version);
                    return Ok(ClaimAttempt::Held { taken_over });
                }
                // Another taker won the swap: it is the holder now.
                None => return Ok(ClaimAttempt::Busy("another run that took it over".into())),
            }
        }
        Ok(ClaimAttempt::Busy(
            "another run (the claim keeps changing)".into(),
        ))
    }

    /// A claim on a `file://` store: the OS lock of `claims-v1/<node>.lock` in its folder (the
    /// folder cache's claim, on the shared file system), with the record beside it carrying
    /// the journal. The lock dies with its holder, so a record found under a free lock is a
    /// dead run's, taken over with its journal.
    fn try_claim_by_lock(
        self: &Arc<Self>,
        folder: &std::path::Path,
        node: &str,
        me: &Holder,
    ) -> Result<ClaimAttempt, RemoteError> {
        let failed = |reason: String| RemoteError::Setup {
            url: self.url.clone(),
            reason,
        };
        let dir = folder.join(CLAIMS_PREFIX);
        std::fs::create_dir_all(&dir)
            .map_err(|e| failed(format!("create {}: {e}", dir.display())))?;
        let path = dir.join(format!("{node}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| failed(format!("open {}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let who = self
                    .get(&claim_key(node))?
                    .and_then(|(bytes, _)| serde_json::from_slice::<ClaimRecord>(&bytes).ok())
                    .map_or_else(|| "another run".to_owned(), |t| t.holder.describe());
                return Ok(ClaimAttempt::Busy(who));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(failed(format!("lock {}: {e}", path.display())));
            }
        }
        let taken_over = self
            .get(&claim_key(node))?
            .and_then(|(bytes, _)| serde_json::from_slice::<ClaimRecord>(&bytes).ok())
            .and_then(|theirs| theirs.journal);
        let record = ClaimRecord {
            node: node.to_owned(),
            holder: me.clone(),
            lease_ms: 0,
            renewals: 0,
            journal: taken_over.clone(),
        };
        self.put_overwrite(&claim_key(node), json(&record))?;
        self.claims
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_owned(), file);
        self.claims
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                node.to_owned(),
                HeldClaim {
                    record,
                    version: object_store::UpdateVersion {
                        e_tag: None,
                        version: None,
                    },
                },
            );
        Ok(ClaimAttempt::Held { taken_over })
    }

    /// Whether the claim on `node` has stayed at `version` for a whole `lease` since this run
    /// first saw it there.
    fn unchanged_for(
        &self,
        node: &str,
        version: &object_store::UpdateVersion,
        lease: Duration,
    ) -> bool {
        let seen = version_text(version);
        let mut watched = self
            .claims
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let entry = watched
            .entry(node.to_owned())
            .or_insert((seen.clone(), now));
        if entry.0 != seen || seen.is_none() {
            *entry = (seen, now);
            return false;
        }
        now.duration_since(entry.1) >= lease
    }

    fn hold(
        self: &Arc<Self>,
        node: &str,
        record: ClaimRecord,
        version: object_store::UpdateVersion,
    ) {
        self.claims
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(node.to_owned(), HeldClaim { record, version });
        self.claims
            .watched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(node);
        self.start_renewing();
    }

    /// Puts the journal entry of `node`'s submission into its claim (when this run holds it),
    /// so that a run on another machine can re-attach if this one dies.
    pub fn note_journal(&self, node: &str, entry: &JournalEntry) -> Result<(), RemoteError> {
        self.rewrite(node, |record| record.journal = Some(entry.clone()))
    }

    /// Rewrites `node`'s claim (renewing it, with `change` applied) by compare-and-swap on the
    /// version this run last wrote. Rewrites are serialised, so a renewal and a journal update
    /// never race each other's versions. A lost swap means another run took the claim over
    /// (this one stalled for a whole lease): it is dropped from the held claims.
    fn rewrite(
        &self,
        node: &str,
        change: impl FnOnce(&mut ClaimRecord),
    ) -> Result<(), RemoteError> {
        let _turn = self
            .claims
            .rewriting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The change goes into the held record first: if the write fails, the next renewal
        // carries it (a journal entry must reach the store even when one write does not).
        let Some(mut held) = self
            .claims
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(node)
            .map(|held| {
                change(&mut held.record);
                held.clone()
            })
        else {
            return Ok(());
        };
        held.record.renewals += 1;
        let key = claim_key(node);
        let outcome = if self.lock_folder.is_some() {
            // The OS lock makes this run the only writer.
            self.put_overwrite(&key, json(&held.record))?;
            Some(held.version.clone())
        } else {
            self.put_update(&key, json(&held.record), held.version.clone())?
        };
        let mut book = self
            .claims
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match outcome {
            Some(version) => {
                if book.contains_key(node) {
                    book.insert(
                        node.to_owned(),
                        HeldClaim {
                            record: held.record,
                            version,
                        },
                    );
                }
            }
            None => {
                book.remove(node);
            }
        }
        Ok(())
    }

    /// Stops renewing `node`'s claim; deletes it unless `keep` (its submission is in flight:
    /// left to expire, so a taker re-attaches with the ids it carries).
    pub(crate) fn release(&self, node: &str, keep: bool) {
        let held = self
            .claims
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(node);
        if let Some(held) = held
            && !keep
        {
            // Only a claim that still names this run: one taken over meanwhile is another
            // run's. Best effort: a claim left behind only costs a waiter one lease.
            let key = claim_key(node);
            let ours = match self.get(&key) {
                Ok(Some((bytes, _))) => serde_json::from_slice::<ClaimRecord>(&bytes)
                    .is_ok_and(|record| record.holder == held.record.holder),
                _ => false,
            };
            if ours {
                let _ = self.delete(&key);
            }
        }
        // A `file://` claim's lock goes last, after its record.
        let lock = self
            .claims
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(node);
        if let Some(lock) = lock {
            let _ = lock.unlock();
        }
    }

    /// Starts the thread that renews held claims every third of the lease (once per remote).
    fn start_renewing(self: &Arc<Self>) {
        if self.claims.renewing.set(()).is_err() {
            return;
        }
        let weak: Weak<Remote> = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("onc-pipe-claims".into())
            .spawn(move || {
                loop {
                    let every = match weak.upgrade() {
                        Some(remote) => (remote.lease() / 3).max(Duration::from_millis(10)),
                        None => return,
                    };
                    std::thread::sleep(every);
                    let Some(remote) = weak.upgrade() else { return };
                    let held: Vec<String> = remote
                        .claims
                        .held
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .keys()
                        .cloned()
                        .collect();
                    for node in held {
                        // A failed renewal is retried at the next beat; a lease is three beats.
                        let _ = remote.rewrite(&node, |_| {});
                    }
                }
            });
        if spawned.is_err() {
            // No thread, no renewal: claims then expire after a lease and may be taken over
            // while this run still works — a duplicate order at worst, never a wrong result.
            let _ = self.claims.renewing.get();
        }
    }
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}
