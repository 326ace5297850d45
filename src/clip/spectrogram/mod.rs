//! Spectrogram clipping: ONC spectrogram files (already decoded) + a clip window + a gap policy
//! → one or more [`SpectrogramClip`]s, then written as NPZ ([`npz::write_npz`]) or drawn as a
//! quick-look PNG ([`picture::render_png`]).
//!
//! Input: one [`SpectrogramInput`] per source file — its ONC file name, its PSD (frequency ×
//! time, column-major as MATLAB stores it), its frequency axis and its column times in UTC
//! seconds since 1970, taken from the file's own time vector. Files are never assumed to be
//! 300 s long or aligned to any grid (see `onc-files.md`, "Time layout").
//!
//! Output: the columns whose time `t` satisfies `clip_start <= t < clip_end` (start inclusive,
//! end exclusive, so that back-to-back windows never share a column), in time order across
//! files, with the source column ranges used, the gaps found and the overlaps dropped.
//!
//! - **Spacing**: the median difference between consecutive column times, pooled over every
//!   input file (the median ignores a short last column and a few jittered ones). Files whose
//!   own median spacing differs by more than 1 % (e.g. plotRes mixed with one-minute averages)
//!   are refused.
//! - **Overlap**: a column whose time is `<=` the previous kept column's time (the next file
//!   repeats time the previous one already covered) is dropped and reported as a [`Span`] from
//!   the first dropped column's time to the last dropped column's time + spacing.
//! - **Gap**: a jump larger than 1.5 × spacing between consecutive kept columns, or from the
//!   clip start to the first kept column, or from the last kept column to the clip end. Reported
//!   as the stretch no column covers: `[previous column + spacing, next column]`
//!   (`[clip_start, first column]`, `[last column + spacing, clip_end]` at the edges).
//!   [`GapPolicy::Fill`] inserts NaN columns on the spacing grid; `Split` returns one clip per
//!   contiguous stretch (each carrying every gap of the window, so each sidecar explains the
//!   split); `Skip` and `Fail` return [`SpectrogramClipError::SkippedForGap`] and
//!   [`SpectrogramClipError::Gap`].
//!
//! Errors ([`SpectrogramClipError`]): malformed inputs (empty or non-finite or unsorted time
//! vectors, no frequency bins, a PSD of the wrong length), files that must not be stitched
//! (different frequency axes, diversion modes `-LPF`/`-HPF` vs original data, array channels,
//! devices, column spacings), no column in the window, a gap under `skip`/`fail`, a clip too
//! large to hold in memory. Messages read after "failed to" and name the files involved.

pub mod npz;
pub mod picture;

pub use npz::{NpzError, NpzMeta, write_npz};
pub use picture::{RenderError, render_png};

use super::{SourceUse, Span};
use crate::plan::GapPolicy;

/// One decoded spectrogram source file, borrowed from whatever read it (the MAT reader's
/// `SpectrogramFile` maps onto this field by field).
#[derive(Debug, Clone, Copy)]
pub struct SpectrogramInput<'a> {
    /// ONC's file name, e.g. `ICLISTENHF6324_20240401T000107.123Z_20240401T000607.456Z-spect_plotRes.mat`:
    /// used in messages and sidecars, and for its diversion mode and channel suffixes.
    pub name: &'a str,
    /// PSD in dB, `nfreq × ntime` column-major: column `j` is `psd[j*nfreq..(j+1)*nfreq]`.
    /// May hold NaN and -Inf.
    pub psd: &'a [f64],
    pub nfreq: usize,
    /// `nfreq` frequencies in Hz.
    pub frequency_hz: &'a [f64],
    /// Each column's time, UTC seconds since 1970, strictly increasing.
    pub time_s: &'a [f64],
}

/// A clipped spectrogram: what NPZ, MAT and PNG clips are written from, plus sidecar facts.
#[derive(Debug, Clone, PartialEq)]
pub struct SpectrogramClip {
    /// `nfreq × ncols` column-major (column `j` = `psd[j*nfreq..(j+1)*nfreq]`); NaN columns
    /// where a gap was filled.
    pub psd: Vec<f64>,
    pub nfreq: usize,
    pub frequency_hz: Vec<f64>,
    /// Each column's time, UTC seconds since 1970 (`ncols` values, strictly increasing).
    pub time_s: Vec<f64>,
    pub seconds_per_column: f64,
    /// Column ranges used, one per source file, in time order.
    pub sources: Vec<SourceUse>,
    pub gaps: Vec<Span>,
    pub overlaps: Vec<Span>,
}

