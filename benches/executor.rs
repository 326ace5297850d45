//! Executor benchmark (SPEC §10, issue 4): the seed's scenario 2 — 160 plotRes spectrograms, 12
//! per request: 14 ONC runs, ~168 files — against the simulator under two server models, and a
//! no-op re-run of 10,000 cached files.
//!
//! Run with `cargo bench --bench executor`. For each server model it prints, measured in the same
//! run: onc-pipe's wall time; the simulator's theoretical minimum for the batch (every run
//! submitted at once and processed first-in first-out on the server's capacity, no transfer
//! time); a near-sequential order of the same requests (one run at a time); and HTTP requests per
//! downloaded file. Times are also shown in simulated seconds (wall / time scale). Not a test:
//! it asserts nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark aborts on a broken setup

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use onc_pipe::cache::{Cache, CoverageEntry, StoredFile};
use onc_pipe::compile::{Compiled, compile};
use onc_pipe::dag::NodeDetail;
use onc_pipe::exec::{RunSummary, execute, source_identity};
use onc_pipe::onc::{ClientConfig, OncClient, Token};
use onc_sim::{SimConfig, start};

/// A server model: capacity (runs at once), and processing time = overhead + files × per file.
struct Model {
    name: &'static str,
    /// Real seconds per simulated second. Transfers happen in real time, so the scale must keep
    /// them about as small next to processing as ONC's are (48 MB in a few seconds against 35 s).
    time_scale: f64,
    capacity: usize,
    overhead_s: f64,
    per_file_s: f64,
}

/// Client settings, in simulated seconds (onc-pipe scales them by the simulator's time scale).
struct Client {
    name: &'static str,
    stagger_s: f64,
    poll_s: f64,
    max_runs: u32,
    download_workers: u32,
}

/// Settings are written in ONC's (simulated) time: onc-pipe scales its own timers by the time
/// scale the simulator states in its answers.
fn manifest(base_url: &str, client: &Client) -> String {
    let ms = |s: f64| format!("{}ms", (s * 1000.0).round().max(0.0) as u64);
    format!(
        r#"version = 1

[onc]
base_url = "{base_url}"
stagger = "{}"
poll_interval = "{}"
max_wait = "10m"
max_runs = {}
download_workers = {}

[output]
dir = "data"
cache = "cache"

[plan.sampled]
device = "ICLISTENHF6324"
sample = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-03T00:00:00Z, count = 160, per_request = 12 }}

[fetch.plotres]
plan = "sampled"
product = "HSD"
extension = "mat"
per_request = 12
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}
"#,
        ms(client.stagger_s),
        ms(client.poll_s),
        client.max_runs,
        client.download_workers,
    )
}

fn compiled(dir: &Path, text: &str) -> Compiled {
    let path = dir.join("m.toml");
    std::fs::write(&path, text).unwrap();
    compile(&path).unwrap_or_else(|d| panic!("{d:?}"))
}

fn client(base_url: &str) -> OncClient {
    OncClient::new(ClientConfig::new(base_url, Token::new("bench-token"))).unwrap()
}

async fn run(compiled: &Compiled, client: OncClient, dir: &Path) -> RunSummary {
    let cache = Cache::open(&dir.join("cache")).unwrap();
    let (events, mut received) = tokio::sync::mpsc::unbounded_channel();
    let drain = tokio::spawn(async move { while received.recv().await.is_some() {} });
    let (_stop, cancel) = tokio::sync::watch::channel(false);
    let base_url = compiled.plan.settings.base_url.clone();
    let work = onc_pipe::exec::Work {
        plan: &compiled.plan,
        dag: &compiled.dag,
        manifest: &compiled.loaded.file,
        only: None,
        alone_on_cache: true,
    };
    let summary = execute(
        work,
        client,
        cache,
        &dir.join("data"),
        &base_url,
        events,
        cancel,
    )
    .await;
    let _ = drain.await;
    summary
}

