//! Garbage collection of the cache folder: what no given manifest references any more.
//!
//! Input: a [`Keep`] — the node keys of the manifests' DAGs and, per source identity, the time
//! ranges of their ONC requests and listings — an optional age ([`GcOptions::older_than`]) and
//! the cache's *exclusive* lock (no run may be storing or reading meanwhile). Output: a
//! [`GcPlan`] listing every file that [`Cache::gc_apply`] would remove (objects, node records,
//! coverage entries, file records, temporary files), with their sizes; applying it returns a
//! [`GcDone`]. Errors: [`CacheError`] — a lock that is not exclusive, I/O naming the path.
//!
//! What is kept, and why:
//! * a **node record** whose key is a node of a given manifest (clips; ONC nodes' records);
//! * a **coverage entry** of a source the manifests fetch whose range lies within one file's
//!   reach of one of their requests' ranges — exactly the entries a run reads to find its files
//!   ([`super::Coverage::uncovered`], [`super::Coverage::files_overlapping`]), so a kept
//!   request stays cached even when another manifest's entry is what covers it;
//! * every **object** a kept record names;
//! * but never a record one of whose objects is already gone (deleted by hand, lost): it
//!   vouches for nothing, and a run redoes its node whether or not it is there;
//! * with `older_than`, also every record and object written at or after that time (a grace
//!   period, like git's `gc.pruneExpire`): an object is removed only when it is unreferenced
//!   *and* older. With no manifest given, nothing is referenced, so age alone decides.
//!
//! Everything else under `objects-v1/`, `nodes-v1/`, `coverage-v1/`, `files-v1/` and `tmp/`
//! goes. The cache stays consistent by construction: a kept record's objects are all kept, and
//! a `files-v1/` record is kept only with its object, so a later run finds either a complete
//! record or none (and fetches again), never a record vouching for absent data. The journal,
//! ONC's deployments, run records, claims and the lock are never touched.
//!
//! Deleting is dangerous, so: every path is built from the cache root and a bucket name, and
//! only names the cache itself writes are considered (64 hex digits, `<key>.json`); listings
//! use the entries' own types and never follow a symbolic link (a link is neither removed nor
//! entered), and each path is checked to lie under the root before it is removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::coverage::{CoverageEntry, StoredFile};
use super::records::NodeRecord;
use super::store::normalize_hash;
use super::{
    COVERAGE_DIR, Cache, CacheError, CacheLock, FILES_DIR, Lookup, NODES_DIR, OBJECTS_DIR, TMP_DIR,
    read_json_record,
};
use onc_format::grid::FILE_REACH_MS;

/// What the given manifests reference.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    /// Node keys (hex) of every node of every manifest's DAG.
    pub node_keys: BTreeSet<String>,
    /// Per source identity (as coverage files are filed), the `[from_ms, to_ms)` ranges of the
    /// manifests' requests and listings of that source.
    pub ranges: BTreeMap<String, Vec<(i64, i64)>>,
}

impl Keep {
    /// Whether a coverage entry of `identity` over `[from_ms, to_ms)` is one a kept request
    /// reads: within one file's reach of its range (files straddle a query's edges).
    fn covers(&self, identity: &str, from_ms: i64, to_ms: i64) -> bool {
        self.ranges.get(identity).is_some_and(|ranges| {
            ranges.iter().any(|&(from, to)| {
                from_ms.saturating_sub(FILE_REACH_MS) <= to
                    && from <= to_ms.saturating_add(FILE_REACH_MS)
            })
        })
    }
}

/// How to collect.
#[derive(Debug, Clone, Default)]
pub struct GcOptions {
    pub keep: Keep,
    /// Keep whatever was written at or after this time (records and objects), referenced or
    /// not; `None`: age does not matter.
    pub older_than: Option<SystemTime>,
}

/// What a removal is, for the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GarbageKind {
    Object,
    NodeRecord,
    CoverageEntry,
    FileRecord,
    Temporary,
}

impl GarbageKind {
    /// The plural noun the summary line uses.
    pub fn noun(self, count: usize) -> &'static str {
        match (self, count == 1) {
            (GarbageKind::Object, true) => "object",
            (GarbageKind::Object, false) => "objects",
            (GarbageKind::NodeRecord, true) => "node record",
            (GarbageKind::NodeRecord, false) => "node records",
            (GarbageKind::CoverageEntry, true) => "coverage entry",
            (GarbageKind::CoverageEntry, false) => "coverage entries",
            (GarbageKind::FileRecord, true) => "file record",
            (GarbageKind::FileRecord, false) => "file records",
            (GarbageKind::Temporary, true) => "temporary file",
            (GarbageKind::Temporary, false) => "temporary files",
        }
    }
}

