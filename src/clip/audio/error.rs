//! What clipping audio fails with: [`AudioClipError`], and the time formatting its messages use.
//!
//! Input: what went wrong and where (file names, the window, the gaps found). Output: the
//! error, whose message reads after "failed to" (e.g. "decode X.flac: …"), and
//! [`AudioClipError::is_skip`], which tells a window skipped on purpose (`gaps = "skip"`) from a
//! failure. Errors: none of its own; this file is the error type.

use super::{MAX_CLIP_SAMPLES, Span};

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
pub(super) fn iso(seconds: f64) -> String {
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    match chrono::DateTime::from_timestamp(whole as i64, nanos) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{seconds} s"),
    }
}

pub(super) fn iso_ns(ns: i64) -> String {
    let t = chrono::DateTime::from_timestamp_nanos(ns);
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}
