//! The output tree against the manifest: which files in it the manifest no longer produces
//! (an event renamed, a stage or window removed, a padding changed), for `status` to list and
//! `clean` to remove.
//!
//! Input: the compiled plan and DAG, the cache (coverage and clip records) and the output root.
//! Output: [`StaleOutputs`], the files onc-pipe placed that the manifest does not produce now,
//! relative to the output root and sorted. Only onc-pipe's own folders are looked at —
//! `DEVICE/TAG/{mat,png,audio,archive,spectrograms}/` and `DEVICE/TAG/clips/{spectrograms,audio}/`
//! — so a user's notes or notebooks anywhere else in the tree are never listed, and hidden
//! names (a run's temporary files) are left to the run that sweeps them. No errors: an
//! unreadable folder or record lists nothing (nothing is removed on a guess).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::job::{jobs, source_identity};
use crate::cache::{Cache, sanitise_name};
use crate::dag::{Dag, NodeKind};
use crate::plan::Plan;

/// The folders under `DEVICE/TAG/` where ONC's files are linked (see `job::subfolder`).
const FETCH_FOLDERS: [&str; 5] = ["mat", "png", "audio", "archive", "spectrograms"];
/// The folders under `DEVICE/TAG/clips/` where clips are written.
const CLIP_FOLDERS: [&str; 2] = ["spectrograms", "audio"];

/// Files in the output tree the manifest no longer produces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaleOutputs {
    /// Relative to the output root, sorted.
    pub files: Vec<PathBuf>,
    pub bytes: u64,
}

/// Every file the manifest produces that its cache knows of, relative to the output root:
/// each ONC node's files (those the coverage of its source holds for its window) in each of
/// its folders, and each clip's files from its record. `None` when a clip record cannot be
/// read: then nothing can be called stale with certainty.
fn produced(plan: &Plan, dag: &Dag, cache: &Cache, output_dir: &Path) -> Option<BTreeSet<PathBuf>> {
    let server = plan.settings.base_url.as_str();
    let mut produced = BTreeSet::new();
    let mut coverages: HashMap<String, Option<crate::cache::Coverage>> = HashMap::new();
    for job in jobs(plan, dag, output_dir) {
        let identity = source_identity(server, &job.query);
        let coverage = coverages
            .entry(identity)
            .or_insert_with_key(|identity| cache.coverage(identity).ok());
        let coverage = coverage.as_ref()?;
        for file in coverage.files_overlapping(job.from_ms, job.to_ms) {
            let name = sanitise_name(&file.name).unwrap_or_else(|| file.blake3.clone());
            for destination in &job.destinations {
                if let Ok(folder) = destination.strip_prefix(output_dir) {
                    produced.insert(folder.join(&name));
                }
            }
        }
    }
    for node in dag.nodes().filter(|node| node.kind == NodeKind::Clip) {
        match cache.read_node_record(&node.key.to_hex()) {
            Ok(Some(record)) => {
                for output in &record.outputs {
                    let file = PathBuf::from(&output.name);
                    // An audio clip's label track and its folder's selection table are ours.
                    produced.extend(
                        crate::annotations::annotation_files(&file)
                            .into_iter()
                            .flatten(),
                    );
                    produced.insert(file);
                }
            }
            Ok(None) => {}
            Err(_) => return None,
        }
    }
    Some(produced)
}

/// The visible files of `folder` (not its subfolders), relative to `root`.
fn files_in(root: &Path, folder: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        // `file_type` does not follow symlinks: a link the user put there is not ours.
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
        .map(|entry| {
            let size = entry.metadata().map_or(0, |meta| meta.len());
            (folder.join(entry.file_name()), size)
        })
        .collect()
}

/// The subfolders of `folder` (relative to `root`), not following symlinks.
fn folders_in(root: &Path, folder: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .map(|entry| folder.join(entry.file_name()))
        .collect()
}

/// The files in onc-pipe's folders of `output_dir` that the manifest does not produce now (see
/// the module doc). Empty when the cache cannot say what it produces.
pub fn stale_outputs(plan: &Plan, dag: &Dag, cache: &Cache, output_dir: &Path) -> StaleOutputs {
    let Some(produced) = produced(plan, dag, cache, output_dir) else {
        return StaleOutputs::default();
    };
    let mut stale = StaleOutputs::default();
    for device in folders_in(output_dir, Path::new("")) {
        for tag in folders_in(output_dir, &device) {
            let folders = FETCH_FOLDERS
                .iter()
                .map(|sub| tag.join(sub))
                .chain(CLIP_FOLDERS.iter().map(|sub| tag.join("clips").join(sub)));
            for folder in folders {
                for (file, size) in files_in(output_dir, &folder) {
                    if !produced.contains(&file) {
                        stale.bytes += size;
                        stale.files.push(file);
                    }
                }
            }
        }
    }
    stale.files.sort();
    stale
}

/// Removes `stale`'s files from `output_dir`, then the folders that leaves empty (up to the
/// device folder). Returns the files removed; a file that cannot be removed is reported and
/// left.
pub fn remove_stale(
    output_dir: &Path,
    stale: &StaleOutputs,
) -> (usize, Vec<(PathBuf, std::io::Error)>) {
    let mut removed = 0;
    let mut failed = Vec::new();
    let mut folders = BTreeSet::new();
    for file in &stale.files {
        match std::fs::remove_file(output_dir.join(file)) {
            Ok(()) => removed += 1,
            Err(error) => failed.push((file.clone(), error)),
        }
        folders.extend(
            file.ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .map(Path::to_path_buf),
        );
    }
    // Deepest first; `remove_dir` only removes an empty folder, so nothing else can go.
    for folder in folders.iter().rev() {
        let _ = std::fs::remove_dir(output_dir.join(folder));
    }
    (removed, failed)
}