impl SpectrogramClip {
    /// Number of time columns.
    pub fn ncols(&self) -> usize {
        self.time_s.len()
    }
}

/// Refuse to build a clip of more cells than this (1 GiB of f64): a bogus time vector with a
/// microscopic spacing must fail clearly instead of filling memory with NaN columns.
const MAX_CELLS: usize = 1 << 27;

/// A jump between kept columns larger than this many spacings is a gap.
const GAP_FACTOR: f64 = 1.5;

/// Files whose median column spacing differs by more than this fraction are not stitched.
const SPACING_TOLERANCE: f64 = 0.01;

/// Frequencies closer than this fraction (of the larger value, or of 1 Hz) are the same bin.
const FREQUENCY_TOLERANCE: f64 = 1e-6;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpectrogramClipError {
    #[error("clip spectrograms: no spectrogram files were given")]
    NoInputs,
    #[error("clip spectrograms: the window {start} – {end} is empty or not a valid time range")]
    InvalidWindow { start: String, end: String },
    #[error("read spectrogram {file}: it has no frequency bins")]
    NoFrequencies { file: String },
    #[error("read spectrogram {file}: its frequency axis has {values} values for {nfreq} bins")]
    FrequencyAxisLength {
        file: String,
        nfreq: usize,
        values: usize,
    },
    #[error("read spectrogram {file}: it has no time columns")]
    NoColumns { file: String },
    #[error(
        "read spectrogram {file}: its PSD has {values} values, expected {nfreq} frequencies × {ncols} columns"
    )]
    PsdLength {
        file: String,
        values: usize,
        nfreq: usize,
        ncols: usize,
    },
    #[error("read spectrogram {file}: column {column} has no valid time ({value})")]
    BadTime {
        file: String,
        column: usize,
        value: f64,
    },
    #[error(
        "read spectrogram {file}: its time vector is not increasing at column {column} ({previous} then {value})"
    )]
    UnsortedTime {
        file: String,
        column: usize,
        previous: f64,
        value: f64,
    },
    #[error("stitch spectrograms {first} and {second}: their frequency axes differ ({detail})")]
    FrequencyMismatch {
        first: String,
        second: String,
        detail: String,
    },
    #[error(
        "stitch spectrograms {first} ({first_mode}) and {second} ({second_mode}): diverted (-LPF/-HPF) data is never stitched with other data"
    )]
    DiversionMismatch {
        first: String,
        first_mode: &'static str,
        second: String,
        second_mode: &'static str,
    },
    #[error(
        "stitch spectrograms {first} ({first_channel}) and {second} ({second_channel}): they come from different hydrophone channels"
    )]
    ChannelMismatch {
        first: String,
        first_channel: String,
        second: String,
        second_channel: String,
    },
    #[error("stitch spectrograms {first} and {second}: they come from different devices")]
    DeviceMismatch { first: String, second: String },
    #[error(
        "stitch spectrograms {first} ({first_spacing} s per column) and {second} ({second_spacing} s per column): their time resolutions differ"
    )]
    SpacingMismatch {
        first: String,
        first_spacing: f64,
        second: String,
        second_spacing: f64,
    },
    #[error(
        "clip spectrograms: cannot tell the column spacing, no file has two time columns ({files})"
    )]
    NoSpacing { files: String },
    #[error("clip spectrograms: no spectrogram columns between {start} and {end}")]
    NoColumnsInWindow { start: String, end: String },
    #[error(
        "clip spectrograms {start} – {end}: skipped because of a gap from {gap_start} to {gap_end} ({count} gap(s) in all; gaps = \"skip\")"
    )]
    SkippedForGap {
        start: String,
        end: String,
        gap_start: String,
        gap_end: String,
        count: usize,
    },
    #[error(
        "clip spectrograms {start} – {end}: the data has a gap from {gap_start} to {gap_end} ({count} gap(s) in all; gaps = \"fail\")"
    )]
    Gap {
        start: String,
        end: String,
        gap_start: String,
        gap_end: String,
        count: usize,
    },
    #[error(
        "clip spectrograms {start} – {end}: the clip would have {columns} columns of {nfreq} bins, more than this tool holds in memory"
    )]
    TooLarge {
        start: String,
        end: String,
        columns: f64,
        nfreq: usize,
    },
}

