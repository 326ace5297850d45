//! Tests of audio clipping: archive files from the simulator (FLAC and WAV, written to a
//! temporary directory) + clip windows → clips compared sample for sample with the simulator's
//! oracle; seeking compared with decoding from the first frame; corrupt, truncated and
//! untrusted files → errors, never panics; the layout's index arithmetic by property tests.

use super::error::iso;
use super::seek::{FlacSeek, NO_SEEK, flac_seek_info, seek_flac};
use super::stitch::{Placed, layout};
use super::*;
use crate::clip::SourceUse;
use crate::plan::GapPolicy;
use onc_sim::archive::{
    ARCHIVE_END_MS, ARCHIVE_START_MS, ArchiveFile, DeviceProfile, files_overlapping,
};
use onc_sim::flac::{flac_bytes, wav_bytes};
use onc_sim::oracle::AudioOracle;
use proptest::prelude::*;
use std::path::Path;
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
    let first =
        files_overlapping(&profile(RATE), ARCHIVE_START_MS, ARCHIVE_START_MS + 600_000).remove(0);
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

/// Writes the FLAC clip fuzz target's seeds (`fuzz/seed-corpus.sh`) into
/// `$ONC_PIPE_FUZZ_SEEDS`: short simulator archive files starting 2024-04-01T00:00:00Z (the
/// target's file name), FLAC as the simulator writes them (LPC subframes) and as our encoder
/// writes them (fixed predictors), plus one WAV, each behind the target's 4-byte window prefix.
#[test]
#[ignore = "writes the fuzz seed corpus; run by fuzz/seed-corpus.sh"]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("ONC_PIPE_FUZZ_SEEDS") else {
        return;
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    // Window prefix: start offset in ms (u16 LE), then length in ms (low 11 bits) and the gap
    // policy (top 2 bits), as fuzz/fuzz_targets/flac_clip.rs reads them.
    let prefix = |offset_ms: u16, length_ms: u16, policy: u16| {
        let mut bytes = offset_ms.to_le_bytes().to_vec();
        bytes.extend((length_ms | (policy << 14)).to_le_bytes());
        bytes
    };
    let short = |rate: u32, samples: u64| ArchiveFile {
        device: DEVICE.into(),
        start_ms: T2024,
        samples,
        sample_rate: rate,
    };
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for (rate, samples) in [(8_000, 16_000), (64_000, 32_000)] {
        let file = short(rate, samples);
        let bytes = flac_bytes(&file).unwrap();
        seeds.push((
            format!("sim_{rate}.flac"),
            [prefix(250, 1_000, 0), bytes.clone()].concat(),
        ));
        seeds.push((
            format!("sim_{rate}_tail.flac"),
            [prefix(1_500, 2_000, 1), bytes].concat(),
        ));
    }
    // Our own encoder's output, read back as a source.
    let staged = stage(&[short(8_000, 16_000)], "flac");
    let ours = clip(&staged, T2024 * MS, (T2024 + 1_500) * MS, GapPolicy::Fill).remove(0);
    seeds.push((
        "ours_8000.flac".into(),
        [prefix(100, 800, 3), write_flac(&ours).unwrap()].concat(),
    ));
    seeds.push((
        "sim_8000.wav".into(),
        [prefix(0, 500, 0), wav_bytes(&short(8_000, 4_000))].concat(),
    ));
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
