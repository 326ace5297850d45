//! Peers benchmark (issue 11): the seed's scenario 2 — 160 plotRes spectrograms sampled over two
//! days, 12 per request: 14 ONC runs, ~168 files — fetched by onc-pipe, by the Python tool
//! (`onc-hydrophone-data`, PyPI) and by ONC's official client (`onc` 2.6.0, PyPI) ordering the
//! windows one after another, each against its own fresh `onc-pipe simulate`, under three server
//! models, in one run.
//!
//! ```sh
//! cargo build --release && cargo bench --bench peers
//! ```
//!
//! The release binary (`target/release/onc-pipe`) must exist: the benchmark runs it both as the
//! simulator and as the client, and builds nothing. The Python peers run from a venv at
//! `target/peers-venv`, made with `python3 -m venv` and `pip install onc==2.6.0
//! onc-hydrophone-data` when missing (torch comes with the Python tool: several GB, once);
//! without Python or network their rows say why. The drivers are `benches/peers/*.py`.
//!
//! Environment (all optional):
//! * `PEERS_TIME_SCALE` — real seconds per simulated second, default 0.05. `1` runs at real
//!   speed (for requests per file as against ONC), e.g.
//!   `PEERS_TIME_SCALE=1 PEERS_MODELS=3 PEERS_TOOLS=onc-pipe cargo bench --bench peers`.
//! * `PEERS_MODELS` — which server models, default `1,2,3`.
//! * `PEERS_TOOLS` — which clients, default
//!   `onc-pipe,onc-pipe-tuned,python-tool,python-tool-no-validation,onc-client`.
//!
//! Fairness: the simulator runs ONC's model `time_scale` times faster. onc-pipe reads the
//! simulator's time scale from its answers and scales its own timers (stagger, polls, backoff;
//! its manifest gives its defaults, or the tuned row's settings, in ONC's time). The Python peers run under `benches/peers/sim_time.py`, which makes every
//! `time.sleep` sleep `seconds × time_scale` and hands onc 2.6.0 ONC's estimate in simulated
//! seconds (the simulator states it in real seconds), so their poll periods, staggers and
//! retries are their real-time values in simulated time. CPU work is not scaled: the Python
//! tool's re-validation of every MAT file after each run is shown with and without.
//!
//! For each model × client it prints: wall seconds; simulated seconds (wall / time scale); ×
//! the theoretical minimum; HTTP requests per file written; duplicate submissions; files served
//! more than once; the most runs in flight. The minimum ("stagger-bound") is every run submitted
//! as early as the client's stagger allows (3 s for onc-pipe's and the Python tool's defaults,
//! 0.2 s tuned, none for one-at-a-time ordering), processed first in, first out on the model's
//! capacity, with no transfer time; a run's processing time is overhead + per-file cost × the
//! files the simulator returns for its window. Not a test: it asserts nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark aborts on a broken setup

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use onc_pipe::compile::compile;
use onc_pipe::dag::NodeDetail;
use serde_json::Value;

/// Accepted by the simulator (anything not starting with `invalid`); shaped like ONC's tokens
/// because onc 2.6.0 strips everything but letters, digits and hyphens.
const TOKEN: &str = "8c5b6a2e-4f1d-4c3a-9e7b-2d6f0a1b3c4d";
const DEVICE: &str = "ICLISTENHF6324";
/// Small files: the simulator's MAT generation stays cheap next to the run model.
const SAMPLE_RATE: u32 = 8_000;
/// The simulator's default run overhead, seconds (`onc-pipe simulate` has no flag for it).
const OVERHEAD_S: f64 = 5.0;
/// The seed's ~35 s per 12-file request: the simulator's default on-demand cost per file.
const DEFAULT_PER_FILE_S: f64 = 2.5;
/// onc-pipe's and the Python tool's default stagger between submissions, simulated seconds.
const DEFAULT_STAGGER_S: f64 = 3.0;
/// The tuned row: the executor benchmark's settings.
const TUNED_STAGGER_S: f64 = 0.2;
const TUNED_MAX_RUNS: u32 = 16;

