//! Coverage: which time ranges of a source have been fetched, and which files ONC returned.
//!
//! Input: one [`CoverageEntry`] per completed ONC query (its node key, its `[from, to)` range and
//! the files stored for it), filed under the source *identity* (device + product/archive +
//! extension + options), so a later query for an overlapping window can reuse what earlier ones
//! fetched. Output: [`Coverage`] — the entries of an identity plus the problems met reading them —
//! and interval arithmetic over it (`uncovered`, `files_overlapping`, `file_named`).
//! Errors: only I/O on the folder itself; a damaged entry is skipped and named in `problems`, so
//! its range reads as uncovered and gets fetched again.

use std::collections::HashSet;
use std::fs;

use serde::{Deserialize, Serialize};

use super::store::normalize_hash;
use super::{COVERAGE_DIR, Cache, CacheError, Lookup, check_key, read_json_record};
use onc_format::grid::FILE_REACH_MS;

/// A file stored in the object store, under the name ONC gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredFile {
    /// ONC's file name (for archived files, a content identity: same name, same bytes).
    pub name: String,
    /// Lowercase blake3 hex of the content: the object's name.
    pub blake3: String,
    pub size: u64,
    /// The file's first instant (ms since 1970 UTC), when known.
    pub start_ms: Option<i64>,
    /// The file's end (exclusive), when known.
    pub end_ms: Option<i64>,
}

/// What one completed ONC query covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoverageEntry {
    /// The query's node key (hex); also the entry's file name.
    pub key: String,
    /// The queried range, half-open `[from_ms, to_ms)`.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Every file ONC returned for the query, all stored.
    pub files: Vec<StoredFile>,
    pub dp_request_id: Option<u64>,
    pub dp_run_id: Option<u64>,
    /// RFC 3339 UTC time the query completed.
    pub completed_at: String,
}

/// All coverage entries of one identity, and why any were skipped.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// Usable entries, sorted by `(from_ms, to_ms, key)`.
    pub entries: Vec<CoverageEntry>,
    /// One line per skipped entry: its file name and the reason it was not trusted.
    pub problems: Vec<String>,
}

impl Coverage {
    /// The parts of `[from_ms, to_ms)` that no entry covers: sorted, merged, half-open.
    ///
    /// Entries combine by union. An instant (`from_ms == to_ms`) is covered when some entry has
    /// `from_ms <= t < to_ms` (or is itself that instant); if not, it comes back as `(t, t)`.
    /// A reversed range (`from_ms > to_ms`) is empty and has nothing uncovered.
    pub fn uncovered(&self, from_ms: i64, to_ms: i64) -> Vec<(i64, i64)> {
        if from_ms > to_ms {
            return Vec::new();
        }
        if from_ms == to_ms {
            let t = from_ms;
            let covered = self
                .entries
                .iter()
                .any(|e| (e.from_ms <= t && t < e.to_ms) || (e.from_ms == t && e.to_ms == t));
            return if covered { Vec::new() } else { vec![(t, t)] };
        }
        let mut spans: Vec<(i64, i64)> = self
            .entries
            .iter()
            .filter(|e| e.from_ms < e.to_ms && e.from_ms < to_ms && from_ms < e.to_ms)
            .map(|e| (e.from_ms, e.to_ms))
            .collect();
        spans.sort_unstable();
        let mut gaps = Vec::new();
        // Sweep: `cursor` is the first instant not yet known to be covered.
        let mut cursor = from_ms;
        for (start, end) in spans {
            if start > cursor {
                gaps.push((cursor, start.min(to_ms)));
            }
            cursor = cursor.max(end);
            if cursor >= to_ms {
                break;
            }
        }
        if cursor < to_ms {
            gaps.push((cursor, to_ms));
        }
        gaps
    }

    /// Stored files whose `[start, end)` overlaps `[from_ms, to_ms)`, one per name, sorted by
    /// start then name; instants follow the same rule as in `uncovered`. A file without times stands in for its entry's whole range (a missing
    /// start or end is taken from the entry), since all we know is that the query returned it.
    pub fn files_overlapping(&self, from_ms: i64, to_ms: i64) -> Vec<StoredFile> {
        let mut seen = HashSet::new();
        // Sorted by effective start (an untimed file starts where its entry does), then name.
        let mut found: Vec<(i64, &StoredFile)> = Vec::new();
        // A file lies within its entry's range or, for entries written before ranges were
        // extended to their files, at most one file length beyond it: entries farther away
        // cannot hold a match. Skipping them keeps a 10,000-file re-run linear.
        let near = |e: &&CoverageEntry| {
            e.from_ms.saturating_sub(FILE_REACH_MS) <= to_ms
                && from_ms <= e.to_ms.saturating_add(FILE_REACH_MS)
        };
        for entry in self.entries.iter().filter(near) {
            for file in &entry.files {
                let start = file.start_ms.unwrap_or(entry.from_ms);
                let end = file.end_ms.unwrap_or(entry.to_ms);
                if overlaps(start, end, from_ms, to_ms) && seen.insert(file.name.as_str()) {
                    found.push((start, file));
                }
            }
        }
        found.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
        found.into_iter().map(|(_, file)| file.clone()).collect()
    }

