//! Content-addressed objects: `objects-v1/<first 2 hex>/<full blake3 hex>`.
//!
//! Input: a finished temporary file in `tmp/` with its announced blake3 and size (or bytes).
//! Output: the object's path; the object is read-only, so an output-tree hard link cannot be
//! edited in place by accident (that would silently corrupt every user of the object).
//! Errors: size or hash mismatch (the temp file is left where it is, never moved in), I/O.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Cache, CacheError, OBJECTS_DIR, ensure_dir, sync_dir};
use crate::temp::TempGuard;

/// Where an object went, what it hashes to and how long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub path: PathBuf,
    pub blake3: String,
    pub size: u64,
}

const HASH_EXPECTED: &str = "64 hex digits";

/// `hex` as a canonical object name (64 lowercase hex digits), or `None`.
pub(crate) fn normalize_hash(hex: &str) -> Option<String> {
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// The blake3 hex and the length of a file, reading it once.
pub fn hash_file(path: &Path) -> Result<(String, u64), CacheError> {
    let file = fs::File::open(path).map_err(|e| CacheError::io("open", path, e))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(file)
        .map_err(|e| CacheError::io("read", path, e))?;
    Ok((hasher.finalize().to_hex().to_string(), hasher.count()))
}

impl Cache {
    /// The path an object with this hash has (whether or not it exists). A string that is not a
    /// blake3 hash gets a path that no object ever has, so checks on it simply find nothing.
    pub fn object_path(&self, blake3_hex: &str) -> PathBuf {
        let objects = self.root.join(OBJECTS_DIR);
        match normalize_hash(blake3_hex) {
            Some(hex) => objects.join(&hex[..2]).join(hex),
            None => objects.join("not-a-blake3-hash"),
        }
    }

    /// Moves a finished temp file into the store under its hash.
    ///
    /// Checks the size (and, with `verify`, the hash, by reading the file) before anything moves;
    /// on a mismatch the temp file stays where it is for the caller to report or delete. When an
    /// intact object with this hash already exists the temp file is deleted and the existing
    /// object kept, so hard links already pointing at it stay valid (deduplication). The object
    /// is made read-only, renamed into place, and its folder fsync'd.
    pub fn store_object(
        &self,
        temp: &Path,
        blake3_hex: &str,
        size: u64,
        verify: bool,
    ) -> Result<PathBuf, CacheError> {
        let hex = self.object_name(blake3_hex)?;
        let meta = fs::metadata(temp).map_err(|e| CacheError::io("read metadata of", temp, e))?;
        if !meta.is_file() {
            return Err(CacheError::io(
                "store",
                temp,
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        if meta.len() != size {
            return Err(CacheError::SizeMismatch {
                path: temp.to_path_buf(),
                expected: size,
                actual: meta.len(),
            });
        }
        if verify {
            let (actual, actual_size) = hash_file(temp)?;
            // The size can differ from the metadata if someone is still writing the file.
            if actual_size != size {
                return Err(CacheError::SizeMismatch {
                    path: temp.to_path_buf(),
                    expected: size,
                    actual: actual_size,
                });
            }
            if actual != hex {
                return Err(CacheError::HashMismatch {
                    path: temp.to_path_buf(),
                    expected: hex,
                    actual,
                });
            }
        }

        let dest = self.object_path(&hex);
        if let Ok(existing) = fs::symlink_metadata(&dest) {
            let intact = existing.is_file()
                && existing.len() == size
                // With `verify` the caller pays for hashing; make sure we do not keep a damaged
                // object of the right size in place of the good bytes we hold.
                && (!verify || hash_file(&dest).map(|(h, _)| h == hex).unwrap_or(false));
            if intact {
                fs::remove_file(temp).map_err(|e| CacheError::io("remove", temp, e))?;
                return Ok(dest);
            }
            // Damaged (or not a file): clear it so the rename below also works where renaming
            // over a read-only file is refused (Windows).
            make_writable(&dest);
            let cleared = if existing.is_dir() {
                fs::remove_dir_all(&dest)
            } else {
                fs::remove_file(&dest)
            };
            if let Err(e) = cleared
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(CacheError::io("remove damaged object", &dest, e));
            }
        }

        // Flush the content before the name appears: a crash must not leave a well-named object
        // with missing blocks. Cheap when the downloader already synced it.
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| CacheError::io("sync", temp, e))?;
        let folder = dest.parent().unwrap_or(&self.root).to_path_buf();
        ensure_dir(&folder)?;
        match fs::rename(temp, &dest) {
            Ok(()) => {}
            // The caller's temp file lives on another filesystem: stage a copy in our `tmp/`.
            Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
                let staged = TempGuard::new(self.new_temp_path("obj"));
                copy_synced(temp, staged.path())?;
                fs::rename(staged.path(), &dest)
                    .map_err(|e| CacheError::io("rename into", &dest, e))?;
                staged.disarm();
                fs::remove_file(temp).map_err(|e| CacheError::io("remove", temp, e))?;
            }
            Err(e) => return Err(CacheError::io("rename into", &dest, e)),
        }
        make_read_only(&dest)?;
        sync_dir(&folder)?;
        Ok(dest)
    }

    /// Stores bytes held in memory (small clip outputs, sidecars): temp file, hash, store.
    pub fn store_bytes(&self, bytes: &[u8]) -> Result<StoredObject, CacheError> {
        let temp = self.write_temp("obj", bytes)?;
        let blake3 = blake3::hash(bytes).to_hex().to_string();
        let size = bytes.len() as u64;
        let path = self.store_object(temp.path(), &blake3, size, false)?;
        // The temp file was moved or deleted; nothing left for the guard to do.
        temp.disarm();
        Ok(StoredObject { path, blake3, size })
    }

    /// `blake3_hex` as an object name, or the error saying what a hash looks like.
    fn object_name(&self, blake3_hex: &str) -> Result<String, CacheError> {
        normalize_hash(blake3_hex).ok_or_else(|| CacheError::InvalidKey {
            what: "blake3 hash",
            key: blake3_hex.to_string(),
            dir: self.root.join(OBJECTS_DIR),
            expected: HASH_EXPECTED,
        })
    }

    /// Whether the object exists with this size. A cheap `stat`: it does not read the content
    /// (see [`Cache::verify_object`]).
    pub fn has_object(&self, blake3_hex: &str, size: u64) -> bool {
        normalize_hash(blake3_hex).is_some()
            && fs::metadata(self.object_path(blake3_hex))
                .map(|m| m.is_file() && m.len() == size)
                .unwrap_or(false)
    }

    /// Re-hashes the object: `Ok(false)` when it is missing, has another size or other content
    /// (truncated, bit rot, edited) — the caller re-fetches it. Errors only when it exists but
    /// cannot be read, or when `blake3_hex` is not a hash at all.
    pub fn verify_object(&self, blake3_hex: &str, size: u64) -> Result<bool, CacheError> {
        let hex = self.object_name(blake3_hex)?;
        let path = self.object_path(&hex);
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() == size => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(CacheError::io("read metadata of", &path, e)),
        }
        let (actual, actual_size) = hash_file(&path)?;
        Ok(actual == hex && actual_size == size)
    }
}