struct Model {
    number: u8,
    name: &'static str,
    capacity: usize,
    /// `--per-file-seconds`; `None` keeps the simulator's default.
    per_file_s: Option<f64>,
    /// Whether the simulator generates every file before the client runs (see `warm_up`).
    /// Where all 14 runs fit the capacity they complete within a few real seconds of each other
    /// and the simulator's MAT generation (~4 s of CPU for 167 files at 8 kHz on this machine,
    /// 80 simulated seconds at 0.05) would be timed instead of ONC's model; with 4 slots the runs
    /// finish in waves ~15 real seconds apart and each wave's files are generated while the next
    /// wave processes.
    warm_up: bool,
}

impl Model {
    fn per_file(&self) -> f64 {
        self.per_file_s.unwrap_or(DEFAULT_PER_FILE_S)
    }
}

const MODELS: [Model; 3] = [
    Model {
        number: 1,
        name: "4 runs at once, 25 s per file",
        capacity: 4,
        per_file_s: Some(25.0),
        warm_up: false,
    },
    Model {
        number: 2,
        name: "16 runs at once, 25 s per file",
        capacity: 16,
        per_file_s: Some(25.0),
        warm_up: true,
    },
    Model {
        number: 3,
        name: "16 runs at once, 5 s + 2.5 s per file (~35 s per 12-file request)",
        capacity: 16,
        per_file_s: None,
        warm_up: true,
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Peer {
    OncPipe,
    OncPipeTuned,
    PythonTool,
    PythonToolNoValidation,
    OncClient,
}

impl Peer {
    const ALL: [Peer; 5] = [
        Peer::OncPipe,
        Peer::OncPipeTuned,
        Peer::PythonTool,
        Peer::PythonToolNoValidation,
        Peer::OncClient,
    ];

    fn key(self) -> &'static str {
        match self {
            Peer::OncPipe => "onc-pipe",
            Peer::OncPipeTuned => "onc-pipe-tuned",
            Peer::PythonTool => "python-tool",
            Peer::PythonToolNoValidation => "python-tool-no-validation",
            Peer::OncClient => "onc-client",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Peer::OncPipe => "onc-pipe, its defaults",
            Peer::OncPipeTuned => "onc-pipe, stagger 0.2 s + max_runs 16",
            Peer::PythonTool => "the Python tool (onc-hydrophone-data)",
            Peer::PythonToolNoValidation => {
                "the Python tool, its CPU work excluded (MAT re-validation off, startup not timed)"
            }
            Peer::OncClient => "ONC's client (onc 2.6.0), one window after another",
        }
    }

    /// Simulated seconds between two submissions, for the stagger-bound minimum.
    fn stagger_s(self) -> f64 {
        match self {
            Peer::OncPipe | Peer::PythonTool | Peer::PythonToolNoValidation => DEFAULT_STAGGER_S,
            Peer::OncPipeTuned => TUNED_STAGGER_S,
            Peer::OncClient => 0.0,
        }
    }
}

struct Setup {
    time_scale: f64,
    models: Vec<u8>,
    tools: Vec<Peer>,
    binary: PathBuf,
    /// Where runs leave their files and logs, kept for inspection: `target/peers-work`.
    work: PathBuf,
    scripts: PathBuf,
    /// The venv's python, or why the Python peers cannot run.
    python: Result<PathBuf, String>,
}

/// One row of the table.
struct Row {
    model: u8,
    label: String,
    wall_s: Option<f64>,
    minimum_s: f64,
    stats: Option<Stats>,
    /// Distinct MAT files the client wrote.
    files: u64,
    notes: Vec<String>,
}

/// The simulator's accounting of one client (the warm-up's share taken out).
struct Stats {
    requests: Option<u64>,
    endpoints: Vec<(String, u64)>,
    submissions: Option<u64>,
    runs: Option<u64>,
    files_served: Option<u64>,
    bytes_served: Option<u64>,
    duplicate_submissions: Option<u64>,
    /// The simulator counts a name served whole a second time; the warm-up's fetches are
    /// subtracted (the client's first fetch of a file the warm-up fetched is not a repeat).
    files_served_again: Option<u64>,
    /// A high-water mark over all tokens: when the warm-up reached the same figure, the
    /// client's is only known to be at most that ("≤ N").
    max_runs_in_flight: Option<String>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn setup() -> Setup {
    let time_scale: f64 = env_or("PEERS_TIME_SCALE", "0.05")
        .parse()
        .expect("PEERS_TIME_SCALE must be a number");
    assert!(
        time_scale > 0.0 && time_scale.is_finite(),
        "PEERS_TIME_SCALE must be positive"
    );
    let models = env_or("PEERS_MODELS", "1,2,3")
        .split(',')
        .map(|m| m.trim().parse().expect("PEERS_MODELS: numbers 1-3"))
        .collect();
    let wanted = env_or(
        "PEERS_TOOLS",
        "onc-pipe,onc-pipe-tuned,python-tool,python-tool-no-validation,onc-client",
    );
    let tools: Vec<Peer> = Peer::ALL
        .into_iter()
        .filter(|tool| wanted.split(',').any(|w| w.trim() == tool.key()))
        .collect();
    // The bench runs as target/release/deps/peers-HASH.
    let exe = std::env::current_exe().expect("own path");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target folder above release/deps")
        .to_path_buf();
    let binary = target.join("release").join("onc-pipe");
    if !binary.exists() {
        eprintln!(
            "{} is missing: run `cargo build --release` first (same CARGO_TARGET_DIR)",
            binary.display()
        );
        std::process::exit(1);
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers");
    let needs_python = tools
        .iter()
        .any(|t| !matches!(t, Peer::OncPipe | Peer::OncPipeTuned));
    let python = if needs_python {
        python_venv(&target.join("peers-venv"))
    } else {
        Err("not asked for".into())
    };
    Setup {
        time_scale,
        models,
        tools,
        binary,
        work: target.join("peers-work"),
        scripts,
        python,
    }
}

/// The venv's python with both peers installed, installing them from PyPI if needed.
fn python_venv(venv: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin").join("python");
    let ready = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                "import importlib.metadata as m, onc, onc_hydrophone_data; \
                 assert m.version('onc') == '2.6.0', m.version('onc')",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Ok(python);
    }
    eprintln!(
        "installing onc==2.6.0 and onc-hydrophone-data into {} (once; torch is several GB)",
        venv.display()
    );
    if !python.exists() {
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(venv)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            return Err("`python3 -m venv` failed (is python3 installed?)".into());
        }
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "onc==2.6.0",
            "onc-hydrophone-data",
        ])
        .status();
    if !installed.is_ok_and(|s| s.success()) || !ready(&python) {
        return Err("pip install onc==2.6.0 onc-hydrophone-data failed (no network?)".into());
    }
    Ok(python)
}

