//! The clip stage end to end: `onc-pipe run` on the in-process simulator cuts spectrogram and
//! audio clips whose samples and columns equal the simulator's oracle, across file boundaries
//! and gaps, and re-cuts them after a padding change without a single HTTP request.

use std::path::Path;

use chrono::{DateTime, Utc};
use onc_pipe::clip::mat::{read_mat, spectrogram_from_mat};
use onc_sim::archive::{DeviceProfile, files_overlapping};
use onc_sim::oracle::{audio_sample, psd_db_stored};

use crate::support::{Scratch, onc_pipe};

const DEVICE: &str = "ICLISTENHF6324";
const RATE: u32 = 8_000;

fn profile() -> DeviceProfile {
    DeviceProfile {
        code: DEVICE.into(),
        sample_rate: RATE,
    }
}

fn ms(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

pub(crate) fn stamp(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// The start of the first missing file after `from`: the end of the file before a start-to-start
/// distance over 310 s.
pub(crate) fn a_gap_after(from: &str) -> (i64, i64) {
    let files = files_overlapping(&profile(), ms(from), ms(from) + 86_400_000);
    files
        .windows(2)
        .find(|pair| pair[1].start_ms - pair[0].start_ms > 310_000)
        .map(|pair| (pair[0].end_ms(), pair[1].start_ms))
        .expect("the simulated archive misses about 1 file in 60")
}

pub(crate) fn manifest(pad_after: &str, gap_window: (i64, i64)) -> String {
    format!(
        r#"version = 1

[onc]
base_url = "simulator"

[onc.simulator]
sample_rate = {RATE}
time_scale = 0.002

[output]
dir = "data"
cache = "cache"

[plan.events]
device = "{DEVICE}"
windows = [
  {{ start = 2024-04-01T04:26:20Z, end = 2024-04-01T04:26:40Z, label = "across a file boundary", name = "boundary" }},
  {{ start = {}, end = {}, label = "across a gap", name = "gap" }},
]

[fetch.plotres]
plan = "events"
product = "HSD"
extension = "mat"
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}

[fetch.audio]
plan = "events"
archive = "flac"

[clip.events]
plan = "events"
fetch = ["plotres", "audio"]
pad_before = "10s"
pad_after = "{pad_after}"
spectrogram = ["npz", "mat", "png"]
audio = "flac"
"#,
        stamp(gap_window.0),
        stamp(gap_window.1),
    )
}

fn run(dir: &Path) -> serde_json::Value {
    let ran = onc_pipe(dir, &["run", "m.toml", "--json", "--no-progress"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    serde_json::from_str(&ran.stdout).unwrap()
}

fn sidecar(dir: &Path, media: &str, name: &str) -> serde_json::Value {
    let path = dir.join(format!("data/{DEVICE}/events/clips/{media}/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn flac_samples(path: &Path) -> (Vec<i32>, u32, u32) {
    let mut reader = claxon::FlacReader::open(path).unwrap();
    let info = reader.streaminfo();
    let samples = reader.samples().map(Result::unwrap).collect();
    (samples, info.sample_rate, info.bits_per_sample)
}

/// Every audio sample equals the oracle at its time; samples inside reported gaps are silence.
fn check_audio(dir: &Path, name: &str, clip_start: &str, clip_end: &str) -> serde_json::Value {
    let side = sidecar(dir, "audio", name);
    let (samples, rate, bits) =
        flac_samples(&dir.join(format!("data/{DEVICE}/events/clips/audio/{name}.flac")));
    assert_eq!((rate, bits), (RATE, 24));
    assert_eq!(side["sample_rate"], RATE);
    // At 8 kHz a millisecond is 8 samples, so every file start and the clip start sit on the
    // sample grid: the first sample is exactly at the clip start, and the length is exact.
    let (start, end) = (ms(clip_start), ms(clip_end));
    assert_eq!(samples.len() as i64, (end - start) * i64::from(RATE) / 1000);
    let gaps: Vec<(f64, f64)> = side["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let at = |k: &str| ms(g[k].as_str().unwrap()) as f64 / 1000.0;
            (at("start"), at("end"))
        })
        .collect();
    let period_ns = 1_000_000_000 / i128::from(RATE);
    for (k, &sample) in samples.iter().enumerate() {
        let t_ns = i128::from(start) * 1_000_000 + k as i128 * period_ns;
        let t_s = t_ns as f64 / 1e9;
        // Sidecar times are rounded to the millisecond: near a gap's edges either is right.
        let near_edge = gaps
            .iter()
            .any(|&(a, b)| (t_s - a).abs() < 0.002 || (t_s - b).abs() < 0.002);
        if near_edge {
            assert!(
                sample == 0 || sample == audio_sample(DEVICE, t_ns),
                "{name}: {k}"
            );
        } else if gaps.iter().any(|&(a, b)| t_s >= a && t_s < b) {
            assert_eq!(sample, 0, "{name}: sample {k} lies in a gap");
        } else {
            assert_eq!(sample, audio_sample(DEVICE, t_ns), "{name}: sample {k}");
        }
    }
    side
}

/// Every spectrogram column's time and values equal the oracle; gap columns are NaN.
fn check_spectrogram(dir: &Path, name: &str, clip_start: &str, clip_end: &str) -> usize {
    let bytes = std::fs::read(dir.join(format!(
        "data/{DEVICE}/events/clips/spectrograms/{name}.mat"
    )))
    .unwrap();
    let clip = spectrogram_from_mat(&read_mat(&bytes).unwrap()).unwrap();
    let (start, end) = (ms(clip_start) as f64 / 1e3, ms(clip_end) as f64 / 1e3);
    let mut nan_columns = 0;
    for (j, &t) in clip.time_s.iter().enumerate() {
        assert!(
            t >= start - 1e-3 && t < end,
            "{name}: column {j} at {t} is outside the clip"
        );
        let column = &clip.psd[j * clip.nfreq..(j + 1) * clip.nfreq];
        if column.iter().all(|v| v.is_nan()) {
            nan_columns += 1;
            continue;
        }
        let t_ms = (t * 1000.0).round() as i64;
        for (i, &f) in clip.frequency_hz.iter().enumerate() {
            // The simulator's MAT files hold PSD as single precision.
            let expected = psd_db_stored(DEVICE, t_ms, f);
            let same = (expected.is_nan() && column[i].is_nan()) || expected == column[i];
            assert!(
                same,
                "{name}: column {j}, bin {i}: {} vs {expected}",
                column[i]
            );
        }
    }
    // Every NPZ and PNG beside it exists.
    for extension in ["npz", "png", "json"] {
        let path = format!("data/{DEVICE}/events/clips/spectrograms/{name}.{extension}");
        assert!(dir.join(&path).is_file(), "{path}");
    }
    nan_columns
}

#[test]
fn clips_match_the_oracle_across_boundaries_and_gaps_and_recut_without_requests() {
    let gap = a_gap_after("2024-04-02T00:00:00Z");
    // A window from 20 s before the gap to 20 s after it.
    let gap_window = (gap.0 - 20_000, gap.1 + 20_000);
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("15s", gap_window));
    let first = run(scratch.path());
    assert_eq!(first["clips_written"], 4, "{first}");

    // Across a file boundary: one clip, two source files, no gap.
    let side = check_audio(
        scratch.path(),
        "boundary",
        "2024-04-01T04:26:10Z",
        "2024-04-01T04:26:55Z",
    );
    assert_eq!(side["sources"].as_array().unwrap().len(), 2, "{side}");
    assert_eq!(side["gaps"], serde_json::json!([]));
    // The padding survives an explicit end (the Python tool dropped pad_after).
    assert_eq!(side["requested_window"]["end"], "2024-04-01T04:26:40.000Z");
    assert_eq!(side["padded_window"]["end"], "2024-04-01T04:26:55.000Z");
    let nan = check_spectrogram(
        scratch.path(),
        "boundary",
        "2024-04-01T04:26:10Z",
        "2024-04-01T04:26:55Z",
    );
    assert_eq!(nan, 0);

    // Across a gap: silence and NaN columns, reported.
    let (gap_start, gap_end) = (stamp(gap_window.0 - 10_000), stamp(gap_window.1 + 15_000));
    let side = check_audio(scratch.path(), "gap", &gap_start, &gap_end);
    let gaps = side["gaps"].as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{side}");
    let seconds = gaps[0]["seconds"].as_f64().unwrap();
    let missing = (gap.1 - gap.0) as f64 / 1000.0;
    assert!((seconds - missing).abs() < 0.01, "{seconds} vs {missing}");
    let nan = check_spectrogram(scratch.path(), "gap", &gap_start, &gap_end);
    assert!(nan > 0, "the gap is filled with NaN columns");
    let spectrogram_side = sidecar(scratch.path(), "spectrograms", "gap");
    assert_eq!(spectrogram_side["gaps"].as_array().unwrap().len(), 1);

    // Re-run: everything cached, not a single request.
    let again = run(scratch.path());
    assert_eq!(again["http_requests"], 0, "{again}");
    assert_eq!(again["clips_cached"], 4);
    assert_eq!(again["clips_written"], 0);

    // A longer pad_after re-cuts every clip from the cached files, still without a request.
    scratch.write("m.toml", &manifest("20s", gap_window));
    let recut = run(scratch.path());
    assert_eq!(recut["http_requests"], 0, "{recut}");
    assert_eq!(recut["clips_written"], 4, "{recut}");
    check_audio(
        scratch.path(),
        "boundary",
        "2024-04-01T04:26:10Z",
        "2024-04-01T04:27:00Z",
    );
}