/// UTC seconds since 1970 → ISO 8601 with milliseconds, e.g. `2024-04-01T04:24:40.000Z`; the
/// bare number when it is not a representable time.
pub fn iso_utc(seconds: f64) -> String {
    let millis = (seconds * 1000.0).round();
    if millis.is_finite()
        && millis.abs() < 1e17
        && let Some(t) = chrono::DateTime::from_timestamp_millis(millis as i64)
    {
        return t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    }
    format!("{seconds} s")
}

/// Diversion mode from a file name suffix. `-OD` (original data) and no suffix are the same
/// data; low- and high-pass diverted data are each their own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Diversion {
    Original,
    LowPass,
    HighPass,
}

impl Diversion {
    fn label(self) -> &'static str {
        match self {
            Diversion::Original => "OD or unsuffixed",
            Diversion::LowPass => "LPF",
            Diversion::HighPass => "HPF",
        }
    }
}

/// What a file name says about the data: the device code (before the first time stamp), the
/// diversion mode and the array channel (`-H1`…) among the suffixes after the last stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NameFacts<'a> {
    device: Option<&'a str>,
    diversion: Diversion,
    channel: Option<&'a str>,
}

/// Length of an ONC time stamp `yyyymmddThhmmss.sssZ`.
const STAMP_LEN: usize = 20;

fn is_stamp(bytes: &[u8]) -> bool {
    bytes.len() == STAMP_LEN
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 => b == b'T',
            15 => b == b'.',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Reads `DEV_yyyymmddThhmmss.sssZ[_yyyymmddThhmmss.sssZ][-OD|-LPF|-HPF][-H1..][-spect…].mat`.
/// Names without a time stamp (hand-made files) have no device and are judged by their
/// suffix-like tokens alone.
fn name_facts(name: &str) -> NameFacts<'_> {
    let bytes = name.as_bytes();
    let stamps: Vec<usize> = (0..bytes.len().saturating_sub(STAMP_LEN - 1))
        .filter(|&i| is_stamp(&bytes[i..i + STAMP_LEN]))
        .collect();
    let (device, rest) = match (stamps.first(), stamps.last()) {
        (Some(&first), Some(&last)) => {
            let device = (first > 1 && bytes[first - 1] == b'_')
                .then(|| name.get(..first - 1))
                .flatten();
            (device, name.get(last + STAMP_LEN..).unwrap_or(""))
        }
        _ => (None, name),
    };
    let mut facts = NameFacts {
        device,
        diversion: Diversion::Original,
        channel: None,
    };
    for token in rest.split(['-', '_', '.']) {
        if token.eq_ignore_ascii_case("LPF") {
            facts.diversion = Diversion::LowPass;
        } else if token.eq_ignore_ascii_case("HPF") {
            facts.diversion = Diversion::HighPass;
        } else if token.len() >= 2
            && (token.starts_with('H') || token.starts_with('h'))
            && token[1..].bytes().all(|b| b.is_ascii_digit())
        {
            facts.channel = Some(token);
        }
    }
    facts
}

