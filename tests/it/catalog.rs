//! `catalog.csv`: one row per clip the manifest produces, written by every run (a no-op one
//! too), with the paths a notebook opens, the filled gaps and coverage, and the run's warning
//! about gap-filled clips; a renamed event's old files are not listed.

use std::collections::BTreeMap;
use std::path::Path;

use crate::clips::{a_gap_after, manifest};
use crate::support::{Scratch, onc_pipe};

fn run(dir: &Path) -> (serde_json::Value, String) {
    let ran = onc_pipe(dir, &["run", "m.toml", "--json", "--no-progress"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    (serde_json::from_str(&ran.stdout).unwrap(), ran.stderr)
}

/// The catalog's rows as column → value maps.
fn catalog(dir: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(dir.join("data/catalog.csv")).unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header, onc_pipe::catalog::HEADER);
    reader
        .records()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

fn number(row: &BTreeMap<String, String>, column: &str) -> f64 {
    row[column].parse().unwrap()
}

#[test]
fn every_run_writes_one_row_per_clip_with_its_paths_gaps_and_coverage() {
    let gap = a_gap_after("2024-04-02T00:00:00Z");
    let gap_window = (gap.0 - 20_000, gap.1 + 20_000);
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("15s", gap_window));
    let (first, stderr) = run(scratch.path());
    assert_eq!(first["clips_written"], 4, "{first}");
    let rows = catalog(scratch.path());
    assert_eq!(rows.len(), 4);
    let data = scratch.path().join("data");
    for row in &rows {
        for path in row["paths"].split(';').chain([row["sidecar"].as_str()]) {
            assert!(data.join(path).is_file(), "{path}");
        }
        assert_eq!(row["stage"], "events");
        assert_eq!(row["device"], "ICLISTENHF6324");
        assert!(!row["node_key"].is_empty() && !row["source_files"].is_empty());
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data.join(&row["sidecar"])).unwrap())
                .unwrap();
        assert_eq!(row["first"], sidecar["first"].as_str().unwrap());
        assert_eq!(
            row["padded_end"],
            sidecar["padded_window"]["end"].as_str().unwrap()
        );
        assert_eq!(row["label"], sidecar["label"].as_str().unwrap());
    }
    // The spectrogram clip lists all three formats; the audio clip its FLAC.
    let spectrogram = rows
        .iter()
        .find(|row| row["media"] == "spectrogram" && row["name"] == "gap")
        .unwrap();
    assert_eq!(
        spectrogram["paths"].split(';').count(),
        3,
        "{spectrogram:?}"
    );
    assert!(!spectrogram["seconds_per_column"].is_empty());
    let audio = rows
        .iter()
        .find(|row| row["media"] == "audio" && row["name"] == "gap")
        .unwrap();
    assert!(audio["path"].ends_with("gap.flac"), "{audio:?}");
    assert_eq!(audio["sample_rate"], "8000");
    // The gap: filled seconds as the sidecar reports them (for audio, the missing file's
    // span), and the coverage of the padded window that leaves.
    let missing = (gap.1 - gap.0) as f64 / 1000.0;
    let padded = (gap_window.1 + 15_000 - (gap_window.0 - 10_000)) as f64 / 1000.0;
    assert!(
        (number(audio, "filled_gap_s") - missing).abs() < 0.01,
        "{audio:?}"
    );
    for row in rows.iter().filter(|row| row["name"] == "gap") {
        let sidecar: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(data.join(&row["sidecar"])).unwrap())
                .unwrap();
        let reported: f64 = sidecar["gaps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|gap| gap["seconds"].as_f64().unwrap())
            .sum();
        assert!(reported > 0.0, "{sidecar}");
        assert!(
            (number(row, "filled_gap_s") - reported).abs() < 1e-9,
            "{row:?}"
        );
        let coverage = number(row, "coverage");
        // Counted from the samples or columns taken from sources: within a column of it.
        assert!(
            (coverage - (1.0 - reported / padded)).abs() < 0.01,
            "{row:?}"
        );
    }
    for row in rows.iter().filter(|row| row["name"] == "boundary") {
        assert_eq!(number(row, "filled_gap_s"), 0.0, "{row:?}");
        assert!(number(row, "coverage") > 0.999, "{row:?}");
    }
    // The run says so, with a count, and its record lists the catalog and every clip file.
    assert!(
        stderr.contains("warning: 2 clips have gaps filled where ONC had no data"),
        "{stderr}"
    );
    assert_eq!(first["catalog"]["clips"], 4, "{first}");
    assert_eq!(first["catalog"]["gap_filled"], 2, "{first}");
    let outputs = first["catalog"]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 2 + 2 * 3, "{first}");
    for output in outputs {
        assert!(data.join(output.as_str().unwrap()).is_file(), "{output}");
    }

    // `plan --json` names the same files before anything is cut: what a workflow manager
    // declares.
    let planned = onc_pipe(scratch.path(), &["plan", "m.toml", "--json", "--offline"]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
    let mut declared: Vec<String> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|node| node["outputs"].as_array().cloned().unwrap_or_default())
        .map(|path| path.as_str().unwrap().to_owned())
        .collect();
    declared.sort();
    let mut written: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            row["paths"]
                .split(';')
                .map(str::to_owned)
                .chain([row["sidecar"].clone()])
                .collect::<Vec<_>>()
        })
        .collect();
    written.sort();
    assert_eq!(declared, written);

    // A no-op re-run writes it again (here: after it was deleted), asking ONC nothing.
    std::fs::remove_file(data.join("catalog.csv")).unwrap();
    let (again, _) = run(scratch.path());
    assert_eq!(again["http_requests"], 0, "{again}");
    assert_eq!(catalog(scratch.path()), rows);

    // A renamed event: its new clips are listed, its old files (still on disk) are not.
    let renamed = manifest("15s", gap_window).replace("name = \"gap\"", "name = \"gap_renamed\"");
    scratch.write("m.toml", &renamed);
    run(scratch.path());
    let rows = catalog(scratch.path());
    assert_eq!(rows.len(), 4);
    assert!(rows.iter().all(|row| row["name"] != "gap"), "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r["name"] == "gap_renamed").count(),
        2
    );
    assert!(
        data.join("ICLISTENHF6324/events/clips/audio/gap.flac")
            .is_file()
    );
}

