//! Decoding: an [`AudioSource`] → an opened source (container, start time, sample format,
//! length) → the samples `[first, first + n)` the clip needs, decoded up to the clip end and no
//! further.
//!
//! Input: the stored file (FLAC read with claxon, WAV with hound; which one from its first
//! bytes) and its ONC name, whose start time places it. Output: `OpenSource`, then interleaved
//! `i32` samples written into the caller's buffer. FLAC is seeked with `seek.rs` when that finds
//! a verified frame, else decoded from the first frame, the blocks before the clip dropped
//! uncopied; WAV is seeked with hound when its samples are packed the way hound assumes, else
//! read through. Errors ([`AudioClipError`]): no start time in the name, a file that cannot be
//! opened, a header that is neither FLAC nor WAV or names an impossible format, floating-point
//! WAV, corrupt or truncated data; each names the file.

use super::error::AudioClipError;
use super::seek::{FlacSeek, flac_seek_info, seek_disabled, seek_flac};
use super::{AudioSource, NS_PER_S};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};

/// Rate, bit depth and channel count: what must agree for files to be stitched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SampleFormat {
    pub(super) rate: u32,
    pub(super) bits: u32,
    pub(super) channels: u16,
}

impl SampleFormat {
    pub(super) fn describe(&self, container: &str) -> String {
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
pub(super) struct OpenSource<'a> {
    pub(super) name: &'a str,
    pub(super) start_ns: i128,
    pub(super) format: SampleFormat,
    pub(super) container: &'static str,
    /// Samples per channel.
    pub(super) frames: u64,
    decoder: Decoder,
}

impl OpenSource<'_> {
    /// End of the file's data on its own clock, in ns (rounded up).
    pub(super) fn end_ns(&self) -> i128 {
        let rate = i128::from(self.format.rate.max(1));
        self.start_ns + (i128::from(self.frames) * NS_PER_S + rate - 1) / rate
    }

    pub(super) fn decode_error(&self, reason: String) -> AudioClipError {
        AudioClipError::Decode {
            file: self.name.to_string(),
            reason,
        }
    }

    /// Decode samples `[first, first + dest.len() / channels)` into `dest` (interleaved).
    pub(super) fn read_into(&mut self, first: u64, dest: &mut [i32]) -> Result<(), AudioClipError> {
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

/// Open a source: container from its first bytes, start from its name, format and length from
/// its header.
pub(super) fn open_source<'a>(source: &AudioSource<'a>) -> Result<OpenSource<'a>, AudioClipError> {
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
