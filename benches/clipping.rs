//! Clip benchmark (issue 5, SPEC §10: clipping is bounded by FLAC decoding and MAT inflation, and
//! at least 10× the Python tool's clipper on the same events).
//!
//! Run with `cargo bench --bench clipping`. Input: consecutive simulated 64 kHz 24-bit archive
//! files of ICLISTENHF6324 (FLAC, and the plotRes HSD MAT of each), generated once and cached in
//! `target/bench-data/`, and 1,000 events at seeded-random times inside them (10 s long, padded
//! 15 s before and 20 s after: 45 s windows, many across a file boundary). Every clip is one
//! independent `onc_pipe::clip::cut::cut` call, exactly as the executor makes it (sources read
//! from disk, FLAC decoded from the file start up to the clip end, MAT files read and inflated
//! whole): nothing is shared between clips.
//!
//! Printed, for audio (FLAC out) and spectrograms (NPZ out) separately:
//! - onc-pipe clips/s on a pool of `available_parallelism()` threads and on one thread;
//! - the pure-decoding baseline on the same events, measured in the same run: claxon decoding
//!   each event's source files from their start to the clip end (samples discarded), or reading
//!   and inflating each event's MAT files with our MAT reader (no clipping); and the ratio
//!   clip time / decode time;
//! - the Python tool (`onc-hydrophone-data` from PyPI, in a venv at `target/bench-venv`) clipping
//!   the same files for the same events with its own functions (`benches/clip_python.py`, see
//!   there for exactly what is timed), and the ratio onc-pipe / Python. Skipped, saying why, when
//!   the package cannot be installed.
//!
//! Environment: `CLIP_BENCH_EVENTS` (default 1000) events; `CLIP_BENCH_SINGLE` (default 100):
//! the first that many of them for the single-thread and decode-baseline runs;
//! `CLIP_BENCH_PYTHON` (default 100): the first that many for the Python tool (its audio clipper
//! takes most of a second per clip); `CLIP_BENCH_FILES` (default 8) source files;
//! `CLIP_BENCH_MEDIA` (`audio` or `spectrogram`) to run one media only. Not a test: it asserts
//! nothing.

#![allow(clippy::expect_used)] // a benchmark aborts on a broken setup

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use onc_pipe::clip::cut::{CutOutcome, CutRequest, DecodedFiles, Media, SourceFile, cut};
use onc_pipe::plan::{ClipFormat, GapPolicy};
use onc_sim::archive::{ArchiveFile, DeviceProfile, files_overlapping};

const DEVICE: &str = "ICLISTENHF6324";
const RATE: u32 = 64_000;
/// 2024-04-01T00:00:00Z in ms.
const START_MS: i64 = 1_711_929_600_000;
const EVENT_MS: i64 = 10_000;
const PAD_BEFORE_MS: i64 = 15_000;
const PAD_AFTER_MS: i64 = 20_000;
const SEED: u64 = 0x00C1_1B5E_ED00_0005;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// splitmix64: a seeded, dependency-free source of event times.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One source file on disk, both forms.
struct Source {
    file: ArchiveFile,
    flac_name: String,
    flac_path: PathBuf,
    mat_name: String,
    mat_path: PathBuf,
}

/// One event: its padded window and the indices of the sources overlapping it.
struct Event {
    index: usize,
    start_ns: i64,
    end_ns: i64,
    sources: Vec<usize>,
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).expect("write bench data");
    std::fs::rename(&tmp, path).expect("rename bench data");
}

/// Run `work(i)` for `i in 0..count` on `threads` threads pulling from a shared counter; the wall
/// time of the whole batch.
fn pool(threads: usize, count: usize, work: impl Fn(usize) + Sync) -> Duration {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    work(i);
                }
            });
        }
    });
    started.elapsed()
}

