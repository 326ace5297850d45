//! The team cache on a real S3-compatible server (moto, with authentication on): shards on
//! "separate machines" (each its own local folder in front of one `s3://` cache) order nothing
//! twice and give the unsharded outputs; a re-run asks ONC nothing and a new machine pulls
//! from the store instead of ordering; a shard killed mid-run and re-run on another machine
//! re-attaches to its ONC runs; two people's overlapping manifests order the overlap once; a
//! wrong credential stops the run with exit 3 before anything is ordered.

use std::path::Path;

use onc_sim::SimConfig;

use crate::run::{fast_simulator, record, simulator};
use crate::s3::MotoServer;
use crate::shards::{manifest, onc_pipe_env, outputs, run_together, unsharded};
use crate::support::Scratch;

/// Runs onc-pipe in `dir` with the store's credentials in the environment.
fn run_with(dir: &Path, args: &[String], env: &[(String, String)]) -> crate::run::Ran {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    onc_pipe_env(dir, &args, true, &env)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The arguments of shard `k` of 4 on "machine" `machine` (its own local folder).
fn shard(k: u32, machine: &str, cache: &str) -> Vec<String> {
    args(&[
        "run",
        "m.toml",
        "--shard",
        &format!("{k}/4"),
        "--cache-dir",
        cache,
        "--local-cache",
        machine,
        "--json",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_on_four_machines_share_one_s3_cache_and_order_nothing_twice() {
    let (expected, whole) = unsharded().await;
    let moto = MotoServer::start().unwrap();
    let bucket = moto.create_bucket().unwrap();
    let cache = format!("s3://{bucket}/lab/cache");
    let env = moto.env();
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    let dir = scratch.path().to_path_buf();
    let runs = |machine: &'static str| {
        (1..=4)
            .map(|k| shard(k, &format!("{machine}-{k}"), &cache))
            .collect::<Vec<_>>()
    };
    let (d, e, r) = (dir.clone(), env.clone(), runs("machine"));
    let first = tokio::task::spawn_blocking(move || run_together(&d, r, &e))
        .await
        .unwrap();
    for (k, ran) in first.iter().enumerate() {
        assert_eq!(ran.code, 0, "shard {}: {}", k + 1, ran.stderr);
    }
    assert_eq!(outputs(&scratch.path().join("data")), expected);
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    // Each file served once and stored by one machine: a file straddling two shards' requests
    // is named with a HEAD and claimed in the store before it is sent, and the other machine
    // takes it from the store.
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
    // One token across four machines: within the manifest's limits (4 runs, 4 downloads).
    assert_eq!(stats.per_token.len(), 1, "{stats:?}");
    for token in stats.per_token.values() {
        assert!(token.max_runs_in_flight <= 4, "{stats:?}");
        assert!(token.max_downloads_in_flight <= 4, "{stats:?}");
    }
    for ran in &first {
        let store = &record(ran)["store"];
        assert_eq!(store["url"], cache.as_str(), "{}", ran.stdout);
        assert!(store["requests"]["put"].as_u64().unwrap() > 0, "{store}");
    }

    // The same four machines again: everything is in their folders, nothing is asked of ONC,
    // and of the store only the credential probe.
    let (d, e, r) = (dir.clone(), env.clone(), runs("machine"));
    let again = tokio::task::spawn_blocking(move || run_together(&d, r, &e))
        .await
        .unwrap();
    for ran in &again {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        let value = record(ran);
        assert_eq!(value["http_requests"], 0, "{}", ran.stdout);
        assert_eq!(value["store"]["requests"]["list"], 1, "{}", ran.stdout);
        assert_eq!(value["store"]["requests"]["head"], 0, "{}", ran.stdout);
        assert_eq!(value["store"]["requests"]["get"], 0, "{}", ran.stdout);
        assert_eq!(value["store"]["requests"]["put"], 0, "{}", ran.stdout);
    }
    // Four new machines with empty folders: the store serves them, ONC is not asked.
    std::fs::remove_dir_all(scratch.path().join("data")).unwrap();
    let (d, e, r) = (dir.clone(), env.clone(), runs("new"));
    let fresh = tokio::task::spawn_blocking(move || run_together(&d, r, &e))
        .await
        .unwrap();
    for ran in &fresh {
        assert_eq!(ran.code, 0, "{}", ran.stderr);
        assert_eq!(record(ran)["http_requests"], 0, "{}", ran.stdout);
    }
    assert_eq!(outputs(&scratch.path().join("data")), expected);
    assert_eq!(sim.stats().submissions, stats.submissions);
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_on_two_machines_order_the_overlap_once() {
    let moto = MotoServer::start().unwrap();
    let bucket = moto.create_bucket().unwrap();
    let cache = format!("s3://{bucket}/team");
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    let first = manifest(&sim.base_url, 4, 4);
    let second = first.replace("dir = \"data\"", "dir = \"theirs\"")
        + r#"
[plan.whales]
device = "ICLISTENHF6324"
windows = [{ start = 2024-04-01T09:00:00Z, end = 2024-04-01T09:00:10Z, label = "whale" }]

[fetch.whale_audio]
plan = "whales"
archive = "flac"
"#;
    scratch.write("mine.toml", &first);
    scratch.write("theirs.toml", &second);
    let dir = scratch.path().to_path_buf();
    let runs = vec![
        args(&[
            "run",
            "mine.toml",
            "--json",
            "--cache-dir",
            &cache,
            "--local-cache",
            "laptop",
        ]),
        args(&[
            "run",
            "theirs.toml",
            "--json",
            "--cache-dir",
            &cache,
            "--local-cache",
            "desktop",
        ]),
    ];
    let env = moto.env();
    let ran = tokio::task::spawn_blocking(move || run_together(&dir, runs, &env))
        .await
        .unwrap();
    for run in &ran {
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let (mine, theirs) = (record(&ran[0]), record(&ran[1]));
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "{stats:?}");
    assert_eq!(
        stats.submissions,
        theirs["runs_total"].as_u64().unwrap(),
        "the overlap ordered once: {mine} {theirs}"
    );
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_killed_mid_run_and_rerun_on_another_machine_reattaches_to_its_onc_runs() {
    let moto = MotoServer::start().unwrap();
    let bucket = moto.create_bucket().unwrap();
    let cache = format!("s3://{bucket}/kill");
    // Slow enough that ONC's runs are still going when the shard is killed.
    let sim = simulator(SimConfig {
        sample_rate: 8_000,
        time_scale: 0.01,
        ..SimConfig::default()
    })
    .await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_onc-pipe"));
    command
        .args([
            "run",
            "m.toml",
            "--cache-dir",
            &cache,
            "--local-cache",
            "first",
            "--quiet",
        ])
        .current_dir(scratch.path())
        .env("ONC_TOKEN", crate::run::TOKEN)
        .env_remove("ONC_BASE_URL")
        .envs(moto.env())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    // Killed once ONC has accepted a submission and its ids have reached the claim.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sim.stats().submissions == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    child.kill().unwrap();
    let _ = child.wait();
    let before = sim.stats();
    assert!(before.submissions > 0, "{before:?}");
    // ONC has no idempotency key: a submission whose ids had not reached the store when the
    // run died (a PUT after ONC's answer; the local journal covers a re-run on the same
    // machine) cannot be found from another machine. Count the ones that had.
    let listed = moto
        .request(&crate::s3::S3Request::new("list", &bucket).key("kill/claims-v1/"))
        .unwrap();
    let journaled = listed
        .keys
        .unwrap_or_default()
        .iter()
        .filter(|key| {
            let got = moto
                .request(&crate::s3::S3Request::new("get", &bucket).key(key))
                .unwrap();
            got.body.is_some_and(|body| body.contains("dp_request_id"))
        })
        .count() as u64;
    assert!(
        journaled > 0,
        "no claim carried ids when the run was killed"
    );
    // Another machine (an empty local folder) takes the dead run's claims over once their
    // lease has passed unrenewed, with the ONC ids they carry.
    let dir = scratch.path().to_path_buf();
    let env = moto.env();
    let rerun = args(&[
        "run",
        "m.toml",
        "--json",
        "--cache-dir",
        &cache,
        "--local-cache",
        "second",
    ]);
    let ran = tokio::task::spawn_blocking(move || run_with(&dir, &rerun, &env))
        .await
        .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let after = sim.stats();
    let unjournaled = before.submissions - journaled;
    assert_eq!(
        after.duplicate_submissions, unjournaled,
        "{journaled} of {} journaled: {after:?}",
        before.submissions
    );
    assert_eq!(
        after.submissions,
        record(&ran)["runs_total"].as_u64().unwrap() + unjournaled,
        "only submissions whose ids never reached the store are made again: \
         {before:?} {after:?}"
    );
    assert!(
        record(&ran)["runs_reattached"].as_u64().unwrap() >= journaled,
        "{}",
        ran.stdout
    );

    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_s3_credential_stops_the_run_with_exit_3_before_anything_is_ordered() {
    let moto = MotoServer::start().unwrap();
    let bucket = moto.create_bucket().unwrap();
    let cache = format!("s3://{bucket}/lab");
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &manifest(&sim.base_url, 4, 4));
    for env in [moto.wrong_credentials_env(), moto.unknown_key_env()] {
        let dir = scratch.path().to_path_buf();
        let run = args(&[
            "run",
            "m.toml",
            "--cache-dir",
            &cache,
            "--local-cache",
            "here",
        ]);
        let ran = tokio::task::spawn_blocking(move || run_with(&dir, &run, &env))
            .await
            .unwrap();
        assert_eq!(ran.code, 3, "{}", ran.stderr);
        assert!(
            ran.stderr.contains(&cache),
            "names the store: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("refused the credentials"),
            "says why: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains("never treats this as a cache miss"),
            "{}",
            ran.stderr
        );
    }
    // Nothing was asked of ONC, and nothing reached the output tree.
    assert_eq!(sim.stats().requests_total, 0);
    let data = scratch.path().join("data");
    assert!(!data.exists() || crate::run::tree(&data).is_empty());
    sim.stop().await;
}

#[test]
fn doctor_says_what_a_store_can_do_and_which_mode_it_allows() {
    let moto = MotoServer::start().unwrap();
    let bucket = moto.create_bucket().unwrap();
    let scratch = Scratch::new();
    let url = format!("s3://{bucket}/lab");
    let ran = run_with(
        scratch.path(),
        &args(&["doctor", "--cache", &url]),
        &moto.env(),
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    for line in [
        "ok   reach and credentials",
        "ok   create-if-absent",
        "ok   list-after-write",
        "ok   compare-and-swap",
        "mode: team cache; claims by create-if-absent",
    ] {
        assert!(ran.stdout.contains(line), "{line}: {}", ran.stdout);
    }
    // It cleans up after itself.
    let left = moto
        .request(&crate::s3::S3Request::new("list", &bucket).key("lab/doctor/"))
        .unwrap();
    assert_eq!(left.keys.unwrap_or_default(), Vec::<String>::new());

    let ran = run_with(
        scratch.path(),
        &args(&["doctor", "--cache", &url, "--json"]),
        &moto.wrong_credentials_env(),
    );
    assert_eq!(ran.code, 3, "{}", ran.stdout);
    let diagnosis: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(diagnosis["usable"], false);
    assert_eq!(diagnosis["checks"][0]["ok"], false, "{diagnosis}");
    assert!(
        diagnosis["checks"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("refused the credentials"),
        "{diagnosis}"
    );

    let folder = scratch.path().join("shared");
    let file_url = format!("file://{}", folder.display());
    let ran = run_with(
        scratch.path(),
        &args(&["doctor", "--cache", &file_url]),
        &[],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("claims are OS locks"), "{}", ran.stdout);

    let ran = run_with(
        scratch.path(),
        &args(&["doctor", "--cache", "gs://b/x"]),
        &[],
    );
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("s3://BUCKET[/PREFIX] or file:///ABSOLUTE/FOLDER"),
        "{}",
        ran.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_store_serves_a_second_machine_and_a_manifest_names_it() {
    let sim = fast_simulator().await;
    let scratch = Scratch::new();
    let team = scratch.path().join("team-store");
    let text = manifest(&sim.base_url, 4, 4).replace(
        "cache = \"cache\"",
        &format!("cache = \"file://{}\"", team.display()),
    );
    scratch.write("m.toml", &text);
    let dir = scratch.path().to_path_buf();
    let first = args(&["run", "m.toml", "--json", "--local-cache", "one"]);
    let second = args(&["run", "m.toml", "--json", "--local-cache", "two"]);
    let (ran, again) = tokio::task::spawn_blocking(move || {
        (run_with(&dir, &first, &[]), run_with(&dir, &second, &[]))
    })
    .await
    .unwrap();
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(record(&again)["http_requests"], 0, "{}", again.stdout);
    assert!(team.join("objects-v1").is_dir());
    let bad = text.replace(&format!("file://{}", team.display()), "ftp://x/y");
    scratch.write("bad.toml", &bad);
    let dir = scratch.path().to_path_buf();
    let ran =
        tokio::task::spawn_blocking(move || run_with(&dir, &args(&["validate", "bad.toml"]), &[]))
            .await
            .unwrap();
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("bad.toml:14:9")
            && ran.stderr.contains("`ftp://` is not a supported store"),
        "{}",
        ran.stderr
    );
    sim.stop().await;
}
