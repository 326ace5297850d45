//! Before a run on a team cache: what the local folder lacks, brought from the store.
//!
//! Input: the compiled DAG, the selection of a shard (or all of it), the local [`Cache`] with
//! its [`crate::cache::remote::Remote`]. Output: the coverage entries of ONC nodes the folder
//! does not cover and the records of other nodes it does not have, with their objects, in the
//! local folder — so the executor, the offline check and the clips see the team's work as
//! their own, and a warm folder costs the store no request at all. Errors: a refusal of the
//! store ([`CacheError::Remote`]); anything missing or damaged in the store is only a miss.
//!
//! Reads go out on a few threads at once: a cold folder of 10,000 files otherwise waits for
//! 10,000 round trips in a row.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use crate::cache::{Cache, CacheError, Coverage};
use crate::dag::{Dag, NodeDetail, NodeKey, NodeKind};

/// Reads in flight at once: enough to hide a store's latency, few enough to be polite to it.
const PULLS_AT_ONCE: usize = 8;

/// One thing to bring from the store.
enum Pull {
    Coverage {
        identity: String,
        from_ms: i64,
        to_ms: i64,
    },
    Record(String),
}

/// Brings what `selection` (all nodes when `None`) needs and the folder lacks. Returns how many
/// entries and records came.
pub fn pull_missing(
    dag: &Dag,
    selection: Option<&BTreeSet<NodeKey>>,
    cache: &Cache,
    base_url: &str,
) -> Result<usize, CacheError> {
    let Some(remote) = cache.remote() else {
        return Ok(0);
    };
    let mut coverages: HashMap<String, Coverage> = HashMap::new();
    let mut pulls = Vec::new();
    for node in dag.nodes() {
        if selection.is_some_and(|only| !only.contains(&node.key)) {
            continue;
        }
        let key = node.key.to_hex();
        match (&node.kind, &node.detail) {
            (
                NodeKind::ProductRequest | NodeKind::ArchiveList,
                NodeDetail::Request { query, .. },
            ) => {
                let identity = crate::exec::source_identity(base_url, query);
                let coverage = match coverages.get(&identity) {
                    Some(coverage) => coverage,
                    None => {
                        let read = cache.coverage(&identity)?;
                        coverages.entry(identity.clone()).or_insert(read)
                    }
                };
                let (from_ms, to_ms) = (query.from_ms(), query.to_ms());
                let stored = coverage
                    .files_overlapping(from_ms, to_ms)
                    .iter()
                    .all(|f| cache.has_object(&f.blake3, f.size));
                if coverage.uncovered(from_ms, to_ms).is_empty() && stored {
                    continue;
                }
                pulls.push(Pull::Coverage {
                    identity,
                    from_ms,
                    to_ms,
                });
            }
            (NodeKind::Clip, _) if cache.read_node_record(&key)?.is_none() => {
                pulls.push(Pull::Record(key));
            }
            _ => {}
        }
    }
    let queue = Mutex::new(pulls.into_iter());
    let pulled = Mutex::new(0usize);
    let failure: Mutex<Option<CacheError>> = Mutex::new(None);
    let remote = Arc::clone(remote);
    std::thread::scope(|scope| {
        for _ in 0..PULLS_AT_ONCE {
            scope.spawn(|| {
                loop {
                    if failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .is_some()
                    {
                        return;
                    }
                    let next = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .next();
                    let Some(pull) = next else { return };
                    let result = match pull {
                        Pull::Coverage {
                            identity,
                            from_ms,
                            to_ms,
                        } => remote.pull_coverage(cache, &identity, from_ms, to_ms, false),
                        Pull::Record(key) => remote.pull_node_record(cache, &key).map(usize::from),
                    };
                    match result {
                        Ok(count) => {
                            *pulled
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner) += count;
                        }
                        Err(error) => {
                            failure
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get_or_insert(error);
                        }
                    }
                }
            });
        }
    });
    if let Some(error) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(error);
    }
    Ok(pulled
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner))
}
