//! File claims: one download per source file per run, however many jobs need it.
//!
//! Input: (source identity, file name) pairs that jobs are about to download. Output: for the
//! first job, the right to download ([`Claim::Mine`]); for the others, the file once the first
//! has stored it ([`Claim::Theirs`]). Overlapping requests (ONC returns a file straddling a
//! request's edge to both neighbours) and overlapping archive windows therefore transfer each
//! file once. A claim dropped without a file (a failed download) lets the next job try.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::cache::StoredFile;

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
}

/// Another job's claim.
pub(crate) struct TheirClaim {
    receiver: watch::Receiver<State>,
}

impl FileClaims {
    /// Claims `name` of `identity` unless another job already stored or is fetching it.
    pub(crate) fn claim(&self, identity: &str, name: &str) -> Claim<'_> {
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
        claims.insert(key.clone(), watch::channel(State::Downloading).0);
        Claim::Mine(MyClaim {
            claims: self,
            name: key,
            fulfilled: false,
        })
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
