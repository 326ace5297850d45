//! Every seed scenario manifest runs to completion against the in-process simulator, and every
//! file it downloads is byte-for-byte what the simulator generates for that source file (whose
//! content the simulator's own tests check against the oracle, sample by sample and cell by
//! cell).

use std::path::Path;

use onc_format::stamp::times_in_name;
use onc_sim::archive::{DeviceProfile, files_overlapping};
use onc_sim::flac::flac_bytes;
use onc_sim::mat::{hsd_mat_bytes, hsd_mat_filename};

use crate::support::{Scratch, onc_pipe, repo};

const SAMPLE_RATE: u32 = 8_000;

/// Copies `manifests/` into a scratch folder (request files included), runs `name` there on the
/// simulator at a fast clock, and checks the run record and every output file.
fn run_scenario(name: &str, expected_files: usize) {
    let scratch = Scratch::new();
    let folder = scratch.path().join("manifests");
    std::fs::create_dir_all(folder.join("requests")).unwrap();
    for sub in ["", "requests"] {
        for entry in std::fs::read_dir(repo().join("manifests").join(sub))
            .unwrap()
            .flatten()
        {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), folder.join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    let manifest = folder.join(name);
    let mut text = std::fs::read_to_string(&manifest).unwrap();
    text.push_str(&format!(
        "\n[onc.simulator]\nsample_rate = {SAMPLE_RATE}\ntime_scale = 0.001\n"
    ));
    std::fs::write(&manifest, text).unwrap();

    let args = [
        "run",
        name,
        "--base-url",
        "simulator",
        "--json",
        "--no-progress",
    ];
    let ran = onc_pipe(&folder, &args);
    assert_eq!(ran.code, 0, "{name}: {}", ran.stderr);
    let record: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(record["failures"], serde_json::json!([]), "{name}");
    assert_eq!(record["runs_errors"], 0, "{name}");
    assert_eq!(record["runs_downloaded"], record["runs_total"], "{name}");

    let output = folder.join(output_dir(&folder.join(name)));
    // The catalog: one row per clip (checked in `catalog.rs`); the rest are ONC's files and clips.
    let catalog = output.join("catalog.csv");
    let rows = csv::Reader::from_path(&catalog).unwrap().records().count();
    let (clips, files): (Vec<_>, Vec<_>) = files_under(&output)
        .into_iter()
        .filter(|path| *path != catalog)
        .partition(|path| path.components().any(|c| c.as_os_str() == "clips"));
    assert_eq!(files.len(), expected_files, "{name}: {files:#?}");
    for path in &files {
        check_against_simulator(path);
    }
    // Clips (checked against the oracle in `clips.rs`): each with its sidecar.
    let written = record["clips_written"].as_u64().unwrap() as usize;
    let sidecars = clips
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .count();
    assert_eq!(sidecars, written, "{name}: {clips:#?}");
    assert_eq!(rows, sidecars, "{name}: one catalog row per clip");
}

/// The manifest's `output.dir` (default `data`).
fn output_dir(manifest: &Path) -> String {
    let text = std::fs::read_to_string(manifest).unwrap();
    let value: toml::Table = toml::from_str(&text).unwrap();
    value
        .get("output")
        .and_then(|o| o.get("dir"))
        .and_then(|d| d.as_str())
        .unwrap_or("data")
        .to_owned()
}

fn files_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// The file's bytes equal the simulator's rendering of the archive file its name points to.
fn check_against_simulator(path: &Path) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let device = name.split('_').next().unwrap().to_owned();
    let start = times_in_name(&name)
        .0
        .unwrap_or_else(|| panic!("no time in {name}"));
    let profile = DeviceProfile {
        code: device,
        sample_rate: SAMPLE_RATE,
    };
    let source = files_overlapping(&profile, start, start + 1)
        .into_iter()
        .find(|f| f.start_ms == start)
        .unwrap_or_else(|| panic!("{name}: no archived file starts at its time"));
    let actual = std::fs::read(path).unwrap();
    let expected = if name.ends_with(".flac") {
        flac_bytes(&source).unwrap()
    } else if name.ends_with(".mat") {
        let (downsample, diversion) = [0, 1, 2]
            .into_iter()
            .flat_map(|d| [None, Some("OD"), Some("LPF"), Some("HPF")].map(|m| (d, m)))
            .find(|&(d, m)| hsd_mat_filename(&source, d, m) == name)
            .unwrap_or_else(|| panic!("{name}: not a simulator MAT name"));
        hsd_mat_bytes(&source, downsample, diversion).unwrap()
    } else {
        panic!("unexpected output {name}");
    };
    assert!(
        actual == expected,
        "{name} differs from the simulator's file"
    );
}

/// Files of the simulated archive overlapping `[from, to)` (RFC 3339).
fn archive_files(from: &str, to: &str) -> usize {
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    };
    let profile = DeviceProfile {
        code: "ICLISTENHF6324".into(),
        sample_rate: SAMPLE_RATE,
    };
    files_overlapping(&profile, ms(from), ms(to)).len()
}

// Expected counts are the simulated archive's: its files start off the five-minute grid (so a
// window usually touches one more file than its nominal count) and about 1 in 60 is missing.

#[test]
fn scenario1_six_hours_runs_to_completion() {
    let expected = archive_files("2024-04-01T00:00:00Z", "2024-04-01T06:00:00Z");
    assert_eq!(expected, 71);
    run_scenario("scenario1_six_hours.toml", expected);
}

#[test]
fn scenario2_sampling_runs_to_completion() {
    run_scenario("scenario2_sampling.toml", 167);
}

#[test]
fn scenario3_explicit_windows_runs_to_completion() {
    run_scenario("scenario3_explicit_windows.toml", 6);
}

#[test]
fn scenario4_json_requests_runs_to_completion() {
    run_scenario("scenario4_json_requests.toml", 10);
}

#[test]
fn scenario5_custom_fft_runs_to_completion() {
    run_scenario("scenario5_custom_fft.toml", 2);
}

#[test]
fn scenario6_flac_range_runs_to_completion() {
    let expected = archive_files("2024-04-01T12:00:00Z", "2024-04-01T12:05:00Z");
    assert_eq!(expected, 2);
    run_scenario("scenario6_flac_range.toml", expected);
}

#[test]
fn the_demo_runs_to_completion() {
    run_scenario("demo.toml", 11);
}