/// One file (or, in `tmp/`, one entry) gc would remove.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Garbage {
    pub kind: GarbageKind,
    /// Relative to the cache folder.
    pub path: PathBuf,
    pub bytes: u64,
}

/// Everything gc would remove, and what stays.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcPlan {
    /// Sorted by kind, then path.
    pub remove: Vec<Garbage>,
    pub kept_objects: usize,
    pub kept_object_bytes: u64,
}

impl GcPlan {
    /// How many of `kind` would go, and their bytes.
    pub fn count(&self, kind: GarbageKind) -> (usize, u64) {
        self.remove
            .iter()
            .filter(|g| g.kind == kind)
            .fold((0, 0), |(n, b), g| (n + 1, b + g.bytes))
    }

    /// Bytes of everything that would go.
    pub fn bytes(&self) -> u64 {
        self.remove.iter().map(|g| g.bytes).sum()
    }
}

/// What [`Cache::gc_apply`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GcDone {
    pub removed: usize,
    pub removed_bytes: u64,
    /// Files that could not be removed, with the reason (left in place).
    pub failed: Vec<(PathBuf, String)>,
}

/// A regular file or folder of a listing; symbolic links and anything else are not listed.
struct Listed {
    name: String,
    path: PathBuf,
    is_dir: bool,
    bytes: u64,
    modified: Option<SystemTime>,
}

/// The plain entries of `dir` (never following a link); a missing folder lists nothing, and a
/// folder that is itself a link is not entered.
fn list_plain(dir: &Path) -> Result<Vec<Listed>, CacheError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Ok(Vec::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CacheError::io("read metadata of", dir, e)),
    }
    let mut listed = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| CacheError::io("list", dir, e))? {
        let entry = entry.map_err(|e| CacheError::io("list", dir, e))?;
        // `DirEntry::file_type` does not follow links: a link is neither file nor folder here.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if !kind.is_file() && !kind.is_dir() {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue; // removed while we listed
        };
        listed.push(Listed {
            name: entry.file_name().to_string_lossy().into_owned(),
            path: entry.path(),
            is_dir: kind.is_dir(),
            bytes: if kind.is_file() { meta.len() } else { 0 },
            modified: meta.modified().ok(),
        });
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listed)
}

/// The bytes of the regular files under `dir`, links not followed.
fn tree_bytes(dir: &Path) -> u64 {
    list_plain(dir)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            if e.is_dir {
                tree_bytes(&e.path)
            } else {
                e.bytes
            }
        })
        .sum()
}

