//! Moving objects and records between the local cache folder and the store.
//!
//! Input: the local [`Cache`] and what it just wrote (push), or what it lacks (pull). Output:
//! the same layout on both sides; a pulled record is written locally only once every object it
//! names is stored locally, verified against its blake3. Errors: [`RemoteError`] for what the
//! store refused; a record or object missing from the store, or damaged there, is a miss
//! (`Ok(false)`, `Ok(0)`): the run fetches it again from ONC.
//!
//! Coverage entries are named in the store by their range as well as their key
//! (`coverage-v1/<identity>/<from>_<to>_<key>.json`), so one listing per identity tells which
//! entries overlap a window without reading any of them.

use std::path::Path;

use super::{Remote, RemoteError};
use crate::cache::{
    COVERAGE_DIR, Cache, CacheError, CoverageEntry, DISCOVERY_DIR, NODES_DIR, NodeRecord,
    OBJECTS_DIR, StoredFile,
};

/// Local folder of markers: objects known to be in the store (so they are not sent twice).
pub const PUSHED_DIR: &str = "pushed-v1";

/// A coverage entry as listed in the store: its range and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub from_ms: i64,
    pub to_ms: i64,
    pub key: String,
}

/// The store key of an object, or `None` when `hex` (read from a record) is not a blake3 hash.
fn object_key(hex: &str) -> Option<String> {
    let hex = crate::cache::normalize_hash(hex)?;
    Some(format!("{OBJECTS_DIR}/{}/{hex}", &hex[..2]))
}

fn coverage_key(identity: &str, entry: &CoverageEntry) -> String {
    format!(
        "{COVERAGE_DIR}/{identity}/{}_{}_{}.json",
        entry.from_ms, entry.to_ms, entry.key
    )
}

fn parse_listed(name: &str) -> Option<Listed> {
    let stem = name.strip_suffix(".json")?;
    // The key has no '_' of its own (hex); the range may carry '-' signs.
    let mut parts = stem.splitn(3, '_');
    let from_ms = parts.next()?.parse().ok()?;
    let to_ms = parts.next()?.parse().ok()?;
    let key = parts.next()?.to_owned();
    Some(Listed {
        from_ms,
        to_ms,
        key,
    })
}

fn overlaps(entry: &Listed, from_ms: i64, to_ms: i64) -> bool {
    // Half-open ranges; an empty window still needs the entry holding its instant.
    if from_ms == to_ms {
        return entry.from_ms <= from_ms && from_ms < entry.to_ms.max(entry.from_ms + 1);
    }
    entry.from_ms < to_ms && from_ms < entry.to_ms.max(entry.from_ms + 1)
}

fn json_bytes<T: serde::Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

impl Remote {
    /// Sends the local object `hex` to the store unless it is known to be there.
    pub(crate) fn push_object(&self, cache: &Cache, file: &StoredFile) -> Result<(), RemoteError> {
        let marker = cache.pushed_marker(&self.marker_name(), &file.blake3);
        if marker.exists() {
            return Ok(());
        }
        let Some(key) = object_key(&file.blake3) else {
            // Never stored locally under such a name either: nothing to send.
            return Ok(());
        };
        let path = cache.object_path(&file.blake3);
        let bytes = std::fs::read(&path).map_err(|e| RemoteError::Setup {
            url: self.url.clone(),
            reason: format!("read {} to send it: {e}", path.display()),
        })?;
        // Content-keyed: "already exists" means the same bytes are there.
        self.put_create(&key, bytes)?;
        cache.mark_pushed(&marker);
        Ok(())
    }

    /// Sends a coverage entry and its files (files first: a record never precedes its data).
    pub(crate) fn push_coverage(
        &self,
        cache: &Cache,
        identity: &str,
        entry: &CoverageEntry,
    ) -> Result<(), RemoteError> {
        for file in &entry.files {
            self.push_object(cache, file)?;
        }
        self.put_create(&coverage_key(identity, entry), json_bytes(entry))?;
        Ok(())
    }

    /// Sends a node record and its outputs.
    pub(crate) fn push_node_record(
        &self,
        cache: &Cache,
        record: &NodeRecord,
    ) -> Result<(), RemoteError> {
        for file in &record.outputs {
            self.push_object(cache, file)?;
        }
        self.put_create(
            &format!("{NODES_DIR}/{}.json", record.key),
            json_bytes(record),
        )?;
        Ok(())
    }

    /// Sends a discovery answer (these are refreshed, so the last one wins).
    pub(crate) fn push_discovery(&self, name: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        self.put_overwrite(&format!("{DISCOVERY_DIR}/{name}"), bytes)
    }

