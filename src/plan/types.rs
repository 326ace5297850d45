//! The plan's types: what planning a manifest produces.
//!
//! Input: none (plain data, built by the other files of `plan`). Output: [`Plan`] with its
//! [`Settings`], [`Window`]s (each with a request row's [`RowSettings`], if any), [`Fetch`] and
//! [`Clip`] stages, and the enums a clip stage names ([`Media`], [`ClipFormat`], [`GapPolicy`]);
//! a fetch stage's source for one window ([`Fetch::source_for`]) and a clip's padded window
//! ([`Clip::clip_window`]). Errors: none; everything here was checked when it was planned.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::time::add_ms;
use onc_format::query::{ArchivedKind, Source};

/// Resolved `[onc]` and `[output]` settings, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub base_url: String,
    pub stagger_ms: i64,
    pub poll_interval_ms: i64,
    pub max_wait_ms: i64,
    pub max_runs: u32,
    pub download_workers: u32,
    pub max_attempts: u32,
    pub timeout_ms: i64,
    pub output_dir: PathBuf,
    pub cache_dir: PathBuf,
    /// The in-process simulator's settings (used when `base_url = "simulator"`).
    pub simulator: onc_sim::SimConfig,
}

/// ONC's production server.
pub const DEFAULT_BASE_URL: &str = "https://data.oceannetworks.ca/";

/// Per-request settings from a request file; they override the stages' settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RowSettings {
    pub pad_before_ms: i64,
    pub pad_after_ms: i64,
    pub clip: bool,
    pub download_audio: bool,
    pub download_spectrogram: bool,
    pub spectrogram_format: Option<String>,
    pub audio_extension: Option<String>,
    pub options: BTreeMap<String, String>,
    /// "row 3" or "requests[2]": where the row came from, for messages and sidecars.
    pub origin: String,
    /// The request file the row came from, as shown in messages.
    pub source_file: String,
}

/// Where in its plan stage a window was given, for messages about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowOrigin {
    /// The stage's `range`.
    Range,
    /// The stage's `sample`: the `index`-th (0-based) window of the sample.
    Sample { index: usize },
    /// The stage's `windows[index]`.
    Listed { index: usize },
    /// A request-file row ([`Window::row`] says which).
    Row,
}

/// One time window of a plan stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The plan stage that made it.
    pub stage: String,
    /// ONC device code. Empty only in [`SiteWindow::window`], until deployments resolve it.
    pub device: String,
    /// ONC location code: a site stage's, or the location of the device's deployment once
    /// ONC's deployments have been consulted (`None` before, and offline).
    pub location: Option<Arc<str>>,
    /// Where in the stage the window was given.
    pub origin: WindowOrigin,
    /// Output folder tag.
    pub tag: String,
    pub label: Option<String>,
    /// Clip basename (sanitised).
    pub name: Option<String>,
    pub start: DateTime<Utc>,
    /// Equal to `start` for an instant.
    pub end: DateTime<Utc>,
    pub is_instant: bool,
    /// Settings from a request-file row, if the window came from one.
    pub row: Option<RowSettings>,
}

/// A fetch stage, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetch {
    pub name: String,
    pub plans: Vec<String>,
    pub source: Source,
    pub per_request: u32,
}

impl Fetch {
    /// The source this stage uses for one window, with the window's row settings applied, or
    /// `None` when the row opts out: `download_spectrogram = false` for spectrogram products and
    /// archived spectrograms (or other non-audio archived files), `download_audio = false` (the
    /// seed's default) for archived audio and audio products.
    /// A row's options are merged over the stage's.
    pub fn source_for(&self, window: &Window) -> Option<Source> {
        let Some(row) = &window.row else {
            return Some(self.source.clone());
        };
        match &self.source {
            Source::Product {
                code,
                extension,
                options,
            } => {
                let wanted = if self.source.is_spectrogram() {
                    row.download_spectrogram
                } else {
                    row.download_audio
                };
                if !wanted {
                    return None;
                }
                let mut merged = options.clone();
                merged.extend(row.options.clone());
                // A row's `spectrogram_format` picks the HSD file type (mat or png).
                let extension = match (code.as_str(), &row.spectrogram_format) {
                    (onc_format::query::SPECTROGRAM_PRODUCT, Some(format)) => format.clone(),
                    _ => extension.clone(),
                };
                Some(Source::Product {
                    code: code.clone(),
                    extension,
                    options: merged,
                })
            }
            // Archived audio follows the row's audio settings; archived spectrograms and other
            // archived products its spectrogram choice, with the stage's extension.
            Source::Archive { extension } => match ArchivedKind::of(extension) {
                ArchivedKind::Audio => row.download_audio.then(|| Source::Archive {
                    extension: row
                        .audio_extension
                        .clone()
                        .unwrap_or_else(|| extension.clone()),
                }),
                ArchivedKind::SpectrogramMat | ArchivedKind::Other => {
                    row.download_spectrogram.then(|| self.source.clone())
                }
            },
        }
    }
}