impl Cache {
    /// What [`Cache::gc_apply`] would remove under `options`: reads every record, removes
    /// nothing. `lock` must be the exclusive lock ([`Cache::lock`]), so no run changes the cache
    /// between this listing and its removal.
    pub fn gc_plan(&self, lock: &CacheLock, options: &GcOptions) -> Result<GcPlan, CacheError> {
        self.check_exclusive(lock)?;
        let young = |listed: &Listed| {
            options
                .older_than
                .is_some_and(|cutoff| listed.modified.is_some_and(|m| m >= cutoff))
        };
        let mut plan = GcPlan::default();
        let mut kept_objects: BTreeSet<String> = BTreeSet::new();
        let mut keep_outputs = |files: &[StoredFile]| {
            for file in files {
                if let Some(hex) = normalize_hash(&file.blake3) {
                    kept_objects.insert(hex);
                }
            }
        };

        // Node records: kept when a manifest has the node (or they are young).
        for listed in list_plain(&self.root.join(NODES_DIR))? {
            if listed.is_dir {
                continue;
            }
            let Some(key) = listed.name.strip_suffix(".json") else {
                continue; // not a name the cache writes: not ours to judge
            };
            let record = read_json_record::<NodeRecord>(&listed.path);
            let wanted = options.keep.node_keys.contains(key) || young(&listed);
            match record {
                // A record whose objects are gone vouches for nothing: a run would redo its
                // node anyway, so it goes too.
                Lookup::Found(record) if wanted && self.all_stored(&record.outputs) => {
                    keep_outputs(&record.outputs);
                }
                Lookup::Corrupt(_) | Lookup::Missing if wanted => {}
                _ => plan
                    .remove
                    .push(self.garbage(GarbageKind::NodeRecord, &listed)),
            }
        }

        // Coverage entries: kept when a manifest's request of that source reads them.
        for identity in list_plain(&self.root.join(COVERAGE_DIR))? {
            if !identity.is_dir {
                continue;
            }
            for listed in list_plain(&identity.path)? {
                if listed.is_dir || !listed.name.ends_with(".json") {
                    continue;
                }
                match read_json_record::<CoverageEntry>(&listed.path) {
                    Lookup::Found(entry) => {
                        let wanted = young(&listed)
                            || options
                                .keep
                                .covers(&identity.name, entry.from_ms, entry.to_ms);
                        if wanted && self.all_stored(&entry.files) {
                            keep_outputs(&entry.files);
                        } else {
                            plan.remove
                                .push(self.garbage(GarbageKind::CoverageEntry, &listed));
                        }
                    }
                    // Unreadable: a run ignores it. Removed only with its whole source
                    // unreferenced, since its range cannot be read.
                    Lookup::Corrupt(_) | Lookup::Missing => {
                        if !young(&listed) && !options.keep.ranges.contains_key(&identity.name) {
                            plan.remove
                                .push(self.garbage(GarbageKind::CoverageEntry, &listed));
                        }
                    }
                }
            }
        }

        // Objects: kept when a kept record names them (or they are young).
        for shard in list_plain(&self.root.join(OBJECTS_DIR))? {
            if !shard.is_dir {
                continue;
            }
            for listed in list_plain(&shard.path)? {
                let Some(hex) = normalize_hash(&listed.name).filter(|hex| *hex == listed.name)
                else {
                    continue; // not an object's name
                };
                if listed.is_dir {
                    continue;
                }
                if kept_objects.contains(&hex) || young(&listed) {
                    plan.kept_objects += 1;
                    plan.kept_object_bytes += listed.bytes;
                    kept_objects.insert(hex);
                } else {
                    plan.remove.push(self.garbage(GarbageKind::Object, &listed));
                }
            }
        }

        // Records of single stored files go with their objects.
        for listed in list_plain(&self.root.join(FILES_DIR))? {
            if listed.is_dir || !listed.name.ends_with(".json") {
                continue;
            }
            let object_kept = read_json_record::<StoredFile>(&listed.path)
                .found()
                .and_then(|file| normalize_hash(&file.blake3))
                .is_some_and(|hex| kept_objects.contains(&hex));
            if !object_kept {
                plan.remove
                    .push(self.garbage(GarbageKind::FileRecord, &listed));
            }
        }

        // Temporary files: under the exclusive lock, no run is writing there.
        for listed in list_plain(&self.root.join(TMP_DIR))? {
            let mut garbage = self.garbage(GarbageKind::Temporary, &listed);
            if listed.is_dir {
                garbage.bytes = tree_bytes(&listed.path);
            }
            plan.remove.push(garbage);
        }

        plan.remove
            .sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
        Ok(plan)
    }

    /// Removes what `plan` lists (made by [`Cache::gc_plan`] under the same `lock`), then the
    /// folders it emptied. A file that is already gone counts as removed; one that cannot be
    /// removed is reported and left, and the rest goes on. Records go before objects, so even an
    /// interrupted gc never leaves a record naming a removed object.
    pub fn gc_apply(&self, lock: &CacheLock, plan: &GcPlan) -> Result<GcDone, CacheError> {
        self.check_exclusive(lock)?;
        let mut done = GcDone::default();
        let mut order: Vec<&Garbage> = plan.remove.iter().collect();
        // Records first, objects last (see above); the plan is sorted by kind otherwise.
        order.sort_by_key(|g| (g.kind == GarbageKind::Object, g.kind));
        let mut folders: BTreeSet<PathBuf> = BTreeSet::new();
        for garbage in order {
            let path = self.root.join(&garbage.path);
            // Belt and braces: a listed path is built under the root, never `..`, never a link.
            let inside = garbage
                .path
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
            let meta = fs::symlink_metadata(&path);
            let result = match meta {
                _ if !inside => Err(std::io::Error::other("not a path inside the cache")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
                Ok(meta) if meta.file_type().is_symlink() => {
                    Err(std::io::Error::other("a symbolic link; left alone"))
                }
                Ok(meta) if meta.is_dir() => {
                    if garbage.kind == GarbageKind::Temporary {
                        fs::remove_dir_all(&path)
                    } else {
                        Err(std::io::Error::other("a folder; left alone"))
                    }
                }
                Ok(_) => {
                    // Objects are read-only; Windows refuses to remove those.
                    super::store::make_writable(&path);
                    match fs::remove_file(&path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        other => other,
                    }
                }
            };
            match result {
                Ok(()) => {
                    done.removed += 1;
                    done.removed_bytes += garbage.bytes;
                    if let Some(parent) = path.parent() {
                        folders.insert(parent.to_path_buf());
                    }
                }
                Err(e) => done.failed.push((path, e.to_string())),
            }
        }
        // Emptied shard and identity folders (never a bucket itself): `remove_dir` only removes
        // an empty folder, so a folder something else went into stays.
        let buckets: BTreeSet<PathBuf> = [OBJECTS_DIR, COVERAGE_DIR, NODES_DIR, FILES_DIR, TMP_DIR]
            .iter()
            .map(|b| self.root.join(b))
            .collect();
        for folder in folders {
            if !buckets.contains(&folder) && folder.starts_with(&self.root) {
                let _ = fs::remove_dir(&folder);
            }
        }
        Ok(done)
    }

    /// Whether every file a record names is stored with its size (a `stat` each).
    fn all_stored(&self, files: &[StoredFile]) -> bool {
        files.iter().all(|f| self.has_object(&f.blake3, f.size))
    }

    /// A listed file as garbage, its path relative to the root.
    fn garbage(&self, kind: GarbageKind, listed: &Listed) -> Garbage {
        Garbage {
            kind,
            path: listed
                .path
                .strip_prefix(&self.root)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| listed.path.clone()),
            bytes: listed.bytes,
        }
    }

