//! Planning: a loaded manifest (or request file) → a typed, validated [`Plan`].
//!
//! Input: [`Loaded`] (model + spans). Output: resolved settings, every time window (UTC,
//! millisecond precision) with its clip window, fetch stages and clip stages, all checked; or
//! every problem found, each pointing at the manifest (or request file) position that caused it.
//! Semantic checks live here: end after start, counts > 0, durations parse, stage references
//! exist, option names and values, device codes.
//!
//! Files: `types` (the plan's types: [`Plan`], [`Settings`], [`Window`], [`Fetch`], [`Clip`] and
//! their enums), `settings` (`[onc]`, `[output]` and `[onc.simulator]` resolved), `plan_stage`
//! (the windows of each plan kind: range, sample, windows, requests), `fetch_stage` (fetch stages
//! and data product options, the stages' and the request rows'), `clip_stage` (clip stages),
//! `check` (the [`Diagnostic`] collector and manifest-path helpers), `time` (time values) and
//! `windows` (window arithmetic).

mod check;
mod clip_stage;
pub mod deployed;
mod fetch_stage;
mod plan_stage;
mod products;
mod settings;
pub mod time;
mod types;
pub mod windows;

use std::path::Path;

use crate::manifest::{Diagnostic, Loaded};
use check::{Checker, p};
use clip_stage::{check_zero_length_clips, clip_stage};
use fetch_stage::{check_row_options, fetch_stage};
use plan_stage::plan_stage;
use settings::resolve_settings;

pub use plan_stage::DEFAULT_DEVICE_CATEGORY;
pub use plan_stage::{MAX_SAMPLE_COUNT, MAX_WINDOW_DAYS};
pub use products::KnownProducts;
pub use settings::DEFAULT_CACHE_DIR;
pub use types::{
    Clip, ClipFormat, DEFAULT_BASE_URL, Fetch, GapPolicy, Media, Plan, RowSettings, Settings,
    SiteWindow, Window, WindowOrigin,
};

/// Where a fetch stage's files come from (a product or archived files): ONC's notion, so it
/// lives with ONC's other conventions.
pub use onc_format::query::Source;

/// Builds the plan of a loaded manifest against onc-pipe's built-in product table (see
/// [`plan_manifest_with`]).
pub fn plan_manifest(loaded: &Loaded) -> (Option<Plan>, Vec<Diagnostic>) {
    plan_manifest_with(loaded, &KnownProducts::built_in())
}

/// Builds the plan of a loaded manifest, accepting the data product codes of `products`.
/// Returns the plan when there is no error, and every diagnostic (errors and warnings) found,
/// from the manifest and from the request files it names.
pub fn plan_manifest_with(
    loaded: &Loaded,
    products: &KnownProducts,
) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut check = Checker {
        loaded,
        products,
        diagnostics: Vec::new(),
    };
    let manifest = &loaded.manifest;
    if manifest.version != 1 {
        check
            .error_at(
                &p(&["version"]),
                format!("unsupported manifest version {}", manifest.version),
            )
            .help = Some("this onc-pipe reads `version = 1`".into());
    }

    let settings = resolve_settings(&mut check);
    let base_dir = loaded.path.parent().unwrap_or(Path::new("")).to_path_buf();

    let mut windows = Vec::new();
    let mut site_windows = Vec::new();
    for (name, stage) in &manifest.plan {
        plan_stage(
            &mut check,
            &base_dir,
            name,
            stage,
            &mut windows,
            &mut site_windows,
        );
    }

    let mut fetches = Vec::new();
    for (name, stage) in &manifest.fetch {
        if let Some(fetch) = fetch_stage(&mut check, name, stage) {
            fetches.push(fetch);
        }
    }

    let mut clips = Vec::new();
    for (name, stage) in &manifest.clip {
        if let Some(clip) = clip_stage(&mut check, name, stage) {
            clips.push(clip);
        }
    }

    check_row_options(&mut check, &windows, &fetches);
    check_zero_length_clips(&mut check, &windows, &clips);

    let diagnostics = check.diagnostics;
    if diagnostics.iter().any(Diagnostic::is_error) {
        return (None, diagnostics);
    }
    (
        Some(Plan {
            settings,
            windows,
            site_windows,
            fetches,
            clips,
        }),
        diagnostics,
    )
}

#[cfg(test)]
mod tests;