/// What a clip holds: spectrogram columns (from MAT sources) or audio samples (FLAC/WAV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Media {
    Spectrogram,
    Audio,
}

impl Media {
    pub fn as_str(self) -> &'static str {
        match self {
            Media::Spectrogram => "spectrogram",
            Media::Audio => "audio",
        }
    }
}

/// A clip output format: `npz`, `mat`, `png` for spectrograms; `flac`, `wav` for audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipFormat {
    Npz,
    Mat,
    Png,
    Flac,
    Wav,
}

impl ClipFormat {
    pub const SPECTROGRAM: [ClipFormat; 3] = [ClipFormat::Npz, ClipFormat::Mat, ClipFormat::Png];
    pub const AUDIO: [ClipFormat; 2] = [ClipFormat::Flac, ClipFormat::Wav];

    /// Its name in a manifest, and the extension of its files.
    pub fn as_str(self) -> &'static str {
        match self {
            ClipFormat::Npz => "npz",
            ClipFormat::Mat => "mat",
            ClipFormat::Png => "png",
            ClipFormat::Flac => "flac",
            ClipFormat::Wav => "wav",
        }
    }

    /// The format of `media` spelled `name`, if there is one.
    pub fn from_name(media: Media, name: &str) -> Option<ClipFormat> {
        let formats: &[ClipFormat] = match media {
            Media::Spectrogram => &ClipFormat::SPECTROGRAM,
            Media::Audio => &ClipFormat::AUDIO,
        };
        formats.iter().copied().find(|f| f.as_str() == name)
    }
}

/// Gap policy of a clip stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapPolicy {
    Fill,
    Split,
    Skip,
    Fail,
}

impl GapPolicy {
    pub const ALL: [GapPolicy; 4] = [
        GapPolicy::Fill,
        GapPolicy::Split,
        GapPolicy::Skip,
        GapPolicy::Fail,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GapPolicy::Fill => "fill",
            GapPolicy::Split => "split",
            GapPolicy::Skip => "skip",
            GapPolicy::Fail => "fail",
        }
    }

    /// The policy spelled `name` in a manifest (and in a DAG node), if any.
    pub fn from_name(name: &str) -> Option<GapPolicy> {
        GapPolicy::ALL
            .into_iter()
            .find(|policy| policy.as_str() == name)
    }
}

/// A clip stage, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub name: String,
    pub plan: String,
    pub fetches: Vec<String>,
    pub pad_before_ms: i64,
    pub pad_after_ms: i64,
    /// Spectrogram formats, at least one, in the manifest's order without repeats.
    pub spectrogram: Vec<ClipFormat>,
    /// The audio format (one of [`ClipFormat::AUDIO`]).
    pub audio: ClipFormat,
    pub gaps: GapPolicy,
    /// Clips with data for less than this share of their padded window are skipped.
    pub min_coverage: Option<f64>,
}

impl Clip {
    /// The padded clip window of a window: `[start - pad_before, end + pad_after]`; a request
    /// row's own padding, when it has any, replaces the stage's. Returns `None` when the row
    /// says `clip = false`.
    pub fn clip_window(&self, window: &Window) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (before, after) = match &window.row {
            Some(row) if !row.clip => return None,
            Some(row) if row.pad_before_ms > 0 || row.pad_after_ms > 0 => {
                (row.pad_before_ms, row.pad_after_ms)
            }
            _ => (self.pad_before_ms, self.pad_after_ms),
        };
        Some((add_ms(window.start, -before), add_ms(window.end, after)))
    }
}

/// A window of a site stage (`location` + `device_category`), before ONC's deployments say which
/// device was there: its `window.device` is empty, and it is not part of [`Plan::windows`]
/// (nor of the DAG) until resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteWindow {
    pub window: Window,
    /// ONC's `locationCode`.
    pub location: String,
    /// ONC's `deviceCategoryCode`.
    pub category: String,
}

/// A whole manifest, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub settings: Settings,
    /// Windows on a known device: what the DAG is built from.
    pub windows: Vec<Window>,
    /// Windows of site stages, waiting for ONC's deployments ([`crate::plan::deployed`]).
    pub site_windows: Vec<SiteWindow>,
    pub fetches: Vec<Fetch>,
    pub clips: Vec<Clip>,
}

impl Plan {
    /// Windows of one plan stage.
    pub fn windows_of<'p>(&'p self, stage: &'p str) -> impl Iterator<Item = (usize, &'p Window)> {
        self.windows
            .iter()
            .enumerate()
            .filter(move |(_, window)| window.stage == stage)
    }
}
