//! The on-disk cache: content-addressed objects, coverage of completed ONC queries, the journal
//! of in-flight submissions, node records, run records and the run lock.
//!
//! Input: a cache directory (`output.cache` in the manifest) and what the executor hands over —
//! verified temporary files, coverage entries, journal entries, node and run records.
//! Output: a versioned layout in which every finished file appeared in one atomic rename:
//!
//! ```text
//! CACHE/
//!   objects-v1/ab/ab01…ef               content-addressed files, named by their full blake3 hex
//!   coverage-v1/<identity>/<key>.json   what a completed ONC query covered, per source identity
//!   journal-v1/<node key>.json          in-flight ONC submissions, written before they are used
//!   discovery-v1/<query hash>.json      ONC's deployments answers, with when they were fetched
//!   nodes-v1/<node key>.json            node records, written last, after outputs are stored
//!   runs/<UTC time>.json                run records
//!   claims-v1/<node key>.lock           which run orders which ONC node (an OS lock per node)
//!   claims-v1/f-<file key>.lock         which run downloads which source file
//!   files-v1/f-<file key>.json          source files stored, for the other runs of the cache
//!   pushed-v1/<store>/ab/ab01…ef        objects known to be in a team store (remote caches)
//!   cache-id                            this folder's random id (claims in a team store name it)
//!   tmp/                                temporary files (downloads land here; same filesystem)
//!   lock                                the cache lock, shared by runs (pid and start time)
//! ```
//!
//! Errors: [`CacheError`], one variant per way the disk can refuse, each naming the path.
//! A *corrupted* cache is never an error and never a panic: unreadable or inconsistent records
//! are treated as missing and reported as a reason ([`Lookup::Corrupt`], [`Coverage::problems`]),
//! so the executor re-fetches and can say why.
//!
//! Why it is built this way (uv-cache and cargo habits):
//! * **Atomic writes**: every file is written to `tmp/`, fsync'd, renamed into place, and the
//!   folder fsync'd, so a crash leaves either the old file or the new one, never half of one.
//! * **Versioned layout**: each bucket carries `-v1`; a future format gets `-v2` beside it instead
//!   of misreading old files.
//! * **Success recorded last**: coverage refuses to name a file whose object is not stored, and a
//!   node record whose outputs have gone missing reads as corrupt, so a record never outlives the
//!   data it vouches for.

mod coverage;
mod discovery;
mod gc;
mod journal;
mod links;
mod lock;
mod names;
mod node_claims;
mod records;
pub mod remote;
mod store;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::temp::TempGuard;

pub use coverage::{Coverage, CoverageEntry, StoredFile};
pub use discovery::DiscoveryRecord;
pub use gc::{Garbage, GarbageKind, GcDone, GcOptions, GcPlan, Keep, Usage, usage};
pub use journal::{JournalEntry, JournalScan};
pub use links::{link_output, safe_join};
pub use lock::CacheLock;
pub use names::sanitise_name;
pub use node_claims::NodeClaim;
pub use records::NodeRecord;
pub(crate) use store::normalize_hash;
pub use store::{StoredObject, hash_file};

/// Bucket of content-addressed objects.
pub const OBJECTS_DIR: &str = "objects-v1";
/// Bucket of coverage entries.
pub const COVERAGE_DIR: &str = "coverage-v1";
/// Bucket of ONC's discovery answers (deployments), with the time they were fetched.
pub const DISCOVERY_DIR: &str = "discovery-v1";
/// Bucket of journal entries.
pub const JOURNAL_DIR: &str = "journal-v1";
/// Bucket of node records.
pub const NODES_DIR: &str = "nodes-v1";
/// Folder of run records.
pub const RUNS_DIR: &str = "runs";
/// Folder of node claims: which run is ordering which ONC node.
pub const CLAIMS_DIR: &str = "claims-v1";
/// Folder of records of single source files stored by a run (for other runs sharing the cache).
pub const FILES_DIR: &str = "files-v1";
/// Folder of temporary files.
pub const TMP_DIR: &str = "tmp";
/// The lock file.
pub const LOCK_FILE: &str = "lock";

