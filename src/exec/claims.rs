//! File claims: one download per source file per run, however many jobs need it.
//!
//! Input: (source identity, file name) pairs that jobs are about to download. Output: for the
//! first job, the right to download ([`Claim::Mine`]); for the others, the file once the first
//! has stored it ([`Claim::Theirs`]). Overlapping requests (ONC returns a file straddling a
//! request's edge to both neighbours) and overlapping archive windows therefore transfer each
//! file once. A claim dropped without a file (a failed download) lets the next job try.
//!
//! Across the runs sharing a cache (two people, shards at once), a file is also claimed in the
//! cache ([`Cache::try_claim_file`], an OS lock) and recorded there once stored: a job whose
//! file another process is fetching waits for that record instead of downloading it again.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::cache::{Cache, NodeClaim, StoredFile};

#[derive(Debug, Clone, PartialEq)]
enum State {
    Downloading,
    Stored(StoredFile),
    Abandoned,
}

type Name = (String, String);

/// Every claim made during one run.
#[derive(Debug, Default)]
pub(crate) struct FileClaims {
    claims: Mutex<HashMap<Name, watch::Sender<State>>>,
    /// The cache shared with other runs, when files are claimed across processes too.
    cache: Option<Cache>,
}

/// The answer to [`FileClaims::claim`].
pub(crate) enum Claim<'a> {
    /// Download it, then [`MyClaim::stored`].
    Mine(MyClaim<'a>),
    /// Someone else has it or is fetching it: [`TheirClaim::wait`].
    Theirs(TheirClaim),
}

/// The right to download one file; dropping it unfulfilled releases the file to others.
pub(crate) struct MyClaim<'a> {
    claims: &'a FileClaims,
    name: Name,
    fulfilled: bool,
    /// The file's claim among the processes sharing the cache, released after the record.
    _across_runs: Option<NodeClaim>,
}

/// Another job's claim.
pub(crate) struct TheirClaim {
    receiver: watch::Receiver<State>,
}

impl FileClaims {
    /// Claims `name` of `identity` unless another job already stored or is fetching it.
    pub(crate) fn claim(&self, identity: &str, name: &str) -> Claim<'_> {
        self.claim_with(identity, name, false)
    }

    /// [`Self::claim`] for a file another run is likely fetching too (one at a shared edge):
    /// once the claim is had, whether the file was stored meanwhile is looked at again. A run
    /// records a file before it releases its claim, so a look after taking the claim cannot
    /// miss it; the look before it can (the other run may store and release in between), and
    /// the file would be fetched twice. One more look (with a team store, one GET) per such
    /// file; other files, which only an overlapping manifest shares, are not looked at twice.
    pub(crate) fn claim_shared(&self, identity: &str, name: &str) -> Claim<'_> {
        self.claim_with(identity, name, true)
    }

    fn claim_with(&self, identity: &str, name: &str, look_again: bool) -> Claim<'_> {
        let key = (identity.to_owned(), name.to_owned());
        let mut claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = claims.get(&key)
            && *sender.borrow() != State::Abandoned
        {
            return Claim::Theirs(TheirClaim {
                receiver: sender.subscribe(),
            });
        }
        let mut across_runs = None;
        if let Some(cache) = &self.cache {
            if let Some(file) = cache.stored_file(identity, name) {
                let (sender, receiver) = watch::channel(State::Stored(file));
                claims.insert(key, sender);
                return Claim::Theirs(TheirClaim { receiver });
            }
            match cache.try_claim_file(identity, name) {
                Ok(Ok(claim)) => {
                    if look_again && let Some(file) = cache.stored_file(identity, name) {
                        drop(claim);
                        let (sender, receiver) = watch::channel(State::Stored(file));
                        claims.insert(key, sender);
                        return Claim::Theirs(TheirClaim { receiver });
                    }
                    across_runs = Some(claim);
                }
                Ok(Err(_holder)) => {
                    let (sender, receiver) = watch::channel(State::Downloading);
                    claims.insert(key.clone(), sender.clone());
                    tokio::spawn(wait_for_other_run(cache.clone(), key, sender));
                    return Claim::Theirs(TheirClaim { receiver });
                }
                // A claim file that cannot be had: download it anyway (at worst twice).
                Err(_) => {}
            }
        }
        claims.insert(key.clone(), watch::channel(State::Downloading).0);
        Claim::Mine(MyClaim {
            claims: self,
            name: key,
            fulfilled: false,
            _across_runs: across_runs,
        })
    }

    /// Claims that also hold each file across the processes sharing `cache`.
    pub(crate) fn across_runs(cache: Cache) -> Self {
        FileClaims {
            claims: Mutex::default(),
            cache: Some(cache),
        }
    }

    /// The file if a job of this run stored it.
    pub(crate) fn stored(&self, identity: &str, name: &str) -> Option<StoredFile> {
        let claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sender = claims.get(&(identity.to_owned(), name.to_owned()))?;
        match &*sender.borrow() {
            State::Stored(file) => Some(file.clone()),
            _ => None,
        }
    }

    fn set(&self, name: &Name, state: State) {
        let claims = self
            .claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = claims.get(name) {
            sender.send_replace(state);
        }
    }
}