    /// Adds (or replaces, by key) one entry, as [`Cache::record_coverage`] just wrote it, keeping
    /// the order `coverage` reads them in.
    pub fn add(&mut self, entry: CoverageEntry) {
        self.entries.retain(|e| e.key != entry.key);
        let at = self.entries.partition_point(|e| {
            (e.from_ms, e.to_ms, &e.key) < (entry.from_ms, entry.to_ms, &entry.key)
        });
        self.entries.insert(at, entry);
    }

    /// A stored file by its ONC name.
    pub fn file_named(&self, name: &str) -> Option<StoredFile> {
        self.entries
            .iter()
            .flat_map(|e| e.files.iter())
            .find(|f| f.name == name)
            .cloned()
    }
}

/// Whether half-open `[a0, a1)` and `[b0, b1)` share an instant; an empty interval (`x0 == x1`)
/// stands for the instant `x0`, which lies in the other if `start <= x0 < end` (or equals it).
fn overlaps(a0: i64, a1: i64, b0: i64, b1: i64) -> bool {
    match (a0 == a1, b0 == b1) {
        (true, true) => a0 == b0,
        (true, false) => b0 <= a0 && a0 < b1,
        (false, true) => a0 <= b0 && b0 < a1,
        (false, false) => a0 < b1 && b0 < a1,
    }
}

impl Cache {
    /// Records what a completed query covered: `coverage-v1/<identity>/<entry.key>.json`.
    ///
    /// Refuses (with [`CacheError::MissingObject`]) if any listed file's object is not stored
    /// with its size: coverage is a promise that the files are on disk, so it is written last.
    ///
    /// With a team store behind the folder, the files and the entry are sent there too.
    pub fn record_coverage(&self, identity: &str, entry: &CoverageEntry) -> Result<(), CacheError> {
        self.record_coverage_local(identity, entry)?;
        if let Some(remote) = &self.remote {
            remote.push_coverage(self, identity, entry)?;
        }
        Ok(())
    }

    /// [`Cache::record_coverage`] in this folder only (an entry pulled from the store).
    pub(crate) fn record_coverage_local(
        &self,
        identity: &str,
        entry: &CoverageEntry,
    ) -> Result<(), CacheError> {
        let bucket = self.root.join(COVERAGE_DIR);
        check_key("coverage identity", identity, &bucket)?;
        let dir = bucket.join(identity);
        check_key("coverage key", &entry.key, &dir)?;
        let path = dir.join(format!("{}.json", entry.key));
        for file in &entry.files {
            if !self.has_object(&file.blake3, file.size) {
                return Err(CacheError::MissingObject {
                    path,
                    name: file.name.clone(),
                    object: self.object_path(&file.blake3),
                });
            }
        }
        self.write_json_atomic(&path, entry)
    }

    /// Every usable entry of `identity`. Entries that cannot be read or parsed, whose key does
    /// not match their file name, whose range is reversed, or whose files are no longer in the
    /// store are skipped and described in `problems`; their ranges then read as uncovered.
    pub fn coverage(&self, identity: &str) -> Result<Coverage, CacheError> {
        let bucket = self.root.join(COVERAGE_DIR);
        check_key("coverage identity", identity, &bucket)?;
        let dir = bucket.join(identity);
        let mut coverage = Coverage::default();
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(coverage),
            Err(e) => return Err(CacheError::io("list", &dir, e)),
        };
        for item in listing {
            let item = item.map_err(|e| CacheError::io("list", &dir, e))?;
            let path = item.path();
            let file_name = item.file_name().to_string_lossy().into_owned();
            let Some(stem) = file_name.strip_suffix(".json") else {
                coverage
                    .problems
                    .push(format!("{}: not a coverage entry; ignored", path.display()));
                continue;
            };
            match read_json_record::<CoverageEntry>(&path) {
                Lookup::Missing => {} // deleted while we listed: nothing to say
                Lookup::Corrupt(reason) => {
                    coverage
                        .problems
                        .push(format!("{reason}; treated as missing"));
                }
                Lookup::Found(entry) => match self.check_entry(stem, &entry) {
                    Ok(()) => coverage.entries.push(entry),
                    Err(reason) => coverage
                        .problems
                        .push(format!("{}: {reason}; treated as missing", path.display())),
                },
            }
        }
        coverage
            .entries
            .sort_by(|a, b| (a.from_ms, a.to_ms, &a.key).cmp(&(b.from_ms, b.to_ms, &b.key)));
        coverage.problems.sort();
        Ok(coverage)
    }

    /// Whether a parsed entry can be trusted; `Err` says why not.
    fn check_entry(&self, stem: &str, entry: &CoverageEntry) -> Result<(), String> {
        if entry.key != stem {
            return Err(format!(
                "its key `{}` does not match the file name",
                entry.key
            ));
        }
        if entry.from_ms > entry.to_ms {
            return Err(format!(
                "its range is reversed ({} > {})",
                entry.from_ms, entry.to_ms
            ));
        }
        for file in &entry.files {
            if normalize_hash(&file.blake3).is_none() {
                return Err(format!("file `{}` has no valid blake3 hash", file.name));
            }
            if !self.has_object(&file.blake3, file.size) {
                return Err(format!(
                    "file `{}` is missing from the object store or has the wrong size",
                    file.name
                ));
            }
        }
        Ok(())
    }
}
