//! Planning: a loaded manifest (or request file) → a typed, validated [`Plan`].
//!
//! Input: [`Loaded`] (model + spans). Output: resolved settings, every time window (UTC,
//! millisecond precision) with its clip window, fetch stages and clip stages, all checked; or
//! every problem found, each pointing at the manifest (or request file) position that caused it.
//! Semantic checks live here: end after start, counts > 0, durations parse, stage references
//! exist, option names and values, device codes.

pub mod time;
pub mod windows;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::manifest::diagnostic::closest;
use crate::manifest::load::{PathSegment, key_path};
use crate::manifest::model::{DurationText, OptionValue, TimeValue};
use crate::manifest::requests::{self, EventRequest, RequestFormat};
use crate::manifest::{Diagnostic, Loaded, Location};
use onc_format::device::{DEVICE_CODE_SHAPE, looks_like_device_code};
use onc_format::grid::FILE_MS;
use onc_format::options::{self, OptionProblem};
use time::{add_ms, parse_duration_ms, toml_to_utc};

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

/// One time window of a plan stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The plan stage that made it.
    pub stage: String,
    pub device: String,
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

/// Where a fetch stage's files come from (a product or archived files): ONC's notion, so it
/// lives with ONC's other conventions.
pub use onc_format::query::Source;

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
    /// `None` when the row opts out: `download_spectrogram = false` for spectrogram products,
    /// `download_audio = false` (the seed's default) for archived audio and audio products.
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
            Source::Archive { extension } => row.download_audio.then(|| Source::Archive {
                extension: row
                    .audio_extension
                    .clone()
                    .unwrap_or_else(|| extension.clone()),
            }),
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

/// A whole manifest, resolved and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub settings: Settings,
    pub windows: Vec<Window>,
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

