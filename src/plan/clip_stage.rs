//! Clip stages: a `[clip.NAME]` stage → a [`Clip`] (its plan, fetches, padding, formats and
//! gap policy); and the clips those stages would cut, checked for zero length.
//!
//! Input: the stage and the manifest's plan and fetch stages; the planned windows. Output: the
//! resolved [`Clip`], or `None` when the stage has an error. Errors: reported to the checker at
//! the manifest path: dangling plan or fetch names, a fetch stage that does not fetch the clip's
//! plan or whose archived files cannot be cut (PNG pictures, anything not audio or spectrogram
//! MAT), durations that do not parse, unknown formats or gap policies; a clip of zero length (an
//! instant with no padding) at its window (manifest line, or request file and row).

use std::collections::BTreeSet;

use super::check::{Checker, dangling_reference, name_path, p, with_index, with_key};
use super::time::parse_duration_ms;
use super::types::{Clip, ClipFormat, GapPolicy, Media, Window};
use crate::manifest::model::WindowSpec;
use crate::manifest::requests::RequestFormat;
use crate::manifest::{Diagnostic, Location};
use onc_format::query::ArchivedKind;

pub(super) fn clip_stage(
    check: &mut Checker<'_>,
    name: &str,
    stage: &crate::manifest::model::ClipStage,
) -> Option<Clip> {
    let stage_path = p(&["clip", name]);
    let manifest = &check.loaded.manifest;
    let plan_names: Vec<String> = manifest.plan.keys().cloned().collect();
    let fetch_names: Vec<String> = manifest.fetch.keys().cloned().collect();
    let mut ok = true;
    if !manifest.plan.contains_key(&stage.plan) {
        let path = with_key(stage_path.clone(), "plan");
        dangling_reference(check, &path, "plan", &stage.plan, &plan_names);
        ok = false;
    }
    if stage.fetch.0.is_empty() {
        check.error_at(
            &with_key(stage_path.clone(), "fetch"),
            "`fetch` names no fetch stage",
        );
        ok = false;
    }
    for (index, fetch) in stage.fetch.iter().enumerate() {
        let path = name_path(check, with_key(stage_path.clone(), "fetch"), index);
        let Some(stage_fetch) = check.loaded.manifest.fetch.get(fetch) else {
            dangling_reference(check, &path, "fetch", fetch, &fetch_names);
            ok = false;
            continue;
        };
        if ok && !stage_fetch.plan.iter().any(|plan| plan == stage.plan) {
            check
                .error_at(
                    &path,
                    format!("fetch stage `{fetch}` does not fetch plan `{}`", stage.plan),
                )
                .help = Some(format!("add \"{}\" to `fetch.{fetch}.plan`", stage.plan));
            ok = false;
        }
        if let Some(extension) = stage_fetch.archive.as_deref()
            && stage_fetch.product.is_none()
            && ArchivedKind::of(extension) == ArchivedKind::Other
        {
            check
                .error_at(
                    &path,
                    format!("fetch stage `{fetch}` fetches archived `{extension}` files, which cannot be clipped"),
                )
                .help = Some(format!(
                "a clip cuts audio (`archive = \"flac\"` or `\"wav\"`) or spectrogram data (`archive = \"mat\"`, or `product = \"HSD\"` with `extension = \"mat\"`); {} cannot be cut: remove this stage from `fetch`",
                if extension == "png" { "a picture".to_owned() } else { format!("`{extension}` files") }
            ));
            ok = false;
        }
    }
    let pad = check.duration(&with_key(stage_path.clone(), "pad"), stage.pad.as_ref(), 0);
    let pad_before = check.duration(
        &with_key(stage_path.clone(), "pad_before"),
        stage.pad_before.as_ref(),
        pad,
    );
    let pad_after = check.duration(
        &with_key(stage_path.clone(), "pad_after"),
        stage.pad_after.as_ref(),
        pad,
    );

    let mut spectrogram = Vec::new();
    for (index, format) in stage.spectrogram.iter().flat_map(|s| s.iter()).enumerate() {
        match ClipFormat::from_name(Media::Spectrogram, format) {
            Some(f) if !spectrogram.contains(&f) => spectrogram.push(f),
            Some(_) => {}
            None => {
                let path = name_path(check, with_key(stage_path.clone(), "spectrogram"), index);
                check
                    .error_at(&path, format!("unknown spectrogram clip format `{format}`"))
                    .help = Some("use npz, mat or png".into());
                ok = false;
            }
        }
    }
    if spectrogram.is_empty() {
        spectrogram.push(ClipFormat::Npz);
    }
    let audio_name = stage.audio.as_deref().unwrap_or("flac");
    let audio = ClipFormat::from_name(Media::Audio, audio_name).unwrap_or_else(|| {
        check
            .error_at(
                &with_key(stage_path.clone(), "audio"),
                format!("unknown audio clip format `{audio_name}`"),
            )
            .help = Some("use flac or wav".into());
        ok = false;
        ClipFormat::Flac
    });
    let gaps_name = stage.gaps.as_deref().unwrap_or("fill");
    let gaps = match GapPolicy::from_name(gaps_name) {
        Some(policy) => policy,
        None => {
            let other = gaps_name;
            check
                .error_at(
                    &with_key(stage_path.clone(), "gaps"),
                    format!("unknown gap policy `{other}`"),
                )
                .help = Some("use fill, split, skip or fail".into());
            ok = false;
            GapPolicy::Fill
        }
    };
    let min_coverage = match stage.min_coverage {
        Some(share) if !(0.0..=1.0).contains(&share) => {
            check
                .error_at(
                    &with_key(stage_path.clone(), "min_coverage"),
                    format!("`min_coverage` must lie between 0 and 1, not {share}"),
                )
                .help = Some(
                "a share of the padded window that has data: 0.9 keeps clips at least 90 % covered"
                    .into(),
            );
            ok = false;
            None
        }
        other => other,
    };
    ok.then(|| Clip {
        name: name.to_owned(),
        plan: stage.plan.clone(),
        fetches: stage.fetch.0.clone(),
        pad_before_ms: pad_before,
        pad_after_ms: pad_after,
        spectrogram,
        audio,
        gaps,
        min_coverage,
    })
}