/// The ONC requests onc-pipe's plan makes for the manifest, as (dateFrom, dateTo) in ONC's form,
/// in time order.
fn onc_pipe_windows(work: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(work).unwrap();
    let path = work.join("plan.toml");
    std::fs::write(&path, manifest("http://127.0.0.1:9/", None)).unwrap();
    let compiled = compile(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let mut queries: Vec<_> = compiled
        .dag
        .nodes()
        .filter_map(|node| match &node.detail {
            NodeDetail::Request { query, .. } => Some(query.clone()),
            _ => None,
        })
        .collect();
    queries.sort_by_key(|q| q.from_ms());
    queries
        .iter()
        .map(|q| {
            let params = q.params();
            (params["dateFrom"].clone(), params["dateTo"].clone())
        })
        .collect()
}

/// The Python tool's windows for the same sample (`download_sampled_spectrograms`):
/// ceil(160 / 12) = 14 windows of (12 - 1) × 5 min, starts spread evenly so the last ends at
/// the range's end.
fn python_tool_windows() -> Vec<(String, String)> {
    let start: DateTime<Utc> = "2024-04-01T00:00:00Z".parse().unwrap();
    let end: DateTime<Utc> = "2024-04-03T00:00:00Z".parse().unwrap();
    let (total, per_request) = (160_i64, 12_i64);
    let length = TimeDelta::seconds((per_request - 1) * 300);
    let requests = (total + per_request - 1) / per_request;
    let usable_us = (end - start - length).num_microseconds().unwrap();
    (0..requests)
        .map(|i| {
            // Python's timedelta(seconds=step * i) rounds to microseconds.
            let offset = (usable_us as f64 / (requests - 1) as f64 * i as f64).round() as i64;
            let from = start + TimeDelta::microseconds(offset);
            (onc_date(from), onc_date(from + length))
        })
        .collect()
}

fn onc_date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Each window's processing time in simulated seconds: overhead + per-file cost × the files the
/// simulated archive holds overlapping it (what the simulator's run model charges).
fn durations(windows: &[(String, String)], model: &Model) -> Vec<f64> {
    let profile = onc_sim::archive::DeviceProfile {
        code: DEVICE.into(),
        sample_rate: SAMPLE_RATE,
    };
    let ms = |text: &str| text.parse::<DateTime<Utc>>().unwrap().timestamp_millis();
    windows
        .iter()
        .map(|(from, to)| {
            let files = onc_sim::archive::files_overlapping(&profile, ms(from), ms(to)).len();
            OVERHEAD_S + model.per_file() * files as f64
        })
        .collect()
}

/// Makespan of runs submitted `stagger_s` apart, in order, each taking the slot that frees
/// first on `capacity` slots (first in, first out, as the simulator schedules), no transfer
/// time: the least a client with that stagger could wait for the batch.
fn fifo_makespan(durations: &[f64], capacity: usize, stagger_s: f64) -> f64 {
    let mut slots = vec![0.0_f64; capacity.max(1)];
    let mut end = 0.0_f64;
    for (i, &d) in durations.iter().enumerate() {
        let submitted = i as f64 * stagger_s;
        let (index, free_at) = slots
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        slots[index] = free_at.max(submitted) + d;
        end = end.max(slots[index]);
    }
    end
}

/// The scenario-2 manifest against `base_url`. onc-pipe scales its own timers by the
/// simulator's advertised time scale, so settings are written in simulated (ONC) time:
/// `tuned` = (stagger, max_runs); `None` writes no `[onc]` settings but the URL (its defaults).
fn manifest(base_url: &str, tuned: Option<(f64, u32)>) -> String {
    let mut onc = format!("base_url = \"{base_url}\"\n");
    if let Some((stagger_s, max_runs)) = tuned {
        onc.push_str(&format!(
            "stagger = \"{}ms\"\nmax_runs = {max_runs}\n",
            (stagger_s * 1000.0).round() as u64
        ));
    }
    format!(
        r#"version = 1

[onc]
{onc}
[output]
dir = "data"
cache = "cache"

[plan.sampled]
device = "{DEVICE}"
sample = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-03T00:00:00Z, count = 160, per_request = 12 }}

[fetch.plotres]
plan = "sampled"
product = "HSD"
extension = "mat"
per_request = 12
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}
"#
    )
}

