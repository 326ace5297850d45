//! `onc-pipe run` end to end against the simulator: cached re-runs make no request, a run on a
//! cache held exclusively exits 3, killed runs resume without resubmitting, a flaky server is
//! survived, and the token never leaks.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use onc_sim::faults::FaultConfig;
use onc_sim::{SimConfig, SimHandle, start};

use crate::support::Scratch;

pub(crate) const TOKEN: &str = "c0ffee00-secret-token-4242";

/// A manifest fetching 25 minutes of plotRes spectrograms (two requests) and the audio of one
/// event, from `base_url`.
pub(crate) fn manifest(base_url: &str, extra_onc: &str) -> String {
    format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{base_url}"
stagger = "10ms"
poll_interval = "50ms"
max_wait = "2m"
max_runs = 4
{extra_onc}

[output]
dir = "data"
cache = "cache"

[plan.survey]
device = "ICLISTENHF6324"
range = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T00:25:00Z }}

[plan.events]
device = "ICLISTENHF6324"
windows = [{{ start = 2024-04-01T04:24:50Z, end = 2024-04-01T04:25:10Z, label = "call" }}]

[fetch.plotres]
plan = ["survey", "events"]
product = "HSD"
extension = "mat"
per_request = 3
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}

[fetch.audio]
plan = "events"
archive = "flac"
"#
    )
}

const IN_PROCESS: &str = "[onc.simulator]\nsample_rate = 8000\ntime_scale = 0.002";

pub(crate) struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) fn onc_pipe(dir: &Path, args: &[&str]) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
        .args(args)
        .current_dir(dir)
        .env(
            crate::support::NO_USER_CONFIG.0,
            crate::support::NO_USER_CONFIG.1,
        )
        .env("ONC_TOKEN", TOKEN)
        .env_remove("ONC_BASE_URL")
        .output()
        .unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

pub(crate) fn record(ran: &Ran) -> serde_json::Value {
    serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", ran.stdout, ran.stderr))
}