/// Reports every clip that would have zero length: a window that is an instant (`timestamp`,
/// `start` alone, a zero `duration`, or a one-file `sample`) clipped with no padding before or
/// after. Such a clip has no column or sample to cut, and would fail only after its files were
/// ordered and downloaded. Manifest windows are reported at their line, request rows at their
/// file and row (or JSON path), each once.
pub(super) fn check_zero_length_clips(check: &mut Checker<'_>, windows: &[Window], clips: &[Clip]) {
    // A request file run directly has a clip stage of onc-pipe's making: no `pad` to suggest.
    let user_stage = RequestFormat::from_path(&check.loaded.path).is_none();
    let mut reported = BTreeSet::new();
    for clip in clips {
        let stage_fix = if user_stage {
            format!(", or give clip stage `{}` a `pad`", clip.name)
        } else {
            String::new()
        };
        let unpadded = clip.pad_before_ms == 0 && clip.pad_after_ms == 0;
        if unpadded {
            manifest_instants(check, clip);
        }
        for window in windows.iter().filter(|w| w.stage == clip.plan) {
            let Some(row) = &window.row else { continue };
            let Some((start, end)) = clip.clip_window(window) else {
                continue;
            };
            if start != end || !reported.insert((row.source_file.clone(), row.origin.clone())) {
                continue;
            }
            let location = match row.origin.strip_prefix("row ").and_then(|n| n.parse().ok()) {
                Some(row) => Location::Row {
                    row,
                    field: "timestamp".into(),
                },
                None => Location::JsonPath {
                    path: row.origin.clone(),
                },
            };
            let message = format!(
                "zero-length clip: {} is an instant and the row has no padding",
                describe(window)
            );
            let help = format!(
                "give the row padding (`pad_seconds`, or `pad_before_seconds`/`pad_after_seconds`), \
                 or a length (`start` with `duration_seconds` or `end`), or `clip: false`{stage_fix}"
            );
            check.push(Diagnostic::error(&row.source_file, location, message).with_help(help));
        }
    }
}

/// Reports the instants of a manifest `windows` or `sample` plan stage cut by `clip`, a clip stage
/// with no padding, at the window's line (the `sample` table for a one-file sample).
fn manifest_instants(check: &mut Checker<'_>, clip: &Clip) {
    let Some(stage) = check.loaded.manifest.plan.get(&clip.plan) else {
        return;
    };
    let pad = format!(
        "give clip stage `{}` a `pad` (e.g. `pad = \"15s\"`) or `pad_before`/`pad_after`",
        clip.name
    );
    let mut found = Vec::new();
    if let Some(list) = &stage.windows {
        let list_path = with_key(p(&["plan", &clip.plan]), "windows");
        for (index, spec) in list.iter().enumerate() {
            if let Some(key) = instant_key(spec) {
                found.push((with_key(with_index(list_path.clone(), index), key), key));
            }
        }
    }
    if let Some(sample) = &stage.sample
        && sample.per_request == Some(1)
    {
        found.push((
            with_key(p(&["plan", &clip.plan, "sample"]), "per_request"),
            "per_request",
        ));
    }
    for (path, key) in found {
        let (what, length) = if key == "per_request" {
            (
                "samples instants (`per_request = 1`)",
                "sample longer windows (`per_request` of 2 or more)",
            )
        } else {
            (
                "is an instant",
                "give the window a length (`end` or `duration`)",
            )
        };
        check
            .error_at(
                &path,
                format!(
                    "zero-length clip: this window {what} and clip stage `{}` has no padding",
                    clip.name
                ),
            )
            .help = Some(format!("{pad}, or {length}"));
    }
}

/// The key that makes a listed window an instant (`timestamp`, `start` alone, or a zero
/// `duration`), if it is one. Windows with errors of their own are left to those errors.
fn instant_key(spec: &WindowSpec) -> Option<&'static str> {
    match (&spec.timestamp, &spec.start, &spec.end, &spec.duration) {
        (Some(_), None, None, None) => Some("timestamp"),
        (None, Some(_), None, None) => Some("start"),
        (None, Some(_), None, Some(duration)) => {
            (parse_duration_ms(&duration.0) == Ok(0)).then_some("duration")
        }
        _ => None,
    }
}

/// A window as named in messages: its label, else its time.
fn describe(window: &Window) -> String {
    let at = onc_format::stamp::onc_date(window.start);
    match &window.label {
        Some(label) => format!("`{label}` ({at})"),
        None => format!("the window at {at}"),
    }
}
