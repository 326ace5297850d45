//! The clip stage: fetched source files + a clip window → clip files and their sidecar facts.
//!
//! Input: the stored files that cover a padded clip window (ONC spectrogram MAT files, or
//! archived FLAC/WAV audio), the window itself and the stage's gap policy. Output: the clip's
//! bytes in each requested format (NPZ/MAT/PNG for spectrograms, FLAC/WAV for audio) and what
//! the sidecar JSON reports: the source files and index ranges used, gaps, overlaps, the actual
//! first and last column or sample time. Everything here is synchronous and CPU-bound; the
//! executor runs it on blocking threads.
//!
//! - [`mat`]: MAT Level-5 reader and writer (structs, compression), ONC's `SpectData`/`Meta`.
//! - [`spectrogram`]: column selection across files, gaps, and the NPZ and PNG writers.
//! - [`audio`]: FLAC/WAV decoding up to the clip end, stitching, FLAC/WAV writing.

pub mod audio;
pub mod cut;
pub mod flac;
pub mod mat;
mod pcm;
pub mod spectrogram;

use serde::Serialize;

/// The part of one source file a clip used: indices `[first, end)` of its samples (audio) or
/// columns (spectrograms).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceUse {
    /// ONC's file name.
    pub file: String,
    pub first: u64,
    /// Exclusive.
    pub end: u64,
}

/// A stretch of clip time, in UTC seconds since 1970: where no source had data (a gap), or
/// where two sources overlapped (an overlap, trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Span {
    pub start_s: f64,
    pub end_s: f64,
}