/// A fresh `onc-pipe simulate` for one model and one client; stopped on drop.
struct Simulator {
    child: Child,
    base_url: String,
    /// `127.0.0.1:PORT`.
    authority: String,
}

impl Simulator {
    fn start(setup: &Setup, model: &Model) -> Simulator {
        let mut command = Command::new(&setup.binary);
        command
            .args(["simulate", "--port", "0", "--sample-rate"])
            .arg(SAMPLE_RATE.to_string())
            .arg("--time-scale")
            .arg(setup.time_scale.to_string())
            .arg("--capacity")
            .arg(model.capacity.to_string());
        if let Some(per_file) = model.per_file_s {
            command.arg("--per-file-seconds").arg(per_file.to_string());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start onc-pipe simulate");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("simulator prints its URL");
        let base_url = line.trim().to_owned();
        let authority = base_url
            .strip_prefix("http://")
            .expect("http:// URL")
            .trim_end_matches('/')
            .to_owned();
        Simulator {
            child,
            base_url,
            authority,
        }
    }

    /// One GET over a plain socket (the simulator is local HTTP/1.1): status, headers, body.
    fn get(&self, path_and_query: &str) -> Option<(u16, String, Vec<u8>)> {
        let mut stream = TcpStream::connect(&self.authority).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .ok()?;
        write!(
            stream,
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.authority
        )
        .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let body = response[split + 4..].to_vec();
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(&body)
        } else {
            body
        };
        Some((status, head, body))
    }

