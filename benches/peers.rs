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
//! * `PEERS_TOOLS` — which clients, default `onc-pipe,onc-pipe-tuned,python-tool,onc-client`.
//!
//! Fairness: the simulator runs ONC's model `time_scale` times faster. onc-pipe's stagger, poll
//! interval and max_wait are its defaults × time scale, written into its manifest ("scaled by
//! manifest"). The Python peers run under `benches/peers/sim_time.py`, which makes every
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
/// onc-pipe's defaults (SPEC), simulated seconds.
const DEFAULT_POLL_S: f64 = 30.0;
const DEFAULT_MAX_WAIT_S: f64 = 45.0 * 60.0;
/// The tuned row: the executor benchmark's settings.
const TUNED_STAGGER_S: f64 = 0.2;
const TUNED_MAX_RUNS: u32 = 16;

struct Model {
    number: u8,
    name: &'static str,
    capacity: usize,
    /// `--per-file-seconds`; `None` keeps the simulator's default.
    per_file_s: Option<f64>,
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
    },
    Model {
        number: 2,
        name: "16 runs at once, 25 s per file",
        capacity: 16,
        per_file_s: Some(25.0),
    },
    Model {
        number: 3,
        name: "16 runs at once, 5 s + 2.5 s per file (~35 s per 12-file request)",
        capacity: 16,
        per_file_s: None,
    },
];

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    OncPipe,
    OncPipeTuned,
    PythonTool,
    OncClient,
}

impl Tool {
    const ALL: [Tool; 4] = [
        Tool::OncPipe,
        Tool::OncPipeTuned,
        Tool::PythonTool,
        Tool::OncClient,
    ];

    fn key(self) -> &'static str {
        match self {
            Tool::OncPipe => "onc-pipe",
            Tool::OncPipeTuned => "onc-pipe-tuned",
            Tool::PythonTool => "python-tool",
            Tool::OncClient => "onc-client",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tool::OncPipe => "onc-pipe defaults (scaled by manifest)",
            Tool::OncPipeTuned => "onc-pipe, stagger 0.2 s + max_runs 16 (scaled by manifest)",
            Tool::PythonTool => "the Python tool (onc-hydrophone-data)",
            Tool::OncClient => "ONC's client (onc 2.6.0), one window after another",
        }
    }

    /// Simulated seconds between two submissions, for the stagger-bound minimum.
    fn stagger_s(self) -> f64 {
        match self {
            Tool::OncPipe | Tool::PythonTool => DEFAULT_STAGGER_S,
            Tool::OncPipeTuned => TUNED_STAGGER_S,
            Tool::OncClient => 0.0,
        }
    }
}

struct Setup {
    time_scale: f64,
    models: Vec<u8>,
    tools: Vec<Tool>,
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
    stats: Option<Value>,
    /// Distinct MAT files the client wrote.
    files: u64,
    notes: Vec<String>,
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
        "onc-pipe,onc-pipe-tuned,python-tool,onc-client",
    );
    let tools: Vec<Tool> = Tool::ALL
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
        .any(|t| matches!(t, Tool::PythonTool | Tool::OncClient));
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

