//! Temporary files that clean up after themselves: one guard and one naming scheme for every
//! temporary file onc-pipe writes (the cache's staged objects and records, downloads in flight).
//!
//! Input: a folder and a prefix or suffix. Output: unique names, and a [`TempGuard`] that deletes
//! its file when dropped unless it was disarmed (renamed into place) or kept. No errors: deleting
//! is best effort (the cache sweeps its `tmp/` at the start of every run).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other temporary file of this machine has: `<prefix><pid>-<counter>-<nanos><suffix>`,
/// unique within a process by the counter, across processes by the pid, and across pid reuse by
/// the time. Files are still created with `create_new`, which catches anything left.
pub fn unique_name(prefix: &str, suffix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{n}-{nanos:09}{suffix}", std::process::id())
}

/// Deletes a temporary file when dropped, unless disarmed or kept.
#[derive(Debug)]
pub struct TempGuard {
    path: Option<PathBuf>,
}

impl TempGuard {
    /// Guards `path` (which need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        TempGuard { path: Some(path) }
    }

    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The file was renamed into place: nothing to delete.
    pub fn disarm(mut self) {
        self.path = None;
    }

    /// The file outlives the guard; its path is handed to the caller.
    pub fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: the file may never have been created, or be gone already.
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_deletes_its_file_unless_disarmed_or_kept() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..3).map(|_| unique_name(".part-", ".tmp")).collect();
        assert!(
            names
                .iter()
                .all(|n| n.starts_with(".part-") && n.ends_with(".tmp"))
        );
        assert_ne!(names[0], names[1]);
        let paths: Vec<PathBuf> = names.iter().map(|n| dir.path().join(n)).collect();
        for path in &paths {
            std::fs::write(path, b"x").unwrap();
        }
        drop(TempGuard::new(paths[0].clone()));
        TempGuard::new(paths[1].clone()).disarm();
        let kept = TempGuard::new(paths[2].clone()).keep();
        assert!(!paths[0].exists());
        assert!(paths[1].exists());
        assert!(kept.exists());
        // A guard of a file never created drops quietly.
        drop(TempGuard::new(dir.path().join("never")));
    }
}
