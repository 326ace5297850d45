//! FLAC seeking: a FLAC file + a target sample → a claxon frame reader positioned at a verified
//! frame that starts at or shortly before the target, and that frame's first sample.
//!
//! Input: the file's path and STREAMINFO (`flac_seek_info` reads the metadata block headers to
//! find where the frames begin), and the first sample a clip needs. Output: `seek_flac` guesses
//! byte offsets by interpolation, scans for a frame sync code and takes a frame only when claxon
//! decodes it (header CRC-8, frame CRC-16) and the next frame starts where it ends. claxon
//! cannot seek by itself, hence this. Errors: none; the file is untrusted, and whatever is not
//! understood or not verified gives None, and then the caller decodes from the first frame, as
//! if there were no seek.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// What seeking in a FLAC file needs, from its STREAMINFO and its metadata block headers.
#[derive(Debug, Clone)]
pub(super) struct FlacSeek {
    pub(super) path: std::path::PathBuf,
    /// Byte offset of the first audio frame (after the last metadata block).
    pub(super) frames_start: u64,
    pub(super) file_len: u64,
    /// Samples per channel.
    pub(super) total: u64,
    pub(super) max_block: u64,
    pub(super) channels: u32,
    /// Upper bound on one frame's size in bytes.
    pub(super) frame_bound: u64,
}

/// Seek information, or None when the file's layout is not understood (then no seeking).
pub(super) fn flac_seek_info(
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
pub(super) fn seek_flac(
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

#[cfg(test)]
thread_local! {
    /// Test switch: decode every FLAC from its first frame.
    pub(super) static NO_SEEK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
pub(super) fn seek_disabled() -> bool {
    NO_SEEK.with(|c| c.get())
}

#[cfg(not(test))]
pub(super) fn seek_disabled() -> bool {
    false
}
