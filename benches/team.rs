//! Team-cache and shard benchmark (issue 12). Run with `cargo bench --bench team`; needs the
//! moto venv the tests use (`target/moto-venv`, made on first use). Not a test: asserts nothing.
//!
//! 1. **No-op re-run on an `s3://` cache of 10,000 files** (834 requests of 12 five-minute
//!    files, on moto on loopback): a warm machine (its local folder complete) and a cold one (an
//!    empty folder, everything pulled from the store). Prints requests to the store and wall time,
//!    against baselines measured in the same run: the folder-only re-run, and a bare GET of every
//!    object at the same concurrency (the least a cold machine must transfer).
//! 2. **Clip throughput with 1, 2 and 4 local shards** (`run --offline --shard k/N` at once) on
//!    one cached manifest of 96 clipped events, each trial on a copy of the same fetched cache.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark aborts on a broken setup

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use onc_pipe::cache::remote::{Remote, RequestTotals};
use onc_pipe::cache::{Cache, CoverageEntry, StoredFile};
use onc_pipe::compile::{Compiled, compile};
use onc_pipe::dag::NodeDetail;
use onc_pipe::exec::{RunSummary, execute, source_identity};
use onc_pipe::onc::{ClientConfig, OncClient, Token};

#[allow(dead_code)]
#[path = "../tests/it/s3.rs"]
mod s3;

/// What `tests/it/s3.rs` takes from the tests' support module.
mod support {
    pub fn repo() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }
}

const BASE_URL: &str = "http://127.0.0.1:9/";

fn compiled(dir: &Path, text: &str) -> Compiled {
    let path = dir.join("m.toml");
    std::fs::write(&path, text).unwrap();
    compile(&path).unwrap_or_else(|d| panic!("{d:?}"))
}

async fn run(compiled: &Compiled, cache: Cache, data: &Path) -> RunSummary {
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while received.recv().await.is_some() {} });
    let (_stop, cancel) = tokio::sync::watch::channel(false);
    let work = onc_pipe::exec::Work {
        plan: &compiled.plan,
        dag: &compiled.dag,
        manifest: &compiled.loaded.file,
        only: None,
        alone_on_cache: true,
    };
    let client = OncClient::new(ClientConfig::new(BASE_URL, Token::new("bench-token"))).unwrap();
    let summary = execute(work, client, cache, data, BASE_URL, events, cancel).await;
    let _ = drain.await;
    summary
}

fn store(moto: &s3::MotoServer, bucket: &str) -> Arc<Remote> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (key, secret) = moto.credentials();
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(moto.endpoint())
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id(key)
        .with_secret_access_key(secret)
        .build()
        .unwrap();
    Arc::new(
        Remote::with_store(
            Arc::new(s3),
            format!("s3://{bucket}/bench"),
            "bench".into(),
            onc_pipe::cache::remote::DEFAULT_LEASE,
        )
        .unwrap(),
    )
}

fn delta(after: RequestTotals, before: RequestTotals) -> String {
    format!(
        "{} requests ({} get, {} head, {} put, {} list)",
        after.requests() - before.requests(),
        after.get - before.get,
        after.head - before.head,
        after.put - before.put,
        after.list - before.list
    )
}