/// Copies `from` to a new file `to` and fsyncs it. Unlike `fs::copy` it does not copy the
/// permissions: a copy made from a read-only object is an ordinary, writable file.
pub(crate) fn copy_synced(from: &Path, to: &Path) -> Result<(), CacheError> {
    let mut source = fs::File::open(from).map_err(|e| CacheError::io("open", from, e))?;
    let mut target = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(|e| CacheError::io("create", to, e))?;
    std::io::copy(&mut source, &mut target).map_err(|e| CacheError::io("copy to", to, e))?;
    target
        .sync_all()
        .map_err(|e| CacheError::io("sync", to, e))?;
    Ok(())
}

fn make_read_only(path: &Path) -> Result<(), CacheError> {
    let meta = fs::metadata(path).map_err(|e| CacheError::io("read metadata of", path, e))?;
    let mut perms = meta.permissions();
    if !perms.readonly() {
        perms.set_readonly(true);
        fs::set_permissions(path, perms).map_err(|e| CacheError::io("make read-only", path, e))?;
    }
    Ok(())
}

/// Best effort: only used before deleting a damaged object.
pub(super) fn make_writable(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    if let Ok(meta) = fs::metadata(path) {
        let mut perms = meta.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        let _ = fs::set_permissions(path, perms);
    }
}