    fn json(&self, path_and_query: &str) -> Option<(u16, Value)> {
        let (status, _, body) = self.get(path_and_query)?;
        Some((status, serde_json::from_slice(&body).ok()?))
    }

    /// `GET /_sim/stats`.
    fn stats(&self) -> Option<Value> {
        self.json("/_sim/stats").map(|(_, stats)| stats)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .unwrap_or(0);
        let rest = &body[end + 2..];
        if size == 0 || rest.len() < size {
            break;
        }
        out.extend_from_slice(&rest[..size]);
        body = rest[size..].strip_prefix(b"\r\n").unwrap_or(&rest[size..]);
    }
    out
}

/// What the warm-up left in the simulator: the file names it fetched and its runs in flight.
#[derive(Default)]
struct WarmUp {
    names: BTreeSet<String>,
    runs_in_flight: u64,
}

/// Makes the simulator generate (and cache) every file of `windows` before the client runs, so
/// the client is not timed against the simulator's own MAT generation (CPU on this machine, not
/// ONC's work). Its own token (separate run slots), each window shrunk by 1 ms at both ends
/// (the same files, but submissions that do not count as duplicates of the client's), all
/// submitted at once, then downloaded by 4 threads.
fn warm_up(sim: &Simulator, windows: &[(String, String)]) -> WarmUp {
    const WARM_TOKEN: &str = "0d9a7c1e-warm-4b2f-8e3d-5a6c7b8d9e0f";
    let ms = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
    let mut runs = Vec::new();
    for (from, to) in windows {
        let from = onc_date(ms(from) + TimeDelta::milliseconds(1));
        let to = onc_date(ms(to) - TimeDelta::milliseconds(1));
        let (_, request) = sim
            .json(&format!(
                "/api/dataProductDelivery/request?token={WARM_TOKEN}&deviceCode={DEVICE}&dataProductCode=HSD&extension=mat&dateFrom={from}&dateTo={to}&dpo_spectralDataDownsample=2&dpo_hydrophoneDataDiversionMode=OD&dpo_spectrogramConcatenation=None"
            ))
            .expect("warm-up request");
        let id = request["dpRequestId"].as_u64().expect("dpRequestId");
        let (_, run) = sim
            .json(&format!(
                "/api/dataProductDelivery/run?token={WARM_TOKEN}&dpRequestId={id}"
            ))
            .expect("warm-up run");
        runs.push((id, run[0]["dpRunId"].as_u64().expect("dpRunId")));
    }
    let in_flight = stat(sim.stats().as_ref(), "max_runs_in_flight").unwrap_or(0);
    let mut files = Vec::new();
    for (id, run_id) in runs {
        let count = loop {
            let (status, run) = sim
                .json(&format!(
                    "/api/dataProductDelivery/run?token={WARM_TOKEN}&dpRequestId={id}"
                ))
                .expect("warm-up poll");
            if status == 200 {
                break run[0]["fileCount"].as_u64().unwrap_or(0);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        files.extend((1..=count).map(|index| (run_id, index)));
    }
    let next = std::sync::Mutex::new(files.into_iter());
    let names = std::sync::Mutex::new(BTreeSet::new());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                loop {
                    let Some((run_id, index)) = next.lock().unwrap().next() else {
                        break;
                    };
                    let (_, head, _) = sim
                        .get(&format!(
                            "/api/dataProductDelivery/download?token={WARM_TOKEN}&dpRunId={run_id}&index={index}"
                        ))
                        .expect("warm-up download");
                    if let Some(name) = head
                        .lines()
                        .find_map(|line| line.split_once("filename="))
                        .map(|(_, name)| name.trim().trim_matches('"').to_owned())
                    {
                        names.lock().unwrap().insert(name);
                    }
                }
            });
        }
    });
    WarmUp {
        names: names.into_inner().unwrap(),
        runs_in_flight: in_flight,
    }
}

