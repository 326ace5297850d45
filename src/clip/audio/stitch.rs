//! Stitching: source files + a clip window + a gap policy → the clip's samples and sidecar facts
//! ([`AudioClip`]): one clip, or one per contiguous stretch of data.
//!
//! Input: [`AudioSource`]s, the window `[start, end)` in ns since 1970 UTC, and a [`GapPolicy`].
//! Output: `layout` (arithmetic only, no I/O) places every file on the first file's sample grid
//! and finds what each file contributes, the gaps and the overlaps (the rules are in `mod.rs`'s
//! documentation, "Timeline"); [`clip_audio`] opens and checks the files, applies the gap policy
//! and decodes each file's part into place. Errors ([`AudioClipError`]): an empty window, no
//! data in the window, files whose rate, bit depth or channel count differ, a gap under `skip`
//! (`SkippedForGap`) or `fail` (`Gap`), a clip too long to hold, and the errors of `decode.rs`.

use super::decode::open_source;
use super::error::{AudioClipError, iso_ns};
use super::{AudioClip, AudioSource, MAX_CLIP_SAMPLES, NS_PER_S, SourceUse, Span};
use crate::plan::GapPolicy;

/// `num / den` rounded to the nearest integer, halves up (`den > 0`).
fn div_round(num: i128, den: i128) -> i128 {
    (2 * num + den).div_euclid(2 * den)
}

/// One file's placement, as the pure layout step sees it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed {
    pub(super) start_ns: i128,
    pub(super) frames: u64,
}

/// Samples `[file_first, file_first + len)` of file `file` go to output `[out_start, +len)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Segment {
    pub(super) file: usize,
    pub(super) out_start: u64,
    pub(super) file_first: u64,
    pub(super) len: u64,
}

/// Where each file's samples go in the clip. Positions are output sample indices.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Layout {
    /// Output length (per channel).
    pub(super) frames: u64,
    /// Output sample 0 sits `k0` samples after the reference file's start (may be negative).
    pub(super) k0: i128,
    /// Start of the reference file (the first one, in time order).
    pub(super) ref_start_ns: i128,
    pub(super) segments: Vec<Segment>,
    pub(super) gaps: Vec<(u64, u64)>,
    pub(super) overlaps: Vec<(u64, u64)>,
}

impl Layout {
    /// UTC seconds of output sample `index` (fractional: no rounding to ns).
    pub(super) fn time_s(&self, rate: u32, index: u64) -> f64 {
        let rate = i128::from(rate);
        // Time in ns × rate, exactly; then split into whole ns and a fraction.
        let scaled = self.ref_start_ns * rate + (self.k0 + i128::from(index)) * NS_PER_S;
        let whole_ns = scaled.div_euclid(rate);
        let frac_ns = scaled.rem_euclid(rate) as f64 / rate as f64;
        let secs = whole_ns.div_euclid(NS_PER_S) as f64;
        secs + (whole_ns.rem_euclid(NS_PER_S) as f64 + frac_ns) / 1e9
    }

    pub(super) fn span(&self, rate: u32, (a, b): (u64, u64)) -> Span {
        Span {
            start_s: self.time_s(rate, a),
            end_s: self.time_s(rate, b),
        }
    }
}

/// The pure placement step. `files` are in time order, all overlapping the window, all at
/// `rate`; `files[0]` is the reference (it holds the clip start, or is the first file after it).
pub(super) fn layout(
    files: &[Placed],
    rate: u32,
    clip_start_ns: i64,
    clip_end_ns: i64,
) -> Option<Layout> {
    let reference = files.first()?;
    let rate_i = i128::from(rate.max(1));
    let k0 = div_round(
        (i128::from(clip_start_ns) - reference.start_ns) * rate_i,
        NS_PER_S,
    );
    let frames = div_round(
        (i128::from(clip_end_ns) - i128::from(clip_start_ns)) * rate_i,
        NS_PER_S,
    )
    .max(1);
    let n = frames;
    // One millisecond, the precision of a file name's start time, in samples (rounded up).
    let slack = (rate_i + 999) / 1000;
    let mut segments = Vec::new();
    let mut overlaps = Vec::new();
    // Output position where the data placed so far ends.
    let mut data_end: Option<i128> = None;
    for (index, file) in files.iter().enumerate() {
        let mut start = div_round((file.start_ns - reference.start_ns) * rate_i, NS_PER_S) - k0;
        if let Some(end) = data_end
            && (start - end).abs() <= slack
        {
            start = end;
        }
        let end = start + i128::from(file.frames);
        let from = start.max(data_end.unwrap_or(start)).max(0);
        let to = end.min(n);
        if to > from {
            segments.push(Segment {
                file: index,
                out_start: from as u64,
                file_first: (from - start) as u64,
                len: (to - from) as u64,
            });
        }
        if let Some(prev_end) = data_end {
            let (a, b) = (start.max(0), prev_end.min(end).min(n));
            if b > a {
                overlaps.push((a as u64, b as u64));
            }
        }
        data_end = Some(data_end.map_or(end, |e| e.max(end)));
    }
    let mut gaps = Vec::new();
    let mut cursor = 0u64;
    for segment in &segments {
        if segment.out_start > cursor {
            gaps.push((cursor, segment.out_start));
        }
        cursor = segment.out_start + segment.len;
    }
    if (cursor as i128) < n {
        gaps.push((cursor, n as u64));
    }
    Some(Layout {
        frames: u64::try_from(n).ok()?,
        k0,
        ref_start_ns: reference.start_ns,
        segments,
        gaps,
        overlaps,
    })
}

