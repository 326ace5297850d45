//! Sharded runs against the simulator: N shards run one after another on one cache give the
//! unsharded run's outputs with nothing ordered or fetched twice; `--shard` is checked; a share
//! of the limits that cannot be made is refused before anything is sent; the offline clip phase
//! needs the fetch phase first and then sends nothing; `plan --shards` shows the split.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use onc_sim::SimConfig;

use crate::run::{TOKEN, fast_simulator, record, simulator};
use crate::support::Scratch;

/// A survey in requests of three files, two events clipped across file boundaries (spectrogram
/// and audio), from `base_url`; `max_runs` and `download_workers` as given.
pub(crate) fn manifest(base_url: &str, max_runs: u32, workers: u32) -> String {
    format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{base_url}"
stagger = "10ms"
poll_interval = "50ms"
max_wait = "2m"
max_runs = {max_runs}
download_workers = {workers}

[output]
dir = "data"
cache = "cache"

[plan.survey]
device = "ICLISTENHF6324"
range = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T00:40:00Z }}

[plan.events]
device = "ICLISTENHF6324"
windows = [
  {{ start = 2024-04-01T04:24:50Z, end = 2024-04-01T04:25:10Z, label = "call" }},
  {{ start = 2024-04-01T06:09:55Z, end = 2024-04-01T06:10:05Z, label = "ship" }},
]

[fetch.plotres]
plan = ["survey", "events"]
product = "HSD"
extension = "mat"
per_request = 3
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}

[fetch.audio]
plan = "events"
archive = "flac"

[clip.events]
plan = "events"
fetch = ["plotres", "audio"]
pad = "10s"
spectrogram = "npz"
audio = "flac"
"#
    )
}

/// Runs the binary in `dir` with `ONC_TOKEN` when `token`, and no scheduler variables unless
/// given in `env` (a test run under Slurm must not shard itself).
pub(crate) fn onc_pipe_env(
    dir: &Path,
    args: &[&str],
    token: bool,
    env: &[(&str, &str)],
) -> crate::run::Ran {
    let mut command = Command::new(env!("CARGO_BIN_EXE_onc-pipe"));
    command
        .args(args)
        .current_dir(dir)
        .env(
            crate::support::NO_USER_CONFIG.0,
            crate::support::NO_USER_CONFIG.1,
        )
        .env_remove("ONC_BASE_URL");
    for name in [
        "ONC_TOKEN",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
        "ONC_PIPE_SHARDS",
    ] {
        command.env_remove(name);
    }
    if token {
        command.env("ONC_TOKEN", TOKEN);
    }
    command.envs(env.iter().copied());
    let output = command.output().unwrap();
    crate::run::Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(dir: &Path, args: &[&str]) -> crate::run::Ran {
    onc_pipe_env(dir, args, true, &[])
}

/// Every file under `root` with its blake3. Sidecars are compared without ONC's request and
/// run ids, which ONC numbers in the order requests arrive: shards submit in another order than
/// one run, so only those numbers may differ. Every other byte must be the same.
pub(crate) fn outputs(root: &Path) -> Vec<(String, String)> {
    crate::run::tree(root)
        .into_iter()
        .map(|(path, hash)| {
            if path == "catalog.csv" {
                let bytes = std::fs::read(root.join(&path)).unwrap();
                let bytes = crate::support::catalog_without_onc_ids(&bytes);
                return (path, blake3::hash(&bytes).to_hex().to_string());
            }
            if !path.ends_with(".json") {
                return (path, hash);
            }
            let text = std::fs::read_to_string(root.join(&path)).unwrap();
            let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
            forget_onc_ids(&mut value);
            (
                path,
                blake3::hash(value.to_string().as_bytes())
                    .to_hex()
                    .to_string(),
            )
        })
        .collect()
}

fn forget_onc_ids(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("dp_request_id");
            map.remove("dp_run_id");
            map.values_mut().for_each(forget_onc_ids);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(forget_onc_ids),
        _ => {}
    }
}

