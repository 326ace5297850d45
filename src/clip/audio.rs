//! Audio clips: archived source files (FLAC or WAV) + a clip window + a gap policy → the clip's
//! samples and sidecar facts ([`AudioClip`]), and the clip written as FLAC or WAV bytes.
//!
//! Input: [`AudioSource`]s (ONC file name — its start time, to the millisecond, is in the name —
//! and the path of the stored file), the window `[start, end)` in ns since 1970 UTC, and a
//! [`GapPolicy`]. A file's length comes from its own sample count, never from "5 minutes".
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

use super::{SourceUse, Span};
use crate::plan::GapPolicy;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
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

/// What can go wrong; messages read after "failed to".
#[derive(Debug, thiserror::Error)]
pub enum AudioClipError {
    #[error("clip audio: the window {start_ns}..{end_ns} ns is empty or reversed")]
    EmptyWindow { start_ns: i64, end_ns: i64 },
    #[error("place {file}: its name has no start time of the form yyyyMMddTHHmmss.SSSZ")]
    NoStartTime { file: String },
    #[error("open {file}: {source}")]
    Open {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read {file}: {reason}")]
    Header { file: String, reason: String },
    #[error("decode {file}: {reason}")]
    Decode { file: String, reason: String },
    #[error(
        "stitch {first} ({first_format}) and {second} ({second_format}): sample rate, bit depth \
         or channel count differ"
    )]
    MixedFormats {
        first: String,
        first_format: String,
        second: String,
        second_format: String,
    },
    #[error("clip audio {from} – {to}: no source file has data in the window")]
    NoData { from: String, to: String },
    #[error("clip audio {from} – {to}: window skipped (gaps = \"skip\"): {}", describe_gaps(.gaps))]
    SkippedForGap {
        from: String,
        to: String,
        gaps: Vec<Span>,
    },
    #[error("clip audio {from} – {to} (gaps = \"fail\"): {}", describe_gaps(.gaps))]
    Gap {
        from: String,
        to: String,
        gaps: Vec<Span>,
    },
    #[error(
        "clip audio: {frames} samples × {channels} channels is more than one clip may hold ({MAX_CLIP_SAMPLES} samples)"
    )]
    TooLong { frames: u64, channels: u16 },
    #[error("encode FLAC: {reason}")]
    FlacEncode { reason: String },
    #[error("encode WAV: {reason}")]
    WavEncode { reason: String },
}

impl AudioClipError {
    /// True when the window was skipped on purpose (gap policy `skip`): report, don't fail.
    pub fn is_skip(&self) -> bool {
        matches!(self, AudioClipError::SkippedForGap { .. })
    }
}

/// At most this many samples (all channels) in one clip: 4 GiB of `i32`s, about 9 hours of
/// 128 kHz mono. Beyond it we refuse instead of aborting on allocation.
const MAX_CLIP_SAMPLES: u64 = 1 << 30;
const NS_PER_S: i128 = 1_000_000_000;

/// "gap from T to T (N s)" for the first gap, and how many more.
fn describe_gaps(gaps: &[Span]) -> String {
    let Some(first) = gaps.first() else {
        return "no gap".into();
    };
    let more = match gaps.len() {
        1 => String::new(),
        n => format!(" and {} more", n - 1),
    };
    format!(
        "no source data from {} to {} ({:.3} s){more}",
        iso(first.start_s),
        iso(first.end_s),
        first.end_s - first.start_s
    )
}

/// UTC seconds since 1970 → ISO 8601 with microseconds (for messages).
fn iso(seconds: f64) -> String {
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    match chrono::DateTime::from_timestamp(whole as i64, nanos) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{seconds} s"),
    }
}

fn iso_ns(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// `num / den` rounded to the nearest integer, halves up (`den > 0`).
fn div_round(num: i128, den: i128) -> i128 {
    (2 * num + den).div_euclid(2 * den)
}

/// Rate, bit depth and channel count: what must agree for files to be stitched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SampleFormat {
    rate: u32,
    bits: u32,
    channels: u16,
}

impl SampleFormat {
    fn describe(&self, container: &str) -> String {
        format!(
            "{container}, {} Hz, {}-bit, {} channel{}",
            self.rate,
            self.bits,
            self.channels,
            if self.channels == 1 { "" } else { "s" }
        )
    }
}

enum Decoder {
    /// claxon buffers its input itself; the BufReader only makes the small header reads cheap.
    /// `seek` is None when the file cannot be seeked (metadata not understood).
    Flac {
        reader: Box<claxon::FlacReader<BufReader<File>>>,
        seek: Option<FlacSeek>,
    },
    Wav {
        reader: hound::WavReader<BufReader<File>>,
        /// hound's `seek` assumes `bits / 8` bytes per sample; a file storing samples in wider
        /// containers (e.g. 24 bits in 4 bytes) is skipped through by reading instead.
        seekable: bool,
    },
}

/// A source file with its header read, ready to decode.
struct OpenSource<'a> {
    name: &'a str,
    start_ns: i128,
    format: SampleFormat,
    container: &'static str,
    /// Samples per channel.
    frames: u64,
    decoder: Decoder,
}