/// Generate (or reuse) the source files.
fn prepare_sources(dir: &Path, files: usize, threads: usize) -> Vec<Source> {
    let profile = DeviceProfile {
        code: DEVICE.into(),
        sample_rate: RATE,
    };
    // Files overlapping a generous stretch; keep the first `files` consecutive ones.
    let mut archive = files_overlapping(&profile, START_MS, START_MS + 20 * 60_000 * 10);
    archive.truncate(files);
    let sources: Vec<Source> = archive
        .into_iter()
        .map(|file| {
            let flac_name = file.filename("flac");
            let mat_name = onc_sim::mat::hsd_mat_filename(&file, 2, Some("OD"));
            Source {
                flac_path: dir.join(&flac_name),
                mat_path: dir.join(&mat_name),
                flac_name,
                mat_name,
                file,
            }
        })
        .collect();
    let missing = sources
        .iter()
        .filter(|s| !s.flac_path.exists() || !s.mat_path.exists())
        .count();
    if missing > 0 {
        println!(
            "  generating {missing} source files into {} …",
            dir.display()
        );
        let started = Instant::now();
        pool(threads, sources.len(), |i| {
            let s = &sources[i];
            if !s.flac_path.exists() {
                let bytes = onc_sim::flac::flac_bytes(&s.file).expect("simulated FLAC");
                write_atomically(&s.flac_path, &bytes);
            }
            if !s.mat_path.exists() {
                let bytes = onc_sim::mat::hsd_mat_bytes(&s.file, 2, Some("OD")).expect("sim MAT");
                write_atomically(&s.mat_path, &bytes);
            }
        });
        println!("  generated in {:.1} s", started.elapsed().as_secs_f64());
    }
    sources
}

fn make_events(sources: &[Source], count: usize) -> Vec<Event> {
    let first = sources.first().expect("at least one source").file.start_ms;
    let last = sources.last().expect("at least one source").file.end_ms();
    // Event start t: the padded window [t − 15 s, t + 30 s) lies inside the archive stretch.
    let lo = first + PAD_BEFORE_MS;
    let hi = last - EVENT_MS - PAD_AFTER_MS;
    let span = u64::try_from(hi - lo).expect("archive longer than a window");
    let mut state = SEED;
    (0..count)
        .map(|index| {
            let t = lo + i64::try_from(splitmix(&mut state) % span).expect("fits");
            let from_ms = t - PAD_BEFORE_MS;
            let to_ms = t + EVENT_MS + PAD_AFTER_MS;
            let overlapping = sources
                .iter()
                .enumerate()
                .filter(|(_, s)| s.file.start_ms < to_ms && s.file.end_ms() > from_ms)
                .map(|(i, _)| i)
                .collect();
            Event {
                index,
                start_ns: from_ms * 1_000_000,
                end_ns: to_ms * 1_000_000,
                sources: overlapping,
            }
        })
        .collect()
}

/// One clip, as the executor cuts it.
fn clip_one(
    sources: &[Source],
    event: &Event,
    media: Media,
    formats: &[ClipFormat],
    decoded: Option<&DecodedFiles>,
) -> usize {
    let files: Vec<SourceFile> = event
        .sources
        .iter()
        .map(|&i| {
            let s = &sources[i];
            match media {
                Media::Audio => SourceFile {
                    name: &s.flac_name,
                    path: &s.flac_path,
                },
                Media::Spectrogram => SourceFile {
                    name: &s.mat_name,
                    path: &s.mat_path,
                },
            }
        })
        .collect();
    let name = format!("event_{:04}", event.index);
    let outcome = cut(&CutRequest {
        media,
        formats,
        sources: &files,
        clip_start_ns: event.start_ns,
        clip_end_ns: event.end_ns,
        gaps: GapPolicy::Fill,
        device: DEVICE,
        description: "bench event",
        name: &name,
        decoded,
    })
    .expect("clip cuts");
    match outcome {
        CutOutcome::Pieces(pieces) => pieces
            .iter()
            .flat_map(|p| p.files.iter().map(|(_, b)| b.len()))
            .sum(),
        CutOutcome::Skipped(_) => 0,
    }
}

/// The decoding baseline of one audio clip: every source file decoded with claxon from its start
/// up to the clip end (or its own end), samples discarded. Returns the samples decoded.
fn decode_flac(sources: &[Source], event: &Event) -> u64 {
    let mut decoded = 0;
    for &i in &event.sources {
        let s = &sources[i];
        let offset_ns = i128::from(event.end_ns) - i128::from(s.file.start_ms) * 1_000_000;
        let need = u64::try_from((offset_ns * i128::from(RATE) + 999_999_999) / 1_000_000_000)
            .unwrap_or(0)
            .min(s.file.samples);
        let mut reader = claxon::FlacReader::open(&s.flac_path).expect("open FLAC");
        let mut blocks = reader.blocks();
        let mut buffer = Vec::new();
        let mut pos = 0u64;
        while pos < need {
            let Some(block) = blocks.read_next_or_eof(buffer).expect("decode FLAC") else {
                break;
            };
            pos += u64::from(block.duration());
            black_box(block.channel(0));
            buffer = block.into_buffer();
        }
        decoded += pos;
    }
    decoded
}

