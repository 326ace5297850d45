//! The journal of in-flight ONC submissions: `journal-v1/<node key>.json`.
//!
//! Input: a node key and the ids ONC gave its submission (`dpRequestId`, later `dpRunId`).
//! Output: a durable record, written (temp + fsync + rename + folder fsync) *before* the ids are
//! used, so after a crash, kill or Ctrl-C the next run polls the same ONC run instead of
//! submitting a new one. The entry is removed once the node's outputs are recorded.
//! Errors: I/O. A damaged entry reads as absent (the node is submitted again) and, through
//! [`Cache::journal_lookup`] / [`Cache::journal_scan`], says why.

use std::collections::BTreeMap;
use std::fs;

use serde::{Deserialize, Serialize};

use super::{Cache, CacheError, JOURNAL_DIR, Lookup, check_key, read_json_record};

/// One submission ONC has accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The query parameters sent (never the token: `journal_write` drops any `token` key).
    pub query: BTreeMap<String, String>,
    pub dp_request_id: u64,
    pub dp_run_id: Option<u64>,
    /// RFC 3339 UTC time of the submission.
    pub submitted_at: String,
    /// The ONC base URL it was submitted to: a run cannot be polled on another server.
    pub base_url: String,
    /// How many times its run has been restarted after failing (ONC's `restart`), over every
    /// `run`; written before each restart call, so a kill mid-restart resumes the count.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u32,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// Every journal entry, and why any were skipped.
#[derive(Debug, Clone, Default)]
pub struct JournalScan {
    /// `(node key, entry)`, sorted by node key.
    pub entries: Vec<(String, JournalEntry)>,
    /// One line per skipped file: its name and the reason.
    pub problems: Vec<String>,
}

impl Cache {
    /// Writes (or replaces) the journal entry of `node_key`, durably. Any query parameter named
    /// `token` (in any case) is dropped first: the token never reaches the disk.
    ///
    /// A new entry is renamed into place before its fsync ([`Cache::write_new_visible_first`]):
    /// it holds the dpRequestId of a submission ONC has just accepted, and until it is visible a
    /// kill means a second submission. A replaced entry (the dpRunId added) keeps the
    /// fsync-then-rename order, so a power cut cannot lose the id it already holds.
    pub fn journal_write(&self, node_key: &str, entry: &JournalEntry) -> Result<(), CacheError> {
        let clean = self.journal_write_local(node_key, entry)?;
        // With a team store: into the node's claim too, for a run on another machine to
        // re-attach if this one dies.
        // A failed write is retried by the next renewal (the entry is in the held claim); only
        // a refusal stops the job.
        if let Some(remote) = &self.remote
            && let Err(error) = remote.note_journal(node_key, &clean)
            && error.is_denied()
        {
            return Err(error.into());
        }
        Ok(())
    }

    /// [`Cache::journal_write`] in this folder only; returns the entry as written (token-free).
    pub(crate) fn journal_write_local(
        &self,
        node_key: &str,
        entry: &JournalEntry,
    ) -> Result<JournalEntry, CacheError> {
        let dir = self.root.join(JOURNAL_DIR);
        check_key("node key", node_key, &dir)?;
        let path = dir.join(format!("{node_key}.json"));
        let mut clean = entry.clone();
        clean.query.retain(|k, _| !k.eq_ignore_ascii_case("token"));
        if path.exists() {
            self.write_json_atomic(&path, &clean)?;
        } else {
            self.write_new_visible_first(&path, &super::json_bytes(&path, &clean)?)?;
        }
        Ok(clean)
    }

    /// Where the journal entry of `node_key` is (whether or not it exists).
    pub(crate) fn journal_path(&self, node_key: &str) -> std::path::PathBuf {
        self.root.join(JOURNAL_DIR).join(format!("{node_key}.json"))
    }

    /// The journal entry of `node_key`; `None` when there is none or it is damaged.
    pub fn journal_read(&self, node_key: &str) -> Result<Option<JournalEntry>, CacheError> {
        Ok(self.journal_lookup(node_key)?.found())
    }

    /// Like [`Cache::journal_read`], but a damaged entry comes back as [`Lookup::Corrupt`] with
    /// the reason, for the executor to report.
    pub fn journal_lookup(&self, node_key: &str) -> Result<Lookup<JournalEntry>, CacheError> {
        let dir = self.root.join(JOURNAL_DIR);
        check_key("node key", node_key, &dir)?;
        Ok(read_json_record(&dir.join(format!("{node_key}.json"))))
    }

    /// Removes the journal entry of `node_key`; removing an absent entry is not an error.
    pub fn journal_remove(&self, node_key: &str) -> Result<(), CacheError> {
        let dir = self.root.join(JOURNAL_DIR);
        check_key("node key", node_key, &dir)?;
        let path = dir.join(format!("{node_key}.json"));
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(CacheError::io("remove", &path, e)),
        }
        // Durable removal: a resurrected entry would make the next run poll a finished run.
        super::sync_dir(&dir)
    }

    /// Every readable journal entry, sorted by node key; damaged ones are skipped silently
    /// (see [`Cache::journal_scan`] for the reasons).
    pub fn journal_all(&self) -> Result<Vec<(String, JournalEntry)>, CacheError> {
        Ok(self.journal_scan()?.entries)
    }

    /// Every readable journal entry, plus a line per damaged or stray file.
    pub fn journal_scan(&self) -> Result<JournalScan, CacheError> {
        let dir = self.root.join(JOURNAL_DIR);
        let mut scan = JournalScan::default();
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(CacheError::io("list", &dir, e)),
        };
        for item in listing {
            let item = item.map_err(|e| CacheError::io("list", &dir, e))?;
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            let Some(key) = name
                .strip_suffix(".json")
                .filter(|k| check_key("node key", k, &dir).is_ok())
            else {
                scan.problems
                    .push(format!("{}: not a journal entry; ignored", path.display()));
                continue;
            };
            match read_json_record::<JournalEntry>(&path) {
                Lookup::Missing => {}
                Lookup::Found(entry) => scan.entries.push((key.to_string(), entry)),
                Lookup::Corrupt(reason) => {
                    scan.problems.push(format!("{reason}; treated as missing"))
                }
            }
        }
        scan.entries.sort_by(|a, b| a.0.cmp(&b.0));
        scan.problems.sort();
        Ok(scan)
    }
}