/// Collects problems while planning, pointing them at manifest spans.
struct Checker<'a> {
    loaded: &'a Loaded,
    diagnostics: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn push(&mut self, diagnostic: Diagnostic) -> &mut Diagnostic {
        self.diagnostics.push(diagnostic);
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    fn error_at(&mut self, path: &[PathSegment], message: impl Into<String>) -> &mut Diagnostic {
        let span = self.loaded.spans.value_span(path);
        let diagnostic = self.loaded.source().error(span, message);
        self.push(diagnostic)
    }

    fn warning_at(&mut self, path: &[PathSegment], message: impl Into<String>) -> &mut Diagnostic {
        let span = self.loaded.spans.value_span(path);
        let diagnostic = self.loaded.source().warning(span, message);
        self.push(diagnostic)
    }

    fn key_error_at(
        &mut self,
        path: &[PathSegment],
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let span = self.loaded.spans.key_span(path);
        let diagnostic = self.loaded.source().error(span, message);
        self.push(diagnostic)
    }

    fn time(&mut self, path: &[PathSegment], value: &TimeValue) -> Option<DateTime<Utc>> {
        match toml_to_utc(&value.0) {
            Ok(time) => Some(time),
            Err(message) => {
                self.error_at(path, message);
                None
            }
        }
    }

    fn duration(
        &mut self,
        path: &[PathSegment],
        value: Option<&DurationText>,
        default_ms: i64,
    ) -> i64 {
        let Some(value) = value else {
            return default_ms;
        };
        match parse_duration_ms(&value.0) {
            Ok(ms) => ms,
            Err(message) => {
                self.error_at(path, message);
                default_ms
            }
        }
    }

    fn positive(&mut self, path: &[PathSegment], value: Option<u32>, default: u32) -> u32 {
        match value {
            Some(0) => {
                self.error_at(path, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }

    fn device(&mut self, path: &[PathSegment], code: &str) {
        if !looks_like_device_code(code) {
            self.error_at(
                path,
                format!("`{code}` does not look like an ONC device code"),
            )
            .help = Some(DEVICE_CODE_SHAPE.into());
        }
    }
}

/// The longest window onc-pipe plans in one piece: ten years (about a million five-minute files).
/// Longer spans are almost certainly a typo in a year, and would plan millions of nodes.
pub const MAX_WINDOW_DAYS: i64 = 3660;

/// Largest `sample.count`.
pub const MAX_SAMPLE_COUNT: u32 = 1_000_000;

fn too_long(start: DateTime<Utc>, end: DateTime<Utc>) -> Option<String> {
    let days = (end - start).num_days();
    (days > MAX_WINDOW_DAYS).then(|| {
        format!("the window covers {days} days; onc-pipe plans at most {MAX_WINDOW_DAYS} days (10 years) per window: split it into several windows or stages")
    })
}

fn p(keys: &[&str]) -> Vec<PathSegment> {
    key_path(keys)
}

fn with_index(mut path: Vec<PathSegment>, index: usize) -> Vec<PathSegment> {
    path.push(PathSegment::Index(index));
    path
}

fn with_key(mut path: Vec<PathSegment>, key: &str) -> Vec<PathSegment> {
    path.push(PathSegment::Key(key.to_owned()));
    path
}

/// Builds the plan of a loaded manifest. Returns the plan when there is no error, and every
/// diagnostic (errors and warnings) found, from the manifest and from the request files it names.
pub fn plan_manifest(loaded: &Loaded) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut check = Checker {
        loaded,
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
    for (name, stage) in &manifest.plan {
        plan_stage(&mut check, &base_dir, name, stage, &mut windows);
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

    let diagnostics = check.diagnostics;
    if diagnostics.iter().any(Diagnostic::is_error) {
        return (None, diagnostics);
    }
    (
        Some(Plan {
            settings,
            windows,
            fetches,
            clips,
        }),
        diagnostics,
    )
}

fn resolve_settings(check: &mut Checker<'_>) -> Settings {
    let onc = &check.loaded.manifest.onc;
    let output = &check.loaded.manifest.output;
    let base_url = onc
        .base_url
        .clone()
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    if base_url != "simulator"
        && !(base_url.starts_with("https://") || base_url.starts_with("http://"))
    {
        check
            .error_at(
                &p(&["onc", "base_url"]),
                format!("invalid base URL `{base_url}`"),
            )
            .help =
            Some("use an http(s) URL such as https://data.oceannetworks.ca/ or `simulator`".into());
    }
    let stagger = onc.stagger.clone();
    let poll = onc.poll_interval.clone();
    let max_wait = onc.max_wait.clone();
    let timeout = onc.timeout.clone();
    let (max_runs, workers, attempts) = (onc.max_runs, onc.download_workers, onc.max_attempts);
    let settings = Settings {
        base_url,
        stagger_ms: check.duration(&p(&["onc", "stagger"]), stagger.as_ref(), 3_000),
        poll_interval_ms: check.duration(&p(&["onc", "poll_interval"]), poll.as_ref(), 30_000),
        max_wait_ms: check.duration(&p(&["onc", "max_wait"]), max_wait.as_ref(), 45 * 60_000),
        max_runs: check.positive(&p(&["onc", "max_runs"]), max_runs, 8),
        download_workers: check.positive(&p(&["onc", "download_workers"]), workers, 4),
        max_attempts: check.positive(&p(&["onc", "max_attempts"]), attempts, 6),
        timeout_ms: check.duration(&p(&["onc", "timeout"]), timeout.as_ref(), 60_000),
        output_dir: PathBuf::from(output.dir.clone().unwrap_or_else(|| "data".into())),
        cache_dir: PathBuf::from(output.cache.clone().unwrap_or_else(|| ".onc-pipe".into())),
        simulator: onc_sim::SimConfig::default(),
    };
    let mut settings = settings;
    settings.simulator = resolve_simulator(check);
    for (key, value) in [
        ("poll_interval", settings.poll_interval_ms),
        ("max_wait", settings.max_wait_ms),
        ("timeout", settings.timeout_ms),
    ] {
        if value <= 0 {
            check.error_at(&p(&["onc", key]), "must be longer than zero");
        }
    }
    for (key, value) in [("dir", &output.dir), ("cache", &output.cache)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            check.error_at(&p(&["output", key]), "must not be empty");
        }
    }
    settings
}

/// The in-process simulator's settings; defaults make the demo quick (time scale 0.05).
fn resolve_simulator(check: &mut Checker<'_>) -> onc_sim::SimConfig {
    let mut config = onc_sim::SimConfig {
        time_scale: 0.05,
        ..onc_sim::SimConfig::default()
    };
    let Some(settings) = check.loaded.manifest.onc.simulator.clone() else {
        return config;
    };
    let errors = config.apply(&onc_sim::config::SimSettings {
        sample_rate: settings.sample_rate,
        time_scale: settings.time_scale,
        capacity: settings.capacity.map(u64::from),
        per_file_seconds: settings.per_file_seconds,
        faults: settings.faults,
    });
    for error in errors {
        let setting = error.setting();
        let message = match error {
            onc_sim::config::SettingError::OutOfRange { setting, problem } => {
                format!("`{setting}` {problem}")
            }
            onc_sim::config::SettingError::Faults(message) => message,
        };
        check.error_at(&p(&["onc", "simulator", setting]), message);
    }
    config
}

fn plan_stage(
    check: &mut Checker<'_>,
    base_dir: &Path,
    name: &str,
    stage: &crate::manifest::model::PlanStage,
    windows: &mut Vec<Window>,
) {
    let stage_path = p(&["plan", name]);
    let kinds: Vec<&str> = [
        ("range", stage.range.is_some()),
        ("sample", stage.sample.is_some()),
        ("windows", stage.windows.is_some()),
        ("requests", stage.requests.is_some()),
    ]
    .iter()
    .filter(|(_, present)| *present)
    .map(|(kind, _)| *kind)
    .collect();
    if kinds.len() != 1 {
        let message = if kinds.is_empty() {
            format!("plan stage `{name}` has no windows")
        } else {
            format!(
                "plan stage `{name}` has {}: give only one",
                kinds.join(" and ")
            )
        };
        check.key_error_at(&stage_path, message).help =
            Some("give exactly one of `range`, `sample`, `windows` or `requests`".into());
        return;
    }
    let tag = stage.tag.clone().unwrap_or_else(|| name.to_owned());
    if requests::sanitise_name(&tag).as_deref() != Some(tag.as_str()) {
        check
            .error_at(
                &with_key(stage_path.clone(), "tag"),
                format!("invalid tag `{tag}`"),
            )
            .help = Some(
            "tags name a folder: letters, digits, `.`, `_`, `-` or spaces, no path separators"
                .into(),
        );
    }

    if let Some(file) = &stage.requests {
        if stage.device.is_some() {
            check.warning_at(
                &with_key(stage_path.clone(), "device"),
                "`device` is ignored with `requests`: each request names its device",
            );
        }
        let request_path = base_dir.join(file);
        let shown = request_path.display().to_string();
        if RequestFormat::from_path(&request_path).is_none() {
            check.error_at(
                &with_key(stage_path, "requests"),
                format!("request file `{file}` is neither .json nor .csv"),
            );
            return;
        }
        let (rows, diagnostics) = requests::read_requests(&request_path, &shown);
        check.diagnostics.extend(diagnostics);
        for row in rows {
            if let Some(message) = too_long(row.start, row.end) {
                let location = match row.origin.strip_prefix("row ").and_then(|n| n.parse().ok()) {
                    Some(row) => Location::Row {
                        row,
                        field: "end".into(),
                    },
                    None => Location::JsonPath {
                        path: format!("{}.end", row.origin),
                    },
                };
                check.push(Diagnostic::error(&shown, location, message));
                continue;
            }
            windows.push(window_from_row(
                name,
                &tag,
                row,
                stage.tag.is_some(),
                &shown,
            ));
        }
        return;
    }

    let device_path = with_key(stage_path.clone(), "device");
    let Some(device) = stage.device.clone() else {
        check
            .key_error_at(&stage_path, format!("plan stage `{name}` has no `device`"))
            .help = Some("add `device = \"ICLISTENHF6324\"` (an ONC device code)".into());
        return;
    };
    check.device(&device_path, &device);
    let window =
        |start, end, is_instant, label: Option<String>, clip_name: Option<String>| Window {
            stage: name.to_owned(),
            device: device.clone(),
            tag: tag.clone(),
            label,
            name: clip_name,
            start,
            end,
            is_instant,
            row: None,
        };

    if let Some(range) = &stage.range {
        let range_path = with_key(stage_path.clone(), "range");
        let start = check.time(&with_key(range_path.clone(), "start"), &range.start);
        let end = check.time(&with_key(range_path.clone(), "end"), &range.end);
        if let (Some(start), Some(end)) = (start, end) {
            if end <= start {
                check.error_at(&with_key(range_path, "end"), "`end` must be after `start`");
            } else if let Some(message) = too_long(start, end) {
                check.error_at(&with_key(range_path, "end"), message);
            } else {
                windows.push(window(start, end, false, None, None));
            }
        }
    }

    if let Some(sample) = &stage.sample {
        let sample_path = with_key(stage_path.clone(), "sample");
        let start = check.time(&with_key(sample_path.clone(), "start"), &sample.start);
        let end = check.time(&with_key(sample_path.clone(), "end"), &sample.end);
        if sample.count == 0 {
            check.error_at(
                &with_key(sample_path.clone(), "count"),
                "`count` must be at least 1",
            );
        } else if sample.count > MAX_SAMPLE_COUNT {
            check.error_at(
                &with_key(sample_path.clone(), "count"),
                format!("`count` must be at most {MAX_SAMPLE_COUNT}"),
            );
        }
        let per_request = check.positive(
            &with_key(sample_path.clone(), "per_request"),
            sample.per_request,
            12,
        );
        if let (Some(start), Some(end)) = (start, end) {
            let span_ms = i64::from(per_request - 1) * FILE_MS;
            if end <= start {
                check.error_at(&with_key(sample_path, "end"), "`end` must be after `start`");
            } else if (end - start).num_milliseconds() < span_ms {
                check.error_at(
                    &with_key(sample_path, "end"),
                    format!(
                        "the range is shorter than one request of {per_request} files ({} minutes)",
                        span_ms / 60_000
                    ),
                );
            } else if let Some(message) = too_long(start, end) {
                check.error_at(&with_key(sample_path, "end"), message);
            } else if (1..=MAX_SAMPLE_COUNT).contains(&sample.count) {
                let (starts, span) = windows::sample_starts(
                    start.timestamp_millis(),
                    end.timestamp_millis(),
                    sample.count,
                    per_request,
                );
                for (index, start_ms) in starts.into_iter().enumerate() {
                    let from = DateTime::from_timestamp_millis(start_ms).unwrap_or(start);
                    let to = add_ms(from, span);
                    let label = Some(format!(
                        "sample {} of {}",
                        index + 1,
                        sample.count.div_ceil(per_request)
                    ));
                    windows.push(window(from, to, span == 0, label, None));
                }
            }
        }
    }

    if let Some(list) = &stage.windows {
        let list_path = with_key(stage_path.clone(), "windows");
        if list.is_empty() {
            check.error_at(&list_path, "`windows` is empty");
        }
        for (index, spec) in list.iter().enumerate() {
            let item = with_index(list_path.clone(), index);
            let clip_name = match &spec.name {
                Some(raw) => match requests::sanitise_name(raw) {
                    Some(clean) => Some(clean),
                    None => {
                        check.error_at(
                            &with_key(item.clone(), "name"),
                            format!("invalid clip name `{raw}`"),
                        );
                        None
                    }
                },
                None => None,
            };
            let label = spec.label.clone();
            match (&spec.timestamp, &spec.start, &spec.end, &spec.duration) {
                (Some(instant), None, None, None) => {
                    if let Some(at) = check.time(&with_key(item, "timestamp"), instant) {
                        windows.push(window(at, at, true, label, clip_name));
                    }
                }
                (None, Some(start), end, duration) => {
                    let Some(from) = check.time(&with_key(item.clone(), "start"), start) else {
                        continue;
                    };
                    let to = match (end, duration) {
                        (Some(_), Some(_)) => {
                            check.error_at(
                                &with_key(item, "duration"),
                                "give `end` or `duration`, not both",
                            );
                            continue;
                        }
                        (Some(end), None) => check.time(&with_key(item.clone(), "end"), end),
                        (None, Some(duration)) => {
                            let ms = check.duration(
                                &with_key(item.clone(), "duration"),
                                Some(duration),
                                -1,
                            );
                            (ms >= 0).then(|| add_ms(from, ms))
                        }
                        (None, None) => Some(from),
                    };
                    let Some(to) = to else { continue };
                    if to < from || (to == from && end.is_some()) {
                        let key = if end.is_some() { "end" } else { "duration" };
                        check.error_at(&with_key(item, key), "the window must end after it starts");
                        continue;
                    }
                    if let Some(message) = too_long(from, to) {
                        let key = if end.is_some() { "end" } else { "duration" };
                        check.error_at(&with_key(item, key), message);
                        continue;
                    }
                    windows.push(window(from, to, to == from, label, clip_name));
                }
                (Some(_), Some(_), _, _) => {
                    check.error_at(
                        &with_key(item, "timestamp"),
                        "give `timestamp` or `start`, not both",
                    );
                }
                _ => {
                    check.error_at(
                        &item,
                        "a window needs `timestamp`, or `start` with `end` or `duration`",
                    );
                }
            }
        }
    }
}

fn window_from_row(
    stage: &str,
    stage_tag: &str,
    row: EventRequest,
    stage_tag_given: bool,
    source_file: &str,
) -> Window {
    // A row's `output_tag` wins over the stage name, but an explicit stage `tag` wins over rows.
    let tag = if stage_tag_given {
        stage_tag.to_owned()
    } else {
        row.output_tag
            .as_deref()
            .and_then(requests::sanitise_name)
            .unwrap_or_else(|| stage_tag.to_owned())
    };
    Window {
        stage: stage.to_owned(),
        device: row.device,
        tag,
        label: row.label,
        name: row.output_name,
        start: row.start,
        end: row.end,
        is_instant: row.is_instant,
        row: Some(RowSettings {
            pad_before_ms: row.pad_before_ms,
            pad_after_ms: row.pad_after_ms,
            clip: row.clip,
            download_audio: row.download_audio,
            download_spectrogram: row.download_spectrogram,
            spectrogram_format: row.spectrogram_format,
            audio_extension: row.audio_extension,
            options: row.options,
            origin: row.origin,
            source_file: source_file.to_owned(),
        }),
    }
}

/// The path of the `index`th name in a `OneOrMany` value: `key[index]` when it was written as an
/// array, the key itself when it was a single string.
fn name_path(check: &Checker<'_>, key_path: Vec<PathSegment>, index: usize) -> Vec<PathSegment> {
    if check
        .loaded
        .spans
        .get(&with_index(key_path.clone(), 0))
        .is_some()
    {
        with_index(key_path, index)
    } else {
        key_path
    }
}

/// Reports a reference to a stage that does not exist, suggesting the closest existing name or
/// listing them all. `kind` is "plan" or "fetch".
fn dangling_reference(
    check: &mut Checker<'_>,
    path: &[PathSegment],
    kind: &str,
    name: &str,
    existing: &[String],
) {
    let help = match crate::manifest::diagnostic::closest(name, existing.iter().map(String::as_str))
    {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => format!(
            "{kind} stages: {}",
            list_or_none(existing.iter().map(String::as_str))
        ),
    };
    check
        .error_at(path, format!("no {kind} stage named `{name}`"))
        .help = Some(help);
}

fn fetch_stage(
    check: &mut Checker<'_>,
    name: &str,
    stage: &crate::manifest::model::FetchStage,
) -> Option<Fetch> {
    let stage_path = p(&["fetch", name]);
    let plan_names: Vec<String> = check.loaded.manifest.plan.keys().cloned().collect();
    let mut ok = true;
    if stage.plan.0.is_empty() {
        check.error_at(
            &with_key(stage_path.clone(), "plan"),
            "`plan` names no plan stage",
        );
        ok = false;
    }
    for (index, plan) in stage.plan.iter().enumerate() {
        if !plan_names.iter().any(|name| name == plan) {
            let path = name_path(check, with_key(stage_path.clone(), "plan"), index);
            dangling_reference(check, &path, "plan", plan, &plan_names);
            ok = false;
        }
    }
    let per_request = check.positive(
        &with_key(stage_path.clone(), "per_request"),
        stage.per_request,
        12,
    );
    let options: BTreeMap<String, String> = stage
        .options
        .iter()
        .map(|(key, value)| (key.clone(), option_text(value)))
        .collect();

    let source = match (&stage.product, &stage.archive) {
        (Some(_), Some(_)) => {
            check.key_error_at(
                &with_key(stage_path, "archive"),
                "give `product` or `archive`, not both",
            );
            return None;
        }
        (None, None) => {
            check
                .key_error_at(
                    &stage_path,
                    format!("fetch stage `{name}` has neither `product` nor `archive`"),
                )
                .help = Some(
                "add `product = \"HSD\"` with `extension = \"mat\"`, or `archive = \"flac\"`"
                    .into(),
            );
            return None;
        }
        (None, Some(extension)) => {
            if !options::ARCHIVE_EXTENSIONS.contains(&extension.as_str()) {
                check
                    .error_at(
                        &with_key(stage_path.clone(), "archive"),
                        format!("unknown archive file type `{extension}`"),
                    )
                    .help = Some(format!(
                    "use one of {}",
                    options::ARCHIVE_EXTENSIONS.join(", ")
                ));
                ok = false;
            }
            if stage.extension.is_some() {
                check.warning_at(
                    &with_key(stage_path.clone(), "extension"),
                    "`extension` is ignored with `archive`",
                );
            }
            if !options.is_empty() {
                check
                    .error_at(
                        &with_key(stage_path, "options"),
                        "archived files take no data product options",
                    )
                    .help = Some(
                    "options apply to `product` stages; for converted audio use `product = \"AD\"`"
                        .into(),
                );
                ok = false;
            }
            Source::Archive {
                extension: extension.clone(),
            }
        }
        (Some(code), None) => {
            let product_path = with_key(stage_path.clone(), "product");
            if !options::KNOWN_PRODUCTS.contains(&code.as_str()) {
                check.warning_at(&product_path, format!("data product `{code}` is not one onc-pipe knows; it is sent to ONC as given")).help =
                    Some(format!("known products: {}", options::KNOWN_PRODUCTS.join(", ")));
            }
            let extension = match &stage.extension {
                Some(extension) => extension.clone(),
                None => {
                    check
                        .key_error_at(
                            &stage_path,
                            format!("fetch stage `{name}` has a `product` but no `extension`"),
                        )
                        .help =
                        Some("ONC requires the extension, e.g. `extension = \"mat\"`".into());
                    return None;
                }
            };
            if let Some(valid) = options::product_extensions(code)
                && !valid.contains(&extension.as_str())
            {
                check
                    .error_at(
                        &with_key(stage_path.clone(), "extension"),
                        format!("`{code}` has no extension `{extension}`"),
                    )
                    .help = Some(format!("{code} extensions: {}", valid.join(", ")));
                ok = false;
            }
            for (option, value) in &options {
                let path = with_key(with_key(stage_path.clone(), "options"), option);
                ok &= report_option(check, &path, code, option, value, None);
            }
            Source::Product {
                code: code.clone(),
                extension,
                options,
            }
        }
    };
    ok.then(|| Fetch {
        name: name.to_owned(),
        plans: stage.plan.0.clone(),
        source,
        per_request,
    })
}

/// Reports one option problem at a manifest path (or, with `origin`, as a request-file problem).
/// Returns whether the option is acceptable.
/// A request-file row, for option problems found in it.
struct RowOrigin<'a> {
    file: &'a str,
    origin: &'a str,
}

fn report_option(
    check: &mut Checker<'_>,
    path: &[PathSegment],
    product: &str,
    option: &str,
    value: &str,
    origin: Option<RowOrigin<'_>>,
) -> bool {
    let Some(problem) = options::check_option(product, option, value) else {
        return true;
    };
    let (message, help, is_error) = match problem {
        OptionProblem::NotAnOption => (
            format!("`{option}` is not a data product option"),
            Some("ONC data product options start with `dpo_`".to_owned()),
            true,
        ),
        OptionProblem::UnknownName => (
            format!("`{option}` is not a documented {product} option; it is sent to ONC as given"),
            options::product_options(product)
                .and_then(|known| closest(option, known.iter().map(|(name, _)| *name)))
                .map(|c| format!("did you mean `{c}`?")),
            false,
        ),
        OptionProblem::BadValue { allowed } => (
            format!("invalid value `{value}` for `{option}`"),
            Some(format!("{option} takes {allowed}")),
            true,
        ),
    };
    let diagnostic = match origin {
        Some(RowOrigin { file, origin }) => {
            let location = match origin.strip_prefix("row ").and_then(|n| n.parse().ok()) {
                Some(row) => Location::Row {
                    row,
                    field: "data_product_options".into(),
                },
                None => Location::JsonPath {
                    path: format!("{origin}.data_product_options.{option}"),
                },
            };
            let d = if is_error {
                Diagnostic::error(file, location, message)
            } else {
                Diagnostic::warning(file, location, message)
            };
            Some(check.push(d))
        }
        None if is_error => Some(check.error_at(path, message)),
        None => Some(check.warning_at(path, message)),
    };
    if let (Some(diagnostic), Some(help)) = (diagnostic, help) {
        diagnostic.help = Some(help);
    }
    !is_error
}

fn option_text(value: &OptionValue) -> String {
    value.to_query_value()
}

fn list_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn clip_stage(
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

/// Checks the `dpo_*` options of request-file rows against the products that will fetch them,
/// reported at the row in the request file.
fn check_row_options(check: &mut Checker<'_>, windows: &[Window], fetches: &[Fetch]) {
    let mut seen = BTreeSet::new();
    for fetch in fetches {
        let Source::Product { code, .. } = &fetch.source else {
            continue;
        };
        for window in windows.iter().filter(|w| fetch.plans.contains(&w.stage)) {
            let Some(row) = &window.row else { continue };
            for (option, value) in &row.options {
                if seen.insert((
                    row.source_file.clone(),
                    row.origin.clone(),
                    option.clone(),
                    code.clone(),
                )) {
                    let origin = RowOrigin {
                        file: &row.source_file,
                        origin: &row.origin,
                    };
                    report_option(check, &[], code, option, value, Some(origin));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn clip(pad_before_ms: i64, pad_after_ms: i64) -> Clip {
        Clip {
            name: "c".into(),
            plan: "p".into(),
            fetches: vec!["f".into()],
            pad_before_ms,
            pad_after_ms,
            spectrogram: vec![ClipFormat::Npz],
            audio: ClipFormat::Flac,
            gaps: GapPolicy::Fill,
        }
    }

    fn window(start_ms: i64, len_ms: i64, row: Option<RowSettings>) -> Window {
        let start = DateTime::from_timestamp_millis(start_ms).unwrap();
        Window {
            stage: "p".into(),
            device: "ICLISTENHF6324".into(),
            tag: "p".into(),
            label: None,
            name: None,
            start,
            end: add_ms(start, len_ms),
            is_instant: len_ms == 0,
            row,
        }
    }

    proptest! {
        #[test]
        fn clip_window_is_window_plus_padding_on_both_sides(
            start in 1_700_000_000_000i64..1_800_000_000_000,
            len in 0i64..3_600_000,
            before in 0i64..600_000,
            after in 0i64..600_000,
        ) {
            // The Python tool dropped `pad_after` when the window had an end: both sides stay.
            let w = window(start, len, None);
            let (clip_start, clip_end) = clip(before, after).clip_window(&w).unwrap();
            prop_assert_eq!(clip_start.timestamp_millis(), start - before);
            prop_assert_eq!(clip_end.timestamp_millis(), start + len + after);
        }

        #[test]
        fn a_rows_padding_replaces_the_stages(
            start in 1_700_000_000_000i64..1_800_000_000_000,
            len in 0i64..3_600_000,
            row_before in 0i64..600_000,
            row_after in 1i64..600_000,
        ) {
            let row = RowSettings { pad_before_ms: row_before, pad_after_ms: row_after, clip: true, ..RowSettings::default() };
            let w = window(start, len, Some(row));
            let (clip_start, clip_end) = clip(5_000, 5_000).clip_window(&w).unwrap();
            prop_assert_eq!(clip_start.timestamp_millis(), start - row_before);
            prop_assert_eq!(clip_end.timestamp_millis(), start + len + row_after);
        }
    }

    #[test]
    fn a_row_without_clip_has_no_clip_window() {
        let row = RowSettings {
            clip: false,
            pad_before_ms: 1_000,
            ..RowSettings::default()
        };
        assert_eq!(
            clip(0, 0).clip_window(&window(1_700_000_000_000, 0, Some(row))),
            None
        );
    }
}
