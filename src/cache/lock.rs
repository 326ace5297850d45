//! The cache lock: shared by runs, exclusive for work that needs the cache to itself.
//!
//! Input: the cache. Output: a [`CacheLock`] held until dropped — shared ([`Cache::lock_for_run`]:
//! any number of runs at once, each ONC node claimed by one of them, see `node_claims`) or
//! exclusive ([`Cache::lock`]: clearing `tmp/`, housekeeping). Errors: [`CacheError::Locked`]
//! naming the holder ("pid 1234 since 2026-…", read from the lock file), or I/O on the lock file.
//!
//! The lock is an OS file lock (`File::try_lock`: `flock` on Unix, `LockFileEx` on Windows), not
//! the existence of a file: the OS drops it when the process dies, so a killed run never leaves
//! a stale lock for the next one to argue with. The pid and time inside the file are only there
//! for the message.

use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::PathBuf;

use super::{Cache, CacheError, LOCK_FILE};

/// An exclusive lock on the cache; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct CacheLock {
    file: fs::File,
    path: PathBuf,
    /// Whether this lock was exclusive when taken: no other run was using the cache then.
    alone: bool,
}

impl CacheLock {
    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether no other run held the cache when this one locked it (so leftovers in `tmp/` and
    /// in the output folders can only be debris of a dead run).
    pub fn alone(&self) -> bool {
        self.alone
    }
}

impl Drop for CacheLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first just makes it immediate
        // even if a clone of the handle were alive. Nothing useful to do with an error here.
        let _ = self.file.unlock();
    }
}

impl Cache {
    /// Takes the run lock, or says who holds it.
    // `File::try_lock` (Rust 1.89, hence `rust-version`) is an OS lock that dies with its
    // process, so a killed run never leaves a stale lock; a pid file would.
    pub fn lock(&self) -> Result<CacheLock, CacheError> {
        let (mut file, path) = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(locked(&mut file, path)),
            Err(fs::TryLockError::Error(e)) => return Err(CacheError::io("lock", &path, e)),
        }
        write_holder(&mut file, &path)?;
        Ok(CacheLock {
            file,
            path,
            alone: true,
        })
    }

    /// The lock a run holds: exclusive when no other run is using the cache (the caller may
    /// then clear `tmp/` and call [`Cache::share`]), else shared with the others. Fails only
    /// while something holds the cache exclusively for longer than a run's start-up clearing
    /// (a few seconds), naming the holder.
    pub fn lock_for_run(&self) -> Result<CacheLock, CacheError> {
        let (mut file, path) = self.open_lock_file()?;
        match file.try_lock() {
            Ok(()) => {
                write_holder(&mut file, &path)?;
                return Ok(CacheLock {
                    file,
                    path,
                    alone: true,
                });
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(CacheError::io("lock", &path, e)),
        }
        // Another run holds it: shared if it is sharing, else wait out its start-up (it clears
        // `tmp/` under the exclusive lock, then shares it).
        for attempt in 0..50 {
            match file.try_lock_shared() {
                Ok(()) => {
                    return Ok(CacheLock {
                        file,
                        path,
                        alone: false,
                    });
                }
                Err(fs::TryLockError::WouldBlock) if attempt < 49 => {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    return Err(CacheError::io("lock", &path, e));
                }
            }
        }
        Err(locked(&mut file, path))
    }

    /// Turns an exclusive run lock into a shared one, so other runs can start beside this one.
    pub fn share(&self, lock: &CacheLock) -> Result<(), CacheError> {
        // flock converts in place; nobody else can hold the file while we hold it exclusively,
        // so this never waits.
        lock.file
            .lock_shared()
            .map_err(|e| CacheError::io("share the lock", &lock.path, e))
    }

    fn open_lock_file(&self) -> Result<(fs::File, PathBuf), CacheError> {
        let path = self.root.join(LOCK_FILE);
        Ok((open_lock_file(&path)?, path))
    }
}

/// Opens (creating if missing) a file to lock. No truncation on open: the holder's pid must still
/// be readable if we lose the race.
pub(super) fn open_lock_file(path: &std::path::Path) -> Result<fs::File, CacheError> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| CacheError::io("open the lock file", path, e))
}

/// The error for a cache someone else holds, with who it is when the lock file says.
fn locked(file: &mut fs::File, path: PathBuf) -> CacheError {
    let holder = read_holder(file, "another process");
    CacheError::Locked { path, holder }
}

/// Who holds a lock file, as its holder wrote it ([`write_holder`]); `unknown` when it has not
/// written it yet (it may be between locking and writing) or the text is not a holder's.
pub(super) fn read_holder(file: &mut fs::File, unknown: &str) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() || text.len() > 200 {
        unknown.to_owned()
    } else {
        text.to_owned()
    }
}

/// Writes "pid N since T" into the lock file, for the message of whoever finds it held.
pub(super) fn write_holder(file: &mut fs::File, path: &std::path::Path) -> Result<(), CacheError> {
    let holder = format!(
        "pid {} since {}",
        std::process::id(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    file.set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(format!("{holder}\n").as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|e| CacheError::io("write", path, e))
}
