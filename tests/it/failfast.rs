//! Fail fast: what would stop a run is found before anything is ordered, or at ONC's first
//! answer, and reported once with what to do — a refused or missing token, an output or cache
//! folder that cannot be written or is full, an unknown product code, a zero-length clip. Each
//! test asserts the message, the exit code, and what the simulator saw (nothing submitted).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use onc_sim::{SimConfig, SimHandle, SimStats, start};

use crate::support::{Scratch, repo};

async fn simulator() -> SimHandle {
    let config = SimConfig {
        sample_rate: 8_000,
        time_scale: 0.002,
        ..SimConfig::default()
    };
    start(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs the binary in `dir` with `token` as ONC_TOKEN (none: unset, and no .env in `dir`), off
/// the async workers so the simulator keeps serving.
async fn onc_pipe(dir: &Path, args: &[&str], token: Option<&str>) -> Ran {
    let (dir, token) = (dir.to_path_buf(), token.map(str::to_owned));
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_onc-pipe"));
        command
            .args(&args)
            .current_dir(&dir)
            .env_remove("ONC_BASE_URL")
            .env_remove("ONC_TOKEN");
        if let Some(token) = token {
            command.env("ONC_TOKEN", token);
        }
        let output = command.output().unwrap();
        Ran {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

const TOKEN: &str = "7e57c0de-failfast-token";

/// Twelve one-file plotRes requests (and, with `audio`, archived FLAC for the same hour), run
/// with room for many calls at once: without the first-answer gate a refused token would be
/// refused once per request.
fn survey(base_url: &str, output: &str, audio: bool) -> String {
    let audio = if audio {
        "[fetch.audio]\nplan = \"survey\"\narchive = \"flac\"\n"
    } else {
        ""
    };
    format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{base_url}"
stagger = "0s"
poll_interval = "50ms"
max_runs = 8
download_workers = 8

{output}

[plan.survey]
device = "ICLISTENHF6324"
range = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T01:00:00Z }}

[fetch.plotres]
plan = "survey"
product = "HSD"
extension = "mat"
per_request = 1
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD" }}
{audio}"#
    )
}

fn assert_nothing_submitted(stats: &SimStats, requests_at_most: u64) {
    assert!(
        stats.requests_total <= requests_at_most,
        "{} requests: {:?}",
        stats.requests_total,
        stats.requests_by_endpoint
    );
    assert_eq!(stats.submissions, 0, "{:?}", stats.requests_by_endpoint);
}

/// The help a refused token gets, after ONC's own words.
const REFUSED_HELP: &str = "set ONC_TOKEN, or put `ONC_TOKEN=...` in a .env file, to your token (copy it from your ONC profile, https://data.oceannetworks.ca/Profile, tab \"Web Services API\"); nothing else was sent to ONC\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_stops_the_run_at_the_first_answer() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &survey(&sim.base_url, "", false));
    let ran = onc_pipe(scratch.path(), &["run", "m.toml"], Some("invalid-token")).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.stderr,
        format!(
            "onc-pipe: cannot start: ONC refused the token (HTTP 401 from deployments: Invalid token (parameter `token`, code 127)): {REFUSED_HELP}"
        )
    );
    assert_eq!(ran.stdout, "");
    assert_nothing_submitted(&sim.stats(), 2);
    assert!(
        !scratch.path().join("data").join("ICLISTENHF6324").exists(),
        "nothing was linked into the output tree"
    );
}

/// When ONC's deployments are already cached (a `plan` ran with a good token), the executor's
/// calls come first: with archive listings and product requests racing for the first call,
/// whichever goes first is the only one sent; `--json` prints no record, the run being refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_costs_one_request_whichever_call_goes_first() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &survey(&sim.base_url, "", true));
    let planned = onc_pipe(scratch.path(), &["plan", "m.toml"], Some("a-good-token")).await;
    assert_eq!(planned.code, 0, "{}", planned.stderr);
    let before = sim.stats().requests_total;
    let ran = onc_pipe(
        scratch.path(),
        &["run", "m.toml", "--json", "--no-progress"],
        Some("invalid-token"),
    )
    .await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with(
            "onc-pipe: cannot start: ONC refused the token (HTTP 401 from dataProductDelivery/request: "
        ) || ran.stderr.starts_with(
            "onc-pipe: cannot start: ONC refused the token (HTTP 401 from archivefile/device: "
        ),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.ends_with(REFUSED_HELP), "{}", ran.stderr);
    assert_eq!(ran.stdout, "");
    let stats = sim.stats();
    assert_nothing_submitted(&stats, before + 2);
    assert_eq!(
        stats.requests_total - before,
        1,
        "{:?}",
        stats.requests_by_endpoint
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_stops_before_any_request() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write("m.toml", &survey(&sim.base_url, "", true));
    let ran = onc_pipe(scratch.path(), &["run", "m.toml"], None).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.stderr,
        "onc-pipe: cannot start: failed to find an ONC token: set ONC_TOKEN or put `ONC_TOKEN=...` in a .env file (get one from your ONC profile), or use `--base-url simulator`\n"
    );
    assert_nothing_submitted(&sim.stats(), 0);
}

