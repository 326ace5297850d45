//! Hostile inputs (issue 11, item 8): names, headers and files made to escape the output folder
//! or exhaust memory → clear errors or sanitised names, nothing written outside the output and
//! cache folders, and memory bounded (each bound stated where it is checked).
//!
//! Already covered elsewhere, and not repeated here: `sanitise_name` on `../`, NUL, non-ASCII,
//! `..`, Windows device names and 500 characters (`src/manifest/requests/tests.rs`
//! `sanitise_names`, and a property test); a request file's `output_name = "../../x"` warning
//! (`json_type_errors`); the client keeping `filename="../../etc/evil"` as `evil`
//! (`src/onc/tests.rs`); MAT files claiming 1×10⁹ values or a 2³¹-element struct, refused before
//! anything is allocated (`crates/onc-mat/src/tests.rs` `malformed_inputs_are_errors_with_locations`);
//! `sample.count` past the limit (`robustness.rs` `absurd_values_are_errors_not_hangs`, 4×10⁹).
//!
//! Peak memory is measured on child processes: the real binary under `/usr/bin/time -f %M`, and
//! in-process cases by running this test binary again on one ignored test that prints its own
//! `VmHWM` (so other tests running in parallel threads cannot inflate it). Where neither can be
//! read the bound is not checked, and the test says so.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::Uri;
use axum::response::Response;
use onc_pipe::clip::audio::{AudioSource, clip_audio};
use onc_pipe::plan::GapPolicy;
use onc_sim::archive::ArchiveFile;
use onc_sim::{SimConfig, SimHandle, start};

use crate::support::Scratch;

const TOKEN: &str = "b0a710e5-hostile-token-1111";
const DEVICE: &str = "ICLISTENHF6324";
/// 2024-04-01T00:00:00Z in ms.
const T2024: i64 = 1_711_929_600_000;

const TIME: &str = "/usr/bin/time";

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    /// Peak RSS of the child in KiB, when `/usr/bin/time` could measure it.
    peak_kib: Option<u64>,
}

/// Runs the real binary in `dir` under `/usr/bin/time` (when present), off the async workers.
async fn onc_pipe(dir: &Path, args: &[&str]) -> Ran {
    let dir = dir.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || onc_pipe_blocking(&dir, &args))
        .await
        .unwrap()
}

fn onc_pipe_blocking(dir: &Path, args: &[String]) -> Ran {
    let binary = env!("CARGO_BIN_EXE_onc-pipe");
    let rss_file = dir.join(".peak-rss");
    let mut command = if Path::new(TIME).exists() {
        let mut c = Command::new(TIME);
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file).arg(binary);
        c
    } else {
        Command::new(binary)
    };
    let output = command
        .args(args)
        .current_dir(dir)
        .env("ONC_TOKEN", TOKEN)
        .env_remove("ONC_BASE_URL")
        .output()
        .unwrap();
    let peak_kib = std::fs::read_to_string(&rss_file)
        .ok()
        .and_then(|text| text.lines().last()?.trim().parse().ok());
    let _ = std::fs::remove_file(&rss_file);
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        peak_kib,
    }
}

/// Checks a measured peak against its bound, or says it could not be measured.
fn assert_peak(what: &str, peak_kib: Option<u64>, bound_mib: u64) {
    match peak_kib {
        Some(kib) => {
            // Printed for BENCHMARKS.md (`cargo test hostile -- --nocapture`).
            eprintln!(
                "{what}: peak RSS {:.1} MiB (bound {bound_mib} MiB)",
                kib as f64 / 1024.0
            );
            assert!(
                kib <= bound_mib * 1024,
                "{what}: peak RSS {} MiB over the bound of {bound_mib} MiB",
                kib / 1024
            );
        }
        None => eprintln!("{what}: peak RSS not measured (no {TIME}, or no /proc/self/status)"),
    }
}

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

/// Every file under `root`, relative to it.
fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// Nothing but the manifest (or request file), the output and the cache folders in `dir`.
fn assert_only_outputs(dir: &Path, inputs: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            // A request file run directly keeps its cache in `.onc-pipe`, a manifest here in `cache`.
            ["data", "cache", ".onc-pipe"].contains(&name.as_str())
                || inputs.contains(&name.as_str()),
            "{name} was written beside the output folder"
        );
    }
}

