//! Annotation-tool files beside the audio clips, so clips open in Raven Pro or Audacity with
//! their events marked.
//!
//! Input: the catalog's rows (one per clip, from the clips' sidecars: requested window, time of
//! the first sample, samples written, sample rate) and the output root. Output, for audio clips
//! only (Raven and Audacity open audio, not NPZ/MAT):
//!
//! * per clip `NAME.flac|.wav`, an Audacity label track `NAME.labels.txt` beside it: one line
//!   `start<TAB>end<TAB>label`, in seconds from the clip file's first sample (the requested
//!   event, without the padding), as Audacity's File > Import > Labels reads it;
//! * per clip folder (`DEVICE/TAG/clips/audio/`), one Raven selection table
//!   `clips.selections.txt` (the name ends as Raven's own saved tables do), one selection per
//!   clip. Each row says where its event is in two ways: `Begin File` (the clip file's name) with
//!   `File Offset (s)` (the offset of the event in that file), which holds however the files are
//!   opened; and `Begin Time (s)`/`End Time (s)` on the timeline Raven builds when the folder's
//!   clips are opened together as one file sequence, in file-name order (the durations of the
//!   files before it, plus the offset). `Begin Date`/`Begin Clock Time` (UTC) and `Device` make
//!   the table a request file onc-pipe reads back. No `Begin Path`: an absolute path would tie
//!   the table to this machine and differ between two runs of one manifest in two folders.
//!
//! An event that a piece of a split clip does not reach gets no label in that piece; one it
//! reaches in part is cut to the piece. Files are replaced atomically (a hidden temporary name
//! beside them, renamed over them), and left untouched when their bytes would not change.
//! Errors: writing a file ([`AnnotationError`], with its path); a row whose times cannot be
//! read is skipped (the catalog still lists it).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::catalog::Row;

/// The Raven selection table of a clip folder.
pub const SELECTION_TABLE: &str = "clips.selections.txt";
/// What ends an Audacity label file's name, after the clip's name.
const LABELS_SUFFIX: &str = "labels.txt";
/// The audio clip extensions.
const AUDIO_EXTENSIONS: [&str; 2] = ["flac", "wav"];

#[derive(Debug, thiserror::Error)]
#[error("could not write the annotation file {path}: {source}")]
pub struct AnnotationError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// The annotation files written for an audio clip file (relative or absolute): its label track
/// and its folder's selection table; `None` for a file that is not an audio clip.
pub fn annotation_files(clip_file: &Path) -> Option<[PathBuf; 2]> {
    let extension = clip_file.extension()?.to_str()?;
    if !AUDIO_EXTENSIONS
        .iter()
        .any(|known| extension.eq_ignore_ascii_case(known))
    {
        return None;
    }
    let folder = clip_file.parent().unwrap_or(Path::new(""));
    Some([
        clip_file.with_extension(LABELS_SUFFIX),
        folder.join(SELECTION_TABLE),
    ])
}

/// One audio clip's event, in seconds from its file's first sample.
#[derive(Debug, Clone, PartialEq)]
struct ClipEvent {
    /// The clip file, relative to the output root.
    file: PathBuf,
    /// Seconds the clip file lasts.
    duration_s: f64,
    sample_rate: u32,
    /// The event within the clip, cut to it; `None` when the clip does not reach it.
    event: Option<(f64, f64)>,
    /// The time of the clip file's first sample.
    first: DateTime<Utc>,
    label: String,
    device: String,
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// Seconds from `from` to `to`, to the nanosecond.
fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    Some((to - from).num_nanoseconds()? as f64 / 1e9)
}

/// A label as one cell: tabs and line breaks would end the cell or the line.
fn one_cell(text: &str) -> String {
    text.replace(['\t', '\r', '\n'], " ")
}

fn clip_event(row: &Row) -> Option<ClipEvent> {
    if row.media != "audio" || row.path.is_empty() {
        return None;
    }
    let file = PathBuf::from(&row.path);
    annotation_files(&file)?;
    let sample_rate = row.sample_rate.filter(|rate| *rate > 0)?;
    let first = utc(&row.first)?;
    let start = utc(&row.requested_start)?;
    let end = utc(&row.requested_end)?;
    let duration_s = row.length as f64 / f64::from(sample_rate);
    let from = seconds_between(first, start)?;
    let to = seconds_between(first, end)?;
    let event = (to >= 0.0 && from <= duration_s).then(|| (from.max(0.0), to.min(duration_s)));
    let label = if row.label.is_empty() {
        &row.name
    } else {
        &row.label
    };
    Some(ClipEvent {
        file,
        duration_s,
        sample_rate,
        event,
        first,
        label: one_cell(label),
        device: one_cell(&row.device),
    })
}

