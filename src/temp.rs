//! Temporary files that clean up after themselves: one guard and one naming scheme for every
//! temporary file onc-pipe writes (the cache's staged objects and records, downloads in flight).
//!
//! Input: a folder and a prefix or suffix. Output: unique names, and a [`TempGuard`] that deletes
//! its file when dropped unless it was disarmed (renamed into place) or kept. No errors: deleting
//! is best effort (the cache sweeps its `tmp/` at the start of every run, and the run sweeps the
//! output folders it writes to of the names below, [`sweep_leftovers`]: a SIGKILL runs no drop).

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

/// The ending of the hidden name an output is linked or copied under beside its destination,
/// before it is renamed over it (`.NAME.<unique>.onc-pipe-tmp`).
pub const OUTPUT_TEMP_SUFFIX: &str = ".onc-pipe-tmp";

/// The start of the file that proves a folder writable before a run (`.onc-pipe-write-probe<unique>.tmp`).
pub const PROBE_PREFIX: &str = ".onc-pipe-write-probe";

/// Whether `name` is one of the temporary names onc-pipe makes in the output tree.
pub fn is_output_temp_name(name: &str) -> bool {
    name.starts_with('.')
        && (name.ends_with(OUTPUT_TEMP_SUFFIX)
            || (name.starts_with(PROBE_PREFIX) && name.ends_with(".tmp")))
}

/// Removes from `folder` (not its subfolders) the temporary names of [`is_output_temp_name`] a
/// killed run left there; returns how many. A missing or unreadable folder has none.
///
/// Called by a run, under the cache lock, before it places any output: no run is writing there
/// then, so such a name can only be a leftover. (Two runs with different caches writing one
/// output tree at the same moment are not supported: they race on the outputs' names anyway.)
pub fn sweep_leftovers(folder: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| is_output_temp_name(&entry.file_name().to_string_lossy()))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
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

    #[test]
    fn a_sweep_removes_only_leftover_temp_names() {
        let dir = tempfile::tempdir().unwrap();
        let leftovers = [
            ".clip.flac.123-4-5.onc-pipe-tmp",
            ".onc-pipe-write-probe123-0-000000001.tmp",
        ];
        let kept = [
            "clip.flac",
            ".hidden-by-the-user",
            "clip.flac.onc-pipe-tmp",
            ".onc-pipe-write-probe-notes.txt",
        ];
        for name in leftovers.iter().chain(&kept) {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join(".sub.onc-pipe-tmp")).unwrap();
        assert_eq!(sweep_leftovers(dir.path()), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected: Vec<&str> = kept.to_vec();
        expected.push(".sub.onc-pipe-tmp");
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(sweep_leftovers(&dir.path().join("missing")), 0);
    }
}
