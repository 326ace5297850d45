//! The human-readable output tree: hard links into the object store, and safe path joining.
//!
//! Input: an object path and a destination under `output.dir`; or a base folder and a relative
//! path that came from a request file or from ONC. Output: the destination in place (one copy
//! on disk when linking works), or the joined path. Errors: I/O naming the path,
//! [`CacheError::DestinationIsDirectory`], [`CacheError::UnsafePath`].

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use super::CacheError;
use super::store::copy_synced;
use crate::temp::{OUTPUT_TEMP_SUFFIX, unique_name};

/// Puts `object` at `dest` as a hard link, or a copy where linking fails (another filesystem,
/// a filesystem without hard links, too many links). Returns `true` if `dest` is a link.
///
/// Parent folders are created. An existing `dest` that already is this object (same inode) is
/// left alone; an existing copy with identical content is left alone too (and reported as a
/// copy). A missing `dest` is linked straight into place (atomic). Anything else (a copy, a
/// replacement) is made under a hidden temp name in the same folder, then renamed over `dest`,
/// so readers never see a missing or partial file; a kill between the two leaves the temp name,
/// which the next run sweeps ([`crate::temp::sweep_leftovers`]). A folder at `dest` is never
/// replaced.
pub fn link_output(object: &Path, dest: &Path) -> Result<bool, CacheError> {
    place_output(object, dest, true)
}

/// [`link_output`] with linking optionally disabled, so tests can exercise the copy fallback.
pub(crate) fn place_output(
    object: &Path,
    dest: &Path,
    allow_link: bool,
) -> Result<bool, CacheError> {
    let object_meta =
        fs::metadata(object).map_err(|e| CacheError::io("read metadata of", object, e))?;
    let file_name = dest.file_name().ok_or_else(|| {
        CacheError::io(
            "place an output at",
            dest,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"),
        )
    })?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(|e| CacheError::io("create directory", &parent, e))?;

    let existing = fs::symlink_metadata(dest).ok();
    if let Some(existing) = &existing {
        if existing.is_dir() {
            return Err(CacheError::DestinationIsDirectory {
                path: dest.to_path_buf(),
            });
        }
        if same_inode(&object_meta, existing) {
            return Ok(true);
        }
        if existing.is_file()
            && existing.len() == object_meta.len()
            && same_content(object, dest).unwrap_or(false)
        {
            return Ok(false);
        }
    }

    // A new name is linked straight into place: link(2) is atomic (the name appears complete),
    // and no temp name exists for a kill to leave behind. If the name appeared meanwhile (two
    // tasks placing one output), the rename below replaces it as for any existing file.
    if existing.is_none() && allow_link && fs::hard_link(object, dest).is_ok() {
        return Ok(true);
    }
    let temp = parent.join(format!(
        ".{}.{}",
        file_name.to_string_lossy(),
        unique_name("", OUTPUT_TEMP_SUFFIX)
    ));
    let linked = allow_link && fs::hard_link(object, &temp).is_ok();
    if !linked {
        // Whatever stopped the link (EXDEV, EPERM, EMLINK…), a copy still gives the user the
        // file; if the copy fails too, its error is the one worth reporting.
        if let Err(e) = copy_synced(object, &temp) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
    }
    rename_into_place(&temp, dest)?;
    Ok(linked)
}

/// Renames `temp` over `dest`, leaving no `temp` behind in any case.
///
/// POSIX `rename` does nothing (and succeeds) when both names already are links to the same
/// file: two tasks placing the same object at the same output race into exactly that, and the
/// hidden temp name would stay in the user's tree. The temp name is ours alone, so removing it
/// afterwards is always safe.
pub(crate) fn rename_into_place(temp: &Path, dest: &Path) -> Result<(), CacheError> {
    let renamed = fs::rename(temp, dest);
    let _ = fs::remove_file(temp);
    renamed.map_err(|e| CacheError::io("rename into", dest, e))
}

#[cfg(unix)]
fn same_inode(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Std has no stable file identity on other platforms; the content comparison decides there.
#[cfg(not(unix))]
fn same_inode(_a: &fs::Metadata, _b: &fs::Metadata) -> bool {
    false
}

/// Byte-for-byte comparison, streaming (outputs can be hundreds of MB).
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let mut fa = fs::File::open(a)?;
    let mut fb = fs::File::open(b)?;
    let mut buf_a = vec![0u8; 64 * 1024];
    let mut buf_b = vec![0u8; 64 * 1024];
    loop {
        let na = read_full(&mut fa, &mut buf_a)?;
        let nb = read_full(&mut fb, &mut buf_b)?;
        if na != nb || buf_a[..na] != buf_b[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the file ends (a plain `read` may return less at any time).
fn read_full(file: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `base.join(rel)`, refusing any `rel` that could land outside `base`: absolute paths, a root or
/// drive/UNC prefix, any `..` (even one that would stay inside: names from ONC or a request file
/// have no business climbing), and paths that name no file at all (empty, `.`). `.` components
/// are dropped. This is lexical: it does not follow symlinks already inside `base`.
pub fn safe_join(base: &Path, rel: &Path) -> Result<PathBuf, CacheError> {
    let refuse = |reason: &'static str| CacheError::UnsafePath {
        base: base.to_path_buf(),
        rel: rel.to_path_buf(),
        reason,
    };
    let mut clean = PathBuf::new();
    for component in rel.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("it contains `..`")),
            Component::RootDir => return Err(refuse("it is an absolute path")),
            Component::Prefix(_) => return Err(refuse("it has a drive or network prefix")),
        }
    }
    if clean.as_os_str().is_empty() {
        return Err(refuse("it names no file"));
    }
    Ok(base.join(clean))
}