// ---- output_name ----

/// A request file run directly, one row per hostile `output_name`: each becomes a warning that
/// names the row's name and what it is used as, and a clip named that, inside the output folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_output_names_are_sanitised_and_stay_in_the_output_folder() {
    let sim = simulator().await;
    let scratch = Scratch::new();
    let long = "n".repeat(5_000);
    let names = [
        "../../escape".to_owned(),
        "/etc/passwd".to_owned(),
        "nul\u{0}byte".to_owned(),
        long.clone(),
        "baleine à bosse".to_owned(),
    ];
    let rows: Vec<serde_json::Value> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            serde_json::json!({
                "deviceCode": DEVICE,
                "timestamp": format!("2024-04-01T04:2{i}:00Z"),
                "pad_seconds": 2,
                "output_name": name,
            })
        })
        .collect();
    let text = serde_json::json!({ "requests": rows }).to_string();
    scratch.write("events.json", &text);
    let base = sim.base_url.clone();
    let ran = onc_pipe(
        scratch.path(),
        &["run", "events.json", "--base-url", &base, "--no-progress"],
    )
    .await;
    assert_eq!(ran.code, 0, "{}\n{}", ran.stdout, ran.stderr);
    let long_used = onc_pipe::manifest::requests::sanitise_name(&long).unwrap();
    for (name, used) in [
        ("../../escape", "____escape"),
        ("/etc/passwd", "_etc_passwd"),
        ("nul\\0byte", "nul_byte"),
        ("baleine à bosse", "baleine _ bosse"),
    ] {
        let warning = format!("unsafe file name \"{name}\" is used as \"{used}\"");
        assert!(ran.stderr.contains(&warning), "{warning}\n{}", ran.stderr);
    }
    // The 5,000 characters are not echoed whole: the head, then how long the name is.
    let long_warning = format!(
        "unsafe file name \"{}…\" (5000 characters) is used as \"{long_used}\"",
        "n".repeat(60)
    );
    assert!(ran.stderr.contains(&long_warning), "{}", ran.stderr);
    assert!(long_used.len() <= 120);
    // Outputs go to the output folder's default (the request file's folder + data/).
    let outputs = files_under(&scratch.path().join("data"));
    for used in [
        "____escape",
        "_etc_passwd",
        "nul_byte",
        "baleine _ bosse",
        &long_used,
    ] {
        assert!(
            outputs
                .iter()
                .any(|p| p.file_name().unwrap().to_string_lossy() == format!("{used}.npz")),
            "no clip {used}.npz in {outputs:?}"
        );
    }
    assert!(
        outputs
            .iter()
            .all(|p| p.to_string_lossy().len() < 4096 && p.file_name().unwrap().len() <= 255)
    );
    assert_only_outputs(scratch.path(), &["events.json"]);
    assert!(!Path::new("/etc/passwd.npz").exists());
    // Bound: a run of five clips from 8 kHz files; 256 MiB is ~10x what it takes.
    assert_peak("hostile output names", ran.peak_kib, 256);
    sim.stop().await;
}

// ---- Content-Disposition ----

/// What the proxy does to a file answer's `Content-Disposition`: ONC's name in, a header out.
type Rename = Arc<dyn Fn(&str) -> Vec<u8> + Send + Sync>;

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
    rename: Rename,
}

/// Forwards a GET to the simulator and returns its answer with the file name rewritten.
async fn forward(State(proxy): State<Proxy>, uri: Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{}", proxy.upstream.trim_end_matches('/'), path);
    let answer = proxy.http.get(url).send().await.unwrap();
    let mut builder = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        let name = name.as_str();
        if name.eq_ignore_ascii_case("content-disposition") {
            let original = String::from_utf8_lossy(value.as_bytes());
            let onc_name = original
                .split_once("filename=")
                .map_or(original.as_ref(), |(_, n)| n);
            builder = builder.header(name, (proxy.rename)(onc_name));
        } else if !name.eq_ignore_ascii_case("transfer-encoding") {
            builder = builder.header(name, value.as_bytes());
        }
    }
    let body = answer.bytes().await.unwrap();
    builder.body(Body::from(body)).unwrap()
}