    /// The discovery answer `name` from the store, if any.
    pub(crate) fn pull_discovery(&self, name: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        Ok(self
            .get(&format!("{DISCOVERY_DIR}/{name}"))?
            .map(|(bytes, _)| bytes))
    }

    /// Brings object `file` into the local store; `Ok(false)` when the store lacks it or holds
    /// other bytes than its name says (then it is fetched again from ONC).
    pub(crate) fn pull_object(&self, cache: &Cache, file: &StoredFile) -> Result<bool, CacheError> {
        if cache.has_object(&file.blake3, file.size) {
            return Ok(true);
        }
        let Some(key) = object_key(&file.blake3) else {
            return Ok(false);
        };
        let Some((bytes, _)) = self.get(&key).map_err(CacheError::from)? else {
            return Ok(false);
        };
        let actual = blake3::hash(&bytes).to_hex().to_string();
        if bytes.len() as u64 != file.size || actual != file.blake3 {
            return Ok(false);
        }
        let stored = cache.store_bytes(&bytes)?;
        cache.mark_pushed(&cache.pushed_marker(&self.marker_name(), &stored.blake3));
        Ok(true)
    }

    /// Brings `node`'s record and outputs from the store into the local cache; `Ok(false)` when
    /// the store has no usable record.
    pub fn pull_node_record(&self, cache: &Cache, node: &str) -> Result<bool, CacheError> {
        let Some((bytes, _)) = self
            .get(&format!("{NODES_DIR}/{node}.json"))
            .map_err(CacheError::from)?
        else {
            return Ok(false);
        };
        let Ok(record) = serde_json::from_slice::<NodeRecord>(&bytes) else {
            return Ok(false);
        };
        if record.key != node {
            return Ok(false);
        }
        for file in &record.outputs {
            if !self.pull_object(cache, file)? {
                return Ok(false);
            }
        }
        cache.write_node_record_local(&record)?;
        Ok(true)
    }

    /// Brings the coverage entries of `identity` overlapping `[from_ms, to_ms)`, with their
    /// files, from the store into the local cache. `fresh` lists the store again (another run
    /// may have recorded entries since this run listed it). Returns how many entries came.
    pub fn pull_coverage(
        &self,
        cache: &Cache,
        identity: &str,
        from_ms: i64,
        to_ms: i64,
        fresh: bool,
    ) -> Result<usize, CacheError> {
        let listed = self.listed(identity, fresh)?;
        let local = cache.root().join(COVERAGE_DIR).join(identity);
        let mut pulled = 0;
        for entry in listed.iter().filter(|e| overlaps(e, from_ms, to_ms)) {
            if local.join(format!("{}.json", entry.key)).exists() {
                continue;
            }
            let name = format!(
                "{COVERAGE_DIR}/{identity}/{}_{}_{}.json",
                entry.from_ms, entry.to_ms, entry.key
            );
            let Some((bytes, _)) = self.get(&name).map_err(CacheError::from)? else {
                continue;
            };
            let Ok(coverage) = serde_json::from_slice::<CoverageEntry>(&bytes) else {
                continue;
            };
            if coverage.key != entry.key {
                continue;
            }
            let mut complete = true;
            for file in &coverage.files {
                if !self.pull_object(cache, file)? {
                    complete = false;
                    break;
                }
            }
            if complete {
                cache.record_coverage_local(identity, &coverage)?;
                pulled += 1;
            }
        }
        Ok(pulled)
    }

    /// The store's coverage entries of `identity`, listed once a run (or again when `fresh`).
    fn listed(&self, identity: &str, fresh: bool) -> Result<Vec<Listed>, CacheError> {
        let lock = || {
            self.listings
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if !fresh && let Some(listed) = lock().get(identity) {
            return Ok(listed.clone());
        }
        let folder = format!("{COVERAGE_DIR}/{identity}");
        let names = self.list(&folder).map_err(CacheError::from)?;
        let listed: Vec<Listed> = names
            .iter()
            .filter_map(|name| Path::new(name).file_name()?.to_str())
            .filter_map(parse_listed)
            .collect();
        lock().insert(identity.to_owned(), listed.clone());
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_names_carry_range_and_key() {
        assert_eq!(
            parse_listed("-5_10_ab12.json"),
            Some(Listed {
                from_ms: -5,
                to_ms: 10,
                key: "ab12".into()
            })
        );
        assert_eq!(parse_listed("x_10_ab.json"), None);
        assert_eq!(parse_listed("1_2.json"), None);
        let entry = parse_listed("100_200_k.json").unwrap();
        assert!(overlaps(&entry, 150, 160));
        assert!(overlaps(&entry, 0, 101));
        assert!(!overlaps(&entry, 200, 300));
        assert!(!overlaps(&entry, 0, 100));
        assert!(overlaps(&entry, 100, 100));
    }
}