/// Runs `command` to completion or `timeout`, returning the wall time and whether it succeeded.
fn timed(mut command: Command, log: &Path, timeout: Duration) -> (Duration, Result<(), String>) {
    let out = std::fs::File::create(log).unwrap();
    let err = out.try_clone().unwrap();
    let started = Instant::now();
    let mut child = command
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start client");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let wall = started.elapsed();
            return if status.success() {
                (wall, Ok(()))
            } else {
                (wall, Err(format!("exit status {status}")))
            };
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return (
                started.elapsed(),
                Err(format!("killed after {} s", timeout.as_secs())),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Names of the MAT files under `dir` (the client's output), lower-cased as HTTP headers are
/// read here.
fn mat_names(dir: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "mat") {
                names.insert(entry.file_name().to_string_lossy().to_ascii_lowercase());
            }
        }
    }
    names
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn stat(stats: Option<&Value>, key: &str) -> Option<u64> {
    stats.and_then(|s| s.get(key)).and_then(Value::as_u64)
}

/// The client's share of the simulator's accounting: after minus before (the warm-up), with
/// the two figures the warm-up would otherwise blur put right (see `Row`).
fn client_stats(before: &Value, after: &Value, warm: &WarmUp, written: &BTreeSet<String>) -> Stats {
    let delta = |key: &str| {
        stat(Some(after), key).map(|a| a.saturating_sub(stat(Some(before), key).unwrap_or(0)))
    };
    let endpoints = after
        .get("requests_by_endpoint")
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(name, count)| {
                    let was = before["requests_by_endpoint"][name].as_u64().unwrap_or(0);
                    let now = count.as_u64()?.saturating_sub(was);
                    (now > 0).then(|| (name.clone(), now))
                })
                .collect()
        })
        .unwrap_or_default();
    // A file the warm-up fetched counts as "served again" the first time the client fetches
    // it; those are not the client's repeats.
    let fetched_after_warm_up = written.intersection(&warm.names).count() as u64;
    let max_in_flight = stat(Some(after), "max_runs_in_flight");
    Stats {
        requests: delta("requests_total"),
        endpoints,
        submissions: delta("submissions"),
        runs: delta("runs"),
        files_served: delta("files_served"),
        bytes_served: delta("bytes_served"),
        duplicate_submissions: delta("duplicate_submissions"),
        files_served_again: delta("files_served_again")
            .map(|again| again.saturating_sub(fetched_after_warm_up)),
        // A high-water mark over tokens: the warm-up's own runs are in it.
        max_runs_in_flight: max_in_flight.map(|m| {
            if m > warm.runs_in_flight || warm.names.is_empty() {
                m.to_string()
            } else {
                format!("≤ {m}")
            }
        }),
    }
}