/// The decoding baseline of one spectrogram clip: every source MAT file read and inflated by our
/// MAT reader (as the clip does first), nothing clipped.
fn decode_mat(sources: &[Source], event: &Event) -> usize {
    let mut variables = 0;
    for &i in &event.sources {
        let bytes = std::fs::read(&sources[i].mat_path).expect("read MAT");
        let mat = onc_pipe::clip::mat::read_mat(&bytes).expect("parse MAT");
        variables += black_box(&mat).variables.len();
    }
    variables
}

struct Figures {
    pool_clip: Duration,
    pool_events: usize,
    single_clip: Duration,
    single_independent: Duration,
    single_decode: Duration,
    pool_decode: Duration,
    single_events: usize,
}

fn per_s(events: usize, time: Duration) -> f64 {
    events as f64 / time.as_secs_f64()
}

fn measure(
    sources: &[Source],
    events: &[Event],
    single: usize,
    threads: usize,
    media: Media,
) -> Figures {
    let formats: Vec<ClipFormat> = match media {
        Media::Audio => vec![ClipFormat::Flac],
        Media::Spectrogram => vec![ClipFormat::Npz],
    };
    let subset = &events[..single.min(events.len())];
    let decode = |event: &Event| match media {
        Media::Audio => {
            black_box(decode_flac(sources, event));
        }
        Media::Spectrogram => {
            black_box(decode_mat(sources, event));
        }
    };
    // Warm the page cache (the files are "cached" on disk) and the allocator.
    for event in subset.iter().take(threads.max(2)) {
        black_box(clip_one(sources, event, media, &formats, None));
    }
    // As the executor cuts a run's clips: decoded spectrogram files shared within the run, with
    // the executor's memory budget (audio is decoded per clip either way).
    let shared = DecodedFiles::new(96 << 20);
    let pool_clip = pool(threads, events.len(), |i| {
        black_box(clip_one(
            sources,
            &events[i],
            media,
            &formats,
            Some(&shared),
        ));
    });
    let pool_decode = pool(threads, subset.len(), |i| decode(&subset[i]));
    let shared = DecodedFiles::new(96 << 20);
    let single_clip = pool(1, subset.len(), |i| {
        black_box(clip_one(
            sources,
            &subset[i],
            media,
            &formats,
            Some(&shared),
        ));
    });
    // Each clip on its own, decoding every source again.
    let single_independent = pool(1, subset.len(), |i| {
        black_box(clip_one(sources, &subset[i], media, &formats, None));
    });
    let single_decode = pool(1, subset.len(), |i| decode(&subset[i]));
    Figures {
        pool_clip,
        pool_events: events.len(),
        single_clip,
        single_independent,
        single_decode,
        pool_decode,
        single_events: subset.len(),
    }
}

/// Where one thread's time goes, on a few events, through the same public functions `cut` uses.
fn breakdown(sources: &[Source], events: &[Event], media: Media) -> String {
    use onc_pipe::clip::audio::{AudioSource, clip_audio, write_flac};
    use onc_pipe::clip::mat::{read_mat, spectrogram_from_mat};
    use onc_pipe::clip::spectrogram::npz::{NpzMeta, write_npz};
    use onc_pipe::clip::spectrogram::{SpectrogramInput, clip_spectrogram};
    let mut parts = [Duration::ZERO; 3];
    for event in events {
        match media {
            Media::Audio => {
                let files: Vec<AudioSource> = event
                    .sources
                    .iter()
                    .map(|&i| AudioSource {
                        name: &sources[i].flac_name,
                        path: &sources[i].flac_path,
                    })
                    .collect();
                let t0 = Instant::now();
                let clips = clip_audio(&files, event.start_ns, event.end_ns, GapPolicy::Fill)
                    .expect("clip audio");
                let t1 = Instant::now();
                for clip in &clips {
                    black_box(write_flac(clip).expect("write FLAC"));
                }
                parts[0] += t1 - t0;
                parts[1] += t1.elapsed();
            }
            Media::Spectrogram => {
                let t0 = Instant::now();
                let mut spectrograms = Vec::new();
                for &i in &event.sources {
                    let bytes = std::fs::read(&sources[i].mat_path).expect("read MAT");
                    let mat = read_mat(&bytes).expect("parse MAT");
                    spectrograms.push(spectrogram_from_mat(&mat).expect("SpectData"));
                }
                let t1 = Instant::now();
                let inputs: Vec<SpectrogramInput> = event
                    .sources
                    .iter()
                    .zip(&spectrograms)
                    .map(|(&i, s)| SpectrogramInput {
                        name: &sources[i].mat_name,
                        psd: &s.psd,
                        nfreq: s.nfreq,
                        frequency_hz: &s.frequency_hz,
                        time_s: &s.time_s,
                    })
                    .collect();
                let (start_s, end_s) = (event.start_ns as f64 / 1e9, event.end_ns as f64 / 1e9);
                let clips = clip_spectrogram(&inputs, start_s, end_s, GapPolicy::Fill)
                    .expect("clip spectrogram");
                let t2 = Instant::now();
                for clip in &clips {
                    let meta = NpzMeta {
                        clip_start_s: start_s,
                        clip_end_s: end_s,
                        device: DEVICE,
                        description: "bench event",
                    };
                    black_box(write_npz(clip, &meta).expect("write NPZ"));
                }
                parts[0] += t1 - t0;
                parts[1] += t2 - t1;
                parts[2] += t2.elapsed();
            }
        }
    }
    let total: Duration = parts.iter().sum();
    let pct = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64().max(1e-12);
    match media {
        Media::Audio => format!(
            "decode sources up to the clip end {:.0}%, FLAC encode of the clip {:.0}%",
            pct(parts[0]),
            pct(parts[1])
        ),
        Media::Spectrogram => format!(
            "read + inflate + SpectData {:.0}%, column selection {:.0}%, NPZ write {:.0}%",
            pct(parts[0]),
            pct(parts[1]),
            pct(parts[2])
        ),
    }
}