/// Everything that can go wrong in the cache. Messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// An I/O operation on `path` failed; `action` says which ("create directory", "read", …).
    #[error("{action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record could not be serialised (should not happen with our types, but is not a panic).
    #[error("serialise {}: {source}", .path.display())]
    Serialize {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// A file handed to `store_object` does not have the size it was announced with.
    #[error("store {} in the cache: it has {actual} bytes, expected {expected}", .path.display())]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    /// A file handed to `store_object` does not have the blake3 hash it was announced with.
    #[error("store {} in the cache: its blake3 is {actual}, expected {expected}", .path.display())]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// A hash or key that cannot safely name a file (not hex, empty, a path separator, …).
    #[error("use `{key}` as a {what} under {}: expected {expected}", .dir.display())]
    InvalidKey {
        what: &'static str,
        key: String,
        dir: PathBuf,
        expected: &'static str,
    },
    /// A coverage entry or node record names a file whose object is not (or no longer) in the store.
    #[error(
        "record {}: file `{name}` has no stored object {}",
        .path.display(),
        .object.display()
    )]
    MissingObject {
        path: PathBuf,
        name: String,
        object: PathBuf,
    },
    /// Another process holds the run lock.
    #[error(
        "lock the cache {}: {holder} holds it exclusively (runs share a cache, but not while one clears it at start-up or it is being cleaned)",
        .path.display()
    )]
    Locked { path: PathBuf, holder: String },
    /// A relative path from a request file or from ONC would land outside its base folder.
    #[error("place `{}` under {}: {reason}", .rel.display(), .base.display())]
    UnsafePath {
        base: PathBuf,
        rel: PathBuf,
        reason: &'static str,
    },
    /// The team cache's object store refused or failed (see [`remote::RemoteError`]).
    #[error("{0}")]
    Remote(Box<remote::RemoteError>),
    /// An output destination exists and is something we must not replace (a folder).
    #[error("replace {}: it is a directory, not a file", .path.display())]
    DestinationIsDirectory { path: PathBuf },
}

impl From<remote::RemoteError> for CacheError {
    fn from(error: remote::RemoteError) -> Self {
        CacheError::Remote(Box::new(error))
    }
}

impl CacheError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        CacheError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The result of looking up a record that may be missing or damaged.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    /// No record: the work has not been done (or was never recorded).
    Missing,
    /// A readable, consistent record.
    Found(T),
    /// A record exists but cannot be trusted; the string says why (file name + reason). The
    /// caller treats it as missing and can show the reason (e.g. as a dirty reason).
    Corrupt(String),
}

impl<T> Lookup<T> {
    /// The record if it was found; missing and corrupt both give `None`.
    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(value) => Some(value),
            Lookup::Missing | Lookup::Corrupt(_) => None,
        }
    }
}

/// A cache directory with its layout in place.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// The team store behind this folder, when the cache is `s3://…` or `file://…`: written
    /// through on every record, read when the folder lacks something.
    remote: Option<std::sync::Arc<remote::Remote>>,
}