async fn s3_noop_rerun(moto: &s3::MotoServer) {
    const FILES: i64 = 10_000;
    let bucket = moto.create_bucket().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let end = chrono::DateTime::parse_from_rfc3339("2024-04-01T00:00:00Z").unwrap()
        + chrono::TimeDelta::minutes(5 * FILES);
    let text = format!(
        r#"version = 1

[onc]
base_url = "{BASE_URL}"

[output]
dir = "data"
cache = "cache"

[plan.long]
device = "ICLISTENHF6324"
range = {{ start = 2024-04-01T00:00:00Z, end = {} }}

[fetch.plotres]
plan = "long"
product = "HSD"
extension = "mat"
per_request = 12
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}
"#,
        end.format("%Y-%m-%dT%H:%M:%SZ")
    );
    let compiled = compiled(dir.path(), &text);
    // Machine A fills its folder and the store as completed runs would (write-through), on 8
    // threads.
    let remote_a = store(moto, &bucket);
    let cache_a = Cache::open(&dir.path().join("a"))
        .unwrap()
        .with_remote(remote_a.clone());
    let requests: Vec<_> = compiled
        .dag
        .nodes()
        .filter_map(|node| match &node.detail {
            NodeDetail::Request { query, .. } => Some((node.key.to_hex(), query.clone())),
            _ => None,
        })
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in requests.chunks(requests.len().div_ceil(8)) {
            let cache = cache_a.clone();
            scope.spawn(move || {
                for (key, query) in part {
                    let (from, to) = (query.from_ms(), query.to_ms());
                    let mut files = Vec::new();
                    let mut t = from;
                    while t < to {
                        let name = format!("ICLISTENHF6324_{t}-spect_plotRes.mat");
                        let object = cache.store_bytes(name.as_bytes()).unwrap();
                        files.push(StoredFile {
                            name,
                            blake3: object.blake3,
                            size: object.size,
                            start_ms: Some(t),
                            end_ms: Some(t + 300_000),
                        });
                        t += 300_000;
                    }
                    let entry = CoverageEntry {
                        key: key.clone(),
                        from_ms: from,
                        to_ms: to,
                        files,
                        dp_request_id: None,
                        dp_run_id: None,
                        completed_at: "2026-01-01T00:00:00.000Z".into(),
                    };
                    cache
                        .record_coverage(&source_identity(BASE_URL, query), &entry)
                        .unwrap();
                }
            });
        }
    });
    let filled = started.elapsed();
    let (data_a, data_b, data_c) = (
        dir.path().join("data-a"),
        dir.path().join("data-b"),
        dir.path().join("data-c"),
    );
    // Warm: the first run links the outputs, the second is the re-run users make.
    run(&compiled, cache_a.clone(), &data_a).await;
    let before = remote_a.totals();
    let started = Instant::now();
    let warm = run(&compiled, cache_a.clone(), &data_a).await;
    let warm_wall = started.elapsed();
    let warm_requests = delta(remote_a.totals(), before);
    // Baseline: the same re-run on a folder cache without a store.
    let folder_only = Cache::open(&dir.path().join("a")).unwrap();
    let started = Instant::now();
    run(&compiled, folder_only, &data_a).await;
    let folder_wall = started.elapsed();
    // Cold: machine B, an empty folder; everything comes from the store.
    let remote_b = store(moto, &bucket);
    let cache_b = Cache::open(&dir.path().join("b"))
        .unwrap()
        .with_remote(remote_b.clone());
    let started = Instant::now();
    let pulled = onc_pipe::run::pull_missing(&compiled.dag, None, &cache_b, BASE_URL).unwrap();
    let cold = run(&compiled, cache_b, &data_b).await;
    let cold_wall = started.elapsed();
    let cold_requests = delta(remote_b.totals(), RequestTotals::default());
    // Baseline: a bare GET of every object, 8 at once (what a cold machine must transfer).
    let remote_c = store(moto, &bucket);
    let keys = remote_c.list("objects-v1").unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for part in keys.chunks(keys.len().div_ceil(8)) {
            let remote = remote_c.clone();
            scope.spawn(move || {
                for key in part {
                    remote.get(key).unwrap();
                }
            });
        }
    });
    let bare = started.elapsed();
    let _ = data_c;
    println!(
        "no-op re-run on an s3:// cache (moto on loopback) of {FILES} files in {} requests",
        requests.len()
    );
    println!(
        "  filling the store from machine A (write-through, 8 threads): {:.1} s",
        filled.as_secs_f64()
    );
    println!(
        "  warm machine: {:>8.1} ms, {warm_requests}; {} HTTP requests to ONC, {} files cached   baseline folder-only re-run {:>7.1} ms   ratio {:.2}x",
        warm_wall.as_secs_f64() * 1e3,
        warm.http_requests,
        warm.stats.files_cached,
        folder_wall.as_secs_f64() * 1e3,
        warm_wall.as_secs_f64() / folder_wall.as_secs_f64()
    );
    println!(
        "  cold machine: {:>8.1} ms, {cold_requests}; {pulled} entries pulled, {} HTTP requests to ONC   baseline bare GET of {} objects (8 at once) {:>7.1} ms   ratio {:.2}x",
        cold_wall.as_secs_f64() * 1e3,
        cold.http_requests,
        keys.len(),
        bare.as_secs_f64() * 1e3,
        cold_wall.as_secs_f64() / bare.as_secs_f64()
    );
}

