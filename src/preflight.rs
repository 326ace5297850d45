//! What the local machine must offer before anything is ordered: folders that can be written, and
//! free space on their file systems.
//!
//! Input: a folder (created if missing, as a run would). Output: `Ok` with the free bytes of its
//! file system. Errors: [`LocalProblem`], naming the folder and what the OS said, so a run fails
//! before its first request rather than after hours of downloads.

use std::path::{Path, PathBuf};

/// A folder a run needs that it cannot use.
#[derive(Debug, thiserror::Error)]
pub enum LocalProblem {
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write in {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the free space of {}: {source}", path.display())]
    FreeSpace {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates `folder` if needed, proves it writable by creating and removing a probe file, and
/// returns the free bytes of its file system.
pub fn check_writable(folder: &Path) -> Result<u64, LocalProblem> {
    std::fs::create_dir_all(folder).map_err(|source| LocalProblem::Create {
        path: folder.to_path_buf(),
        source,
    })?;
    let probe = folder.join(crate::temp::unique_name(crate::temp::PROBE_PREFIX, ".tmp"));
    std::fs::write(&probe, b"probe").map_err(|source| LocalProblem::Write {
        path: folder.to_path_buf(),
        source,
    })?;
    let _ = std::fs::remove_file(&probe);
    free_bytes(folder)
}

/// Free bytes (available to this user) on the file system holding `folder`.
pub fn free_bytes(folder: &Path) -> Result<u64, LocalProblem> {
    fs4::available_space(folder).map_err(|source| LocalProblem::FreeSpace {
        path: folder.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_folder_is_created_and_reports_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("a/b");
        let free = check_writable(&folder).unwrap();
        assert!(free > 0);
        assert!(folder.is_dir());
        assert_eq!(
            std::fs::read_dir(&folder).unwrap().count(),
            0,
            "probe removed"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_read_only_folder_is_named_in_the_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("ro");
        std::fs::create_dir(&folder).unwrap();
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permissions: nothing to test then.
        if std::fs::write(folder.join("x"), b"x").is_ok() {
            return;
        }
        let message = check_writable(&folder).unwrap_err().to_string();
        assert!(message.starts_with("cannot write in "), "{message}");
        assert!(message.contains("ro"), "{message}");
    }
}