/// Makespan of the runs' processing times on `capacity` slots, first in first out, all
/// submitted at time 0: the least any client could wait for the batch.
fn fifo_makespan(durations: &[f64], capacity: usize) -> f64 {
    let mut slots = vec![0.0_f64; capacity.max(1)];
    let mut end = 0.0_f64;
    for &d in durations {
        let (index, free_at) = slots
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        slots[index] = free_at + d;
        end = end.max(slots[index]);
    }
    end
}

/// A simulator for `model`, warmed up: the batch is run once so the simulator has generated
/// and cached every file. Generating MAT files is the simulator's CPU cost, not ONC's; measured
/// runs then see transfers of ready files, as from ONC's FTP area.
async fn warm_simulator(model: &Model) -> (onc_sim::SimHandle, Vec<f64>) {
    let config = SimConfig {
        sample_rate: 8_000,
        time_scale: model.time_scale,
        capacity: model.capacity,
        run_overhead_s: model.overhead_s,
        on_demand_file_s: model.per_file_s,
        ..SimConfig::default()
    };
    let sim = start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let warm = Client {
        name: "warm-up",
        stagger_s: 0.0,
        poll_s: 5.0,
        max_runs: 16,
        download_workers: 4,
    };
    let dir = tempfile::tempdir().unwrap();
    let compiled = compiled(dir.path(), &manifest(&sim.base_url, &warm));
    // Each run's processing time in simulated seconds, from the files ONC will return for it
    // (the simulated archive's files overlapping the request window).
    let profile = onc_sim::archive::DeviceProfile {
        code: "ICLISTENHF6324".into(),
        sample_rate: 8_000,
    };
    let durations: Vec<f64> = compiled
        .dag
        .nodes()
        .filter_map(|node| match &node.detail {
            NodeDetail::Request { query, .. } => {
                let files =
                    onc_sim::archive::files_overlapping(&profile, query.from_ms(), query.to_ms())
                        .len();
                Some(model.overhead_s + model.per_file_s * files as f64)
            }
            _ => None,
        })
        .collect();
    let _ = run(&compiled, client(&sim.base_url), dir.path()).await;
    (sim, durations)
}

struct Measured {
    wall: Duration,
    summary: RunSummary,
    requests: u64,
    files: u64,
}

async fn measure(sim: &onc_sim::SimHandle, client_settings: &Client) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let compiled = compiled(dir.path(), &manifest(&sim.base_url, client_settings));
    let before = sim.stats().requests_total;
    let started = Instant::now();
    let summary = run(&compiled, client(&sim.base_url), dir.path()).await;
    let wall = started.elapsed();
    Measured {
        wall,
        requests: sim.stats().requests_total - before,
        files: summary.stats.files_downloaded,
        summary,
    }
}

fn line(label: &str, wall: Duration, minimum_s: f64, time_scale: f64) {
    println!(
        "  {label:<48} {:>7.2} s real = {:>6.1} s simulated  ({:.2}x the minimum)",
        wall.as_secs_f64(),
        wall.as_secs_f64() / time_scale,
        wall.as_secs_f64() / (minimum_s * time_scale)
    );
}

async fn batch() {
    let models = [
        Model {
            name: "seed-calibrated (capacity 16, ~35 s per 12-file request; time scale 0.2)",
            time_scale: 0.2,
            capacity: 16,
            overhead_s: 5.0,
            per_file_s: 2.5,
        },
        Model {
            name: "capacity-bound (4 runs at once, 25 s per on-demand file; time scale 0.02)",
            time_scale: 0.02,
            capacity: 4,
            overhead_s: 5.0,
            per_file_s: 25.0,
        },
    ];
    let ours = Client {
        name: "onc-pipe tuned (stagger 0.2 s, 16 runs)",
        stagger_s: 0.2,
        poll_s: 30.0,
        max_runs: 16,
        download_workers: 4,
    };
    let seed_settings = Client {
        name: "onc-pipe defaults (stagger 3 s, 8 runs)",
        stagger_s: 3.0,
        poll_s: 30.0,
        max_runs: 8,
        download_workers: 4,
    };
    let sequential = Client {
        name: "one run at a time (sequential order)",
        stagger_s: 0.2,
        poll_s: 30.0,
        max_runs: 1,
        download_workers: 1,
    };
    for model in &models {
        println!("{}", model.name);
        let (sim, durations) = warm_simulator(model).await;
        let minimum = fifo_makespan(&durations, model.capacity);
        let measured = measure(&sim, &ours).await;
        println!(
            "  {} runs, {} files; theoretical minimum {:.1} s simulated ({:.2} s real)",
            durations.len(),
            measured.files,
            minimum,
            minimum * model.time_scale
        );
        line(ours.name, measured.wall, minimum, model.time_scale);
        println!(
            "  {:<48} {} HTTP requests for {} files = {:.2} per file (polls and retries included); {} failures",
            "",
            measured.requests,
            measured.files,
            measured.requests as f64 / measured.files.max(1) as f64,
            measured.summary.failures.len()
        );
        let seed = measure(&sim, &seed_settings).await;
        line(seed_settings.name, seed.wall, minimum, model.time_scale);
        let one_by_one = measure(&sim, &sequential).await;
        line(sequential.name, one_by_one.wall, minimum, model.time_scale);
        println!(
            "  ratio onc-pipe / one run at a time: {:.3}",
            measured.wall.as_secs_f64() / one_by_one.wall.as_secs_f64()
        );
        sim.stop().await;
    }
}

