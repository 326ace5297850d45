//! Clip stages: a `[clip.NAME]` stage → a [`Clip`] (its plan, fetches, padding, formats and
//! gap policy).
//!
//! Input: the stage and the manifest's plan and fetch stages. Output: the resolved [`Clip`], or
//! `None` when the stage has an error. Errors: reported to the checker at the manifest path:
//! dangling plan or fetch names, a fetch stage that does not fetch the clip's plan or whose
//! archived files cannot be cut (PNG pictures, anything not audio or spectrogram MAT), durations
//! that do not parse, unknown formats or gap policies.

use super::check::{Checker, dangling_reference, name_path, p, with_key};
use super::types::{Clip, ClipFormat, GapPolicy, Media};
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
                    &with_key(stage_path, "gaps"),
                    format!("unknown gap policy `{other}`"),
                )
                .help = Some("use fill, split, skip or fail".into());
            ok = false;
            GapPolicy::Fill
        }
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
    })
}
