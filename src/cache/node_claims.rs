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
    /// The node's claim in the team store, when the cache has one; released before the
    /// folder's lock, so a run of this folder waiting on the lock finds the store free.
    remote: Option<super::remote::RemoteClaim>,
    /// A dead holder's submission this claim took over from the team store (its journal
    /// entry, now also in this folder's journal).
    pub taken_over: bool,
}

impl Drop for NodeClaim {
    fn drop(&mut self) {
        drop(self.remote.take());
        // Closing releases it anyway; unlocking first makes the release immediate.
        let _ = self.file.unlock();
    }
}

impl Cache {
    /// Claims `node_key` for this process: `Ok(Ok(claim))`, or `Ok(Err(holder))` when another
    /// process holds it ("pid 1234 since …", or "another run" when it has not said yet).
    ///
    /// With a team store behind the folder, the node is claimed there too once the folder's
    /// lock is held (see [`super::remote::claims`]); a claim taken over from a dead run brings
    /// its journal entry into this folder's journal, so the executor re-attaches to its ONC
    /// request instead of submitting again.
    pub fn try_claim_node(&self, node_key: &str) -> Result<Result<NodeClaim, String>, CacheError> {
        let mut claim = match self.try_claim(node_key)? {
            Ok(claim) => claim,
            Err(holder) => return Ok(Err(holder)),
        };
        let Some(remote) = &self.remote else {
            return Ok(Ok(claim));
        };
        match remote.try_claim(node_key, &self.holder()?)? {
            super::remote::ClaimAttempt::Busy(holder) => Ok(Err(holder)),
            super::remote::ClaimAttempt::Held { taken_over } => {
                if let Some(entry) = taken_over
                    && self.journal_lookup(node_key)?.found().is_none()
                {
                    // Written before the claim is used: the executor reads it to re-attach.
                    self.journal_write_local(node_key, &entry)?;
                    claim.taken_over = true;
                }
                claim.remote = Some(super::remote::RemoteClaim {
                    remote: remote.clone(),
                    node: node_key.to_owned(),
                    journal: self.journal_path(node_key),
                });
                Ok(Ok(claim))
            }
        }
    }

    /// Claims one source file among the runs sharing the cache, so that a file ONC returns to
    /// two requests (the one straddling their common edge) ordered by two processes is
    /// downloaded by one: `Ok(Ok(claim))`, or `Ok(Err(holder))` while another process has it.
    ///
    /// With a team store, the file is claimed there too, so runs on other machines wait for
    /// it instead of downloading it again.
    pub fn try_claim_file(
        &self,
        identity: &str,
        name: &str,
    ) -> Result<Result<NodeClaim, String>, CacheError> {
        let key = file_key(identity, name);
        let mut claim = match self.try_claim(&key)? {
            Ok(claim) => claim,
            Err(holder) => return Ok(Err(holder)),
        };
        let Some(remote) = &self.remote else {
            return Ok(Ok(claim));
        };
        match remote.try_claim(&key, &self.holder()?)? {
            super::remote::ClaimAttempt::Busy(holder) => Ok(Err(holder)),
            super::remote::ClaimAttempt::Held { .. } => {
                claim.remote = Some(super::remote::RemoteClaim {
                    remote: remote.clone(),
                    node: key,
                    // A file claim has no journal: released, it is deleted.
                    journal: self.root.join(CLAIMS_DIR).join("no-journal"),
                });
                Ok(Ok(claim))
            }
        }
    }

    /// This run, as claims in a team store name it.
    fn holder(&self) -> Result<super::remote::Holder, CacheError> {
        Ok(super::remote::Holder {
            host: host_name(),
            pid: std::process::id(),
            cache_id: self.cache_id()?,
            since: onc_format::stamp::onc_date(chrono::Utc::now()),
        })
    }

    /// The file another run stored under `identity` and `name` ([`Cache::record_stored_file`]),
    /// when its object is still in the store.
    ///
    /// With a team store, a file stored by a run on another machine is brought from there.
    pub fn stored_file(&self, identity: &str, name: &str) -> Option<StoredFile> {
        let key = file_key(identity, name);
        let path = self.root.join(FILES_DIR).join(format!("{key}.json"));
        let usable = |file: &StoredFile| file.name == name;
        if let Some(file) = super::read_json_record::<StoredFile>(&path).found()
            && usable(&file)
            && self.has_object(&file.blake3, file.size)
        {
            return Some(file);
        }
        let remote = self.remote.as_ref()?;
        let (bytes, _) = remote.get(&format!("{FILES_DIR}/{key}.json")).ok()??;
        let file: StoredFile = serde_json::from_slice(&bytes).ok()?;
        if !usable(&file) || !remote.pull_object(self, &file).ok()? {
            return None;
        }
        let _ = self.write_json_atomic(&path, &file);
        Some(file)
    }

    /// Says that `file` of `identity` is stored, for other runs' [`Cache::stored_file`]; written
    /// before the file's claim is released.
    /// With a team store, the object and the record go there too (write-once).
    pub fn record_stored_file(&self, identity: &str, file: &StoredFile) -> Result<(), CacheError> {
        let key = file_key(identity, &file.name);
        let path = self.root.join(FILES_DIR).join(format!("{key}.json"));
        self.write_json_atomic(&path, file)?;
        if let Some(remote) = &self.remote {
            remote.push_object(self, file)?;
            remote.put_create(
                &format!("{FILES_DIR}/{key}.json"),
                super::json_bytes(&path, file)?,
            )?;
        }
        Ok(())
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
        Ok(Ok(NodeClaim {
            file,
            remote: None,
            taken_over: false,
        }))
    }
}

/// This machine's name, for claim messages ("pid 12 on node17").
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "an unnamed host".to_owned())
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
