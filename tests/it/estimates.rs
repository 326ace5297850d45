//! Estimates: `plan --format json` carries bytes and ONC seconds; a run against the simulator
//! downloads what was estimated (within 25 %) and its record shows both; a run whose downloads
//! cannot fit the cache is refused before anything is ordered, unless `--force`.

use crate::support::{Scratch, onc_pipe, repo};

/// The seed's scenario 2 (`manifests/scenario2_sampling.toml`), against the in-process simulator
/// at `sample_rate`, on a fast clock; `count` five-minute files instead of 160.
fn scenario2(scratch: &Scratch, count: u32, sample_rate: u32, extra: &str) -> String {
    let text = std::fs::read_to_string(repo().join("manifests/scenario2_sampling.toml")).unwrap();
    assert!(text.contains("count = 160"), "scenario 2 changed: {text}");
    let text = text.replace("count = 160", &format!("count = {count}"))
        + &format!(
            "\n[onc.simulator]\nsample_rate = {sample_rate}\ntime_scale = 0.001\n{extra}\n\n[output]\ndir = \"out\"\ncache = \"cache\"\n"
        );
    scratch.write("scenario2.toml", &text);
    std::fs::write(
        scratch.path().join(".env"),
        "ONC_TOKEN=estimates-test-token\n",
    )
    .unwrap();
    "scenario2.toml".to_owned()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn plan_json_carries_estimated_bytes_and_onc_seconds() {
    let dir = repo();
    let planned = onc_pipe(
        &dir,
        &[
            "plan",
            "--format",
            "json",
            "manifests/scenario2_sampling.toml",
            "--cache-dir",
            &Scratch::new().path().join("cache").display().to_string(),
        ],
    );
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let estimate = &json(&planned.stdout)["estimate"];
    // 14 requests of ~12 plotRes files at 64 kHz: 166 files of ONC's 4 MB; ONC processes each
    // request in 5 s + 2.5 s per file (its 35 s for 12), and works ~25 s per file.
    let stage = &estimate["stages"][0];
    assert_eq!(stage["stage"], "plotres");
    assert_eq!(stage["production"], "on_demand");
    assert_eq!(stage["requests"], 14);
    assert_eq!(stage["files"], 166);
    assert_eq!(stage["bytes"], 664_000_000_u64);
    assert_eq!(stage["onc_seconds"], 14.0 * 5.0 + 166.0 * 2.5);
    assert_eq!(stage["onc_server_seconds"], 166.0 * 25.0);
    assert_eq!(estimate["total"]["bytes"], 664_000_000_u64);
    assert!(estimate["total"]["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(estimate["space"]["cache_free_bytes"].as_u64().is_some());
    assert_eq!(estimate["warnings"], serde_json::json!([]));
}

const WARNING: &str = "warning: fetch plotres: one request of 72 files takes about 3.1 min of ONC processing, longer than max_wait (2.0 min); per_request = 46 would fit";

#[test]
fn plan_text_names_onc_s_default_product_and_requests_longer_than_max_wait() {
    let scratch = Scratch::new();
    let text = std::fs::read_to_string(repo().join("manifests/scenario1_six_hours.toml"))
        .unwrap()
        .replace("max_wait = \"45m\"", "max_wait = \"2m\"")
        + "\n[fetch.averages]\nplan = \"six_hours\"\nproduct = \"HSD\"\nextension = \"mat\"\n";
    scratch.write("m.toml", &text);
    let planned = onc_pipe(scratch.path(), &["plan", "m.toml"]);
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let lines: Vec<&str> = planned.stdout.lines().collect();
    let line = |start: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{}", planned.stdout))
    };
    assert_eq!(
        line("  fetch averages:"),
        "  fetch averages: 6 requests, 72 files, 2.9 MB; pre-generated: one-minute MAT (dpo_spectralDataDownsample 1), 40 kB at 64 kHz; ONC processing 44 s"
    );
    assert_eq!(
        line("    no options given:"),
        "    no options given: ONC's default product: one-minute averages (dpo_spectralDataDownsample 1, 60 s columns, pre-generated)"
    );
    assert_eq!(
        line("  fetch plotres:"),
        "  fetch plotres: 1 request, 72 files, 288.0 MB; computed on demand: plotRes MAT (dpo_spectralDataDownsample 2), 4 MB at 64 kHz; ONC processing 3.1 min, 30.0 min of ONC server time"
    );
    // 5 s + 72 x 2.5 s = 185 s > 120 s; 5 s + 46 x 2.5 s = 120 s.
    assert_eq!(line("warning:"), WARNING);
}

/// What a run of `count` files of scenario 2 at `sample_rate` downloaded against what `plan`
/// estimated, from the run record: (estimated, actual) bytes, then (estimated, actual) files.
fn estimated_and_downloaded(count: u32, sample_rate: u32) -> ((u64, u64), (u64, u64)) {
    let scratch = Scratch::new();
    let manifest = scenario2(&scratch, count, sample_rate, "");
    let ran = onc_pipe(
        scratch.path(),
        &[
            "run",
            &manifest,
            "--base-url",
            "simulator",
            "--json",
            "--no-progress",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let record = json(&ran.stdout);
    let both = &record["estimate_vs_actual"];
    assert_eq!(both["bytes"]["actual"], record["bytes_downloaded"]);
    assert_eq!(both["files"]["actual"], record["files_downloaded"]);
    assert!(both["wall_seconds"]["estimated"].as_f64().unwrap() > 0.0);
    assert_eq!(both["wall_seconds"]["actual"], record["wall_seconds"]);
    // The run record in the cache says the same.
    let runs: Vec<_> = std::fs::read_dir(scratch.path().join("cache/runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let stored = json(&std::fs::read_to_string(runs[0].path()).unwrap());
    assert_eq!(stored["estimate_vs_actual"]["bytes"], both["bytes"]);
    // The summary says it in one line.
    assert!(
        ran.stderr
            .lines()
            .any(|l| l.starts_with("estimated ") && l.contains("; downloaded ")),
        "{}",
        ran.stderr
    );
    let pair = |what: &str| {
        (
            both[what]["estimated"].as_u64().unwrap(),
            both[what]["actual"].as_u64().unwrap(),
        )
    };
    (pair("bytes"), pair("files"))
}

#[test]
fn the_run_record_shows_estimated_and_actual_bytes_and_time() {
    // A small, fast run: one request of 55 minutes (11 files) at the tests' 8 kHz.
    let ((estimated, actual), _) = estimated_and_downloaded(12, 8_000);
    assert_eq!(estimated, 11 * 500_000, "4 MB at 64 kHz is 0.5 MB at 8 kHz");
    assert!(actual > 0);
}

/// Scenario 2 at ONC's real 64 kHz (two of its 14 requests: 24 files): the estimate, calibrated
/// on ONC's own 48 MB for 12 plotRes files, is within 25 % of what the run downloads from the
/// simulator, whose files are ONC-sized (about 4 MB; measured ratio 1.05).
#[test]
fn scenario2_downloads_what_plan_estimated_within_a_quarter() {
    let ((estimated, actual), (estimated_files, files)) = estimated_and_downloaded(24, 64_000);
    let ratio = actual as f64 / estimated as f64;
    eprintln!(
        "downloaded {actual} bytes in {files} files, estimated {estimated} in {estimated_files}: ratio {ratio:.3}"
    );
    assert!(
        (0.75..=1.25).contains(&ratio),
        "downloaded {actual} bytes in {files} files, estimated {estimated} in {estimated_files}: ratio {ratio:.3}"
    );
}

#[test]
fn a_run_that_cannot_fit_is_refused_before_any_request_unless_forced() {
    // At 4 GHz a plotRes file is ~250 GB by the model: no test machine has room for 11.
    // Every ONC run fails at once, so a forced run never makes the simulator write one.
    let scratch = Scratch::new();
    let manifest = scenario2(&scratch, 12, 4_000_000_000, "faults = \"failed-run=1\"");
    let args = [
        "run",
        manifest.as_str(),
        "--base-url",
        "simulator",
        "--no-progress",
    ];
    let refused = onc_pipe(scratch.path(), &args);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    let message = refused.stderr.trim_end();
    assert!(
        message.starts_with("onc-pipe: cannot start: about 2.8 TB to download does not fit the ")
            && message
                .ends_with("; free some space, choose another --cache-dir, or run with --force")
            && message.contains(" free on the file system of the cache "),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one message: {message}");
    // Nothing was ordered: no journal entry, no run record, no output.
    let outputs = std::fs::read_dir(scratch.path().join("out"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(outputs, 0, "nothing in the output tree");
    let records = std::fs::read_dir(scratch.path().join("cache/runs"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert_eq!(records, 0, "no run record");
    let status = onc_pipe(scratch.path(), &["status", manifest.as_str()]);
    assert!(
        status.stdout.contains("0 in flight, 1 to run"),
        "{}",
        status.stdout
    );

    let mut forced = args.to_vec();
    forced.push("--force");
    let ran = onc_pipe(scratch.path(), &forced);
    assert_eq!(
        ran.code, 1,
        "the gate is passed, the runs fail: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("does not fit"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("1 submission, 0 resumed"),
        "{}",
        ran.stderr
    );
}
