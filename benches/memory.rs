//! Memory while downloading (issue 11): the peak RSS of `onc-pipe run` against the bytes it
//! downloads, for archived 64 kHz FLAC over increasing ranges (~100 MB, ~500 MB, >= 1 GB).
//!
//! Input: the simulator (in this process, 64 kHz, a fast time scale) and the real binary in a
//! child process, one fresh output and cache folder per range. Output: one line per range with
//! the bytes downloaded (the simulator's count of file bytes served), the child's peak RSS and
//! their ratio, then the growth of the peak from the smallest range to the largest. Flat means
//! the peak does not grow with the bytes: downloads stream to disk in fixed-size buffers.
//!
//! Peak RSS is the child's `ru_maxrss`, read by `/usr/bin/time -f %M` (the crate forbids the
//! `unsafe` a direct `wait4` call would need); without `/usr/bin/time` the column says `n/a`.
//! Run with `cargo bench --bench memory`; `MEMORY_BENCH_HOURS=0.25,1,2.5` changes the ranges,
//! `MEMORY_BENCH_WORKERS=1` the files downloading at once (default 4).
//! Not a test: it asserts nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark aborts on a broken setup

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use onc_sim::{SimConfig, start};

const TIME: &str = "/usr/bin/time";
/// Archived files are listed from 2024-04-01T00:00:00Z on ICLISTENHF6324 (deployed since 2021).
const START: &str = "2024-04-01T00:00:00Z";

fn manifest(base_url: &str, hours: f64, workers: u32) -> String {
    let end = chrono::DateTime::parse_from_rfc3339(START).unwrap()
        + chrono::Duration::milliseconds((hours * 3_600_000.0) as i64);
    format!(
        r#"version = 1

[onc]
base_url = "{base_url}"
stagger = "10ms"
poll_interval = "50ms"
download_workers = {workers}

[output]
dir = "data"
cache = "cache"

[plan.range]
device = "ICLISTENHF6324"
range = {{ start = {START}, end = {} }}

[fetch.audio]
plan = "range"
archive = "flac"
"#,
        end.to_utc().format("%Y-%m-%dT%H:%M:%SZ")
    )
}

/// Runs `onc-pipe run` on `manifest` in `dir`; its exit code and peak RSS in KiB.
fn run_child(dir: &Path) -> (i32, Option<u64>) {
    let binary = env!("CARGO_BIN_EXE_onc-pipe");
    let rss_file = dir.join("peak-rss.txt");
    let with_time = Path::new(TIME).exists();
    let mut command = if with_time {
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    let output = command
        .args(["run", "m.toml", "--no-progress", "--force"])
        .current_dir(dir)
        .env("ONC_TOKEN", "memory-bench-token")
        .env_remove("ONC_BASE_URL")
        .output()
        .unwrap();
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    let rss = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|text| text.lines().last()?.trim().parse().ok());
    (output.status.code().unwrap_or(-1), rss)
}

fn main() {
    let hours: Vec<f64> = std::env::var("MEMORY_BENCH_HOURS")
        .ok()
        .map(|text| {
            text.split(',')
                .filter_map(|h| h.trim().parse().ok())
                .collect()
        })
        .unwrap_or_else(|| vec![0.25, 1.25, 2.5]);
    // Files downloading at once (the manifest's `download_workers`; onc-pipe's default is 4).
    let workers: u32 = std::env::var("MEMORY_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(4);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let config = SimConfig {
        sample_rate: 64_000,
        time_scale: 0.001,
        ..SimConfig::default()
    };
    let sim = runtime
        .block_on(start(config, SocketAddr::from(([127, 0, 0, 1], 0))))
        .unwrap();
    println!(
        "memory while downloading: archived 64 kHz FLAC, `onc-pipe run` in a child process, \
         {workers} download workers"
    );
    println!(
        "{:>7}  {:>6}  {:>15}  {:>13}  {:>14}  {:>7}",
        "hours", "files", "bytes", "peak RSS", "RSS / bytes", "wall"
    );
    let mut rows = Vec::new();
    for h in hours {
        let scratch = tempfile::tempdir().unwrap();
        std::fs::write(
            scratch.path().join("m.toml"),
            manifest(&sim.base_url, h, workers),
        )
        .unwrap();
        let before = sim.stats();
        let started = Instant::now();
        let (code, rss_kib) = run_child(scratch.path());
        let wall = started.elapsed().as_secs_f64();
        let after = sim.stats();
        let bytes = after.bytes_served - before.bytes_served;
        let files = after.files_served - before.files_served;
        let rss_text = rss_kib.map_or("n/a".to_owned(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        });
        let ratio = rss_kib.map_or("n/a".to_owned(), |k| {
            format!("{:.4}", (k as f64 * 1024.0) / bytes.max(1) as f64)
        });
        println!(
            "{h:>7}  {files:>6}  {:>15}  {rss_text:>13}  {ratio:>14}  {wall:>6.1}s{}",
            format!("{:.1} MB", bytes as f64 / 1e6),
            if code == 0 {
                String::new()
            } else {
                format!("  (exit {code})")
            }
        );
        rows.push((bytes, rss_kib));
    }
    if let (Some((b0, Some(r0))), Some((b1, Some(r1)))) = (rows.first(), rows.last()) {
        println!(
            "bytes x{:.1}, peak RSS x{:.2} ({:+.1} MiB)",
            *b1 as f64 / (*b0).max(1) as f64,
            *r1 as f64 / (*r0).max(1) as f64,
            (*r1 as f64 - *r0 as f64) / 1024.0
        );
    }
    runtime.block_on(sim.stop());
}