    fn check_exclusive(&self, lock: &CacheLock) -> Result<(), CacheError> {
        if lock.alone() && lock.path() == self.root.join(super::LOCK_FILE) {
            Ok(())
        } else {
            Err(CacheError::Locked {
                path: lock.path().to_path_buf(),
                holder: "a run (gc needs the cache to itself)".into(),
            })
        }
    }
}

/// What a cache folder holds (`onc-pipe cache size`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    pub objects: usize,
    pub object_bytes: u64,
    pub node_records: usize,
    pub coverage_entries: usize,
    pub run_records: usize,
    /// Every regular file under the folder, links not followed.
    pub total_bytes: u64,
}

/// What the cache folder `root` holds, without creating anything: a missing folder holds
/// nothing. Errors: I/O listing a folder, naming it.
pub fn usage(root: &Path) -> Result<Usage, CacheError> {
    let mut usage = Usage::default();
    for shard in list_plain(&root.join(OBJECTS_DIR))? {
        if shard.is_dir {
            for object in list_plain(&shard.path)? {
                if !object.is_dir && normalize_hash(&object.name).is_some() {
                    usage.objects += 1;
                    usage.object_bytes += object.bytes;
                }
            }
        }
    }
    let json = |listed: &Listed| !listed.is_dir && listed.name.ends_with(".json");
    usage.node_records = list_plain(&root.join(NODES_DIR))?
        .iter()
        .filter(|l| json(l))
        .count();
    for identity in list_plain(&root.join(COVERAGE_DIR))? {
        if identity.is_dir {
            usage.coverage_entries += list_plain(&identity.path)?
                .iter()
                .filter(|l| json(l))
                .count();
        }
    }
    usage.run_records = list_plain(&root.join(super::RUNS_DIR))?
        .iter()
        .filter(|l| json(l))
        .count();
    usage.total_bytes = tree_bytes(root);
    Ok(usage)
}

impl Cache {
    /// Keeps the newest `keep` run records (by name, which is their start time) and
    /// `written`, the one just written, whatever its rank; removes the older ones. Returns how
    /// many went. Records of runs sharing the cache may be pruned by any of them: they are
    /// history, not state (`status` reads only the newest of a manifest's). Errors: listing
    /// `runs/`; a record that cannot be removed is left for the next run.
    pub fn prune_run_records(&self, keep: usize, written: &Path) -> Result<usize, CacheError> {
        let mut records: Vec<Listed> = list_plain(&self.root.join(super::RUNS_DIR))?
            .into_iter()
            .filter(|l| !l.is_dir && l.name.ends_with(".json"))
            .collect();
        // Newest first.
        records.sort_by(|a, b| b.name.cmp(&a.name));
        let mut removed = 0;
        for record in records.iter().skip(keep.max(1)) {
            if record.path == written {
                continue;
            }
            if fs::remove_file(&record.path).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(cache: &Cache, content: &[u8], name: &str) -> StoredFile {
        let object = cache.store_bytes(content).unwrap();
        StoredFile {
            name: name.into(),
            blake3: object.blake3,
            size: object.size,
            start_ms: None,
            end_ms: None,
        }
    }

    /// Two entries of one source far apart, one kept by range; a symbolic link out of the
    /// cache in its objects; gc removes exactly the other entry's object and record, follows
    /// no link, and the kept entry still reads whole.
    #[test]
    fn gc_keeps_by_range_and_never_leaves_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let cache = Cache::open(&dir.path().join("cache")).unwrap();
        let hour = 3_600_000;
        let near = stored(&cache, b"near", "near.flac");
        let far = stored(&cache, b"far", "far.flac");
        let entry = |key: &str, from_ms, files| CoverageEntry {
            key: key.into(),
            from_ms,
            to_ms: from_ms + hour,
            files,
            dp_request_id: None,
            dp_run_id: None,
            completed_at: "2026-01-01T00:00:00.000Z".into(),
        };
        cache
            .record_coverage("source", &entry("aa", 0, vec![near.clone()]))
            .unwrap();
        cache
            .record_coverage("source", &entry("bb", 20 * hour, vec![far.clone()]))
            .unwrap();
        cache.record_stored_file("source", &far).unwrap();
        // A file outside, reachable only through links inside the cache.
        let precious = outside.path().join("precious");
        fs::write(&precious, b"keep me").unwrap();
        let hex = "ab".repeat(32);
        let shard = cache.root().join(OBJECTS_DIR).join("ab");
        fs::create_dir_all(&shard).unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&precious, shard.join(&hex)).unwrap();
            std::os::unix::fs::symlink(outside.path(), cache.root().join(NODES_DIR).join("x"))
                .unwrap();
        }