/// The outputs and the record of an unsharded run against its own simulator.
pub(crate) async fn unsharded() -> (Vec<(String, String)>, serde_json::Value) {
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    let dir = scratch.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || run(&dir, &["run", "m.toml", "--json"]))
        .await
        .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    // Neighbouring requests share the file straddling their common edge; it is named first
    // and transferred once.
    let stats = sim.stats();
    assert_eq!(stats.files_served_again, 0, "{stats:?}");
    assert!(stats.files_named_by_head > 0, "{stats:?}");
    sim.stop().await;
    (outputs(&scratch.path().join("data")), record(&ran))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_in_turn_give_the_unsharded_outputs_with_nothing_ordered_twice() {
    let (expected, whole) = unsharded().await;
    assert!(whole["clips_written"].as_u64().unwrap() >= 4, "{whole}");
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    let dir = scratch.path().to_path_buf();
    let records = tokio::task::spawn_blocking(move || {
        (1..=4)
            .map(|k| {
                let ran = run(
                    &dir,
                    &["run", "m.toml", "--shard", &format!("{k}/4"), "--json"],
                );
                assert_eq!(ran.code, 0, "shard {k}: {}", ran.stderr);
                record(&ran)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(outputs(&scratch.path().join("data")), expected);
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    assert_eq!(stats.files_served_again, 0, "{stats:?}");
    let sum = |field: &str| -> u64 { records.iter().map(|r| r[field].as_u64().unwrap()).sum() };
    for field in [
        "runs_total",
        "requests_submitted",
        "files_downloaded",
        "clips_written",
    ] {
        assert_eq!(sum(field), whole[field].as_u64().unwrap(), "{field}");
    }
    assert_eq!(
        stats.submissions,
        whole["requests_submitted"].as_u64().unwrap()
    );
    // Each shard ran under a quarter of the limits.
    for (k, record) in records.iter().enumerate() {
        let shard = &record["shard"];
        assert_eq!(shard["index"], k as u64 + 1);
        assert_eq!(shard["count"], 4);
        assert_eq!(shard["share"]["max_runs"], 1, "{shard}");
        assert_eq!(shard["share"]["download_workers"], 1, "{shard}");
    }
    // The shards' nodes are the plan's, each once.
    let plan = run(
        scratch.path(),
        &["plan", "m.toml", "--shards", "4", "--format", "json"],
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let executed: BTreeSet<String> = plan["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| !matches!(n["kind"].as_str(), Some("window" | "file")))
        .map(|n| n["key"].as_str().unwrap().to_owned())
        .collect();
    let mut union = BTreeSet::new();
    for part in plan["shards"]["parts"].as_array().unwrap() {
        for key in part["nodes"].as_array().unwrap() {
            assert!(
                union.insert(key.as_str().unwrap().to_owned()),
                "{key} twice"
            );
        }
    }
    assert_eq!(union, executed);
    let ran_nodes: u64 = records
        .iter()
        .map(|r| {
            r["shard"]["onc_nodes"].as_u64().unwrap() + r["shard"]["clip_nodes"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(ran_nodes, executed.len() as u64);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_phase_needs_the_fetch_phase_and_then_sends_nothing() {
    let (expected, _) = unsharded().await;
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    // max_runs 2: two fetch shards may share it, eight offline shards need no share.
    scratch.write("m.toml", &manifest(&sim.base_url, 2, 2));
    let dir = scratch.path().to_path_buf();
    let (empty, fetched, clipped) = tokio::task::spawn_blocking(move || {
        // No token: offline needs none.
        let empty = onc_pipe_env(
            &dir,
            &["run", "m.toml", "--offline", "--shard", "1/8"],
            false,
            &[],
        );
        let fetched: Vec<_> = (1..=2)
            .map(|k| {
                run(
                    &dir,
                    &[
                        "run",
                        "m.toml",
                        "--fetch-only",
                        "--shard",
                        &format!("{k}/2"),
                        "--json",
                    ],
                )
            })
            .collect();
        let clipped: Vec<_> = (1..=8)
            .map(|k| {
                onc_pipe_env(
                    &dir,
                    &[
                        "run",
                        "m.toml",
                        "--offline",
                        "--shard",
                        &format!("{k}/8"),
                        "--json",
                    ],
                    false,
                    &[],
                )
            })
            .collect();
        (empty, fetched, clipped)
    })
    .await
    .unwrap();
    assert_eq!(empty.code, 3, "{}", empty.stderr);
    assert!(
        empty.stderr.contains("--fetch-only") && empty.stderr.contains("not there"),
        "{}",
        empty.stderr
    );
    let mut fetched_clips = 0;
    for ran in &fetched {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let record = record(ran);
        assert_eq!(record["clips_written"], 0, "fetch phase cut a clip");
        assert_eq!(record["shard"]["phase"], "fetch");
        fetched_clips += record["shard"]["clip_nodes"].as_u64().unwrap();
    }
    assert_eq!(fetched_clips, 0);
    let requests_after_fetch = sim.stats().requests_total;
    let mut clips = 0;
    for ran in &clipped {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let record = record(ran);
        assert_eq!(record["http_requests"], 0, "{record}");
        assert!(record["shard"].get("share").is_none(), "{record}");
        clips += record["shard"]["clip_nodes"].as_u64().unwrap();
    }
    assert!(clips >= 4);
    assert_eq!(sim.stats().requests_total, requests_after_fetch);
    assert_eq!(sim.stats().duplicate_submissions, 0);
    assert_eq!(outputs(&scratch.path().join("data")), expected);
    sim.stop().await;
}

#[test]
fn shard_arguments_are_checked() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("simulator", 4, 4));
    for (shard, says) in [
        ("0/4", "numbered 1 to 4"),
        ("5/4", "numbered 1 to 4"),
        ("1/0", "at least 1"),
        ("two", "write `k/N`"),
    ] {
        let ran = run(scratch.path(), &["run", "m.toml", "--shard", shard]);
        assert_eq!(ran.code, 2, "{shard}: {}", ran.stderr);
        assert!(ran.stderr.contains(says), "{shard}: {}", ran.stderr);
    }
    let auto = run(scratch.path(), &["run", "m.toml", "--shard", "auto"]);
    assert_eq!(auto.code, 2, "{}", auto.stderr);
    assert!(
        auto.stderr.contains("SLURM_ARRAY_TASK_ID") && auto.stderr.contains("JOB_COMPLETION_INDEX"),
        "{}",
        auto.stderr
    );
    let k8s = onc_pipe_env(
        scratch.path(),
        &["run", "m.toml", "--shard", "auto"],
        true,
        &[("JOB_COMPLETION_INDEX", "1")],
    );
    assert_eq!(k8s.code, 2);
    assert!(k8s.stderr.contains("ONC_PIPE_SHARDS"), "{}", k8s.stderr);
    let both = run(
        scratch.path(),
        &["run", "m.toml", "--offline", "--fetch-only"],
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(!scratch.path().join("cache").exists(), "nothing may start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_shards_than_the_limits_allow_are_refused_before_anything_is_sent() {
    let sim = simulator(SimConfig::default()).await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 2, 4));
    let dir = scratch.path().to_path_buf();
    let (all, fetch, auto) = tokio::task::spawn_blocking(move || {
        (
            run(&dir, &["run", "m.toml", "--shard", "1/3"]),
            run(&dir, &["run", "m.toml", "--shard", "3/3", "--fetch-only"]),
            onc_pipe_env(
                &dir,
                &["run", "m.toml", "--shard", "auto", "--fetch-only"],
                true,
                &[
                    ("SLURM_ARRAY_TASK_ID", "7"),
                    ("SLURM_ARRAY_TASK_MIN", "0"),
                    ("SLURM_ARRAY_TASK_COUNT", "8"),
                ],
            ),
        )
    })
    .await
    .unwrap();
    for ran in [&all, &fetch] {
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(
            ran.stderr
                .contains("m.toml: 3 shards cannot share `onc.max_runs = 2`")
                && ran.stderr.contains("use at most 2 shards")
                && ran.stderr.contains("--offline"),
            "{}",
            ran.stderr
        );
    }
    assert_eq!(auto.code, 2, "{}", auto.stderr);
    assert!(
        auto.stderr.contains("8 shards cannot share"),
        "{}",
        auto.stderr
    );
    assert_eq!(
        sim.stats().requests_total,
        0,
        "a refused shard sent something"
    );
    sim.stop().await;
}

#[test]
fn plan_shows_each_shard_and_its_share() {
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest("simulator", 16, 4));
    let text = run(
        scratch.path(),
        &["plan", "m.toml", "--offline", "--shards", "4"],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    let out = &text.stdout;
    assert!(
        out.contains("\nshards (4): groups sharing source files kept whole"),
        "{out}"
    );
    assert!(
        out.contains("each shard's share of the limits: max_runs 4 of 16, download_workers 1 of 4"),
        "{out}"
    );
    for k in 1..=4 {
        assert!(out.contains(&format!("  shard {k}/4: ")), "{out}");
    }
    let refused = run(
        scratch.path(),
        &["plan", "m.toml", "--offline", "--shards", "5"],
    );
    assert_eq!(refused.code, 0, "plan shows, it does not refuse");
    assert!(
        refused.stdout.contains(
            "`run --shard k/5` is refused: 5 shards cannot share `onc.download_workers = 4`"
        ),
        "{}",
        refused.stdout
    );
    let json = run(
        scratch.path(),
        &[
            "plan",
            "m.toml",
            "--offline",
            "--shards",
            "4",
            "--format",
            "json",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let shards = &json["shards"];
    assert_eq!(shards["count"], 4);
    assert_eq!(shards["share"]["max_runs"], 4);
    assert_eq!(shards["share"]["download_workers"], 1);
    assert_eq!(
        shards["share"]["stagger_ms"],
        4 * json["settings"]["stagger_ms"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    );
    let parts = shards["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 4);
    let requests: u64 = parts
        .iter()
        .map(|p| p["product_requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        requests,
        json["summary"]["product_requests"].as_u64().unwrap()
    );
    let without = run(
        scratch.path(),
        &["plan", "m.toml", "--offline", "--format", "json"],
    );
    let without: serde_json::Value = serde_json::from_str(&without.stdout).unwrap();
    assert!(without.get("shards").is_none());
}

/// Runs every argument list at once, each a process of its own, in `dir` with `env` added to
/// its environment; their ends in order.
pub(crate) fn run_together(
    dir: &Path,
    runs: Vec<Vec<String>>,
    env: &[(String, String)],
) -> Vec<crate::run::Ran> {
    let handles: Vec<_> = runs
        .into_iter()
        .map(|args| {
            let (dir, env) = (dir.to_path_buf(), env.to_vec());
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                onc_pipe_env(&dir, &args, true, &env)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_at_once_on_one_cache_order_nothing_twice_and_stay_within_the_limits() {
    let (expected, whole) = unsharded().await;
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    let dir = scratch.path().to_path_buf();
    let shards = |dir: std::path::PathBuf| {
        run_together(
            &dir,
            (1..=4)
                .map(|k| {
                    ["run", "m.toml", "--shard", &format!("{k}/4"), "--json"]
                        .map(str::to_owned)
                        .to_vec()
                })
                .collect(),
            &[],
        )
    };
    let first = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || shards(dir))
            .await
            .unwrap()
    };
    for (k, ran) in first.iter().enumerate() {
        assert_eq!(ran.code, 0, "shard {}: {}", k + 1, ran.stderr);
    }
    assert_eq!(outputs(&scratch.path().join("data")), expected);
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    // Each file served once, to one process: a file straddling the edge of two requests that
    // two processes ordered is named with a HEAD and claimed before it is sent (ONC serves a
    // run's files by index, so only its answer names a file).
    assert_eq!(stats.files_served_again, 0, "{stats:?}");
    let downloaded: u64 = first
        .iter()
        .map(|ran| record(ran)["files_downloaded"].as_u64().unwrap())
        .sum();
    assert_eq!(
        downloaded,
        whole["files_downloaded"].as_u64().unwrap(),
        "{stats:?}"
    );
    assert_eq!(downloaded, stats.files_served);
    assert_eq!(
        stats.submissions,
        whole["requests_submitted"].as_u64().unwrap(),
        "{stats:?}"
    );
    // One token, four processes: never more runs at ONC than the manifest's max_runs.
    assert!(stats.max_runs_in_flight <= 4, "{stats:?}");
    // All four again: everything is cached, nothing is sent.
    let again = tokio::task::spawn_blocking(move || shards(dir))
        .await
        .unwrap();
    for ran in &again {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(record(ran)["http_requests"], 0, "{}", ran.stdout);
    }
    assert_eq!(sim.stats().submissions, stats.submissions);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_with_overlapping_manifests_at_once_on_one_cache_order_the_overlap_once() {
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    let first = manifest(&sim.base_url, 4, 4);
    // The second person: the same survey and events plus a window of their own, their own
    // outputs. Requests the two plans share are the same nodes (content-keyed).
    let second = first.replace("dir = \"data\"", "dir = \"theirs\"")
        + r#"
[plan.whales]
device = "ICLISTENHF6324"
windows = [{ start = 2024-04-01T09:00:00Z, end = 2024-04-01T09:00:10Z, label = "whale" }]

[fetch.whale_audio]
plan = "whales"
archive = "flac"
"#;
    assert_ne!(first, second);
    scratch.write("mine.toml", &first);
    scratch.write("theirs.toml", &second);
    let dir = scratch.path().to_path_buf();
    let ran = tokio::task::spawn_blocking(move || {
        run_together(
            &dir,
            vec![
                ["run", "mine.toml", "--json"].map(str::to_owned).to_vec(),
                ["run", "theirs.toml", "--json"].map(str::to_owned).to_vec(),
            ],
            &[],
        )
    })
    .await
    .unwrap();
    for run in &ran {
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let (mine, theirs) = (record(&ran[0]), record(&ran[1]));
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    // Between them they submitted each request once: the second manifest's own requests, and
    // the overlap by whichever came first.
    // Each file served once, to one of them.
    let downloaded =
        mine["files_downloaded"].as_u64().unwrap() + theirs["files_downloaded"].as_u64().unwrap();
    assert_eq!(stats.files_served_again, 0, "{stats:?}");
    assert_eq!(downloaded, stats.files_served, "{stats:?}");
    let submitted = mine["requests_submitted"].as_u64().unwrap()
        + theirs["requests_submitted"].as_u64().unwrap();
    assert_eq!(submitted, stats.submissions);
    assert_eq!(
        stats.submissions,
        theirs["runs_total"].as_u64().unwrap(),
        "the second manifest's requests include the first's: {mine} {theirs}"
    );
    assert!(scratch.path().join("data").is_dir() && scratch.path().join("theirs").is_dir());
    sim.stop().await;
}
