//! The estimate of a prepared manifest for `plan` and `run`, with what only the machine knows:
//! the free space of the output and cache file systems and each device's sample rate; and the
//! run record with the estimate beside what the run did.
//!
//! Input: a [`Compiled`] manifest, where it writes, and its node states; after a run, its [`RunSummary`]. Output:
//! an [`Estimate`] (see [`crate::estimate`]), or the record as JSON. No errors: free space that
//! cannot be read is unknown, and refuses nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::compile::Compiled;
use crate::dag::NodeKey;
use crate::dag::state::NodeState;
use crate::estimate::{Estimate, SampleRates, Space};
use crate::exec::RunSummary;
use crate::onc::SIMULATOR;
use crate::plan::Settings;

/// The run record: the summary, and `estimate_vs_actual` with the estimated and downloaded
/// files and bytes and the expected and measured wall time side by side.
pub fn record_value(summary: &RunSummary, estimate: &Estimate) -> serde_json::Value {
    let mut value = serde_json::to_value(summary).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        let side_by_side = |estimated: serde_json::Value, actual: serde_json::Value| serde_json::json!({ "estimated": estimated, "actual": actual });
        object.insert(
            "estimate_vs_actual".into(),
            serde_json::json!({
                "files": side_by_side(estimate.total.files.into(), summary.stats.files_downloaded.into()),
                "bytes": side_by_side(estimate.total.bytes.into(), summary.stats.bytes_downloaded.into()),
                "wall_seconds": side_by_side(estimate.total.wall_seconds.into(), summary.wall_seconds.into()),
            }),
        );
    }
    value
}

/// Each device's sample rate for estimates: the simulator's when running against it, else ONC's
/// icListen HF rate (64 kHz) until discovery reads each device's own.
pub fn sample_rates(settings: &Settings) -> SampleRates {
    if settings.base_url == SIMULATOR {
        SampleRates::all(settings.simulator.sample_rate)
    } else {
        SampleRates::default()
    }
}

/// The estimate of a compiled manifest whose outputs go to `output_dir` and cache to
/// `cache_dir`, its nodes in `states`, with the free space of those folders (or of their
/// nearest existing parents) read now.
pub fn estimate(
    compiled: &Compiled,
    output_dir: &Path,
    cache_dir: &Path,
    states: &HashMap<NodeKey, NodeState>,
) -> Estimate {
    let settings = &compiled.plan.settings;
    let time_scale = if settings.base_url == SIMULATOR {
        settings.simulator.time_scale
    } else {
        1.0
    };
    crate::estimate::estimate(&crate::estimate::Inputs {
        plan: &compiled.plan,
        dag: &compiled.dag,
        states,
        rates: &sample_rates(settings),
        space: free_space(output_dir, cache_dir),
        time_scale,
    })
}

/// The free space of the file systems holding `output_dir` and `cache_dir`, read at their
/// nearest existing folder (a first run creates them); `None` where it cannot be read.
pub fn free_space(output_dir: &Path, cache_dir: &Path) -> Space {
    let existing = |path: &Path| -> PathBuf {
        path.ancestors()
            .find(|folder| folder.is_dir())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    };
    let (output, cache) = (existing(output_dir), existing(cache_dir));
    Space {
        output_free_bytes: crate::preflight::free_bytes(&output).ok(),
        cache_free_bytes: crate::preflight::free_bytes(&cache).ok(),
        same_file_system: same_file_system(&output, &cache),
    }
}

#[cfg(unix)]
fn same_file_system(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file_system(_: &Path, _: &Path) -> bool {
    false
}
