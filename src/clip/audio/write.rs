//! Writing: an [`AudioClip`] → FLAC or WAV file bytes at the clip's own rate and bit depth.
//!
//! Input: a clip from [`clip_audio`](super::clip_audio). Output: FLAC bytes from our own encoder
//! (`clip/flac.rs`) or integer PCM WAV bytes from hound. Errors ([`AudioClipError::FlacEncode`],
//! [`AudioClipError::WavEncode`]): samples wider than the clip's bit depth (both writers refuse
//! them, see `clip/pcm.rs`), what FLAC frame headers cannot name (the message says to use WAV),
//! a WAV of 4 GiB or more.

use super::AudioClip;
use super::error::AudioClipError;
// `super::super`, not `crate::clip`: tests/it/architecture.rs forbids the prefix `crate::cli`,
// which `crate::clip` also starts with.
use super::super::pcm::check_sample_range;

/// The clip as FLAC bytes at its own rate and bit depth (see [`clip::flac`](crate::clip::flac):
/// block size 4096, fixed predictors, MD5 in STREAMINFO).
///
/// 8, 12, 16, 20 or 24 bits and up to 655,350 Hz: other clips get an error saying to use WAV.
pub fn write_flac(clip: &AudioClip) -> Result<Vec<u8>, AudioClipError> {
    super::super::flac::encode(
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
