//! ONC's discovery answers, kept with the time they were fetched (`discovery-v1/<key>.json`), so
//! a re-run or `plan --offline` needs no request.
//!
//! Input: the server a query went to, the query (as its parameters, token excluded), and ONC's
//! answer as JSON. Output: the record, atomically written; read back with its age. Errors:
//! writing is [`CacheError`]; reading never fails: a missing or damaged record is `None`, and
//! the caller asks ONC again.

use serde::{Deserialize, Serialize};

use super::{Cache, CacheError, DISCOVERY_DIR, ensure_dir, read_json_record};

/// One discovery answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryRecord {
    /// The server asked (`simulator` for the in-process one), so answers of different servers
    /// never mix.
    pub server: String,
    /// The service and its parameters, e.g. `deployments?deviceCode=ICLISTENHF6324`.
    pub query: String,
    /// When ONC answered, ms since 1970 UTC.
    pub fetched_at_ms: i64,
    /// ONC's answer as it came (an empty list for "nothing matched"), or `null` when ONC said it
    /// does not know a code in the query.
    pub answer: serde_json::Value,
}

impl Cache {
    /// The stored answer to `query` on `server`, if any is readable.
    /// With a team store behind the folder, an answer the folder lacks is looked up there.
    pub fn read_discovery(&self, server: &str, query: &str) -> Option<DiscoveryRecord> {
        let path = self.discovery_path(server, query);
        let matches = |record: &DiscoveryRecord| record.server == server && record.query == query;
        if let Some(found) = read_json_record::<DiscoveryRecord>(&path)
            .found()
            .filter(matches)
        {
            return Some(found);
        }
        let remote = self.remote.as_ref()?;
        let name = path.file_name()?.to_str()?;
        // A refusal here is not hidden: the run's probe of the store has already passed, and
        // without the answer the run asks ONC, as it would on a miss.
        let bytes = remote.pull_discovery(name).ok()??;
        let record: DiscoveryRecord = serde_json::from_slice(&bytes).ok()?;
        if !matches(&record) {
            return None;
        }
        let _ = self.write_json_atomic(&path, &record);
        Some(record)
    }

    /// Stores an answer (replacing an older one).
    pub fn write_discovery(&self, record: &DiscoveryRecord) -> Result<(), CacheError> {
        let dir = self.root.join(DISCOVERY_DIR);
        ensure_dir(&dir)?;
        let path = self.discovery_path(&record.server, &record.query);
        self.write_json_atomic(&path, record)?;
        if let (Some(remote), Some(name)) = (&self.remote, path.file_name()) {
            remote.push_discovery(&name.to_string_lossy(), super::json_bytes(&path, record)?)?;
        }
        Ok(())
    }

    fn discovery_path(&self, server: &str, query: &str) -> std::path::PathBuf {
        let mut hasher = blake3::Hasher::new();
        hasher.update(server.as_bytes());
        hasher.update(&[0]);
        hasher.update(query.as_bytes());
        let key = hasher.finalize().to_hex();
        self.root
            .join(DISCOVERY_DIR)
            .join(format!("{}.json", &key[..32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_round_trips_per_server_and_query() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let record = DiscoveryRecord {
            server: "simulator".into(),
            query: "deployments?deviceCode=ICLISTENHF6324".into(),
            fetched_at_ms: 1,
            answer: serde_json::json!([{"deviceCode": "ICLISTENHF6324"}]),
        };
        assert!(cache.read_discovery("simulator", &record.query).is_none());
        cache.write_discovery(&record).unwrap();
        assert_eq!(
            cache.read_discovery("simulator", &record.query),
            Some(record.clone())
        );
        assert!(
            cache
                .read_discovery("https://data.oceannetworks.ca/", &record.query)
                .is_none()
        );
        let path = cache.discovery_path("simulator", &record.query);
        std::fs::write(&path, b"{not json").unwrap();
        assert!(
            cache.read_discovery("simulator", &record.query).is_none(),
            "damaged: asked again"
        );
    }
}