/// Every file under `root` with its blake3, relative paths sorted.
pub(crate) fn tree(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((
                    rel,
                    blake3::hash(&std::fs::read(&path).unwrap())
                        .to_hex()
                        .to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// A simulator at 8 kHz and 500× ONC's speed: what most tests need.
pub(crate) async fn fast_simulator() -> SimHandle {
    simulator(SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        ..SimConfig::default()
    })
    .await
}

pub(crate) async fn simulator(config: SimConfig) -> SimHandle {
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

#[test]
fn a_cached_rerun_makes_zero_http_requests() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("simulator", IN_PROCESS));
    let first = onc_pipe(scratch.path(), &["run", "m.toml", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first = record(&first);
    assert_eq!(first["runs_total"], 3);
    assert_eq!(first["runs_downloaded"], 3);
    assert!(first["files_downloaded"].as_u64().unwrap() >= 8);
    let produced = tree(&scratch.path().join("data"));
    assert!(
        produced
            .iter()
            .any(|(p, _)| p.starts_with("ICLISTENHF6324/survey/mat/")
                && p.ends_with("-spect_plotRes.mat")),
        "{produced:?}"
    );
    assert!(
        produced
            .iter()
            .any(|(p, _)| p.starts_with("ICLISTENHF6324/events/audio/") && p.ends_with(".flac")),
        "{produced:?}"
    );

    let again = onc_pipe(scratch.path(), &["run", "m.toml", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again = record(&again);
    assert_eq!(
        again["http_requests"], 0,
        "a cached re-run must not contact ONC"
    );
    assert_eq!(again["requests_submitted"], 0);
    assert_eq!(again["files_downloaded"], 0);
    assert_eq!(again["nodes_cached"], 4);
    assert_eq!(tree(&scratch.path().join("data")), produced);

    // A deleted output tree is rebuilt from the cache, still without a request.
    std::fs::remove_dir_all(scratch.path().join("data")).unwrap();
    let rebuilt = record(&onc_pipe(scratch.path(), &["run", "m.toml", "--json"]));
    assert_eq!(rebuilt["http_requests"], 0);
    assert_eq!(tree(&scratch.path().join("data")), produced);

    // `plan` reads the same cache: requests and their files are cached, clips still to cut.
    let plan = onc_pipe(scratch.path(), &["plan", "m.toml", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    for node in plan["nodes"].as_array().unwrap() {
        let expected = match node["kind"].as_str().unwrap() {
            "window" => "planned",
            "clip" => "to run",
            _ => "cached",
        };
        assert_eq!(node["state"], expected, "{node}");
    }

    let status = onc_pipe(scratch.path(), &["status", "m.toml"]);
    assert!(
        status
            .stdout
            .starts_with("m.toml: 4 ONC nodes: 4 cached, 0 in flight, 0 to run\n"),
        "{}",
        status.stdout
    );

    // A damaged object: status says why the node runs again, and the run re-fetches it.
    let objects = scratch.path().join("cache/objects-v1");
    let shard = std::fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let object = std::fs::read_dir(shard.path())
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    std::fs::write(object.path(), b"damaged").unwrap();
    let status = onc_pipe(scratch.path(), &["status", "m.toml"]);
    assert!(
        status.stdout.contains("1 to run") && status.stdout.contains("output missing or corrupted"),
        "{}",
        status.stdout
    );
    let repaired = record(&onc_pipe(scratch.path(), &["run", "m.toml", "--json"]));
    assert!(
        repaired["files_downloaded"].as_u64().unwrap() >= 1,
        "{repaired}"
    );
    assert_eq!(tree(&scratch.path().join("data")), produced);
}

#[test]
fn a_run_on_a_cache_held_exclusively_exits_3() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("simulator", IN_PROCESS));
    let cache = onc_pipe::cache::Cache::open(&scratch.path().join("cache")).unwrap();
    let lock = cache.lock().unwrap();
    let blocked = onc_pipe(scratch.path(), &["run", "m.toml"]);
    assert_eq!(blocked.code, 3, "{}", blocked.stderr);
    assert!(
        blocked.stderr.contains("holds it exclusively"),
        "{}",
        blocked.stderr
    );
    assert!(
        blocked
            .stderr
            .contains(&format!("pid {}", std::process::id())),
        "{}",
        blocked.stderr
    );
    drop(lock);
    assert_eq!(onc_pipe(scratch.path(), &["run", "m.toml"]).code, 0);
}

#[test]
fn no_token_for_a_real_server_exits_3() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("https://data.oceannetworks.ca/", ""));
    let output = Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
        .args(["run", "m.toml"])
        .current_dir(scratch.path())
        .env_remove("ONC_TOKEN")
        .env_remove("ONC_BASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ONC_TOKEN"));
}

/// Kills a run when `ready` says so (checked every few ms), then resumes it; returns the final
/// output tree.
fn kill_then_resume(dir: &Path, ready: impl Fn(&Path) -> bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
        .args(["run", "m.toml", "--no-progress"])
        .current_dir(dir)
        .env("ONC_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready(dir) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "kill point never reached"
        );
        if child.try_wait().unwrap().is_some() {
            panic!("the run finished before the kill point");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let resumed = onc_pipe(dir, &["run", "m.toml"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
}

/// Starts `run m.toml` in `dir` and kills it (SIGKILL) once `count` requests are journaled.
fn kill_when_journaled(dir: &Path, count: usize) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
        .args(["run", "m.toml", "--no-progress"])
        .current_dir(dir)
        .env("ONC_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while journal_entries(dir).len() < count {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never submitted"
        );
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

pub(crate) fn journal_entries(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir.join("cache/journal-v1"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

pub(crate) fn has_partial_download(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("cache/tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with(".part-"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runs_resume_without_resubmitting() {
    // Reference: an uninterrupted run against its own simulator.
    let reference = Scratch::new();
    let sim = simulator(SimConfig {
        sample_rate: 8_000,
        time_scale: 0.05,
        ..SimConfig::default()
    })
    .await;
    reference.write("m.toml", &manifest(&sim.base_url, ""));
    let dir = reference.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "m.toml"]))
        .await
        .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let expected = tree(&reference.path().join("data"));
    sim.stop().await;

    type KillPoint = fn(&Path) -> bool;
    // The kill points wait until all three submissions are journaled: between ONC accepting a
    // request and the journal's fsync (milliseconds) a kill cannot know the id, and ONC has no
    // idempotency key to find it again — that window is the one resubmission that can happen.
    let points: [(&str, KillPoint); 3] = [
        ("after submit", |dir| journal_entries(dir).len() == 3),
        ("while polling", |dir| {
            let entries = journal_entries(dir);
            entries.len() == 3 && entries.iter().all(|e| !e["dp_run_id"].is_null())
        }),
        ("mid-download", has_partial_download),
    ];
    for (name, point) in points {
        // File bodies trickle (about half a second per file), so the kill lands mid-download.
        let faults = FaultConfig {
            throttle_bytes_per_s: 2_000_000,
            ..FaultConfig::default()
        };
        let sim = simulator(SimConfig {
            sample_rate: 8_000,
            time_scale: 0.05,
            faults,
            ..SimConfig::default()
        })
        .await;
        let scratch = Scratch::new();
        scratch.write("m.toml", &manifest(&sim.base_url, ""));
        let dir: PathBuf = scratch.path().to_path_buf();
        tokio::task::spawn_blocking(move || kill_then_resume(&dir, point))
            .await
            .unwrap();
        let stats = sim.stats();
        assert_eq!(
            stats.duplicate_submissions, 0,
            "{name}: a killed run was submitted again"
        );
        assert_eq!(stats.submissions, 3, "{name}");
        assert_eq!(
            tree(&scratch.path().join("data")),
            expected,
            "{name}: the final tree differs"
        );
        assert!(
            !has_partial_download(scratch.path()),
            "{name}: a partial file was left"
        );
        sim.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_server_is_survived_and_failed_runs_are_restarted() {
    // A seed under which one of the three submissions fails on its first run and on its three
    // restarts, and succeeds on the fourth restart; the other two never fail.
    let seed = (0..100_000)
        .find(|&seed| {
            let faults = FaultConfig {
                failed_run_rate: 0.5,
                seed,
                ..FaultConfig::default()
            };
            !faults.run_fails(0)
                && !faults.run_fails(1)
                && (0..4).all(|attempt| faults.attempt_fails(2, attempt))
                && !faults.attempt_fails(2, 4)
        })
        .unwrap();
    let faults = FaultConfig {
        server_error_rate: 0.1,
        reset_rate: 0.1,
        truncate_rate: 0.1,
        failed_run_rate: 0.5,
        seed,
        ..FaultConfig::default()
    };
    let sim = simulator(SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        faults,
        ..SimConfig::default()
    })
    .await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, "max_attempts = 10"));
    let dir = scratch.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "m.toml", "--json"]))
        .await
        .unwrap();
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let summary = record(&ran);
    assert_eq!(summary["runs_errors"], 1, "{summary}");
    assert_eq!(summary["runs_downloaded"], 2, "{summary}");
    let failures = summary["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    let reason = failures[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("failed again after 3 restart(s)")
            && reason.contains("simulated failure")
            && reason.contains("the next `run` restarts it again"),
        "{reason}"
    );
    // Restarted with ONC's `restart`, three times, never submitted again.
    let stats = sim.stats();
    assert_eq!(stats.restarts, 3, "{stats:?}");
    assert_eq!(stats.submissions, 3, "{stats:?}");
    assert!(stats.faults_injected > 0);
    // The journal keeps the failed request, with its restarts counted.
    let journal = journal_entries(scratch.path());
    assert_eq!(journal.len(), 1, "{journal:?}");
    assert_eq!(journal[0]["restarts"], 3, "{journal:?}");
    // The next run re-attaches to the same dpRequestId and restarts it before it considers a
    // new submission; the fourth restart succeeds.
    let dir = scratch.path().to_path_buf();
    let again = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "m.toml", "--json"]))
        .await
        .unwrap();
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again = record(&again);
    assert_eq!(again["requests_submitted"], 0, "{again}");
    assert_eq!(again["runs_reattached"], 1, "{again}");
    let stats = sim.stats();
    assert_eq!(stats.restarts, 4, "{stats:?}");
    assert_eq!(stats.submissions, 3, "{stats:?}");
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    assert!(journal_entries(scratch.path()).is_empty());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_manifests_fetch_shared_files_once_and_the_token_never_leaks() {
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("a.toml", &manifest(&sim.base_url, ""));
    // The same survey, ten minutes longer: only the new time is submitted.
    scratch.write(
        "b.toml",
        &manifest(&sim.base_url, "")
            .replace("end = 2024-04-01T00:25:00Z", "end = 2024-04-01T00:35:00Z"),
    );
    let dir = scratch.path().to_path_buf();
    let (a, b) = tokio::task::spawn_blocking(move || {
        (
            onc_pipe(&dir, &["run", "a.toml", "--json"]),
            onc_pipe(&dir, &["run", "b.toml", "--json"]),
        )
    })
    .await
    .unwrap();
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    let (a_record, b_record) = (record(&a), record(&b));
    // Ten new minutes: the two files starting in them (plus the one before 00:25 when the
    // simulated archive's offsets put a file start right at the edge).
    let new_files = b_record["files_downloaded"].as_u64().unwrap();
    assert!(
        (2..=3).contains(&new_files),
        "only the new ten minutes: {b_record}"
    );
    // Every file was transferred exactly once across both runs: one object per download.
    let objects = std::fs::read_dir(scratch.path().join("cache/objects-v1"))
        .unwrap()
        .flatten()
        .flat_map(|shard| {
            std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .count() as u64;
    assert_eq!(
        a_record["files_downloaded"].as_u64().unwrap() + new_files,
        objects,
        "a file was downloaded twice: {a_record} {b_record}"
    );
    assert_eq!(sim.stats().duplicate_submissions, 0);
    for text in [&a.stdout, &a.stderr, &b.stdout, &b.stderr] {
        assert!(!text.contains(TOKEN));
    }
    let mut stack = vec![scratch.path().join("cache")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json")
                || path.file_name().is_some_and(|n| n == "lock")
            {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(!text.contains(TOKEN), "{} holds the token", path.display());
            }
        }
    }
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_traces_every_onc_request_with_its_time_and_never_the_token() {
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, ""));
    let dir = scratch.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || {
        onc_pipe(&dir, &["run", "m.toml", "--no-progress", "-v", "--json"])
    })
    .await
    .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let stamp = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ onc (GET|HEAD) ").unwrap();
    let traced: Vec<&str> = ran
        .stderr
        .lines()
        .filter(|line| stamp.is_match(line))
        .collect();
    // One line per request the run sent: as many as its record counts.
    assert_eq!(
        traced.len() as u64,
        record(&ran)["http_requests"].as_u64().unwrap(),
        "{}",
        ran.stderr
    );
    assert!(
        traced.iter().any(
            |line| line.contains("dataProductDelivery/request dataProductCode=HSD")
                && line.ends_with(" ms)")
        ),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains(TOKEN), "{}", ran.stderr);
    assert!(!ran.stderr.contains("token="), "{}", ran.stderr);
    // -v and --quiet contradict each other: refused, naming both.
    let quiet = onc_pipe(scratch.path(), &["run", "m.toml", "-v", "--quiet"]);
    assert_eq!(quiet.code, 2, "{}", quiet.stderr);
    assert!(quiet.stderr.contains("--quiet"), "{}", quiet.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_stopped_runs_onc_jobs_and_the_next_run_submits_afresh() {
    let sim = simulator(SimConfig {
        sample_rate: 8_000,
        time_scale: 0.05,
        ..SimConfig::default()
    })
    .await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, ""));
    let dir = scratch.path().to_path_buf();
    // A run killed once its three requests are at ONC.
    tokio::task::spawn_blocking(move || kill_when_journaled(&dir, 3))
        .await
        .unwrap();
    assert_eq!(journal_entries(scratch.path()).len(), 3);

    // Not while a run holds the cache: it would see its runs cancelled under it.
    let cache = onc_pipe::cache::Cache::open(&scratch.path().join("cache")).unwrap();
    let held = cache.lock_for_run().unwrap();
    cache.share(&held).unwrap();
    let dir = scratch.path().to_path_buf();
    let blocked = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["cancel", "m.toml"]))
        .await
        .unwrap();
    assert_eq!(blocked.code, 3, "{}", blocked.stderr);
    assert_eq!(journal_entries(scratch.path()).len(), 3);
    drop(held);

    let dir = scratch.path().to_path_buf();
    let cancelled = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["cancel", "m.toml"]))
        .await
        .unwrap();
    assert_eq!(cancelled.code, 0, "{}", cancelled.stderr);
    assert!(
        cancelled
            .stdout
            .contains("3 cancelled at ONC, 0 cleared, 0 kept"),
        "{}",
        cancelled.stdout
    );
    let stats = sim.stats();
    assert_eq!(
        stats.requests_by_endpoint.get("dataProductDelivery/cancel"),
        Some(&3),
        "{stats:?}"
    );
    assert!(journal_entries(scratch.path()).is_empty());
    assert!(!cancelled.stdout.contains(TOKEN) && !cancelled.stderr.contains(TOKEN));
    let dir = scratch.path().to_path_buf();
    let again = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["cancel", "m.toml"]))
        .await
        .unwrap();
    assert!(
        again.stdout.contains("no run in flight"),
        "{}",
        again.stdout
    );

    // The next run submits the three afresh instead of re-attaching to cancelled runs.
    let dir = scratch.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "m.toml", "--json"]))
        .await
        .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let value = record(&ran);
    assert_eq!(value["requests_submitted"], 3, "{value}");
    assert_eq!(value["runs_reattached"], 0, "{value}");
}

