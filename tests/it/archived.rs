//! Archived spectrograms and other archived products: `archive = "mat"` lists and downloads ONC's
//! pre-generated `-spect.mat` files and cuts spectrogram clips from them with no ONC job,
//! `archive = "png"` downloads the pictures, a clip over pictures is refused before anything is
//! asked of ONC, and an archive extension must look like one.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use chrono::DateTime;
use onc_pipe::clip::mat::{read_mat, spectrogram_from_mat};
use onc_pipe::onc::{Backoff, ClientConfig, OncClient, Token};
use onc_sim::archive::{DeviceProfile, files_starting_in};
use onc_sim::oracle::psd_db_stored;
use onc_sim::{SimConfig, SimHandle, start};

use crate::support::Scratch;

const TOKEN: &str = "a4c41e00-archived-token-7e1d";
const DEVICE: &str = "ICLISTENHF6324";
/// The simulated device whose archive holds no spectrogram files.
const WITHOUT_SPECTROGRAMS: &str = "ICLISTENHF1951";
const RATE: u32 = 8_000;

async fn simulator() -> SimHandle {
    let config = SimConfig {
        sample_rate: RATE,
        time_scale: 0.002,
        ..SimConfig::default()
    };
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the real binary with a token, off the async workers (the simulator runs on them).
async fn onc_pipe(dir: &Path, args: &[&str]) -> Ran {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
            .args(&args)
            .current_dir(&dir)
            .env("ONC_TOKEN", TOKEN)
            .env_remove("ONC_BASE_URL")
            .output()
            .unwrap();
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

fn ms(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

/// A window across a file boundary, clipped from archived spectrogram MAT files, and the
/// archived pictures of the same window; `clip_fetch` names the stages the clip cuts.
fn manifest(base_url: &str, clip_fetch: &str) -> String {
    format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{base_url}"

[output]
dir = "data"
cache = "cache"

[plan.events]
device = "{DEVICE}"
windows = [
  {{ start = 2024-04-01T04:26:20Z, end = 2024-04-01T04:26:40Z, label = "across a file boundary", name = "boundary" }},
]

[fetch.spectra]
plan = "events"
archive = "mat"

[fetch.pictures]
plan = "events"
archive = "png"

[clip.events]
plan = "events"
fetch = {clip_fetch}
pad_before = "10s"
pad_after = "15s"
spectrogram = ["npz", "mat", "png"]
"#
    )
}

/// Every column of a spectrogram clip lies in the clip and equals the oracle; none is a gap.
fn check_spectrogram_clip(path: &Path, clip_start: &str, clip_end: &str) -> usize {
    let clip = spectrogram_from_mat(&read_mat(&std::fs::read(path).unwrap()).unwrap()).unwrap();
    let (start, end) = (ms(clip_start) as f64 / 1e3, ms(clip_end) as f64 / 1e3);
    assert!(!clip.time_s.is_empty());
    for (j, &t) in clip.time_s.iter().enumerate() {
        assert!(t >= start - 1e-3 && t < end, "column {j} at {t}");
        let column = &clip.psd[j * clip.nfreq..(j + 1) * clip.nfreq];
        let t_ms = (t * 1000.0).round() as i64;
        for (i, &f) in clip.frequency_hz.iter().enumerate() {
            let expected = psd_db_stored(DEVICE, t_ms, f);
            let same = (expected.is_nan() && column[i].is_nan()) || expected == column[i];
            assert!(same, "column {j}, bin {i}: {} vs {expected}", column[i]);
        }
    }
    clip.time_s.len()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_mat_stage_clips_spectrograms_with_no_onc_job() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, "\"spectra\""));
    let ran = onc_pipe(
        scratch.path(),
        &["run", "m.toml", "--json", "--no-progress"],
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let summary: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(summary["clips_written"], 1, "{summary}");

    // The clip: columns from both files across the boundary, every value the oracle's.
    let clips = scratch
        .path()
        .join(format!("data/{DEVICE}/events/clips/spectrograms"));
    let columns = check_spectrogram_clip(
        &clips.join("boundary.mat"),
        "2024-04-01T04:26:10Z",
        "2024-04-01T04:26:55Z",
    );
    // 45 s at a column every 0.3 s.
    assert!((149..=151).contains(&columns), "{columns} columns");
    for extension in ["npz", "png", "json"] {
        assert!(clips.join(format!("boundary.{extension}")).is_file());
    }
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(clips.join("boundary.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["media"], "spectrogram");
    let sources = sidecar["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 2, "{sidecar}");
    for source in sources {
        let file = source["file"].as_str().unwrap();
        assert!(
            file.starts_with(&format!("{DEVICE}_2024")) && file.ends_with("Z-spect.mat"),
            "{file}"
        );
        assert_eq!(source["dp_request_id"], serde_json::Value::Null);
    }

    // The archived files, as ONC names them: MAT beside the product MATs, pictures in png/.
    let device_dir = scratch.path().join(format!("data/{DEVICE}/events"));
    let mats = files_in(&device_dir.join("mat"));
    let pngs = files_in(&device_dir.join("png"));
    assert_eq!(mats.len(), 2, "{mats:?}");
    assert_eq!(
        mats.iter()
            .map(|m| m.replace("-spect.mat", "-spect.png"))
            .collect::<Vec<_>>(),
        pngs
    );
    for png in &pngs {
        let bytes = std::fs::read(device_dir.join("png").join(png)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{png}");
    }

    // No ONC job: listings and downloads only.
    let stats = sim.stats();
    assert_eq!(stats.submissions, 0);
    assert_eq!(stats.runs, 0);
    assert!(
        stats
            .requests_by_endpoint
            .keys()
            .all(|endpoint| !endpoint.starts_with("dataProductDelivery")),
        "{:?}",
        stats.requests_by_endpoint
    );
    assert_eq!(stats.requests_by_endpoint["archivefile/device"], 2);
    assert_eq!(stats.requests_by_endpoint["archivefile/download"], 4);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_over_archived_pictures_is_refused_before_any_request() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write(
        "m.toml",
        &manifest(&sim.base_url, "[\"spectra\", \"pictures\"]"),
    );
    let expected = "m.toml:27:21: error: fetch stage `pictures` fetches archived `png` files, which cannot be clipped\n\
         27 | fetch = [\"spectra\", \"pictures\"]\n\
         \x20  |                     ^^^^^^^^^^\n\
         \x20 = help: a clip cuts audio (`archive = \"flac\"` or `\"wav\"`) or spectrogram data (`archive = \"mat\"`, or `product = \"HSD\"` with `extension = \"mat\"`); a picture cannot be cut: remove this stage from `fetch`\n\n";
    let validated = onc_pipe(scratch.path(), &["validate", "m.toml"]).await;
    assert_eq!(validated.code, 2);
    assert_eq!(validated.stderr, expected);
    let ran = onc_pipe(scratch.path(), &["run", "m.toml", "--no-progress"]).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert_eq!(ran.stderr.trim_end(), expected.trim_end());
    assert_eq!(sim.stats().requests_total, 0);
    assert!(!scratch.path().join("data").exists());
    sim.stop().await;
}

#[test]
fn an_archive_extension_must_look_like_one() {
    let scratch = Scratch::new();
    let stage = |archive: &str| {
        format!(
            "#:schema ../schemas/manifest.schema.json\nversion = 1\n\
             [plan.a]\ndevice = \"{DEVICE}\"\nrange = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }}\n\
             [fetch.f]\nplan = \"a\"\narchive = \"{archive}\"\n"
        )
    };
    scratch.write("m.toml", &stage(".Mat"));
    let output = crate::support::onc_pipe(scratch.path(), &["validate", "m.toml"]);
    assert_eq!(output.code, 2);
    assert_eq!(
        output.stderr,
        "m.toml:8:11: error: invalid archive file type `.Mat`: an extension is 1 to 8 lowercase letters or digits, without the dot\n\
         8 | archive = \".Mat\"\n\
         \x20 |           ^^^^^^\n\
         \x20 = help: e.g. flac, wav, mat, png\n\n"
    );
    // A near miss of a known extension is listed as given, with a warning.
    scratch.write("m.toml", &stage("falc"));
    let output = crate::support::onc_pipe(scratch.path(), &["validate", "m.toml"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert_eq!(
        output.stderr,
        "m.toml:8:11: warning: archive file type `falc` is not one onc-pipe knows; it is listed at ONC as given\n\
         8 | archive = \"falc\"\n\
         \x20 |           ^^^^^^\n\
         \x20 = help: did you mean `flac`?\n\n"
    );
    // Any other extension ONC archives is accepted as it is.
    for archive in ["mat", "png", "txt"] {
        scratch.write("m.toml", &stage(archive));
        let output = crate::support::onc_pipe(scratch.path(), &["validate", "m.toml"]);
        assert_eq!(output.code, 0, "{archive}: {}", output.stderr);
        assert_eq!(output.stderr, "", "{archive}");
    }
}

fn client(sim: &SimHandle) -> OncClient {
    let mut config = ClientConfig::new(sim.base_url.clone(), Token::new(TOKEN.to_owned()));
    config.backoff = Backoff::new(
        std::time::Duration::from_millis(5),
        std::time::Duration::from_millis(40),
        4,
    );
    OncClient::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_archives_spectrograms_beside_the_audio_except_on_one_device() {
    let sim = simulator().await;
    let client = client(&sim);
    let (from, to) = ("2024-04-01T00:00:00.000Z", "2024-04-01T01:00:00.000Z");
    let list = |device: &'static str, extension: &'static str| {
        let client = &client;
        async move {
            client
                .list_archive_by_device(device, from, to, extension)
                .await
                .unwrap()
        }
    };
    let audio = list(DEVICE, "flac").await;
    let profile = DeviceProfile {
        code: DEVICE.into(),
        sample_rate: RATE,
    };
    let sources = files_starting_in(&profile, ms(from), ms(to));
    assert_eq!(audio.len(), sources.len());
    for extension in ["mat", "png"] {
        let listed = list(DEVICE, extension).await;
        assert_eq!(listed.len(), audio.len(), "{extension}");
        for (entry, flac) in listed.iter().zip(&audio) {
            // One stamp, the audio file's, then `-spect`.
            assert_eq!(
                entry.filename,
                flac.filename
                    .replace(".flac", &format!("-spect.{extension}"))
            );
            assert_eq!(entry.start_ms(), flac.start_ms());
            assert!(entry.file_size().is_some_and(|size| size > 0));
        }
    }

    // The MAT file: SpectData/Meta as the plotRes product, values from the oracle.
    let dir = tempfile::tempdir().unwrap();
    let first = &list(DEVICE, "mat").await[0];
    let file = client
        .download_archive(&first.filename, dir.path())
        .await
        .unwrap();
    assert_eq!(file.filename, first.filename);
    let mat = read_mat(&std::fs::read(&file.temp_path).unwrap()).unwrap();
    let spectrogram = spectrogram_from_mat(&mat).unwrap();
    assert_eq!(
        spectrogram.time_s.len(),
        (sources[0].duration_ms() / 300) as usize
    );
    assert_eq!(
        (spectrogram.time_s[0] * 1000.0).round() as i64,
        sources[0].start_ms
    );
    for (j, &t) in spectrogram.time_s.iter().enumerate().step_by(97) {
        let t_ms = (t * 1000.0).round() as i64;
        for (i, &f) in spectrogram.frequency_hz.iter().enumerate() {
            let value = spectrogram.psd[j * spectrogram.nfreq + i];
            let expected = psd_db_stored(DEVICE, t_ms, f);
            assert!(
                (value.is_nan() && expected.is_nan()) || value == expected,
                "{j}, {i}"
            );
        }
    }
    let picture = &list(DEVICE, "png").await[0];
    let file = client
        .download_archive(&picture.filename, dir.path())
        .await
        .unwrap();
    assert!(
        std::fs::read(&file.temp_path)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );

    // A device whose archive has audio but no spectrogram files: empty listings, and 96 for
    // a name of the right form.
    assert!(!list(WITHOUT_SPECTROGRAMS, "flac").await.is_empty());
    assert!(list(WITHOUT_SPECTROGRAMS, "mat").await.is_empty());
    assert!(list(WITHOUT_SPECTROGRAMS, "png").await.is_empty());
    let audio = list(WITHOUT_SPECTROGRAMS, "flac").await;
    let name = audio[0].filename.replace(".flac", "-spect.mat");
    let error = client
        .download_archive(&name, dir.path())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("File not found"), "{error}");
    // None before the device's deployment (ICLISTENHF6324 is at SEVIP from 2021-03-01).
    let before = client
        .list_archive_by_device(
            DEVICE,
            "2021-02-01T00:00:00.000Z",
            "2021-02-01T01:00:00.000Z",
            "mat",
        )
        .await
        .unwrap();
    assert!(before.is_empty(), "{before:?}");
    sim.stop().await;
}
