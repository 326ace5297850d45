//! Golden tests: every human-readable output of the real binary, whole, pinned in
//! `tests/golden/*.txt` — `validate` (human, json, github), `plan` (text, json, dot), `status`
//! (text, json), `run`'s plain log and summary, and `run --json`'s record.
//!
//! Each test runs the real binary in a temporary folder (or the repository root) through
//! [`Test`], a small builder after `just`'s `tests/test.rs`, and compares what it printed, after
//! redacting what changes from run to run (the temporary folder, clock times, durations, ONC ids,
//! poll counts), with its golden file. A difference fails with both texts. To accept a change of
//! output on purpose, run `ONC_PIPE_BLESS=1 cargo test golden` and commit the golden files with
//! the change that explains them.
//!
//! `run`'s log comes from concurrent tasks, so its lines are compared sorted, and `status` lines
//! (one per poll, as many as the machine's speed makes) are left out; the summary that follows
//! the log is compared as printed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;

use regex::Regex;

use crate::support::{Scratch, repo};

/// The token the in-process simulator is given (it accepts any).
const TOKEN: &str = "golden-test-token-0000";

/// One invocation of the real binary, built step by step.
struct Test {
    scratch: Rc<Scratch>,
    /// Run from the repository root instead of the scratch folder.
    in_repo: bool,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Compare stderr's log lines (everything before the summary) sorted, without `status` lines.
    run_log: bool,
}

/// What one invocation printed, redacted.
struct Printed {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Test {
    fn new() -> Self {
        Self {
            scratch: Rc::new(Scratch::new()),
            in_repo: false,
            args: Vec::new(),
            env: vec![("ONC_TOKEN".into(), TOKEN.into())],
            run_log: false,
        }
    }

    /// A new invocation in the same scratch folder (files from earlier ones are still there).
    fn again(&self) -> Self {
        Self {
            scratch: Rc::clone(&self.scratch),
            in_repo: self.in_repo,
            args: Vec::new(),
            env: self.env.clone(),
            run_log: false,
        }
    }

    /// Writes a file into the scratch folder.
    fn file(self, name: &str, text: &str) -> Self {
        self.scratch.write(name, text);
        self
    }

    fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Runs from the repository root, so paths like `manifests/demo.toml` print as users see them.
    fn in_repo(mut self) -> Self {
        self.in_repo = true;
        self
    }

    fn without_token(mut self) -> Self {
        self.env.retain(|(name, _)| name != "ONC_TOKEN");
        self
    }

    /// stderr is a `run` log: compare its lines sorted (see the module doc).
    fn run_log(mut self) -> Self {
        self.run_log = true;
        self
    }

    /// The scratch folder, for arguments that name a path in it.
    fn scratch_path(&self) -> PathBuf {
        self.scratch.path().to_path_buf()
    }

