//! FLAC clip fuzz target: any bytes, stored as an archived FLAC file, and a clip window →
//! `clip::audio::clip_audio` (claxon behind our seek: STREAMINFO, metadata block walk, frame
//! sync scan, CRC checks) must return a clip or an error naming the file, never panic, hang or
//! allocate past the window's needs. A clip that comes back is written with our FLAC encoder
//! (`write_flac`) when its format allows, and the written bytes must decode with claxon to the
//! same samples, rate, bit depth and channels.
//!
//! Input layout: the first 4 bytes choose the window (start offset from the file's start, 0 to
//! ~65 s in ms, and length, 1 ms to ~2 s: the window bounds the clip's size, so a header
//! claiming a huge rate cannot make the target itself slow), the gap policy; the rest is the file.

#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use onc_pipe::clip::audio::{AudioSource, clip_audio, write_flac};
use onc_pipe::plan::GapPolicy;

/// The file's name: its start time (2024-04-01T00:00:00Z) is read from it, as from ONC's.
const NAME: &str = "ICLISTENHF6324_20240401T000000.000Z.flac";
const FILE_START_NS: i64 = 1_711_929_600_000_000_000;

/// One file per fuzzing process, rewritten for every input (`clip_audio` reads a path).
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("onc-pipe-fuzz-{}-{NAME}", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&[a, b, c, d], file)) = data.split_first_chunk::<4>() else {
        return;
    };
    let offset_ms = i64::from(u16::from_le_bytes([a, b]));
    let length_ms = 1 + i64::from(u16::from_le_bytes([c, d]) & 0x07ff);
    let gaps = match d >> 6 {
        0 => GapPolicy::Fill,
        1 => GapPolicy::Split,
        2 => GapPolicy::Skip,
        _ => GapPolicy::Fail,
    };
    let path = scratch();
    let Ok(mut out) = std::fs::File::create(path) else {
        return;
    };
    if out.write_all(file).is_err() {
        return;
    }
    drop(out);
    let start_ns = FILE_START_NS + offset_ms * 1_000_000;
    let end_ns = start_ns + length_ms * 1_000_000;
    let sources = [AudioSource { name: NAME, path }];
    let Ok(clips) = clip_audio(&sources, start_ns, end_ns, gaps) else {
        return;
    };
    for clip in clips {
        let Ok(bytes) = write_flac(&clip) else {
            continue;
        };
        let mut reader = match claxon::FlacReader::new(bytes.as_slice()) {
            Ok(reader) => reader,
            Err(e) => panic!("a written clip does not read back: {e}"),
        };
        let info = reader.streaminfo();
        assert_eq!(info.sample_rate, clip.sample_rate);
        assert_eq!(info.bits_per_sample, clip.bits_per_sample);
        assert_eq!(info.channels, u32::from(clip.channels));
        let decoded: Result<Vec<i32>, _> = reader.samples().collect();
        match decoded {
            Ok(samples) => assert!(samples == clip.samples, "round trip changed the samples"),
            Err(e) => panic!("a written clip does not decode: {e}"),
        }
    }
});