/// A manifest of `events` one-minute events, one every 7.5 minutes, clipped to NPZ and FLAC,
/// on the built-in simulator.
fn clip_manifest(events: u32) -> String {
    let mut windows = String::new();
    for n in 0..events {
        let start = chrono::DateTime::parse_from_rfc3339("2024-04-01T00:02:00Z").unwrap()
            + chrono::TimeDelta::seconds(450 * i64::from(n));
        let end = start + chrono::TimeDelta::seconds(60);
        windows.push_str(&format!(
            "  {{ start = {}, end = {}, label = \"e{n}\" }},\n",
            start.format("%Y-%m-%dT%H:%M:%SZ"),
            end.format("%Y-%m-%dT%H:%M:%SZ")
        ));
    }
    format!(
        r#"version = 1

[onc]
base_url = "simulator"
max_runs = 4
download_workers = 4

[onc.simulator]
sample_rate = 16000
time_scale = 0.002

[output]
dir = "data"
cache = "cache"

[plan.events]
device = "ICLISTENHF6324"
windows = [
{windows}]

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
pad = "5s"
spectrogram = "npz"
audio = "flac"
"#
    )
}

fn onc_pipe(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
        .args(args)
        .current_dir(dir)
        .env("ONC_TOKEN", "bench-token")
        .env_remove("ONC_BASE_URL")
        .output()
        .unwrap()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn clip_throughput() {
    const EVENTS: u32 = 96;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.toml"), clip_manifest(EVENTS)).unwrap();
    let fetched = onc_pipe(
        dir.path(),
        &["run", "m.toml", "--fetch-only", "--quiet", "--no-progress"],
    );
    assert!(
        fetched.status.success(),
        "{}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    let mut one = None;
    println!("clip throughput: {EVENTS} events (NPZ + FLAC) cut offline from one fetched cache");
    for shards in [1u32, 2, 4] {
        let trial: PathBuf = dir.path().join(format!("trial-{shards}"));
        copy_tree(&dir.path().join("cache"), &trial.join("cache"));
        std::fs::copy(dir.path().join("m.toml"), trial.join("m.toml")).unwrap();
        let started = Instant::now();
        let handles: Vec<_> = (1..=shards)
            .map(|k| {
                let trial = trial.clone();
                std::thread::spawn(move || {
                    let shard = format!("{k}/{shards}");
                    onc_pipe(
                        &trial,
                        &[
                            "run",
                            "m.toml",
                            "--offline",
                            "--shard",
                            &shard,
                            "--quiet",
                            "--no-progress",
                        ],
                    )
                })
            })
            .collect();
        for handle in handles {
            let output = handle.join().unwrap();
            // Exit 1: a few events fall in the simulator's recording gaps (no source file),
            // the same ones in every trial.
            assert!(
                matches!(output.status.code(), Some(0 | 1)),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let wall: Duration = started.elapsed();
        let baseline = *one.get_or_insert(wall);
        println!(
            "  {shards} shard(s) at once: {:>7.2} s, {:>6.1} events/s (a spectrogram and an audio clip each), speed-up {:.2}x over 1 shard",
            wall.as_secs_f64(),
            f64::from(EVENTS) / wall.as_secs_f64(),
            baseline.as_secs_f64() / wall.as_secs_f64()
        );
    }
}

fn main() {
    clip_throughput();
    let moto = s3::MotoServer::start().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(s3_noop_rerun(&moto));
}