/// An Audacity label track: `start\tend\tlabel`, seconds with six decimals (as Audacity writes).
fn label_track(clip: &ClipEvent) -> String {
    match clip.event {
        Some((from, to)) => format!("{from:.6}\t{to:.6}\t{}\n", clip.label),
        None => String::new(),
    }
}

const TABLE_HEADER: [&str; 14] = [
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Delta Time (s)",
    "Begin File",
    "File Offset (s)",
    "Begin Date",
    "Begin Clock Time",
    "Device",
    "Annotation",
];

/// A Raven selection table of one folder's clips, in file-name order.
fn selection_table(clips: &[&ClipEvent]) -> String {
    let mut text = TABLE_HEADER.join("\t");
    text.push('\n');
    let mut before = 0.0;
    let mut selection = 0;
    for clip in clips {
        if let Some((from, to)) = clip.event {
            selection += 1;
            let name = clip
                .file
                .file_name()
                .map(|name| name.to_string_lossy())
                .unwrap_or_default();
            // Where the selection begins: the event's start, or the clip's first sample when
            // this piece of a split clip begins after it.
            let shown_start =
                clip.first + chrono::TimeDelta::nanoseconds((from * 1e9).round() as i64);
            let clock = shown_start.to_rfc3339_opts(SecondsFormat::Millis, true);
            let (date, time) = clock.split_once('T').unwrap_or((&clock, ""));
            let cells = [
                selection.to_string(),
                "Spectrogram 1".to_owned(),
                "1".to_owned(),
                format!("{:.6}", before + from),
                format!("{:.6}", before + to),
                "0".to_owned(),
                format!("{}", f64::from(clip.sample_rate) / 2.0),
                format!("{:.6}", to - from),
                name.into_owned(),
                format!("{from:.6}"),
                date.replace('-', "/"),
                time.trim_end_matches('Z').to_owned(),
                clip.device.clone(),
                clip.label.clone(),
            ];
            text.push_str(&cells.join("\t"));
            text.push('\n');
        }
        before += clip.duration_s;
    }
    text
}

/// Writes `bytes` to `path` atomically, unless it already holds them.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), AnnotationError> {
    let failed = |source: std::io::Error| AnnotationError {
        path: path.to_path_buf(),
        source,
    };
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(failed)?;
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = crate::temp::TempGuard::new(folder.join(crate::temp::unique_name(
        &format!(".{name}."),
        crate::temp::OUTPUT_TEMP_SUFFIX,
    )));
    let mut file = std::fs::File::create_new(temp.path()).map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(temp.path(), path).map_err(failed)?;
    temp.disarm();
    Ok(())
}

/// Writes every audio clip's label track and each clip folder's selection table (see the module
/// doc); returns the files it is responsible for, relative to `output_dir`, sorted.
pub fn write(rows: &[Row], output_dir: &Path) -> Result<Vec<String>, AnnotationError> {
    let clips: Vec<ClipEvent> = rows.iter().filter_map(clip_event).collect();
    let mut folders: BTreeMap<PathBuf, Vec<&ClipEvent>> = BTreeMap::new();
    let mut written = Vec::new();
    for clip in &clips {
        let Some([labels, table]) = annotation_files(&clip.file) else {
            continue;
        };
        let full = crate::cache::safe_join(output_dir, &labels).map_err(|_| AnnotationError {
            path: output_dir.join(&labels),
            source: std::io::Error::other("the clip's path leaves the output folder"),
        })?;
        replace(&full, label_track(clip).as_bytes())?;
        written.push(labels);
        folders.entry(table).or_default().push(clip);
    }
    for (table, mut clips) in folders {
        clips.sort_by(|a, b| a.file.cmp(&b.file));
        let full = crate::cache::safe_join(output_dir, &table).map_err(|_| AnnotationError {
            path: output_dir.join(&table),
            source: std::io::Error::other("the clip folder leaves the output folder"),
        })?;
        replace(&full, selection_table(&clips).as_bytes())?;
        written.push(table);
    }
    let mut written: Vec<String> = written
        .iter()
        .map(|path| path.to_string_lossy().replace('\\', "/"))
        .collect();
    written.sort();
    Ok(written)
}
