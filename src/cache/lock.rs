//! The run lock: one run per cache at a time.
//!
//! Input: the cache. Output: a [`CacheLock`] held until dropped. Errors:
//! [`CacheError::Locked`] naming the holder ("pid 1234 since 2026-…", read from the lock file),
//! or I/O on the lock file.
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
}

impl CacheLock {
    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
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
        let path = self.root.join(LOCK_FILE);
        // No truncation on open: the holder's pid must still be readable if we lose the race.
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| CacheError::io("open the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may be between locking and writing its pid: then we know no more
                // than "another process".
                let _ = file.read_to_string(&mut text);
                let text = text.trim();
                let holder = if text.is_empty() || text.len() > 200 {
                    "another process".to_string()
                } else {
                    text.to_string()
                };
                return Err(CacheError::Locked { path, holder });
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(CacheError::io("lock", &path, e));
            }
        }
        let holder = format!(
            "pid {} since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{holder}\n").as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| CacheError::io("write", &path, e))?;
        Ok(CacheLock { file, path })
    }
}