        let lock = cache.lock().unwrap();
        let mut keep = Keep::default();
        keep.ranges
            .insert("source".into(), vec![(hour / 2, hour / 2 + 1)]);
        let options = GcOptions {
            keep,
            older_than: None,
        };
        let plan = cache.gc_plan(&lock, &options).unwrap();
        let listed: Vec<(GarbageKind, String)> = plan
            .remove
            .iter()
            .map(|g| (g.kind, g.path.display().to_string()))
            .collect();
        let far_object = format!("objects-v1/{}/{}", &far.blake3[..2], far.blake3);
        assert_eq!(
            listed,
            vec![
                (GarbageKind::Object, far_object.clone()),
                (
                    GarbageKind::CoverageEntry,
                    "coverage-v1/source/bb.json".into()
                ),
                (
                    GarbageKind::FileRecord,
                    plan.remove[2].path.display().to_string()
                ),
            ]
        );
        assert!(listed[2].1.starts_with("files-v1/f-"));
        let done = cache.gc_apply(&lock, &plan).unwrap();
        assert_eq!((done.removed, done.failed.len()), (3, 0));
        assert!(!cache.root().join(&far_object).exists());
        assert_eq!(fs::read(&precious).unwrap(), b"keep me");
        let coverage = cache.coverage("source").unwrap();
        assert_eq!(coverage.entries.len(), 1);
        assert!(coverage.problems.is_empty(), "{:?}", coverage.problems);
        assert!(cache.has_object(&near.blake3, near.size));
        assert!(cache.stored_file("source", "far.flac").is_none());

        // An object lost by other means: the kept entry naming it goes too.
        let lost = cache.object_path(&near.blake3);
        super::super::store::make_writable(&lost);
        fs::remove_file(&lost).unwrap();
        let plan = cache.gc_plan(&lock, &options).unwrap();
        let listed: Vec<String> = plan
            .remove
            .iter()
            .map(|g| g.path.display().to_string())
            .collect();
        assert_eq!(listed, vec!["coverage-v1/source/aa.json".to_owned()]);

        // A shared lock (a run's) is refused.
        drop(lock);
        let run = cache.lock_for_run().unwrap();
        cache.share(&run).unwrap();
        let other = Cache::open(cache.root()).unwrap();
        assert!(matches!(other.lock(), Err(CacheError::Locked { .. })));
    }

    #[test]
    fn run_records_are_pruned_to_the_newest_but_never_the_one_just_written() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let at = |minute: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_hms_opt(0, minute, 0)
                .unwrap()
                .and_utc()
        };
        let value = serde_json::json!({});
        let mut paths: Vec<PathBuf> = (10..15)
            .map(|m| cache.write_run_record(&value, at(m)).unwrap())
            .collect();
        // A record whose start sorts before the others (a long run that started first).
        let early = cache.write_run_record(&value, at(1)).unwrap();
        assert_eq!(cache.prune_run_records(3, &early).unwrap(), 2);
        let left: Vec<PathBuf> = list_plain(&dir.path().join(super::super::RUNS_DIR))
            .unwrap()
            .into_iter()
            .map(|l| l.path)
            .collect();
        paths.drain(..2);
        let mut expected = vec![early];
        expected.extend(paths);
        assert_eq!(left, expected);
    }
}
