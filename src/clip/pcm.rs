//! PCM sample checks shared by the audio writers: samples + their bit depth → Ok, or which
//! sample does not fit.
//!
//! Input: interleaved `i32` samples and the bit depth they claim. Output: `Ok(())` when every
//! sample fits that many signed bits. Errors: a message (read after "encode FLAC: " or "encode
//! WAV: ") naming the first sample that does not fit, or a bit depth outside 1 to 32.
//!
//! Why a file of its own: both our FLAC encoder (`flac.rs`) and the WAV writer
//! (`audio/write.rs`) refuse such samples, and `audio` uses `flac` to encode; kept in either of
//! them, the check would make `audio` and `flac` import each other.

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