#[test]
fn min_coverage_skips_the_clips_with_too_little_data_and_says_why() {
    let gap = a_gap_after("2024-04-02T00:00:00Z");
    let gap_window = (gap.0 - 20_000, gap.1 + 20_000);
    let scratch = Scratch::new();
    let text = manifest("15s", gap_window).replace(
        "audio = \"flac\"\n",
        "audio = \"flac\"\nmin_coverage = 0.95\n",
    );
    assert!(text.contains("min_coverage"));
    scratch.write("m.toml", &text);
    let ran = onc_pipe(
        scratch.path(),
        &["run", "m.toml", "--json", "--no-progress"],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let record: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    // The two clips across the gap (a 5-minute file missing from a window of about 6) are
    // skipped; the two across a file boundary are whole.
    assert_eq!(record["clips_written"], 2, "{record}");
    assert_eq!(record["clips_skipped"], 2, "{record}");
    assert!(
        ran.stderr.contains("less than min_coverage 0.95 (95.0 %)"),
        "{}",
        ran.stderr
    );
    let rows = catalog(scratch.path());
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["name"], "boundary");
        assert!(number(row, "coverage") > 0.999, "{row:?}");
    }
    assert!(
        !scratch
            .path()
            .join("data/ICLISTENHF6324/events/clips/audio/gap.flac")
            .exists()
    );
    // Out of range: refused before anything is ordered, at its line.
    scratch.write(
        "bad.toml",
        &text.replace("min_coverage = 0.95", "min_coverage = 95"),
    );
    let bad = onc_pipe(scratch.path(), &["validate", "bad.toml"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr
            .contains("`min_coverage` must lie between 0 and 1, not 95"),
        "{}",
        bad.stderr
    );
}