/// The Python tool's figure for one media: `Ok((clips, seconds, note))` or why it was skipped.
fn run_python(
    data: &Path,
    events_json: &Path,
    media: &str,
    count: usize,
) -> Result<(usize, f64, String), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = target_dir().join("bench-venv");
    let setup = Command::new("sh")
        .arg(root.join("benches/clipping_python.sh"))
        .arg(&venv)
        .output()
        .map_err(|e| format!("could not run benches/clipping_python.sh: {e}"))?;
    if !setup.status.success() {
        let why = String::from_utf8_lossy(&setup.stderr);
        let why = why
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("installing onc-hydrophone-data failed: {why}"));
    }
    let output = Command::new(venv.join("bin/python"))
        .arg(root.join("benches/clip_python.py"))
        .args(["--data".as_ref(), data.as_os_str()])
        .args(["--events".as_ref(), events_json.as_os_str()])
        .args(["--media", media, "--count", &count.to_string()])
        .output()
        .map_err(|e| format!("could not run the Python harness: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok());
    match result {
        Some(v) if output.status.success() => {
            let clips = v["clips"].as_u64().unwrap_or(0) as usize;
            let seconds = v["seconds"].as_f64().unwrap_or(f64::NAN);
            let note = v["note"].as_str().unwrap_or("").to_owned();
            Ok((clips, seconds, note))
        }
        _ => {
            let err = String::from_utf8_lossy(&output.stderr);
            let why = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            Err(format!("the Python harness failed: {why}"))
        }
    }
}

fn events_json(sources: &[Source], events: &[Event]) -> String {
    let mut out = String::from("{\"events\": [\n");
    for (n, e) in events.iter().enumerate() {
        let flac: Vec<String> = e
            .sources
            .iter()
            .map(|&i| format!("\"{}\"", sources[i].flac_name))
            .collect();
        let mat: Vec<String> = e
            .sources
            .iter()
            .map(|&i| format!("\"{}\"", sources[i].mat_name))
            .collect();
        let _ = writeln!(
            out,
            "  {{\"index\": {}, \"start_ns\": {}, \"end_ns\": {}, \"event_start_ns\": {}, \
             \"event_end_ns\": {}, \"flac\": [{}], \"mat\": [{}]}}{}",
            e.index,
            e.start_ns,
            e.end_ns,
            e.start_ns + PAD_BEFORE_MS * 1_000_000,
            e.end_ns - PAD_AFTER_MS * 1_000_000,
            flac.join(", "),
            mat.join(", "),
            if n + 1 < events.len() { "," } else { "" }
        );
    }
    out.push_str("]}\n");
    out
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let count = env_count("CLIP_BENCH_EVENTS", 1000).max(1);
    let single = env_count("CLIP_BENCH_SINGLE", 100).clamp(1, count);
    let python_count = env_count("CLIP_BENCH_PYTHON", 100).min(count);
    let only = std::env::var("CLIP_BENCH_MEDIA").unwrap_or_default();
    let files = env_count("CLIP_BENCH_FILES", 8).max(2);
    let dir = target_dir().join("bench-data");
    std::fs::create_dir_all(&dir).expect("bench data dir");

    println!(
        "clipping benchmark: {count} events (10 s + 15 s / 20 s padding = 45 s windows), \
         {files} cached {RATE} Hz files of {DEVICE}, {threads} CPUs"
    );
    let sources = prepare_sources(&dir, files, threads);
    let events = make_events(&sources, count);
    let crossing = events.iter().filter(|e| e.sources.len() > 1).count();
    let flac_mb: u64 = sources
        .iter()
        .map(|s| std::fs::metadata(&s.flac_path).map_or(0, |m| m.len()))
        .sum();
    let mat_mb: u64 = sources
        .iter()
        .map(|s| std::fs::metadata(&s.mat_path).map_or(0, |m| m.len()))
        .sum();
    println!(
        "  sources: {} FLAC ({:.1} MB) + {} plotRes MAT ({:.1} MB), {:.1} min of archive; \
         {crossing} of {count} windows cross a file boundary",
        sources.len(),
        flac_mb as f64 / 1e6,
        sources.len(),
        mat_mb as f64 / 1e6,
        (sources.last().map_or(0, |s| s.file.end_ms())
            - sources.first().map_or(0, |s| s.file.start_ms)) as f64
            / 60_000.0
    );
    let events_path = dir.join("events.json");
    std::fs::write(&events_path, events_json(&sources, &events)).expect("write events.json");

    for (media, label, python_media) in [
        (Media::Audio, "audio (FLAC sources → FLAC clip)", "audio"),
        (
            Media::Spectrogram,
            "spectrogram (plotRes MAT sources → NPZ clip)",
            "spectrogram",
        ),
    ] {
        if !only.is_empty() && only != python_media {
            continue;
        }
        println!("\n{label}");
        let f = measure(&sources, &events, single, threads, media);
        let pool_rate = per_s(f.pool_events, f.pool_clip);
        let single_rate = per_s(f.single_events, f.single_clip);
        println!(
            "  onc-pipe, {threads} threads:   {pool_rate:>8.2} clips/s  ({} clips in {:.2} s)",
            f.pool_events,
            f.pool_clip.as_secs_f64()
        );
        println!(
            "  onc-pipe, 1 thread:    {single_rate:>8.2} clips/s  ({} clips in {:.2} s)",
            f.single_events,
            f.single_clip.as_secs_f64()
        );
        println!(
            "  onc-pipe, 1 thread, every clip decoding its sources alone: {:>8.2} clips/s",
            per_s(f.single_events, f.single_independent)
        );
        let decode_what = match media {
            Media::Audio => "claxon decodes each clip's sources from the start to the clip end",
            Media::Spectrogram => "read + inflate each clip's MAT files with our MAT reader",
        };
        let pool_decode_rate = per_s(f.single_events, f.pool_decode);
        let single_decode_rate = per_s(f.single_events, f.single_decode);
        println!("  decode baseline ({decode_what}):");
        println!(
            "    {threads} threads: {pool_decode_rate:>8.2} clips/s, 1 thread: \
             {single_decode_rate:>8.2} clips/s ({} clips)",
            f.single_events
        );
        println!(
            "  ratio clip time / decode time: 1 thread {:.2}x, {threads} threads {:.2}x",
            single_decode_rate / single_rate,
            pool_decode_rate / pool_rate
        );
        let sample = &events[..events.len().min(20)];
        println!(
            "  one thread's time ({} clips): {}",
            sample.len(),
            breakdown(&sources, sample, media)
        );
        if python_count == 0 {
            println!("  Python tool: skipped (CLIP_BENCH_PYTHON=0)");
            continue;
        }
        match run_python(&dir, &events_path, python_media, python_count) {
            Ok((clips, seconds, note)) => {
                let rate = clips as f64 / seconds;
                println!(
                    "  Python tool (onc-hydrophone-data), 1 process: {rate:>8.2} clips/s \
                     ({clips} clips in {seconds:.2} s)"
                );
                if !note.is_empty() {
                    println!("    timed: {note}");
                }
                println!(
                    "  ratio onc-pipe / Python: {threads} threads {:.1}x, 1 thread {:.1}x \
                     (target: at least 10x)",
                    pool_rate / rate,
                    single_rate / rate
                );
            }
            Err(why) => println!("  Python tool: skipped ({why})"),
        }
    }
}