/// A cache holding 10,000 five-minute files for a 34.7-day range, then a re-run of it.
async fn cached_rerun() {
    const FILES: i64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let base_url = "http://127.0.0.1:9/";
    let text = format!(
        r#"version = 1

[onc]
base_url = "{base_url}"

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
        (chrono::DateTime::parse_from_rfc3339("2024-04-01T00:00:00Z").unwrap()
            + chrono::TimeDelta::minutes(5 * FILES))
        .format("%Y-%m-%dT%H:%M:%SZ")
    );
    let compiled = compiled(dir.path(), &text);
    // Fill the cache as completed runs would have: one small object per file, one coverage
    // entry per request.
    let cache = Cache::open(&dir.path().join("cache")).unwrap();
    let mut stored = 0;
    for node in compiled.dag.nodes() {
        let NodeDetail::Request { query, .. } = &node.detail else {
            continue;
        };
        let (from, to) = (query.from_ms(), query.to_ms());
        let mut files = Vec::new();
        let mut t = from;
        while t < to {
            let name = format!(
                "ICLISTENHF6324_{}-spect_plotRes.mat",
                chrono::DateTime::from_timestamp_millis(t)
                    .unwrap()
                    .format("%Y%m%dT%H%M%S%.3fZ")
            );
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
        stored += files.len();
        let entry = CoverageEntry {
            key: node.key.to_hex(),
            from_ms: from,
            to_ms: to,
            files,
            dp_request_id: None,
            dp_run_id: None,
            completed_at: "2026-01-01T00:00:00.000Z".into(),
        };
        cache
            .record_coverage(&source_identity(base_url, query), &entry)
            .unwrap();
    }
    // The first run links the output tree; the second is the no-op re-run users make.
    let first = run(&compiled, client(base_url), dir.path()).await;
    let started = Instant::now();
    let again = run(&compiled, client(base_url), dir.path()).await;
    let rerun = started.elapsed();
    // Baseline in the same run: stat every output file once.
    let started = Instant::now();
    let mut seen = 0;
    let mut stack = vec![dir.path().join("data")];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                seen += 1;
            }
        }
    }
    let walk = started.elapsed();
    println!("no-op re-run of a fully cached manifest");
    println!(
        "  {stored} cached files in {} requests; first run {} HTTP requests, re-run {} HTTP requests, {} files cached",
        compiled.dag.count(onc_pipe::dag::NodeKind::ProductRequest),
        first.http_requests,
        again.http_requests,
        again.stats.files_cached
    );
    println!(
        "  re-run (execute: coverage, stat, links): {:>7.1} ms   baseline (walk + stat {seen} outputs): {:>6.1} ms   ratio {:.1}x   target < 500 ms",
        rerun.as_secs_f64() * 1e3,
        walk.as_secs_f64() * 1e3,
        rerun.as_secs_f64() / walk.as_secs_f64()
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        cached_rerun().await;
        batch().await;
    });
}