async fn proxy(upstream: &str, rename: Rename) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let state = Proxy {
        upstream: upstream.to_owned(),
        http: reqwest::Client::new(),
        rename,
    };
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}/")
}

/// 20 minutes of plotRes spectrograms (several HSD files, named by `Content-Disposition`).
fn spectrogram_manifest(base_url: &str) -> String {
    format!(
        r#"version = 1

[onc]
base_url = "{base_url}"
stagger = "10ms"
poll_interval = "50ms"
max_wait = "2m"

[output]
dir = "data"
cache = "cache"

[plan.survey]
device = "{DEVICE}"
range = {{ start = 2024-04-01T00:00:00Z, end = 2024-04-01T00:20:00Z }}

[fetch.plotres]
plan = "survey"
product = "HSD"
extension = "mat"
options = {{ dpo_spectralDataDownsample = 2, dpo_hydrophoneDataDiversionMode = "OD", dpo_spectrogramConcatenation = "None" }}
"#
    )
}

/// ONC's download answers renamed by a hostile server: `../` climbing out, an absolute path, a
/// NUL byte (percent-encoded: a raw one cannot be sent in a header), 5,000 characters, and
/// non-ASCII. Every run succeeds, every file lands in the output folder under a safe name of at
/// most 120 bytes, no two files share a name (the 5,000-character names differ only at their
/// end), and nothing is written anywhere else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_download_names_stay_in_the_output_folder() {
    let sim = simulator().await;
    let long = "A".repeat(5_000);
    let cases: Vec<(&str, Rename)> = vec![
        (
            "as sent",
            Arc::new(|name: &str| format!("attachment; filename={name}").into_bytes()),
        ),
        (
            "../",
            Arc::new(|name: &str| {
                format!("attachment; filename=\"../../../../../hostile-escape/{name}\"")
                    .into_bytes()
            }),
        ),
        (
            "absolute",
            Arc::new(|name: &str| {
                format!("attachment; filename=/tmp/onc-pipe-hostile-absolute/{name}").into_bytes()
            }),
        ),
        (
            "NUL",
            Arc::new(|name: &str| {
                format!("attachment; filename*=UTF-8''nul%00{name}").into_bytes()
            }),
        ),
        (
            "5,000 characters",
            Arc::new(move |name: &str| format!("attachment; filename={long}{name}").into_bytes()),
        ),
        (
            "non-ASCII",
            Arc::new(|name: &str| {
                // Raw UTF-8 bytes in the header, as a careless server sends them.
                format!("attachment; filename=baleine-à-bosse-{name}").into_bytes()
            }),
        ),
    ];
    let mut expected_files = None;
    for (case, rename) in cases {
        let base = proxy(&sim.base_url, rename).await;
        let scratch = Scratch::new();
        scratch.write("m.toml", &spectrogram_manifest(&base));
        let ran = onc_pipe(scratch.path(), &["run", "m.toml", "--no-progress"]).await;
        assert_eq!(ran.code, 0, "{case}: {}\n{}", ran.stdout, ran.stderr);
        let outputs = files_under(&scratch.path().join("data"));
        let names: Vec<String> = outputs
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in &names {
            assert!(
                name.len() <= 120 && name.is_ascii() && !name.starts_with('.'),
                "{case}: {name}"
            );
        }
        assert!(
            names.iter().any(|n| n.ends_with(".mat")),
            "{case}: {names:?}"
        );
        // As many outputs as with ONC's own names: none replaced another.
        let expected = *expected_files.get_or_insert(outputs.len());
        assert_eq!(outputs.len(), expected, "{case}: {names:?}");
        assert_only_outputs(scratch.path(), &["m.toml"]);
        assert!(
            !scratch
                .path()
                .parent()
                .unwrap()
                .join("hostile-escape")
                .exists()
        );
        assert!(!Path::new("/tmp/onc-pipe-hostile-absolute").exists());
        // Bound: downloads stream to disk (see BENCHMARKS.md, 29 MiB for 1.2 GB); 256 MiB.
        assert_peak(case, ran.peak_kib, 256);
    }
    assert!(expected_files.unwrap() >= 4);
    sim.stop().await;
}