#[test]
fn a_run_killed_on_the_in_process_simulator_resumes_without_taking_another_requests_files() {
    // The in-process simulator starts anew with every run: a journal from a killed run names
    // ids the next instance does not know (ONC never reuses ids; neither does the simulator).
    let slow = "[onc.simulator]\nsample_rate = 8000\ntime_scale = 0.05";
    let reference = Scratch::new();
    reference.write("m.toml", &manifest("simulator", slow));
    let ran = onc_pipe(reference.path(), &["run", "m.toml"]);
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let expected = crate::shards::outputs(&reference.path().join("data"));

    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("simulator", slow));
    kill_when_journaled(scratch.path(), 3);
    let resumed = onc_pipe(scratch.path(), &["run", "m.toml", "--json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    // Every request ordered again (the old ids are unknown), each with its own files.
    assert_eq!(
        record(&resumed)["requests_submitted"],
        3,
        "{}",
        resumed.stdout
    );
    assert_eq!(
        crate::shards::outputs(&scratch.path().join("data")),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_naming_another_requests_run_records_nothing_and_the_next_run_orders_anew() {
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, ""));
    let dir = scratch.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "m.toml"]))
        .await
        .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // The events' request (04:24): its dpRequestId and dpRunId, from its coverage entry.
    let event_ids = std::fs::read_dir(scratch.path().join("cache/coverage-v1"))
        .unwrap()
        .flatten()
        .flat_map(|source| std::fs::read_dir(source.path()).unwrap().flatten())
        .filter_map(|entry| {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(entry.path()).ok()?).ok()?;
            (value["from_ms"].as_i64()? > 1_711_940_000_000 && value["dp_request_id"].is_u64())
                .then(|| (value["dp_request_id"].clone(), value["dp_run_id"].clone()))
        })
        .next()
        .unwrap();
    // Another manifest (a survey an hour later) whose journal names that run, as a journal
    // carried over from another server could.
    let later = manifest(&sim.base_url, "")
        .replace("2024-04-01T00:00:00Z", "2024-04-01T01:00:00Z")
        .replace("2024-04-01T00:25:00Z", "2024-04-01T01:10:00Z");
    scratch.write("later.toml", &later);
    let dir = scratch.path().to_path_buf();
    let planned = tokio::task::spawn_blocking(move || {
        onc_pipe(&dir, &["plan", "later.toml", "--json", "--offline"])
    })
    .await
    .unwrap();
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
    let survey = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|node| {
            node["kind"] == "product_request"
                && node["query"]["dateFrom"] == "2024-04-01T01:00:00.000Z"
        })
        .unwrap();
    let key = survey["key"].as_str().unwrap();
    scratch.write(
        &format!("cache/journal-v1/{key}.json"),
        &serde_json::json!({
            "query": {},
            "dp_request_id": event_ids.0,
            "dp_run_id": event_ids.1,
            "submitted_at": "2026-12-06T00:00:00.000Z",
            "base_url": sim.base_url,
        })
        .to_string(),
    );
    let dir = scratch.path().to_path_buf();
    let failed = tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "later.toml"]))
        .await
        .unwrap();
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("which lies outside the request's window 2024-04-01T01:00:00.000Z"),
        "{}",
        failed.stderr
    );
    // Nothing recorded for the survey, its journal entry gone: the next run orders it anew.
    let dir = scratch.path().to_path_buf();
    let again =
        tokio::task::spawn_blocking(move || onc_pipe(&dir, &["run", "later.toml", "--json"]))
            .await
            .unwrap();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(record(&again)["requests_submitted"], 1, "{}", again.stdout);
    let mats: Vec<String> =
        std::fs::read_dir(scratch.path().join("data/ICLISTENHF6324/survey/mat"))
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
    assert!(
        mats.iter().any(|name| name.contains("20240401T010")),
        "{mats:?}"
    );
    assert!(
        !mats.iter().any(|name| name.contains("20240401T042")),
        "{mats:?}"
    );
}