impl Cache {
    /// Creates the layout if missing and checks that `tmp/` is writable.
    ///
    /// Errors if the root or a bucket cannot be created, or a probe file cannot be written — a
    /// read-only cache would otherwise fail later, in the middle of a run.
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        let cache = Cache {
            root: root.to_path_buf(),
            remote: None,
        };
        for dir in [
            root.to_path_buf(),
            root.join(OBJECTS_DIR),
            root.join(COVERAGE_DIR),
            root.join(JOURNAL_DIR),
            root.join(NODES_DIR),
            root.join(RUNS_DIR),
            root.join(CLAIMS_DIR),
            root.join(TMP_DIR),
        ] {
            ensure_dir(&dir)?;
        }
        // Like cargo's target dir: backup tools skip a tagged folder, and git ignores it when the
        // cache sits inside a project (the default `.onc-pipe`). Written once, never rewritten.
        // Both are written before the cache is locked, so through a temp name beside them, not
        // in `tmp/`: a run clearing `tmp/` at that moment must not take the temp file away.
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_beside(
                &tag,
                b"Signature: 8a477f597d28d172789f06886806bc55\n\
                  # This file is a cache directory tag created by onc-pipe.\n\
                  # For information about cache directory tags see https://bford.info/cachedir/\n",
            )?;
        }
        let gitignore = root.join(".gitignore");
        if !gitignore.exists() {
            write_beside(&gitignore, b"# Created by onc-pipe\n*\n")?;
        }
        // Probe: an existing but read-only cache must fail now, with its path. Another run
        // clearing `tmp/` may remove it first: that is no failure.
        let probe = cache.new_temp_path("probe");
        fs::File::create(&probe).map_err(|e| CacheError::io("write to", &probe, e))?;
        match fs::remove_file(&probe) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(CacheError::io("remove", &probe, e));
            }
            _ => {}
        }
        Ok(cache)
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This folder in front of the team store `remote`.
    pub fn with_remote(mut self, remote: std::sync::Arc<remote::Remote>) -> Cache {
        self.remote = Some(remote);
        self
    }

    /// The team store behind this folder, if any.
    pub fn remote(&self) -> Option<&std::sync::Arc<remote::Remote>> {
        self.remote.as_ref()
    }

    /// This folder's random id, made on first use: claims in a team store carry it, so a run
    /// that holds this folder's OS lock on a node knows a claim from the same folder is dead.
    pub fn cache_id(&self) -> Result<String, CacheError> {
        let path = self.root.join("cache-id");
        if let Ok(text) = fs::read_to_string(&path) {
            let id = text.trim();
            if check_key("cache id", id, &self.root).is_ok() {
                return Ok(id.to_owned());
            }
        }
        let seed = format!(
            "{} {} {:?}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            std::thread::current().id()
        );
        let id = blake3::hash(seed.as_bytes()).to_hex()[..24].to_owned();
        write_beside(&path, format!("{id}\n").as_bytes())?;
        // Two runs may race the first write: both then read the one that stayed.
        Ok(fs::read_to_string(&path)
            .ok()
            .map(|text| text.trim().to_owned())
            .filter(|text| check_key("cache id", text, &self.root).is_ok())
            .unwrap_or(id))
    }

    /// The local marker saying object `hex` is in the team store.
    /// Per store (`store` names it): one folder may sit in front of several.
    pub(crate) fn pushed_marker(&self, store: &str, hex: &str) -> PathBuf {
        let hex = store::normalize_hash(hex).unwrap_or_else(|| "not-a-blake3-hash".into());
        self.root
            .join(remote::sync_dir_name())
            .join(store)
            .join(&hex[..2])
            .join(hex)
    }

    /// Best effort: without the marker the object is only offered to the store again.
    pub(crate) fn mark_pushed(&self, marker: &Path) {
        if let Some(folder) = marker.parent() {
            let _ = fs::create_dir_all(folder);
        }
        let _ = fs::File::create(marker);
    }

    /// `CACHE/tmp`: where downloads and atomic writes start (same filesystem as the objects).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    /// Removes everything in `tmp/` — partial downloads and temp files left by a killed run —
    /// when `lock` was taken with the cache to itself (else nothing: another run may be writing
    /// there). Returns how many entries were removed.
    pub fn clear_tmp(&self, lock: &CacheLock) -> Result<usize, CacheError> {
        if !lock.alone() {
            // Other runs are using the cache: what is in `tmp/` may be theirs.
            return Ok(0);
        }
        let dir = self.tmp_dir();
        let entries = fs::read_dir(&dir).map_err(|e| CacheError::io("list", &dir, e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| CacheError::io("list", &dir, e))?;
            let path = entry.path();
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            let result = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(CacheError::io("remove", &path, e)),
            }
        }
        Ok(removed)
    }

    /// A fresh, unused path in `tmp/` ending in `.{suffix}`.
    pub(crate) fn new_temp_path(&self, suffix: &str) -> PathBuf {
        self.tmp_dir()
            .join(crate::temp::unique_name("", &format!(".{suffix}")))
    }

    /// `bytes` in a new, fsync'd file under `tmp/`, deleted unless the caller disarms the guard.
    pub(crate) fn write_temp(&self, suffix: &str, bytes: &[u8]) -> Result<TempGuard, CacheError> {
        let (temp, file) = self.write_temp_unsynced(suffix, bytes)?;
        file.sync_all()
            .map_err(|e| CacheError::io("sync", temp.path(), e))?;
        Ok(temp)
    }

    /// `bytes` in a new file under `tmp/`, not yet fsync'd; its open handle for the caller to.
    fn write_temp_unsynced(
        &self,
        suffix: &str,
        bytes: &[u8],
    ) -> Result<(TempGuard, fs::File), CacheError> {
        let temp = TempGuard::new(self.new_temp_path(suffix));
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(temp.path())
            .map_err(|e| CacheError::io("create", temp.path(), e))?;
        file.write_all(bytes)
            .map_err(|e| CacheError::io("write", temp.path(), e))?;
        Ok((temp, file))
    }

    /// Writes `bytes` to `dest` atomically: temp file in `tmp/`, fsync, rename, fsync the folder.
    /// Readers see the old content or the new, never a mix; no temp file survives an error.
    pub(crate) fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        let temp = self.write_temp("tmp", bytes)?;
        if let Some(parent) = dest.parent() {
            ensure_dir(parent)?;
        }
        fs::rename(temp.path(), dest).map_err(|e| CacheError::io("rename into", dest, e))?;
        temp.disarm();
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Writes a *new* file `dest` so that it is visible as soon as possible and durable before
    /// this returns: temp file in `tmp/`, rename, then fsync of the file and its folder.
    ///
    /// For the journal's first entry of a submission: between ONC's answer and the entry being
    /// visible, a SIGKILL loses the dpRequestId (ONC has no idempotency key to find it again)
    /// and the next run submits again. A process's death keeps the page cache, so the renamed
    /// file survives it; [`Cache::write_atomic`]'s fsync before the rename (milliseconds) would
    /// widen that window for nothing. A power cut before the fsync may leave the file empty or
    /// partial: it then reads as damaged, that is absent, as if the write had not happened —
    /// and the id is not used before the fsync. Not for replacing a file: the old content could
    /// be lost to a power cut.
    pub(crate) fn write_new_visible_first(
        &self,
        dest: &Path,
        bytes: &[u8],
    ) -> Result<(), CacheError> {
        let (temp, file) = self.write_temp_unsynced("tmp", bytes)?;
        if let Some(parent) = dest.parent() {
            ensure_dir(parent)?;
        }
        fs::rename(temp.path(), dest).map_err(|e| CacheError::io("rename into", dest, e))?;
        temp.disarm();
        // The open handle still names the same inode, now at `dest`.
        file.sync_all()
            .map_err(|e| CacheError::io("sync", dest, e))?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent)?;
        }
        Ok(())
    }

    /// Serialises `value` as pretty JSON (people read these files) and writes it atomically.
    pub(crate) fn write_json_atomic<T: serde::Serialize>(
        &self,
        dest: &Path,
        value: &T,
    ) -> Result<(), CacheError> {
        self.write_atomic(dest, &json_bytes(dest, value)?)
    }
}

