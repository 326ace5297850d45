//! Plan stages: a `[plan.NAME]` stage → its windows, one kind per stage: `range` (one window),
//! `sample` (windows spread over a range), `windows` (listed ones) or `requests` (a request
//! file's rows).
//!
//! Input: the stage, its name and the manifest's folder (request files are read relative to it).
//! Output: [`Window`]s in UTC, appended in the order the stage gives them. Errors: reported to the
//! checker at the manifest path (or the request-file row) that caused them: no or several kinds,
//! a bad tag or device, times that do not parse, ends before starts, windows longer than
//! [`MAX_WINDOW_DAYS`], sample counts out of range.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::check::{Checker, p, with_index, with_key};
use super::time::add_ms;
use super::types::{RowSettings, SiteWindow, Window, WindowOrigin};
use super::windows;
use crate::manifest::load::PathSegment;
use crate::manifest::model::{PlanStage, Sample, TimeRange, WindowSpec};
use crate::manifest::requests::{self, EventRequest, RequestFormat, RowSite};
use crate::manifest::{Diagnostic, Location};
use onc_format::grid::FILE_MS;

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

/// ONC's device category when a site stage names none: onc-pipe is about hydrophones.
pub const DEFAULT_DEVICE_CATEGORY: &str = "HYDROPHONE";

/// What a plan stage's windows are on: a device, or a site whose device ONC's deployments name.
enum Target {
    Device(String),
    Site { location: String, category: String },
}

/// Plans one `[plan.NAME]` stage into `windows` (or, for a site stage, `site_windows`): checks
/// that it has exactly one kind of windows (`range`, `sample`, `windows` or `requests`), its tag
/// and, but for `requests`, its device or site; then adds the windows of its kind.
pub(super) fn plan_stage(
    check: &mut Checker<'_>,
    base_dir: &Path,
    name: &str,
    stage: &PlanStage,
    windows: &mut Vec<Window>,
    site_windows: &mut Vec<SiteWindow>,
) {
    let stage_path = p(&["plan", name]);
    if !has_one_kind(check, &stage_path, name, stage) {
        return;
    }
    let tag = checked_tag(check, &stage_path, name, stage);

    if let Some(file) = &stage.requests {
        for (window, site) in request_windows(check, base_dir, stage_path, name, &tag, stage, file)
        {
            match site {
                None => windows.push(window),
                Some(RowSite { location, category }) => site_windows.push(SiteWindow {
                    window,
                    location,
                    category,
                }),
            }
        }
        return;
    }

    let Some(target) = checked_target(check, &stage_path, name, stage) else {
        return;
    };
    let device = match &target {
        Target::Device(device) => device.clone(),
        Target::Site { .. } => String::new(),
    };
    let location = match &target {
        Target::Device(_) => None,
        Target::Site { location, .. } => Some(std::sync::Arc::from(location.as_str())),
    };
    let window = |start,
                  end,
                  is_instant,
                  label: Option<String>,
                  clip_name: Option<String>,
                  origin: WindowOrigin| Window {
        stage: name.to_owned(),
        device: device.clone(),
        location: location.clone(),
        origin,
        tag: tag.clone(),
        label,
        name: clip_name,
        start,
        end,
        is_instant,
        row: None,
    };
    let first_new = windows.len();

    if let Some(range) = &stage.range {
        let range_path = with_key(stage_path.clone(), "range");
        windows.extend(range_windows(check, range_path, range, &window));
    }

    if let Some(sample) = &stage.sample {
        let sample_path = with_key(stage_path.clone(), "sample");
        windows.extend(sample_windows(check, sample_path, sample, &window));
    }

    if let Some(list) = &stage.windows {
        let list_path = with_key(stage_path.clone(), "windows");
        windows.extend(listed_windows(check, list_path, list, &window));
    }

    if let Target::Site { location, category } = target {
        site_windows.extend(windows.drain(first_new..).map(|window| SiteWindow {
            window,
            location: location.clone(),
            category: category.clone(),
        }));
    }
}

/// Makes one window of the stage being planned from its start, end, whether it is an instant,
/// its label, its clip name and where in the stage it was given; the stage, device and tag are
/// the stage's.
type MakeWindow<'a> = dyn Fn(DateTime<Utc>, DateTime<Utc>, bool, Option<String>, Option<String>, WindowOrigin) -> Window
    + 'a;

/// Whether the stage gives exactly one of `range`, `sample`, `windows` or `requests`; reports
/// none or several at the stage's key.
fn has_one_kind(
    check: &mut Checker<'_>,
    stage_path: &[PathSegment],
    name: &str,
    stage: &PlanStage,
) -> bool {
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
        check.key_error_at(stage_path, message).help =
            Some("give exactly one of `range`, `sample`, `windows` or `requests`".into());
        return false;
    }
    true
}

/// The stage's output folder tag (its `tag`, else its name); reports one that cannot name a
/// folder.
fn checked_tag(
    check: &mut Checker<'_>,
    stage_path: &[PathSegment],
    name: &str,
    stage: &PlanStage,
) -> String {
    let tag = stage.tag.clone().unwrap_or_else(|| name.to_owned());
    if requests::sanitise_name(&tag).as_deref() != Some(tag.as_str()) {
        check
            .error_at(
                &with_key(stage_path.to_vec(), "tag"),
                format!("invalid tag `{tag}`"),
            )
            .help = Some(
            "tags name a folder: letters, digits, `.`, `_`, `-` or spaces, no path separators"
                .into(),
        );
    }
    tag
}