/// Runs one client against a fresh simulator, warmed up first when the model needs it.
fn measure(
    setup: &Setup,
    model: &Model,
    tool: Peer,
    windows: &[(String, String)],
    minimum_s: f64,
) -> Row {
    let dir = setup
        .work
        .join(format!("model{}-{}", model.number, tool.key()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut row = Row {
        model: model.number,
        label: tool.label().to_owned(),
        wall_s: None,
        minimum_s,
        stats: None,
        files: 0,
        notes: Vec::new(),
    };
    let python = match (tool, &setup.python) {
        (Peer::OncPipe | Peer::OncPipeTuned, _) => None,
        (_, Ok(python)) => Some(python.clone()),
        (_, Err(why)) => {
            row.notes.push(format!("not run: {why}"));
            return row;
        }
    };
    let sim = Simulator::start(setup, model);
    let warm = if model.warm_up {
        warm_up(&sim, windows)
    } else {
        WarmUp::default()
    };
    let before = sim.stats().expect("simulator stats");
    // Generous: twice one-at-a-time ordering of 14 runs of 13 files, plus startup.
    let timeout = Duration::from_secs_f64(
        2.0 * 14.0 * (OVERHEAD_S + 13.0 * model.per_file()) * setup.time_scale + 180.0,
    );
    let scale = setup.time_scale.to_string();
    let data = dir.join("data");
    let result = dir.join("result.json");
    let python_command = |script: &str| {
        let mut command = Command::new(python.clone().unwrap());
        command
            .current_dir(&dir)
            .arg(setup.scripts.join(script))
            .args([&sim.base_url, &scale])
            .arg(&data)
            .arg(TOKEN)
            .env("PYTHONUNBUFFERED", "1")
            .env("MPLBACKEND", "Agg");
        command
    };
    let (wall, outcome) = match tool {
        Peer::OncPipe | Peer::OncPipeTuned => {
            let tuned = (tool == Peer::OncPipeTuned).then_some((tool.stagger_s(), TUNED_MAX_RUNS));
            let text = manifest(&sim.base_url, tuned);
            std::fs::write(dir.join("m.toml"), text).unwrap();
            let mut command = Command::new(&setup.binary);
            command
                .current_dir(&dir)
                .args(["run", "m.toml", "--no-progress"])
                .env("ONC_TOKEN", TOKEN);
            timed(command, &dir.join("run.log"), timeout)
        }
        Peer::PythonTool | Peer::PythonToolNoValidation => {
            let mut command = python_command("python_tool.py");
            command.arg(&result);
            if tool == Peer::PythonToolNoValidation {
                command.arg("no-validation");
            }
            timed(command, &dir.join("run.log"), timeout)
        }
        Peer::OncClient => {
            let windows: Vec<[&String; 2]> = windows.iter().map(|(from, to)| [from, to]).collect();
            let windows_path = dir.join("windows.json");
            std::fs::write(&windows_path, serde_json::to_string(&windows).unwrap()).unwrap();
            let mut command = python_command("onc_client.py");
            command.arg(&windows_path).arg(&result);
            timed(command, &dir.join("run.log"), timeout)
        }
    };
    row.wall_s = Some(wall.as_secs_f64());
    let written = mat_names(&data);
    row.files = written.len() as u64;
    row.stats = sim
        .stats()
        .map(|after| client_stats(&before, &after, &warm, &written));
    drop(sim);
    if let Err(why) = outcome {
        row.notes
            .push(format!("{why} (log: {})", dir.join("run.log").display()));
    }
    let details = read_json(&result);
    if let Some(error) = details
        .as_ref()
        .and_then(|d| d["error"].as_str())
        .filter(|e| !e.is_empty())
    {
        row.notes.push(format!("client error: {error}"));
    }
    if let (Peer::PythonTool | Peer::PythonToolNoValidation, Some(details)) = (tool, details) {
        let f = |key: &str| details[key].as_f64().unwrap_or(0.0);
        let (startup, work, validate, cpu) =
            (f("startup_s"), f("work_s"), f("validate_s"), f("cpu_s"));
        row.notes.push(format!(
            "startup (imports, constructor) {startup:.1} s real; the download call {work:.1} s ({:.0} s simulated), of which re-validating MAT files {validate:.1} s ({} calls); process CPU during the call {cpu:.1} s",
            work / setup.time_scale,
            details["validate_calls"]
        ));
        if let Some(summary) = details.get("summary").filter(|s| !s.is_null()) {
            row.notes.push(format!(
                "tool's summary: {} runs, {} downloaded, {} errors",
                summary["runs_total"], summary["runs_downloaded"], summary["runs_errors"]
            ));
        }
        if tool == Peer::PythonToolNoValidation {
            // The row's wall is the download call alone: startup (imports) is CPU work too.
            row.wall_s = Some(work);
        }
    }
    if model.warm_up {
        row.notes.push(format!(
            "simulator warmed up first ({} files; its requests are not counted here)",
            warm.names.len()
        ));
    }
    row
}

fn print_table(setup: &Setup, rows: &[Row]) {
    println!();
    println!(
        "| model | client | wall (real) | simulated | × minimum | minimum (stagger-bound) | HTTP requests / file | files | duplicate submissions | files served again | most runs in flight |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let na = || "n/a".to_owned();
    for row in rows {
        let stats = row.stats.as_ref();
        let cell = |value: Option<u64>| value.map_or_else(na, |v| v.to_string());
        let (wall, simulated, times) = match row.wall_s {
            Some(wall) => (
                format!("{wall:.1} s"),
                format!("{:.0} s", wall / setup.time_scale),
                format!("{:.2}×", wall / setup.time_scale / row.minimum_s),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {wall} | {simulated} | {times} | {:.0} s | {} | {} | {} | {} | {} |",
            row.model,
            row.label,
            row.minimum_s,
            match stats.and_then(|s| s.requests) {
                Some(r) if row.files > 0 => format!("{:.2}", r as f64 / row.files as f64),
                _ => na(),
            },
            row.files,
            cell(stats.and_then(|s| s.duplicate_submissions)),
            cell(stats.and_then(|s| s.files_served_again)),
            stats
                .and_then(|s| s.max_runs_in_flight.clone())
                .unwrap_or_else(na),
        );
    }
    println!();
    for row in rows {
        let Some(stats) = &row.stats else {
            println!(
                "model {} · {}: {}",
                row.model,
                row.label,
                row.notes.join("; ")
            );
            continue;
        };
        let endpoints = stats
            .endpoints
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect::<Vec<_>>()
            .join(", ");
        let cell = |value: Option<u64>| value.map_or_else(na, |v| v.to_string());
        println!(
            "model {} · {}: {} requests ({endpoints}); {} submissions, {} runs, {} files served ({} bytes){}",
            row.model,
            row.label,
            cell(stats.requests),
            cell(stats.submissions),
            cell(stats.runs),
            cell(stats.files_served),
            cell(stats.bytes_served),
            row.notes
                .iter()
                .map(|n| format!("\n    {n}"))
                .collect::<String>()
        );
    }
}

fn main() {
    let setup = setup();
    println!(
        "peers benchmark: seed scenario 2 ({DEVICE}, 160 windows in 14 requests), simulator at {SAMPLE_RATE} Hz, time scale {} ({} simulated seconds per real second)",
        setup.time_scale,
        1.0 / setup.time_scale
    );
    let python_windows = python_tool_windows();
    let onc_pipe_windows = onc_pipe_windows(&setup.work);
    let mut rows = Vec::new();
    for model in MODELS.iter().filter(|m| setup.models.contains(&m.number)) {
        let ours = durations(&onc_pipe_windows, model);
        let theirs = durations(&python_windows, model);
        let bound = |d: &[f64], stagger| fifo_makespan(d, model.capacity, stagger);
        let files = |d: &[f64]| {
            d.iter()
                .map(|d| ((d - OVERHEAD_S) / model.per_file()).round())
                .sum::<f64>()
        };
        println!(
            "model {}: {}. onc-pipe's {} requests ({} files): minimum {:.0} s with a 3 s stagger, {:.0} s with 0.2 s, {:.0} s with none; one at a time {:.0} s. The Python tool's windows ({} files{}): {:.0} s with a 3 s stagger",
            model.number,
            model.name,
            ours.len(),
            files(&ours),
            bound(&ours, DEFAULT_STAGGER_S),
            bound(&ours, TUNED_STAGGER_S),
            bound(&ours, 0.0),
            ours.iter().sum::<f64>(),
            files(&theirs),
            if python_windows == onc_pipe_windows {
                ", the same windows"
            } else {
                ", other windows"
            },
            bound(&theirs, DEFAULT_STAGGER_S),
        );
        for &tool in &setup.tools {
            let (windows, durations) =
                if matches!(tool, Peer::PythonTool | Peer::PythonToolNoValidation) {
                    (&python_windows, &theirs)
                } else {
                    (&onc_pipe_windows, &ours)
                };
            let minimum = bound(durations, tool.stagger_s());
            let row = measure(&setup, model, tool, windows, minimum);
            println!(
                "  {:<72} {}",
                row.label,
                row.wall_s
                    .map_or("not run".into(), |w| format!("{w:.1} s real")),
            );
            rows.push(row);
        }
    }
    print_table(&setup, &rows);
    let _ = std::io::stdout().flush();
}