/// Writes a small file that several processes may write at once with the same content (the
/// cache's tag files): a unique temp name in the same folder, then a rename, so a reader never
/// sees half of it and concurrent writers cannot disturb each other.
fn write_beside(dest: &Path, bytes: &[u8]) -> Result<(), CacheError> {
    let folder = dest.parent().unwrap_or(Path::new("."));
    let temp = TempGuard::new(folder.join(crate::temp::unique_name(".", ".onc-pipe-tmp")));
    fs::write(temp.path(), bytes).map_err(|e| CacheError::io("write", temp.path(), e))?;
    fs::rename(temp.path(), dest).map_err(|e| CacheError::io("rename into", dest, e))?;
    temp.disarm();
    Ok(())
}

/// `value` as the cache writes JSON records: pretty (people read these files), newline-ended.
/// `dest` names the record in the error.
pub(crate) fn json_bytes<T: serde::Serialize>(
    dest: &Path,
    value: &T,
) -> Result<Vec<u8>, CacheError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| CacheError::Serialize {
        path: dest.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Creates `dir` (and parents) if missing; fsyncs the parent of a folder we created so that the
/// folder itself survives a crash (otherwise a record inside it could vanish with it).
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), CacheError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(CacheError::io(
                "create directory",
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file with this name is in the way",
                ),
            ));
        }
        Err(_) => {}
    }
    fs::create_dir_all(dir).map_err(|e| CacheError::io("create directory", dir, e))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Makes a rename or create inside `dir` durable. Only meaningful (and only possible) on Unix:
/// Windows cannot open a folder as a file, and NTFS journals metadata itself.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    #[cfg(unix)]
    {
        let handle = fs::File::open(dir).map_err(|e| CacheError::io("open directory", dir, e))?;
        handle
            .sync_all()
            .map_err(|e| CacheError::io("sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

const KEY_EXPECTED: &str = "1 to 128 ASCII letters, digits, '-' or '_'";

/// Whether `key` may name a file: 1 to 128 of `[A-Za-z0-9_-]`. Node keys and identities are
/// lowercase hex; the wider set keeps tests readable. Rejecting everything else means no key can
/// carry a separator, `..` or a drive prefix out of its bucket.
pub(crate) fn check_key(what: &'static str, key: &str, dir: &Path) -> Result<(), CacheError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(CacheError::InvalidKey {
            what,
            key: key.to_string(),
            dir: dir.to_path_buf(),
            expected: KEY_EXPECTED,
        })
    }
}

/// Reads a JSON record, turning every way it can be unreadable into a reason (file name +
/// what is wrong) rather than an error: a damaged record is a missing record.
pub(crate) fn read_json_record<T: serde::de::DeserializeOwned>(path: &Path) -> Lookup<T> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Lookup::Missing,
        // A permission problem or a folder in the way is still "cannot trust it": report it as
        // corrupt so the run goes on and re-creates it.
        Err(e) => return Lookup::Corrupt(format!("{}: cannot be read ({e})", path.display())),
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Lookup::Found(value),
        Err(e) => Lookup::Corrupt(format!("{}: not a valid record ({e})", path.display())),
    }
}

#[cfg(test)]
mod tests;