/// `output.dir` or `output.cache` under a regular file cannot be a folder, for root too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_that_cannot_be_created_stops_the_run_before_any_request() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write("blocker", "a file, not a folder\n");
    let cases = [
        (
            "[output]\ndir = \"blocker/data\"\ncache = \"cache\"",
            "onc-pipe: cannot start: the output folder cannot be used (cannot create blocker/data: Not a directory (os error 20)); make it writable or choose another (`--output-dir`, or `output.dir` in the manifest)\n",
        ),
        (
            "[output]\ndir = \"data\"\ncache = \"blocker/cache\"",
            "onc-pipe: cannot start: the cache folder cannot be used (cannot create blocker/cache: Not a directory (os error 20)); make it writable or choose another (`--cache-dir`, or `output.cache` in the manifest)\n",
        ),
    ];
    for (output, expected) in cases {
        scratch.write("m.toml", &survey(&sim.base_url, output, true));
        let ran = onc_pipe(scratch.path(), &["run", "m.toml"], Some(TOKEN)).await;
        assert_eq!(ran.code, 3, "{}", ran.stderr);
        assert_eq!(ran.stderr, expected);
    }
    // The command line's folders are checked the same way.
    scratch.write("m.toml", &survey(&sim.base_url, "", true));
    let ran = onc_pipe(
        scratch.path(),
        &["run", "m.toml", "--output-dir", "blocker/out"],
        Some(TOKEN),
    )
    .await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with(
            "onc-pipe: cannot start: the output folder cannot be used (cannot create blocker/out: "
        ),
        "{}",
        ran.stderr
    );
    assert_nothing_submitted(&sim.stats(), 0);
}

/// A read-only output folder (permission bits stop everyone but root: skipped as root).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_output_folder_stops_the_run_before_any_request() {
    use std::os::unix::fs::PermissionsExt;
    let sim = simulator().await;
    let scratch = Scratch::new();
    let read_only = scratch.path().join("ro");
    std::fs::create_dir(&read_only).unwrap();
    std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(read_only.join("probe"), b"x").is_ok() {
        return; // root
    }
    scratch.write(
        "m.toml",
        &survey(&sim.base_url, "[output]\ndir = \"ro\"", true),
    );
    let ran = onc_pipe(scratch.path(), &["run", "m.toml"], Some(TOKEN)).await;
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    assert_eq!(
        ran.stderr,
        "onc-pipe: cannot start: the output folder cannot be used (cannot write in ro: Permission denied (os error 13)); make it writable or choose another (`--output-dir`, or `output.dir` in the manifest)\n"
    );
    assert_nothing_submitted(&sim.stats(), 0);
}

/// A file system with less free space than a run needs at the least is refused by the same
/// check `run` makes first (no file system here is that full: the floor is raised instead).
#[test]
fn a_full_file_system_is_named_before_any_request() {
    use onc_pipe::error::{EXIT_CANNOT_START, Folder};
    let scratch = Scratch::new();
    let cache = scratch.path().join("cache");
    let error =
        onc_pipe::run::check_folders(&[(Folder::Cache, cache.as_path())], u64::MAX).unwrap_err();
    assert_eq!(error.process_exit_code(), EXIT_CANNOT_START);
    let message = error.to_string();
    let prefix = format!("cannot start: the cache folder {} has ", cache.display());
    assert!(message.starts_with(&prefix), "{message}");
    assert!(
        message.ends_with(" MiB a run needs at the least; free some space or choose another (`--cache-dir`, or `output.cache` in the manifest)"),
        "{message}"
    );
    // The floor `run` uses is met here, or no test could run.
    onc_pipe::run::check_folders(
        &[(Folder::Cache, cache.as_path())],
        onc_pipe::run::MIN_FREE_BYTES,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_product_code_is_an_error_with_the_closest_code() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    let manifest = survey(&sim.base_url, "", false).replace("\"HSD\"", "\"HSDD\"");
    scratch.write("m.toml", &manifest);
    let expected = "m.toml:19:11: error: unknown data product `HSDD`\n\
                    19 | product = \"HSDD\"\n   \
                    |           ^^^^^^\n  \
                    = help: did you mean \"HSD\"? known products: AD, HSD\n";
    let validated = onc_pipe(scratch.path(), &["validate", "m.toml"], None).await;
    assert_eq!(validated.code, 2);
    assert_eq!(validated.stderr, format!("{expected}\n"));
    assert_eq!(
        validated.stdout,
        "0 files valid, 1 invalid (1 error, 0 warnings)\n"
    );
    // Online, `run` first looks the code up in ONC's own `dataProducts` list (one read-only
    // request), which knows more codes, but not this one.
    let ran = onc_pipe(scratch.path(), &["run", "m.toml"], Some(TOKEN)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert_eq!(
        ran.stderr,
        expected.replace("known products: AD, HSD", "known products: AD, HSD, TSSD")
    );
    let stats = sim.stats();
    assert_nothing_submitted(&stats, 1);
    assert_eq!(stats.requests_by_endpoint.get("dataProducts"), Some(&1));
}

/// A timestamp clipped with no padding has nothing to cut: found at the manifest line, or at the
/// request file's row, before anything is ordered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_length_clip_is_an_error_naming_the_row() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    scratch.write(
        "calls.json",
        r#"{"defaults": {"deviceCode": "ICLISTENHF6324", "pad_seconds": 0, "clip": true},
 "requests": [{"timestamp": "2024-04-01T04:25:00Z", "label": "single ping"},
              {"timestamp": "2024-04-01T05:25:00Z", "pad_before_seconds": 5}]}"#,
    );
    let manifest = format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{}"