/// The windows of a `requests` stage: one per row of the request file (read relative to the
/// manifest's folder), whose problems are reported at the row.
fn request_windows(
    check: &mut Checker<'_>,
    base_dir: &Path,
    stage_path: Vec<PathSegment>,
    name: &str,
    tag: &str,
    stage: &PlanStage,
    file: &str,
) -> Vec<(Window, Option<RowSite>)> {
    let mut windows = Vec::new();
    for key in ["device", "location", "device_category"] {
        let given = match key {
            "device" => stage.device.is_some(),
            "location" => stage.location.is_some(),
            _ => stage.device_category.is_some(),
        };
        if given {
            check.warning_at(
                &with_key(stage_path.clone(), key),
                format!("`{key}` is ignored with `requests`: each request names its device"),
            );
        }
    }
    let request_path = base_dir.join(file);
    let shown = request_path.display().to_string();
    if RequestFormat::from_path(&request_path).is_none() {
        check.error_at(
            &with_key(stage_path, "requests"),
            format!(
                "request file `{file}` is not one: expected {}",
                requests::REQUEST_FILE_TYPES
            ),
        );
        return windows;
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
        let site = row.site.clone();
        windows.push((
            window_from_row(name, tag, row, stage.tag.is_some(), &shown),
            site,
        ));
    }
    windows
}

/// The device of a `range`, `sample` or `windows` stage; reports a missing one, or one that does
/// not look like an ONC device code (still returned: planning goes on to find more problems).
fn checked_target(
    check: &mut Checker<'_>,
    stage_path: &[PathSegment],
    name: &str,
    stage: &PlanStage,
) -> Option<Target> {
    let device_path = with_key(stage_path.to_vec(), "device");
    let location_path = with_key(stage_path.to_vec(), "location");
    match (&stage.device, &stage.location) {
        (Some(_), Some(_)) => {
            check
                .error_at(
                    &location_path,
                    format!("plan stage `{name}` gives both `device` and `location`"),
                )
                .help = Some(
                "give `device` for one instrument, or `location` (with `device_category`) for \
                 whatever device was deployed at that site"
                    .into(),
            );
            None
        }
        (None, None) => {
            check
                .key_error_at(stage_path, format!("plan stage `{name}` has no `device`"))
                .help = Some(
                "add `device = \"ICLISTENHF6324\"` (an ONC device code), or `location = \"BACAX\"` \
                 (an ONC site)"
                    .into(),
            );
            None
        }
        (Some(device), None) => {
            if stage.device_category.is_some() {
                check.warning_at(
                    &with_key(stage_path.to_vec(), "device_category"),
                    "`device_category` is only used with `location`",
                );
            }
            check.device(&device_path, device);
            Some(Target::Device(device.clone()))
        }
        (None, Some(location)) => {
            let mut valid = check.site_code(&location_path, "location", location);
            let category = stage
                .device_category
                .clone()
                .unwrap_or_else(|| DEFAULT_DEVICE_CATEGORY.to_owned());
            valid &= check.site_code(
                &with_key(stage_path.to_vec(), "device_category"),
                "device category",
                &category,
            );
            valid.then(|| Target::Site {
                location: location.clone(),
                category,
            })
        }
    }
}

/// The window of a `range` stage: `start` to `end`, checked.
fn range_windows(
    check: &mut Checker<'_>,
    range_path: Vec<PathSegment>,
    range: &TimeRange,
    window: &MakeWindow<'_>,
) -> Vec<Window> {
    let mut windows = Vec::new();
    let start = check.time(&with_key(range_path.clone(), "start"), &range.start);
    let end = check.time(&with_key(range_path.clone(), "end"), &range.end);
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            check.error_at(&with_key(range_path, "end"), "`end` must be after `start`");
        } else if let Some(message) = too_long(start, end) {
            check.error_at(&with_key(range_path, "end"), message);
        } else {
            windows.push(window(start, end, false, None, None, WindowOrigin::Range));
        }
    }
    windows
}

/// The windows of a `sample` stage: `count` files in requests of `per_request` files, spread
/// evenly between `start` and `end` (see [`windows::sample_starts`]).
fn sample_windows(
    check: &mut Checker<'_>,
    sample_path: Vec<PathSegment>,
    sample: &Sample,
    window: &MakeWindow<'_>,
) -> Vec<Window> {
    let mut windows = Vec::new();
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
                windows.push(window(
                    from,
                    to,
                    span == 0,
                    label,
                    None,
                    WindowOrigin::Sample { index },
                ));
            }
        }
    }
    windows
}

/// The windows of a `windows` stage: one per listed window (an instant, or `start` with `end`,
/// `duration` or neither), each checked on its own.
fn listed_windows(
    check: &mut Checker<'_>,
    list_path: Vec<PathSegment>,
    list: &[WindowSpec],
    window: &MakeWindow<'_>,
) -> Vec<Window> {
    let mut windows = Vec::new();
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
                    windows.push(window(
                        at,
                        at,
                        true,
                        label,
                        clip_name,
                        WindowOrigin::Listed { index },
                    ));
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
                        let ms =
                            check.duration(&with_key(item.clone(), "duration"), Some(duration), -1);
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
                windows.push(window(
                    from,
                    to,
                    to == from,
                    label,
                    clip_name,
                    WindowOrigin::Listed { index },
                ));
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
    windows
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
        location: row
            .site
            .as_ref()
            .map(|site| std::sync::Arc::from(site.location.as_str())),
        device: row.device,
        origin: WindowOrigin::Row,
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