    /// Runs the binary and redacts what it printed.
    fn run(&self) -> Printed {
        let dir = if self.in_repo {
            repo()
        } else {
            self.scratch.path().to_path_buf()
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_onc-pipe"));
        command
            .args(&self.args)
            .current_dir(&dir)
            .env_remove("ONC_BASE_URL")
            .env_remove("ONC_TOKEN")
            .env("NO_COLOR", "1");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let redact = |bytes: &[u8]| redact(&String::from_utf8_lossy(bytes), self.scratch.path());
        let mut stderr = redact(&output.stderr);
        if self.run_log {
            stderr = sort_run_log(&stderr);
        }
        Printed {
            code: output.status.code().unwrap_or(-1),
            stdout: redact(&output.stdout),
            stderr,
        }
    }

    /// Runs the binary and compares the whole output with `tests/golden/NAME.txt`.
    fn golden(self, name: &str) -> Printed {
        let printed = self.run();
        let text = format!(
            "$ onc-pipe {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
            self.args.join(" "),
            printed.code,
            printed.stdout,
            printed.stderr
        );
        let text = redact(&text, self.scratch.path());
        compare_golden(name, &text);
        printed
    }
}

/// Compares `actual` with the golden file `name`, or writes it when `ONC_PIPE_BLESS` is set.
fn compare_golden(name: &str, actual: &str) {
    let path = repo().join("tests/golden").join(format!("{name}.txt"));
    if std::env::var_os("ONC_PIPE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; run `ONC_PIPE_BLESS=1 cargo test golden` to write it. Output:\n{actual}",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "output differs from {} (first at line {}); if the change is intended, run \
             `ONC_PIPE_BLESS=1 cargo test golden`\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display(),
            first + 1
        );
    }
}

/// Replaces what changes from run to run with a placeholder naming it.
fn redact(text: &str, scratch: &Path) -> String {
    let mut text = text.to_owned();
    // The scratch folder, as given and as the OS resolves it (macOS's /private/var, symlinks).
    let mut folders = vec![scratch.display().to_string()];
    if let Ok(canonical) = scratch.canonicalize() {
        folders.push(canonical.display().to_string());
    }
    folders.sort_by_key(|f| std::cmp::Reverse(f.len()));
    for folder in folders {
        text = text.replace(&folder, "[TMP]");
    }
    text = text.replace(TOKEN, "[TOKEN]");
    let rules: [(&str, &str); 15] = [
        // Free space and file systems are the machine's (estimates in `plan` and the record).
        (
            r"free space: cache [^,]+, output [^(]+\([^)]*\)",
            "free space: cache [FREE], output [FREE] ([FILE SYSTEMS])",
        ),
        (
            r#""(output|cache)_free_bytes": \d+"#,
            r#""${1}_free_bytes": [BYTES]"#,
        ),
        (
            r#""same_file_system": (true|false)"#,
            r#""same_file_system": [BOOL]"#,
        ),
        (r"does not fit: [^\n]*", "does not fit: [MACHINE]"),
        // The run record's estimated and measured wall times side by side.
        (
            r#""wall_seconds": \{[^}]*\}"#,
            r#""wall_seconds": [SECONDS]"#,
        ),
        (
            r"(downloaded \d+ files?, [^\n]*) in \d+\.\d s",
            "$1 in [SECONDS] s",
        ),
        // Run records are named by the time the run started.
        (
            r"runs/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.json",
            "runs/[TIME].json",
        ),
        (r#""started_at": "[^"]*""#, r#""started_at": "[TIME]""#),
        (
            r#""wall_seconds": [0-9.e-]+"#,
            r#""wall_seconds": [SECONDS]"#,
        ),
        // The summary's wall time.
        (r"(HTTP requests?); \d+\.\d s", "$1; [SECONDS] s"),
        // ONC's ids: the simulator numbers them in submission order, which the scheduler's
        // interleaving decides.
        (r"dpRequestId \d+", "dpRequestId [ID]"),
        (r"dpRunId \d+", "dpRunId [ID]"),
        (r"ONC's run \d+", "ONC's run [ID]"),
        (r#""(dp_request_id|dp_run_id)": \d+"#, r#""$1": [ID]"#),
        // Polls (and so HTTP requests) depend on the machine's speed; none is not redacted,
        // because "0 HTTP requests" on a cached re-run is a promise.
        (r"\b[1-9]\d* HTTP requests?\b", "[N] HTTP requests"),
    ];
    for (pattern, replacement) in rules {
        text = Regex::new(pattern)
            .unwrap()
            .replace_all(&text, replacement)
            .into_owned();
    }
    Regex::new(r#""http_requests": [1-9]\d*"#)
        .unwrap()
        .replace_all(&text, r#""http_requests": [N]"#)
        .into_owned()
}

/// A `run` log's event lines sorted and without `status` lines; the summary (from the first
/// line that starts with a count of ONC requests) kept in order, but for its `failed:` lines,
/// which come in the order the failures happened and are sorted too.
fn sort_run_log(stderr: &str) -> String {
    let summary_start = Regex::new(r"^\d+ ONC requests?:").unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    let split = lines
        .iter()
        .position(|line| summary_start.is_match(line))
        .unwrap_or(lines.len());
    // Event lines start with their UTC time (`2026-12-06T05:45:50Z `): dropped, once seen.
    let stamp = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ").unwrap();
    let mut log: Vec<&str> = lines[..split]
        .iter()
        .map(|line| match stamp.find(line) {
            Some(found) => &line[found.end()..],
            None => line,
        })
        .filter(|line| !line.starts_with("status "))
        .collect();
    let stamped = lines[..split]
        .iter()
        .filter(|line| stamp.is_match(line))
        .count();
    assert!(
        split == 0 || stamped > 0,
        "no event line has its time:\n{stderr}"
    );
    log.sort_unstable();
    let mut summary = lines[split..].to_vec();
    let failed: Vec<usize> = (0..summary.len())
        .filter(|&i| summary[i].starts_with("failed: "))
        .collect();
    if let (Some(&first), Some(&last)) = (failed.first(), failed.last()) {
        summary[first..=last].sort_unstable();
    }
    let mut out = String::new();
    for line in log.iter().chain(&summary) {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The README's demo, on a small in-process simulator (8 kHz, 500× speed), writing into the
/// scratch folder.
fn demo_manifest() -> String {
    let demo = std::fs::read_to_string(repo().join("manifests/demo.toml")).unwrap();
    demo.replace("\"../demo-data\"", "\"data\"")
        .replace("\"../.onc-pipe\"", "\"cache\"")
        .replace(
            "poll_interval = \"10s\"\n",
            "poll_interval = \"10s\"\n\n[onc.simulator]\nsample_rate = 8000\ntime_scale = 0.002\n",
        )
}

/// A manifest with one problem of each kind the compiler finds, plus a warning.
const BAD_MANIFEST: &str = r#"version = 1

[onc]
stagger = "often"

[plan.a]
device = "ICLISTENHF6324"
range = { start = 2024-04-01T00:00:00, end = 2024-04-01T01:00:00Z }

[plan.b]
device = "ICLISTENHF6324"
windows = [{ start = 2024-04-01T02:00:00Z, end = 2024-04-01T01:00:00Z }]

[fetch.f]
plan = "c"
product = "HSD"
extension = "mat"
options = { dpo_spectralDataDownsample = 7, dpo_nonsense = 1 }

[fetch.g]
plan = "b"
product = "HSDD"
extension = "mat"

[clip.c]
plan = "b"
fetch = ["ff"]
spectrogram = "jpeg"
gaps = "ignore"
"#;

/// A manifest whose unknown key stops the compiler before its other phases.
const TYPO_MANIFEST: &str = "#:schema ../schemas/manifest.schema.json\nversion = 1\n[plan.a]\ndevise = \"ICLISTENHF6324\"\n";

/// A request file with a bad row, an unknown field and a bad time.
const BAD_REQUESTS: &str = r#"{
  "defaults": { "deviceCode": "ICLISTENHF6324" },
  "requests": [
    { "timestamp": "2024-04-01T04:25:00Z", "label": "ok", "colour": "red" },
    { "timestamp": "yesterday", "label": "bad time" },
    { "start": "2024-04-01T05:00:00Z", "end": "2024-04-01T04:00:00Z" }
  ]
}
"#;

#[test]
fn validate_reports_every_problem_human() {
    Test::new()
        .file("bad.toml", BAD_MANIFEST)
        .file("bad.json", BAD_REQUESTS)
        .file("typo.toml", TYPO_MANIFEST)
        .args(&["validate", "bad.toml", "bad.json", "typo.toml"])
        .golden("validate_human");
}

#[test]
fn validate_reports_every_problem_json() {
    Test::new()
        .file("bad.toml", BAD_MANIFEST)
        .file("bad.json", BAD_REQUESTS)
        .file("typo.toml", TYPO_MANIFEST)
        .args(&[
            "validate",
            "--format",
            "json",
            "bad.toml",
            "bad.json",
            "typo.toml",
        ])
        .golden("validate_json");
}

#[test]
fn validate_reports_every_problem_github() {
    Test::new()
        .file("bad.toml", BAD_MANIFEST)
        .file("bad.json", BAD_REQUESTS)
        .file("typo.toml", TYPO_MANIFEST)
        .args(&[
            "validate",
            "--format",
            "github",
            "bad.toml",
            "bad.json",
            "typo.toml",
        ])
        .golden("validate_github");
}

#[test]
fn validate_of_the_shipped_manifests() {
    let printed = Test::new()
        .in_repo()
        .args(&[
            "validate",
            "manifests/demo.toml",
            "manifests/scenario1_six_hours.toml",
            "manifests/scenario2_sampling.toml",
            "manifests/scenario3_explicit_windows.toml",
            "manifests/scenario4_json_requests.toml",
            "manifests/scenario5_custom_fft.toml",
            "manifests/scenario6_flac_range.toml",
            "manifests/requests/calls.json",
            "manifests/requests/legacy_map.json",
            "manifests/requests/seed_requests.csv",
            "manifests/requests/seed_requests.json",
        ])
        .golden("validate_shipped");
    assert_eq!(printed.code, 0);
}

/// `plan --format json` of every shipped manifest and request file: the refactors of the
/// architecture issue must leave these byte-identical (node keys included).
#[test]
fn plan_json_of_every_shipped_manifest() {
    let mut shipped: Vec<PathBuf> = ["manifests", "manifests/requests"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(repo().join(dir)).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    shipped.sort();
    assert!(shipped.len() >= 11, "{shipped:?}");
    for path in shipped {
        let relative = path.strip_prefix(repo()).unwrap().display().to_string();
        let test = Test::new().in_repo();
        // A cache that does not exist, so every node is "to run" whatever the checkout holds.
        let cache = test.scratch_path().join("no-cache");
        let cache = cache.display().to_string();
        let name = format!(
            "plan_json_{}",
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .replace('.', "_")
        );
        // Offline: most shipped manifests name ONC's real server, which tests cannot reach.
        let printed = test
            .args(&[
                "plan",
                "--offline",
                "--format",
                "json",
                &relative,
                "--cache-dir",
                &cache,
            ])
            .golden(&name);
        assert_eq!(printed.code, 0, "{relative}: {}", printed.stderr);
    }
}

#[test]
fn plan_text_and_dot_of_the_demo() {
    Test::new()
        .file("m.toml", &demo_manifest())
        .args(&["plan", "m.toml"])
        .golden("plan_text_demo");
    Test::new()
        .file("m.toml", &demo_manifest())
        .args(&["plan", "--format", "dot", "m.toml"])
        .golden("plan_dot_demo");
}

#[test]
fn plan_and_validate_refuse_a_bad_manifest() {
    Test::new()
        .file("bad.toml", BAD_MANIFEST)
        .args(&["plan", "bad.toml"])
        .golden("plan_invalid");
}

/// `run` of the demo, its re-run (nothing to do, no request), and `status` and `plan` before
/// and after.
#[test]
fn run_status_and_plan_through_a_demo() {
    let demo = Test::new().file("m.toml", &demo_manifest());
    demo.again()
        .args(&["status", "m.toml"])
        .golden("status_before_run");
    let ran = demo
        .again()
        .args(&["run", "m.toml", "--no-progress"])
        .run_log()
        .golden("run_demo_log");
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    demo.again()
        .args(&["status", "m.toml"])
        .golden("status_after_run");
    demo.again()
        .args(&["status", "--json", "m.toml"])
        .golden("status_json_after_run");
    demo.again()
        .args(&["plan", "m.toml"])
        .golden("plan_text_after_run");
    let again = demo
        .again()
        .args(&["run", "m.toml", "--no-progress", "--json"])
        .run_log()
        .golden("run_demo_rerun_json");
    assert_eq!(again.code, 0);
    assert!(again.stdout.contains("\"http_requests\": 0,"));
}

/// Every ONC run fails: the failure lines, the summary and exit 1.
#[test]
fn run_where_every_onc_run_fails() {
    let manifest = demo_manifest().replace(
        "time_scale = 0.002\n",
        "time_scale = 0.002\nfaults = \"failed-run=1,seed=1\"\n",
    );
    let printed = Test::new()
        .file("m.toml", &manifest)
        .args(&["run", "m.toml", "--no-progress"])
        .run_log()
        .golden("run_failed_runs");
    assert_eq!(printed.code, 1);
}

#[test]
fn run_without_a_token_for_a_real_server() {
    let manifest = demo_manifest().replace(
        "base_url = \"simulator\"",
        "base_url = \"https://data.oceannetworks.ca/api\"",
    );
    let printed = Test::new()
        .without_token()
        .file("m.toml", &manifest)
        .args(&["run", "m.toml", "--no-progress"])
        .golden("run_without_token");
    assert_eq!(printed.code, 3);
}

/// `simulate` checks its flags with the manifest's checks: every bad one named, exit 2.
#[test]
fn simulate_refuses_bad_settings() {
    let printed = Test::new()
        .args(&[
            "simulate",
            "--capacity",
            "0",
            "--per-file-seconds=-1",
            "--time-scale",
            "0",
            "--faults",
            "5xx=2",
        ])
        .golden("simulate_bad_settings");
    assert_eq!(printed.code, 2);
}