[plan.calls]
requests = "calls.json"

[plan.pings]
device = "ICLISTENHF6324"
windows = [{{ timestamp = 2024-04-01T06:00:00Z }}]

[fetch.audio]
plan = ["calls", "pings"]
archive = "flac"

[clip.calls]
plan = "calls"
fetch = "audio"

[clip.pings]
plan = "pings"
fetch = "audio"
audio = "wav"
"#,
        sim.base_url
    );
    scratch.write("m.toml", &manifest);
    let expected = "calls.json:requests[0]: error: zero-length clip: `single ping` (2024-04-01T04:25:00.000Z) is an instant and the row has no padding\n  \
                    = help: give the row padding (`pad_seconds`, or `pad_before_seconds`/`pad_after_seconds`), or a length (`start` with `duration_seconds` or `end`), or `clip: false`, or give clip stage `calls` a `pad`\n\
                    \n\
                    m.toml:12:26: error: zero-length clip: this window is an instant and clip stage `pings` has no padding\n\
                    12 | windows = [{ timestamp = 2024-04-01T06:00:00Z }]\n   \
                    |                          ^^^^^^^^^^^^^^^^^^^^\n  \
                    = help: give clip stage `pings` a `pad` (e.g. `pad = \"15s\"`) or `pad_before`/`pad_after`, or give the window a length (`end` or `duration`)\n";
    let validated = onc_pipe(scratch.path(), &["validate", "m.toml"], None).await;
    assert_eq!(validated.code, 2);
    assert_eq!(validated.stderr, format!("{expected}\n"));
    let ran = onc_pipe(scratch.path(), &["run", "m.toml"], Some(TOKEN)).await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert_eq!(ran.stderr, expected);

    // The request file run on its own: its rows are named, with no clip stage to blame.
    let ran = onc_pipe(
        scratch.path(),
        &["run", "calls.json", "--base-url", &sim.base_url],
        Some(TOKEN),
    )
    .await;
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert_eq!(
        ran.stderr,
        "calls.json:requests[0]: error: zero-length clip: `single ping` (2024-04-01T04:25:00.000Z) is an instant and the row has no padding\n  \
         = help: give the row padding (`pad_seconds`, or `pad_before_seconds`/`pad_after_seconds`), or a length (`start` with `duration_seconds` or `end`), or `clip: false`\n"
    );
    assert_nothing_submitted(&sim.stats(), 0);
}

/// The shipped scenario 4 request file clips every row it asks to clip, on its own padding (the
/// clip stage here gives none): 2 rows × spectrogram and audio.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_calls_json_runs_clean() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    std::fs::copy(
        repo().join("manifests/requests/calls.json"),
        scratch.path().join("calls.json"),
    )
    .unwrap();
    let manifest = format!(
        r#"#:schema ../schemas/manifest.schema.json
version = 1

[onc]
base_url = "{}"
stagger = "0s"
poll_interval = "50ms"

[plan.calls]
requests = "calls.json"

[fetch.plotres]
plan = "calls"
product = "HSD"
extension = "mat"
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}

[fetch.audio]
plan = "calls"
archive = "flac"

[clip.calls]
plan = "calls"
fetch = ["plotres", "audio"]
"#,
        sim.base_url
    );
    scratch.write("m.toml", &manifest);
    let validated = onc_pipe(scratch.path(), &["validate", "m.toml"], None).await;
    assert_eq!(validated.code, 0, "{}", validated.stderr);
    let ran = onc_pipe(
        scratch.path(),
        &["run", "m.toml", "--json", "--no-progress"],
        Some(TOKEN),
    )
    .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let record: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(record["failures"], serde_json::json!([]), "{}", ran.stderr);
    assert_eq!(record["clips_written"], 4, "{record}");
}