// ---- files claiming too much ----

/// Runs one ignored test of this binary in a child process and returns its `VmHWM` in KiB: the
/// peak of that test alone, which no other test's allocations can raise.
fn child_peak_kib(test: &str) -> Option<u64> {
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{test} failed in its child process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        // The harness prints the test's name on the same line, before its output.
        .find_map(|line| line.split_once("VmHWM_KIB=").map(|(_, kib)| kib))
        .and_then(|kib| kib.trim().parse().ok())
}

/// This process's peak RSS in KiB, from `/proc/self/status` (Linux).
fn own_peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A FLAC whose STREAMINFO claims 2³⁶ − 1 samples per channel (the field's largest value, 12
/// days at 64 kHz) but holds 2 s: a clip inside the real data is cut exactly, a clip past it is
/// an error naming the file and where it really ends, and neither allocates for the claim.
#[test]
#[ignore = "run in a child process by flac_claiming_2_pow_36_samples_is_bounded"]
fn flac_claiming_2_pow_36_samples_child() {
    let file = ArchiveFile {
        device: DEVICE.into(),
        start_ms: T2024,
        samples: 16_000,
        sample_rate: 8_000,
    };
    let mut bytes = onc_sim::flac::flac_bytes(&file).unwrap();
    // STREAMINFO follows `fLaC` and its 4-byte block header; total samples are its bits
    // 108..144: the low nibble of byte 13, then bytes 14..18.
    let total: u64 = (1 << 36) - 1;
    let info = 8;
    bytes[info + 13] = (bytes[info + 13] & 0xf0) | ((total >> 32) as u8 & 0x0f);
    bytes[info + 14..info + 18].copy_from_slice(&(total as u32).to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let name = file.filename("flac");
    let path = dir.path().join(&name);
    std::fs::write(&path, &bytes).unwrap();
    let sources = [AudioSource {
        name: &name,
        path: &path,
    }];
    let ms = 1_000_000;
    let inside = clip_audio(&sources, T2024 * ms, (T2024 + 1_000) * ms, GapPolicy::Fail).unwrap();
    assert_eq!(inside[0].samples.len(), 8_000);
    // Ten minutes from the start: inside the claim, past the data.
    let past = (T2024 + 600_000) * ms;
    let error = clip_audio(&sources, past, past + 1_000 * ms, GapPolicy::Fill)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&name) && error.contains("the file ends at sample 16000"),
        "{error}"
    );
    println!("VmHWM_KIB={}", own_peak_kib().unwrap_or(0));
}

/// Bound: the clip's own samples (8,000 here) and claxon's frame buffers, never the 2³⁶ claimed
/// samples (256 GiB as i32): the child's whole peak, test harness included, stays under 64 MiB.
#[test]
fn flac_claiming_2_pow_36_samples_is_bounded() {
    let peak = child_peak_kib("hostile::flac_claiming_2_pow_36_samples_child");
    assert_peak("FLAC claiming 2^36 samples", peak.filter(|&k| k > 0), 64);
}