impl MyClaim<'_> {
    /// The claimed file's name.
    pub(crate) fn name(&self) -> &str {
        &self.name.1
    }

    /// The file is in the store: hand it to everyone waiting.
    pub(crate) fn stored(mut self, file: &StoredFile) {
        self.fulfilled = true;
        if let Some(cache) = &self.claims.cache {
            // Best effort: without the record another run downloads the file again.
            let _ = cache.record_stored_file(&self.name.0, file);
        }
        self.claims.set(&self.name, State::Stored(file.clone()));
    }
}

impl Drop for MyClaim<'_> {
    fn drop(&mut self) {
        if !self.fulfilled {
            self.claims.set(&self.name, State::Abandoned);
        }
    }
}

/// Watches a file another process is downloading: its record once it appears, or
/// `Abandoned` when that process let go of it without one (failed, killed), so a job of this run
/// fetches it. Polls every 50 ms: a stat, and the claim's lock only when there is no record.
async fn wait_for_other_run(cache: Cache, name: Name, sender: watch::Sender<State>) {
    // With a team store each poll is a request or two: twice a second, not twenty times.
    let pause = if cache.remote().is_some() { 500 } else { 50 };
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        if sender.is_closed() {
            return;
        }
        if let Some(file) = cache.stored_file(&name.0, &name.1) {
            sender.send_replace(State::Stored(file));
            return;
        }
        match cache.try_claim_file(&name.0, &name.1) {
            Ok(Err(_holder)) => {}
            // Free, or unusable: whoever held it has gone without a record.
            Ok(Ok(_)) | Err(_) => {
                let state = match cache.stored_file(&name.0, &name.1) {
                    Some(file) => State::Stored(file),
                    None => State::Abandoned,
                };
                sender.send_replace(state);
                return;
            }
        }
    }
}

impl TheirClaim {
    /// The file once the claimant stored it; `None` if it gave up (the caller downloads it).
    pub(crate) async fn wait(mut self) -> Option<StoredFile> {
        let state = self
            .receiver
            .wait_for(|state| *state != State::Downloading)
            .await
            .ok()?
            .clone();
        match state {
            State::Stored(file) => Some(file),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> StoredFile {
        StoredFile {
            name: name.into(),
            blake3: "ab".repeat(32),
            size: 3,
            start_ms: Some(0),
            end_ms: None,
        }
    }

    #[tokio::test]
    async fn the_second_claimant_waits_for_the_first_file() {
        let claims = FileClaims::default();
        let Claim::Mine(mine) = claims.claim("id", "a.mat") else {
            panic!("the first claim is mine");
        };
        let Claim::Theirs(theirs) = claims.claim("id", "a.mat") else {
            panic!("the second claim is theirs");
        };
        assert!(matches!(claims.claim("other", "a.mat"), Claim::Mine(_)));
        let waiting = tokio::spawn(theirs.wait());
        mine.stored(&file("a.mat"));
        assert_eq!(waiting.await.unwrap(), Some(file("a.mat")));
        assert_eq!(claims.stored("id", "a.mat"), Some(file("a.mat")));
        assert!(matches!(claims.claim("id", "a.mat"), Claim::Theirs(_)));
    }

    #[tokio::test]
    async fn an_abandoned_claim_lets_the_next_job_download() {
        let claims = FileClaims::default();
        let Claim::Mine(mine) = claims.claim("id", "a.mat") else {
            panic!("the first claim is mine");
        };
        let Claim::Theirs(theirs) = claims.claim("id", "a.mat") else {
            panic!("the second claim is theirs");
        };
        drop(mine);
        assert_eq!(theirs.wait().await, None);
        assert!(matches!(claims.claim("id", "a.mat"), Claim::Mine(_)));
    }
}
