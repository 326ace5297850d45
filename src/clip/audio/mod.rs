//! Audio clips: archived source files (FLAC or WAV) + a clip window + a gap policy → the clip's
//! samples and sidecar facts ([`AudioClip`]), and the clip written as FLAC or WAV bytes.
//!
//! Input: [`AudioSource`]s (ONC file name — its start time, to the millisecond, is in the name —
//! and the path of the stored file), the window `[start, end)` in ns since 1970 UTC, and a
//! [`GapPolicy`](crate::plan::GapPolicy). A file's length comes from its own sample count, never
//! from "5 minutes".
//!
//! Timeline: output sample 0 is the sample nearest to the clip start on the grid of the first
//! file that overlaps the window (the one containing the clip start when there is one); every
//! other file is placed at its own start (from its name) rounded to the nearest sample of that
//! grid. The clip has `round((end − start) · rate)` samples (at least 1), whatever the files.
//! Where no file has data there is a gap (silence for `fill`); where a file starts before the
//! previous one ended, the later file's head is trimmed (an overlap, reported). Mismatches of at
//! most one millisecond — the precision of the names — join the files without gap or trim.
//!
//! Decoding stops at the clip end. FLAC is seeked (claxon cannot: `seek_flac` guesses a byte
//! offset, scans for a frame sync code and checks two consecutive frames by their CRCs and
//! positions) to a frame shortly before the first sample, then decoded block by block with the
//! blocks before the clip dropped uncopied; when the seek finds nothing trustworthy the file is
//! decoded from its first frame, as if there were no seek. WAV is seeked to the first sample.
//!
//! Output: one [`AudioClip`] (`fill`), one per contiguous stretch of data (`split`), or an error:
//! [`AudioClipError::SkippedForGap`] for `skip` (the caller reports the window as skipped, not
//! failed), [`AudioClipError::Gap`] for `fail`, and otherwise errors naming the file and what is
//! wrong with it (unreadable, corrupt, truncated, formats that cannot be stitched). No input
//! panics. [`write_flac`] / [`write_wav`] turn a clip into file bytes at the source's rate and
//! bit depth.
//!
//! The code, by responsibility:
//! - `decode.rs`: open a source (container from its first bytes, start from its name, format
//!   and length from its header) and decode samples from it: FLAC with claxon, WAV with hound.
//! - `seek.rs`: FLAC seeking, finding a verified frame shortly before the clip's first sample.
//! - `stitch.rs`: place the files on one sample grid (gaps, overlaps), apply the gap policy and
//!   fill the clip: [`clip_audio`].
//! - `write.rs`: the clip as FLAC or WAV bytes: [`write_flac`], [`write_wav`].
//! - `error.rs`: [`AudioClipError`] and the time formatting of its messages.
//! - `tests.rs`: the tests, against the simulator's archive files and oracle.

mod decode;
mod error;
mod seek;
mod stitch;
mod write;

pub use error::AudioClipError;
pub use stitch::clip_audio;
pub use write::{write_flac, write_wav};

// The submodules take these from here (`super::Span`), not as `crate::clip::…`, which
// tests/it/architecture.rs would read as the forbidden `crate::cli`.
use super::{SourceUse, Span};
use std::path::Path;

/// One stored source file of a clip.
#[derive(Debug, Clone, Copy)]
pub struct AudioSource<'a> {
    /// ONC's file name with the start time inside, e.g.
    /// `ICLISTENHF6324_20240401T042134.421Z.flac`.
    pub name: &'a str,
    /// Where the file is stored.
    pub path: &'a Path,
}

/// A clip's samples and what its sidecar reports.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioClip {
    /// Interleaved when `channels > 1`; silence (0) in gaps.
    pub samples: Vec<i32>,
    pub sample_rate: u32,
    pub bits_per_sample: u32,
    pub channels: u16,
    /// UTC time of `samples[0]`, seconds since 1970.
    pub first_sample_s: f64,
    /// The sample ranges of each source file used, in time order.
    pub sources: Vec<SourceUse>,
    /// Stretches of the window without data: filled with silence (`fill`); for `split`, every
    /// part lists the window's gaps (the reason it was split), none of which lies inside it.
    pub gaps: Vec<Span>,
    /// Stretches where two files overlapped; the later file's samples there were dropped.
    pub overlaps: Vec<Span>,
}

/// At most this many samples (all channels) in one clip: 4 GiB of `i32`s, about 9 hours of
/// 128 kHz mono. Beyond it we refuse instead of aborting on allocation.
const MAX_CLIP_SAMPLES: u64 = 1 << 30;
const NS_PER_S: i128 = 1_000_000_000;

#[cfg(test)]
mod tests;
