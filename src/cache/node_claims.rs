//! Node claims: which of the runs sharing a cache orders which ONC node.
//!
//! Input: the node key of an ONC request or listing that the cache does not cover. Output: a
//! [`NodeClaim`] held until dropped, or `None` with who holds it. Errors: I/O on the claim file.
//!
//! Several runs may use one cache at once (two people, several shards): before a run submits a
//! node to ONC it claims it, and a run that finds the node claimed waits, then takes its files
//! from the cache instead of ordering it again. The claim is an OS file lock
//! (`claims-v1/<node key>.lock`, `flock` on Unix), not the existence of a file: the OS drops
//! it when its process dies, so a killed run never leaves a stale claim — the next claimant
//! finds the dead run's journal entry and re-attaches to its ONC run instead of resubmitting.
//! The holder's pid and time inside the file are only for messages. Like every OS lock this
//! needs a file system that honours `flock` between the processes (a local disk does; some
//! network file systems do not).

use std::fs;
use std::path::PathBuf;

use super::{CLAIMS_DIR, Cache, CacheError, FILES_DIR, StoredFile, check_key};

/// The key of a source file's claim and record: its identity and name hashed (names come from
/// ONC and may hold anything).
fn file_key(identity: &str, name: &str) -> String {
    let hash = blake3::derive_key(
        "onc-pipe file claim",
        format!("{identity}\n{name}").as_bytes(),
    );
    let hex: String = hash.iter().take(20).map(|b| format!("{b:02x}")).collect();
    format!("f-{hex}")
}

/// The right to order one ONC node; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct NodeClaim {
    file: fs::File,
}

impl Drop for NodeClaim {
    fn drop(&mut self) {
        // Closing releases it anyway; unlocking first makes the release immediate.
        let _ = self.file.unlock();
    }
}

impl Cache {
    /// Claims `node_key` for this process: `Ok(Ok(claim))`, or `Ok(Err(holder))` when another
    /// process holds it ("pid 1234 since …", or "another run" when it has not said yet).
    pub fn try_claim_node(&self, node_key: &str) -> Result<Result<NodeClaim, String>, CacheError> {
        self.try_claim(node_key)
    }

    /// Claims one source file among the runs sharing the cache, so that a file ONC returns to
    /// two requests (the one straddling their common edge) ordered by two processes is
    /// downloaded by one: `Ok(Ok(claim))`, or `Ok(Err(holder))` while another process has it.
    pub fn try_claim_file(
        &self,
        identity: &str,
        name: &str,
    ) -> Result<Result<NodeClaim, String>, CacheError> {
        self.try_claim(&file_key(identity, name))
    }

    /// The file another run stored under `identity` and `name` ([`Cache::record_stored_file`]),
    /// when its object is still in the store.
    pub fn stored_file(&self, identity: &str, name: &str) -> Option<StoredFile> {
        let path = self
            .root
            .join(FILES_DIR)
            .join(format!("{}.json", file_key(identity, name)));
        let file: StoredFile = super::read_json_record(&path).found()?;
        (file.name == name && self.has_object(&file.blake3, file.size)).then_some(file)
    }

    /// Says that `file` of `identity` is stored, for other runs' [`Cache::stored_file`]; written
    /// before the file's claim is released.
    pub fn record_stored_file(&self, identity: &str, file: &StoredFile) -> Result<(), CacheError> {
        let path = self
            .root
            .join(FILES_DIR)
            .join(format!("{}.json", file_key(identity, &file.name)));
        self.write_json_atomic(&path, file)
    }

    fn try_claim(&self, node_key: &str) -> Result<Result<NodeClaim, String>, CacheError> {
        let dir = self.root.join(CLAIMS_DIR);
        check_key("node key", node_key, &dir)?;
        super::ensure_dir(&dir)?;
        let path: PathBuf = dir.join(format!("{node_key}.lock"));
        let mut file = super::lock::open_lock_file(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Ok(Err(super::lock::read_holder(&mut file, "another run")));
            }
            Err(fs::TryLockError::Error(e)) => return Err(CacheError::io("claim", &path, e)),
        }
        // Only for messages: a failure to write it does not make the claim less held.
        let _ = super::lock::write_holder(&mut file, &path);
        Ok(Ok(NodeClaim { file }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_node_is_refused_to_another_handle_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let mine = cache.try_claim_node("ab12").unwrap().unwrap();
        // A second open file description, as a second process would have.
        let other = Cache::open(dir.path()).unwrap();
        let holder = other.try_claim_node("ab12").unwrap().unwrap_err();
        assert!(
            holder.starts_with(&format!("pid {} since ", std::process::id())),
            "{holder}"
        );
        assert!(other.try_claim_node("cd34").unwrap().is_ok());
        drop(mine);
        assert!(other.try_claim_node("ab12").unwrap().is_ok());
        assert!(other.try_claim_node("../x").is_err());
    }
}