impl OpenSource<'_> {
    /// End of the file's data on its own clock, in ns (rounded up).
    fn end_ns(&self) -> i128 {
        let rate = i128::from(self.format.rate.max(1));
        self.start_ns + (i128::from(self.frames) * NS_PER_S + rate - 1) / rate
    }

    fn decode_error(&self, reason: String) -> AudioClipError {
        AudioClipError::Decode {
            file: self.name.to_string(),
            reason,
        }
    }

    /// Decode samples `[first, first + dest.len() / channels)` into `dest` (interleaved).
    fn read_into(&mut self, first: u64, dest: &mut [i32]) -> Result<(), AudioClipError> {
        let channels = usize::from(self.format.channels);
        let count = (dest.len() / channels.max(1)) as u64;
        let want_end = first + count;
        let name = self.name;
        let err = |reason: String| AudioClipError::Decode {
            file: name.to_string(),
            reason,
        };
        match &mut self.decoder {
            Decoder::Flac { reader, seek } => {
                let sought = match seek {
                    Some(seek) if !seek_disabled() => seek_flac(seek, first),
                    _ => None,
                };
                match sought {
                    Some((mut blocks, pos)) => {
                        decode_flac(&mut blocks, pos, first, dest, self.format.channels, &err)
                    }
                    None => {
                        let mut blocks = reader.blocks();
                        decode_flac(&mut blocks, 0, first, dest, self.format.channels, &err)
                    }
                }
            }
            Decoder::Wav { reader, seekable } => {
                let mut skip = first * channels as u64;
                if *seekable && first > 0 {
                    let frame = u32::try_from(first)
                        .map_err(|_| err(format!("sample {first} is beyond WAV's range")))?;
                    reader
                        .seek(frame)
                        .map_err(|e| err(format!("seek to sample {first}: {e}")))?;
                    skip = 0;
                }
                let mut samples = reader.samples::<i32>();
                for index in 0..skip {
                    match samples.next() {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            return Err(err(format!("sample {}: {e}", index / channels as u64)));
                        }
                        None => return Err(err(format!("the file ends before sample {first}"))),
                    }
                }
                for (index, slot) in dest.iter_mut().enumerate() {
                    let at = first + (index / channels) as u64;
                    match samples.next() {
                        Some(Ok(value)) => *slot = value,
                        Some(Err(e)) => return Err(err(format!("sample {at}: {e}"))),
                        None => {
                            return Err(err(format!(
                                "the file ends at sample {at}, before sample {want_end} that the \
                                 clip needs"
                            )));
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

/// Decode FLAC blocks from `blocks`, whose next frame starts at sample `pos`, copying samples
/// `[first, first + dest.len() / channels)` into `dest` (interleaved); stops after the clip end.
fn decode_flac<R: claxon::input::ReadBytes>(
    blocks: &mut claxon::frame::FrameReader<R>,
    mut pos: u64,
    first: u64,
    dest: &mut [i32],
    channels: u16,
    err: &dyn Fn(String) -> AudioClipError,
) -> Result<(), AudioClipError> {
    let width = usize::from(channels);
    let want_end = first + (dest.len() / width.max(1)) as u64;
    let mut buffer = Vec::new();
    // Samples per channel decoded before the current block are counted here rather than taken
    // from the frame headers: claxon derives a fixed-size stream's positions from the frame
    // number times the *current* block's size, wrong for the last one.
    while pos < want_end {
        let block = match blocks.read_next_or_eof(buffer) {
            Ok(Some(block)) => block,
            Ok(None) => {
                return Err(err(format!(
                    "the file ends at sample {pos}, before sample {want_end} that the clip needs"
                )));
            }
            Err(e) => return Err(err(format!("frame at sample {pos}: {e}"))),
        };
        if block.channels() != u32::from(channels) {
            return Err(err(format!(
                "frame at sample {pos} has {} channels, the header says {channels}",
                block.channels(),
            )));
        }
        let block_end = pos + u64::from(block.duration());
        if block_end > first {
            // The part of this block the clip needs (blocks before it are dropped without
            // copying anything).
            let from = first.max(pos);
            let to = want_end.min(block_end);
            let in_block = (from - pos) as usize..(to - pos) as usize;
            let out_first = ((from - first) as usize) * width;
            for ch in 0..width {
                let src = block.channel(ch as u32).get(in_block.clone());
                let Some(src) = src else {
                    return Err(err(format!("frame at sample {pos} is too short")));
                };
                let out = dest.iter_mut().skip(out_first + ch).step_by(width);
                for (slot, value) in out.zip(src) {
                    *slot = *value;
                }
            }
        }
        pos = block_end;
        buffer = block.into_buffer();
    }
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Test switch: decode every FLAC from its first frame.
    static NO_SEEK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn seek_disabled() -> bool {
    NO_SEEK.with(|c| c.get())
}

#[cfg(not(test))]
fn seek_disabled() -> bool {
    false
}

/// What seeking in a FLAC file needs, from its STREAMINFO and its metadata block headers.
#[derive(Debug, Clone)]
struct FlacSeek {
    path: std::path::PathBuf,
    /// Byte offset of the first audio frame (after the last metadata block).
    frames_start: u64,
    file_len: u64,
    /// Samples per channel.
    total: u64,
    max_block: u64,
    channels: u32,
    /// Upper bound on one frame's size in bytes.
    frame_bound: u64,
}

/// Seek information, or None when the file's layout is not understood (then no seeking).
fn flac_seek_info(
    path: &Path,
    info: &claxon::metadata::StreamInfo,
    total: u64,
) -> Option<FlacSeek> {
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic).ok()?;
    if &magic != b"fLaC" {
        return None;
    }
    let mut offset = 4u64;
    // Metadata block headers: last-block flag and type, then a 24-bit length.
    loop {
        let mut header = [0u8; 4];
        file.read_exact(&mut header).ok()?;
        let [flags, l0, l1, l2] = header;
        let len = u64::from(u32::from_be_bytes([0, l0, l1, l2]));
        offset = offset.checked_add(4 + len)?;
        if offset > file_len {
            return None;
        }
        if flags & 0x80 != 0 {
            break;
        }
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset)).ok()?;
    }
    let max_block = u64::from(info.max_block_size);
    let channels = info.channels;
    if max_block == 0 || !(1..=8).contains(&channels) || !(1..=32).contains(&info.bits_per_sample) {
        return None;
    }
    // Verbatim subframes (a side channel has one bit more), plus frame and subframe headers.
    let computed = max_block * u64::from(channels) * u64::from(info.bits_per_sample / 8 + 1) + 64;
    let frame_bound = computed.max(u64::from(info.max_frame_size.unwrap_or(0)));
    Some(FlacSeek {
        path: path.to_path_buf(),
        frames_start: offset,
        file_len,
        total,
        max_block,
        channels,
        frame_bound,
    })
}

/// At most this many guesses per seek.
const SEEK_ATTEMPTS: u32 = 32;

/// A frame reader positioned at a frame starting at or before sample `target`, with that
/// frame's first sample; None when seeking would not save work or nothing trustworthy was found
/// (the caller then decodes from the first frame). The file is untrusted: every frame taken is
/// checked by claxon (header CRC-8, frame CRC-16) and followed by a second frame that must start
/// where the first one ends.
fn seek_flac(
    seek: &FlacSeek,
    target: u64,
) -> Option<(
    claxon::frame::FrameReader<claxon::input::BufferedReader<File>>,
    u64,
)> {
    if target <= 2 * seek.max_block || seek.total == 0 || seek.file_len <= seek.frames_start {
        return None;
    }
    let mut file = File::open(&seek.path).ok()?;
    // Known points (byte offset, first sample of the next frame at or after it).
    let mut lo = (seek.frames_start, 0u64);
    let mut hi = (seek.file_len, seek.total.max(target));
    // The best frame found so far: byte offset and first sample.
    let mut best: Option<(u64, u64)> = None;
    let good_enough = 8 * seek.max_block;
    let margin = 2 * seek.frame_bound;
    for _ in 0..SEEK_ATTEMPTS {
        if let Some((_, pos)) = best
            && target - pos <= good_enough
        {
            break;
        }
        if hi.0 <= lo.0 + seek.frame_bound || hi.1 <= lo.1 {
            break;
        }
        // Interpolate between the known points, back off by the margin.
        let span = u128::from(hi.0 - lo.0);
        let frac = u128::from(target.saturating_sub(lo.1).min(hi.1 - lo.1));
        let guess = lo.0 + (span * frac / u128::from(hi.1 - lo.1)) as u64;
        let guess = guess.saturating_sub(margin).max(lo.0 + 1);
        if guess >= hi.0 {
            break;
        }
        match find_frame(&mut file, seek, guess) {
            Some((at, pos)) if pos <= target => {
                if best.is_none_or(|(_, b)| pos > b) {
                    best = Some((at, pos));
                }
                if at <= lo.0 {
                    break;
                }
                lo = (at, pos);
            }
            // After the target, or nothing found there: look earlier.
            Some((_, pos)) => hi = (guess, pos),
            None => hi = (guess, hi.1),
        }
    }
    let (at, pos) = best?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(at)).ok()?;
    let reader = claxon::frame::FrameReader::new(claxon::input::BufferedReader::new(file));
    Some((reader, pos))
}

/// The first checked frame starting in `[from, from + 2 × frame bound)`: its byte offset and
/// first sample.
fn find_frame(file: &mut File, seek: &FlacSeek, from: u64) -> Option<(u64, u64)> {
    let scan = 2 * seek.frame_bound;
    let want = (scan + 2 * seek.frame_bound).min(seek.file_len.saturating_sub(from));
    std::io::Seek::seek(file, std::io::SeekFrom::Start(from)).ok()?;
    let mut chunk = Vec::new();
    file.take(want).read_to_end(&mut chunk).ok()?;
    let scan = usize::try_from(scan).ok()?.min(chunk.len());
    let mut i = 0;
    while i < scan {
        let found = chunk
            .get(i..scan)
            .and_then(|rest| rest.iter().position(|&b| b == 0xFF))?;
        i += found;
        if let (Some(&(0xF8 | 0xF9)), Some(rest)) = (chunk.get(i + 1), chunk.get(i..))
            && let Some(pos) = check_frames(rest, seek)
        {
            return Some((from + i as u64, pos));
        }
        i += 1;
    }
    None
}

/// When `bytes` start with a frame claxon decodes, with the stream's channel count, followed by
/// a second one starting where the first ends (or the first ends the stream): the first
/// frame's first sample.
fn check_frames(bytes: &[u8], seek: &FlacSeek) -> Option<u64> {
    let mut reader = claxon::frame::FrameReader::new(std::io::Cursor::new(bytes));
    let first = reader.read_next_or_eof(Vec::new()).ok()??;
    let pos = frame_position(bytes, &first, seek)?;
    let end = pos.checked_add(u64::from(first.duration()))?;
    if end > seek.total {
        return None;
    }
    if end == seek.total {
        return Some(pos);
    }
    // The second frame starts right after the first in `bytes`.
    let consumed = usize::try_from(reader.into_inner().position()).ok()?;
    let rest = bytes.get(consumed..)?;
    let mut reader = claxon::frame::FrameReader::new(std::io::Cursor::new(rest));
    let second = reader.read_next_or_eof(first.into_buffer()).ok()??;
    (frame_position(rest, &second, seek)? == end).then_some(pos)
}

/// First sample of a decoded frame whose header starts `bytes`: for a fixed-blocksize frame
/// (its header says so) the frame number × the stream's block size, which must be this frame's
/// size unless it ends the stream; for a variable-blocksize frame the sample number.
fn frame_position(bytes: &[u8], block: &claxon::Block, seek: &FlacSeek) -> Option<u64> {
    if block.channels() != seek.channels || block.duration() == 0 {
        return None;
    }
    let duration = u64::from(block.duration());
    if bytes.get(1)? & 1 == 0 {
        // claxon's time is the frame number × this frame's size.
        let number = block.time() / duration;
        let pos = number.checked_mul(seek.max_block)?;
        let full = duration == seek.max_block;
        let last = pos.checked_add(duration)? == seek.total;
        (full || last).then_some(pos)
    } else {
        Some(block.time())
    }
}

/// Open a source: container from its first bytes, start from its name, format and length from
/// its header.
fn open_source<'a>(source: &AudioSource<'a>) -> Result<OpenSource<'a>, AudioClipError> {
    let file = source.name.to_string();
    let start_ms = match onc_format::stamp::times_in_name(source.name) {
        (Some(start), _) => start,
        (None, _) => return Err(AudioClipError::NoStartTime { file }),
    };
    let header = |reason: String| AudioClipError::Header {
        file: source.name.to_string(),
        reason,
    };
    let open = || {
        File::open(source.path)
            .map(BufReader::new)
            .map_err(|e| AudioClipError::Open {
                file: source.name.to_string(),
                source: e,
            })
    };
    let mut reader = open()?;
    let magic: [u8; 4] = match reader.fill_buf() {
        Ok(bytes) => match bytes.get(..4) {
            Some(&[a, b, c, d]) => [a, b, c, d],
            _ => [0; 4],
        },
        Err(e) => return Err(header(format!("{e}"))),
    };
    let (format, container, frames, decoder) = match &magic {
        b"fLaC" => {
            let flac = claxon::FlacReader::new(reader)
                .map_err(|e| header(format!("not a readable FLAC file: {e}")))?;
            let info = flac.streaminfo();
            let channels = u16::try_from(info.channels).unwrap_or(u16::MAX);
            let format = SampleFormat {
                rate: info.sample_rate,
                bits: info.bits_per_sample,
                channels,
            };
            let frames = match info.samples {
                Some(n) if n > 0 => n,
                // STREAMINFO may leave the length unknown (0): count by decoding once.
                _ => count_flac_frames(open()?).map_err(&header)?,
            };
            let seek = flac_seek_info(source.path, &info, frames);
            let decoder = Decoder::Flac {
                reader: Box::new(flac),
                seek,
            };
            (format, "FLAC", frames, decoder)
        }
        b"RIFF" => {
            let block_align = wav_block_align(open()?);
            let wav = hound::WavReader::new(reader)
                .map_err(|e| header(format!("not a readable WAV file: {e}")))?;
            let spec = wav.spec();
            if spec.sample_format != hound::SampleFormat::Int {
                return Err(header(
                    "floating-point WAV is not supported (ONC audio is integer PCM)".into(),
                ));
            }
            let format = SampleFormat {
                rate: spec.sample_rate,
                bits: u32::from(spec.bits_per_sample),
                channels: spec.channels,
            };
            let seekable = block_align
                == Some(spec.channels.saturating_mul(spec.bits_per_sample / 8))
                && spec.bits_per_sample.is_multiple_of(8);
            let frames = u64::from(wav.duration());
            (
                format,
                "WAV",
                frames,
                Decoder::Wav {
                    reader: wav,
                    seekable,
                },
            )
        }
        _ => {
            return Err(header(
                "not a FLAC or WAV file (it starts with neither fLaC nor RIFF)".into(),
            ));
        }
    };
    if format.rate == 0 {
        return Err(header("the header says the sample rate is 0 Hz".into()));
    }
    if format.channels == 0 || format.channels > 8 {
        return Err(header(format!(
            "{} channels is not a valid channel count",
            format.channels
        )));
    }
    if !(1..=32).contains(&format.bits) {
        return Err(header(format!(
            "{} bits per sample is not a valid bit depth",
            format.bits
        )));
    }
    Ok(OpenSource {
        name: source.name,
        start_ns: i128::from(start_ms) * 1_000_000,
        format,
        container,
        frames,
        decoder,
    })
}