/// Median of a non-empty slice of finite values (sorts a copy).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Checks one input's shapes and time vector.
fn validate(input: &SpectrogramInput) -> Result<(), SpectrogramClipError> {
    let file = || input.name.to_string();
    if input.nfreq == 0 {
        return Err(SpectrogramClipError::NoFrequencies { file: file() });
    }
    if input.frequency_hz.len() != input.nfreq {
        return Err(SpectrogramClipError::FrequencyAxisLength {
            file: file(),
            nfreq: input.nfreq,
            values: input.frequency_hz.len(),
        });
    }
    let ncols = input.time_s.len();
    if ncols == 0 {
        return Err(SpectrogramClipError::NoColumns { file: file() });
    }
    if input.nfreq.checked_mul(ncols) != Some(input.psd.len()) {
        return Err(SpectrogramClipError::PsdLength {
            file: file(),
            values: input.psd.len(),
            nfreq: input.nfreq,
            ncols,
        });
    }
    for (column, &value) in input.time_s.iter().enumerate() {
        if !value.is_finite() {
            return Err(SpectrogramClipError::BadTime {
                file: file(),
                column,
                value,
            });
        }
        if column > 0 {
            let previous = input.time_s[column - 1];
            if value <= previous {
                return Err(SpectrogramClipError::UnsortedTime {
                    file: file(),
                    column,
                    previous,
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Refuses to stitch `second` after `first` when their data are not the same kind.
fn check_compatible(
    first: &SpectrogramInput,
    second: &SpectrogramInput,
) -> Result<(), SpectrogramClipError> {
    let (a, b) = (name_facts(first.name), name_facts(second.name));
    if a.diversion != b.diversion {
        return Err(SpectrogramClipError::DiversionMismatch {
            first: first.name.to_string(),
            first_mode: a.diversion.label(),
            second: second.name.to_string(),
            second_mode: b.diversion.label(),
        });
    }
    if a.channel != b.channel {
        return Err(SpectrogramClipError::ChannelMismatch {
            first: first.name.to_string(),
            first_channel: a.channel.unwrap_or("no channel").to_string(),
            second: second.name.to_string(),
            second_channel: b.channel.unwrap_or("no channel").to_string(),
        });
    }
    if let (Some(da), Some(db)) = (a.device, b.device)
        && da != db
    {
        return Err(SpectrogramClipError::DeviceMismatch {
            first: first.name.to_string(),
            second: second.name.to_string(),
        });
    }
    let mismatch = |detail: String| SpectrogramClipError::FrequencyMismatch {
        first: first.name.to_string(),
        second: second.name.to_string(),
        detail,
    };
    if first.nfreq != second.nfreq {
        return Err(mismatch(format!(
            "{} vs {} bins",
            first.nfreq, second.nfreq
        )));
    }
    let differing = first
        .frequency_hz
        .iter()
        .zip(second.frequency_hz)
        .position(|(&x, &y)| {
            let same_nan = x.is_nan() && y.is_nan();
            let tolerance = FREQUENCY_TOLERANCE * x.abs().max(y.abs()).max(1.0);
            // A NaN against a number is a difference (the comparison is false).
            let same = same_nan || (x - y).abs() <= tolerance;
            !same
        });
    if let Some(bin) = differing {
        return Err(mismatch(format!(
            "bin {bin}: {} Hz vs {} Hz",
            first.frequency_hz[bin], second.frequency_hz[bin]
        )));
    }
    Ok(())
}

/// A column in the assembled clip: copied from a source file, or a NaN column filling a gap.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// `(index into the sorted inputs, column index in that file)`.
    Source(usize, usize),
    Missing(f64),
}

/// Clips `inputs` to `[clip_start_s, clip_end_s)` (see the module doc for every rule).
///
/// Returns one clip, or with [`GapPolicy::Split`] one per contiguous stretch of columns.
pub fn clip_spectrogram(
    inputs: &[SpectrogramInput],
    clip_start_s: f64,
    clip_end_s: f64,
    gaps: GapPolicy,
) -> Result<Vec<SpectrogramClip>, SpectrogramClipError> {
    let window_start = || iso_utc(clip_start_s);
    let window_end = || iso_utc(clip_end_s);
    if !(clip_start_s.is_finite() && clip_end_s.is_finite() && clip_start_s < clip_end_s) {
        return Err(SpectrogramClipError::InvalidWindow {
            start: window_start(),
            end: window_end(),
        });
    }
    if inputs.is_empty() {
        return Err(SpectrogramClipError::NoInputs);
    }
    for input in inputs {
        validate(input)?;
    }
    // Time order by first column; the name breaks ties so the result never depends on the
    // caller's order.
    let mut files: Vec<SpectrogramInput> = inputs.to_vec();
    files.sort_by(|a, b| {
        a.time_s[0]
            .total_cmp(&b.time_s[0])
            .then_with(|| a.name.cmp(b.name))
    });
    for pair in files.windows(2) {
        check_compatible(&pair[0], &pair[1])?;
    }
    let spacing = column_spacing(&files)?;

    // Select the window's columns, dropping those that repeat time already kept.
    let mut kept: Vec<(usize, usize)> = Vec::new();
    let mut overlaps = Vec::new();
    let mut last_kept: Option<f64> = None;
    for (index, file) in files.iter().enumerate() {
        let first = file.time_s.partition_point(|&t| t < clip_start_s);
        let end = file.time_s.partition_point(|&t| t < clip_end_s);
        if first >= end {
            continue;
        }
        let fresh = match last_kept {
            Some(last) => first + file.time_s[first..end].partition_point(|&t| t <= last),
            None => first,
        };
        if fresh > first {
            overlaps.push(Span {
                start_s: file.time_s[first],
                end_s: file.time_s[fresh - 1] + spacing,
            });
        }
        kept.extend((fresh..end).map(|column| (index, column)));
        if fresh < end {
            last_kept = Some(file.time_s[end - 1]);
        }
    }
    let time_of = |&(file, column): &(usize, usize)| files[file].time_s[column];
    let (Some(first_kept), Some(last_kept)) = (kept.first(), kept.last()) else {
        return Err(SpectrogramClipError::NoColumnsInWindow {
            start: window_start(),
            end: window_end(),
        });
    };
    let (first_time, last_time) = (time_of(first_kept), time_of(last_kept));

    // Gaps: `(position in kept before which the gap lies, span)`; position 0 = before the
    // first column, kept.len() = after the last.
    let threshold = GAP_FACTOR * spacing;
    let mut found: Vec<(usize, Span)> = Vec::new();
    if first_time - clip_start_s > threshold {
        found.push((
            0,
            Span {
                start_s: clip_start_s,
                end_s: first_time,
            },
        ));
    }
    for position in 1..kept.len() {
        let (before, after) = (time_of(&kept[position - 1]), time_of(&kept[position]));
        if after - before > threshold {
            found.push((
                position,
                Span {
                    start_s: before + spacing,
                    end_s: after,
                },
            ));
        }
    }
    if clip_end_s - last_time > threshold {
        found.push((
            kept.len(),
            Span {
                start_s: last_time + spacing,
                end_s: clip_end_s,
            },
        ));
    }
    let gap_spans: Vec<Span> = found.iter().map(|&(_, span)| span).collect();

    let nfreq = files[0].nfreq;
    let too_large = |columns: f64| SpectrogramClipError::TooLarge {
        start: window_start(),
        end: window_end(),
        columns,
        nfreq,
    };
    let assemble = |columns: &[Column]| -> Result<SpectrogramClip, SpectrogramClipError> {
        if columns.len().saturating_mul(nfreq) > MAX_CELLS {
            return Err(too_large(columns.len() as f64));
        }
        Ok(assemble_clip(
            &files, columns, spacing, &gap_spans, &overlaps,
        ))
    };

    let Some(&(_, first_gap)) = found.first() else {
        let columns: Vec<Column> = kept.iter().map(|&(f, c)| Column::Source(f, c)).collect();
        return Ok(vec![assemble(&columns)?]);
    };
    match gaps {
        GapPolicy::Fail => Err(SpectrogramClipError::Gap {
            start: window_start(),
            end: window_end(),
            gap_start: iso_utc(first_gap.start_s),
            gap_end: iso_utc(first_gap.end_s),
            count: found.len(),
        }),
        GapPolicy::Skip => Err(SpectrogramClipError::SkippedForGap {
            start: window_start(),
            end: window_end(),
            gap_start: iso_utc(first_gap.start_s),
            gap_end: iso_utc(first_gap.end_s),
            count: found.len(),
        }),
        GapPolicy::Split => {
            let mut cuts: Vec<usize> = found
                .iter()
                .map(|&(position, _)| position)
                .filter(|&p| p > 0 && p < kept.len())
                .collect();
            cuts.push(kept.len());
            let mut clips = Vec::with_capacity(cuts.len());
            let mut from = 0;
            for cut in cuts {
                let columns: Vec<Column> = kept[from..cut]
                    .iter()
                    .map(|&(f, c)| Column::Source(f, c))
                    .collect();
                let mut clip = assemble(&columns)?;
                // Only the overlaps inside this stretch belong to it.
                let (lo, hi) = (time_of(&kept[from]), time_of(&kept[cut - 1]));
                clip.overlaps
                    .retain(|span| span.start_s <= hi + spacing && span.end_s >= lo);
                clips.push(clip);
                from = cut;
            }
            Ok(clips)
        }
        GapPolicy::Fill => {
            // Count the NaN columns first so a huge gap fails before anything is allocated.
            let fills: Vec<(usize, f64, f64)> = found
                .iter()
                .map(|&(position, _)| {
                    let (from, count) = if position == 0 {
                        // Grid times first - k·spacing that are still >= clip start (the
                        // small allowance keeps a grid time that float rounding put a hair
                        // before the start; it is clamped below).
                        let count = ((first_time - clip_start_s) / spacing * (1.0 + 1e-9)).floor();
                        (first_time - count * spacing, count)
                    } else if position == kept.len() {
                        // Grid times last + k·spacing that are still < clip end.
                        let count =
                            ((clip_end_s - last_time) / spacing * (1.0 - 1e-9)).ceil() - 1.0;
                        (last_time + spacing, count)
                    } else {
                        let before = time_of(&kept[position - 1]);
                        let after = time_of(&kept[position]);
                        (before + spacing, ((after - before) / spacing).round() - 1.0)
                    };
                    (position, from.max(clip_start_s), count.max(1.0))
                })
                .collect();
            let total = kept.len() as f64 + fills.iter().map(|f| f.2).sum::<f64>();
            if total.is_nan() || total * nfreq as f64 > MAX_CELLS as f64 {
                return Err(too_large(total));
            }
            let mut columns = Vec::with_capacity(total as usize);
            let mut fills = fills.into_iter().peekable();
            for position in 0..=kept.len() {
                while let Some(&(_, from, count)) = fills.peek().filter(|f| f.0 == position) {
                    columns.extend(
                        (0..count as usize).map(|k| Column::Missing(from + k as f64 * spacing)),
                    );
                    fills.next();
                }
                if let Some(&(f, c)) = kept.get(position) {
                    columns.push(Column::Source(f, c));
                }
            }
            Ok(vec![assemble(&columns)?])
        }
    }
}

/// The clip-wide column spacing: the median of every file's consecutive time differences.
/// Refuses files whose own median spacing differs from it by more than 1 %.
fn column_spacing(files: &[SpectrogramInput]) -> Result<f64, SpectrogramClipError> {
    let differences = |file: &SpectrogramInput| -> Vec<f64> {
        file.time_s.windows(2).map(|w| w[1] - w[0]).collect()
    };
    let mut pooled: Vec<f64> = files.iter().flat_map(differences).collect();
    let spacing = median(&mut pooled)
        .filter(|s| s.is_finite() && *s > 0.0)
        .ok_or_else(|| SpectrogramClipError::NoSpacing {
            files: files.iter().map(|f| f.name).collect::<Vec<_>>().join(", "),
        })?;
    let mut reference: Option<(&str, f64)> = None;
    for file in files {
        let Some(own) = median(&mut differences(file)) else {
            continue;
        };
        match reference {
            None => reference = Some((file.name, own)),
            Some((name, first_spacing)) => {
                let close = |s: f64| (s - spacing).abs() <= SPACING_TOLERANCE * spacing;
                if !close(own) || !close(first_spacing) {
                    return Err(SpectrogramClipError::SpacingMismatch {
                        first: name.to_string(),
                        first_spacing,
                        second: file.name.to_string(),
                        second_spacing: own,
                    });
                }
            }
        }
    }
    Ok(spacing)
}

/// Copies the chosen columns into a new clip and records which source columns were used.
fn assemble_clip(
    files: &[SpectrogramInput],
    columns: &[Column],
    spacing: f64,
    gaps: &[Span],
    overlaps: &[Span],
) -> SpectrogramClip {
    let nfreq = files.first().map_or(0, |f| f.nfreq);
    let mut psd = Vec::with_capacity(columns.len() * nfreq);
    let mut time_s = Vec::with_capacity(columns.len());
    let mut sources: Vec<SourceUse> = Vec::new();
    // Index into `files` of the last source entry, to extend it while columns run on.
    let mut current: Option<usize> = None;
    for &column in columns {
        match column {
            Column::Source(file, index) => {
                let input = &files[file];
                psd.extend_from_slice(&input.psd[index * nfreq..(index + 1) * nfreq]);
                time_s.push(input.time_s[index]);
                match (current, sources.last_mut()) {
                    (Some(f), Some(source)) if f == file => source.end = index as u64 + 1,
                    _ => {
                        sources.push(SourceUse {
                            file: input.name.to_string(),
                            first: index as u64,
                            end: index as u64 + 1,
                        });
                        current = Some(file);
                    }
                }
            }
            Column::Missing(t) => {
                psd.extend(std::iter::repeat_n(f64::NAN, nfreq));
                time_s.push(t);
            }
        }
    }
    SpectrogramClip {
        psd,
        nfreq,
        frequency_hz: files
            .first()
            .map_or_else(Vec::new, |f| f.frequency_hz.to_vec()),
        time_s,
        seconds_per_column: spacing,
        sources,
        gaps: gaps.to_vec(),
        overlaps: overlaps.to_vec(),
    }
}

#[cfg(test)]
mod tests;
