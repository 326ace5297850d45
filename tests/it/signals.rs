//! SIGTERM and SIGHUP stop `onc-pipe run` as Ctrl-C does: no new work, partial files removed,
//! the journal kept, the run record written, the way to resume printed, exit 143 / 129; the
//! resume submits nothing twice. A second signal exits at once.
#![cfg(unix)]

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use onc_sim::SimConfig;
use onc_sim::faults::FaultConfig;

use crate::run::{
    TOKEN, has_partial_download, journal_entries, manifest, onc_pipe, record, simulator, tree,
};
use crate::support::Scratch;

/// `onc-pipe run m.toml --no-progress` in `dir`, its stderr read line by line into a channel
/// (so the test can wait for a line, and the pipe never fills).
fn spawn_run(dir: &Path) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_onc-pipe"))
        .args(["run", "m.toml", "--no-progress"])
        .current_dir(dir)
        .env("ONC_TOKEN", TOKEN)
        .env_remove("ONC_BASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, received)
}

fn send(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for `child` to exit (at most `limit`), and returns its code.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("onc-pipe did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every line the run printed to stderr so far.
fn drain(lines: &mpsc::Receiver<String>) -> String {
    // The reader thread ends when the child's stderr closes; give it that moment.
    let mut text = String::new();
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// Files in the output tree or the cache's tmp/ that are not finished outputs.
fn temp_names(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = tree(&dir.join("data"))
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| path.contains(".onc-pipe-tmp") || path.contains(".part"))
        .collect();
    if has_partial_download(dir) {
        found.push("cache/tmp/.part-*".into());
    }
    found
}

/// Starts a run whose file bodies trickle, sends `signal` once a download is in flight, and
/// checks the interrupted run and its resume.
async fn stopped_mid_download_by(signal: &str, code: i32) {
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
    let dir = scratch.path().to_path_buf();
    let signal_name = signal.to_owned();
    let (exit, stderr) = tokio::task::spawn_blocking(move || {
        let (mut child, lines) = spawn_run(&dir);
        let started = Instant::now();
        while !has_partial_download(&dir) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no download started"
            );
            assert!(child.try_wait().unwrap().is_none(), "finished too early");
            std::thread::sleep(Duration::from_millis(2));
        }
        send(&child, &signal_name);
        let exit = wait_for_exit(&mut child, Duration::from_secs(30));
        (exit, drain(&lines))
    })
    .await
    .unwrap();
    let dir = scratch.path();

    assert_eq!(exit, Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("onc-pipe: SIG{signal}: stopping: no new work")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "interrupted by SIG{signal}: run the same command again to resume"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("to resume: ") && stderr.contains(" run m.toml --no-progress\n"),
        "{stderr}"
    );
    // The run record was written, naming the signal.
    let runs: Vec<_> = std::fs::read_dir(dir.join("cache/runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1, "one run record");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs[0].path()).unwrap()).unwrap();
    assert_eq!(written["interrupted"], true, "{written}");
    assert_eq!(
        written["interrupted_by"],
        format!("SIG{signal}"),
        "{written}"
    );
    let record_name = runs[0].file_name().to_string_lossy().into_owned();
    assert!(
        stderr.contains("run record: ") && stderr.contains(&record_name),
        "{stderr}"
    );
    // The journal is kept: every submission not yet recorded is there with its ids.
    let journal = journal_entries(dir);
    assert!(!journal.is_empty(), "the journal was emptied");
    assert!(journal.iter().all(|e| e["dp_request_id"].is_u64()));
    assert_eq!(temp_names(dir), Vec::<String>::new(), "partial files left");

    let resumed = onc_pipe(dir, &["run", "m.toml", "--json"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let resumed = record(&resumed);
    assert_eq!(
        resumed["runs_reattached"].as_u64(),
        Some(journal.len() as u64),
        "{resumed}"
    );
    let stats = sim.stats();
    assert_eq!(stats.duplicate_submissions, 0, "a run was submitted twice");
    assert_eq!(stats.submissions, 3);
    assert!(journal_entries(dir).is_empty());
    assert_eq!(temp_names(dir), Vec::<String>::new());
    sim.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_run_like_ctrl_c_and_exits_143() {
    stopped_mid_download_by("TERM", 143).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_stops_a_run_like_ctrl_c_and_exits_129() {
    stopped_mid_download_by("HUP", 129).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    // Every answer takes 8 s: the first signal arrives while the run waits on its first request
    // (the deployment check, which is not abandoned), so a clean stop would take seconds more.
    let slow = Duration::from_secs(8);
    let faults = FaultConfig {
        slow_ms: slow.as_millis() as u64,
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
    let (mut child, lines) = spawn_run(scratch.path());
    // The first request reached the simulator: the handlers are installed (before any request).
    let started = Instant::now();
    while sim.stats().requests_total == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no request");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = Instant::now();
    send(&child, "TERM");
    let (exit, stderr, quit_in) = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut seen = String::new();
        while !seen.contains("SIGTERM: stopping") {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no stopping notice: {seen}"));
            seen.push_str(&line);
            seen.push('\n');
        }
        send(&child, "TERM");
        let exit = wait_for_exit(&mut child, Duration::from_secs(30));
        let quit_in = first.elapsed();
        (exit, seen + &drain(&lines), quit_in)
    })
    .await
    .unwrap();
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(
        quit_in < slow - Duration::from_secs(2),
        "took {quit_in:?}: {stderr}"
    );
    // Out at once: no summary, no run record.
    assert!(!stderr.contains("run record"), "{stderr}");
    assert!(
        !scratch.path().join("cache/runs").exists() || {
            std::fs::read_dir(scratch.path().join("cache/runs"))
                .unwrap()
                .next()
                .is_none()
        }
    );
    sim.stop().await;
}

/// Regression: an archived file in flight was downloaded to its end after the first signal
/// (only product downloads were abandoned), so a 25 MB FLAC on a slow link outlived a Slurm
/// time limit's grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_file_in_flight_is_abandoned_at_the_first_signal() {
    // One archive stage; its ~4.7 MB file trickles at 300 kB/s (about 15 s).
    let faults = FaultConfig {
        throttle_bytes_per_s: 300_000,
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
    let text = manifest(&sim.base_url, "");
    let archive_only = text[..text.find("[fetch.plotres]").unwrap()].to_owned()
        + &text[text.find("[fetch.audio]").unwrap()..];
    scratch.write("m.toml", &archive_only);
    let dir = scratch.path().to_path_buf();
    let (exit, stderr, stopped_in) = tokio::task::spawn_blocking(move || {
        let (mut child, lines) = spawn_run(&dir);
        let started = Instant::now();
        while !has_partial_download(&dir) {
            assert!(started.elapsed() < Duration::from_secs(60), "no download");
            std::thread::sleep(Duration::from_millis(2));
        }
        let signalled = Instant::now();
        send(&child, "TERM");
        let exit = wait_for_exit(&mut child, Duration::from_secs(60));
        (exit, drain(&lines), signalled.elapsed())
    })
    .await
    .unwrap();
    assert_eq!(exit, Some(143), "{stderr}");
    assert!(!stderr.contains("downloaded ICLISTENHF"), "{stderr}");
    assert!(stopped_in < Duration::from_secs(5), "took {stopped_in:?}");
    assert_eq!(temp_names(scratch.path()), Vec::<String>::new());
    sim.stop().await;
}