/// The scenario-2 manifest against `base_url`. With `client` = (stagger, max_runs), onc-pipe's
/// timers are written scaled; `None` writes no `[onc]` settings but the URL.
fn manifest(base_url: &str, client: Option<(f64, Option<u32>, f64)>) -> String {
    let mut onc = format!("base_url = \"{base_url}\"\n");
    if let Some((stagger_s, max_runs, time_scale)) = client {
        let ms = |s: f64| {
            format!(
                "\"{}ms\"",
                (s * 1000.0 * time_scale).round().max(1.0) as u64
            )
        };
        onc.push_str(&format!(
            "stagger = {}\npoll_interval = {}\nmax_wait = {}\n",
            ms(stagger_s),
            ms(DEFAULT_POLL_S),
            ms(DEFAULT_MAX_WAIT_S)
        ));
        if let Some(max_runs) = max_runs {
            onc.push_str(&format!("max_runs = {max_runs}\n"));
        }
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
        Simulator {
            child,
            base_url: line.trim().to_owned(),
        }
    }

    /// `GET /_sim/stats` over a plain socket (the simulator is local HTTP/1.1).
    fn stats(&self) -> Option<Value> {
        let authority = self
            .base_url
            .strip_prefix("http://")?
            .trim_end_matches('/')
            .to_owned();
        let mut stream = TcpStream::connect(&authority).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        write!(
            stream,
            "GET /_sim/stats HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        };
        serde_json::from_str(&body).ok()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
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
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn count_mat(dir: &Path) -> u64 {
    let mut names = std::collections::BTreeSet::new();
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
                names.insert(entry.file_name());
            }
        }
    }
    names.len() as u64
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Runs one client against a fresh simulator; one row, two for the Python tool (with and
/// without its CPU work).
fn measure(
    setup: &Setup,
    model: &Model,
    tool: Tool,
    windows: &[(String, String)],
    minimum_s: f64,
) -> Vec<Row> {
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
        (Tool::OncPipe | Tool::OncPipeTuned, _) => None,
        (_, Ok(python)) => Some(python.clone()),
        (_, Err(why)) => {
            row.notes.push(format!("not run: {why}"));
            return vec![row];
        }
    };
    let sim = Simulator::start(setup, model);
    // Generous: twice one-at-a-time ordering of 14 runs of 13 files, plus startup.
    let timeout = Duration::from_secs_f64(
        2.0 * 14.0 * (OVERHEAD_S + 13.0 * model.per_file()) * setup.time_scale + 180.0,
    );
    let scale = setup.time_scale.to_string();
    let data = dir.join("data");
    let result = dir.join("result.json");
    let (wall, outcome) = match tool {
        Tool::OncPipe | Tool::OncPipeTuned => {
            let max_runs = (tool == Tool::OncPipeTuned).then_some(TUNED_MAX_RUNS);
            let text = manifest(
                &sim.base_url,
                Some((tool.stagger_s(), max_runs, setup.time_scale)),
            );
            std::fs::write(dir.join("m.toml"), text).unwrap();
            let mut command = Command::new(&setup.binary);
            command
                .current_dir(&dir)
                .args(["run", "m.toml", "--no-progress"])
                .env("ONC_TOKEN", TOKEN);
            timed(command, &dir.join("run.log"), timeout)
        }
        Tool::PythonTool => {
            let mut command = Command::new(python.unwrap());
            command
                .current_dir(&dir)
                .arg(setup.scripts.join("python_tool.py"))
                .args([&sim.base_url, &scale])
                .arg(&data)
                .arg(TOKEN)
                .arg(&result)
                .env("PYTHONUNBUFFERED", "1")
                .env("MPLBACKEND", "Agg");
            timed(command, &dir.join("run.log"), timeout)
        }
        Tool::OncClient => {
            let windows: Vec<[&String; 2]> = windows.iter().map(|(from, to)| [from, to]).collect();
            let windows_path = dir.join("windows.json");
            std::fs::write(&windows_path, serde_json::to_string(&windows).unwrap()).unwrap();
            let mut command = Command::new(python.unwrap());
            command
                .current_dir(&dir)
                .arg(setup.scripts.join("onc_client.py"))
                .args([&sim.base_url, &scale])
                .arg(&data)
                .arg(TOKEN)
                .arg(&windows_path)
                .arg(&result)
                .env("PYTHONUNBUFFERED", "1");
            timed(command, &dir.join("run.log"), timeout)
        }
    };
    row.wall_s = Some(wall.as_secs_f64());
    row.stats = sim.stats();
    drop(sim);
    row.files = count_mat(&data);
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
    let mut rows = Vec::new();
    if let (Tool::PythonTool, Some(details)) = (tool, details) {
        let f = |key: &str| details[key].as_f64().unwrap_or(0.0);
        let (startup, work, validate, cpu) =
            (f("startup_s"), f("work_s"), f("validate_s"), f("cpu_s"));
        row.notes.push(format!(
            "startup (imports, constructor) {startup:.1} s real; the download call {work:.1} s, of which re-validating MAT files {validate:.1} s ({} calls); process CPU during the call {cpu:.1} s",
            details["validate_calls"]
        ));
        if let Some(summary) = details.get("summary").filter(|s| !s.is_null()) {
            row.notes.push(format!(
                "tool's summary: {} runs, {} downloaded, {} errors",
                summary["runs_total"], summary["runs_downloaded"], summary["runs_errors"]
            ));
        }
        let excluded = Row {
            model: row.model,
            label: "the Python tool, its CPU work excluded (same run)".into(),
            wall_s: Some((work - validate).max(0.0)),
            minimum_s,
            stats: row.stats.clone(),
            files: row.files,
            notes: vec![
                "wall of the download call minus its MAT re-validation; startup excluded".into(),
            ],
        };
        rows.push(row);
        rows.push(excluded);
    } else {
        rows.push(row);
    }
    rows
}

fn stat(stats: Option<&Value>, key: &str) -> Option<u64> {
    stats.and_then(|s| s.get(key)).and_then(Value::as_u64)
}

fn print_table(setup: &Setup, rows: &[Row]) {
    println!();
    println!(
        "| model | client | wall (real) | simulated | × minimum | minimum (stagger-bound) | HTTP requests / file | files | duplicate submissions | files served again | max runs in flight |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let stats = row.stats.as_ref();
        let requests = stat(stats, "requests_total");
        let served = stat(stats, "files_served");
        let again = match stat(stats, "files_served_again") {
            Some(again) => again.to_string(),
            None => match served {
                Some(served) => format!("{} (derived)", served.saturating_sub(row.files)),
                None => "n/a".into(),
            },
        };
        let cell = |value: Option<u64>| value.map_or("n/a".into(), |v| v.to_string());
        let (wall, simulated, times) = match row.wall_s {
            Some(wall) => (
                format!("{wall:.1} s"),
                format!("{:.0} s", wall / setup.time_scale),
                format!("{:.2}×", wall / setup.time_scale / row.minimum_s),
            ),
            None => ("—".into(), "—".into(), "—".into()),
        };
        println!(
            "| {} | {} | {wall} | {simulated} | {times} | {:.0} s | {} | {} | {} | {again} | {} |",
            row.model,
            row.label,
            row.minimum_s,
            match requests {
                Some(r) if row.files > 0 => format!("{:.2}", r as f64 / row.files as f64),
                _ => "n/a".into(),
            },
            row.files,
            cell(stat(stats, "duplicate_submissions")),
            cell(stat(stats, "max_runs_in_flight")),
        );
    }
    println!();
    for row in rows {
        let endpoints = row
            .stats
            .as_ref()
            .and_then(|s| s.get("requests_by_endpoint"))
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if row.label.contains("excluded") {
            continue;
        }
        println!(
            "model {} · {}: {} requests, {} submissions, {} runs, {} files served ({} bytes){}{}",
            row.model,
            row.label,
            cell_of(&row.stats, "requests_total"),
            cell_of(&row.stats, "submissions"),
            cell_of(&row.stats, "runs"),
            cell_of(&row.stats, "files_served"),
            cell_of(&row.stats, "bytes_served"),
            if endpoints.is_empty() {
                String::new()
            } else {
                format!("; by endpoint: {endpoints}")
            },
            row.notes
                .iter()
                .map(|n| format!("\n    {n}"))
                .collect::<String>()
        );
    }
}

fn cell_of(stats: &Option<Value>, key: &str) -> String {
    stat(stats.as_ref(), key).map_or("n/a".into(), |v| v.to_string())
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
        println!(
            "model {}: {}. onc-pipe's {} requests ({} files): minimum {:.0} s with a 3 s stagger, {:.0} s with 0.2 s, {:.0} s with none; one at a time {:.0} s. The Python tool's windows ({} files): {:.0} s with a 3 s stagger",
            model.number,
            model.name,
            ours.len(),
            ours.iter()
                .map(|d| ((d - OVERHEAD_S) / model.per_file()).round())
                .sum::<f64>(),
            bound(&ours, DEFAULT_STAGGER_S),
            bound(&ours, TUNED_STAGGER_S),
            bound(&ours, 0.0),
            ours.iter().sum::<f64>(),
            theirs
                .iter()
                .map(|d| ((d - OVERHEAD_S) / model.per_file()).round())
                .sum::<f64>(),
            bound(&theirs, DEFAULT_STAGGER_S),
        );
        for &tool in &setup.tools {
            let (windows, durations) = if tool == Tool::PythonTool {
                (&python_windows, &theirs)
            } else {
                (&onc_pipe_windows, &ours)
            };
            let minimum = bound(durations, tool.stagger_s());
            let measured = measure(&setup, model, tool, windows, minimum);
            if let Some(first) = measured.first() {
                println!(
                    "  {:<60} {}",
                    first.label,
                    first
                        .wall_s
                        .map_or("not run".into(), |w| format!("{w:.1} s real")),
                );
            }
            rows.extend(measured);
        }
    }
    print_table(&setup, &rows);
    let _ = std::io::stdout().flush();
}