/// Samples per channel of a FLAC whose STREAMINFO does not say, by decoding it.
fn count_flac_frames(reader: BufReader<File>) -> Result<u64, String> {
    let mut flac =
        claxon::FlacReader::new(reader).map_err(|e| format!("not a readable FLAC file: {e}"))?;
    let mut blocks = flac.blocks();
    let mut frames = 0u64;
    let mut buffer = Vec::new();
    loop {
        match blocks.read_next_or_eof(buffer) {
            Ok(Some(block)) => {
                frames += u64::from(block.duration());
                buffer = block.into_buffer();
            }
            Ok(None) => return Ok(frames),
            Err(e) => return Err(format!("frame at sample {frames}: {e}")),
        }
    }
}

/// The `fmt ` chunk's block align (bytes per sample frame), or None when it cannot be found.
/// hound keeps this private; we need it to know whether hound's `seek` is exact.
fn wav_block_align(mut reader: BufReader<File>) -> Option<u16> {
    let mut riff = [0u8; 12];
    reader.read_exact(&mut riff).ok()?;
    if riff.get(..4) != Some(b"RIFF") || riff.get(8..) != Some(b"WAVE") {
        return None;
    }
    // fmt comes first in practice; allow a few chunks before it.
    for _ in 0..16 {
        let mut chunk = [0u8; 8];
        reader.read_exact(&mut chunk).ok()?;
        let [a, b, c, d, l0, l1, l2, l3] = chunk;
        let len = u32::from_le_bytes([l0, l1, l2, l3]);
        if &[a, b, c, d] == b"fmt " {
            let mut fmt = [0u8; 14];
            reader.read_exact(&mut fmt).ok()?;
            let [.., lo, hi] = fmt;
            return Some(u16::from_le_bytes([lo, hi]));
        }
        // Chunks are padded to an even length.
        reader
            .seek_relative(i64::from(len) + i64::from(len & 1))
            .ok()?;
    }
    None
}

/// One file's placement, as the pure layout step sees it.
#[derive(Debug, Clone, Copy)]
struct Placed {
    start_ns: i128,
    frames: u64,
}

/// Samples `[file_first, file_first + len)` of file `file` go to output `[out_start, +len)`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Segment {
    file: usize,
    out_start: u64,
    file_first: u64,
    len: u64,
}

/// Where each file's samples go in the clip. Positions are output sample indices.
#[derive(Debug, Clone, PartialEq)]
struct Layout {
    /// Output length (per channel).
    frames: u64,
    /// Output sample 0 sits `k0` samples after the reference file's start (may be negative).
    k0: i128,
    /// Start of the reference file (the first one, in time order).
    ref_start_ns: i128,
    segments: Vec<Segment>,
    gaps: Vec<(u64, u64)>,
    overlaps: Vec<(u64, u64)>,
}