/// Cut the window `[clip_start_ns, clip_end_ns)` (ns since 1970 UTC) out of `sources`.
///
/// Returns one clip (`fill`) or one per contiguous stretch of data (`split`), in time order.
/// See the module documentation for the timeline and the errors.
pub fn clip_audio(
    sources: &[AudioSource],
    clip_start_ns: i64,
    clip_end_ns: i64,
    gaps: GapPolicy,
) -> Result<Vec<AudioClip>, AudioClipError> {
    if clip_end_ns <= clip_start_ns {
        return Err(AudioClipError::EmptyWindow {
            start_ns: clip_start_ns,
            end_ns: clip_end_ns,
        });
    }
    let window_from = iso_ns(clip_start_ns);
    let window_to = iso_ns(clip_end_ns);
    let mut opened = Vec::with_capacity(sources.len());
    for source in sources {
        opened.push(open_source(source)?);
    }
    // Files with data in the window, in time order (each on its own clock).
    opened
        .retain(|s| s.start_ns < i128::from(clip_end_ns) && s.end_ns() > i128::from(clip_start_ns));
    opened.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(a.name.cmp(b.name)));
    let Some(first) = opened.first() else {
        return Err(AudioClipError::NoData {
            from: window_from,
            to: window_to,
        });
    };
    let format = first.format;
    if let Some(other) = opened.iter().find(|s| s.format != format) {
        return Err(AudioClipError::MixedFormats {
            first: first.name.to_string(),
            first_format: format.describe(first.container),
            second: other.name.to_string(),
            second_format: other.format.describe(other.container),
        });
    }
    let placed: Vec<Placed> = opened
        .iter()
        .map(|s| Placed {
            start_ns: s.start_ns,
            frames: s.frames,
        })
        .collect();
    let Some(layout) = layout(&placed, format.rate, clip_start_ns, clip_end_ns) else {
        return Err(AudioClipError::NoData {
            from: window_from,
            to: window_to,
        });
    };
    let total = layout.frames.saturating_mul(u64::from(format.channels));
    if total > MAX_CLIP_SAMPLES {
        return Err(AudioClipError::TooLong {
            frames: layout.frames,
            channels: format.channels,
        });
    }
    let gap_spans: Vec<Span> = layout
        .gaps
        .iter()
        .map(|&g| layout.span(format.rate, g))
        .collect();
    if layout.segments.is_empty() {
        // Files overlap the window on their own clocks but round to nothing on the grid.
        return Err(AudioClipError::NoData {
            from: window_from,
            to: window_to,
        });
    }
    if !gap_spans.is_empty() {
        match gaps {
            GapPolicy::Skip => {
                return Err(AudioClipError::SkippedForGap {
                    from: window_from,
                    to: window_to,
                    gaps: gap_spans,
                });
            }
            GapPolicy::Fail => {
                return Err(AudioClipError::Gap {
                    from: window_from,
                    to: window_to,
                    gaps: gap_spans,
                });
            }
            GapPolicy::Fill | GapPolicy::Split => {}
        }
    }
    // Output stretches: the whole window for fill, each run of contiguous segments for split.
    let stretches: Vec<(u64, u64)> = match gaps {
        GapPolicy::Split => {
            let mut runs: Vec<(u64, u64)> = Vec::new();
            for s in &layout.segments {
                match runs.last_mut() {
                    Some(run) if run.1 == s.out_start => run.1 += s.len,
                    _ => runs.push((s.out_start, s.out_start + s.len)),
                }
            }
            runs
        }
        _ => vec![(0, layout.frames)],
    };
    let channels = usize::from(format.channels);
    let mut clips = Vec::with_capacity(stretches.len());
    for (from, to) in stretches {
        let len = ((to - from) as usize) * channels;
        let mut samples = Vec::new();
        samples
            .try_reserve_exact(len)
            .map_err(|_| AudioClipError::TooLong {
                frames: to - from,
                channels: format.channels,
            })?;
        samples.resize(len, 0);
        let mut uses = Vec::new();
        for segment in layout
            .segments
            .iter()
            .filter(|s| s.out_start >= from && s.out_start < to)
        {
            let Some(source) = opened.get_mut(segment.file) else {
                continue;
            };
            let out_first = ((segment.out_start - from) as usize) * channels;
            let out_len = (segment.len as usize) * channels;
            let Some(dest) = samples.get_mut(out_first..out_first + out_len) else {
                return Err(source.decode_error("internal: segment outside the clip".into()));
            };
            source.read_into(segment.file_first, dest)?;
            uses.push(SourceUse {
                file: source.name.to_string(),
                first: segment.file_first,
                end: segment.file_first + segment.len,
            });
        }
        let overlaps = layout
            .overlaps
            .iter()
            .filter(|(a, b)| *a < to && *b > from)
            .map(|&(a, b)| layout.span(format.rate, (a.max(from), b.min(to))))
            .collect();
        clips.push(AudioClip {
            samples,
            sample_rate: format.rate,
            bits_per_sample: format.bits,
            channels: format.channels,
            first_sample_s: layout.time_s(format.rate, from),
            sources: uses,
            gaps: gap_spans.clone(),
            overlaps,
        });
    }
    Ok(clips)
}