/// A compressed MAT variable (`SpectData.PSD`-like) whose header claims 10⁹ × 10⁹ doubles but
/// whose data is a few bytes: an error naming the variable and the mismatch.
#[test]
#[ignore = "run in a child process by mat_claiming_huge_dimensions_is_bounded"]
fn mat_claiming_huge_dimensions_child() {
    use onc_pipe::clip::mat::{MatFile, MatValue, NumericArray, NumericData, read_mat, write_mat};
    let small = MatFile {
        header_text: "MATLAB 5.0 MAT-file, hostile".into(),
        variables: vec![(
            "PSD".into(),
            MatValue::Numeric(NumericArray {
                dims: vec![1, 1],
                real: NumericData::F64(vec![1.0]),
                imag: None,
                logical: false,
            }),
        )],
    };
    let bytes = write_mat(&small).unwrap();
    // Inflate, patch the dimensions (the array's second element: 8-byte tag, two i32s), and
    // compress again, as a hostile writer would.
    let mut zlib = flate2::read::ZlibDecoder::new(&bytes[136..]);
    let mut inner = Vec::new();
    std::io::Read::read_to_end(&mut zlib, &mut inner).unwrap();
    let dims_at = 8 + 16 + 8;
    inner[dims_at..dims_at + 4].copy_from_slice(&1_000_000_000i32.to_le_bytes());
    inner[dims_at + 4..dims_at + 8].copy_from_slice(&1_000_000_000i32.to_le_bytes());
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &inner).unwrap();
    let compressed = encoder.finish().unwrap();
    let mut hostile = bytes[..128].to_vec();
    hostile.extend(15u32.to_le_bytes());
    hostile.extend((compressed.len() as u32).to_le_bytes());
    hostile.extend(compressed);
    let error = read_mat(&hostile).unwrap_err().to_string();
    assert!(
        error.contains("PSD") && error.contains("1000000000000000000"),
        "{error}"
    );
    println!("VmHWM_KIB={}", own_peak_kib().unwrap_or(0));
}

/// Bound: what the file really inflates to (here a few bytes; for any file at most
/// `onc_mat::MAX_DECOMPRESSED_BYTES`, all its compressed variables together), never the 10¹⁸
/// claimed values: under 64 MiB.
#[test]
fn mat_claiming_huge_dimensions_is_bounded() {
    let peak = child_peak_kib("hostile::mat_claiming_huge_dimensions_child");
    assert_peak("MAT claiming 10^18 values", peak.filter(|&k| k > 0), 64);
}

// ---- request files and counts ----

/// A request file of 10⁶ rows (38 MB) with one bad cell: `validate` names the row and the
/// column, once, and exits 2.
#[test]
fn a_million_row_request_file_with_one_bad_cell() {
    let scratch = Scratch::new();
    let mut text = String::with_capacity(40_000_000);
    text.push_str("deviceCode,timestamp,pad_seconds\n");
    for i in 1..=1_000_000u32 {
        let stamp = if i == 765_432 {
            "2024-13-45T99:00:00Z".to_owned()
        } else {
            format!(
                "2024-04-01T{:02}:{:02}:{:02}Z",
                (i / 3600) % 24,
                (i / 60) % 60,
                i % 60
            )
        };
        text.push_str(&format!("{DEVICE},{stamp},5\n"));
    }
    scratch.write("events.csv", &text);
    drop(text);
    let ran = onc_pipe_blocking(scratch.path(), &["validate".into(), "events.csv".into()]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(
            "events.csv:row 765432, field `timestamp`: error: invalid timestamp \"2024-13-45T99:00:00Z\""
        ),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stderr.matches("error:").count(), 1, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("0 files valid, 1 invalid (1 error, 0 warnings)")
    );
    // Bound: linear in the rows, about 0.9 KB per row (each row's request and its planned
    // window), 850 MB measured for 10⁶ rows in release; 1,536 MiB.
    assert_peak("10^6-row request file", ran.peak_kib, 1_536);
}

/// `sample.count = 10⁹` through the binary: one clear error at the value, at once, in a few MB
/// (nothing is planned past the limit of 10⁶ samples).
#[test]
fn a_billion_samples_is_an_error_at_once() {
    let scratch = Scratch::new();
    scratch.write(
        "m.toml",
        "version = 1\n[plan.a]\ndevice = \"ICLISTENHF6324\"\n\
         sample = { start = 2021-04-01T00:00:00Z, end = 2029-01-01T00:00:00Z, count = 1000000000, per_request = 1 }\n\
         [fetch.f]\nplan = \"a\"\narchive = \"flac\"\n",
    );
    let ran = onc_pipe_blocking(scratch.path(), &["validate".into(), "m.toml".into()]);
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("m.toml:4:78: error: `count` must be at most 1000000"),
        "{}",
        ran.stderr
    );
    // Bound: refused before planning; 32 MiB (8.6 MB measured).
    assert_peak("sample.count = 10^9", ran.peak_kib, 32);
}