impl Layout {
    /// UTC seconds of output sample `index` (fractional: no rounding to ns).
    fn time_s(&self, rate: u32, index: u64) -> f64 {
        let rate = i128::from(rate);
        // Time in ns × rate, exactly; then split into whole ns and a fraction.
        let scaled = self.ref_start_ns * rate + (self.k0 + i128::from(index)) * NS_PER_S;
        let whole_ns = scaled.div_euclid(rate);
        let frac_ns = scaled.rem_euclid(rate) as f64 / rate as f64;
        let secs = whole_ns.div_euclid(NS_PER_S) as f64;
        secs + (whole_ns.rem_euclid(NS_PER_S) as f64 + frac_ns) / 1e9
    }

    fn span(&self, rate: u32, (a, b): (u64, u64)) -> Span {
        Span {
            start_s: self.time_s(rate, a),
            end_s: self.time_s(rate, b),
        }
    }
}

/// The pure placement step. `files` are in time order, all overlapping the window, all at
/// `rate`; `files[0]` is the reference (it holds the clip start, or is the first file after it).
fn layout(files: &[Placed], rate: u32, clip_start_ns: i64, clip_end_ns: i64) -> Option<Layout> {
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

/// Check that every sample fits `bits` signed bits (a corrupt frame can carry wider values);
/// both writers refuse what does not, rather than write it wrapped.
pub(crate) fn check_sample_range(samples: &[i32], bits: u32) -> Result<(), String> {
    if !(1..=32).contains(&bits) {
        return Err(format!("{bits} bits per sample"));
    }
    let max = (1i64 << (bits - 1)) - 1;
    let min = -(1i64 << (bits - 1));
    match samples
        .iter()
        .position(|&s| !(min..=max).contains(&i64::from(s)))
    {
        Some(i) => Err(format!(
            "sample {i} ({}) does not fit in {bits} bits",
            samples.get(i).copied().unwrap_or_default(),
        )),
        None => Ok(()),
    }
}

/// The clip as FLAC bytes at its own rate and bit depth (see [`super::flac`]: block size 4096,
/// fixed predictors, MD5 in STREAMINFO).
///
/// 8, 12, 16, 20 or 24 bits and up to 655,350 Hz: other clips get an error saying to use WAV.
pub fn write_flac(clip: &AudioClip) -> Result<Vec<u8>, AudioClipError> {
    super::flac::encode(
        &clip.samples,
        clip.channels,
        clip.bits_per_sample,
        clip.sample_rate,
    )
    .map_err(|what| AudioClipError::FlacEncode {
        reason: format!("{what}; use audio = \"wav\" for this device"),
    })
}

/// The clip as integer PCM WAV bytes at its own rate and bit depth (24-bit for ONC).
pub fn write_wav(clip: &AudioClip) -> Result<Vec<u8>, AudioClipError> {
    let encode = |reason: String| AudioClipError::WavEncode { reason };
    check_sample_range(&clip.samples, clip.bits_per_sample).map_err(encode)?;
    let bits = u16::try_from(clip.bits_per_sample.div_ceil(8) * 8)
        .map_err(|_| encode(format!("{} bits per sample", clip.bits_per_sample)))?;
    if clip.channels == 0 || clip.sample_rate == 0 {
        return Err(encode(format!(
            "{} channels at {} Hz",
            clip.channels, clip.sample_rate
        )));
    }
    // RIFF sizes are u32: the data must stay below 4 GiB (with room for the header).
    let data_bytes = (clip.samples.len() as u64).saturating_mul(u64::from(bits / 8));
    if data_bytes > u64::from(u32::MAX) - 1024 {
        return Err(encode(format!(
            "{data_bytes} bytes of samples exceed WAV's 4 GiB limit"
        )));
    }
    let spec = hound::WavSpec {
        channels: clip.channels,
        sample_rate: clip.sample_rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut writer =
            hound::WavWriter::new(&mut out, spec).map_err(|e| encode(format!("{e}")))?;
        for &sample in &clip.samples {
            writer
                .write_sample(sample)
                .map_err(|e| encode(format!("{e}")))?;
        }
        writer.finalize().map_err(|e| encode(format!("{e}")))?;
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onc_sim::archive::{
        ARCHIVE_END_MS, ARCHIVE_START_MS, ArchiveFile, DeviceProfile, files_overlapping,
    };
    use onc_sim::flac::{flac_bytes, wav_bytes};
    use onc_sim::oracle::AudioOracle;
    use proptest::prelude::*;
    use std::path::PathBuf;

    const DEVICE: &str = "ICLISTENHF6324";
    const RATE: u32 = 8000;
    /// 2024-04-01T00:00:00Z
    const T2024: i64 = 1_711_929_600_000;
    const DAY: i64 = 86_400_000;
    const MS: i64 = 1_000_000;

    fn profile(rate: u32) -> DeviceProfile {
        DeviceProfile {
            code: DEVICE.into(),
            sample_rate: rate,
        }
    }

    /// Archive files written to a temporary directory as `ext` (flac or wav).
    struct Staged {
        _dir: tempfile::TempDir,
        files: Vec<(String, PathBuf)>,
    }

    impl Staged {
        fn sources(&self) -> Vec<AudioSource<'_>> {
            self.files
                .iter()
                .map(|(name, path)| AudioSource { name, path })
                .collect()
        }
    }

    fn stage(files: &[ArchiveFile], ext: &str) -> Staged {
        let dir = tempfile::tempdir().unwrap();
        let files = files
            .iter()
            .map(|f| {
                let name = f.filename(ext);
                let bytes = match ext {
                    "flac" => flac_bytes(f).unwrap(),
                    _ => wav_bytes(f),
                };
                let path = dir.path().join(&name);
                std::fs::write(&path, bytes).unwrap();
                (name, path)
            })
            .collect();
        Staged { _dir: dir, files }
    }

    fn clip(staged: &Staged, from_ns: i64, to_ns: i64, policy: GapPolicy) -> Vec<AudioClip> {
        clip_audio(&staged.sources(), from_ns, to_ns, policy).unwrap()
    }

    /// Consecutive archive files over a day from 2024-04-01.
    fn day_files() -> Vec<ArchiveFile> {
        files_overlapping(&profile(RATE), T2024, T2024 + DAY)
    }

    /// Every sample equals the oracle at its time, or is silence inside a reported gap. At 8 kHz
    /// every sample time is a whole multiple of 125 µs, so the f64 start rounds back exactly.
    fn assert_oracle(clip: &AudioClip) {
        let period_ns = 1_000_000_000 / i128::from(RATE);
        let t0 = (clip.first_sample_s * f64::from(RATE)).round() as i128 * period_ns;
        let oracle = AudioOracle::new(DEVICE);
        for (j, &sample) in clip.samples.iter().enumerate() {
            let t = t0 + j as i128 * period_ns;
            let t_s = t as f64 / 1e9;
            let in_gap = clip
                .gaps
                .iter()
                .any(|g| t_s >= g.start_s - 1e-7 && t_s < g.end_s - 1e-7);
            let expected = if in_gap { 0 } else { oracle.sample(t) };
            assert_eq!(sample, expected, "sample {j} at {t} ns (in gap: {in_gap})");
        }
    }

    fn assert_starts_at(clip: &AudioClip, start_ns: i64) {
        let delta = clip.first_sample_s - start_ns as f64 / 1e9;
        assert!(
            delta.abs() <= 0.5 / f64::from(RATE) + 1e-7,
            "first sample {delta} s off"
        );
    }

    #[test]
    fn clip_inside_one_file_flac_and_wav() {
        let file = day_files().into_iter().nth(10).unwrap();
        let from = (file.start_ms + 10_300) * MS;
        let to = from + 3_000 * MS;
        for ext in ["flac", "wav"] {
            let staged = stage(std::slice::from_ref(&file), ext);
            let clips = clip(&staged, from, to, GapPolicy::Fill);
            let [c] = clips.as_slice() else {
                panic!("{clips:?}")
            };
            assert_eq!(c.samples.len(), 24_000);
            assert_eq!(
                (c.sample_rate, c.bits_per_sample, c.channels),
                (8000, 24, 1)
            );
            assert_starts_at(c, from);
            assert_eq!(
                c.sources,
                vec![SourceUse {
                    file: file.filename(ext),
                    first: 82_400,
                    end: 106_400
                }]
            );
            assert!(c.gaps.is_empty() && c.overlaps.is_empty());
            assert_oracle(c);
        }
    }

    #[test]
    fn clip_start_between_samples_rounds_to_nearest() {
        let file = day_files().into_iter().nth(3).unwrap();
        let staged = stage(std::slice::from_ref(&file), "wav");
        // 40 µs after sample 800 → sample 800; 70 µs after → sample 801 (period 125 µs).
        for (offset_ns, first) in [(40_000, 800), (70_000, 801), (62_500, 801)] {
            let from = (file.start_ms + 100) * MS + offset_ns;
            let c = clip(&staged, from, from + 10 * MS, GapPolicy::Fill).remove(0);
            assert_eq!(c.sources[0].first, first, "offset {offset_ns}");
            assert_eq!(c.samples.len(), 80);
            assert_oracle(&c);
        }
    }

    /// Two consecutive files where the first ends exactly where the second starts.
    fn contiguous_pair() -> (ArchiveFile, ArchiveFile) {
        let files = day_files();
        files
            .windows(2)
            .find_map(|w| match w {
                [a, b] if a.end_ms() == b.start_ms => Some((a.clone(), b.clone())),
                _ => None,
            })
            .unwrap()
    }

    #[test]
    fn clip_across_a_boundary_mixing_flac_and_wav() {
        let (a, b) = contiguous_pair();
        let dir = tempfile::tempdir().unwrap();
        let (name_a, name_b) = (a.filename("flac"), b.filename("wav"));
        let (path_a, path_b) = (dir.path().join(&name_a), dir.path().join(&name_b));
        std::fs::write(&path_a, flac_bytes(&a).unwrap()).unwrap();
        std::fs::write(&path_b, wav_bytes(&b)).unwrap();
        let from = (b.start_ms - 1_500) * MS;
        let to = (b.start_ms + 1_500) * MS;
        // Given in reverse order: time order comes from the names.
        let sources = [
            AudioSource {
                name: &name_b,
                path: &path_b,
            },
            AudioSource {
                name: &name_a,
                path: &path_a,
            },
        ];
        let clips = clip_audio(&sources, from, to, GapPolicy::Fail).unwrap();
        let [c] = clips.as_slice() else { panic!() };
        assert_eq!(c.samples.len(), 24_000);
        assert_eq!(
            c.sources,
            vec![
                SourceUse {
                    file: name_a,
                    first: a.samples - 12_000,
                    end: a.samples
                },
                SourceUse {
                    file: name_b,
                    first: 0,
                    end: 12_000
                },
            ]
        );
        assert!(c.gaps.is_empty() && c.overlaps.is_empty());
        assert_oracle(c);
    }

    /// (file before a gap, file after it) for the first gap longer than `min_ms` in the day.
    fn gap_pair(pred: impl Fn(&ArchiveFile, &ArchiveFile) -> bool) -> (ArchiveFile, ArchiveFile) {
        let mut t = T2024;
        loop {
            let files = files_overlapping(&profile(RATE), t, t + DAY);
            if let Some(pair) = files.windows(2).find_map(|w| match w {
                [a, b] if pred(a, b) => Some((a.clone(), b.clone())),
                _ => None,
            }) {
                return pair;
            }
            t += DAY;
        }
    }

    #[test]
    fn missing_file_is_a_gap_under_every_policy() {
        let (a, b) = gap_pair(|a, b| b.start_ms - a.start_ms > 310_000);
        let staged = stage(&[a.clone(), b.clone()], "flac");
        let from = (a.end_ms() - 1_000) * MS;
        let to = (b.start_ms + 1_000) * MS;
        let gap_ms = b.start_ms - a.end_ms();
        assert!(gap_ms > 250_000, "{gap_ms}");

        let clips = clip(&staged, from, to, GapPolicy::Fill);
        let [c] = clips.as_slice() else { panic!() };
        assert_eq!(c.samples.len() as i64, (to - from) / MS * 8);
        let [gap] = c.gaps.as_slice() else {
            panic!("{:?}", c.gaps)
        };
        assert!((gap.start_s - a.end_ms() as f64 / 1e3).abs() < 1e-6);
        assert!((gap.end_s - b.start_ms as f64 / 1e3).abs() < 1e-6);
        let silence = c.samples.get(8_000..8_000 + (gap_ms * 8) as usize).unwrap();
        assert!(silence.iter().all(|&s| s == 0));
        assert_eq!(c.sources.len(), 2);
        assert_oracle(c);

        let parts = clip(&staged, from, to, GapPolicy::Split);
        let [p1, p2] = parts.as_slice() else {
            panic!("{parts:?}")
        };
        assert_eq!((p1.samples.len(), p2.samples.len()), (8_000, 8_000));
        assert_starts_at(p1, from);
        assert_starts_at(p2, b.start_ms * MS);
        assert_eq!(p1.sources[0].file, a.filename("flac"));
        assert_eq!(p2.sources[0].file, b.filename("flac"));
        assert_eq!(p1.gaps, c.gaps);
        assert_oracle(p1);
        assert_oracle(p2);

        let skipped = clip_audio(&staged.sources(), from, to, GapPolicy::Skip).unwrap_err();
        assert!(skipped.is_skip(), "{skipped}");
        let failed = clip_audio(&staged.sources(), from, to, GapPolicy::Fail).unwrap_err();
        assert!(!failed.is_skip());
        assert!(matches!(failed, AudioClipError::Gap { .. }));
        let message = failed.to_string();
        assert!(message.contains("no source data from"), "{message}");
        assert!(message.contains(&iso(a.end_ms() as f64 / 1e3)), "{message}");
    }

    #[test]
    fn short_file_leaves_a_gap() {
        let (a, b) = gap_pair(|a, _| a.duration_ms() == 294_500);
        let staged = stage(&[a.clone(), b.clone()], "wav");
        let from = (a.end_ms() - 2_000) * MS;
        let to = (b.start_ms + 2_000) * MS;
        let c = clip(&staged, from, to, GapPolicy::Fill).remove(0);
        let [gap] = c.gaps.as_slice() else {
            panic!("{:?}", c.gaps)
        };
        let gap_samples = ((gap.end_s - gap.start_s) * 8000.0).round() as i64;
        assert_eq!(gap_samples, (b.start_ms - a.end_ms()) * 8);
        assert_eq!(c.sources[0].end, a.samples);
        assert_eq!(a.samples, 294_500 * 8);
        assert_oracle(&c);
    }

    #[test]
    fn archive_start_and_end_are_gaps() {
        let first = files_overlapping(&profile(RATE), ARCHIVE_START_MS, ARCHIVE_START_MS + 600_000)
            .remove(0);
        let staged = stage(std::slice::from_ref(&first), "flac");
        let from = (first.start_ms - 2_000) * MS;
        let c = clip(&staged, from, from + 4_000 * MS, GapPolicy::Fill).remove(0);
        assert_eq!(c.samples.len(), 32_000);
        assert_starts_at(&c, from);
        assert_eq!(c.gaps.len(), 1);
        assert!(c.samples.get(..16_000).unwrap().iter().all(|&s| s == 0));
        assert_eq!(c.sources[0].first, 0);
        assert_oracle(&c);

        let last = files_overlapping(&profile(RATE), ARCHIVE_END_MS - 600_000, ARCHIVE_END_MS)
            .pop()
            .unwrap();
        let staged = stage(std::slice::from_ref(&last), "wav");
        let from = (last.end_ms() - 2_000) * MS;
        let c = clip(&staged, from, from + 4_000 * MS, GapPolicy::Fill).remove(0);
        assert_eq!(c.samples.len(), 32_000);
        assert_eq!(c.sources[0].end, last.samples);
        assert!(c.samples.get(16_000..).unwrap().iter().all(|&s| s == 0));
        assert_oracle(&c);
        // Entirely after the archive: no data at all.
        let after = clip_audio(
            &staged.sources(),
            (ARCHIVE_END_MS + 1_000) * MS,
            (ARCHIVE_END_MS + 2_000) * MS,
            GapPolicy::Fill,
        )
        .unwrap_err();
        assert!(matches!(after, AudioClipError::NoData { .. }), "{after}");
    }

    #[test]
    fn overlapping_files_trim_the_later_head() {
        let a = day_files().remove(5);
        // A second file starting 0.5 s before `a` ends (samples from the same oracle clock).
        let b = ArchiveFile {
            start_ms: a.end_ms() - 500,
            samples: 5 * 8000,
            ..a.clone()
        };
        let staged = stage(&[a.clone(), b.clone()], "flac");
        let from = (a.end_ms() - 1_000) * MS;
        let to = (a.end_ms() + 1_000) * MS;
        let c = clip(&staged, from, to, GapPolicy::Fail).remove(0);
        assert_eq!(c.sources[1].first, 4_000);
        let [overlap] = c.overlaps.as_slice() else {
            panic!()
        };
        assert!((overlap.end_s - overlap.start_s - 0.5).abs() < 1e-6);
        assert!(c.gaps.is_empty());
        assert_oracle(&c);
    }

    #[test]
    fn mixed_sample_rates_are_refused() {
        let (a, b) = contiguous_pair();
        let b16 = ArchiveFile {
            sample_rate: 16_000,
            samples: b.samples * 2,
            ..b
        };
        let staged = stage(&[a.clone(), b16.clone()], "flac");
        let err = clip_audio(
            &staged.sources(),
            (b16.start_ms - 1_000) * MS,
            (b16.start_ms + 1_000) * MS,
            GapPolicy::Fill,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, AudioClipError::MixedFormats { .. }));
        assert!(message.contains(&a.filename("flac")), "{message}");
        assert!(message.contains(&b16.filename("flac")), "{message}");
        assert!(
            message.contains("16000 Hz") && message.contains("8000 Hz"),
            "{message}"
        );
    }

    fn small_clip() -> (AudioClip, ArchiveFile) {
        let file = day_files().remove(1);
        let staged = stage(std::slice::from_ref(&file), "flac");
        let from = (file.start_ms + 1_000) * MS;
        // 2.3 s: several full FLAC blocks and a short last one.
        (
            clip(&staged, from, from + 2_300 * MS, GapPolicy::Fill).remove(0),
            file,
        )
    }

    #[test]
    fn flac_round_trip() {
        let (c, _) = small_clip();
        let bytes = write_flac(&c).unwrap();
        let mut reader = claxon::FlacReader::new(std::io::Cursor::new(&bytes)).unwrap();
        let info = reader.streaminfo();
        assert_eq!(
            (info.sample_rate, info.bits_per_sample, info.channels),
            (8000, 24, 1)
        );
        assert_eq!((info.min_block_size, info.max_block_size), (4096, 4096));
        assert_eq!(info.samples, Some(c.samples.len() as u64));
        let decoded: Vec<i32> = reader.samples().map(|s| s.unwrap()).collect();
        assert_eq!(decoded, c.samples);
    }

    #[test]
    fn wav_round_trip() {
        let (c, _) = small_clip();
        let bytes = write_wav(&c).unwrap();
        let mut reader = hound::WavReader::new(std::io::Cursor::new(bytes)).unwrap();
        let spec = reader.spec();
        assert_eq!(
            (spec.sample_rate, spec.bits_per_sample, spec.channels),
            (8000, 24, 1)
        );
        let decoded: Vec<i32> = reader.samples::<i32>().map(|s| s.unwrap()).collect();
        assert_eq!(decoded, c.samples);
    }

    #[test]
    fn flac_refuses_what_frame_headers_cannot_name_and_128_khz_works() {
        let (c, _) = small_clip();
        // 128 kHz hydrophones exist; flacenc (used before) stopped at 96 kHz.
        let fast = AudioClip {
            sample_rate: 128_000,
            ..c.clone()
        };
        let mut reader =
            claxon::FlacReader::new(std::io::Cursor::new(write_flac(&fast).unwrap())).unwrap();
        assert_eq!(reader.streaminfo().sample_rate, 128_000);
        let decoded: Vec<i32> = reader.samples().map(|s| s.unwrap()).collect();
        assert_eq!(decoded, c.samples);
        for bad in [
            AudioClip {
                sample_rate: 700_000,
                ..c.clone()
            },
            AudioClip {
                bits_per_sample: 32,
                ..c.clone()
            },
        ] {
            let message = write_flac(&bad).unwrap_err().to_string();
            assert!(message.contains("audio = \"wav\""), "{message}");
            assert!(write_wav(&bad).is_ok());
        }
        // Samples wider than the declared depth are refused, not written wrapped.
        let mut wide = c.clone();
        wide.samples[3] = 1 << 24;
        assert!(write_flac(&wide).is_err());
        assert!(write_wav(&wide).is_err());
    }

    #[test]
    fn stereo_wav_is_interleaved() {
        let dir = tempfile::tempdir().unwrap();
        let name = "ICLISTENHF6324_20240401T000000.000Z.wav";
        let path = dir.path().join(name);
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 1000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..2000i32 {
            writer.write_sample(i as i16).unwrap();
            writer.write_sample(-i as i16).unwrap();
        }
        writer.finalize().unwrap();
        let from = T2024 * MS + 500 * MS;
        let sources = [AudioSource { name, path: &path }];
        let c = clip_audio(&sources, from, from + 10 * MS, GapPolicy::Fill)
            .unwrap()
            .remove(0);
        assert_eq!(c.channels, 2);
        assert_eq!(
            c.samples,
            (500..510).flat_map(|i| [i, -i]).collect::<Vec<_>>()
        );
        let back = write_wav(&c).unwrap();
        let mut reader = hound::WavReader::new(std::io::Cursor::new(back)).unwrap();
        assert_eq!(reader.spec().channels, 2);
        assert_eq!(
            reader
                .samples::<i32>()
                .map(|s| s.unwrap())
                .collect::<Vec<_>>(),
            c.samples
        );
    }

    #[test]
    fn wav_with_wide_containers_is_read_without_seeking() {
        // 24-bit samples in 4-byte containers (WAVE_FORMAT_EXTENSIBLE): hound's `seek` would
        // land in the wrong place, so these files are skipped through by reading.
        let dir = tempfile::tempdir().unwrap();
        let name = "ICLISTENHF6324_20240401T000000.000Z.wav";
        let path = dir.path().join(name);
        let spec = hound::WavSpecEx {
            spec: hound::WavSpec {
                channels: 1,
                sample_rate: 1000,
                bits_per_sample: 24,
                sample_format: hound::SampleFormat::Int,
            },
            bytes_per_sample: 4,
        };
        let file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut writer = hound::WavWriter::new_with_spec_ex(file, spec).unwrap();
        for i in 0..3000i32 {
            writer.write_sample(i * 1000 - 1_500_000).unwrap();
        }
        writer.finalize().unwrap();
        let from = T2024 * MS + 2_000 * MS;
        let sources = [AudioSource { name, path: &path }];
        let c = clip_audio(&sources, from, from + 5 * MS, GapPolicy::Fill)
            .unwrap()
            .remove(0);
        let expected: Vec<i32> = (2000..2005).map(|i| i * 1000 - 1_500_000).collect();
        assert_eq!(c.samples, expected);
        assert_eq!(c.bits_per_sample, 24);
    }

    /// Decode speed on a 5-minute 64 kHz FLAC (run with `--ignored --nocapture`).
    #[test]
    #[ignore = "timing, not a check; about 30 s to generate the file"]
    fn decode_speed_64khz() {
        let file = files_overlapping(&profile(64_000), T2024, T2024 + DAY)
            .into_iter()
            .find(|f| f.duration_ms() > 299_000)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let name = file.filename("flac");
        let path = dir.path().join(&name);
        std::fs::write(&path, flac_bytes(&file).unwrap()).unwrap();
        let sources = [AudioSource {
            name: &name,
            path: &path,
        }];
        for offset_s in [0, 150, 295] {
            let from = (file.start_ms + offset_s * 1000) * MS;
            let mut decoded = Vec::new();
            for no_seek in [true, false] {
                NO_SEEK.with(|c| c.set(no_seek));
                let started = std::time::Instant::now();
                let c = clip_audio(&sources, from, from + 5_000 * MS, GapPolicy::Fill).unwrap();
                let decode = started.elapsed();
                let started = std::time::Instant::now();
                let flac = write_flac(&c[0]).unwrap();
                println!(
                    "5 s clip at +{offset_s} s ({}): decode {decode:?}, FLAC encode {:?} ({} \
                     bytes)",
                    if no_seek { "from the start" } else { "seek" },
                    started.elapsed(),
                    flac.len()
                );
                decoded.push(c);
            }
            assert_eq!(decoded[0], decoded[1]);
        }
        NO_SEEK.with(|c| c.set(false));
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let file = day_files().remove(2);
        let flac = flac_bytes(&file).unwrap();
        let wav = wav_bytes(&file);
        let dir = tempfile::tempdir().unwrap();
        let from = (file.start_ms + 200_000) * MS;
        let to = from + 1_000 * MS;
        let run = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            clip_audio(
                &[AudioSource { name, path: &path }],
                from,
                to,
                GapPolicy::Fill,
            )
        };
        let flac_name = file.filename("flac");
        let wav_name = file.filename("wav");
        // Truncated: the header promises more than the file holds.
        let err = run(&flac_name, &flac[..flac.len() / 2]).unwrap_err();
        assert!(matches!(err, AudioClipError::Decode { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("decode {flac_name}: ")),
            "{err}"
        );
        let err = run(&wav_name, &wav[..wav.len() / 2]).unwrap_err();
        assert!(matches!(err, AudioClipError::Decode { .. }), "{err}");
        // Not audio at all, empty, a bare magic number.
        for bytes in [
            &b"hello world"[..],
            b"",
            b"fLaC",
            b"RIFF\xff\xff\xff\xffWAVE",
        ] {
            let err = run(&flac_name, bytes).unwrap_err();
            assert!(matches!(err, AudioClipError::Header { .. }), "{err}");
        }
        // A name without a start time.
        let err = run("clip.flac", &flac).unwrap_err();
        assert!(matches!(err, AudioClipError::NoStartTime { .. }), "{err}");
        // Damaged bytes anywhere: Ok (damage outside what was decoded) or Err, never a panic.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..200u32 {
            let (name, original) = if round.is_multiple_of(2) {
                (&flac_name, &flac)
            } else {
                (&wav_name, &wav)
            };
            let mut damaged = original.clone();
            for _ in 0..4 {
                state = onc_sim::oracle::splitmix64(state);
                // Mostly the headers, where damage changes what gets decoded.
                let span = if state.is_multiple_of(2) {
                    128
                } else {
                    damaged.len()
                };
                let at = (state >> 8) as usize % span.min(damaged.len());
                damaged[at] ^= (state >> 40) as u8 | 1;
            }
            let _ = run(name, &damaged);
        }
    }

    /// Clips with and without seeking, compared, and checked against the oracle.
    fn clip_both_ways(staged: &Staged, from_ns: i64, to_ns: i64) -> AudioClip {
        NO_SEEK.with(|c| c.set(true));
        let sequential = clip_audio(&staged.sources(), from_ns, to_ns, GapPolicy::Fill);
        NO_SEEK.with(|c| c.set(false));
        let sequential = sequential.unwrap();
        let sought = clip(staged, from_ns, to_ns, GapPolicy::Fill);
        assert_eq!(sought, sequential, "clip {from_ns}..{to_ns}");
        let [c] = sought.as_slice() else {
            panic!("{sought:?}")
        };
        assert_oracle(c);
        c.clone()
    }

    #[test]
    fn seeking_gives_the_same_samples_as_decoding_from_the_start() {
        let (a, b) = contiguous_pair();
        let staged = stage(&[a.clone(), b.clone()], "flac");
        let a_frames = a.duration_ms();
        // Start, inside the first blocks, middle, the last second, the very end, and across the
        // boundary into the second file (which is then seeked near its start).
        let starts_ms = [
            0,
            1,
            300,
            1_100,
            10_300,
            a_frames / 2,
            a_frames / 2 + 7,
            a_frames - 1_000,
            a_frames - 1,
            a_frames + 3_000,
            a_frames + 120_000,
        ];
        for start in starts_ms {
            let from = (a.start_ms + start) * MS;
            clip_both_ways(&staged, from, from + 700 * MS);
        }
        // Across the boundary.
        let from = (a.start_ms + a_frames - 2_000) * MS;
        let c = clip_both_ways(&staged, from, from + 5_000 * MS);
        assert_eq!(c.sources.len(), 2);
    }

    /// Variable-blocksize streams (other encoders write them; frame headers carry sample
    /// numbers): the seek lands on real frame starts and clips equal decoding from the start.
    #[test]
    fn seeking_in_a_variable_blocksize_stream() {
        let (a, b) = contiguous_pair();
        let staged = stage(&[a.clone(), b], "flac");
        let path = &staged.files[0].1;
        let mut reader = claxon::FlacReader::open(path).unwrap();
        let info = reader.streaminfo();
        let samples: Vec<i32> = reader.samples().map(|s| s.unwrap()).collect();
        // Irregular sizes, none dividing another, so no position is a multiple of one size.
        let sizes = [1_000, 4_608, 333, 2_500, 4_096, 1_777];
        let bytes = crate::clip::flac::encode_blocks(
            &samples,
            1,
            info.bits_per_sample,
            info.sample_rate,
            Some(&sizes),
        )
        .unwrap();
        std::fs::write(path, bytes).unwrap();

        let seek = seek_info(path);
        assert_eq!(seek.max_block, 4_608);
        let starts: Vec<u64> = std::iter::once(0)
            .chain(sizes.iter().cycle().scan(0u64, |at, &n| {
                *at += n as u64;
                Some(*at)
            }))
            .take_while(|&at| at < seek.total)
            .collect();
        for target in (1..30).map(|i| i * seek.total / 30) {
            let Some((mut frames, pos)) = seek_flac(&seek, target) else {
                continue;
            };
            assert!(pos <= target, "{target}: {pos}");
            assert!(
                starts.binary_search(&pos).is_ok(),
                "{pos} is not a frame start"
            );
            let block = frames.read_next_or_eof(Vec::new()).unwrap().unwrap();
            assert_eq!(block.time(), pos);
        }
        // At least most targets were sought (not decoded from the start).
        let sought = (1..30)
            .filter(|i| seek_flac(&seek, i * seek.total / 30).is_some())
            .count();
        assert!(sought >= 25, "{sought} of 29 targets sought");

        let a_ms = a.duration_ms();
        for start in [0, 700, a_ms / 3, a_ms / 2 + 11, a_ms - 1_500, a_ms - 300] {
            let from = (a.start_ms + start) * MS;
            clip_both_ways(&staged, from, from + 900 * MS);
        }
    }

    fn seek_info(path: &Path) -> FlacSeek {
        let flac = claxon::FlacReader::open(path).unwrap();
        let info = flac.streaminfo();
        flac_seek_info(path, &info, info.samples.unwrap()).unwrap()
    }

    #[test]
    fn seek_lands_shortly_before_the_target() {
        let file = day_files().remove(3);
        let staged = stage(std::slice::from_ref(&file), "flac");
        let seek = seek_info(&staged.files[0].1);
        assert_eq!((seek.max_block, seek.channels), (4096, 1));
        let total = seek.total;
        // Too close to the start to be worth it.
        assert!(seek_flac(&seek, 0).is_none());
        assert!(seek_flac(&seek, 8192).is_none());
        for target in (0..40).map(|i| 8193 + i * (total - 8194) / 39) {
            let (mut reader, pos) = seek_flac(&seek, target).unwrap();
            assert!(pos <= target && target - pos <= 8 * 4096, "{target}: {pos}");
            assert!(pos.is_multiple_of(4096));
            let block = reader.read_next_or_eof(Vec::new()).unwrap().unwrap();
            assert_eq!(block.time(), pos);
        }
    }

    #[test]
    fn seeking_survives_false_syncs_and_a_corrupt_middle() {
        let file = day_files().remove(4);
        let mut flac = flac_bytes(&file).unwrap();
        let name = file.filename("flac");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(&name);
        std::fs::write(&path, &flac).unwrap();
        let seek = seek_info(&path);
        let start = seek.frames_start as usize;
        // The first frame's bytes: a valid frame, copied where it does not belong.
        let mut reader = claxon::frame::FrameReader::new(std::io::Cursor::new(&flac[start..]));
        reader.read_next_or_eof(Vec::new()).unwrap().unwrap();
        let first_frame = flac[start..start + reader.into_inner().position() as usize].to_vec();
        // Damage 60 KB in the middle: false sync codes (with and without a copied frame header),
        // and a whole valid frame with the wrong frame number.
        let mid = start + (flac.len() - start) / 2;
        let damaged = mid..mid + 60_000;
        for (k, at) in damaged.clone().step_by(5).enumerate() {
            let fake: &[u8] = if k % 3 == 0 {
                &first_frame[..5.min(first_frame.len())]
            } else {
                &[0xFF, 0xF8, 0x69, 0x08, 0x00]
            };
            flac[at..at + fake.len()].copy_from_slice(fake);
        }
        flac[mid + 20_000..mid + 20_000 + first_frame.len()].copy_from_slice(&first_frame);
        std::fs::write(&path, &flac).unwrap();
        let sources = [AudioSource {
            name: &name,
            path: &path,
        }];
        let total_ms = (seek.total * 1000 / u64::from(RATE)) as i64;
        // Before the damage: as without seeking.
        let staged = Staged {
            _dir: dir,
            files: vec![(name.clone(), path.clone())],
        };
        for start_ms in [0, 5_000, total_ms / 3] {
            let from = (file.start_ms + start_ms) * MS;
            clip_both_ways(&staged, from, from + 1_000 * MS);
        }
        // After it: the seek skips the damage (decoding from the start cannot).
        for start_ms in [total_ms * 3 / 4, total_ms - 1_000] {
            let from = (file.start_ms + start_ms) * MS;
            let clips = clip_audio(&sources, from, from + 1_000 * MS, GapPolicy::Fill).unwrap();
            assert_oracle(&clips[0]);
            NO_SEEK.with(|c| c.set(true));
            let err = clip_audio(&sources, from, from + 1_000 * MS, GapPolicy::Fill);
            NO_SEEK.with(|c| c.set(false));
            assert!(matches!(err, Err(AudioClipError::Decode { .. })), "{err:?}");
        }
        // Inside it: an error naming the file, not a panic.
        let from = (file.start_ms + total_ms / 2 - 15_000) * MS;
        let err = clip_audio(&sources, from, from + 30_000 * MS, GapPolicy::Fill).unwrap_err();
        assert!(matches!(err, AudioClipError::Decode { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&format!("decode {name}: ")),
            "{err}"
        );
        // Seeking checks both frames: whatever it finds in the damage is a real position.
        for target in (0..50).map(|i| 8193 + i * (seek.total - 8194) / 49) {
            if let Some((_, pos)) = seek_flac(&seek, target) {
                assert!(pos <= target && pos.is_multiple_of(4096), "{target}: {pos}");
            }
        }
    }

    #[test]
    fn seeking_untrusted_files_does_not_panic() {
        let file = day_files().remove(5);
        let flac = flac_bytes(&file).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.flac");
        std::fs::write(&path, &flac).unwrap();
        let good = seek_info(&path);
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        for round in 0..60u32 {
            let mut bytes = flac.clone();
            state = onc_sim::oracle::splitmix64(state);
            match round % 3 {
                0 => bytes.truncate((state as usize) % bytes.len()),
                1 => {
                    for _ in 0..200 {
                        state = onc_sim::oracle::splitmix64(state);
                        let at = (state >> 8) as usize % bytes.len();
                        bytes[at] = (state >> 40) as u8;
                    }
                }
                _ => {
                    let from = good.frames_start as usize;
                    for (i, b) in bytes[from..].iter_mut().enumerate() {
                        *b = if i % 2 == 0 { 0xFF } else { 0xF8 };
                    }
                }
            }
            std::fs::write(&path, &bytes).unwrap();
            // Stale STREAMINFO facts (the file changed under them) and odd targets.
            for target in [
                0,
                8193,
                good.total / 2,
                good.total - 1,
                good.total,
                u64::MAX / 2,
            ] {
                if let Some((_, pos)) = seek_flac(&good, target) {
                    assert!(pos <= target);
                }
            }
        }
    }

    #[test]
    fn empty_window_and_no_sources() {
        let err = clip_audio(&[], 10, 10, GapPolicy::Fill).unwrap_err();
        assert!(matches!(err, AudioClipError::EmptyWindow { .. }));
        let err = clip_audio(&[], 10, 20, GapPolicy::Fill).unwrap_err();
        assert!(matches!(err, AudioClipError::NoData { .. }));
    }

    #[test]
    fn sub_millisecond_mismatch_joins_files() {
        // Names carry milliseconds: a 0.4 ms misfit between files (3 samples at 8 kHz) is the
        // names' rounding, not a gap.
        let files = [
            Placed {
                start_ns: 0,
                frames: 8000,
            },
            Placed {
                start_ns: 1_000_400_000,
                frames: 8000,
            },
        ];
        let l = layout(&files, 8000, 500_000_000, 1_500_000_000).unwrap();
        assert!(l.gaps.is_empty() && l.overlaps.is_empty(), "{l:?}");
        assert_eq!(l.segments[1].out_start, 4000);
        assert_eq!(l.segments[1].file_first, 0);
    }

    proptest! {
        #[test]
        fn layout_index_arithmetic(
            rate in prop::sample::select(vec![1000u32, 8000, 32_000, 44_100, 64_000, 128_000]),
            ref_start_ns in 1_500_000_000_000_000_000i64..1_600_000_000_000_000_000,
            start_offset_ns in -2_000_000_000i64..2_000_000_000,
            length_ns in 1i64..20_000_000_000,
            frames_a in 1u64..3_000_000,
            step_ns in 250_000_000i64..3_000_000_000,
            frames_b in 1u64..3_000_000,
        ) {
            let files = [
                Placed { start_ns: i128::from(ref_start_ns), frames: frames_a },
                Placed { start_ns: i128::from(ref_start_ns + step_ns), frames: frames_b },
            ];
            let clip_start = ref_start_ns + start_offset_ns;
            let clip_end = clip_start + length_ns;
            let l = layout(&files, rate, clip_start, clip_end).unwrap();
            let period = 1.0 / f64::from(rate);
            // Output sample 0 is within half a period of the clip start.
            let t0 = l.time_s(rate, 0);
            prop_assert!((t0 - clip_start as f64 / 1e9).abs() <= period / 2.0 + 1e-6);
            let expected = (length_ns as f64 * f64::from(rate) / 1e9).round().max(1.0);
            prop_assert!((l.frames as f64 - expected).abs() <= 1.0);
            // Segments and gaps tile [0, frames) in order, without overlap.
            let mut pieces: Vec<(u64, u64)> = l
                .segments
                .iter()
                .map(|s| (s.out_start, s.out_start + s.len))
                .chain(l.gaps.iter().copied())
                .collect();
            pieces.sort();
            let mut cursor = 0;
            for (a, b) in pieces {
                prop_assert_eq!(a, cursor);
                prop_assert!(b > a);
                cursor = b;
            }
            prop_assert_eq!(cursor, l.frames);
            // Each segment reads inside its file.
            for s in &l.segments {
                let file = files[s.file];
                prop_assert!(s.file_first + s.len <= file.frames);
            }
        }
    }
}
