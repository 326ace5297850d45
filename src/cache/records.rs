//! Node records (`nodes-v1/<node key>.json`) and run records (`runs/<UTC time>.json`).
//!
//! Input: a finished node's outputs (already in the object store) and details; a run's summary.
//! Output: atomically written JSON. A node record is the cargo-style fingerprint: written last,
//! after every output is stored, so its presence means "done, skip it".
//! Errors: I/O, a key that cannot name a file, or (when writing) an output not in the store.
//! Reading never fails on a damaged record: it is treated as missing, with the reason available
//! through [`Cache::node_record_lookup`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use super::coverage::StoredFile;
use super::store::normalize_hash;
use super::{Cache, CacheError, Lookup, NODES_DIR, RUNS_DIR, check_key, read_json_record};

/// What a completed node produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node key (hex); also the record's file name.
    pub key: String,
    /// The node kind (`file`, `clip`, …), for people reading the cache.
    pub kind: String,
    /// Every output, all in the object store.
    pub outputs: Vec<StoredFile>,
    /// RFC 3339 UTC completion time.
    pub completed_at: String,
    /// Kind-specific details (ONC ids, gaps, sidecar fields…).
    pub detail: serde_json::Value,
}

impl Cache {
    /// Writes the record of a finished node. Refuses with [`CacheError::MissingObject`] if an
    /// output is not stored with its size: a record must never vouch for absent data.
    /// With a team store behind the folder, the outputs and the record are sent there too
    /// (create-if-absent), before this returns.
    pub fn write_node_record(&self, record: &NodeRecord) -> Result<(), CacheError> {
        self.write_node_record_local(record)?;
        if let Some(remote) = &self.remote {
            remote.push_node_record(self, record)?;
        }
        Ok(())
    }

    /// [`Cache::write_node_record`] in this folder only (a record pulled from the store).
    pub(crate) fn write_node_record_local(&self, record: &NodeRecord) -> Result<(), CacheError> {
        let dir = self.root.join(NODES_DIR);
        check_key("node key", &record.key, &dir)?;
        let path = dir.join(format!("{}.json", record.key));
        for output in &record.outputs {
            if !self.has_object(&output.blake3, output.size) {
                return Err(CacheError::MissingObject {
                    path,
                    name: output.name.clone(),
                    object: self.object_path(&output.blake3),
                });
            }
        }
        self.write_json_atomic(&path, record)
    }

    /// The record of `node_key`; `None` when it is missing or cannot be trusted.
    pub fn read_node_record(&self, node_key: &str) -> Result<Option<NodeRecord>, CacheError> {
        Ok(self.node_record_lookup(node_key)?.found())
    }

    /// The record of `node_key`, distinguishing missing from damaged: unreadable JSON, a key
    /// that does not match the file name, or an output whose object is gone or has the wrong
    /// size (a cheap `stat`, not a re-hash) all give [`Lookup::Corrupt`] with the reason.
    pub fn node_record_lookup(&self, node_key: &str) -> Result<Lookup<NodeRecord>, CacheError> {
        let dir = self.root.join(NODES_DIR);
        check_key("node key", node_key, &dir)?;
        let path = dir.join(format!("{node_key}.json"));
        let record: NodeRecord = match read_json_record(&path) {
            Lookup::Found(record) => record,
            Lookup::Missing => return Ok(Lookup::Missing),
            Lookup::Corrupt(reason) => return Ok(Lookup::Corrupt(reason)),
        };
        if record.key != node_key {
            return Ok(Lookup::Corrupt(format!(
                "{}: its key `{}` does not match the file name",
                path.display(),
                record.key
            )));
        }
        for output in &record.outputs {
            if normalize_hash(&output.blake3).is_none() {
                return Ok(Lookup::Corrupt(format!(
                    "{}: output `{}` has no valid blake3 hash",
                    path.display(),
                    output.name
                )));
            }
            if !self.has_object(&output.blake3, output.size) {
                return Ok(Lookup::Corrupt(format!(
                    "{}: output `{}` is missing from the object store or has the wrong size",
                    path.display(),
                    output.name
                )));
            }
        }
        Ok(Lookup::Found(record))
    }

    /// Writes a run record as `runs/2026-11-21T20-01-02.123Z.json` (the start time, with `-` for
    /// `:` so the name is valid everywhere and sorts by time). Never overwrites: a second record
    /// in the same millisecond gets `-2`, `-3`, … appended. Returns the path written.
    pub fn write_run_record(
        &self,
        json: &serde_json::Value,
        started: DateTime<Utc>,
    ) -> Result<PathBuf, CacheError> {
        let dir = self.root.join(RUNS_DIR);
        let stamp = started.format("%Y-%m-%dT%H-%M-%S%.3fZ").to_string();
        let mut path = dir.join(format!("{stamp}.json"));
        let mut n = 1;
        // Runs hold the lock, so nobody races us between this check and the rename.
        while path.exists() {
            n += 1;
            path = dir.join(format!("{stamp}-{n}.json"));
        }
        self.write_json_atomic(&path, json)?;
        Ok(path)
    }
}
